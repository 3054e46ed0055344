"""The Python baseline: the same work as examples/csv-to-csv.toml and examples/bench-hmac.toml,
done the way an Airflow task would, with pandas. Prints records/s.

usage: baseline.py keep-drop|hmac INPUT.csv OUTPUT.csv
"""
import hashlib
import hmac
import sys
import time

import pandas as pd

KEEP_DROP = ["id", "email", "company", "country", "marketing_opt_in", "updated_at"]
HMAC_FIELDS = ["id", "email", "company", "job_title", "country", "marketing_opt_in", "updated_at"]
KEY = b"0123456789abcdef0123456789abcdef"


def main() -> None:
    mode, src, dst = sys.argv[1:4]
    started = time.perf_counter()
    fields = KEEP_DROP if mode == "keep-drop" else HMAC_FIELDS
    df = pd.read_csv(src, usecols=fields, dtype=str, keep_default_na=False)[fields]
    if mode == "hmac":
        def pseudonym(v: str) -> str:
            v = v.strip().lower()
            return hmac.new(KEY, v.encode(), hashlib.sha256).hexdigest() if v else ""
        df["email"] = df["email"].map(pseudonym)
    df.to_csv(dst, index=False)
    elapsed = time.perf_counter() - started
    print(f"{len(df)} {elapsed:.3f}")


if __name__ == "__main__":
    main()
