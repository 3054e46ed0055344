//! Orchestration through the real binary: DAG runs on the embedded SQLite store, retries and
//! timeouts of real `sql` tasks on PostgreSQL, failure webhooks, three worker processes sharing
//! a PostgreSQL metadata store with one SIGKILLed mid-task, and a scheduler killed mid-run and
//! started again. Assertions are on the metadata and on the sinks' contents.

use crate::common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Contacts whose emails are canaries: none may reach the metadata store or any output.
fn canary_csv(ws: &Workspace, rel: &str, from: u64, rows: u64) {
    let mut text = String::from("id,email,notes\n");
    for i in from..from + rows {
        text.push_str(&format!("{i},canary-{i}@leak.example,private note {i}\n"));
    }
    ws.write(rel, text);
}

fn spawn(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut c = ws.command();
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().expect("spawn hushflow")
}

fn finish(mut child: Child) -> (String, String) {
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut out).unwrap();
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    let _ = child.wait();
    (out, err)
}

fn sigterm(child: &Child) {
    unsafe_kill(child.id(), 15);
}

fn sigkill(child: &Child) {
    unsafe_kill(child.id(), 9);
}

fn unsafe_kill(pid: u32, signal: i32) {
    std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
}

const NIGHTLY: &str = r#"
[pipeline]
name = "nightly"
key = "id"
schedule = "@daily"

[[task]]
name = "extract"
source = { type = "csv", path = "data/contacts.csv" }
policy = { fields = { id = "keep", email = { hash = "hmac-sha256", key = "keyring:pepper", normalize = "email" } } }
sink = { type = "jsonl", path = "staging/leads-{{ ds }}.jsonl" }

[[task]]
name = "load"
depends_on = ["extract"]
source = { type = "jsonl", path = "staging/leads-{{ ds }}.jsonl" }
policy = { fields = { id = "keep", email = "keep" } }
sink = { type = "sqlite", path = "out/marketing.db", table = "leads", mode = "upsert" }

[[task]]
name = "count"
type = "sql"
depends_on = ["load"]
database = "out/marketing.db"
sql = "CREATE TABLE IF NOT EXISTS loads (run TEXT, n INTEGER); INSERT INTO loads SELECT '{{ conf.label }}', COUNT(*) FROM leads;"

[[task]]
name = "on_failure"
type = "empty"
depends_on = ["load"]
trigger_rule = "one_failed"
"#;

#[test]
fn a_dag_runs_on_the_embedded_store_and_keeps_no_personal_data() {
    let ws = Workspace::new();
    canary_csv(&ws, "data/contacts.csv", 1, 500);
    let file = ws.write("nightly.toml", NIGHTLY);
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    let v = ws.ok(&["validate", file.to_str().unwrap()], 0);
    assert!(
        v.stdout
            .contains("task      load [sync] after extract (all_success)"),
        "{}",
        v.stdout
    );
    assert!(v.stdout.contains("schedule  @daily in UTC"), "{}", v.stdout);
    // `run` is for one sync; a DAG is triggered.
    let r = ws.ok(&["run", file.to_str().unwrap()], 2);
    assert!(r.stderr.contains("hushflow trigger"), "{}", r.stderr);
    let r = ws.ok(
        &["trigger", "nightly.toml", "--conf", "label=first", "--wait"],
        0,
    );
    assert!(r.stdout.contains("extract"), "{}", r.stdout);

    let runs = json_lines(&ws.ok(&["runs", "--json"], 0).stdout);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["state"], "success");
    assert_eq!(runs[0]["run_type"], "manual");
    let tasks = json_lines(&ws.ok(&["tasks", "1", "--json"], 0).stdout);
    let state = |name: &str| {
        tasks
            .iter()
            .find(|t| t["task"] == name)
            .map(|t| t["state"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(state("extract"), "success");
    assert_eq!(state("load"), "success");
    assert_eq!(state("count"), "success");
    assert_eq!(state("on_failure"), "skipped");
    let load = tasks.iter().find(|t| t["task"] == "load").unwrap();
    assert_eq!(load["records_read"], 500);
    assert_eq!(load["records_written"], 500);

    // Templates: the staging file is named after the run's logical date, conf reached the SQL.
    let staged: Vec<String> = std::fs::read_dir(ws.path("staging"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(staged.len(), 1);
    assert!(
        staged[0].starts_with("leads-20") && staged[0].ends_with(".jsonl"),
        "{staged:?}"
    );
    let db = rusqlite::Connection::open(ws.path("out/marketing.db")).unwrap();
    let (label, n): (String, i64) = db
        .query_row("SELECT run, n FROM loads", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((label.as_str(), n), ("first", 500));

    let logs = ws.ok(&["logs", "1", "load"], 0);
    assert!(
        logs.stdout.contains("read 500, written 500"),
        "{}",
        logs.stdout
    );
    // The metadata store, its logs and every output hold no email (hashed before they leave).
    for (path, bytes) in ws.bytes_under(&ws.state()) {
        assert!(
            !contains(&bytes, "@leak.example"),
            "{} holds an email",
            path.display()
        );
        assert!(
            !contains(&bytes, "private note"),
            "{} holds a note",
            path.display()
        );
    }
    assert!(!logs.all().contains("@leak.example"));
    let meta = std::fs::metadata(ws.state().join("metadata.db")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // Pausing is recorded in the audit log; a paused pipeline's manual run waits.
    ws.ok(&["pause", "nightly"], 0);
    let audit = ws.ok(&["audit", "list", "--json"], 0).stdout;
    assert!(
        audit.contains("\"pause\"") && audit.contains("\"trigger\""),
        "{audit}"
    );
    ws.ok(&["unpause", "nightly"], 0);
    // Retention: nothing is old enough yet; with a zero age the finished run goes.
    let p = ws.ok(&["db", "prune", "--older-than", "90d"], 0);
    assert!(p.stdout.contains("deleted 0 run(s)"), "{}", p.stdout);
    let p = ws.ok(&["db", "prune", "--older-than", "0s"], 0);
    assert!(
        p.stdout.contains("deleted 1 run(s), 4 task(s) and 3 tries"),
        "{}",
        p.stdout
    );
    assert!(json_lines(&ws.ok(&["runs", "--json"], 0).stdout).is_empty());
    assert!(
        audit.contains("\"sql\""),
        "sql tasks are audited like syncs: {audit}"
    );
    // A one-sync file with templates is for the scheduler, not `run`.
    ws.write(
        "templated.toml",
        "[pipeline]\nname = \"t\"\nkey = \"id\"\n[source]\ntype = \"csv\"\npath = \"data/contacts.csv\"\n\
         [policy]\nfields.id = \"keep\"\n[sink]\ntype = \"csv\"\npath = \"out/{{ ds }}.csv\"\n",
    );
    let r = ws.ok(&["run", "templated.toml"], 2);
    assert!(r.stderr.contains("hushflow trigger"), "{}", r.stderr);
}

/// `trigger NAME` of a pipeline whose file fails validation now runs the stored definition
/// and says so, on stderr and in `--json`, naming the file and its first error, no value.
#[test]
fn a_trigger_of_a_pipeline_whose_file_fails_validation_warns() {
    let ws = Workspace::new();
    let good = "[pipeline]\nname = \"e\"\n[[task]]\nname = \"a\"\ntype = \"empty\"\n";
    ws.write("e.toml", good);
    let r = ws.ok(&["trigger", "e.toml", "--json"], 0);
    let t: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(
        (t["definition"].as_str(), t["run"].as_i64()),
        (Some("file"), Some(1))
    );
    assert!(t["warning"].is_null());
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);

    ws.write("e.toml", format!("{good}colour = \"blue-canary\"\n"));
    let r = ws.ok(&["trigger", "e"], 0);
    assert!(
        r.stderr
            .contains("warning: e: its file fails validation now"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("e.toml:6:"), "{}", r.stderr);
    assert!(r.stdout.contains("created run 2"), "{}", r.stdout);
    let r = ws.ok(&["trigger", "e", "--json"], 0);
    let t: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(t["definition"], "stored_file_invalid");
    assert!(t["warning"].as_str().unwrap().contains("colour"), "{t}");
    assert!(!r.all().contains("canary"), "{}", r.all());
}

#[test]
fn bad_dags_are_refused_with_the_line() {
    let ws = Workspace::new();
    ws.write(
        "cycle.toml",
        "[pipeline]\nname = \"c\"\n[[task]]\nname = \"a\"\ntype = \"empty\"\ndepends_on = [\"b\"]\n\
         [[task]]\nname = \"b\"\ntype = \"empty\"\ndepends_on = [\"a\"]\n",
    );
    let r = ws.ok(&["trigger", "cycle.toml"], 2);
    assert!(
        r.stderr.contains("cycle.toml:6") && r.stderr.contains("cycle"),
        "{}",
        r.stderr
    );
    let r = ws.ok(&["trigger", "nope"], 2);
    assert!(r.stderr.contains("no registered pipeline"), "{}", r.stderr);
}

#[test]
fn sql_tasks_retry_time_out_and_tell_the_webhook_on_postgres() {
    let Some(db) = Database::new("orch_retry") else {
        return;
    };
    db.client()
        .batch_execute("CREATE SEQUENCE attempts; CREATE TABLE done (at timestamptz)")
        .unwrap();
    let ws = Workspace::new();
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hook.local_addr().unwrap().port();
    let hook_thread = std::thread::spawn(move || {
        let (mut stream, _) = hook.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .unwrap();
        (head, String::from_utf8(body).unwrap())
    });
    ws.write(
        "flaky.toml",
        r#"
[pipeline]
name = "flaky"
on_failure_webhook = "env:HOOK_URL"

[[task]]
name = "flaky"
type = "sql"
database = "env:TEST_DB"
sql = "DO $$ BEGIN IF nextval('attempts') <= 2 THEN RAISE EXCEPTION 'not yet'; END IF; END $$; INSERT INTO done VALUES (now());"
retries = 3
retry_delay = "200ms"

[[task]]
name = "slow"
type = "sql"
database = "env:TEST_DB"
sql = "SELECT pg_sleep(30)"
timeout = "1s"
"#,
    );
    let hook_url = format!("http://127.0.0.1:{port}/hooks/T0-hook-canary");
    let env = [("TEST_DB", db.url()), ("HOOK_URL", hook_url)];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let started = Instant::now();
    let r = ws.run_with(&["trigger", "flaky.toml", "--wait"], &env);
    assert_eq!(r.code, 1, "the timed-out task fails the run\n{}", r.all());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the timeout stopped pg_sleep(30)"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM done"),
        1,
        "the flaky task succeeded once"
    );

    let tasks = json_lines(&ws.ok(&["tasks", "1", "--json"], 0).stdout);
    let flaky = tasks.iter().find(|t| t["task"] == "flaky").unwrap();
    assert_eq!(
        (flaky["state"].as_str(), flaky["tries"].as_i64()),
        (Some("success"), Some(3))
    );
    let slow = tasks.iter().find(|t| t["task"] == "slow").unwrap();
    assert_eq!(slow["state"], "failed");
    assert!(
        slow["error"].as_str().unwrap().contains("timed out"),
        "{slow}"
    );
    let logs = ws.ok(&["logs", "1", "flaky"], 0).stdout;
    assert_eq!(logs.matches("=== flaky flaky try").count(), 3, "{logs}");
    assert!(
        logs.contains("not yet"),
        "the server's error is in the log: {logs}"
    );
    assert!(
        logs.contains("1 row(s) changed"),
        "the INSERT after the DO block is counted: {logs}"
    );

    // Clearing the failed task queues the run again; with the timeout fixed it would pass.
    let c = ws.run_with(&["clear", "1"], &env);
    assert_eq!(c.code, 0, "{}", c.all());
    assert!(c.stdout.contains("cleared slow"), "{}", c.stdout);
    let runs = json_lines(&ws.ok(&["runs", "--json"], 0).stdout);
    assert_eq!(runs[0]["state"], "queued");
    let tasks = json_lines(&ws.ok(&["tasks", "1", "--json"], 0).stdout);
    let slow = tasks.iter().find(|t| t["task"] == "slow").unwrap();
    assert_eq!(
        (slow["state"].as_str(), slow["tries"].as_i64()),
        (Some("none"), Some(1))
    );
    assert_eq!(
        tasks.iter().find(|t| t["task"] == "flaky").unwrap()["state"],
        "success"
    );

    let (head, body) = hook_thread.join().unwrap();
    assert!(head.starts_with("POST /hooks/T0-hook-canary"), "{head}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["event"], "task_failed");
    assert_eq!(body["task"], "slow");
    assert_eq!(body["pipeline"], "flaky");
    // The webhook URL is a secret: never in output, logs or the metadata store.
    assert!(!r.all().contains("hook-canary"), "{}", r.all());
    assert!(!logs.contains("hook-canary"));
    for (path, bytes) in ws.bytes_under(&ws.state()) {
        assert!(!contains(&bytes, "hook-canary"), "{}", path.display());
    }
}

/// 200 sync tasks, CSV → PostgreSQL upsert, on three worker processes sharing a PostgreSQL
/// metadata store; one worker is SIGKILLed while it runs a task.
#[test]
fn three_workers_run_200_tasks_and_survive_a_sigkill() {
    let (Some(meta), Some(sink)) = (Database::new("orch_meta"), Database::new("orch_sink")) else {
        return;
    };
    sink.client()
        .batch_execute("CREATE TABLE contacts (id bigint PRIMARY KEY, email text NOT NULL)")
        .unwrap();
    let ws = Workspace::new();
    let rows = 300u64;
    let mut dag = String::from("[pipeline]\nname = \"wide\"\nkey = \"id\"\n");
    for i in 0..200u64 {
        canary_csv(&ws, &format!("data/part-{i}.csv"), i * rows, rows);
        dag.push_str(&format!(
            "[[task]]\nname = \"part{i}\"\nsource = {{ type = \"csv\", path = \"../data/part-{i}.csv\" }}\n\
             policy = {{ fields = {{ id = \"keep\", email = {{ hash = \"hmac-sha256\", key = \"keyring:pepper\" }} }} }}\n\
             sink = {{ type = \"postgres\", url = \"env:SINK_DB\", table = \"contacts\", mode = \"upsert\" }}\n"
        ));
    }
    ws.write("pipelines/wide.toml", &dag);
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    let env_pairs = [("META_DB", meta.url()), ("SINK_DB", sink.url())];
    let env: Vec<(&str, &str)> = env_pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let m = ["--metadata", "env:META_DB"];
    let r = ws.run_with(&[&m[..], &["runs"]].concat(), &env);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("hushflow db migrate"), "{}", r.stderr);
    let r = ws.run_with(&[&m[..], &["db", "migrate"]].concat(), &env);
    assert_eq!(r.code, 0, "{}", r.all());

    let timing = [
        "--heartbeat-every",
        "200ms",
        "--heartbeat-timeout",
        "2s",
        "--poll",
        "50ms",
        "--tick",
        "200ms",
    ];
    let scheduler = spawn(
        &ws,
        &[&m[..], &["scheduler", "--parallelism", "0"], &timing[..]].concat(),
        &env,
    );
    let workers: Vec<Child> = (0..3)
        .map(|_| {
            spawn(
                &ws,
                &[&m[..], &["worker", "--concurrency", "1"], &timing[..]].concat(),
                &env,
            )
        })
        .collect();
    let r = ws.run_with(&[&m[..], &["trigger", "wide"]].concat(), &env);
    // The scheduler registers the file; trigger by name may race it, so trigger the file.
    if r.code != 0 {
        let r = ws.run_with(
            &[&m[..], &["trigger", "pipelines/wide.toml"]].concat(),
            &env,
        );
        assert_eq!(r.code, 0, "{}", r.all());
    }

    // Kill the first worker while it runs a task.
    let victim = workers[0].id();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let running = meta.count(&format!(
            "SELECT COUNT(*) FROM hf_tasks WHERE state = 'running' AND worker LIKE '%:{victim}:%'"
        ));
        if running > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the worker never ran a task");
        std::thread::sleep(Duration::from_millis(5));
    }
    sigkill(&workers[0]);

    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let done = meta.count("SELECT COUNT(*) FROM hf_runs WHERE state IN ('success', 'failed')");
        if done == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the run did not finish");
        std::thread::sleep(Duration::from_millis(200));
    }
    for w in &workers[1..] {
        sigterm(w);
    }
    sigterm(&scheduler);
    let mut outputs = Vec::new();
    for w in workers {
        outputs.push(finish(w));
    }
    outputs.push(finish(scheduler));

    let runs = json_lines(
        &ws.run_with(&[&m[..], &["runs", "--json"]].concat(), &env)
            .stdout,
    );
    let errors: Vec<String> = meta
        .client()
        .query(
            "SELECT COALESCE(log, '') FROM hf_tries WHERE state = 'failed' LIMIT 2",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(runs[0]["state"], "success", "{runs:?} {errors:?}");
    assert_eq!(
        meta.count("SELECT COUNT(*) FROM hf_tasks WHERE state = 'success'"),
        200
    );
    // Each task succeeded in exactly one try; the killed worker's try is recorded as lost.
    assert_eq!(
        meta.count("SELECT COUNT(*) FROM hf_tries WHERE state = 'success'"),
        200
    );
    assert_eq!(
        meta.count("SELECT COUNT(*) FROM (SELECT task FROM hf_tries WHERE state = 'success' GROUP BY task HAVING COUNT(*) > 1) d"),
        0
    );
    assert!(
        meta.count(&format!(
            "SELECT COUNT(*) FROM hf_tries WHERE state = 'lost' AND worker LIKE '%:{victim}:%'"
        )) >= 1
    );
    assert_eq!(
        meta.count("SELECT COUNT(*) FROM hf_tries WHERE state = 'running'"),
        0
    );
    // A task never ran twice at once: no two tries of a task overlap in time.
    assert_eq!(
        meta.count(
            "SELECT COUNT(*) FROM hf_tries a JOIN hf_tries b ON a.task = b.task AND a.attempt < b.attempt \
             WHERE b.started_at < a.ended_at"
        ),
        0
    );
    // The sink holds every record exactly once.
    assert_eq!(
        sink.count("SELECT COUNT(*) FROM contacts"),
        200 * rows as i64
    );
    assert_eq!(
        sink.count("SELECT COUNT(DISTINCT id) FROM contacts"),
        200 * rows as i64
    );
    assert_eq!(
        sink.count("SELECT COUNT(*) FROM contacts WHERE email LIKE '%@%'"),
        0
    );
    // Nothing personal in the metadata store, its logs, or any process's output.
    let mut client = meta.client();
    for table in ["hf_tries", "hf_tasks", "hf_definitions", "hf_runs"] {
        let text: Option<String> = client
            .query_one(
                &format!("SELECT string_agg(t::text, '') FROM {table} t"),
                &[],
            )
            .unwrap()
            .get(0);
        assert!(
            !text.unwrap_or_default().contains("@leak.example"),
            "{table}"
        );
    }
    for (out, err) in &outputs {
        assert!(!out.contains("@leak.example") && !err.contains("@leak.example"));
    }
}

/// The scheduler (with its local pool) is SIGKILLed while a task runs; started again, it hands
/// the lost task out again and the run completes with nothing lost or duplicated.
#[test]
fn a_killed_scheduler_resumes_the_run_after_restart() {
    let ws = Workspace::new();
    let rows = 150_000;
    canary_csv(&ws, "data/contacts.csv", 0, rows);
    let mut dag = String::from("[pipeline]\nname = \"chain\"\nkey = \"id\"\n");
    for i in 0..3 {
        let after = if i == 0 {
            String::new()
        } else {
            format!("depends_on = [\"step{}\"]\n", i - 1)
        };
        dag.push_str(&format!(
            "[[task]]\nname = \"step{i}\"\n{after}source = {{ type = \"csv\", path = \"../data/contacts.csv\" }}\n\
             policy = {{ fields = {{ id = \"keep\", email = {{ hash = \"hmac-sha256\", key = \"keyring:pepper\" }}, notes = \"keep\" }} }}\n\
             sink = {{ type = \"sqlite\", path = \"../out/step{i}.db\", table = \"leads\", mode = \"upsert\" }}\n"
        ));
    }
    ws.write("pipelines/chain.toml", &dag);
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    ws.ok(&["trigger", "pipelines/chain.toml"], 0);
    let timing = [
        "--heartbeat-every",
        "200ms",
        "--heartbeat-timeout",
        "2s",
        "--poll",
        "50ms",
        "--tick",
        "100ms",
        "--until-idle",
    ];
    let scheduler = spawn(
        &ws,
        &[&["scheduler", "--parallelism", "1"][..], &timing[..]].concat(),
        &[],
    );
    // A running task's log shows its progress so far (copied at each heartbeat).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let logs = ws.ok(&["logs", "1", "step0"], 0).stdout;
        if logs.contains(": running (") && logs.contains("try 1 of chain.step0") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no live log for the running task: {logs}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tasks = json_lines(&ws.ok(&["tasks", "1", "--json"], 0).stdout);
        if tasks
            .iter()
            .any(|t| t["task"] == "step1" && t["state"] == "running")
        {
            break;
        }
        assert!(Instant::now() < deadline, "step1 never started: {tasks:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    sigkill(&scheduler);
    let _ = finish(scheduler);
    let again = spawn(
        &ws,
        &[&["scheduler", "--parallelism", "1"][..], &timing[..]].concat(),
        &[],
    );
    let (_, err) = finish(again);
    assert!(err.contains("handed to other workers"), "{err}");

    let runs = json_lines(&ws.ok(&["runs", "--json"], 0).stdout);
    assert_eq!(runs.len(), 1, "no run was duplicated");
    assert_eq!(runs[0]["state"], "success");
    let tasks = json_lines(&ws.ok(&["tasks", "1", "--json"], 0).stdout);
    assert!(tasks.iter().all(|t| t["state"] == "success"), "{tasks:?}");
    let step1 = tasks.iter().find(|t| t["task"] == "step1").unwrap();
    assert_eq!(
        step1["tries"], 2,
        "the killed try and the one after the restart"
    );
    let logs = ws.ok(&["logs", "1", "step1"], 0).stdout;
    assert!(logs.contains(": lost ("), "{logs}");
    for i in 0..3 {
        let db = rusqlite::Connection::open(ws.path(&format!("out/step{i}.db"))).unwrap();
        let (n, distinct): (i64, i64) = db
            .query_row("SELECT COUNT(*), COUNT(DISTINCT id) FROM leads", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((n, distinct), (rows as i64, rows as i64), "step{i}");
    }
}

/// A scheduled pipeline with catchup, through the binary on the real clock: one
/// `scheduler --until-idle` creates a run per past interval and executes each once.
#[test]
fn a_scheduler_catches_up_a_yearly_pipeline_and_stops_when_idle() {
    let ws = Workspace::new();
    ws.write(
        "pipelines/yearly.toml",
        r#"
[pipeline]
name = "yearly"
schedule = "@yearly"
start_date = "2021-01-01"
catchup = true
max_active_runs = 2

[[task]]
name = "mark"
type = "sql"
database = "../out/marks.db"
sql = "CREATE TABLE IF NOT EXISTS marks (ds TEXT PRIMARY KEY, run TEXT); INSERT INTO marks VALUES ('{{ ds }}', '{{ run_id }}');"
"#,
    );
    std::fs::create_dir_all(ws.path("out")).unwrap();
    let r = ws.ok(
        &[
            "scheduler",
            "--until-idle",
            "--tick",
            "100ms",
            "--poll",
            "20ms",
        ],
        0,
    );
    assert!(r.stderr.contains("created"), "{}", r.stderr);
    let runs = json_lines(&ws.ok(&["runs", "--json", "--limit", "100"], 0).stdout);
    assert!(runs.len() >= 5, "2021 to last year: {runs:?}");
    assert!(
        runs.iter()
            .all(|r| r["state"] == "success" && r["run_type"] == "scheduled")
    );
    let db = rusqlite::Connection::open(ws.path("out/marks.db")).unwrap();
    let mut stmt = db.prepare("SELECT ds FROM marks ORDER BY ds").unwrap();
    let marks: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(marks.len(), runs.len(), "each interval ran exactly once");
    for (i, ds) in marks.iter().enumerate() {
        assert_eq!(ds, &format!("{}-01-01", 2021 + i), "{marks:?}");
    }
    // Again: nothing new is due, nothing runs twice.
    ws.ok(&["scheduler", "--until-idle", "--tick", "100ms"], 0);
    assert_eq!(
        json_lines(&ws.ok(&["runs", "--json", "--limit", "100"], 0).stdout).len(),
        runs.len()
    );
    // The newest run (by creation) comes first, and `pipelines` shows the schedule's state.
    assert_eq!(
        runs[0]["data_interval_start"],
        format!("{}-01-01T00:00:00Z", 2020 + runs.len())
    );
    let listed = json_lines(&ws.ok(&["pipelines", "--json"], 0).stdout);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["pipeline"], "yearly");
    assert_eq!(listed[0]["paused"], false);
    assert_eq!(listed[0]["last_run_state"], "success");
    assert!(
        listed[0]["next_run"]
            .as_str()
            .unwrap()
            .ends_with("-01-01T00:00:00Z"),
        "{listed:?}"
    );
    // A pipeline nobody registered is an error, not an empty table.
    let r = ws.ok(&["runs", "no-such-pipeline"], 2);
    assert!(r.stderr.contains("hushflow pipelines"), "{}", r.stderr);
}

/// Four `sql` tasks of one run write the same SQLite file at once. Each waits for the others'
/// write lock instead of failing with "database is locked" (the cause of a rare failure of the
/// yearly catch-up above, whose two active runs write one file), and each reports the rows its
/// statements changed in all, not those of the last statement.
#[test]
fn parallel_sql_tasks_on_one_sqlite_file_wait_for_each_other_and_count_their_rows() {
    let ws = Workspace::new();
    let mut dag = String::from(
        "[pipeline]\nname = \"writers\"\n\n[[task]]\nname = \"setup\"\ntype = \"sql\"\n\
         database = \"../out/shared.db\"\nsql = \"CREATE TABLE IF NOT EXISTS t (task INTEGER, n INTEGER)\"\n",
    );
    for i in 0..4 {
        // A read of the schema first, then many writes: a deferred transaction would fail.
        dag.push_str(&format!(
            "\n[[task]]\nname = \"w{i}\"\ntype = \"sql\"\ndepends_on = [\"setup\"]\n\
             database = \"../out/shared.db\"\nsql = \"\"\"\
             SELECT COUNT(*) FROM t; \
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) \
             INSERT INTO t SELECT {i}, x FROM c; \
             INSERT INTO t VALUES ({i}, 0);\"\"\"\n"
        ));
    }
    ws.write("pipelines/writers.toml", dag);
    std::fs::create_dir_all(ws.path("out")).unwrap();
    for _ in 0..3 {
        ws.ok(&["trigger", "pipelines/writers.toml"], 0);
    }
    ws.ok(
        &[
            "scheduler",
            "--until-idle",
            "--parallelism",
            "4",
            "--tick",
            "50ms",
            "--poll",
            "10ms",
        ],
        0,
    );
    let runs = json_lines(&ws.ok(&["runs", "--json"], 0).stdout);
    assert_eq!(runs.len(), 3);
    for run in &runs {
        assert_eq!(run["state"], "success", "{runs:?}");
    }
    let logs = ws.ok(&["logs", "1", "w2"], 0).stdout;
    assert!(logs.contains("20001 row(s) changed"), "{logs}");
}

/// Backfilling a task that reads by cursor warns that its runs read only what changed since
/// the last committed position.
#[test]
fn a_backfill_of_a_cursor_source_warns_it_reads_nothing_old() {
    let ws = Workspace::new();
    ws.write(
        "daily.toml",
        r#"
[pipeline]
name = "daily"
key = "id"
schedule = "@daily"

[[task]]
name = "extract"
source = { type = "sqlite", path = "crm.db", table = "contacts", cursor = "updated_at" }
policy = { fields = { id = "keep", updated_at = "keep" } }
sink = { type = "jsonl", path = "out.jsonl" }
"#,
    );
    let r = ws.ok(
        &[
            "backfill",
            "daily.toml",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-03",
        ],
        0,
    );
    assert!(
        r.stderr.contains("task extract reads its source by cursor"),
        "{}",
        r.all()
    );
}

/// One sync task that hashes emails into a CSV file.
const LEADS: &str = r#"
[pipeline]
name = "leads"
key = "id"

[[task]]
name = "extract"
source = { type = "csv", path = "data/contacts.csv" }
policy = { fields = { id = "keep", email = { hash = "hmac-sha256", key = "keyring:pepper", normalize = "email" } } }
sink = { type = "csv", path = "out/leads.csv" }
"#;

fn leads_workspace() -> Workspace {
    let ws = Workspace::new();
    canary_csv(&ws, "data/contacts.csv", 1, 50);
    ws.write("leads.toml", LEADS);
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    ws
}

fn task_of(ws: &Workspace, run: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let r = ws.run_with(&["tasks", run, "--json"], env);
    assert_eq!(r.code, 0, "{}", r.all());
    json_lines(&r.stdout).remove(0)
}

/// The reported attack: the pipeline text in the metadata store is changed (the email kept, the
/// sink moved) with its fingerprint untouched. `scheduler --until-idle` must not run it: the try
/// fails, says why, and the refusal is audited; no email is written anywhere.
#[test]
fn a_definition_changed_in_the_store_is_refused() {
    let ws = leads_workspace();
    ws.ok(&["trigger", "leads.toml"], 0);
    let db = rusqlite::Connection::open(ws.state().join("metadata.db")).unwrap();
    let changed = db
        .execute(
            "UPDATE hf_definitions SET text = replace(replace(text, \
             '{ hash = \"hmac-sha256\", key = \"keyring:pepper\", normalize = \"email\" }', \
             '\"keep\"'), 'out/leads.csv', 'out/leak.csv')",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let r = ws.ok(
        &[
            "scheduler",
            "--until-idle",
            "--tick",
            "100ms",
            "--poll",
            "20ms",
        ],
        0,
    );
    assert!(!ws.path("out/leak.csv").exists(), "the altered text ran");
    assert!(!ws.path("out/leads.csv").exists());
    let task = task_of(&ws, "1", &[]);
    assert_eq!(task["state"], "failed", "{task}");
    let error = task["error"].as_str().unwrap();
    assert!(error.contains("does not match its fingerprint"), "{error}");
    let logs = ws.ok(&["logs", "1", "extract"], 0).stdout;
    assert!(logs.contains("does not match its fingerprint"), "{logs}");
    let audit = json_lines(&ws.ok(&["audit", "list", "--json"], 0).stdout);
    let refused: Vec<&serde_json::Value> = audit
        .iter()
        .filter(|a| a["action"] == "definition.refused")
        .collect();
    assert_eq!(refused.len(), 1, "{audit:?}");
    assert_eq!(refused[0]["outcome"], "refused");
    assert_eq!(refused[0]["pipeline"], "leads");
    for (path, bytes) in ws.bytes_under(ws.dir.path()) {
        if path.starts_with(ws.path("data")) {
            continue;
        }
        assert!(
            !contains(&bytes, "@leak.example"),
            "{} holds an email",
            path.display()
        );
    }
    assert!(!r.all().contains("@leak.example"));

    // Registering the file again (a trigger of the file) heals the stored text.
    ws.ok(&["trigger", "leads.toml", "--wait"], 0);
    assert!(ws.path("out/leads.csv").exists());
}

/// Definitions are signed by whoever registers them. A worker runs only those signed by a key
/// it trusts: by default its state directory's own key pair (one machine, no configuration),
/// else the public keys it is given.
#[test]
fn workers_run_only_definitions_signed_by_a_key_they_trust() {
    let ws = leads_workspace();
    let r = ws.ok(&["db", "definition-key", "show"], 2);
    assert!(r.stderr.contains("definition-key create"), "{}", r.stderr);
    let made = ws.ok(
        &["db", "definition-key", "create", "--out", "scheduler.key"],
        0,
    );
    let public = made.stdout.trim().to_string();
    assert!(public.starts_with("ed25519:"), "{}", made.all());
    let key_file = std::fs::read_to_string(ws.path("scheduler.key")).unwrap();
    assert!(
        !made.all().contains(key_file.trim()),
        "the signing key is not printed"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(ws.path("scheduler.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let signing = [("HUSHFLOW_DEFINITION_KEY", "file:scheduler.key")];
    let show = ws.run_with(&["db", "definition-key", "show"], &signing);
    assert_eq!(show.stdout.trim(), public, "{}", show.all());

    // Signed with scheduler.key; a worker (here the scheduler's local slots) that trusts only
    // its own state directory's key refuses it.
    let r = ws.run_with(&["trigger", "leads.toml"], &signing);
    assert_eq!(r.code, 0, "{}", r.all());
    let idle = [
        "scheduler",
        "--until-idle",
        "--tick",
        "100ms",
        "--poll",
        "20ms",
    ];
    ws.ok(&idle, 0);
    let task = task_of(&ws, "1", &[]);
    assert_eq!(task["state"], "failed", "{task}");
    let error = task["error"].as_str().unwrap();
    assert!(
        error.contains("not from a key this worker trusts"),
        "{error}"
    );
    assert!(!ws.path("out/leads.csv").exists());

    // Given the public key, a worker runs it.
    let r = ws.run_with(&["trigger", "leads.toml"], &signing);
    assert_eq!(r.code, 0, "{}", r.all());
    let r = ws.run_with(
        &idle,
        &[("HUSHFLOW_DEFINITION_PUBLIC_KEY", public.as_str())],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(task_of(&ws, "2", &[])["state"], "success");
    assert!(ws.path("out/leads.csv").exists());

    // The state directory's own pair signs and verifies without any configuration.
    ws.ok(&["trigger", "leads.toml", "--wait"], 0);
    let own = ws.ok(&["db", "definition-key", "create"], 0);
    assert!(
        own.stderr.contains("has a definition signing key already"),
        "{}",
        own.all()
    );
    assert_ne!(own.stdout.trim(), public);
    // A malformed public key is an error, not a silent fallback.
    let r = ws.run_with(
        &["worker", "--until-idle"],
        &[("HUSHFLOW_DEFINITION_PUBLIC_KEY", "ed25519:nope")],
    );
    assert_eq!(r.code, 2, "{}", r.all());
}

/// `--conf` values are stored in plaintext: a key that looks like a secret is refused before
/// anything is stored, and the value is never echoed.
#[test]
fn a_secret_looking_conf_key_is_refused_and_never_stored() {
    let ws = leads_workspace();
    let canary = "sk-live-T0-conf-canary";
    for pair in [
        format!("api_token={canary}"),
        format!("DB_Password={canary}"),
        canary.to_string(),
    ] {
        let r = ws.run(&["trigger", "leads.toml", "--conf", &pair]);
        assert_eq!(r.code, 2, "{}", r.all());
        assert!(!r.all().contains(canary), "{}", r.all());
    }
    let r = ws.run(&[
        "trigger",
        "leads.toml",
        "--conf",
        &format!("api_token={canary}"),
    ]);
    assert!(r.stderr.contains("secret reference"), "{}", r.stderr);
    assert!(r.stderr.contains("api_token"), "{}", r.stderr);
    for (path, bytes) in ws.bytes_under(&ws.state()) {
        assert!(!contains(&bytes, canary), "{}", path.display());
    }
}

/// `trigger --wait` executes only its own run. When an older run of the pipeline holds its
/// only `max_active_runs` slot and nothing executes that one, it says which run it waits behind
/// instead of hanging silently, and `--timeout` gives up with that explanation.
#[test]
fn trigger_wait_says_which_run_it_waits_behind() {
    let ws = Workspace::new();
    ws.write(
        "solo.toml",
        "[pipeline]\nname = \"solo\"\n[[task]]\nname = \"a\"\ntype = \"empty\"\n",
    );
    ws.ok(&["trigger", "solo.toml"], 0);
    let started = Instant::now();
    let mut child = spawn(
        &ws,
        &["trigger", "solo.toml", "--wait", "--timeout", "3s"],
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            sigkill(&child);
            panic!("trigger --wait --timeout 3s hangs");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let code = child.wait().unwrap().code();
    let (out, err) = finish(child);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(err.contains("run 2 waits behind run 1"), "{err}");
    assert!(err.contains("max_active_runs"), "{err}");
    assert!(err.contains("no scheduler or worker is running"), "{err}");
    assert!(err.contains("gave up waiting after 3s"), "{err}");

    // Without --timeout it says so while it waits, and ends once a scheduler runs the others.
    let mut child = spawn(&ws, &["trigger", "solo.toml", "--wait"], &[]);
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| {
                sigkill(&child);
                panic!("no word of what run 3 waits for")
            });
        if line.contains("run 3 waits behind run 1") {
            break;
        }
    }
    ws.ok(
        &[
            "scheduler",
            "--until-idle",
            "--tick",
            "100ms",
            "--poll",
            "20ms",
        ],
        0,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            sigkill(&child);
            panic!("trigger --wait did not end with its run");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let _ = reader.join();
    let runs = json_lines(&ws.ok(&["runs", "--json"], 0).stdout);
    assert!(runs.iter().all(|r| r["state"] == "success"), "{runs:?}");
}

/// A `sql` task that times out while it holds a lock: the statement is cancelled on the server
/// before the try is marked timed out, so the lock is free at once (the server would otherwise
/// sleep on for a minute, holding it).
#[test]
fn a_timed_out_sql_task_releases_its_locks_on_postgres() {
    let Some(db) = Database::new("orch_cancel") else {
        return;
    };
    db.client()
        .batch_execute("CREATE TABLE guarded (x int)")
        .unwrap();
    let ws = Workspace::new();
    ws.write(
        "hold.toml",
        r#"
[pipeline]
name = "hold"

[[task]]
name = "hold"
type = "sql"
database = "env:TEST_DB"
sql = "LOCK TABLE guarded IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60)"
timeout = "2s"
"#,
    );
    let url = db.url();
    let env = [("TEST_DB", url.as_str())];
    let started = Instant::now();
    let r = ws.run_with(&["trigger", "hold.toml", "--wait"], &env);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let task = task_of(&ws, "1", &[]);
    assert_eq!(task["state"], "failed");
    assert!(
        task["error"].as_str().unwrap().contains("timed out"),
        "{task}"
    );
    // The try is marked timed out: another connection takes the lock within two seconds.
    let mut c = db.client();
    c.batch_execute(
        "SET lock_timeout = '2s'; BEGIN; LOCK TABLE guarded IN ACCESS EXCLUSIVE MODE; COMMIT",
    )
    .expect("the timed-out task still holds its lock");
    let sleeping = db.count(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%pg_sleep%'",
    );
    assert_eq!(sleeping, 0, "the statement was cancelled on the server");
}

/// Roles dropped after the test's database (declared before it, so dropped after it).
struct Roles {
    server: String,
    names: Vec<String>,
}

impl Roles {
    fn new(server: &str, names: &[String]) -> Roles {
        use hushflow_test_support::pg::admin;
        for name in names {
            admin(server, &format!("DROP ROLE IF EXISTS {name}"));
            admin(server, &format!("CREATE ROLE {name} LOGIN"));
        }
        Roles {
            server: server.to_string(),
            names: names.to_vec(),
        }
    }
}

impl Drop for Roles {
    fn drop(&mut self) {
        for name in &self.names {
            hushflow_test_support::pg::admin(&self.server, &format!("DROP ROLE IF EXISTS {name}"));
        }
    }
}

/// `db grants` on PostgreSQL: schedulers and workers each run with their least-privilege role
/// and a run completes; the worker role cannot write a definition, repoint a run or change a
/// task's kind.
#[test]
fn a_worker_role_cannot_write_definitions_on_postgres() {
    let pid = std::process::id();
    let names = [
        format!("hf_sched_{pid}"),
        format!("hf_work_{pid}"),
        format!("hf_read_{pid}"),
        format!("hf_serve_{pid}"),
    ];
    let Some(server) = hushflow_test_support::pg::server("orch_grants") else {
        return;
    };
    let _roles = Roles::new(&server, &names);
    let Some(meta) = Database::new("orch_grants") else {
        return;
    };
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.path("out")).unwrap();
    ws.write(
        "granted.toml",
        "[pipeline]\nname = \"granted\"\n[pools]\nslow = 1\n\
         [[task]]\nname = \"a\"\ntype = \"empty\"\npool = \"slow\"\n\
         [[task]]\nname = \"b\"\ntype = \"sql\"\ndepends_on = [\"a\"]\ndatabase = \"out/b.db\"\n\
         sql = \"CREATE TABLE IF NOT EXISTS t (x INTEGER); INSERT INTO t VALUES (1)\"\n",
    );
    let url = |role: &str| meta.url().replace("postgres@", &format!("{role}@"));
    let owner = meta.url();
    let (scheduler, worker) = (url(&names[0]), url(&names[1]));
    let env = [
        ("OWNER_DB", owner.as_str()),
        ("SCHED_DB", scheduler.as_str()),
        ("WORKER_DB", worker.as_str()),
    ];
    let r = ws.run_with(&["--metadata", "env:OWNER_DB", "db", "migrate"], &env);
    assert_eq!(r.code, 0, "{}", r.all());
    let grants = ws.ok(
        &[
            "db",
            "grants",
            "--schema",
            "public",
            "--scheduler-role",
            &names[0],
            "--worker-role",
            &names[1],
            "--reader-role",
            &names[2],
            "--server-role",
            &names[3],
        ],
        0,
    );
    meta.client().batch_execute(&grants.stdout).unwrap();

    let public = ws.ok(&["db", "definition-key", "create"], 0).stdout;
    let sched = ["--metadata", "env:SCHED_DB"];
    let r = ws.run_with(&[&sched[..], &["trigger", "granted.toml"]].concat(), &env);
    assert_eq!(r.code, 0, "{}", r.all());
    let timing = ["--until-idle", "--tick", "100ms", "--poll", "20ms"];
    let s = spawn(
        &ws,
        &[
            &sched[..],
            &["scheduler", "--parallelism", "0"],
            &timing[..],
        ]
        .concat(),
        &env,
    );
    let w = spawn(
        &ws,
        &[
            &[
                "--metadata",
                "env:WORKER_DB",
                "--definition-public-key",
                public.trim(),
            ][..],
            &["worker"],
            &timing[1..],
        ]
        .concat(),
        &[("WORKER_DB", worker.as_str())],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while meta.count("SELECT COUNT(*) FROM hf_runs WHERE state IN ('success', 'failed')") == 0 {
        assert!(Instant::now() < deadline, "the run did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    sigterm(&w);
    let (w_out, w_err) = finish(w);
    let (s_out, s_err) = finish(s);
    let runs = json_lines(
        &ws.run_with(&[&sched[..], &["runs", "--json"]].concat(), &env)
            .stdout,
    );
    assert_eq!(
        runs[0]["state"], "success",
        "{runs:?}\n{w_out}{w_err}\n{s_out}{s_err}"
    );
    assert_eq!(
        meta.count("SELECT COUNT(*) FROM hf_tries WHERE state = 'success'"),
        2
    );

    // What a leaked worker credential cannot do.
    let mut client = postgres::Client::connect(&worker, postgres::NoTls).unwrap();
    for sql in [
        "UPDATE hf_definitions SET text = 'x'",
        "INSERT INTO hf_definitions (fingerprint, pipeline, file, text, created_at) \
         VALUES ('f', 'p', 'f', 't', 0)",
        "UPDATE hf_runs SET fingerprint = 'x'",
        "UPDATE hf_runs SET conf = '{}'",
        "UPDATE hf_tasks SET kind = 'gc'",
        "UPDATE hf_pools SET slots = 100",
        "DELETE FROM hf_tries",
    ] {
        let e = client.batch_execute(sql).unwrap_err();
        assert_eq!(
            e.code(),
            Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {e}"
        );
    }
    // Password and token digests are the server's alone.
    for sql in ["SELECT * FROM hf_users", "SELECT * FROM hf_api_tokens"] {
        let e = client.batch_execute(sql).unwrap_err();
        assert_eq!(
            e.code(),
            Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {e}"
        );
    }
    let mut serve = postgres::Client::connect(&url(&names[3]), postgres::NoTls).unwrap();
    assert!(serve.batch_execute("DELETE FROM hf_sessions").is_ok());
    assert!(serve.batch_execute("SELECT COUNT(*) FROM hf_runs").is_ok());
    // A reader sees run history, not pipeline text.
    let mut reader = postgres::Client::connect(&url(&names[2]), postgres::NoTls).unwrap();
    assert!(reader.batch_execute("SELECT COUNT(*) FROM hf_runs").is_ok());
    assert!(
        reader
            .batch_execute("SELECT text FROM hf_definitions")
            .is_err()
    );
}
