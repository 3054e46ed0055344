//! Airflow: `hushflow airflow export` writes valid Python whatever the names and paths hold, and
//! the exported DAG runs on real Apache Airflow 3.3.2 with the hushflow-airflow provider (the
//! venv `scripts/test.sh` makes in `.tools/airflow-venv`): its sink holds what hushflow's own
//! scheduler writes, the audit log names the Airflow task try with the same counts, and a secret
//! given through an Airflow connection reaches no task log file, XCom, process argv or output.
//! Each test has its own AIRFLOW_HOME.

use crate::common::*;
use hushflow_test_support::airflow;
use hushflow_test_support::prism::workspace_root;
use hushflow_test_support::service::Service;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// base64 of the 32 bytes `canary-pepper-0123456789abcdefXY`: the HMAC key, given to Airflow
/// as a connection only.
const CANARY: &str = "Y2FuYXJ5LXBlcHBlci0wMTIzNDU2Nzg5YWJjZGVmWFk=";
const CANARY_BYTES: &str = "canary-pepper-0123456789abcdefXY";

const DAG_NAME: &str = "leads_af";

/// Three tasks: a sync into staging (templated by the run's date), a sync from staging into
/// SQLite, and an empty join; a schedule in a time zone, retries, a timeout and a pool.
const PIPELINE: &str = r#"
[pipeline]
name = "leads_af"
key = "id"
schedule = "0 2 * * *"
timezone = "Europe/Berlin"
start_date = "2026-11-01"
retries = 1
retry_delay = "5s"

[pools]
crm = 2

[[task]]
name = "extract"
source = { type = "csv", path = "data/contacts.csv" }
policy = { fields = { id = "keep", email = { hash = "hmac-sha256", key = "env:PEPPER", normalize = "email" }, country = "keep" } }
sink = { type = "jsonl", path = "staging/leads-{{ ds }}.jsonl" }
pool = "crm"
timeout = "10m"
retries = 3
retry_delay = "30s"
max_retry_delay = "10m"

[[task]]
name = "load"
depends_on = ["extract"]
source = { type = "jsonl", path = "staging/leads-{{ ds }}.jsonl" }
policy = { fields = { id = "keep", email = "keep", country = "keep" } }
sink = { type = "sqlite", path = "out/leads.db", table = "leads", mode = "upsert" }

[[task]]
name = "done"
type = "empty"
depends_on = ["load"]
trigger_rule = "all_done"
"#;

/// A workspace with sample contacts and the pipeline.
fn workspace(rows: u64) -> Workspace {
    let ws = Workspace::new();
    ws.ok(
        &[
            "sample",
            "contacts",
            "--rows",
            &rows.to_string(),
            "--out",
            "data/contacts.csv",
        ],
        0,
    );
    ws.write("p.toml", PIPELINE);
    ws
}

fn python() -> String {
    std::env::var("HUSHFLOW_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Parses `file` as Python (without running it).
fn assert_python_parses(file: &Path) {
    let out = Command::new(python())
        .args([
            "-c",
            "import ast, sys; ast.parse(open(sys.argv[1], encoding='utf-8').read())",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} is not valid Python: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn export_writes_python_that_parses_and_escapes_every_name() {
    let ws = workspace(10);
    let r = ws.ok(&["airflow", "export", "p.toml", "--out", "dags"], 0);
    assert!(r.stdout.contains("dags/leads_af.py"), "{}", r.stdout);
    assert!(r.stdout.contains("airflow pools set crm 2"), "{}", r.stdout);
    let file = ws.path("dags/leads_af.py");
    assert_python_parses(&file);
    let text = std::fs::read_to_string(&file).unwrap();
    for wanted in [
        "CronDataIntervalTimetable(\"0 2 * * *\", timezone=\"Europe/Berlin\")",
        "pendulum.parse(\"2026-10-31T23:00:00Z\").in_timezone(\"Europe/Berlin\")",
        "hushflow_task=\"extract\"",
        "retries=3",
        "retry_delay=datetime.timedelta(seconds=30)",
        "max_retry_delay=datetime.timedelta(seconds=600)",
        "execution_timeout=datetime.timedelta(seconds=600)",
        "pool=\"crm\"",
        "trigger_rule=\"all_done\"",
        "tasks[\"extract\"] >> tasks[\"load\"]",
        "tasks[\"load\"] >> tasks[\"done\"]",
    ] {
        assert!(text.contains(wanted), "missing {wanted:?} in:\n{text}");
    }

    // What a hostile path or connection id holds stays inside a string literal.
    let hostile = "/x/\"); import os; os.system(\"touch pwned\") #\n'''\\";
    ws.ok(
        &[
            "airflow",
            "export",
            "p.toml",
            "--out",
            "dags2",
            "--pipeline-path",
            hostile,
            "--conn-id",
            "a\"b\nc",
        ],
        0,
    );
    let file = ws.path("dags2/leads_af.py");
    assert_python_parses(&file);
    let out = Command::new(python())
        .args([
            "-c",
            "import ast, sys\n\
             tree = ast.parse(open(sys.argv[1], encoding='utf-8').read())\n\
             consts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]\n\
             calls = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}\n\
             assert sys.argv[2] in consts, 'the path is not one string'\n\
             assert 'a\"b\\nc' in consts, 'the conn id is not one string'\n\
             assert 'system' not in calls, calls\n",
        ])
        .arg(&file)
        .arg(hostile)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A DAG of one sync: one task named `sync`, unscheduled.
    ws.write(
        "one.toml",
        pipeline(SQLITE_SINK).replace("test-pipeline", "one-sync"),
    );
    ws.ok(&["airflow", "export", "one.toml", "--out", "dags3"], 0);
    let text = std::fs::read_to_string(ws.path("dags3/one-sync.py")).unwrap();
    assert!(text.contains("schedule=None"), "{text}");
    assert!(text.contains("hushflow_task=\"sync\""), "{text}");
    assert_python_parses(&ws.path("dags3/one-sync.py"));
}

#[test]
fn run_task_fills_templates_from_the_given_interval_and_names_the_airflow_actor() {
    let ws = workspace(50);
    let interval = [
        "--data-interval-start",
        "2026-12-01T00:00:00+00:00",
        "--data-interval-end",
        "2026-12-02T00:00:00+00:00",
    ];
    // Without the interval, a templated file says what to give.
    let r = ws.run_with(
        &["run", "p.toml", "--task", "extract"],
        &[("PEPPER", CANARY)],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--data-interval-start"), "{}", r.stderr);
    // A DAG file needs --task; an unknown one is named with the choices.
    let r = ws.run_with(&["run", "p.toml"], &[("PEPPER", CANARY)]);
    assert_eq!(r.code, 2, "{}", r.all());
    let mut args = vec!["run", "p.toml", "--task", "nope"];
    args.extend(interval);
    let r = ws.run_with(&args, &[("PEPPER", CANARY)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("extract, load, done"), "{}", r.stderr);
    // A run id that could break out of a string is refused.
    let mut args = vec!["run", "p.toml", "--task", "extract", "--run-id", "x'\""];
    args.extend(interval);
    let r = ws.run_with(&args, &[("PEPPER", CANARY)]);
    assert_eq!(r.code, 2, "{}", r.all());

    let airflow_env = [
        ("PEPPER", CANARY),
        ("HUSHFLOW_ACTOR", "airflow-task"),
        ("AIRFLOW_CTX_DAG_ID", "leads_af"),
        ("AIRFLOW_CTX_TASK_ID", "extract"),
        (
            "AIRFLOW_CTX_DAG_RUN_ID",
            "scheduled__2026-12-01T00:00:00+00:00",
        ),
        ("AIRFLOW_CTX_TRY_NUMBER", "2"),
    ];
    let mut args = vec!["run", "p.toml", "--task", "extract", "--json"];
    args.extend(interval);
    let r = ws.run_with(&args, &airflow_env);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(ws.path("staging/leads-2026-12-01.jsonl").is_file());
    let summary: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(summary["counts"]["read"], 50);
    assert!(!r.all().contains(CANARY));
    // The actor variable without Airflow's context is refused, not ignored.
    let r = ws.run_with(&args, &airflow_env[..3]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("AIRFLOW_CTX_TASK_ID"), "{}", r.stderr);

    let mut args = vec!["run", "p.toml", "--task", "done", "--json"];
    args.extend(interval);
    let r = ws.run_with(&args, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("\"outcome\":\"success\""), "{}", r.stdout);

    let audit = audit_runs(&ws);
    let (actor, counts) = audit.get("leads_af.extract").unwrap();
    assert!(
        actor.starts_with(
            "airflow-task:leads_af.extract run_id=scheduled__2026-12-01T00:00:00+00:00 try=2 os_user="
        ),
        "{actor}"
    );
    assert_eq!(counts["read"], 50);
}

/// The newest `run` audit record of each pipeline: its actor and counts.
fn audit_runs(
    ws: &Workspace,
) -> std::collections::BTreeMap<String, (String, serde_json::Map<String, serde_json::Value>)> {
    let r = ws.ok(&["audit", "list", "--json"], 0);
    let mut runs = std::collections::BTreeMap::new();
    for line in r.stdout.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["action"] == "run" {
            runs.insert(
                v["pipeline"].as_str().unwrap().to_string(),
                (
                    v["actor"].as_str().unwrap().to_string(),
                    v["counts"].as_object().unwrap().clone(),
                ),
            );
        }
    }
    runs
}

/// The sink's rows, in key order.
fn sink_rows(ws: &Workspace) -> Vec<(String, Option<String>, Option<String>)> {
    let db = rusqlite::Connection::open(ws.path("out/leads.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT id, email, country FROM leads ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The same workspace run by hushflow's own scheduler (`trigger --wait`).
fn native(rows: u64) -> Workspace {
    let ws = workspace(rows);
    let r = ws.run_with(&["trigger", "p.toml", "--wait"], &[("PEPPER", CANARY)]);
    assert_eq!(r.code, 0, "{}", r.all());
    ws
}

/// A migrated Airflow metadata database, made once and copied into each test's AIRFLOW_HOME
/// (a migration takes about 20 s): cached under target/, per Airflow venv.
fn migrated_db(venv: &Path) -> PathBuf {
    let cache = workspace_root().join("target/airflow-test-db");
    let key = format!("{:x}", {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        venv.hash(&mut h);
        h.finish()
    });
    let db = cache.join(format!("{key}.db"));
    if db.is_file() {
        return db;
    }
    std::fs::create_dir_all(&cache).unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(venv.join("bin/airflow"))
        .args(["db", "migrate"])
        .env("AIRFLOW_HOME", home.path())
        .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "airflow db migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Renamed into place, so that a test in another process never copies half a file.
    let tmp = cache.join(format!("{key}.{}.tmp", std::process::id()));
    std::fs::copy(home.path().join("airflow.db"), &tmp).unwrap();
    std::fs::rename(&tmp, &db).unwrap();
    db
}

/// Airflow with its own AIRFLOW_HOME, the workspace's `dags/` as its DAG folder, and the
/// `hushflow_default` connection (the binary, the workspace's state directory, and PEPPER, the
/// canary, for the pipeline's `env:PEPPER`).
struct Airflow {
    venv: PathBuf,
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Airflow {
    fn new(test: &str, ws: &Workspace) -> Option<Airflow> {
        let venv = airflow::venv(test)?;
        let home = tempfile::tempdir().unwrap();
        std::fs::copy(migrated_db(&venv), home.path().join("airflow.db")).unwrap();
        let conn = serde_json::json!({
            "conn_type": "hushflow",
            "extra": {
                "binary": env!("CARGO_BIN_EXE_hushflow"),
                "state_dir": ws.state(),
                "env": { "PEPPER": CANARY },
            },
        });
        let path = format!(
            "{}:{}",
            venv.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let env = vec![
            ("AIRFLOW_HOME".into(), home.path().display().to_string()),
            ("AIRFLOW__CORE__LOAD_EXAMPLES".into(), "False".into()),
            (
                "AIRFLOW__CORE__DAGS_FOLDER".into(),
                ws.path("dags").display().to_string(),
            ),
            ("AIRFLOW_CONN_HUSHFLOW_DEFAULT".into(), conn.to_string()),
            ("PATH".into(), path),
        ];
        Some(Airflow { venv, home, env })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.venv.join("bin/airflow"));
        c.args(args)
            .env_remove("HUSHFLOW_STATE_DIR")
            .env_remove("PEPPER");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs `airflow ARGS`, asserting success; returns its output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "airflow {args:?} failed:\n{text}");
        text
    }
}

#[test]
fn airflow_lists_the_provider() {
    let ws = Workspace::new();
    let Some(af) = Airflow::new("airflow_lists_the_provider", &ws) else {
        return;
    };
    let out = af.ok(&["providers", "list", "-o", "json"]);
    assert!(out.contains("\"hushflow-airflow\""), "{out}");
}

#[test]
fn exported_dag_on_airflow_writes_what_a_native_run_writes() {
    let ws = workspace(300);
    let Some(af) = Airflow::new(
        "exported_dag_on_airflow_writes_what_a_native_run_writes",
        &ws,
    ) else {
        return;
    };
    ws.ok(&["airflow", "export", "p.toml", "--out", "dags"], 0);
    af.ok(&["dags", "test", DAG_NAME, "2026-12-01"]);
    let native = native(300);

    let rows = sink_rows(&ws);
    assert!(!rows.is_empty());
    assert_eq!(
        rows,
        sink_rows(&native),
        "Airflow's sink differs from hushflow's"
    );

    let ours = audit_runs(&ws);
    let theirs = audit_runs(&native);
    for task in ["extract", "load"] {
        let pipeline = format!("{DAG_NAME}.{task}");
        let (actor, counts) = ours.get(&pipeline).unwrap();
        assert!(
            actor.starts_with(&format!("airflow-task:{DAG_NAME}.{task} run_id=manual__"))
                && actor.contains(" try=1 os_user="),
            "{actor}"
        );
        assert_eq!(counts, &theirs.get(&pipeline).unwrap().1, "{pipeline}");
    }
}

/// Every process's argv, watched until `stop`: whether one held `needle`, and whether one was a
/// hushflow child running `--task` (so that the watch saw the children at all).
fn watch_argv(
    needle: &'static str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(bool, bool)> {
    std::thread::spawn(move || {
        let (mut leaked, mut saw_child) = (false, false);
        while !stop.load(Ordering::Relaxed) {
            for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                if let Ok(argv) = std::fs::read(entry.path().join("cmdline")) {
                    leaked |= contains(&argv, needle) || contains(&argv, CANARY_BYTES);
                    saw_child |= contains(&argv, "hushflow")
                        && contains(&argv, "--task")
                        && contains(&argv, "p.toml");
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        (leaked, saw_child)
    })
}

#[test]
fn a_secret_from_an_airflow_connection_reaches_no_log_xcom_argv_or_output() {
    let test = "a_secret_from_an_airflow_connection_reaches_no_log_xcom_argv_or_output";
    let ws = workspace(3000);
    let Some(mut af) = Airflow::new(test, &ws) else {
        return;
    };
    ws.ok(&["airflow", "export", "p.toml", "--out", "dags"], 0);
    let api = Service::airflow_execution_api(test, &af.venv, &af.env);
    af.env.push((
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL".into(),
        format!("{}/execution/", api.url()),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let watch = watch_argv(CANARY, Arc::clone(&stop));
    let out = af.ok(&["dags", "test", "--use-executor", DAG_NAME, "2026-12-01"]);
    stop.store(true, Ordering::Relaxed);
    let (leaked, saw_child) = watch.join().unwrap();
    drop(api);
    assert!(
        saw_child,
        "the argv watch never saw a hushflow task process"
    );
    assert!(!leaked, "the canary was in a process's argv");
    assert!(
        !out.contains(CANARY) && !out.contains(CANARY_BYTES),
        "the canary is in Airflow's output"
    );

    // Task log files exist (the executor wrote them) and hold hushflow's output, not the canary.
    let logs = ws.bytes_under(&af.home.path().join("logs"));
    let task_logs: Vec<_> = logs
        .iter()
        .filter(|(p, _)| p.to_string_lossy().contains("task_id="))
        .collect();
    assert!(
        task_logs.len() >= 3,
        "task logs: {:?}",
        task_logs.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    assert!(
        task_logs
            .iter()
            .any(|(_, b)| contains(b, "hushflow success"))
    );
    for (path, bytes) in &logs {
        assert!(
            !contains(bytes, CANARY) && !contains(bytes, CANARY_BYTES),
            "the canary is in {}",
            path.display()
        );
    }

    // XCom holds the counts, never the canary.
    let db = rusqlite::Connection::open(af.home.path().join("airflow.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT task_id, CAST(value AS TEXT) FROM xcom")
        .unwrap();
    let xcoms: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut read = None;
    for (task, value) in &xcoms {
        assert!(!value.contains(CANARY), "the canary is in {task}'s XCom");
        let counts: serde_json::Value = serde_json::from_str(value).unwrap();
        assert!(
            counts.as_object().unwrap().values().all(|v| v.is_u64()),
            "{value}"
        );
        if task == "extract" {
            read = counts["read"].as_u64();
        }
    }
    assert_eq!(read, Some(3000), "{xcoms:?}");

    // hushflow's own output and files: the audit log and the sink hold no canary either.
    for (path, bytes) in ws.bytes_under(ws.dir.path()) {
        assert!(
            !contains(&bytes, CANARY) && !contains(&bytes, CANARY_BYTES),
            "the canary is in {}",
            path.display()
        );
    }
    let (actor, _) = audit_runs(&ws).remove(&format!("{DAG_NAME}.load")).unwrap();
    assert!(
        actor.starts_with("airflow-task:leads_af.load run_id=manual__"),
        "{actor}"
    );
}

/// One sync into a SQLite table in `append` mode: a key written twice is an error there.
const MAPPED: &str = r#"
[pipeline]
name = "leads_mapped"
key = "id"

[source]
type = "csv"
path = "data/contacts.csv"

[policy]
fields.id = "keep"
fields.email = { hash = "hmac-sha256", key = "env:PEPPER", normalize = "email" }
fields.country = "keep"

[sink]
type = "sqlite"
path = "out/leads.db"
table = "leads"
mode = "append"
"#;

#[test]
fn a_dag_mapped_over_four_partitions_writes_what_one_native_run_writes() {
    let test = "a_dag_mapped_over_four_partitions_writes_what_one_native_run_writes";
    let ws = workspace(1000);
    ws.write("mapped.toml", MAPPED);
    let Some(af) = Airflow::new(test, &ws) else {
        return;
    };
    ws.ok(
        &[
            "airflow",
            "export",
            "mapped.toml",
            "--out",
            "dags",
            "--partitions",
            "4",
        ],
        0,
    );
    let text = std::fs::read_to_string(ws.path("dags/leads_mapped.py")).unwrap();
    assert!(
        text.contains(".expand(partition=[\"0/4\", \"1/4\", \"2/4\", \"3/4\"])"),
        "{text}"
    );
    af.ok(&["dags", "test", "leads_mapped", "2026-12-01"]);

    let native = workspace(1000);
    native.write("mapped.toml", MAPPED);
    let r = native.run_with(&["run", "mapped.toml"], &[("PEPPER", CANARY)]);
    assert_eq!(r.code, 0, "{}", r.all());

    // Append mode: a key in two partitions would have failed its task; the union is the whole.
    let rows = sink_rows(&ws);
    assert_eq!(rows.len(), 1000);
    assert_eq!(
        rows,
        sink_rows(&native),
        "the partitions' union differs from one run"
    );

    // One audit record per mapped task instance, whose counts add up to the native run's.
    let r = ws.ok(&["audit", "list", "--json"], 0);
    let mut map_indexes = Vec::new();
    let (mut read, mut written) = (0, 0);
    for line in r.stdout.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["action"] != "run" {
            continue;
        }
        let actor = v["actor"].as_str().unwrap();
        assert!(
            actor.starts_with("airflow-task:leads_mapped.sync run_id=manual__"),
            "{actor}"
        );
        let index = actor.split(" map_index=").nth(1).unwrap();
        map_indexes.push(index.split(' ').next().unwrap().to_string());
        read += v["counts"]["read"].as_u64().unwrap();
        written += v["counts"]["written"].as_u64().unwrap();
    }
    map_indexes.sort();
    assert_eq!(map_indexes, ["0", "1", "2", "3"]);
    let (_, theirs) = audit_runs(&native).remove("leads_mapped").unwrap();
    assert_eq!(read, theirs["read"].as_u64().unwrap());
    assert_eq!(written, theirs["written"].as_u64().unwrap());
}
