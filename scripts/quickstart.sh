#!/usr/bin/env bash
# The quickstart: builds hushflow, makes sample contacts and the demo key, validates and runs
# examples/quickstart.toml, and checks the audit log. Needs nothing but cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -q -p hushflow
hushflow=target/release/hushflow
export HUSHFLOW_STATE_DIR="${HUSHFLOW_STATE_DIR:-$PWD/.hushflow}"

"$hushflow" sample contacts --rows 100000 --seed 7 --format csv --out examples/data/contacts.csv
"$hushflow" keys create contacts-pepper --if-missing
echo
"$hushflow" validate examples/quickstart.toml
echo
status=0
"$hushflow" run examples/quickstart.toml || status=$?
# 3 means records were quarantined: the run finished and says where they are.
if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then exit "$status"; fi
echo
# The same data through a DAG of tasks, on the embedded metadata store (state/metadata.db).
"$hushflow" trigger examples/nightly.toml --wait
"$hushflow" runs --limit 3
echo
"$hushflow" audit verify
echo
echo "state (keyring, audit store, quarantine): $HUSHFLOW_STATE_DIR"
echo "look at the results:  sqlite3 examples/out/marketing.db 'select * from leads limit 5'"
echo "                      $hushflow audit list"
echo "                      $hushflow runs; $hushflow tasks RUN; $hushflow logs RUN load"
