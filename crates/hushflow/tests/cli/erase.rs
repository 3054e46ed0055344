//! Erasure by crypto-shredding: `tokenize` with `per_subject = true` gives each subject a key of
//! its own; `hushflow erase` deletes it, after which that subject's tokens, wherever they were
//! copied, no longer reverse, while every other subject's still do. Audited by handle only.

use crate::common::*;

const SUBJECT: &str = "cust-canary-0042";

const PIPELINE: &str = r#"
[pipeline]
name = "erasable"
key = "id"
[source]
type = "csv"
path = "data/c.csv"
[policy]
fields.id = "keep"
fields.first_name = { tokenize = "aes-siv", key = "keyring:names", per_subject = true }
fields.last_name = { tokenize = "aes-siv", key = "keyring:names" }
[sink]
type = "csv"
path = "out/o.csv"
"#;

fn rows(ws: &Workspace) -> Vec<(String, String, String)> {
    let mut r = csv::Reader::from_path(ws.path("out/o.csv")).unwrap();
    r.records()
        .map(|row| {
            let row = row.unwrap();
            (row[0].to_string(), row[1].to_string(), row[2].to_string())
        })
        .collect()
}

#[test]
fn erasing_a_subject_shreds_its_tokens_and_only_its_tokens() {
    let ws = Workspace::new();
    ws.write(
        "data/c.csv",
        format!("id,first_name,last_name\n1,Ada,Byron\n{SUBJECT},Ada,Byron\n3,Grace,Hopper\n"),
    );
    ws.ok(&["keys", "create", "names", "--purpose", "tokenize"], 0);
    ws.write("p.toml", PIPELINE);
    let v = ws.ok(&["validate", "p.toml"], 0);
    assert!(v.stdout.contains("a key per subject"), "{}", v.stdout);
    ws.ok(&["run", "p.toml"], 0);
    let first = rows(&ws);
    let (ada1, ada2) = (first[0].1.clone(), first[1].1.clone());
    assert_ne!(ada1, ada2, "the same name under two subjects' keys");
    assert_eq!(first[0].2, first[1].2, "the ordinary token joins as before");
    // Deterministic per subject: a second run gives the same tokens.
    ws.ok(&["run", "p.toml"], 0);
    assert_eq!(rows(&ws), first);

    let r = ws.ok(&["detokenize", "--key", "keyring:names", &ada1, &ada2], 0);
    assert_eq!(r.stdout, "Ada\nAda\n");

    // The store holds neither subject ids nor names.
    let store = std::fs::read(ws.state().join("subjects.db")).unwrap();
    for canary in [SUBJECT, "Ada", "Grace"] {
        assert!(!contains(&store, canary), "{canary} in subjects.db");
    }

    let wrapped: Vec<Vec<u8>> = {
        let db = rusqlite::Connection::open(ws.state().join("subjects.db")).unwrap();
        let mut stmt = db.prepare("SELECT wrapped FROM subject_keys").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(wrapped.len(), 3, "one key per subject");
    let r = ws.ok(&["erase", "--pipeline", "p.toml", "--subject", SUBJECT], 0);
    assert!(r.stdout.contains("erased 1 subject key"), "{}", r.stdout);
    // secure_delete: the erased key's bytes are overwritten in the file, not only unlinked.
    let after = std::fs::read(ws.state().join("subjects.db")).unwrap();
    let left = wrapped
        .iter()
        .filter(|w| after.windows(w.len()).any(|x| x == &w[..]))
        .count();
    assert_eq!(left, 2, "the erased wrapped key is gone from the file");
    let r = ws.ok(&["detokenize", "--key", "keyring:names", &ada2], 1);
    assert!(
        r.stderr.contains("token 1: its subject was erased"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains("Ada"), "{}", r.all());
    let r = ws.ok(&["detokenize", "--key", "keyring:names", &ada1], 0);
    assert_eq!(r.stdout, "Ada\n", "other subjects are untouched");

    let audit = ws.ok(&["audit", "list", "--json"], 0);
    let erase: serde_json::Value = audit
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .rfind(|r| r["action"] == "erase")
        .unwrap();
    assert_eq!(erase["counts"]["keys_erased"], 1);
    assert!(
        erase["detail"]
            .as_str()
            .unwrap()
            .contains("subject handle ")
    );
    assert!(
        !audit.stdout.contains(SUBJECT),
        "the audit log names no subject"
    );

    // Erasing again changes nothing; a new run gives the subject a new key and a new token.
    let r = ws.ok(&["erase", "--pipeline", "p.toml", "--subject", SUBJECT], 0);
    assert!(r.stdout.contains("nothing changed"), "{}", r.stdout);
    ws.ok(&["run", "p.toml"], 0);
    let again = rows(&ws);
    assert_eq!(again[0].1, ada1);
    assert_ne!(again[1].1, ada2);
}

#[test]
fn erase_needs_a_pipeline_with_per_subject_keys() {
    let ws = Workspace::new();
    ws.write("data/c.csv", "id,first_name,last_name\n1,Ada,Byron\n");
    ws.ok(&["keys", "create", "names"], 0);
    ws.write("p.toml", PIPELINE.replace(", per_subject = true", ""));
    let r = ws.ok(&["erase", "--pipeline", "p.toml", "--subject", "1"], 2);
    assert!(r.stderr.contains("nothing to erase"), "{}", r.stderr);
    ws.write(
        "q.toml",
        PIPELINE.replace(
            "per_subject = true",
            "per_subject = true, normalize = \"email\"",
        ),
    );
    let r = ws.ok(&["validate", "q.toml"], 2);
    assert!(
        r.stderr.contains("`normalize` does not apply to tokenize"),
        "{}",
        r.stderr
    );
}
