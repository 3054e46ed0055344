"""Recompute hushflow's keyed hashes with Python's `cryptography` (an independent HMAC).

usage: check_hmac.py INPUT.csv OUTPUT.csv KEYRING.json KEY_NAME

Checks `email` (normalize=email, hex) and `company` (normalize=lower, base64url) when present.
"""
import base64
import csv
import json
import sys

from cryptography.hazmat.primitives import hashes, hmac


def mac(key: bytes, value: str) -> bytes:
    h = hmac.HMAC(key, hashes.SHA256())
    h.update(value.encode("utf-8"))
    return h.finalize()


def addr_spec(v: str) -> str:
    """hushflow's email normalization reads the address of a display-name form
    (`"Jane Doe" <jane@example.com>`): what the last `<...>` holds when the trimmed value ends
    with `>`."""
    v = v.strip()
    if v.endswith(">") and "<" in v[:-1]:
        return v[:-1].rpartition("<")[2].strip()
    return v


def main() -> int:
    src_path, out_path, keyring_path, key_name = sys.argv[1:5]
    with open(keyring_path) as f:
        keyring = json.load(f)
    entries = [k for k in keyring["keys"] if k["name"] == key_name]
    if len(entries) != 1:
        print(f"key {key_name} not in keyring")
        return 1
    key = base64.b64decode(entries[0]["material"])

    with open(src_path, newline="", encoding="utf-8") as f:
        source = {row["id"]: row for row in csv.DictReader(f)}
    checked = 0
    with open(out_path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            src = source[row["id"]]
            email = addr_spec(src["email"]).lower()
            want = mac(key, email).hex() if email else ""
            if row["email"] != want:
                print(f"email hash differs for id {row['id']}")
                return 1
            if "company" in row:
                company = src["company"].strip().lower()
                want = base64.urlsafe_b64encode(mac(key, company)).rstrip(b"=").decode() if company else ""
                if row["company"] != want:
                    print(f"company hash differs for id {row['id']}")
                    return 1
            checked += 1
    print(f"checked {checked} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
