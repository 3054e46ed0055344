#!/usr/bin/env bash
# Apache Airflow's real scheduler beside hushflow's, on the same two DAG shapes: a wide DAG of W
# independent empty tasks and a chain of C (each waits for the one before). Airflow 3.3.2 runs
# as deployed: `airflow scheduler`, `airflow dag-processor` and `airflow api-server --apps
# execution`, the LocalExecutor with AIRFLOW__CORE__PARALLELISM=2, its metadata in SQLite;
# hushflow runs `hushflow scheduler --parallelism 2` on its embedded SQLite store. Both sides are
# timed from their metadata: a run's start to its end (tasks/s), and in the chain the gap from
# one task's end to the next one's start (task-to-task latency).
# Usage: [ONLY=airflow|hushflow] [HUSHFLOW_BIN=…] bench/airflow/run.sh [W] [C]     (defaults 200, 50). Not a
# test: it prints figures.
set -euo pipefail
cd "$(dirname "$0")/../.."
W="${1:-200}"
C="${2:-50}"
root=$PWD
# HUSHFLOW_BIN: a release binary built already (else this builds one).
hf="${HUSHFLOW_BIN:-$root/target/release/hushflow}"
[ "${ONLY:-}" = airflow ] || [ -n "${HUSHFLOW_BIN:-}" ] || cargo build --release --locked -q -p hushflow
venv="$root/.tools/airflow-venv"
if [ ! -x "$venv/bin/airflow" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check uv
  "$venv/bin/uv" pip install --quiet --python "$venv/bin/python" apache-airflow==3.3.2
fi
af="$venv/bin/airflow"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export AIRFLOW_HOME="$work/airflow"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__PARALLELISM=2
export AIRFLOW__CORE__DAGS_FOLDER="$work/dags"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$port/execution/"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=5
mkdir -p "$work/dags" "$work/hf"

cat > "$work/dags/bench_shapes.py" <<PY
import datetime
from airflow.sdk import DAG, chain
from airflow.providers.standard.operators.empty import EmptyOperator

start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
with DAG("wide", schedule=None, start_date=start, catchup=False, max_active_tasks=$W):
    for i in range($W):
        EmptyOperator(task_id=f"t{i}")
with DAG("chain", schedule=None, start_date=start, catchup=False):
    chain(*[EmptyOperator(task_id=f"t{i}") for i in range($C)])
PY

if [ "${ONLY:-}" != hushflow ]; then
echo "== Apache Airflow 3.3.2: scheduler + dag-processor + api-server --apps execution, LocalExecutor, parallelism 2, SQLite"
"$af" db migrate >/dev/null 2>&1
"$af" api-server --apps execution -H 127.0.0.1 -p "$port" >"$work/api.log" 2>&1 & pids+=($!)
"$af" dag-processor >"$work/dag-processor.log" 2>&1 & pids+=($!)
"$af" scheduler >"$work/scheduler.log" 2>&1 & pids+=($!)
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$port/execution/health" >/dev/null 2>&1 && break
  sleep 1
done
# Parsed by the dag-processor: both DAGs in the metadata database.
for _ in $(seq 1 120); do
  n=$(python3 -c "import sqlite3; print(sqlite3.connect('$AIRFLOW_HOME/airflow.db').execute(\"select count(*) from dag where dag_id in ('wide','chain')\").fetchone()[0])" 2>/dev/null || echo 0)
  [ "$n" = 2 ] && break
  sleep 1
done

# Triggers DAG $1 and waits until its run ends; prints the run id.
airflow_run() {
  local dag=$1 run_id="bench__$1"
  "$af" dags trigger "$dag" --run-id "$run_id" >/dev/null 2>&1
  for _ in $(seq 1 600); do
    state=$(python3 -c "import sqlite3; r=sqlite3.connect('$AIRFLOW_HOME/airflow.db').execute(\"select state from dag_run where run_id='$run_id'\").fetchone(); print(r[0] if r else '')")
    case "$state" in success) break ;; failed) echo "airflow run $dag failed" >&2; exit 1 ;; esac
    sleep 0.5
  done
  echo "$run_id"
}

# Figures from Airflow's metadata: "label tasks/s latency".
airflow_figures() {
  python3 - "$AIRFLOW_HOME/airflow.db" "$1" "$2" "$3" <<'PY'
import sqlite3, sys, datetime
db, dag, run_id, label = sys.argv[1:]
c = sqlite3.connect(db)
p = lambda s: datetime.datetime.fromisoformat(s)
start, end = map(p, c.execute("select start_date, end_date from dag_run where dag_id=? and run_id=?", (dag, run_id)).fetchone())
tis = [(p(s), p(e), t) for s, e, t in c.execute(
    "select start_date, end_date, task_id from task_instance where dag_id=? and run_id=? and state='success'", (dag, run_id))]
n = len(tis)
secs = (end - start).total_seconds()
line = f"airflow  {label}: {n} tasks in {secs:.2f} s = {n / secs:.2f} tasks/s"
if dag == "chain":
    tis.sort(key=lambda t: int(t[2][1:]))
    gaps = [(b[0] - a[1]).total_seconds() for a, b in zip(tis, tis[1:])]
    line += f"; task-to-task {1000 * sum(gaps) / len(gaps):.0f} ms mean, {1000 * sorted(gaps)[len(gaps) // 2]:.0f} ms median"
print(line)
PY
}

airflow_figures wide "$(airflow_run wide)" "wide, $W EmptyOperators"
airflow_figures chain "$(airflow_run chain)" "chain, $C EmptyOperators"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
fi
[ "${ONLY:-}" = airflow ] && exit 0

echo "== hushflow: scheduler --parallelism 2, embedded SQLite"
hf_dag() { # name count chain
  {
    echo "[pipeline]"; echo "name = \"$1\""
    for i in $(seq 0 $(($2 - 1))); do
      echo "[[task]]"; echo "name = \"t$i\""; echo 'type = "empty"'
      if [ "$3" = 1 ] && [ "$i" -gt 0 ]; then echo "depends_on = [\"t$((i - 1))\"]"; fi
    done
  } > "$work/hf/$1.toml"
}
hf_dag wide "$W" 0
hf_dag chain "$C" 1
export HUSHFLOW_STATE_DIR="$work/hf/state"
for shape in wide chain; do
  "$hf" trigger "$work/hf/$shape.toml" >/dev/null 2>&1
  "$hf" scheduler --pipelines "$work/none" --parallelism 2 --until-idle --tick 100ms --poll 5ms >/dev/null 2>&1
  "$hf" runs "$shape" --json --limit 1 > "$work/hf/$shape.run"
  run=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["run"])' "$work/hf/$shape.run")
  "$hf" tasks "$run" --json > "$work/hf/$shape.tasks"
  python3 - "$work/hf/$shape.run" "$work/hf/$shape.tasks" "$shape" <<'PY'
import json, sys
# hushflow's times are to the second; its durations to the millisecond.
run = json.loads(open(sys.argv[1]).readline())
tasks = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
assert run["state"] == "success", run
secs = run["duration_seconds"]
n = len(tasks)
line = f"hushflow {sys.argv[3]}, {n} empty tasks: {n} tasks in {secs:.3f} s = {n / secs:,.0f} tasks/s"
if sys.argv[3] == "chain":
    # The run's time not spent inside a task, per step of the chain.
    gap = (secs - sum(t["duration_seconds"] for t in tasks)) / (n - 1)
    line += f"; task-to-task {1000 * gap:.1f} ms mean"
print(line)
PY
done
