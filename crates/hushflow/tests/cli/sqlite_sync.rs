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

/// A CSV export's consent spellings, timestamps and counts land typed in a new SQLite table:
/// consent as true/false (a value that is no yes/no answer is quarantined naming the field,
/// never the value), a typed field's bad value quarantined the same way.
#[test]
fn typed_fields_and_consent_land_typed_in_sqlite() {
    let ws = Workspace::new();
    ws.write(
        "contacts.csv",
        "id,opt_in,created_at,visits\n\
         1,YES,2026-01-02T04:00:00+01:00,3\n\
         2,no,2026-01-02T03:00:00Z,4\n\
         3,maybe-canary,2026-01-02T03:00:00Z,5\n\
         4,on,not-a-time-canary,6\n\
         5,1,2026-01-02T03:00:00Z,\n",
    );
    ws.write(
        "p.toml",
        r#"
[pipeline]
name = "typed"
key = "id"

[source]
type = "csv"
path = "contacts.csv"

[policy]
fields.id = "keep"
fields.opt_in = "keep"
fields.created_at = { type = "timestamp" }
fields.visits = { type = "integer" }

[policy.consent]
field = "opt_in"

[sink]
type = "sqlite"
path = "out/typed.db"
table = "leads"
"#,
    );
    let r = ws.ok(&["run", "p.toml", "--json"], 3);
    let summary: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(summary["counts"]["written"], 2, "{summary}");
    assert_eq!(summary["counts"]["filtered_no_consent"], 1, "{summary}");
    assert_eq!(
        summary["quarantine_reasons"]["invalid_field"], 2,
        "{summary}"
    );
    assert!(!r.all().contains("canary"), "{}", r.all());
    let db = rusqlite::Connection::open(ws.path("out/typed.db")).unwrap();
    let types: Vec<(String, String)> = db
        .prepare("SELECT name, type FROM pragma_table_info('leads') ORDER BY cid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let types: Vec<(&str, &str)> = types
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("id", "TEXT"),
            ("opt_in", "BOOLEAN"),
            ("created_at", "TIMESTAMP"),
            ("visits", "INTEGER")
        ]
    );
    let rows: Vec<(String, i64, String, Option<i64>)> = db
        .prepare("SELECT id, opt_in, created_at, visits FROM leads ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        [
            ("1".into(), 1, "2026-01-02T03:00:00Z".into(), Some(3)),
            ("5".into(), 1, "2026-01-02T03:00:00Z".into(), None),
        ]
    );
    let list = ws.ok(&["quarantine", "list", "--json"], 0);
    assert!(!list.stdout.contains("canary"), "{}", list.stdout);
}
