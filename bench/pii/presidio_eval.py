#!/usr/bin/env python3
"""Scores Microsoft Presidio's pattern recognizers and hushflow on the same labelled corpus.

    python bench/pii/presidio_eval.py CORPUS.jsonl HUSHFLOW_PREDICTIONS.jsonl [--out PRESIDIO.jsonl]

Presidio runs without a spaCy model: its predefined recognizers for the six kinds are called
directly (`recognizer.analyze(text, entities, nlp_artifacts=None)`), then overlapping results
of one entity are merged as `AnalyzerEngine` does (`EntityRecognizer.remove_duplicates`).
Without NLP artifacts there is no context boost, so scores are the patterns' own, and every
result counts (the `AnalyzerEngine` default threshold is 0). The phone recognizer gets the
text's region, as hushflow does.

The email recognizer checks domains with tldextract; it is pointed at tldextract's bundled
suffix list so nothing is fetched from the network.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import score  # noqa: E402

import tldextract  # noqa: E402

# Offline: the bundled public suffix snapshot, no cache directory, no download.
_offline = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=())
tldextract.extract = _offline

from presidio_analyzer import EntityRecognizer  # noqa: E402
from presidio_analyzer.predefined_recognizers import (  # noqa: E402
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
    UsSsnRecognizer,
)

ENTITIES = {
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "CREDIT_CARD": "credit_card",
    "IBAN_CODE": "iban",
    "US_SSN": "us_ssn",
    "IP_ADDRESS": "ip_address",
}


def presidio_predict(corpus):
    fixed = [EmailRecognizer(), CreditCardRecognizer(), IbanRecognizer(), UsSsnRecognizer(), IpRecognizer()]
    phones = {}
    out = {}
    started = time.perf_counter()
    for doc in corpus:
        region = doc.get("region") or "US"
        if region not in phones:
            phones[region] = PhoneRecognizer(supported_regions=(region,))
        results = []
        for r in fixed + [phones[region]]:
            results.extend(r.analyze(doc["text"], r.supported_entities, nlp_artifacts=None))
        results = EntityRecognizer.remove_duplicates(results)
        out[doc["id"]] = sorted(
            (
                {"start": r.start, "end": r.end, "kind": ENTITIES[r.entity_type], "score": round(r.score, 3)}
                for r in results
                if r.entity_type in ENTITIES
            ),
            key=lambda s: (s["start"], s["end"]),
        )
    elapsed = time.perf_counter() - started
    return out, elapsed / max(len(corpus), 1)


def table(corpus, systems):
    """Prints per-kind precision/recall/F1 (overlap and exact) for each system side by side."""
    scored = [(name, *score.score(corpus, preds)) for name, preds in systems]
    names = [name for name, _ in systems]
    width = 20
    for hit, title in [("overlap", "overlap match (one-to-one, same kind)"), ("exact", "exact span match")]:
        print(f"\n{title}")
        head = f"{'kind':<12} {'gold':>5} | " + " | ".join(f"{n:^{width}}" for n in names)
        print(head)
        print(f"{'':<12} {'':>5} | " + " | ".join(f"{'P':>6} {'R':>6} {'F1':>6}" for _ in names))
        print("-" * len(head))
        for kind in score.KINDS:
            cells = []
            gold = 0
            for _, counts, _ in scored:
                c = counts[kind]
                gold = c["gold"]
                p, r, f = score.prf(c, hit)
                cells.append(f"{p:6.3f} {r:6.3f} {f:6.3f}")
            print(f"{kind:<12} {gold:>5} | " + " | ".join(cells))
        if hit == "overlap":
            cells = []
            for _, _, anyk in scored:
                p, r, f = score.prf_any(anyk)
                cells.append(f"{p:6.3f} {r:6.3f} {f:6.3f}")
            print(f"{'any kind':<12} {scored[0][2]['gold']:>5} | " + " | ".join(cells))
    print("\npredicted spans: " + ", ".join(f"{name} {sum(c['pred'] for c in counts.values())}" for name, counts, _ in scored))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("hushflow")
    parser.add_argument("--out", help="write Presidio's predictions here (JSONL)")
    args = parser.parse_args()
    corpus = score.load_jsonl(args.corpus)
    hushflow = {p["id"]: p["spans"] for p in score.load_jsonl(args.hushflow)}
    presidio, per_text = presidio_predict(corpus)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            for doc in corpus:
                f.write(json.dumps({"id": doc["id"], "spans": presidio[doc["id"]]}) + "\n")
    print(f"{len(corpus)} texts; Presidio's six recognizers took {per_text * 1e6:.0f} µs per text")
    table(corpus, [("hushflow", hushflow), ("presidio", presidio)])


if __name__ == "__main__":
    main()
