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
