#!/usr/bin/env bash
# `hushflow serve` under load: CLIENTS concurrent API clients (default 200), each with its own
# keep-alive connection, read for SECONDS (default 30) on loopback, round-robin over the API's
# read routes, with an Admin token; the server on the embedded SQLite store, after a real run.
# Prints the request rate, errors, and p50/p90/p99/max per route (docs/performance.md).
# Usage: bench/serve/run.sh [CLIENTS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
CLIENTS="${1:-200}"
SECONDS_="${2:-30}"
# PROFILE=debug measures the debug build (no release build needed; much slower).
PROFILE="${PROFILE:-release}"
if [ "$PROFILE" = release ]; then
  cargo build --release --locked -q -p hushflow -p hushflow-server --example load
else
  cargo build --locked -q -p hushflow -p hushflow-server --example load
fi
hf="$PWD/target/$PROFILE/hushflow"
load="$PWD/target/$PROFILE/examples/load"
work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
export HUSHFLOW_STATE_DIR="$work/state"
cd "$work"

# A pipeline with one sync task, run once, so runs, tasks, a log and a quarantine exist.
mkdir -p data
python3 -c '
print("id,email,notes")
for i in range(1, 1001): print(f"{i},user{i}@example.com,note {i}")
print("1001,short")' > data/contacts.csv
cat > nightly.toml <<'TOML'
[pipeline]
name = "nightly"
key = "id"

[[task]]
name = "extract"
source = { type = "csv", path = "data/contacts.csv" }
policy = { fields = { id = "keep", email = { hash = "hmac-sha256", key = "keyring:pepper", normalize = "email" }, notes = "drop" } }
sink = { type = "jsonl", path = "out/leads.jsonl" }
TOML
"$hf" keys create pepper --purpose hash >/dev/null 2>&1
"$hf" trigger nightly.toml --wait >/dev/null 2>&1 || true
token=$("$hf" tokens create --name bench --role admin --expires 1d 2>/dev/null | grep -o 'hf_[A-Za-z0-9_-]*' | head -n 1)

"$hf" serve --addr 127.0.0.1:0 2> serve.log &
server=$!
for _ in $(seq 1 100); do grep -q "dashboard at" serve.log && break; sleep 0.1; done
base=$(grep -o 'http://127.0.0.1:[0-9]*' serve.log | head -n 1)
echo "== $CLIENTS clients for $SECONDS_ s against $base ($(nproc) cores, client and server on the same machine)"
"$load" "$base" "$token" "$CLIENTS" "$SECONDS_" \
  /api/v1/pipelines /api/v1/runs /api/v1/runs/1/tasks /api/v1/runs/1/tasks/extract/log /api/v1/audit/verify
