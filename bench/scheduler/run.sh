#!/usr/bin/env bash
# Scheduling overhead: how many trivial tasks per second hushflow gets through.
#   1. one scheduler with its local pool on the embedded SQLite store: a wide DAG of N `empty`
#      tasks, and a chain of C `empty` tasks (each waits for the one before);
#   2. four worker processes and a scheduler on the machine's PostgreSQL (127.0.0.1:5432);
#   3. the same wide DAG of `sql` tasks (`SELECT 1` on SQLite), each try a child process, on
#      SQLite: the cost of process isolation per task.
#   4. with WITH_AIRFLOW=1: Apache Airflow 3.1 (installed into bench/scheduler/.venv-airflow)
#      running a DAG of A EmptyOperators with `airflow dags test` on SQLite, side by side with
#      hushflow on the same DAG shape.
# Usage: [WITH_AIRFLOW=1] bench/scheduler/run.sh [N] [C] [A]     (defaults 2000, 200, 50)
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-2000}"
C="${2:-200}"
A="${3:-50}"
cargo build --release --locked -q -p hushflow
hf="$PWD/target/release/hushflow"
work="$(mktemp -d)"
trap 'rm -rf "$work"; psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS hf_bench_sched WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

dag() { # name kind count chain
  local name=$1 kind=$2 count=$3 chain=$4
  {
    echo "[pipeline]"; echo "name = \"$name\""
    for i in $(seq 0 $((count - 1))); do
      echo "[[task]]"; echo "name = \"t$i\""; echo "type = \"$kind\""
      if [ "$kind" = sql ]; then echo 'database = "scratch.db"'; echo 'sql = "SELECT 1"'; fi
      if [ "$chain" = 1 ] && [ "$i" -gt 0 ]; then echo "depends_on = [\"t$((i - 1))\"]"; fi
    done
  } > "$work/$name.toml"
}

# The seconds from a run's creation to its end, from the metadata.
elapsed() { # args… (global flags)
  "$hf" "$@" runs --json --limit 1 | python3 -c '
import json, sys, datetime
r = json.loads(sys.stdin.readline())
assert r["state"] == "success", r
p = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
print((p(r["ended_at"]) - p(r["started_at"])).total_seconds())'
}

timed() { # label tasks command…
  local label=$1 tasks=$2; shift 2
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  t1=$(date +%s.%N)
  python3 -c "t=$t1-$t0; print(f'$label: {$tasks} tasks in {t:.2f} s = {$tasks/t:,.0f} tasks/s')"
}

echo "== embedded SQLite, one scheduler, local pool of 2"
dag wide empty "$N" 0
dag chain empty "$C" 1
export HUSHFLOW_STATE_DIR="$work/state-sqlite"
"$hf" trigger "$work/wide.toml" >/dev/null 2>&1
timed "wide, $N empty tasks" "$N" "$hf" scheduler --pipelines "$work/none" --parallelism 2 --until-idle --tick 100ms --poll 5ms
"$hf" trigger "$work/chain.toml" >/dev/null 2>&1
timed "chain, $C empty tasks in sequence" "$C" "$hf" scheduler --pipelines "$work/none" --parallelism 2 --until-idle --tick 100ms --poll 5ms

echo "== PostgreSQL metadata, four workers (one slot each) and a scheduler"
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS hf_bench_sched WITH (FORCE)" -c "CREATE DATABASE hf_bench_sched"
export HF_META="postgres://postgres@127.0.0.1:5432/hf_bench_sched"
export HUSHFLOW_STATE_DIR="$work/state-pg"
m=(--metadata env:HF_META)
"$hf" "${m[@]}" db migrate >/dev/null
"$hf" "${m[@]}" trigger "$work/wide.toml" >/dev/null 2>&1
t0=$(date +%s.%N)
pids=()
for _ in 1 2 3 4; do
  "$hf" "${m[@]}" worker --concurrency 1 --until-idle --poll 5ms >/dev/null 2>&1 & pids+=($!)
done
"$hf" "${m[@]}" scheduler --pipelines "$work/none" --parallelism 0 --until-idle --tick 100ms >/dev/null 2>&1
wait "${pids[@]}"
t1=$(date +%s.%N)
python3 -c "t=$t1-$t0; print(f'wide, $N empty tasks: {t:.2f} s = {$N/t:,.0f} tasks/s (4 workers)')"

echo "== embedded SQLite, $((N / 4)) sql tasks (each try a child process)"
dag wsql sql "$((N / 4))" 0
export HUSHFLOW_STATE_DIR="$work/state-sql"
"$hf" trigger "$work/wsql.toml" >/dev/null 2>&1
timed "wide, $((N / 4)) sql tasks" "$((N / 4))" "$hf" scheduler --pipelines "$work/none" --parallelism 2 --until-idle --tick 100ms --poll 5ms

if [ "${WITH_AIRFLOW:-0}" = 1 ]; then
  echo "== Apache Airflow (airflow dags test, SQLite) vs hushflow, $A empty tasks"
  venv="$PWD/bench/scheduler/.venv-airflow"
  if [ ! -x "$venv/bin/airflow" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "apache-airflow==3.1.*"
  fi
  export AIRFLOW_HOME="$work/airflow" AIRFLOW__CORE__LOAD_EXAMPLES=False
  mkdir -p "$AIRFLOW_HOME/dags"
  cat > "$AIRFLOW_HOME/dags/wide.py" <<PY
import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
with DAG("wide", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False):
    for i in range($A):
        EmptyOperator(task_id=f"t{i}")
PY
  "$venv/bin/airflow" db migrate >/dev/null 2>&1
  t0=$(date +%s.%N)
  "$venv/bin/airflow" dags test wide >/dev/null 2>&1
  t1=$(date +%s.%N)
  dag awide empty "$A" 0
  export HUSHFLOW_STATE_DIR="$work/state-af"
  "$hf" trigger "$work/awide.toml" >/dev/null 2>&1
  t2=$(date +%s.%N)
  "$hf" scheduler --pipelines "$work/none" --parallelism 2 --until-idle --tick 100ms --poll 5ms >/dev/null 2>&1
  t3=$(date +%s.%N)
  python3 -c "
af = $A / ($t1 - $t0); hf = $A / ($t3 - $t2)
print(f'airflow dags test: {$A} tasks in {$t1 - $t0:.1f} s = {af:.2f} tasks/s')
print(f'hushflow:          {$A} tasks in {$t3 - $t2:.2f} s = {hf:,.0f} tasks/s ({hf / af:,.0f}x)')"
fi
