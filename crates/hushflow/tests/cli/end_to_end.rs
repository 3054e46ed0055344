//! The whole path through the real binary: sample → keys → validate → run → audit.

use crate::common::*;

fn count_rows(db: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT count(*) FROM leads", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn sample_run_sqlite_upsert_is_idempotent_and_audited() {
    let ws = Workspace::new();
    ws.ok(
        &[
            "sample",
            "contacts",
            "--rows",
            "5000",
            "--seed",
            "3",
            "--out",
            "data/contacts.csv",
        ],
        0,
    );
    ws.ok(&["keys", "create", "pepper"], 0);
    ws.write("p.toml", pipeline(SQLITE_SINK));

    let v = ws.ok(&["validate", "p.toml"], 0);
    assert!(v.stdout.contains("email"), "{}", v.stdout);
    assert!(
        v.stdout.contains("HMAC-SHA256 with keyring:pepper"),
        "{}",
        v.stdout
    );
    // The plan lists the header's unnamed fields as dropped.
    assert!(
        v.stdout.contains("first_name") && v.stdout.contains("dropped"),
        "{}",
        v.stdout
    );

    let r = ws.ok(&["run", "p.toml"], 0);
    assert!(
        r.stdout
            .contains("read 5000, written 5000, filtered 0, quarantined 0"),
        "{}",
        r.stdout
    );
    let db = ws.path("out/leads.db");
    assert_eq!(count_rows(&db), 5000);

    // Only the policy's output fields exist, and emails are 64-hex pseudonyms.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let cols: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('leads')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(cols, ["id", "email", "country"]);
    let bad: i64 = conn
        .query_row(
            "SELECT count(*) FROM leads WHERE email IS NOT NULL AND (length(email) != 64 OR email GLOB '*[^0-9a-f]*')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0);

    // Same pipeline again: same table, no duplicates.
    ws.ok(&["run", "p.toml"], 0);
    assert_eq!(count_rows(&db), 5000);

    let a = ws.ok(&["audit", "list", "--json"], 0);
    let records: Vec<serde_json::Value> = a
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["keys.create", "run", "run"]);
    assert_eq!(records[1]["counts"]["read"], 5000);
    assert_eq!(records[1]["outcome"], "success");
    assert_eq!(records[1]["pipeline"], "test-pipeline");
    assert_eq!(records[1]["policy_fingerprint"].as_str().unwrap().len(), 64);
    ws.ok(&["audit", "verify"], 0);
}

#[test]
fn csv_to_csv_keeps_order_and_drops_unlisted_fields() {
    let ws = Workspace::new();
    ws.ok(
        &[
            "sample",
            "contacts",
            "--rows",
            "300",
            "--seed",
            "1",
            "--out",
            "data/contacts.csv",
        ],
        0,
    );
    ws.ok(&["keys", "create", "pepper"], 0);
    ws.write("p.toml", pipeline(CSV_SINK));
    ws.ok(&["run", "p.toml"], 0);

    let mut input = csv::Reader::from_path(ws.path("data/contacts.csv")).unwrap();
    let ids_in: Vec<String> = input.records().map(|r| r.unwrap()[0].to_string()).collect();
    let mut output = csv::Reader::from_path(ws.path("out/leads.csv")).unwrap();
    assert_eq!(output.headers().unwrap(), vec!["id", "email", "country"]);
    let ids_out: Vec<String> = output
        .records()
        .map(|r| r.unwrap()[0].to_string())
        .collect();
    assert_eq!(ids_in, ids_out);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(ws.path("out/leads.csv"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "output is private to its owner");
}

#[test]
fn jsonl_source_to_jsonl_sink_keeps_types() {
    let ws = Workspace::new();
    ws.ok(
        &[
            "sample",
            "contacts",
            "--rows",
            "200",
            "--format",
            "jsonl",
            "--out",
            "data/contacts.jsonl",
        ],
        0,
    );
    ws.write(
        "p.toml",
        r#"
[pipeline]
name = "jsonl"
key = "id"
[source]
type = "jsonl"
path = "data/contacts.jsonl"
[policy]
fields.id = "keep"
fields.marketing_opt_in = "keep"
fields.country = "null"
[sink]
type = "jsonl"
path = "out/leads.jsonl"
"#,
    );
    ws.ok(&["run", "p.toml"], 0);
    let text = std::fs::read_to_string(ws.path("out/leads.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 200);
    for (line, row) in text.lines().zip(&rows) {
        // Keys in policy order (serde_json's map sorts them, so look at the text).
        assert!(line.starts_with("{\"id\":"), "{line}");
        assert!(
            line.find("\"marketing_opt_in\"") < line.find("\"country\""),
            "{line}"
        );
        let obj = row.as_object().unwrap();
        assert!(obj["country"].is_null());
        assert!(obj["marketing_opt_in"].is_boolean() || obj["marketing_opt_in"].is_null());
    }
}

#[test]
fn keys_list_shows_names_never_material() {
    let ws = Workspace::new();
    ws.ok(&["keys", "create", "pepper"], 0);
    ws.ok(&["keys", "create", "pepper"], 2); // exists already
    ws.ok(&["keys", "create", "pepper", "--if-missing"], 0);
    let list = ws.ok(&["keys", "list"], 0);
    assert!(list.stdout.starts_with("pepper"), "{}", list.stdout);
    let keyring = std::fs::read_to_string(ws.state().join("keyring.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&keyring).unwrap();
    let material = doc.to_string();
    // No run of 20+ characters of the stored file's material shows up in the listing.
    for word in material.split(|c: char| !c.is_ascii_alphanumeric() && c != '+' && c != '/') {
        if word.len() >= 20 {
            assert!(!list.all().contains(word), "material leaked into keys list");
        }
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(ws.state().join("keyring.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mode = std::fs::metadata(ws.state()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

/// A consent pipeline into a SQLite upsert table, with a suppression list.
fn consent_pipeline(on_withdrawal: &str) -> String {
    format!(
        r#"
[pipeline]
name = "withdrawals"
key = "id"
{on_withdrawal}

[source]
type = "csv"
path = "data/contacts.csv"

[policy]
fields.id = "keep"
fields.email = {{ hash = "hmac-sha256", key = "keyring:pepper", normalize = "email" }}
fields.country = "keep"

[policy.consent]
field = "opt_in"

[policy.suppression]
file = "suppressed.txt"
field = "email"

[sink]
type = "sqlite"
path = "out/leads.db"
table = "leads"
"#
    )
}

fn rows(db: &std::path::Path) -> Vec<(String, Option<String>, Option<String>)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, email, country FROM leads ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Consent withdrawn and a new suppression reach rows already synced: by default their rows
/// are deleted in the batch's transaction, counted and audited; `tombstone` keeps the key with
/// every other column nulled; `keep` leaves them.
#[test]
fn withdrawn_consent_and_new_suppressions_remove_rows_already_synced() {
    for (setting, expect) in [
        ("", "deleted"),
        ("on_withdrawal = \"delete\"", "deleted"),
        ("on_withdrawal = \"tombstone\"", "tombstoned"),
        ("on_withdrawal = \"keep\"", "kept"),
    ] {
        let ws = Workspace::new();
        ws.ok(&["keys", "create", "pepper"], 0);
        ws.write(
            "data/contacts.csv",
            "id,email,country,opt_in\n1,ann@example.com,DE,yes\n2,bob@example.com,FR,yes\n\
             3,cat@example.com,ES,yes\n",
        );
        ws.write("suppressed.txt", "# nobody yet\n");
        ws.write("p.toml", consent_pipeline(setting));
        ws.ok(&["run", "p.toml"], 0);
        let db = ws.path("out/leads.db");
        assert_eq!(rows(&db).len(), 3, "{setting}");

        // Bob withdraws consent; Cat asks to be suppressed.
        ws.write(
            "data/contacts.csv",
            "id,email,country,opt_in\n1,ann@example.com,DE,yes\n2,bob@example.com,FR,no\n\
             3,cat@example.com,ES,yes\n",
        );
        ws.write("suppressed.txt", "Cat@Example.com\n");
        let v = ws.ok(&["validate", "p.toml"], 0);
        assert!(v.stdout.contains("withdraw "), "{}", v.stdout);
        let r = ws.ok(&["run", "p.toml"], 0);
        assert!(r.stdout.contains("filtered 2"), "{}", r.stdout);
        let left = rows(&db);
        match expect {
            "deleted" => {
                assert_eq!(left.len(), 1, "{setting}: {left:?}");
                assert_eq!(left[0].0, "1");
                assert!(r.stdout.contains("withdrawn: 2 record(s)"), "{}", r.stdout);
            }
            "tombstoned" => {
                assert_eq!(left.len(), 3, "{setting}: {left:?}");
                assert_eq!(left[1], ("2".into(), None, None), "{left:?}");
                assert_eq!(left[2], ("3".into(), None, None), "{left:?}");
                assert!(left[0].1.is_some());
                assert!(r.stdout.contains("tombstoned"), "{}", r.stdout);
            }
            _ => {
                assert_eq!(left.len(), 3, "{setting}: {left:?}");
                assert!(left.iter().all(|r| r.1.is_some()), "{left:?}");
                assert!(!r.stdout.contains("withdrawn"), "{}", r.stdout);
            }
        }
        let audit = ws.ok(&["audit", "list", "--json"], 0).stdout;
        let last_run = audit
            .lines()
            .rfind(|l| l.contains("\"action\":\"run\""))
            .unwrap();
        let withdrawn = if expect == "kept" { 0 } else { 2 };
        assert!(
            last_run.contains(&format!("\"withdrawn\":{withdrawn}")),
            "{last_run}"
        );
    }
}

/// A file sink is written anew each run, so withdrawn records are left out of it; settings that
/// need a table (tombstone, keep) are refused at validation.
#[test]
fn file_sinks_leave_withdrawn_records_out_and_refuse_tombstones() {
    let ws = Workspace::new();
    ws.ok(&["keys", "create", "pepper"], 0);
    ws.write(
        "data/contacts.csv",
        "id,email,country,opt_in\n1,a@example.com,DE,yes\n",
    );
    ws.write("suppressed.txt", "");
    let text = consent_pipeline("on_withdrawal = \"tombstone\"").replace(
        "type = \"sqlite\"\npath = \"out/leads.db\"\ntable = \"leads\"",
        "type = \"csv\"\npath = \"out/leads.csv\"",
    );
    ws.write("p.toml", &text);
    let v = ws.run(&["validate", "p.toml"]);
    assert_ne!(v.code, 0, "{}", v.all());
    assert!(v.all().contains("pipeline.on_withdrawal"), "{}", v.all());
    ws.write("p.toml", text.replace("on_withdrawal = \"tombstone\"", ""));
    let v = ws.ok(&["validate", "p.toml"], 0);
    assert!(v.stdout.contains("left out of the file"), "{}", v.stdout);
}

/// `validate` fails (exit 2) on what would fail the run; `--offline` checks the file without
/// the secrets it names; `check` opens the source and connects to the sink, and its errors say
/// which end, host and port.
#[test]
fn validate_fails_when_the_run_would_and_check_connects() {
    let ws = Workspace::new();
    ws.write(
        "data/contacts.csv",
        "id,email,country\n1,a@example.com,DE\n",
    );
    // The policy reads `notes`, which the header lacks: the run would stop at once.
    let text = pipeline(SQLITE_SINK).replace(
        "fields.notes = \"drop\"",
        "fields.notes = { redact = [\"email\"] }",
    );
    ws.write("bad.toml", &text);
    let r = ws.run(&["validate", "bad.toml"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains("policy.fields.notes"), "{}", r.all());
    assert!(!r.stdout.contains("valid"), "{}", r.stdout);

    // The key is an environment variable CI does not have: offline still validates the file.
    let text = pipeline(SQLITE_SINK).replace("keyring:pepper", "env:HF_TEST_UNSET_PEPPER");
    ws.write("p.toml", &text);
    let r = ws.run(&["validate", "p.toml"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains("HF_TEST_UNSET_PEPPER"), "{}", r.all());
    let r = ws.ok(&["validate", "--offline", "p.toml"], 0);
    assert!(r.stdout.contains("p.toml: valid"), "{}", r.stdout);

    // check: a file pipeline whose sink directory is missing fails; once made, it passes.
    ws.ok(&["keys", "create", "pepper"], 0);
    ws.write("ok.toml", pipeline(CSV_SINK));
    let r = ws.run(&["check", "ok.toml"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("the sink's directory"), "{}", r.all());
    std::fs::create_dir_all(ws.path("out")).unwrap();
    let r = ws.ok(&["check", "ok.toml"], 0);
    assert!(r.stdout.contains("checked"), "{}", r.stdout);
    assert!(!ws.path("out/leads.csv").exists(), "check writes nothing");

    // A database nobody listens on: the error names the end, the host and the port, and
    // never the password.
    ws.write(
        "pg.toml",
        pipeline("[sink]\ntype = \"postgres\"\nurl = \"env:HF_DST\"\ntable = \"leads\"\n"),
    );
    let r = ws.run_with(
        &["check", "pg.toml"],
        &[("HF_DST", "postgres://u:pw-canary-77@127.0.0.1:1/db")],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.all()
            .contains("the sink: connecting to PostgreSQL at 127.0.0.1:1"),
        "{}",
        r.all()
    );
    assert!(!r.all().contains("pw-canary-77"), "{}", r.all());
}

/// `run --json` prints the summary as one JSON object, and `completions` a shell script.
#[test]
fn run_json_summary_and_shell_completions() {
    let ws = Workspace::new();
    ws.write(
        "data/contacts.csv",
        "id,email,country\n1,json-canary@example.com,DE\n2,b@example.com,FR\n",
    );
    ws.ok(&["keys", "create", "pepper"], 0);
    ws.write("p.toml", pipeline(SQLITE_SINK));
    let r = ws.ok(&["run", "p.toml", "--json"], 0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", r.stdout);
    let summary: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(summary["pipeline"], "test-pipeline");
    assert_eq!(summary["outcome"], "success");
    assert_eq!(summary["counts"]["read"], 2);
    assert_eq!(summary["counts"]["written"], 2);
    // A sync's id is a `sync_id`: a "run" is a run of the metadata store. `run_id` stays as
    // its old name within view version 1.
    let sync_id = summary["sync_id"].as_str().unwrap();
    assert_eq!(summary["run_id"], sync_id);
    assert!(
        sync_id.ends_with('Z') && !sync_id.starts_with("manual__"),
        "{sync_id}"
    );
    assert!(!r.all().contains("json-canary"), "{}", r.all());

    let c = ws.ok(&["completions", "bash"], 0);
    assert!(c.stdout.contains("_hushflow()"), "{}", c.stdout);
}
