"""Recompute a hushflow run of the full policy independently, with Python's hmac/hashlib and
`phonenumbers` (libphonenumber's Python port), and compare every row.

usage: check_policy.py INPUT.csv OUTPUT.csv QUARANTINE_DIR SUPPRESSED.txt KEY_BASE64

The pipeline it checks is crates/hushflow/tests/policy_actions.rs's: consent on
marketing_opt_in, suppression on email, and the field rules listed in `expected_row`.
"""
import base64
import csv
import datetime
import hashlib
import hmac
import json
import sys

import phonenumbers

YES = {"true", "yes", "1", "y"}


def mac(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def addr_spec(v: str) -> str:
    """The address of a display-name form (`"Jane Doe" <jane@example.com>`): what the last
    `<...>` holds when the trimmed value ends with `>`; otherwise the trimmed value."""
    v = v.strip()
    if v.endswith(">") and "<" in v[:-1]:
        return v[:-1].rpartition("<")[2].strip()
    return v


def norm_email(v: str) -> str:
    return addr_spec(v).lower()


def google_email(v: str) -> str:
    v = norm_email(v)
    local, _, domain = v.rpartition("@")
    if _ and domain in ("gmail.com", "googlemail.com"):
        return local.replace(".", "") + "@" + domain
    return v


def suppressed_by(value: str, plain: set, hashed: set, key: bytes) -> bool:
    """hushflow compares the field in every form the policy writes it out in (here `email`'s
    and Google's match normalization), each against the plain lines normalized the same way
    and, under the key, against the hashed lines."""
    for form in (norm_email, google_email):
        v = form(value)
        if v and (v in {form(p) for p in plain} or mac(key, v) in hashed):
            return True
    return False


def e164(v: str):
    """None when the value is not a valid number (hushflow quarantines the record)."""
    try:
        n = phonenumbers.parse(v.strip(), "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(n):
        return None
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)


def year(v: str):
    try:
        return "%04d" % datetime.date.fromisoformat(v.strip()[:10]).year
    except ValueError:
        return None


def mask_last4(v: str) -> str:
    n = len(v)
    return "*" * n if n <= 4 else "*" * (n - 4) + v[-4:]


def expected_row(src: dict, key: bytes):
    """The output row, or None when the record must be quarantined."""
    email = src["email"]
    phone = src["phone"]
    row = {"id": src["id"]}
    row["email"] = mac(key, norm_email(email)) if norm_email(email) else ""
    if len(email.strip()) == 64 and all(c in "0123456789abcdefABCDEF" for c in email.strip()):
        row["email_match"] = email.strip().lower()
    else:
        g = google_email(email)
        row["email_match"] = hashlib.sha256(g.encode()).hexdigest() if g else ""
    row["phone"] = mask_last4(phone) if phone else ""
    if phone.strip():
        p = e164(phone)
        if p is None:
            return None
        row["phone_e164"] = mac(key, p)
    else:
        row["phone_e164"] = ""
    if src["birth_date"]:
        y = year(src["birth_date"])
        if y is None:
            return None
        row["birth_date"] = y
    else:
        row["birth_date"] = ""
    row["postal_code"] = src["postal_code"].strip()[:3] if src["postal_code"] else ""
    return row


def main() -> int:
    src_path, out_path, quarantine_path, suppressed_path, key_b64 = sys.argv[1:6]
    key = base64.b64decode(key_b64)
    plain, hashed = set(), set()
    for line in open(suppressed_path, encoding="utf-8"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if len(line) == 64 and all(c in "0123456789abcdefABCDEF" for c in line):
            hashed.add(line.lower())
        else:
            plain.add(line)

    expected, quarantined, no_consent, suppressed = {}, set(), 0, 0
    with open(src_path, newline="", encoding="utf-8") as f:
        for src in csv.DictReader(f):
            if src["marketing_opt_in"].strip().lower() not in YES:
                no_consent += 1
                continue
            if suppressed_by(src["email"], plain, hashed, key):
                suppressed += 1
                continue
            row = expected_row(src, key)
            if row is None:
                quarantined.add(src["id"])
            else:
                expected[src["id"]] = row

    got = {}
    with open(out_path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            got[row["id"]] = row
    if set(got) != set(expected):
        print(f"rows differ: {len(set(got) - set(expected))} unexpected, {len(set(expected) - set(got))} missing")
        return 1
    for rid, want in expected.items():
        for field, value in want.items():
            if got[rid][field] != value:
                print(f"id {rid}: field {field} differs")
                return 1

    q_ids = set()
    # The run's quarantine as `hushflow quarantine export` decrypts it: JSON lines.
    for line in open(quarantine_path, encoding="utf-8"):
        entry = json.loads(line)
        record = entry["record"]
        # A refused row is a JSON object of its fields; the source's own bytes are a string.
        q_ids.add(record["id"] if isinstance(record, dict) else "?")
    if q_ids != quarantined:
        print(f"quarantine differs: {len(q_ids - quarantined)} unexpected, {len(quarantined - q_ids)} missing")
        return 1
    print(f"checked {len(expected)} rows; quarantined {len(quarantined)}; no consent {no_consent}; suppressed {suppressed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
