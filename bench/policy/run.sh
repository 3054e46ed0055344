#!/usr/bin/env bash
# The policy benchmark: hushflow and the pandas baseline side by side on the same contacts, the
# *core* and *full* policies, CSV to CSV. Prints input records/s, the ratio, peak memory, and
# whether the outputs agree row by row.
# usage: bench/policy/run.sh [ROWS]   (default 200000; the issue's real run is 2000000)
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-200000}

cargo build --release --locked -q -p hushflow
hf=$PWD/target/release/hushflow
export HUSHFLOW_STATE_DIR=$PWD/target/bench-state
if ! .venv/bin/python -c 'import pandas, phonenumbers, cryptography' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/bench-requirements.txt
fi

"$hf" sample contacts --rows "$rows" --seed 2 --out examples/data/bench-policy.csv >/dev/null
export HF_BENCH_PEPPER=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
export HF_BENCH_TOKEN_KEY=ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=

for variant in core full; do
  best=""; peak=""
  for _ in 1 2 3; do
    /usr/bin/time -f '%e %M' -o target/bench-time "$hf" run "bench/policy/$variant.toml" >/dev/null 2>&1 || [ $? -eq 3 ]
    read -r t mem < target/bench-time
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; peak=$mem; fi
  done
  read -r n py pymem <<<"$(.venv/bin/python bench/policy/baseline.py "$variant" examples/data/bench-policy.csv target/bench-baseline-$variant.csv "$HF_BENCH_PEPPER" "$HF_BENCH_TOKEN_KEY")"
  awk -v v="$variant" -v n="$n" -v s="$best" -v b="$py" -v m="$peak" -v pm="$pymem" 'BEGIN {
    printf "%-5s hushflow %9.0f records/s (%.2fs, %.0f MiB)   pandas %7.0f records/s (%.2fs, %s MiB)   ratio %.1fx\n",
      v, n / s, s, m / 1024, n / b, b, pm, b / s }'
  .venv/bin/python bench/policy/compare.py "examples/out/bench-$variant.csv" "target/bench-baseline-$variant.csv"
done
