#!/usr/bin/env bash
# Throughput: hushflow against the pandas baseline, side by side on the same generated data.
# usage: scripts/bench.sh [ROWS]   (default 1000000). Prints records/s and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}

cargo build --release --locked -q -p hushflow
hf=$PWD/target/release/hushflow
export HUSHFLOW_STATE_DIR=$PWD/target/bench-state
rm -rf "$HUSHFLOW_STATE_DIR" examples/out/bench*.csv

if ! .venv/bin/python -c 'import pandas, cryptography' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/bench-requirements.txt
fi

start=$(date +%s.%N)
"$hf" sample contacts --rows "$rows" --seed 1 --out examples/data/bench.csv >/dev/null
end=$(date +%s.%N)
printf 'sample contacts: %d rows in %.2fs (%s MB)\n' "$rows" "$(echo "$end - $start" | bc)" \
  "$(du -m examples/data/bench.csv | cut -f1)"
"$hf" keys create bench-pepper >/dev/null

report() { # name rows seconds baseline_seconds
  awk -v n="$1" -v r="$2" -v s="$3" -v b="$4" 'BEGIN {
    printf "%-22s hushflow %9.0f records/s (%.2fs)   pandas %8.0f records/s (%.2fs)   ratio %.1fx\n",
      n, r / s, s, r / b, b, b / s }'
}

for pair in "keep-drop:examples/csv-to-csv.toml" "hmac:examples/bench-hmac.toml"; do
  mode=${pair%%:*}; pipeline=${pair#*:}
  best=""
  for _ in 1 2 3; do
    start=$(date +%s.%N)
    "$hf" run "$pipeline" >/dev/null
    end=$(date +%s.%N)
    t=$(echo "$end - $start" | bc)
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
  done
  read -r n py <<<"$(.venv/bin/python tests/python/baseline.py "$mode" examples/data/bench.csv target/bench-baseline.csv)"
  report "$mode (CSV→CSV)" "$n" "$best" "$py"
done
