//! The whole path through the real binary: sample → keys → validate → run → audit.

mod common;
use common::*;

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
