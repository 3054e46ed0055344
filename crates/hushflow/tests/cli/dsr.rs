//! Data subject requests through the real binary, across three pipelines writing PostgreSQL,
//! SQLite and a CSV file: `dsr erase` removes exactly the person's rows (found by the values
//! the pipelines wrote for them), shreds their subject keys, keeps them out of the next sync
//! and leaves every other row as it was; nothing it records or prints names them; a request
//! killed halfway resumes without doing anything twice; `dsr access` writes an export only the
//! requester's age identity opens.

use crate::common::*;

/// The person: planted in the source, looked for everywhere hushflow keeps or prints anything.
const EMAIL: &str = "Dsr.Canary+Probe@Example.org";
const ID: &str = "cust-canary-0077";
const NAME: &str = "Canaryname";

fn source() -> String {
    format!(
        "id,email,first_name,phone\n\
         c-1,ada@example.com,Ada,+14155550101\n\
         {ID},{EMAIL},{NAME},+14155550177\n\
         c-3,grace@example.com,Grace,+14155550103\n\
         c-4,alan@example.com,Alan,+14155550104\n"
    )
}

/// The PostgreSQL pipeline: id kept, email hashed, first name tokenized under a subject key.
const PG: &str = r#"
[pipeline]
name = "to-postgres"
key = "id"
[source]
type = "csv"
path = "../data/people.csv"
[policy]
fields.id = "keep"
fields.email = { hash = "hmac-sha256", key = "keyring:pepper", normalize = "email" }
fields.first_name = { tokenize = "aes-siv", key = "keyring:names", per_subject = true }
[sink]
type = "postgres"
url = "env:HF_DSR_DB"
table = "people"
"#;

/// The SQLite pipeline: even the key leaves hashed; the email as an audience-match hash.
const SQLITE: &str = r#"
[pipeline]
name = "to-sqlite"
key = "id"
[source]
type = "csv"
path = "../data/people.csv"
[policy]
fields.id = { hash = "hmac-sha256", key = "keyring:pepper" }
fields.email = { match_hash = "sha256", normalize = "email" }
fields.phone = { hash = "hmac-sha256", key = "keyring:pepper", normalize = "phone" }
[sink]
type = "sqlite"
path = "../out/people.db"
table = "people"
"#;

/// The file pipeline: rows are listed for manual action, never edited in place.
const FILE: &str = r#"
[pipeline]
name = "to-file"
key = "id"
[source]
type = "csv"
path = "../data/people.csv"
[policy]
fields.id = "keep"
fields.email = { hash = "hmac-sha256", key = "keyring:pepper", normalize = "email" }
fields.first_name = { tokenize = "aes-siv", key = "keyring:names" }
[sink]
type = "csv"
path = "../out/people.csv"
"#;

struct Setup {
    ws: Workspace,
    db: Option<Database>,
}

impl Setup {
    /// Keys, the source and the pipelines; PostgreSQL only when the server is there.
    fn new(tag: &str) -> Setup {
        let ws = Workspace::new();
        let db = Database::new(tag);
        ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
        ws.ok(&["keys", "create", "names", "--purpose", "tokenize"], 0);
        ws.write("data/people.csv", source());
        if db.is_some() {
            ws.write("pipelines/a_pg.toml", PG);
        }
        ws.write("pipelines/b_sqlite.toml", SQLITE);
        ws.write("pipelines/c_file.toml", FILE);
        Setup { ws, db }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        match &self.db {
            Some(db) => vec![("HF_DSR_DB", db.url())],
            None => Vec::new(),
        }
    }

    fn run(&self, args: &[&str], code: i32) -> Run {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = self.ws.run_with(args, &env);
        assert_eq!(r.code, code, "hushflow {args:?}\n{}", r.all());
        r
    }

    fn sync_all(&self) -> Vec<Run> {
        let mut runs = Vec::new();
        if self.db.is_some() {
            runs.push(self.run(&["run", "pipelines/a_pg.toml"], 0));
        }
        runs.push(self.run(&["run", "pipelines/b_sqlite.toml"], 0));
        runs.push(self.run(&["run", "pipelines/c_file.toml"], 0));
        runs
    }

    /// PostgreSQL rows as text, by id.
    fn pg_rows(&self) -> Vec<Vec<Option<String>>> {
        let Some(db) = &self.db else {
            return Vec::new();
        };
        db.client()
            .query(
                "SELECT id::text, email::text, first_name::text FROM people ORDER BY id",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (0..3).map(|i| r.get::<_, Option<String>>(i)).collect())
            .collect()
    }

    fn sqlite_rows(&self) -> Vec<Vec<Option<String>>> {
        let db = rusqlite::Connection::open(self.ws.path("out/people.db")).unwrap();
        let mut stmt = db
            .prepare("SELECT id, email, phone FROM people ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| {
            Ok((0..3)
                .map(|i| r.get::<_, Option<String>>(i).unwrap())
                .collect())
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    fn file_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.ws.path("out/people.csv"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        self.run(&["audit", "list", "--json"], 0)
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Every form the person could leak in.
fn canaries() -> Vec<String> {
    vec![
        EMAIL.to_string(),
        EMAIL.to_lowercase(),
        ID.to_string(),
        NAME.to_string(),
        "4155550177".to_string(),
    ]
}

fn assert_no_canary(what: &str, bytes: &[u8]) {
    for c in canaries() {
        assert!(!contains(bytes, &c), "{what} holds `{c}`");
    }
}

#[test]
fn erase_removes_exactly_the_person_shreds_their_keys_and_keeps_them_out() {
    let s = Setup::new("dsr_erase");
    s.sync_all();
    let pg_before = s.pg_rows();
    let sqlite_before = s.sqlite_rows();
    let file_before = s.file_lines();
    assert_eq!(sqlite_before.len(), 4);
    assert_eq!(file_before.len(), 5, "a header and four rows");
    // The person's token (per-subject key) and another's, to reverse afterwards.
    let tokens: Option<(String, String)> = (!pg_before.is_empty()).then(|| {
        let of = |id: &str| {
            pg_before
                .iter()
                .find(|r| r[0].as_deref() == Some(id))
                .and_then(|r| r[2].clone())
                .unwrap()
        };
        (of(ID), of("c-3"))
    });
    if let Some((theirs, other)) = &tokens {
        let r = s.run(&["detokenize", "--key", "keyring:names", theirs, other], 0);
        assert_eq!(r.stdout, format!("{NAME}\nGrace\n"));
    }

    // Another spelling of the address: found through the normalized form's pseudonyms.
    let erase = s.run(
        &[
            "-vv",
            "dsr",
            "erase",
            "--email",
            &EMAIL.to_uppercase(),
            "--pipelines",
            "pipelines",
            "--json",
        ],
        0,
    );
    assert_no_canary("erase's output", erase.all().as_bytes());
    assert!(
        !contains(erase.all().as_bytes(), &EMAIL.to_uppercase()),
        "{}",
        erase.all()
    );
    let view: serde_json::Value = serde_json::from_str(erase.stdout.trim()).unwrap();
    assert_eq!(view["state"], "done");
    assert_eq!(view["kind"], "erase");
    let id = view["id"].as_str().unwrap().to_string();
    let systems = view["systems"].as_array().unwrap();
    let state_of = |needle: &str| {
        systems
            .iter()
            .find(|s| s["system"].as_str().unwrap().contains(needle))
            .map(|s| {
                (
                    s["state"].as_str().unwrap().to_string(),
                    s["count"].as_i64().unwrap(),
                )
            })
            .unwrap_or_else(|| panic!("no system {needle}: {view}"))
    };
    assert_eq!(state_of("to-sqlite"), ("done".into(), 1));
    assert_eq!(state_of("to-file"), ("manual".into(), 1));
    let file_detail = systems
        .iter()
        .find(|s| s["system"].as_str().unwrap().contains("to-file"))
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(file_detail.contains("line(s) 3 "), "{file_detail}");
    assert_eq!(state_of("suppression list").0, "done");

    // Exactly the person's rows are gone; every other row is as it was.
    let others = |rows: &[Vec<Option<String>>], gone: &dyn Fn(&Vec<Option<String>>) -> bool| {
        rows.iter()
            .filter(|r| !gone(r))
            .cloned()
            .collect::<Vec<_>>()
    };
    if s.db.is_some() {
        assert_eq!(state_of("to-postgres"), ("done".into(), 1));
        let after = s.pg_rows();
        assert_eq!(after.len(), 3);
        assert_eq!(after, others(&pg_before, &|r| r[0].as_deref() == Some(ID)));
    }
    let sqlite_after = s.sqlite_rows();
    assert_eq!(sqlite_after.len(), 3);
    assert!(sqlite_after.iter().all(|r| sqlite_before.contains(r)));
    assert_eq!(
        s.file_lines(),
        file_before,
        "a file sink is listed, not edited"
    );

    // The person's subject key is shredded; another subject's token still reverses.
    if let Some((theirs, other)) = &tokens {
        let r = s.run(&["detokenize", "--key", "keyring:names", theirs], 1);
        assert!(r.stderr.contains("its subject was erased"), "{}", r.stderr);
        let r = s.run(&["detokenize", "--key", "keyring:names", other], 0);
        assert_eq!(r.stdout, "Grace\n");
    }

    // The next sync of each pipeline leaves the person out: suppressed, not written.
    let mut pipelines = vec!["pipelines/b_sqlite.toml", "pipelines/c_file.toml"];
    if s.db.is_some() {
        pipelines.push("pipelines/a_pg.toml");
    }
    for p in pipelines {
        let run = s.run(&["run", p, "--json"], 0);
        let summary: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
        let counts = if summary["counts"].is_object() {
            &summary["counts"]
        } else {
            &summary
        };
        assert_eq!(counts["suppressed"], 1, "{p}: {summary}");
        assert_eq!(counts["written"], 3, "{p}: {summary}");
    }
    if s.db.is_some() {
        assert_eq!(s.pg_rows().len(), 3);
        assert_eq!(
            s.pg_rows(),
            others(&pg_before, &|r| r[0].as_deref() == Some(ID))
        );
    }
    assert_eq!(s.sqlite_rows(), sqlite_after);
    let file_after = s.file_lines();
    assert_eq!(file_after.len(), 4);
    let mut expected = file_before.clone();
    expected.remove(2);
    assert_eq!(
        file_after, expected,
        "the rewritten file lacks only the person"
    );

    // One audit record per system touched, naming the request; none names the person.
    let audit = s.audit();
    let records: Vec<&serde_json::Value> = audit
        .iter()
        .filter(|r| r["action"] == "dsr.erase")
        .collect();
    let touched = if s.db.is_some() { 4 } else { 3 };
    assert_eq!(records.len(), touched, "{audit:?}");
    assert!(
        records
            .iter()
            .all(|r| r["detail"].as_str().unwrap().contains(&id))
    );
    assert_no_canary(
        "the audit log",
        serde_json::to_string(&audit).unwrap().as_bytes(),
    );
    for (path, bytes) in s.ws.bytes_under(&s.ws.state()) {
        assert_no_canary(&path.display().to_string(), &bytes);
    }

    // The request is kept with its deadline: 30 days for GDPR.
    let show = s.run(&["dsr", "show", &id, "--json"], 0);
    let shown: serde_json::Value = serde_json::from_str(show.stdout.trim()).unwrap();
    assert_eq!(shown["law"], "gdpr");
    assert_eq!(shown["state"], "done");
    let list = s.run(&["dsr", "list"], 0);
    assert!(list.stdout.contains(&id), "{}", list.stdout);
    assert_no_canary("dsr list", list.all().as_bytes());
}

#[test]
fn a_request_killed_halfway_resumes_and_does_nothing_twice() {
    let s = Setup::new("dsr_kill");
    s.sync_all();
    let marker = s.ws.path("paused");
    let mut child = s.ws.command();
    child
        .args([
            "dsr",
            "erase",
            "--subject",
            ID,
            "--pipelines",
            "pipelines",
            "--law",
            "ccpa",
        ])
        .env("HUSHFLOW_DSR_TEST_PAUSE", &marker)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in s.env() {
        child.env(k, v);
    }
    let mut child = child.spawn().unwrap();
    let start = std::time::Instant::now();
    while !marker.exists() {
        assert!(start.elapsed().as_secs() < 60, "the request never paused");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the request ended early"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SIGKILL: no chance to tidy up.
    child.kill().unwrap();
    child.wait().unwrap();
    let first = s
        .audit()
        .iter()
        .filter(|r| r["action"] == "dsr.erase")
        .count();
    assert_eq!(first, 1, "one system was done before the kill");

    let r = s.run(
        &[
            "dsr",
            "erase",
            "--subject",
            ID,
            "--pipelines",
            "pipelines",
            "--json",
        ],
        0,
    );
    let view: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(view["state"], "done");
    assert_eq!(
        view["law"], "ccpa",
        "the interrupted request resumed, with its law"
    );
    let list = s.run(&["dsr", "list", "--json"], 0);
    assert_eq!(
        list.stdout.lines().count(),
        1,
        "one request: {}",
        list.stdout
    );

    // Each system exactly once in the audit log, and each system once in the request.
    let audit = s.audit();
    let details: Vec<String> = audit
        .iter()
        .filter(|r| r["action"] == "dsr.erase")
        .map(|r| {
            let d = r["detail"].as_str().unwrap();
            // "request ID: SYSTEM: what was done"
            d.split(": ").nth(1).unwrap().to_string()
        })
        .collect();
    let mut unique = details.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        details.len(),
        "a system done twice: {details:?}"
    );
    let systems = view["systems"].as_array().unwrap();
    // The pipelines, the subject keys, the suppression list.
    let expected = if s.db.is_some() { 5 } else { 4 };
    assert_eq!(systems.len(), expected, "{view}");
    if s.db.is_some() {
        assert_eq!(s.pg_rows().len(), 3);
    }
    assert_eq!(s.sqlite_rows().len(), 3, "found by the key's hash");
}

#[test]
fn access_exports_exactly_the_persons_rows_for_the_requester_only() {
    let s = Setup::new("dsr_access");
    s.sync_all();
    let identity = s.ws.path("requester.key");
    let keygen = std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(&identity)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let recipient = String::from_utf8_lossy(&keygen.stderr)
        .trim()
        .trim_start_matches("Public key: ")
        .to_string();
    let r = s.run(
        &[
            "dsr",
            "access",
            "--email",
            EMAIL,
            "--pipelines",
            "pipelines",
            "--recipient",
            &recipient,
            "-o",
            "export.age",
        ],
        0,
    );
    assert_no_canary("access's output", r.all().as_bytes());
    let sealed = std::fs::read(s.ws.path("export.age")).unwrap();
    assert_no_canary("the encrypted export", &sealed);
    let opened = std::process::Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&identity)
        .arg(s.ws.path("export.age"))
        .output()
        .unwrap();
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&opened.stdout).unwrap();
    let rows = doc["rows"].as_array().unwrap();
    let expected = if s.db.is_some() { 3 } else { 2 };
    assert_eq!(rows.len(), expected, "{doc}");
    // The rows are the person's and no one else's.
    let pg = s.pg_rows();
    for row in rows {
        match row["pipeline"].as_str().unwrap() {
            "to-postgres" => {
                let theirs = pg.iter().find(|r| r[0].as_deref() == Some(ID)).unwrap();
                assert_eq!(row["row"]["email"].as_str(), theirs[1].as_deref());
            }
            "to-sqlite" => {
                let all = s.sqlite_rows();
                assert!(
                    all.iter()
                        .any(|r| r[1].as_deref() == row["row"]["email"].as_str())
                );
            }
            "to-file" => assert_eq!(row["row"]["id"], ID),
            other => panic!("{other}"),
        }
    }
    let audit = s.audit();
    assert!(audit.iter().any(|r| r["action"] == "dsr.access.export"));
    assert_no_canary(
        "the audit log",
        serde_json::to_string(&audit).unwrap().as_bytes(),
    );
    // Access changes nothing.
    assert_eq!(s.sqlite_rows().len(), 4);
}

/// A sink with `retain`: `retention enforce` deletes exactly the rows whose timestamp is past
/// it, in SQLite and PostgreSQL, and audits each sink with its count.
#[test]
fn retention_enforce_deletes_only_rows_past_their_retention() {
    let ws = Workspace::new();
    let db = Database::new("dsr_retention");
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    let recent = "2099-01-01T00:00:00Z";
    ws.write(
        "data/people.csv",
        format!(
            "id,email,updated_at\nr-1,a@example.com,2001-02-03T04:05:06Z\n\
             r-2,b@example.com,{recent}\nr-3,c@example.com,2010-01-01T00:00:00Z\n"
        ),
    );
    let policy = r#"
[policy]
fields.id = "keep"
fields.email = { hash = "hmac-sha256", key = "keyring:pepper", normalize = "email" }
fields.updated_at = { type = "timestamp" }
"#;
    let head = |name: &str| {
        format!(
            "[pipeline]\nname = \"{name}\"\nkey = \"id\"\n[source]\ntype = \"csv\"\npath = \"../data/people.csv\"\n{policy}"
        )
    };
    ws.write(
        "pipelines/lite.toml",
        format!(
            "{}[sink]\ntype = \"sqlite\"\npath = \"../out/r.db\"\ntable = \"people\"\nretain = \"400d\"\nretain_by = \"updated_at\"\n",
            head("lite")
        ),
    );
    let env: Vec<(&str, String)> = match &db {
        Some(db) => {
            ws.write(
                "pipelines/pg.toml",
                format!(
                    "{}[sink]\ntype = \"postgres\"\nurl = \"env:HF_RET_DB\"\ntable = \"people\"\nretain = \"400d\"\nretain_by = \"updated_at\"\n",
                    head("pg")
                ),
            );
            vec![("HF_RET_DB", db.url())]
        }
        None => Vec::new(),
    };
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut files = vec!["pipelines/lite.toml"];
    if db.is_some() {
        files.push("pipelines/pg.toml");
    }
    for f in &files {
        let r = ws.run_with(&["run", f], &env);
        assert_eq!(r.code, 0, "{}", r.all());
    }
    // `retain` without `retain_by` is refused before anything runs.
    ws.write(
        "bad/p.toml",
        format!(
            "{}[sink]\ntype = \"sqlite\"\npath = \"../out/x.db\"\ntable = \"t\"\nretain = \"400d\"\n",
            head("bad")
        ),
    );
    let bad = ws.run(&["validate", "bad/p.toml"]);
    assert_eq!(bad.code, 2, "{}", bad.all());
    assert!(bad.all().contains("retain_by"), "{}", bad.all());

    let r = ws.run_with(
        &["retention", "enforce", "--pipelines", "pipelines", "--json"],
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let views: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(views.len(), files.len());
    assert!(views.iter().all(|v| v["rows_deleted"] == 2), "{views:?}");
    let lite = rusqlite::Connection::open(ws.path("out/r.db")).unwrap();
    let left: Vec<String> = lite
        .prepare("SELECT id FROM people")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(left, ["r-2"]);
    if let Some(db) = &db {
        let left: Vec<String> = db
            .client()
            .query("SELECT id FROM people", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(left, ["r-2"]);
    }
    let audit = ws.ok(&["audit", "list", "--json"], 0);
    let records: Vec<serde_json::Value> = audit
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["action"] == "retention.enforce")
        .collect();
    assert_eq!(records.len(), files.len());
    assert!(records.iter().all(|r| r["counts"]["rows_deleted"] == 2));
    // Enforcing again finds nothing more to delete.
    let again = ws.run_with(&["retention", "enforce", "--pipelines", "pipelines"], &env);
    assert!(again.stdout.contains("deleted 0 row(s)"), "{}", again.all());
}

/// `dsr opt-out` changes no sink itself; the next sync leaves the person out and withdraws
/// their row from a keyed sink.
#[test]
fn opt_out_only_suppresses_and_the_next_sync_withdraws() {
    let s = Setup::new("dsr_optout");
    s.sync_all();
    let before = s.sqlite_rows();
    let r = s.run(
        &[
            "dsr",
            "opt-out",
            "--phone",
            "+1 (415) 555-0177",
            "--pipelines",
            "pipelines",
            "--law",
            "ccpa",
            "--json",
        ],
        0,
    );
    assert_no_canary("opt-out's output", r.all().as_bytes());
    let view: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let systems: Vec<&str> = view["systems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["system"].as_str().unwrap())
        .collect();
    assert_eq!(systems, ["suppression list"]);
    assert_eq!(s.sqlite_rows(), before, "opt-out deletes nothing itself");
    let run = s.run(&["run", "pipelines/b_sqlite.toml", "--json"], 0);
    let summary: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let counts = if summary["counts"].is_object() {
        &summary["counts"]
    } else {
        &summary
    };
    assert_eq!(counts["suppressed"], 1, "{summary}");
    assert_eq!(counts["withdrawn"], 1, "{summary}");
    assert_eq!(s.sqlite_rows().len(), 3);
    let audit = s.audit();
    assert_eq!(
        audit
            .iter()
            .filter(|r| r["action"] == "dsr.opt-out")
            .count(),
        1
    );
}

/// A DAG's `retention` task enforces the retention of its file's sync sinks, after the sync.
#[test]
fn a_retention_task_enforces_its_dags_sinks() {
    let ws = Workspace::new();
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    ws.write(
        "data/people.csv",
        "id,email,updated_at\nr-1,a@example.com,2001-02-03T04:05:06Z\n\
         r-2,b@example.com,2099-01-01T00:00:00Z\n",
    );
    ws.write(
        "nightly.toml",
        r#"
[pipeline]
name = "nightly"
key = "id"

[[task]]
name = "load"
source = { type = "csv", path = "data/people.csv" }
policy = { fields = { id = "keep", email = { hash = "hmac-sha256", key = "keyring:pepper", normalize = "email" }, updated_at = { type = "timestamp" } } }
sink = { type = "sqlite", path = "out/r.db", table = "people", retain = "400d", retain_by = "updated_at" }

[[task]]
name = "expire"
type = "retention"
depends_on = ["load"]
"#,
    );
    let v = ws.ok(&["validate", "nightly.toml"], 0);
    assert!(v.stdout.contains("expire [retention]"), "{}", v.stdout);
    ws.ok(&["trigger", "nightly.toml", "--wait"], 0);
    let lite = rusqlite::Connection::open(ws.path("out/r.db")).unwrap();
    let n: i64 = lite
        .query_row("SELECT count(*) FROM people", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1, "the row past retention is gone after the DAG");
    let audit = ws.ok(&["audit", "list", "--json"], 0);
    assert!(
        audit.stdout.contains("retention.enforce"),
        "{}",
        audit.stdout
    );
}
