#!/usr/bin/env bash
# HubSpot throughput through the fake server (crates/hushflow-test-support/src/hubspot.rs, run
# by the `fake_hubspot` example), in each direction, with the client-side rate limiter out of
# the way and then at its default (10 requests/s, HubSpot's limit for private apps):
#   - HubSpot → JSON lines: a full load (list pages of 100 contacts);
#   - JSON lines → HubSpot: batch upserts of 100 on `email` into an empty account.
# Prism is not in the path here (the tests use it; here it would be what is measured).
# This measures hushflow's side and the fake, on loopback: real HubSpot answers in 100-300 ms
# a request, so against it the limiter and the latency, not hushflow, set the pace.
# usage: bench/hubspot/run.sh [ROWS] [LIMITED_ROWS]   (defaults 100000 and 10000)
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-100000}
limited=${2:-10000}

cargo build --release --locked -q -p hushflow
cargo build --release --locked -q -p hushflow-test-support --example fake_hubspot
hf=$PWD/target/release/hushflow
fake=$PWD/target/release/examples/fake_hubspot
work=$PWD/target/bench-hubspot
rm -rf "$work"; mkdir -p "$work"
export HUSHFLOW_STATE_DIR=$work/state
export HF_BENCH_HUBSPOT=pat-na1-bench-0000-token

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# start_fake CONTACTS: starts a fake with CONTACTS contacts, sets $url.
start_fake() {
  local out=$work/fake-$RANDOM.url
  "$fake" "$HF_BENCH_HUBSPOT" "$1" > "$out" &
  pids+=($!)
  for _ in $(seq 1 600); do [ -s "$out" ] && break; sleep 0.1; done
  url=$(head -n 1 "$out")
}

# seconds COMMAND…: wall time of one run (exit 3, partial, counts as done).
seconds() {
  local t0 t1
  t0=$(date +%s.%N); "$@" >"$work/last.log" 2>&1 || [ $? -eq 3 ] || { cat "$work/last.log"; exit 1; }; t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}

rate() { echo "scale=0; $1 / $2" | bc; }

# direction ROWS RPS LABEL: one run each way; prints a line per direction.
direction() {
  local n=$1 rps=$2 label=$3 name
  name=$(echo "$label" | tr -c 'a-z0-9\n' '-')
  start_fake "$n"
  cat > "$work/in-$name.toml" <<TOML
[pipeline]
name = "bench-hubspot-in-$name"
key = "email"

[source]
type = "hubspot"
token = "env:HF_BENCH_HUBSPOT"
base_url = "$url"
requests_per_second = $rps

[policy]
fields.id = "drop"
fields.email = "keep"
fields.firstname = "keep"
fields.lastname = "keep"
fields.company = "keep"

[sink]
type = "jsonl"
path = "contacts-$name.jsonl"
TOML
  local s; s=$(seconds "$hf" run "$work/in-$name.toml") || exit 1
  local got; got=$(wc -l < "$work/contacts-$name.jsonl")
  printf '%-34s %8d contacts %8.2f s %9s contacts/s\n' "HubSpot -> jsonl ($label)" "$got" "$s" "$(rate "$got" "$s")"

  start_fake 0
  cat > "$work/out-$name.toml" <<TOML
[pipeline]
name = "bench-hubspot-out-$name"
key = "email"

[source]
type = "jsonl"
path = "contacts-$name.jsonl"

[policy]
fields.email = "keep"
fields.firstname = "keep"
fields.lastname = "keep"
fields.company = "keep"

[sink]
type = "hubspot"
token = "env:HF_BENCH_HUBSPOT"
base_url = "$url"
id_property = "email"
requests_per_second = $rps
TOML
  s=$(seconds "$hf" run "$work/out-$name.toml") || exit 1
  printf '%-34s %8d contacts %8.2f s %9s contacts/s\n' "jsonl -> HubSpot ($label)" "$got" "$s" "$(rate "$got" "$s")"
}

echo "hushflow $("$hf" --version | awk '{print $2}'), $(nproc) cores, fake HubSpot on loopback"
direction "$rows" 100000 "no limiter"
direction "$limited" 10 "limiter 10 req/s"
