//! `hushflow quarantine replay`: records a run set aside go through the fixed pipeline again;
//! those that still fail are quarantined again under their original lines; the replay is
//! audited; a file sink's output is not replaced.

use crate::common::*;

const DATA: &str = "id,email,phone,country\n\
1,a@example.com,+49 30 901820,DE\n\
2,b@example.com,not-a-phone-canary,FR\n\
3,c@example.com\n\
4,d@example.com,+33 1 44 60 56 93,FR\n";

fn pipeline(phone_rule: &str, sink: &str) -> String {
    format!(
        r#"
[pipeline]
name = "leads"
key = "id"

[source]
type = "csv"
path = "data/contacts.csv"

[policy]
fields.id = "keep"
fields.email = "keep"
fields.phone = {phone_rule}
fields.country = "keep"

{sink}
"#
    )
}

const PHONE_HASH: &str =
    r#"{ hash = "hmac-sha256", key = "keyring:pepper", normalize = "phone", region = "DE" }"#;
const PHONE_MASK: &str = r#"{ mask = { keep_last = 4 } }"#;

fn ids(db: &std::path::Path) -> Vec<String> {
    let db = rusqlite::Connection::open(db).unwrap();
    let mut stmt = db.prepare("SELECT id FROM leads ORDER BY id").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_fixed_pipeline_takes_the_records_and_what_still_fails_stays_quarantined() {
    let ws = Workspace::new();
    ws.write("data/contacts.csv", DATA);
    ws.ok(&["keys", "create", "pepper"], 0);
    ws.write("p.toml", pipeline(PHONE_HASH, SQLITE_SINK));
    let r = ws.ok(&["run", "p.toml"], 3);
    assert!(r.stdout.contains("quarantined 2"), "{}", r.stdout);
    assert_eq!(ids(&ws.path("out/leads.db")), ["1", "4"]);
    let list = ws.ok(&["quarantine", "list", "--json"], 0);
    let entry: serde_json::Value = serde_json::from_str(list.stdout.trim()).unwrap();
    assert_eq!(entry["records"], 2);
    assert_eq!(entry["reasons"]["invalid_field"], 1);
    assert_eq!(entry["reasons"]["wrong_field_count"], 1);
    let run = entry["run"].as_str().unwrap().to_string();

    // The phone is masked now instead of normalized: record 2 goes through; record 3 is still
    // short a field and is set aside again, under its line (4).
    ws.write("p.toml", pipeline(PHONE_MASK, SQLITE_SINK));
    // The run recorded its pipeline file: the fixed file is found without --pipeline.
    let r = ws.ok(&["quarantine", "replay", &run], 3);
    assert!(
        r.stdout.contains("replaying 2 quarantined records"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("read 2, written 1, filtered 0, quarantined 1"),
        "{}",
        r.stdout
    );
    assert!(!r.all().contains("canary"), "{}", r.all());
    assert_eq!(ids(&ws.path("out/leads.db")), ["1", "2", "4"]);

    let list = ws.ok(&["quarantine", "list", "--json"], 0);
    let entries: Vec<serde_json::Value> = list
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 2, "the original and the replay's quarantine");
    let again = entries.iter().find(|e| e["run"] != run.as_str()).unwrap();
    ws.ok(
        &[
            "quarantine",
            "export",
            again["run"].as_str().unwrap(),
            "--out",
            "again.jsonl",
        ],
        0,
    );
    let q: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(ws.path("again.jsonl"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    assert_eq!(q["line"], 4);
    assert_eq!(q["code"], "wrong_field_count");
    assert_eq!(q["record"], "3,c@example.com");

    let audit = ws.ok(&["audit", "list", "--json"], 0);
    let last: serde_json::Value = audit
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .rfind(|r| r["action"] == "run")
        .unwrap();
    assert_eq!(last["counts"]["written"], 1);
    assert!(
        last["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("replay of the quarantine of run {run}")),
        "{last}"
    );
}

#[test]
fn a_file_sink_is_not_replaced_and_the_wrong_pipeline_is_refused() {
    let ws = Workspace::new();
    ws.write("data/contacts.csv", DATA);
    ws.ok(&["keys", "create", "pepper"], 0);
    ws.write("p.toml", pipeline(PHONE_HASH, CSV_SINK));
    ws.ok(&["run", "p.toml"], 3);
    let before = std::fs::read_to_string(ws.path("out/leads.csv")).unwrap();

    let other = pipeline(PHONE_MASK, CSV_SINK).replace("name = \"leads\"", "name = \"other\"");
    ws.write("other.toml", other);
    let r = ws.ok(
        &["quarantine", "replay", "leads", "--pipeline", "other.toml"],
        2,
    );
    assert!(r.stderr.contains("pipeline `leads`"), "{}", r.stderr);

    ws.write("p.toml", pipeline(PHONE_MASK, CSV_SINK));
    let r = ws.ok(
        &["quarantine", "replay", "leads", "--pipeline", "p.toml"],
        3,
    );
    assert_eq!(
        std::fs::read_to_string(ws.path("out/leads.csv")).unwrap(),
        before
    );
    let replayed: Vec<_> = std::fs::read_dir(ws.path("out"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("leads.replay-") && n.ends_with(".csv"))
        .collect();
    assert_eq!(replayed.len(), 1, "{replayed:?} {}", r.stdout);
    let text = std::fs::read_to_string(ws.path("out").join(&replayed[0])).unwrap();
    assert_eq!(text.lines().count(), 2, "header and record 2: {text}");
    assert!(
        text.lines().nth(1).unwrap().starts_with("2,b@example.com,"),
        "{text}"
    );
}
