"""Compare hushflow's and the baseline's outputs row by row.

usage: compare.py HUSHFLOW.csv BASELINE.csv
Exact agreement is required on every field but `notes`. Both redact emails and phones there,
with different detectors (hushflow validates candidates; the baseline uses a regex and
phonenumbers' matcher), so notes report their agreement rate instead.
"""
import csv
import sys


def main() -> int:
    ours = {r["id"]: r for r in csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8"))}
    theirs = {r["id"]: r for r in csv.DictReader(open(sys.argv[2], newline="", encoding="utf-8"))}
    if set(ours) != set(theirs):
        print(f"different rows: {len(set(ours) - set(theirs))} only in hushflow, {len(set(theirs) - set(ours))} only in the baseline")
        return 1
    notes_same = 0
    for rid, row in ours.items():
        for field, value in row.items():
            if field == "notes":
                notes_same += value == theirs[rid][field]
            elif value != theirs[rid][field]:
                print(f"id {rid}: `{field}` differs")
                return 1
    print(f"identical on {len(ours)} rows (every field but notes); notes identical on {notes_same} ({100 * notes_same / max(1, len(ours)):.2f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
