#!/usr/bin/env bash
# PII detection on a labelled corpus: hushflow against Microsoft Presidio's recognizers.
#
#   bench/pii/run.sh            # corpus of 800 texts
#   TEXTS=3000 bench/pii/run.sh
#   NOTES=20000 bench/pii/run.sh   # size of the multilingual notes corpus (make_notes.py)
#
# Everything it writes goes to target/: the corpus, both systems' predictions, the phone cases
# and a Python venv (target/pii-venv) with presidio-analyzer and phonenumbers from PyPI.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"  # cargo runs tests in the crate's directory: hand them absolute paths

texts="${TEXTS:-800}"
venv=target/pii-venv
mkdir -p target
if [ ! -x "$venv/bin/python" ]; then
  echo "== creating $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet -r bench/pii/requirements.txt
fi
py="$venv/bin/python"

echo "== corpus"
python3 bench/pii/make_corpus.py target/pii-corpus.jsonl --texts "$texts"
"$py" bench/pii/phone_cases.py target/pii-phone-cases.jsonl

# Real-looking notes for the speed figure, if the CLI is built.
notes=""
if [ -x target/release/hushflow ]; then
  target/release/hushflow sample contacts --rows 100000 --format jsonl \
    --out target/pii-sample.jsonl --state-dir target/pii-state >/dev/null
  python3 -c '
import json, sys
with open("target/pii-sample-notes.jsonl", "w") as out:
    for line in open("target/pii-sample.jsonl"):
        note = json.loads(line).get("notes")
        if note:
            out.write(json.dumps(note) + "\n")
'
  notes="$root/target/pii-sample-notes.jsonl"
fi

echo "== hushflow (release): corpus, phone rules against libphonenumber, speed"
HUSHFLOW_PII_CORPUS="$root/target/pii-corpus.jsonl" \
HUSHFLOW_PII_PREDICTIONS="$root/target/pii-hushflow.jsonl" \
HUSHFLOW_PHONE_CASES="$root/target/pii-phone-cases.jsonl" \
HUSHFLOW_PII_NOTES="$notes" \
  cargo test -p hushflow-policy --release --lib -- --ignored --nocapture --test-threads 1 \
    pii_corpus phone_validity_agrees_with_libphonenumber pii_speed

echo "== multilingual CRM notes (make_notes.py, written apart from the detector)"
"$py" bench/pii/make_notes.py target/pii-notes.jsonl --notes "${NOTES:-5000}"
for mode in own list region_from; do
  regions=""; from=""
  case $mode in
    list) regions="US,GB,DE,FR,ES" ;;
    region_from) regions="US,GB,DE,FR,ES"; from=1 ;;
  esac
  echo "-- regions: $mode"
  HUSHFLOW_PII_CORPUS="$root/target/pii-notes.jsonl" \
  HUSHFLOW_PII_PREDICTIONS="$root/target/pii-notes-hushflow-$mode.jsonl" \
  HUSHFLOW_PII_REGIONS="$regions" ${from:+HUSHFLOW_PII_REGION_FROM=1} \
    taskset -c 0 cargo test -p hushflow-policy --release --lib -- --ignored --nocapture \
      --exact pii::tests::pii_corpus
done

echo "== side by side"
"$py" bench/pii/presidio_eval.py target/pii-corpus.jsonl target/pii-hushflow.jsonl \
  --out target/pii-presidio.jsonl
