//! `hushflow quarantine replay`: records a run set aside go through the fixed pipeline again;
//! those that still fail are quarantined again under their original lines; the replay is
//! audited with the fingerprint of the pipeline the operator named; a file sink's output is not
//! replaced; a replay never runs a pipeline the state directory names, and refuses a
//! quarantine or sidecar hushflow did not write.

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
    let run = entry["sync_id"].as_str().unwrap().to_string();
    assert_eq!(
        entry["run"],
        run.as_str(),
        "the old name, within view version 1"
    );

    // The phone is masked now instead of normalized: record 2 goes through; record 3 is still
    // short a field and is set aside again, under its line (4).
    ws.write("p.toml", pipeline(PHONE_MASK, SQLITE_SINK));
    let r = ws.ok(&["quarantine", "replay", &run, "--pipeline", "p.toml"], 3);
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
    // Of a row of the wrong width nothing is kept: it cannot be replayed, and says so again.
    assert_eq!(q["code"], "not_kept", "{q}");
    let reason = q["reason"].as_str().unwrap();
    assert!(
        reason.contains("wrong_field_count") && reason.contains("cannot be replayed"),
        "{q}"
    );
    assert!(!q.to_string().contains("c@example.com"), "{q}");

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

/// `policy sha256:…` as `hushflow validate` prints it: the fingerprint the audit log keeps.
fn fingerprint(ws: &Workspace, pipeline: &str) -> String {
    let r = ws.ok(&["validate", pipeline], 0);
    r.stdout
        .lines()
        .find_map(|l| l.strip_prefix("policy"))
        .and_then(|l| l.trim().strip_prefix("sha256:"))
        .unwrap()
        .to_string()
}

/// The finding: the sidecar's `pipeline_file` was trusted, so pointing it at a keep-everything
/// pipeline wrote the quarantined records in plain text where its author chose. The sidecar
/// names no pipeline now, a replay runs only the file given with --pipeline, and the audit
/// record carries that pipeline's fingerprint and path.
#[test]
fn a_replay_runs_only_the_pipeline_the_operator_names() {
    let ws = Workspace::new();
    ws.write("data/contacts.csv", DATA);
    ws.ok(&["keys", "create", "pepper"], 0);
    ws.write("p.toml", pipeline(PHONE_HASH, SQLITE_SINK));
    ws.ok(&["run", "p.toml"], 3);
    let quarantine: Vec<_> = std::fs::read_dir(ws.state().join("quarantine"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let sidecar = quarantine
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".meta.json"))
        .unwrap();
    let run = ws.ok(&["quarantine", "list", "--json"], 0);
    let run: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let run = run["run"].as_str().unwrap().to_string();

    // A pipeline of the same name that keeps everything and writes it to a CSV file elsewhere.
    let evil = pipeline(r#""keep""#, CSV_SINK).replace("out/leads.csv", "stolen/leads.csv");
    let evil = ws.write("evil.toml", evil);
    std::fs::create_dir_all(ws.path("stolen")).unwrap();
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sidecar).unwrap()).unwrap();
    meta["pipeline_file"] = evil.to_string_lossy().into_owned().into();
    std::fs::write(sidecar, meta.to_string()).unwrap();

    let r = ws.run(&["quarantine", "replay", &run]);
    assert_eq!(
        std::fs::read_dir(ws.path("stolen")).unwrap().count(),
        0,
        "nothing was written where the sidecar pointed"
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--pipeline"), "{}", r.stderr);
    // The edited sidecar no longer authenticates, even with the right pipeline.
    ws.write("p.toml", pipeline(PHONE_MASK, SQLITE_SINK));
    let r = ws.ok(&["quarantine", "replay", &run, "--pipeline", "p.toml"], 1);
    assert!(
        r.stderr.contains(".meta.json: does not authenticate"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains("canary"), "{}", r.all());
}

#[test]
fn the_audit_record_of_a_replay_names_the_pipeline_run_and_its_fingerprint() {
    let ws = Workspace::new();
    ws.write("data/contacts.csv", DATA);
    ws.ok(&["keys", "create", "pepper"], 0);
    ws.write("p.toml", pipeline(PHONE_HASH, SQLITE_SINK));
    ws.ok(&["run", "p.toml"], 3);
    let fixed = pipeline(PHONE_MASK, SQLITE_SINK);
    ws.write("fixed.toml", &fixed);
    ws.ok(
        &["quarantine", "replay", "leads", "--pipeline", "fixed.toml"],
        3,
    );
    let audit = ws.ok(&["audit", "list", "--json"], 0);
    let last: serde_json::Value = audit
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .rfind(|r| r["action"] == "run")
        .unwrap();
    assert_eq!(last["policy_fingerprint"], fingerprint(&ws, "fixed.toml"));
    assert_ne!(last["policy_fingerprint"], fingerprint(&ws, "p.toml"));
    let detail = last["detail"].as_str().unwrap();
    let file = std::fs::canonicalize(ws.path("fixed.toml")).unwrap();
    assert!(
        detail.contains(&format!("through {}", file.display())),
        "{detail}"
    );
}

/// A quarantine file someone made with `age -r` (the state recipient is public), or a sidecar
/// someone edited, is not replayed: the sink gets none of its records.
#[test]
fn a_forged_quarantine_or_edited_sidecar_is_not_replayed() {
    let ws = Workspace::new();
    ws.write("data/contacts.csv", DATA);
    ws.ok(&["keys", "create", "pepper"], 0);
    ws.write("p.toml", pipeline(PHONE_HASH, SQLITE_SINK));
    ws.ok(&["run", "p.toml"], 3);
    ws.write("p.toml", pipeline(PHONE_MASK, SQLITE_SINK));
    ws.ok(&["keys", "export-identity", "--out", "identity.txt"], 0);
    let recipient = std::process::Command::new("age-keygen")
        .arg("-y")
        .arg(ws.path("identity.txt"))
        .output()
        .unwrap();
    assert!(recipient.status.success());
    let recipient = String::from_utf8(recipient.stdout)
        .unwrap()
        .trim()
        .to_string();
    let file = std::fs::read_dir(ws.state().join("quarantine"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".jsonl.age"))
        .unwrap();
    let mut sidecar = file.clone().into_os_string();
    sidecar.push(".meta.json");
    let sidecar = std::path::PathBuf::from(sidecar);
    let (original, original_meta) = (
        std::fs::read(&file).unwrap(),
        std::fs::read(&sidecar).unwrap(),
    );

    // Records of the forger's choosing, as many as the sidecar counts.
    let row = serde_json::json!({
        "id": "666", "email": "forged@example.com", "phone": "+49 30 901820", "country": "DE"
    });
    let lines = [
        serde_json::json!({
            "line": 3, "code": "invalid_field", "reason": "x", "record": row.to_string()
        }),
        serde_json::json!({
            "line": 4, "code": "wrong_field_count", "reason": "x",
            "record": "667,x@example.com,+49 30 901820,DE"
        }),
    ];
    let forged = ws.write(
        "forged.jsonl",
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    );
    let enc = std::process::Command::new("age")
        .args(["-e", "-r", &recipient, "-o"])
        .arg(&file)
        .arg(&forged)
        .output()
        .unwrap();
    assert!(enc.status.success());
    let r = ws.ok(
        &["quarantine", "replay", "leads", "--pipeline", "p.toml"],
        1,
    );
    assert!(
        r.stderr.contains(".jsonl.age: does not authenticate"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains("forged@example.com"), "{}", r.all());
    assert_eq!(ids(&ws.path("out/leads.db")), ["1", "4"]);

    // The real records with an edited count.
    std::fs::write(&file, &original).unwrap();
    let mut meta: serde_json::Value = serde_json::from_slice(&original_meta).unwrap();
    meta["records"] = 1.into();
    std::fs::write(&sidecar, meta.to_string()).unwrap();
    let r = ws.ok(
        &["quarantine", "replay", "leads", "--pipeline", "p.toml"],
        1,
    );
    assert!(
        r.stderr.contains(".meta.json: does not authenticate"),
        "{}",
        r.stderr
    );
    assert_eq!(ids(&ws.path("out/leads.db")), ["1", "4"]);

    // Both as the run wrote them: replayed.
    std::fs::write(&sidecar, &original_meta).unwrap();
    ws.ok(
        &["quarantine", "replay", "leads", "--pipeline", "p.toml"],
        3,
    );
    assert_eq!(ids(&ws.path("out/leads.db")), ["1", "2", "4"]);
}
