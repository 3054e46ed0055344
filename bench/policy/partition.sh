#!/usr/bin/env bash
# What `--partition` costs: the *full* benchmark policy over the same generated contacts, CSV in,
# into a SQLite table (partitioned runs need a sink that adds rows up; a CSV file is refused), on
# one core (`--workers 1`, pinned). Prints source records/s for an unpartitioned run, for
# `--partition 0/1` (every key hashed, every record kept: the hash's own cost) and for each of
# four partitions (each reads and decodes the whole file, hashes every key, and applies the
# policy to its quarter).
# usage: bench/policy/partition.sh [ROWS]   (default 200000)
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-200000}

cargo build --release --locked -q -p hushflow
hf=$PWD/target/release/hushflow
export HUSHFLOW_STATE_DIR=$PWD/target/bench-state
mkdir -p target/bench-partition examples/data
"$hf" sample contacts --rows "$rows" --seed 2 --out examples/data/bench-policy.csv >/dev/null
export HF_BENCH_PEPPER=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
export HF_BENCH_TOKEN_KEY=ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=
# The full policy with a SQLite sink instead of the CSV file (the pipeline file is in target/).
sed -e '/^\[sink\]/,$d' -e 's#^path = "../../examples/data/#path = "../examples/data/#' \
    bench/policy/full.toml > target/bench-partition.toml
cat >> target/bench-partition.toml <<'EOF'
[sink]
type = "sqlite"
path = "bench-partition/out.db"
table = "leads"
mode = "upsert"
EOF

# best_of LABEL ARGS…: the best of three runs on CPU 0, each into a new database; prints the
# source's records per second of wall time and per second of CPU time (user + system: the
# SQLite sink's waits for the disk are not the hash's cost).
best_of() {
  local label=$1; shift
  local best="" cpu=""
  for _ in 1 2 3; do
    rm -f target/bench-partition/*.db
    /usr/bin/time -f '%e %U %S' -o target/bench-time taskset -c 0 "$hf" run target/bench-partition.toml --workers 1 "$@" >/dev/null 2>&1 || [ $? -eq 3 ]
    read -r t u s <<<"$(tail -n 1 target/bench-time)"
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
    c=$(echo "$u + $s" | bc)
    if [ -z "$cpu" ] || [ "$(echo "$c < $cpu" | bc)" = 1 ]; then cpu=$c; fi
  done
  awk -v l="$label" -v n="$rows" -v t="$best" -v c="$cpu" 'BEGIN {
    printf "%-18s %8.0f source records/s (%.2fs)   %8.0f per CPU second (%.2fs)\n", l, n / t, t, n / c, c }'
}

best_of "unpartitioned"
best_of "--partition 0/1" --partition 0/1
for i in 0 1 2 3; do best_of "--partition $i/4" --partition "$i/4"; done
