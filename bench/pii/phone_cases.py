#!/usr/bin/env python3
"""Phone numbers judged by Google's libphonenumber (the `phonenumbers` port), to check
hushflow's own implementation of its parse and validity rules against.

    python bench/pii/phone_cases.py OUT.jsonl

Writes one JSON object per line: {"region", "text", "valid", "mobile"}. `text` is either
international (`+…`) or national in `region`. Deterministic (fixed seed). The Rust side is the
ignored test `phone_validity_agrees_with_libphonenumber` in crates/hushflow-policy/src/pii/tests.rs.
"""

import json
import random
import sys

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

REGIONS = (
    "US CA GB DE FR IT ES NL BE CH AT PL SE NO DK FI IE PT GR CZ HU RO RU UA TR IL AE SA IN PK "
    "CN HK TW JP KR SG MY TH ID PH VN AU NZ BR AR MX CL CO PE ZA NG EG KE MA GG JE IM VA KZ"
).split()
TYPES = [
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.PAGER,
    PhoneNumberType.UAN,
    PhoneNumberType.VOICEMAIL,
]
MOBILE = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


def judge(text, region):
    try:
        n = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return False, False
    valid = phonenumbers.is_valid_number(n)
    return valid, valid and phonenumbers.number_type(n) in MOBILE


def mutations(digits, rng):
    out = [digits, digits[:-1], digits + str(rng.randrange(10))]
    i = rng.randrange(len(digits))
    out.append(digits[:i] + str((int(digits[i]) + 1 + rng.randrange(8)) % 10) + digits[i + 1 :])
    return out


def main():
    rng = random.Random(20261122)
    rows = []
    for region in REGIONS:
        cc = phonenumbers.country_code_for_region(region)
        prefix = phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix or ""
        for t in TYPES:
            example = phonenumbers.example_number_for_type(region, t)
            if example is None:
                continue
            nsn = phonenumbers.national_significant_number(example)
            national = phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL)
            for text in [
                phonenumbers.format_number(example, PhoneNumberFormat.E164),
                phonenumbers.format_number(example, PhoneNumberFormat.INTERNATIONAL),
                national,
                f"{prefix}{nsn}",
                nsn,
                f"{cc}{nsn}",
            ]:
                rows.append((region, text))
            for m in mutations(nsn, rng):
                rows.append((region, f"+{cc}{m}"))
                rows.append((region, f"{prefix}{m}"))
                rows.append((region, m))
                rows.append((region, f"+{cc}0{m}"))
        for _ in range(40):
            length = rng.randrange(6, 13)
            digits = "".join(str(rng.randrange(10)) for _ in range(length))
            rows.append((region, digits))
            rows.append((region, f"{prefix}{digits}"))
            rows.append((region, f"+{cc}{digits}"))
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        for region, text in rows:
            valid, mobile = judge(text, region)
            f.write(json.dumps({"region": region, "text": text, "valid": valid, "mobile": mobile}) + "\n")
    print(f"{len(rows)} phone cases written to {sys.argv[1]}")


if __name__ == "__main__":
    main()
