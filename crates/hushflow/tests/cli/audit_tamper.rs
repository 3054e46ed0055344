//! `hushflow audit verify` catches a changed, a removed and an inserted record, through the CLI.

use crate::common::*;

fn with_history() -> Workspace {
    let ws = Workspace::new();
    for name in ["a", "b", "c", "d", "e"] {
        ws.ok(&["keys", "create", name], 0);
    }
    ws.ok(&["audit", "verify"], 0);
    ws
}

fn sql(ws: &Workspace, statement: &str) {
    let conn = rusqlite::Connection::open(ws.state().join("audit.db")).unwrap();
    conn.execute_batch(statement).unwrap();
}

#[test]
fn an_edited_record_is_named() {
    let ws = with_history();
    sql(&ws, "UPDATE audit SET actor = 'mallory' WHERE seq = 3");
    let r = ws.ok(&["audit", "verify"], 1);
    assert!(r.stderr.contains("record 3"), "{}", r.stderr);
}

#[test]
fn a_removed_record_is_named() {
    let ws = with_history();
    sql(&ws, "DELETE FROM audit WHERE seq = 2");
    let r = ws.ok(&["audit", "verify"], 1);
    assert!(
        r.stderr.contains("record 3") || r.stderr.contains("record 2"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.to_lowercase().contains("remov"), "{}", r.stderr);
}

#[test]
fn an_inserted_record_is_named() {
    let ws = with_history();
    // Shift records 3.. up by one and forge a record at seq 3 that copies record 2's link.
    sql(
        &ws,
        "UPDATE audit SET seq = seq + 100 WHERE seq >= 3;
         UPDATE audit SET seq = seq - 99 WHERE seq >= 100;
         INSERT INTO audit (seq, time, actor, action, pipeline, policy_fingerprint, counts, outcome, detail, prev_hash, hash)
           SELECT 3, time, 'mallory', action, pipeline, policy_fingerprint, counts, outcome, detail, hash, hash FROM audit WHERE seq = 2;",
    );
    let r = ws.ok(&["audit", "verify"], 1);
    assert!(r.stderr.contains("record 3"), "{}", r.stderr);
}

#[test]
fn a_removed_newest_record_is_caught_by_the_head_anchor() {
    let ws = with_history();
    sql(&ws, "DELETE FROM audit WHERE seq = 5");
    let r = ws.ok(&["audit", "verify"], 1);
    assert!(r.stderr.contains("record 5"), "{}", r.stderr);
}

// The head anchor's tag (`audit verify --anchor`, `audit anchor`): security finding 8.

/// A log under a master key, tagged once with `audit anchor`, with five key records.
fn anchored_history() -> (Workspace, String) {
    let ws = Workspace::new();
    let master = ws
        .ok(&["keys", "new-master-key"], 0)
        .stdout
        .trim()
        .to_string();
    let env = [("HUSHFLOW_MASTER_KEY", master.as_str())];
    let r = ws.run_with(&["audit", "anchor"], &env);
    assert_eq!(r.code, 0, "{}", r.all());
    for name in ["a", "b", "c", "d", "e"] {
        let r = ws.run_with(&["keys", "create", name], &env);
        assert_eq!(r.code, 0, "{}", r.all());
    }
    (ws, master)
}

fn with_key(ws: &Workspace, master: &str, args: &[&str], code: i32) -> Run {
    let r = ws.run_with(args, &[("HUSHFLOW_MASTER_KEY", master)]);
    assert_eq!(r.code, code, "hushflow {args:?}\n{}", r.all());
    r
}

fn head(ws: &Workspace) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(ws.state().join("audit.head")).unwrap()).unwrap()
}

fn set_head(ws: &Workspace, head: &serde_json::Value) {
    std::fs::write(ws.state().join("audit.head"), head.to_string()).unwrap();
}

fn hash_of(ws: &Workspace, seq: u64) -> String {
    let conn = rusqlite::Connection::open(ws.state().join("audit.db")).unwrap();
    conn.query_row(
        "SELECT hash FROM audit WHERE seq = ?1",
        [seq as i64],
        |row| row.get(0),
    )
    .unwrap()
}

#[test]
fn an_intact_anchored_log_passes_verify_anchor() {
    let (ws, master) = anchored_history();
    let r = with_key(&ws, &master, &["audit", "verify", "--anchor"], 0);
    // audit.anchor, then five keys.create.
    assert!(
        r.stdout.contains("audit log intact: 6 records"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("vouches for all 6 records"),
        "{}",
        r.stdout
    );
    assert!(
        !r.all().contains(&master),
        "the master key is never printed"
    );
    let h = head(&ws);
    assert_eq!(h["checkpoint"]["seq"], 6, "{h}");
    assert!(!h.to_string().contains(&master), "{h}");
}

/// The finding's scenario: delete the newest rows and copy the new last hash into audit.head.
/// Plain `verify` cannot see it (the chain holds); `verify --anchor` names it.
#[test]
fn truncating_the_newest_rows_and_rewriting_the_head_fails_verify_anchor() {
    let (ws, master) = anchored_history();
    let h4 = hash_of(&ws, 4);
    sql(&ws, "DELETE FROM audit WHERE seq > 4");
    let mut h = head(&ws);
    h["seq"] = 4.into();
    h["hash"] = h4.clone().into();
    set_head(&ws, &h);
    ws.ok(&["audit", "verify"], 0);
    let r = with_key(&ws, &master, &["audit", "verify", "--anchor"], 1);
    assert!(r.stderr.contains("truncated"), "{}", r.stderr);
    assert!(
        r.stderr.contains("records 5 to 6 were removed"),
        "{}",
        r.stderr
    );

    // Nor does it help to drop the tag, or to move it with its old value.
    h.as_object_mut().unwrap().remove("checkpoint");
    set_head(&ws, &h);
    let r = with_key(&ws, &master, &["audit", "verify", "--anchor"], 1);
    assert!(r.stderr.contains("no tag"), "{}", r.stderr);
    let mut h = head(&ws);
    h["checkpoint"] = serde_json::json!({
        "seq": 4, "hash": h4, "key": "0000000000000000", "tag": "ab".repeat(32)
    });
    set_head(&ws, &h);
    let r = with_key(&ws, &master, &["audit", "verify", "--anchor"], 1);
    assert!(r.stderr.contains("tag invalid"), "{}", r.stderr);
}

/// The finding's second case: an emptied table with a genesis head.
#[test]
fn an_empty_table_with_a_genesis_head_fails_verify_anchor() {
    let (ws, master) = anchored_history();
    sql(&ws, "DELETE FROM audit");
    set_head(&ws, &serde_json::json!({"seq": 0, "hash": "0".repeat(64)}));
    ws.ok(&["audit", "verify"], 0);
    let r = with_key(&ws, &master, &["audit", "verify", "--anchor"], 1);
    assert!(r.stderr.contains("no tag"), "{}", r.stderr);

    // The next command run with the key records what it did, and does not bless the log.
    with_key(&ws, &master, &["keys", "create", "f"], 0);
    let r = with_key(&ws, &master, &["audit", "verify", "--anchor"], 1);
    assert!(r.stderr.contains("no tag"), "{}", r.stderr);
}

#[test]
fn audit_anchor_refuses_a_log_the_tag_shows_truncated() {
    let (ws, master) = anchored_history();
    sql(&ws, "DELETE FROM audit WHERE seq = 6");
    let mut h = head(&ws);
    h["seq"] = 5.into();
    h["hash"] = hash_of(&ws, 5).into();
    set_head(&ws, &h);
    let r = with_key(&ws, &master, &["audit", "anchor"], 1);
    assert!(r.stderr.contains("not tagged"), "{}", r.stderr);
    assert!(r.stderr.contains("truncated"), "{}", r.stderr);
    // The refusal's own record now stands where record 6 was: still not what the tag vouches for.
    let r = with_key(&ws, &master, &["audit", "verify", "--anchor"], 1);
    assert!(
        r.stderr.contains("record 6 is not the record"),
        "{}",
        r.stderr
    );
    let r = ws.ok(&["audit", "list", "--json"], 0);
    assert!(
        r.stdout
            .lines()
            .last()
            .unwrap()
            .contains("\"action\":\"audit.anchor\""),
        "the refusal is audited: {}",
        r.stdout
    );
}

#[test]
fn verify_anchor_without_the_key_says_it_cannot_check() {
    let (ws, _master) = anchored_history();
    let r = ws.ok(&["audit", "verify", "--anchor"], 2);
    assert!(r.stderr.contains("without the anchor key"), "{}", r.stderr);
    let r = ws.ok(&["audit", "anchor"], 2);
    assert!(r.stderr.contains("without the anchor key"), "{}", r.stderr);
    let r = ws.run_with(
        &[
            "--anchor-key",
            "env:HF_ANCHOR",
            "audit",
            "verify",
            "--anchor",
        ],
        &[("HF_ANCHOR", "too short")],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--anchor-key"), "{}", r.stderr);
}

/// Commands run without the key still write their records; the tag then does not vouch for
/// them (and says so) until a command run with the key writes one, which re-tags the head.
#[test]
fn records_written_without_the_key_are_vouched_for_after_the_next_command_with_it() {
    let ws = Workspace::new();
    let anchor = ws
        .ok(&["keys", "new-master-key"], 0)
        .stdout
        .trim()
        .to_string();
    let env = [("HF_ANCHOR", anchor.as_str())];
    let keyed = |args: &[&str], code: i32| {
        let mut all = vec!["--anchor-key", "env:HF_ANCHOR"];
        all.extend_from_slice(args);
        let r = ws.run_with(&all, &env);
        assert_eq!(r.code, code, "hushflow {all:?}\n{}", r.all());
        r
    };
    keyed(&["audit", "anchor"], 0);
    keyed(&["keys", "create", "a"], 0);
    keyed(&["audit", "verify", "--anchor"], 0);

    ws.ok(&["keys", "create", "b"], 0);
    ws.ok(&["keys", "create", "c"], 0);
    ws.ok(&["audit", "verify"], 0);
    let r = keyed(&["audit", "verify", "--anchor"], 1);
    assert!(r.stderr.contains("unvouched records"), "{}", r.stderr);
    assert!(r.stderr.contains("records 3 to 4"), "{}", r.stderr);

    keyed(&["keys", "create", "d"], 0);
    let r = keyed(&["audit", "verify", "--anchor"], 0);
    assert!(
        r.stdout.contains("vouches for all 5 records"),
        "{}",
        r.stdout
    );

    // Another key is named as such.
    let other = ws
        .ok(&["keys", "new-master-key"], 0)
        .stdout
        .trim()
        .to_string();
    let r = ws.run_with(
        &["audit", "verify", "--anchor"],
        &[("HUSHFLOW_MASTER_KEY", other.as_str())],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("tag invalid"), "{}", r.stderr);
    assert!(r.stderr.contains("another master key"), "{}", r.stderr);
}
