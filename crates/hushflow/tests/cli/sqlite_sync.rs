//! SQLite to SQLite, incrementally: the position commits in the sink's own transaction, so a
//! second run reads nothing and a third only what changed.

use crate::common::*;

const PIPELINE: &str = r#"
[pipeline]
name = "lite"
key = "id"
batch_size = 500

[source]
type = "sqlite"
path = "crm.sqlite"
table = "contacts"
cursor = "updated_at"

[policy]
fields.id = "keep"
fields.email = { hash = "hmac-sha256", key = "keyring:pepper", normalize = "email" }
fields.updated_at = "keep"

[sink]
type = "sqlite"
path = "out/marketing.sqlite"
table = "leads"
"#;

#[test]
fn an_incremental_sqlite_sync_moves_only_what_changed() {
    let ws = Workspace::new();
    let conn = rusqlite::Connection::open(ws.path("crm.sqlite")).unwrap();
    conn.execute_batch(
        "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT, notes TEXT, updated_at TEXT NOT NULL);
         WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < 3000)
         INSERT INTO contacts SELECT g, 'User' || g || '@Example.com', 'private', '2026-01-01T00:00:' || printf('%02d', g % 60) FROM n;",
    )
    .unwrap();
    ws.ok(&["keys", "create", "pepper", "--purpose", "hash"], 0);
    ws.write("p.toml", PIPELINE);
    let r = ws.ok(&["run", "p.toml"], 0);
    assert!(r.stdout.contains("read 3000, written 3000"), "{}", r.stdout);
    let r = ws.ok(&["run", "p.toml"], 0);
    assert!(r.stdout.contains("read 0, written 0"), "{}", r.stdout);
    conn.execute_batch("UPDATE contacts SET email = 'new' || id || '@example.com', updated_at = '2026-02-01T00:00:00' WHERE id % 100 = 0")
        .unwrap();
    let r = ws.ok(&["run", "p.toml"], 0);
    assert!(r.stdout.contains("read 30, written 30"), "{}", r.stdout);
    let out = rusqlite::Connection::open(ws.path("out/marketing.sqlite")).unwrap();
    let (rows, cursor): (i64, String) = out
        .query_row(
            "SELECT (SELECT count(*) FROM leads), (SELECT cursor_value FROM hushflow_cursors WHERE pipeline = 'lite')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(rows, 3000);
    assert_eq!(cursor, "t:2026-02-01T00:00:00");
}
