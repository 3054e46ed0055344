"""The Python baseline for the policy benchmark: the *core* or *full* policy done the way an
Airflow PythonOperator would, with pandas, hmac/hashlib, phonenumbers and cryptography.

usage: baseline.py core|full INPUT.csv OUTPUT.csv PEPPER_B64 TOKEN_KEY_B64 [--plain]
Prints "<input records> <seconds> <peak MiB>".

With --plain the notes are redacted with two regular expressions (`re.sub`, no phonenumbers
validation), the cheapest redaction a DAG author would write. phonenumbers' matcher makes the
default baseline slow; the plain one shows how much of hushflow's lead is per-record cost in
hushflow rather than Python's slowness. Its notes differ from hushflow's (no validation), so
compare.py is run against the default baseline only.
"""
import base64
import datetime
import hashlib
import hmac
import re
import resource
import sys
import time

import pandas as pd
import phonenumbers
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
YES = {"true", "yes", "1", "y"}
# A run of 8 or more digits and separators, optionally after a +: what a hurried DAG author writes.
PHONE = re.compile(r"\+?\d[\d ().-]{6,}\d")


def tokenizer(material: bytes):
    """hushflow's token construction (docs/pipeline.md, "Tokens")."""
    key = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=b"hushflow tokenize aes-siv v1").derive(material)
    siv = AESSIV(key)
    key_id = hashlib.sha256(material).hexdigest()[:16]

    def tokenize(value: str) -> str:
        if not value:
            return ""
        sealed = siv.encrypt(value.encode(), [b"hushflow-token-v1"])
        return f"tok1.{key_id}." + base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()

    return tokenize


def redact(text: str) -> str:
    if not text:
        return text
    text = EMAIL.sub("[EMAIL]", text)
    out, last = [], 0
    for m in phonenumbers.PhoneNumberMatcher(text, "US"):
        out.append(text[last:m.start])
        out.append("[PHONE]")
        last = m.end
    out.append(text[last:])
    return "".join(out)


def redact_plain(text: str) -> str:
    if not text:
        return text
    return PHONE.sub("[PHONE]", EMAIL.sub("[EMAIL]", text))


def year(v: str) -> str:
    if not v:
        return ""
    try:
        return "%04d" % datetime.date.fromisoformat(v.strip()[:10]).year
    except ValueError:
        return None  # hushflow quarantines the record


def addr_spec(v: str) -> str:
    """The address of a display-name form (`"Jane Doe" <jane@example.com>`), as hushflow's email
    normalization reads it: what the last `<...>` holds when the trimmed value ends with `>`."""
    v = v.strip()
    if v.endswith(">") and "<" in v[:-1]:
        return v[:-1].rpartition("<")[2].strip()
    return v


def mask_last4(v: str) -> str:
    return "*" * len(v) if len(v) <= 4 else "*" * (len(v) - 4) + v[-4:]


def main() -> None:
    variant, src, dst, pepper_b64, token_b64 = sys.argv[1:6]
    plain = sys.argv[6:] == ["--plain"]
    pepper = base64.b64decode(pepper_b64)
    started = time.perf_counter()
    df = pd.read_csv(src, dtype=str, keep_default_na=False)
    n = len(df)
    df = df[df["marketing_opt_in"].str.strip().str.lower().isin(YES)]
    # hushflow writes a consent field it keeps as a boolean: every kept record said yes.
    df["marketing_opt_in"] = "true"
    df = df.drop(columns=["street", "postal_code", "job_title"])
    df["email"] = df["email"].map(
        lambda v: hmac.new(pepper, addr_spec(v).lower().encode(), hashlib.sha256).hexdigest() if v.strip() else ""
    )
    df["phone"] = df["phone"].map(lambda v: mask_last4(v) if v else "")
    df["birth_date"] = df["birth_date"].map(year)
    df = df[df["birth_date"].notna()]
    df["notes"] = df["notes"].map(redact_plain if plain else redact)
    if variant == "full":
        tokenize = tokenizer(base64.b64decode(token_b64))
        df["first_name"] = df["first_name"].map(tokenize)
        df["last_name"] = df["last_name"].map(tokenize)
    columns = ["id", "first_name", "last_name", "email", "phone", "company", "city", "country",
               "birth_date", "marketing_opt_in", "created_at", "updated_at", "notes"]
    df[columns].to_csv(dst, index=False)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{n} {elapsed:.3f} {peak:.0f}")


if __name__ == "__main__":
    main()
