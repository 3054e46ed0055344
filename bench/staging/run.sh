#!/usr/bin/env bash
# What staging costs: the same pipeline (HMAC of the email, CSV to CSV) with and without
# `staging = true`, on the same generated contacts; best of three runs each, input records/s,
# peak memory, and the staged bytes per record.
# usage: bench/staging/run.sh [ROWS]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-1000000}

cargo build --release --locked -q -p hushflow
hf=$PWD/target/release/hushflow
work=$PWD/target/bench-staging
rm -rf "$work"; mkdir -p "$work"
export HUSHFLOW_STATE_DIR=$work/state
"$hf" sample contacts --rows "$rows" --seed 3 --out "$work/contacts.csv" >/dev/null
export HF_BENCH_PEPPER=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=

for staging in false true; do
  cat > "$work/p-$staging.toml" <<TOML
[pipeline]
name = "bench-staging-$staging"
key = "id"
staging = $staging

[source]
type = "csv"
path = "contacts.csv"

[policy]
fields.id = "keep"
fields.email = { hash = "hmac-sha256", key = "env:HF_BENCH_PEPPER", normalize = "email" }
fields.first_name = "keep"
fields.last_name = "keep"
fields.phone = { mask = { keep_last = 4 } }
fields.country = "keep"
fields.birth_date = { generalize = "year" }
fields.notes = "keep"

[sink]
type = "csv"
path = "out-$staging.csv"
TOML
done

best_of() {
  best=""; peak=""
  for _ in 1 2 3; do
    /usr/bin/time -f '%e %M' -o "$work/time" "$hf" run "$@" >/dev/null 2>&1 || [ $? -eq 3 ]
    read -r t mem <<<"$(tail -n 1 "$work/time")"
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; peak=$mem; fi
  done
}

best_of "$work/p-false.toml"; plain=$best; plain_mem=$peak
best_of "$work/p-true.toml"; staged=$best; staged_mem=$peak
# One more staged run with the files kept, to measure what staging writes.
sed -i 's/^staging = true$/staging = true\nretention = 1/' "$work/p-true.toml"
"$hf" run "$work/p-true.toml" >/dev/null 2>&1 || [ $? -eq 3 ]
bytes=$(du -sb "$work/state/staging" | cut -f1)
cmp -s "$work/out-false.csv" "$work/out-true.csv" && same=identical || same=DIFFERENT
awk -v n="$rows" -v p="$plain" -v s="$staged" -v pm="$plain_mem" -v sm="$staged_mem" -v b="$bytes" -v same="$same" 'BEGIN {
  printf "without staging %9.0f records/s (%.2fs, %.0f MiB)\n", n / p, p, pm / 1024
  printf "with staging    %9.0f records/s (%.2fs, %.0f MiB)   %.2fx the unstaged rate\n", n / s, s, sm / 1024, p / s
  printf "staged: %.0f bytes/record (%d MB); outputs %s\n", b / n, b / 1e6, same }'
