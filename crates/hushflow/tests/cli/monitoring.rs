//! Monitoring with real parts: the real Prometheus (Debian `prometheus`) scrapes a running
//! scheduler and worker during a small DAG and its HTTP API must answer the runs' counts;
//! `promtool` checks the exposition, the alerting rules (and their unit tests) in
//! `deploy/prometheus/`; `run --metrics-file` writes a textfile; no canary value reaches a
//! label. Without `prometheus`/`promtool` these tests say so and pass, unless
//! HUSHFLOW_TEST_REQUIRE_SERVICES=1 (scripts/test.sh installs them).

use crate::common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `name` on PATH, or `None` (saying why) when absent and not required.
fn tool(test: &str, name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("HUSHFLOW_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
            panic!(
                "{test}: HUSHFLOW_TEST_REQUIRE_SERVICES=1 but `{name}` is not installed; \
                 install the Debian package `prometheus` (scripts/test.sh does)"
            );
        }
        eprintln!("{test}: skipped, `{name}` is not installed (Debian package `prometheus`)");
    }
    found
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP GET on loopback: the body, or `None` when nothing answers yet.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of a PromQL query answering one sample (`None`: no sample yet).
fn query(port: u16, q: &str) -> Option<f64> {
    let (_, body) = get(port, &format!("/api/v1/query?query={}", encode(q)))?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let result = v["data"]["result"].as_array()?;
    result.first()?["value"][1].as_str()?.parse().ok()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn promtool_check_metrics(promtool: &Path, exposition: &str) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{exposition}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const DAG: &str = r#"
[pipeline]
name = "mon"
key = "id"

[[task]]
name = "extract"
source = { type = "csv", path = "../data/contacts.csv" }
policy = { fields = { id = "keep", email = { hash = "hmac-sha256", key = "keyring:pepper", normalize = "email" }, country = "keep" }, suppression = { file = "../data/suppress.txt", field = "email" } }
sink = { type = "jsonl", path = "../staging/{{ run_id }}.jsonl" }

[[task]]
name = "load"
depends_on = ["extract"]
source = { type = "jsonl", path = "../staging/{{ run_id }}.jsonl" }
policy = { fields = { id = "keep", email = "keep", country = "keep" } }
sink = { type = "csv", path = "../out/{{ run_id }}.csv" }
"#;

/// The canary rows: their emails and countries must reach no metric label.
fn contacts(ws: &Workspace, rows: u64) {
    let mut text = String::from("id,email,country\n");
    for i in 1..=rows {
        text.push_str(&format!("{i},canary-{i}@leak.example,CanaryLand{i}\n"));
    }
    ws.write("data/contacts.csv", text);
    ws.write("data/suppress.txt", "canary-1@leak.example\n");
}

#[test]
fn prometheus_scrapes_the_scheduler_and_worker_and_counts_match_the_runs() {
    let test = "prometheus_scrapes_the_scheduler_and_worker_and_counts_match_the_runs";
    let (Some(prometheus), Some(promtool)) = (tool(test, "prometheus"), tool(test, "promtool"))
    else {
        return;
    };
    let ws = Workspace::new();
    let rows = 40u64;
    contacts(&ws, rows);
    ws.write("pipelines/mon.toml", DAG);
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    ws.ok(&["validate", "pipelines/mon.toml"], 0);

    let (sched_port, worker_port, prom_port) = (free_port(), free_port(), free_port());
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
    let spawn = |args: &[&str]| {
        let mut c = ws.command();
        c.args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir(ws.path("pipelines"));
        Killed(c.spawn().unwrap())
    };
    let sched_addr = format!("127.0.0.1:{sched_port}");
    let worker_addr = format!("127.0.0.1:{worker_port}");
    let _scheduler = spawn(
        &[
            &["scheduler", "--pipelines", ".", "--parallelism", "0"][..],
            &timing[..],
            &["--metrics-addr", &sched_addr],
        ]
        .concat(),
    );
    let _worker = spawn(
        &[
            &["worker", "--concurrency", "2"][..],
            &timing[..],
            &["--metrics-addr", &worker_addr],
        ]
        .concat(),
    );

    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: hushflow\n    static_configs:\n      - targets: \
             ['{sched_addr}', '{worker_addr}']\n",
            repo().join("deploy/prometheus/alerts.yml").display()
        ),
    )
    .unwrap();
    let _prometheus = Killed(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                data.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(prom_port, "/-/ready").is_none_or(|(s, _)| s != 200) {
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Three runs of the DAG: six sync tasks.
    for _ in 0..3 {
        let r = ws.run(&["trigger", "pipelines/mon.toml"]);
        assert_eq!(r.code, 0, "{}", r.all());
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let runs = loop {
        let runs: Vec<serde_json::Value> = ws
            .ok(&["runs", "--json"], 0)
            .stdout
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if runs.len() == 3 && runs.iter().all(|r| r["state"] == "success") {
            break runs;
        }
        assert!(
            Instant::now() < deadline,
            "the runs did not finish: {runs:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // What the metadata says the tasks did.
    let (mut read, mut written) = (0.0, 0.0);
    for r in &runs {
        let id = r["run"].to_string();
        for line in ws.ok(&["tasks", &id, "--json"], 0).stdout.lines() {
            let t: serde_json::Value = serde_json::from_str(line).unwrap();
            read += t["records_read"].as_f64().unwrap();
            written += t["records_written"].as_f64().unwrap();
        }
    }
    // Each extract reads all rows and leaves one out (suppressed); load copies what is left.
    assert_eq!(read, 3.0 * (rows + rows - 1) as f64);

    // Prometheus' own answers, once it has scraped the last increments.
    let expect = [
        (
            r#"sum(hushflow_runs_finished_total{pipeline="mon",state="success"})"#,
            3.0,
        ),
        (
            r#"sum(hushflow_task_tries_total{pipeline="mon",outcome="success"})"#,
            6.0,
        ),
        (
            r#"sum(hushflow_syncs_total{pipeline="mon",outcome="success"})"#,
            6.0,
        ),
        (
            r#"sum(hushflow_records_total{pipeline="mon",kind="read"})"#,
            read,
        ),
        (
            r#"sum(hushflow_records_total{pipeline="mon",kind="written"})"#,
            written,
        ),
        (
            r#"sum(hushflow_records_total{pipeline="mon",task="extract",kind="suppressed"})"#,
            3.0,
        ),
        (
            r#"sum(hushflow_sync_duration_seconds_count{pipeline="mon"})"#,
            6.0,
        ),
        (
            r#"sum(hushflow_scheduler_lag_seconds_count{pipeline="mon"})"#,
            3.0,
        ),
        (r#"sum(hushflow_audit_verify_ok)"#, 2.0),
        (r#"count(up{job="hushflow"} == 1)"#, 2.0),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    for (q, want) in expect {
        loop {
            let got = query(prom_port, q);
            if got == Some(want) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus answers {got:?} to {q}, the runs say {want}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    // Sink writes were timed for both sink types.
    assert!(
        query(
            prom_port,
            r#"sum(hushflow_sink_write_seconds_count{sink="csv"})"#
        )
        .unwrap()
            >= 3.0
    );

    // The expositions pass promtool and carry no canary.
    for port in [sched_port, worker_port] {
        let (status, text) = get(port, "/metrics").unwrap();
        assert_eq!(status, 200);
        promtool_check_metrics(&promtool, &text);
        for canary in ["canary", "leak.example", "CanaryLand"] {
            assert!(!text.contains(canary), "{canary} in the metrics:\n{text}");
        }
    }
    // And nothing Prometheus stored names a canary either: its label values.
    for label in [
        "pipeline", "task", "kind", "sink", "outcome", "state", "action",
    ] {
        let (_, body) = get(prom_port, &format!("/api/v1/label/{label}/values")).unwrap();
        assert!(
            !body.contains("canary") && !body.contains("CanaryLand"),
            "{body}"
        );
    }
}

#[test]
fn a_one_off_run_writes_its_metrics_file() {
    let ws = Workspace::new();
    contacts(&ws, 25);
    ws.write(
        "sync.toml",
        r#"
[pipeline]
name = "oneoff"
key = "id"
[source]
type = "csv"
path = "data/contacts.csv"
[policy]
fields.id = "keep"
fields.email = { hash = "hmac-sha256", key = "keyring:pepper", normalize = "email" }
suppression = { file = "data/suppress.txt", field = "email" }
[sink]
type = "csv"
path = "out/oneoff.csv"
"#,
    );
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    std::fs::create_dir_all(ws.path("textfile")).unwrap();
    ws.ok(
        &[
            "run",
            "sync.toml",
            "--metrics-file",
            "textfile/hushflow.prom",
        ],
        0,
    );
    let text = std::fs::read_to_string(ws.path("textfile/hushflow.prom")).unwrap();
    for (kind, n) in [("read", 25), ("written", 24), ("suppressed", 1)] {
        let line = format!(
            "hushflow_records_total{{pipeline=\"oneoff\",task=\"run\",kind=\"{kind}\"}} {n}"
        );
        assert!(text.contains(&line), "{line} not in:\n{text}");
    }
    assert!(text.contains("hushflow_sink_write_seconds_bucket{sink=\"csv\",le="));
    assert!(
        !text.contains("canary") && !text.contains("CanaryLand"),
        "{text}"
    );
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(ws.path("textfile/hushflow.prom"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o644, "node_exporter reads it as another user");
    if let Some(promtool) = tool("a_one_off_run_writes_its_metrics_file", "promtool") {
        promtool_check_metrics(&promtool, &text);
    }
}

#[test]
fn the_alerting_rules_and_the_dashboard_use_only_metrics_that_exist() {
    let deploy = repo().join("deploy");
    let rules = std::fs::read_to_string(deploy.join("prometheus/alerts.yml")).unwrap();
    let dashboard = std::fs::read_to_string(deploy.join("grafana/hushflow.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    assert!(!parsed["panels"].as_array().unwrap().is_empty());
    let known: Vec<&str> = hushflow_metrics::ALL.iter().map(|(n, _, _)| *n).collect();
    for (what, text) in [("alerts.yml", &rules), ("hushflow.json", &dashboard)] {
        let mut rest = text.as_str();
        while let Some(at) = rest.find("hushflow_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            assert!(
                known.contains(&base) || known.contains(&name.as_str()),
                "{what} uses {name}, which hushflow-metrics does not define"
            );
        }
    }
    let docs = std::fs::read_to_string(repo().join("docs/monitoring.md")).unwrap();
    for name in &known {
        assert!(
            docs.contains(name),
            "docs/monitoring.md does not document {name}"
        );
    }
    let Some(promtool) = tool(
        "the_alerting_rules_and_the_dashboard_use_only_metrics_that_exist",
        "promtool",
    ) else {
        return;
    };
    for args in [
        &["check", "rules", "alerts.yml"][..],
        &["test", "rules", "alerts.test.yml"][..],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(deploy.join("prometheus"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Collects the octet-counted syslog messages sent to a TCP listener, one per connection.
fn syslog_receiver() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut text = String::new();
            let mut conn = conn;
            if conn.read_to_string(&mut text).is_ok() && tx.send(text).is_err() {
                break;
            }
        }
    });
    (port, rx)
}

#[test]
fn audit_alerts_of_real_commands_reach_syslog_once_each() {
    let ws = Workspace::new();
    contacts(&ws, 30);
    let (port, messages) = syslog_receiver();
    std::fs::create_dir_all(ws.state()).unwrap();
    ws.write(
        "state/alerts.toml",
        format!(
            "[[alert]]\nkind = \"sink_changed\"\n[[alert]]\nkind = \"policy_changed\"\n\
             [[alert]]\nkind = \"bulk_write\"\n[[alert]]\nkind = \"key_export\"\n\
             [[alert]]\nkind = \"audit_verify_failed\"\n\
             [delivery.syslog]\naddress = \"tcp:127.0.0.1:{port}\"\n"
        ),
    );
    let pipeline = |sink: &str| {
        format!(
            "[pipeline]\nname = \"alerted\"\nkey = \"id\"\n[source]\ntype = \"csv\"\n\
             path = \"data/contacts.csv\"\n[policy]\nfields.id = \"keep\"\n\
             fields.email = {{ hash = \"hmac-sha256\", key = \"keyring:pepper\" }}\n\
             [sink]\ntype = \"csv\"\npath = \"{sink}\"\n"
        )
    };
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    // A normal series: the same sink and policy, the same size.
    ws.write("p.toml", pipeline("out/a.csv"));
    for _ in 0..4 {
        ws.ok(&["run", "p.toml"], 0);
    }
    // The sink moves: one alert, and not again on the next run to the new place.
    ws.write("p.toml", pipeline("out/elsewhere.csv"));
    ws.ok(&["run", "p.toml"], 0);
    ws.ok(&["run", "p.toml"], 0);
    // A key leaves the keyring.
    ws.ok(&["keys", "export", "pepper"], 0);
    // Someone edits a record: the next check fails, and says so to syslog.
    let db = rusqlite::Connection::open(ws.state().join("audit.db")).unwrap();
    db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2", [])
        .unwrap();
    drop(db);
    ws.ok(&["audit", "verify"], 1);

    let mut got = Vec::new();
    while let Ok(m) = messages.recv_timeout(Duration::from_secs(5)) {
        got.push(m);
    }
    let kinds: Vec<&str> = got
        .iter()
        .map(|m| {
            m.split("kind=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("?")
        })
        .collect();
    assert_eq!(
        kinds,
        ["sink_changed", "key_export", "audit_verify_failed"],
        "{got:#?}"
    );
    for m in &got {
        let (len, body) = m.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), body.len(), "{m}");
        for canary in ["canary", "leak.example", "CanaryLand", "out/"] {
            assert!(!m.contains(canary), "{canary} in {m}");
        }
    }
    // Each alert is in the audit log too.
    let audit = ws.ok(&["audit", "list", "--json"], 0).stdout;
    assert_eq!(audit.matches("\"action\":\"alert\"").count(), 3, "{audit}");
}

fn audit_record(i: u64) -> hushflow_state::audit::NewRecord {
    hushflow_state::audit::NewRecord {
        actor: "os-user:shipper-test".into(),
        action: "keys.list".into(),
        pipeline: None,
        policy_fingerprint: None,
        counts: std::collections::BTreeMap::from([("i".to_string(), i)]),
        outcome: "ok".into(),
        detail: Some(format!(
            "record number {i} with some padding to make lines longer"
        )),
    }
}

/// `audit ship` is SIGKILLed again and again while records keep coming; the JSONL copy ends
/// up holding every record once, in order, with the local hashes. A later rewrite of a shipped
/// record is refused.
#[test]
fn audit_shipping_survives_sigkill_without_gap_or_duplicate() {
    let ws = Workspace::new();
    ws.ok(&["audit", "list"], 0);
    {
        let mut log = hushflow_state::audit::AuditLog::open(&ws.state(), None).unwrap();
        for i in 0..400 {
            log.append(audit_record(i)).unwrap();
        }
    }
    std::fs::create_dir_all(ws.path("shipped")).unwrap();
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let appender = {
        let (state, writing) = (ws.state(), writing.clone());
        std::thread::spawn(move || {
            let mut log = hushflow_state::audit::AuditLog::open(&state, None).unwrap();
            let mut i = 1000;
            while writing.load(std::sync::atomic::Ordering::SeqCst) {
                log.append(audit_record(i)).unwrap();
                i += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let target = "jsonl:shipped/audit.jsonl";
    let mut kills = 0;
    for round in 0..8u64 {
        let mut child = ws
            .command()
            .args([
                "audit",
                "ship",
                "--to",
                target,
                "--follow",
                "--interval",
                "5ms",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Different moments each round: during the first batch, between batches, idle.
        std::thread::sleep(Duration::from_millis(15 + round * 37));
        if child.try_wait().unwrap().is_none() {
            kills += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert!(kills >= 6, "the shipper ended by itself ({kills} kills)");
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    appender.join().unwrap();
    // A last pass ships what is left and returns.
    let r = ws.ok(&["audit", "ship", "--to", target], 0);
    assert!(r.stdout.contains("record(s) shipped"), "{}", r.stdout);

    let local = hushflow_state::audit::AuditLog::open(&ws.state(), None)
        .unwrap()
        .list()
        .unwrap();
    let text = std::fs::read_to_string(ws.path("shipped/audit.jsonl")).unwrap();
    let shipped: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seqs: Vec<u64> = shipped.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        local.iter().map(|r| r.seq).collect::<Vec<_>>(),
        "the copy has gaps or repeats"
    );
    for (s, l) in shipped.iter().zip(&local) {
        assert_eq!(s["hash"], l.hash.as_str());
    }
    assert!(local.len() > 400, "records kept coming: {}", local.len());

    // Nothing new: nothing shipped, nothing repeated.
    let r = ws.ok(&["audit", "ship", "--to", target], 0);
    assert!(r.stdout.contains(": 0 record(s)"), "{}", r.stdout);

    // Someone rewrites the last shipped record locally (recomputing nothing): refused.
    let db = rusqlite::Connection::open(ws.state().join("audit.db")).unwrap();
    db.execute(
        "UPDATE audit SET hash = 'ff' || substr(hash, 3) WHERE seq = (SELECT MAX(seq) FROM audit)",
        [],
    )
    .unwrap();
    drop(db);
    let r = ws.ok(&["audit", "ship", "--to", target], 1);
    assert!(
        r.stderr.contains("differs from the copy shipped"),
        "{}",
        r.stderr
    );
}

#[test]
fn audit_records_ship_to_syslog_with_seq_and_hash() {
    let ws = Workspace::new();
    ws.ok(&["keys", "list"], 0);
    ws.ok(&["keys", "list"], 0);
    let (port, messages) = syslog_receiver();
    let target = format!("syslog:tcp:127.0.0.1:{port}");
    ws.ok(&["audit", "ship", "--to", &target], 0);
    let mut got = Vec::new();
    while let Ok(m) = messages.recv_timeout(Duration::from_secs(2)) {
        got.push(m);
    }
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].contains("[hushflow-audit@32473 seq=\"1\" hash=\""),
        "{}",
        got[0]
    );
    assert!(got[1].contains("seq=\"2\""), "{}", got[1]);
    // The position was kept: shipping again sends nothing.
    ws.ok(&["audit", "ship", "--to", &target], 0);
    assert!(messages.recv_timeout(Duration::from_secs(1)).is_err());
}

/// The test Python with `aiosmtpd` (and `cryptography`), or `None` saying why.
fn smtp_python(test: &str) -> Option<String> {
    let python = std::env::var("HUSHFLOW_TEST_PYTHON").ok();
    let ok = python.as_deref().is_some_and(|p| {
        Command::new(p)
            .args(["-c", "import aiosmtpd, cryptography"])
            .status()
            .is_ok_and(|s| s.success())
    });
    if ok {
        return python;
    }
    if std::env::var("HUSHFLOW_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
        panic!(
            "{test}: HUSHFLOW_TEST_REQUIRE_SERVICES=1 but HUSHFLOW_TEST_PYTHON has no aiosmtpd; \
             install tests/python/requirements.txt (scripts/test.sh does)"
        );
    }
    eprintln!("{test}: skipped, HUSHFLOW_TEST_PYTHON with aiosmtpd is not set");
    None
}

/// A private CA and a server certificate for 127.0.0.1 it signed, made with Python's
/// `cryptography`: (CA certificate, server certificate, server key).
fn private_ca(python: &str, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let script = r#"
import sys, datetime, ipaddress
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
now = datetime.datetime.now(datetime.timezone.utc)
def cert(subject, issuer, public, signer, ca):
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
        .public_key(public).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return b.sign(signer, hashes.SHA256())
ca_key = ec.generate_private_key(ec.SECP256R1())
ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hushflow test CA")])
ca = cert(ca_name, ca_name, ca_key.public_key(), ca_key, True)
key = ec.generate_private_key(ec.SECP256R1())
leaf = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), ca_name, key.public_key(), ca_key, False)
open(sys.argv[1], "wb").write(ca.public_bytes(serialization.Encoding.PEM))
open(sys.argv[2], "wb").write(leaf.public_bytes(serialization.Encoding.PEM))
open(sys.argv[3], "wb").write(key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
"#;
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    let ok = Command::new(python)
        .args(["-c", script])
        .args([&ca, &cert, &key])
        .status()
        .unwrap();
    assert!(ok.success());
    (ca, cert, key)
}

/// Alerts reach a real SMTP server (aiosmtpd): once over STARTTLS with a private CA, once in
/// plain SMTP to loopback.
#[test]
fn alert_mail_reaches_a_real_smtp_server_over_starttls() {
    let test = "alert_mail_reaches_a_real_smtp_server_over_starttls";
    let Some(python) = smtp_python(test) else {
        return;
    };
    let tls_dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_ca(&python, tls_dir.path());
    for starttls in [true, false] {
        let ws = Workspace::new();
        let port = free_port();
        let mut server = Command::new(&python);
        server
            // Unbuffered: the server is killed, and what it printed must not die with it.
            .args([
                "-u",
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if starttls {
            server.arg("--tlscert").arg(&cert).arg("--tlskey").arg(&key);
        }
        let mut server = Killed(server.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::fs::create_dir_all(ws.state()).unwrap();
        let tls = if starttls {
            format!("tls = \"starttls\"\nca_file = \"{}\"\n", ca.display())
        } else {
            "tls = \"none\"\n".to_string()
        };
        ws.write(
            "state/alerts.toml",
            format!(
                "[[alert]]\nkind = \"key_export\"\n[delivery.email]\nserver = \"127.0.0.1\"\n\
                 port = {port}\n{tls}from = \"hushflow@example.test\"\nto = [\"security@example.test\"]\n"
            ),
        );
        ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
        let exported = ws.ok(&["keys", "export", "pepper"], 0);
        assert!(
            !exported.stderr.contains("abandoned"),
            "{}",
            exported.stderr
        );
        // The command waited for its delivery before exiting; give the server a moment to print.
        std::thread::sleep(Duration::from_millis(500));
        let _ = server.0.kill();
        let mut printed = String::new();
        server
            .0
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut printed)
            .unwrap();
        assert!(
            printed.contains("Subject: [hushflow critical] key_export"),
            "starttls={starttls}: {printed}"
        );
        assert!(printed.contains("1 key exports by "), "{printed}");
        assert_eq!(printed.matches("Subject: ").count(), 1, "{printed}");
        let audit = ws.ok(&["audit", "list", "--json"], 0).stdout;
        assert!(audit.contains("\"action\":\"alert\""), "{audit}");
    }
}

/// With the anchor key, the head's signed checkpoint is shipped after the record it vouches
/// for, each time it moves; `audit verify-copy` checks the copy alone: its chain, and each tag.
/// A copy edited in place breaks the chain; one whose chain was recomputed by someone without
/// the key no longer matches the checkpoints.
#[test]
fn shipped_checkpoints_let_the_copy_be_verified_with_the_anchor_key_alone() {
    use base64::Engine as _;
    let ws = Workspace::new();
    let master = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let env = [("HUSHFLOW_MASTER_KEY", master.as_str())];
    let ok = |args: &[&str]| {
        let r = ws.run_with(args, &env);
        assert_eq!(r.code, 0, "{args:?}: {}", r.all());
        r
    };
    ok(&["keys", "create", "pepper"]);
    ok(&["audit", "anchor"]);
    ok(&["keys", "list"]);
    let target = "jsonl:copy.jsonl";
    ok(&["audit", "ship", "--to", target]);
    ok(&["keys", "list"]);
    ok(&["keys", "list"]);
    ok(&["audit", "ship", "--to", target]);
    // Nothing new: no record and no checkpoint shipped again.
    ok(&["audit", "ship", "--to", target]);
    let text = std::fs::read_to_string(ws.path("copy.jsonl")).unwrap();
    let checkpoints: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("{\"checkpoint\""))
        .collect();
    assert_eq!(checkpoints.len(), 2, "{text}");
    assert!(
        text.lines().last().unwrap().starts_with("{\"checkpoint\""),
        "{text}"
    );

    let r = ok(&["audit", "verify-copy", "copy.jsonl"]);
    assert!(
        r.stdout.contains("chain intact; 2 checkpoint(s) verified"),
        "{}",
        r.stdout
    );
    let r = ok(&["audit", "verify-copy", "copy.jsonl", "--json"]);
    let report: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(report["vouched_to"], report["last"], "{report}");
    assert_eq!(report["forged"], serde_json::json!([]));
    // Without the key there is nothing to check the tags with.
    let r = ws.run(&["audit", "verify-copy", "copy.jsonl"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("anchor key"), "{}", r.stderr);

    let records: Vec<hushflow_state::audit::AuditRecord> = text
        .lines()
        .filter(|l| !l.starts_with("{\"checkpoint\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let write_copy = |records: &[hushflow_state::audit::AuditRecord]| {
        let mut out = String::new();
        let mut records = records.iter();
        for line in text.lines() {
            if line.starts_with("{\"checkpoint\"") {
                out.push_str(line);
            } else {
                out.push_str(&serde_json::to_string(records.next().unwrap()).unwrap());
            }
            out.push('\n');
        }
        ws.write("forged.jsonl", out);
    };
    // Edited in place: the chain breaks at that record.
    let mut edited = records.clone();
    edited[1].actor = "someone-else".into();
    write_copy(&edited);
    let r = ws.run_with(&["audit", "verify-copy", "forged.jsonl"], &env);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("broken at record 2"), "{}", r.stderr);
    // The chain recomputed from there on, as someone without the key would: the checkpoints
    // no longer match.
    for i in 1..edited.len() {
        if i > 1 {
            edited[i].prev_hash = edited[i - 1].hash.clone();
        }
        edited[i].hash = edited[i].compute_hash();
    }
    write_copy(&edited);
    let r = ws.run_with(&["audit", "verify-copy", "forged.jsonl"], &env);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("were rewritten"), "{}", r.stderr);
}

/// `[audit] ship_to` in the alerts file: a scheduler ships as records are written (and its
/// last ones before it exits), a one-off `run` ships what it recorded before it exits; the copy
/// equals the local log, once each, in order.
#[test]
fn audit_ship_to_ships_from_the_scheduler_and_after_a_run() {
    let ws = Workspace::new();
    ws.write(
        "state/alerts.toml",
        "[audit]\nship_to = \"jsonl:shipped.jsonl\"\ninterval = \"50ms\"\n",
    );
    ws.write(
        "pipelines/daily.toml",
        r#"
[pipeline]
name = "daily"
schedule = "@daily"
start_date = "2026-01-01"
catchup = false

[[task]]
name = "mark"
type = "sql"
database = "../out/marks.db"
sql = "CREATE TABLE IF NOT EXISTS marks (ds TEXT); INSERT INTO marks VALUES ('{{ ds }}');"
"#,
    );
    std::fs::create_dir_all(ws.path("out")).unwrap();
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
    let local = || {
        hushflow_state::audit::AuditLog::open(&ws.state(), None)
            .unwrap()
            .list()
            .unwrap()
    };
    let shipped = || -> Vec<(u64, String)> {
        std::fs::read_to_string(ws.path("shipped.jsonl"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("{\"checkpoint\""))
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["seq"].as_u64().unwrap(),
                    v["hash"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let after_scheduler = local();
    assert!(
        after_scheduler
            .iter()
            .any(|r| r.pipeline.as_deref() == Some("daily")),
        "{after_scheduler:?}"
    );
    assert_eq!(
        shipped(),
        after_scheduler
            .iter()
            .map(|r| (r.seq, r.hash.clone()))
            .collect::<Vec<_>>()
    );

    ws.write("data/in.csv", "id,email\n1,ada@example.com\n");
    ws.write(
        "one.toml",
        r#"
[pipeline]
name = "one-off"
key = "id"
[source]
type = "csv"
path = "data/in.csv"
[policy]
fields.id = "keep"
[sink]
type = "jsonl"
path = "out/one.jsonl"
"#,
    );
    ws.ok(&["run", "one.toml"], 0);
    let all = local();
    assert!(all.len() > after_scheduler.len());
    assert_eq!(
        shipped(),
        all.iter()
            .map(|r| (r.seq, r.hash.clone()))
            .collect::<Vec<_>>()
    );
    // A bad target is refused when the file is read, naming the setting.
    ws.write("state/alerts.toml", "[audit]\nship_to = \"ftp://x\"\n");
    let r = ws.run(&["audit", "list"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("[audit] ship_to"), "{}", r.stderr);
}
