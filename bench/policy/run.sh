#!/usr/bin/env bash
# The policy benchmark: hushflow and the pandas baseline side by side on the same contacts, the
# *core* and *full* policies, CSV to CSV. Prints input records/s on one core (pinned with taskset,
# `--workers 1`, against pandas, which is single-threaded) and on every core (the scaling), peak memory, the
# JSONL-input rate against CSV, and whether the outputs agree row by row. Two pandas baselines:
# notes redacted with phonenumbers' matcher (the outputs are compared), and "plain re", the same
# policy redacting notes with two regular expressions (baseline.py --plain).
# usage: bench/policy/run.sh [ROWS]   (default 200000; the reference run is 2000000)
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
"$hf" sample contacts --rows "$rows" --seed 2 --format jsonl --out examples/data/bench-policy.jsonl >/dev/null
export HF_BENCH_PEPPER=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
export HF_BENCH_TOKEN_KEY=ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=

# best_of CORES PIPELINE [ARGS…]: the best of three runs on CPUs CORES (as taskset takes them);
# sets $best (seconds) and $peak (KiB).
best_of() {
  local cpus=$1; shift
  best=""; peak=""
  for _ in 1 2 3; do
    /usr/bin/time -f '%e %M' -o target/bench-time taskset -c "$cpus" "$hf" run "$@" >/dev/null 2>&1 || [ $? -eq 3 ]
    # time(1) puts "Command exited with non-zero status 3" first on a partial run.
    read -r t mem <<<"$(tail -n 1 target/bench-time)"
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; peak=$mem; fi
  done
}

cores=$(nproc)
all_cpus="0-$((cores - 1))"
for variant in core full; do
  best_of 0 "bench/policy/$variant.toml" --workers 1; one=$best; one_mem=$peak
  best_of "$all_cpus" "bench/policy/$variant.toml"; all=$best; all_mem=$peak
  read -r n py pymem <<<"$(.venv/bin/python bench/policy/baseline.py "$variant" examples/data/bench-policy.csv target/bench-baseline-$variant.csv "$HF_BENCH_PEPPER" "$HF_BENCH_TOKEN_KEY")"
  read -r _ plain _ <<<"$(.venv/bin/python bench/policy/baseline.py "$variant" examples/data/bench-policy.csv target/bench-baseline-plain-$variant.csv "$HF_BENCH_PEPPER" "$HF_BENCH_TOKEN_KEY" --plain)"
  awk -v v="$variant" -v n="$n" -v one="$one" -v all="$all" -v b="$py" -v p="$plain" -v m1="$one_mem" -v m="$all_mem" -v pm="$pymem" -v c="$cores" 'BEGIN {
    printf "%-5s pandas            %9.0f records/s (%.2fs, %s MiB)\n", v, n / b, b, pm
    printf "%-5s pandas, plain re  %9.0f records/s (%.2fs)\n", v, n / p, p
    printf "%-5s hushflow 1 core   %9.0f records/s (%.2fs, %.0f MiB)   %.1fx pandas, %.1fx plain\n", v, n / one, one, m1 / 1024, b / one, p / one
    printf "%-5s hushflow %d cores  %9.0f records/s (%.2fs, %.0f MiB)   %.1fx pandas, %.1fx plain, %.2fx one core\n", v, c, n / all, all, m / 1024, b / all, p / all, one / all }'
  .venv/bin/python bench/policy/compare.py "examples/out/bench-$variant.csv" "target/bench-baseline-$variant.csv"
done

# The same full policy with JSON lines in: only [source] differs. (The outputs differ where the
# inputs do: JSON has true where the CSV has yes, and "" where the CSV has an empty cell.)
sed -e '0,/^type = "csv"$/s//type = "jsonl"/' -e 's#^path = "../../examples/data/bench-policy.csv"#path = "../examples/data/bench-policy.jsonl"#' \
    -e 's#^path = "../../examples/out/bench-full.csv"#path = "../examples/out/bench-full-jsonl.csv"#' \
    -e 's/^name = "bench-full"/name = "bench-full-jsonl"/' bench/policy/full.toml > target/bench-full-jsonl.toml
best_of 0 target/bench-full-jsonl.toml --workers 1; jsonl_one=$best
best_of "$all_cpus" target/bench-full-jsonl.toml; jsonl_all=$best
awk -v n="$rows" -v j1="$jsonl_one" -v j="$jsonl_all" -v one="$one" -v all="$all" -v c="$cores" 'BEGIN {
  printf "full  JSONL in, 1 core  %9.0f records/s   %.2fx the CSV rate\n", n / j1, one / j1
  printf "full  JSONL in, %d cores %9.0f records/s   %.2fx the CSV rate\n", c, n / j, all / j }'
