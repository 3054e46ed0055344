"""Precision and recall of span predictions against the labelled corpus.

The same definitions as the Rust evaluator (`pii_corpus` in
crates/hushflow-policy/src/pii/tests.rs):

- exact: a prediction counts when a gold span has the same kind, start and end;
- overlap: each prediction, in order, takes the first not yet matched gold span of its kind
  that it overlaps (one-to-one);
- any kind: a gold span is covered when any prediction of any kind overlaps it (what matters
  for redaction: nothing leaks), and a prediction is right when it overlaps any gold span.

Offsets are Unicode code points.
"""

import json

KINDS = ["credit_card", "email", "iban", "ip_address", "phone", "us_ssn"]


def load_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def overlaps(a, b):
    return a["start"] < b["end"] and b["start"] < a["end"]


def score(corpus, predictions):
    """`predictions` maps a text id to its predicted spans. Returns {kind: counts}."""
    counts = {k: {"gold": 0, "pred": 0, "exact": 0, "overlap": 0} for k in KINDS}
    anyk = {"gold": 0, "pred": 0, "right": 0, "covered": 0}
    for doc in corpus:
        gold = doc["spans"]
        pred = predictions.get(doc["id"], [])
        used = [False] * len(gold)
        for g in gold:
            counts[g["kind"]]["gold"] += 1
        for p in pred:
            c = counts.setdefault(p["kind"], {"gold": 0, "pred": 0, "exact": 0, "overlap": 0})
            c["pred"] += 1
            if any(g["kind"] == p["kind"] and g["start"] == p["start"] and g["end"] == p["end"] for g in gold):
                c["exact"] += 1
            for i, g in enumerate(gold):
                if not used[i] and g["kind"] == p["kind"] and overlaps(p, g):
                    used[i] = True
                    c["overlap"] += 1
                    break
        anyk["gold"] += len(gold)
        anyk["pred"] += len(pred)
        anyk["covered"] += sum(1 for g in gold if any(overlaps(p, g) for p in pred))
        anyk["right"] += sum(1 for p in pred if any(overlaps(p, g) for g in gold))
    return counts, anyk


def ratio(a, b):
    return a / b if b else 1.0


def f1(p, r):
    return 2 * p * r / (p + r) if p + r else 0.0


def prf(c, hit):
    p, r = ratio(c[hit], c["pred"]), ratio(c[hit], c["gold"])
    return p, r, f1(p, r)


def prf_any(a):
    p, r = ratio(a["right"], a["pred"]), ratio(a["covered"], a["gold"])
    return p, r, f1(p, r)
