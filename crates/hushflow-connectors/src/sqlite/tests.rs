use super::*;
use crate::testing::{Row, batch, k, names, t};
use hushflow_core::{Batch, CellKind, Error, Sink};
use rusqlite::Connection;
use std::path::Path;

const FIELDS: &[&str] = &["id", "name", "visits"];

fn contacts(rows: &[(&str, &str, &str)]) -> Batch {
    let rows: Vec<Row> = rows
        .iter()
        .map(|(id, name, visits)| vec![t(id), t(name), k(CellKind::Number, visits)])
        .collect();
    batch(FIELDS, &rows)
}

/// Opens a sink, writes the batches, finishes.
fn run(config: &SqliteSinkConfig, batches: &[Batch]) -> Result<(), Error> {
    let mut sink = SqliteSink::new(config, "id")?;
    sink.open(batches[0].schema())?;
    for b in batches {
        sink.write_batch(b)?;
    }
    sink.finish()
}

fn query(path: &Path, sql: &str) -> Vec<Vec<String>> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |row| {
        (0..n)
            .map(|i| {
                row.get::<_, rusqlite::types::Value>(i).map(|v| match v {
                    rusqlite::types::Value::Null => "NULL".to_string(),
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Real(f) => f.to_string(),
                    rusqlite::types::Value::Text(s) => s,
                    rusqlite::types::Value::Blob(_) => "BLOB".to_string(),
                })
            })
            .collect()
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn strings(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect()
}

#[test]
fn creates_the_table_and_upserts_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db/contacts.sqlite");
    let config = SqliteSinkConfig::new(&path, "contacts");
    let first = [
        contacts(&[("1", "Ann", "3"), ("2", "Bob", "5")]),
        contacts(&[("3", "Cy", "1")]),
    ];
    run(&config, &first).unwrap();
    run(&config, &first).unwrap();
    assert_eq!(
        query(&path, "SELECT id, name, visits FROM contacts ORDER BY id"),
        strings(&[&["1", "Ann", "3"], &["2", "Bob", "5"], &["3", "Cy", "1"]])
    );

    run(
        &config,
        &[contacts(&[("2", "Bobby", "6"), ("4", "Di", "2")])],
    )
    .unwrap();
    assert_eq!(
        query(&path, "SELECT id, name, visits FROM contacts ORDER BY id"),
        strings(&[
            &["1", "Ann", "3"],
            &["2", "Bobby", "6"],
            &["3", "Cy", "1"],
            &["4", "Di", "2"]
        ])
    );
    let sql = query(
        &path,
        "SELECT sql FROM sqlite_master WHERE name = 'contacts'",
    );
    assert_eq!(
        sql[0][0],
        r#"CREATE TABLE "contacts" ("id" TEXT PRIMARY KEY NOT NULL, "name", "visits")"#
    );
    #[cfg(unix)]
    assert_eq!(crate::testing::mode(&path), 0o600);
    assert_eq!(query(&path, "PRAGMA journal_mode"), strings(&[&["wal"]]));
}

#[test]
fn append_mode_refuses_a_key_already_present() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contacts.sqlite");
    let mut config = SqliteSinkConfig::new(&path, "contacts");
    config.mode = SqliteMode::Append;
    run(&config, &[contacts(&[("1", "Ann", "3")])]).unwrap();

    let mut sink = SqliteSink::new(&config, "id").unwrap();
    let b = contacts(&[("2", "Bob", "1"), ("1", "CANARY", "9")]);
    sink.open(b.schema()).unwrap();
    let Err(Error::Destination { message, .. }) = sink.write_batch(&b) else {
        panic!("a duplicate key must stop an append");
    };
    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains("append mode"), "{message}");
    assert!(!message.contains("CANARY"), "{message}");
    drop(sink);
    // The failed batch was rolled back whole.
    assert_eq!(
        query(&path, "SELECT id, name FROM contacts"),
        strings(&[&["1", "Ann"]])
    );
}

#[test]
fn an_existing_table_without_a_column_gets_a_helpful_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contacts.sqlite");
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE contacts (ID TEXT PRIMARY KEY, name TEXT)")
        .unwrap();
    let config = SqliteSinkConfig::new(&path, "contacts");
    let mut sink = SqliteSink::new(&config, "id").unwrap();
    let Err(Error::Destination { message, .. }) =
        sink.open(&hushflow_core::Schema::new(names(FIELDS)))
    else {
        panic!("a missing column must be refused");
    };
    assert!(message.contains("no column `visits`"), "{message}");
    assert!(
        message.contains(r#"ALTER TABLE "contacts" ADD COLUMN "visits""#),
        "{message}"
    );

    // Written to a table that has the columns (names match regardless of case), it works.
    Connection::open(&path)
        .unwrap()
        .execute_batch("ALTER TABLE contacts ADD COLUMN Visits INTEGER")
        .unwrap();
    run(&config, &[contacts(&[("1", "Ann", "3")])]).unwrap();
    assert_eq!(
        query(&path, "SELECT * FROM contacts"),
        strings(&[&["1", "Ann", "3"]])
    );
}

#[test]
fn upsert_into_a_table_not_keyed_on_the_key_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contacts.sqlite");
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE contacts (id, name, visits)")
        .unwrap();
    let mut sink = SqliteSink::new(&SqliteSinkConfig::new(&path, "contacts"), "id").unwrap();
    let Err(Error::Destination { message, .. }) =
        sink.open(&hushflow_core::Schema::new(names(FIELDS)))
    else {
        panic!("upsert needs a unique key");
    };
    assert!(
        message.contains("primary key or to have a UNIQUE index"),
        "{message}"
    );
}

#[test]
fn values_are_bound_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("types.sqlite");
    let fields = [
        "id", "int", "real", "odd", "yes", "no", "json", "none", "text",
    ];
    let b = batch(
        &fields,
        &[vec![
            t("1"),
            k(CellKind::Number, "-42"),
            k(CellKind::Number, "1.5e3"),
            k(CellKind::Number, "99999999999999999999999999"),
            k(CellKind::Bool, "true"),
            k(CellKind::Bool, "false"),
            k(CellKind::Json, r#"{"a":1}"#),
            None,
            t("007"),
        ]],
    );
    run(&SqliteSinkConfig::new(&path, "t"), &[b]).unwrap();
    assert_eq!(
        query(
            &path,
            "SELECT typeof(id), typeof(int), typeof(real), typeof(odd), typeof(yes), \
             typeof(no), typeof(json), typeof(none), typeof(text) FROM t"
        ),
        strings(&[&[
            "text", "integer", "real", "real", "integer", "integer", "text", "null", "text"
        ]])
    );
    assert_eq!(
        query(&path, "SELECT int, real, yes, no, json, text FROM t"),
        strings(&[&["-42", "1500", "1", "0", r#"{"a":1}"#, "007"]])
    );
}

#[test]
fn the_key_must_be_written_and_fields_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contacts.sqlite");
    let schema = hushflow_core::Schema::new(names(FIELDS));
    let mut config = SqliteSinkConfig::new(&path, "contacts");
    config.fields = Some(names(&["name"]));
    let Err(Error::Config(message)) = SqliteSink::new(&config, "id").unwrap().open(&schema) else {
        panic!("the key must be written");
    };
    assert!(message.contains("`id`"), "{message}");
    config.fields = Some(names(&["id", "phone"]));
    let Err(Error::Config(message)) = SqliteSink::new(&config, "id").unwrap().open(&schema) else {
        panic!("an unknown field must be refused");
    };
    assert!(message.contains("`phone`"), "{message}");
    assert!(!path.exists(), "nothing is created for a bad configuration");

    assert!(matches!(
        SqliteSink::new(&SqliteSinkConfig::new(&path, ""), "id"),
        Err(Error::Config(_))
    ));
}

#[test]
fn odd_names_are_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.sqlite");
    let fields = ["e-mail", "say \"hi\"", "select"];
    let b = batch(&fields, &[vec![t("a@b"), t("x"), t("y")]]);
    let config = SqliteSinkConfig::new(&path, "my \"table\"");
    let mut sink = SqliteSink::new(&config, "e-mail").unwrap();
    sink.open(b.schema()).unwrap();
    sink.write_batch(&b).unwrap();
    sink.write_batch(&b).unwrap();
    sink.finish().unwrap();
    assert_eq!(
        query(
            &path,
            r#"SELECT "e-mail", "say ""hi""", "select" FROM "my ""table""""#
        ),
        strings(&[&["a@b", "x", "y"]])
    );
}

#[test]
fn config_parses_the_mode_in_lowercase() {
    let config: SqliteSinkConfig =
        serde_json::from_str(r#"{"path": "c.db", "table": "contacts"}"#).unwrap();
    assert_eq!(config.mode, SqliteMode::Upsert);
    let config: SqliteSinkConfig =
        serde_json::from_str(r#"{"path": "c.db", "table": "c", "mode": "append"}"#).unwrap();
    assert_eq!(config.mode, SqliteMode::Append);
    assert!(
        serde_json::from_str::<SqliteSinkConfig>(
            r#"{"path": "c.db", "table": "c", "mode": "Append"}"#
        )
        .is_err()
    );
    assert!(
        serde_json::from_str::<SqliteSinkConfig>(r#"{"path": "c.db", "table": "c", "key": "id"}"#)
            .is_err()
    );
}

#[test]
fn replace_swaps_in_exactly_this_runs_rows_and_positions_commit_with_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite");
    let config = SqliteSinkConfig::new(&path, "contacts");
    run(&config, &[contacts(&[("1", "a", "1"), ("2", "b", "2")])]).unwrap();

    let replace = SqliteSinkConfig {
        mode: SqliteMode::Replace,
        ..config.clone()
    };
    let mut sink = SqliteSink::new(&replace, "id").unwrap();
    let b = contacts(&[("3", "c", "3")]);
    sink.open(b.schema()).unwrap();
    let at = hushflow_core::Position {
        cursor: "2026-01-02".into(),
        key: "3".into(),
    };
    sink.write_batch_at(&b, "p", Some(&at)).unwrap();
    // Until the end, readers see the old table, and no position is committed.
    assert_eq!(
        query(&path, "SELECT id FROM contacts ORDER BY id"),
        strings(&[&["1"], &["2"]])
    );
    assert_eq!(sink.committed_position("p").unwrap(), None);
    sink.finish().unwrap();
    assert_eq!(query(&path, "SELECT id FROM contacts"), strings(&[&["3"]]));

    let mut upsert = SqliteSink::new(&config, "id").unwrap();
    assert_eq!(upsert.committed_position("p").unwrap(), Some(at.clone()));
    upsert.open(b.schema()).unwrap();
    let later = hushflow_core::Position {
        cursor: "2026-01-03".into(),
        key: "4".into(),
    };
    upsert
        .write_batch_at(&contacts(&[("4", "d", "4")]), "p", Some(&later))
        .unwrap();
    upsert.finish().unwrap();
    let mut check = SqliteSink::new(&config, "id").unwrap();
    assert_eq!(check.committed_position("p").unwrap(), Some(later));
    assert_eq!(check.committed_position("other").unwrap(), None);
    assert_eq!(
        query(&path, "SELECT id FROM contacts ORDER BY id"),
        strings(&[&["3"], &["4"]])
    );
}

fn source_db(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("src.sqlite");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT, secret TEXT, score REAL, updated_at INTEGER NOT NULL);
         WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < 10)
         INSERT INTO contacts SELECT g, 'u' || g || '@example.com', 'never-read', g / 2.0, g / 3 FROM n;
         UPDATE contacts SET email = NULL WHERE id = 4;
         UPDATE contacts SET email = CAST(x'ff41' AS TEXT) WHERE id = 6;",
    )
    .unwrap();
    path
}

fn source_config(path: &Path, cursor: Option<&str>) -> SqliteSourceConfig {
    SqliteSourceConfig {
        path: path.to_path_buf(),
        table: Some("contacts".into()),
        query: None,
        cursor: cursor.map(str::to_string),
    }
}

#[test]
fn the_source_reads_wanted_columns_in_pages_rejects_bad_text_and_continues_after_a_position() {
    use hushflow_core::Source;
    let dir = tempfile::tempdir().unwrap();
    let path = source_db(dir.path());
    let wanted = ["id".to_string(), "email".to_string(), "score".to_string()];
    let mut all = SqliteSource::open(&source_config(&path, None), &wanted, "id", None).unwrap();
    let (mut rows, mut rejected) = (Vec::new(), Vec::new());
    while let Some(b) = all.next_batch(4).unwrap() {
        assert!(
            b.batch.len() + b.rejected.len() <= 4,
            "pages of the batch size"
        );
        for r in 0..b.batch.len() {
            let email = b.batch.column(1).get(r);
            rows.push((
                b.batch.column(0).get(r).text.to_string(),
                (!email.is_null()).then(|| email.text.to_string()),
                b.batch.column(2).get(r).kind,
            ));
        }
        rejected.extend(b.rejected);
    }
    assert_eq!(rows.len(), 9);
    assert!(
        rows.iter().any(|(id, e, _)| id == "4" && e.is_none()),
        "NULL stays NULL"
    );
    assert!(rows.iter().all(|(_, _, k)| *k == CellKind::Number));
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].line, 6);
    assert_eq!(
        rejected[0].reason,
        hushflow_core::RejectReason::InvalidUtf8 {
            field: Some("email".into())
        }
    );
    assert!(rejected[0].raw.is_empty(), "no bytes of the record kept");

    // Incremental: stop after the first page (ids 1-3: cursor 0, 0, 1), continue after it;
    // 3 ties with 4 and 5 on the cursor and the key breaks the tie, numerically.
    let wanted = ["id".to_string()];
    let mut first = SqliteSource::open(
        &source_config(&path, Some("updated_at")),
        &wanted,
        "id",
        None,
    )
    .unwrap();
    let page = first.next_batch(3).unwrap().unwrap();
    assert_eq!(page.batch.len(), 3);
    let at = first.position().unwrap();
    assert_eq!((at.cursor.as_str(), at.key.as_str()), ("i:1", "i:3"));
    drop(first);
    let mut rest = SqliteSource::open(
        &source_config(&path, Some("updated_at")),
        &wanted,
        "id",
        Some(&at),
    )
    .unwrap();
    let mut ids = Vec::new();
    while let Some(b) = rest.next_batch(100).unwrap() {
        ids.extend((0..b.batch.len()).map(|r| b.batch.column(0).get(r).text.to_string()));
    }
    assert_eq!(ids, ["4", "5", "6", "7", "8", "9", "10"]);

    let e = SqliteSource::open(&source_config(&path, None), &["phone".into()], "id", None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("no column `phone`") && e.contains("email"),
        "{e}"
    );
}

#[test]
fn a_database_path_that_is_not_a_regular_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("db.fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let e = run(
        &SqliteSinkConfig::new(&fifo, "contacts"),
        &[contacts(&[("1", "a", "1")])],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("db.fifo") && e.contains("not a regular file"),
        "{e}"
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

/// Column names that look like values (a table made from a file without a header row) are
/// never listed in a message.
#[test]
fn the_source_lists_only_column_names_that_look_like_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("src.sqlite");
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE contacts (id TEXT, \"jane@example.com\" TEXT, \"C001\" TEXT, country TEXT)",
        )
        .unwrap();
    let e = SqliteSource::open(&source_config(&path, None), &["email".into()], "id", None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("`id`, `country`, and 2 not shown")
            && !e.contains("jane")
            && !e.contains("C001"),
        "{e}"
    );
}

/// Typed fields get declared column types in a new table and land as those types; an
/// existing column declared with another type is refused at open, naming the table, the
/// column, the expected and the found types.
#[test]
fn typed_fields_get_typed_columns_and_a_mismatch_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typed.sqlite");
    let config = SqliteSinkConfig::new(&path, "leads");
    let fields = ["id", "opt_in", "visits", "signed_up", "born", "note"];
    let types: std::collections::HashMap<String, String> = [
        ("id", "integer"),
        ("opt_in", "boolean"),
        ("visits", "integer"),
        ("signed_up", "timestamp"),
        ("born", "date"),
    ]
    .iter()
    .map(|(f, t)| (f.to_string(), t.to_string()))
    .collect();
    let rows: Vec<Row> = vec![vec![
        k(CellKind::Number, "7"),
        k(CellKind::Bool, "true"),
        k(CellKind::Number, "3"),
        t("2026-01-02T03:04:05Z"),
        t("1984-07-09"),
        t("free text"),
    ]];
    let b = batch(&fields, &rows);
    let mut sink = SqliteSink::new(&config, "id")
        .unwrap()
        .with_types(types.clone());
    sink.open(b.schema()).unwrap();
    sink.write_batch(&b).unwrap();
    sink.finish().unwrap();
    assert_eq!(
        query(
            &path,
            "SELECT name, type FROM pragma_table_info('leads') ORDER BY cid"
        ),
        strings(&[
            &["id", "INTEGER"],
            &["opt_in", "BOOLEAN"],
            &["visits", "INTEGER"],
            &["signed_up", "TIMESTAMP"],
            &["born", "DATE"],
            &["note", ""],
        ])
    );
    assert_eq!(
        query(
            &path,
            "SELECT typeof(id), opt_in, typeof(visits), signed_up, born, date(born) FROM leads"
        ),
        strings(&[&[
            "integer",
            "1",
            "integer",
            "2026-01-02T03:04:05Z",
            "1984-07-09",
            "1984-07-09"
        ]])
    );

    // A table made by hand with the consent column as text: refused before any row moves.
    let other = dir.path().join("by-hand.sqlite");
    Connection::open(&other)
        .unwrap()
        .execute_batch(
            "CREATE TABLE leads (id INTEGER PRIMARY KEY, opt_in TEXT, visits, signed_up TEXT, \
             born DATE, note TEXT)",
        )
        .unwrap();
    let mut sink = SqliteSink::new(&SqliteSinkConfig::new(&other, "leads"), "id")
        .unwrap()
        .with_types(types);
    let Err(Error::Destination { message, .. }) = sink.open(b.schema()) else {
        panic!("a column of another type must be refused");
    };
    assert!(message.contains("table `leads`"), "{message}");
    assert!(
        message.contains("column `opt_in` has type TEXT"),
        "{message}"
    );
    assert!(message.contains("expected boolean"), "{message}");
    assert_eq!(
        query(&other, "SELECT count(*) FROM leads"),
        strings(&[&["0"]])
    );
}

/// Rows by value: found and deleted by any of several column values compared as text (an
/// integer key matches its text), a column the table lacks matches nothing, and a database that
/// does not exist holds no rows.
#[test]
fn rows_are_found_and_deleted_by_value() {
    use crate::{RowMatch, SinkConfig, SinkContext};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.sqlite");
    let config = SqliteSinkConfig::new(&path, "contacts");
    let connections = Default::default();
    let ctx = SinkContext {
        base: dir.path(),
        key: "id",
        column_types: Default::default(),
        connections: &connections,
    };
    let m = |field: &str, value: &str| RowMatch {
        field: field.into(),
        value: value.into(),
    };
    let mut rows = config.rows(&ctx).unwrap().unwrap();
    assert!(
        rows.find(&[m("id", "1")]).unwrap().is_empty(),
        "no database yet"
    );
    run(
        &config,
        &[contacts(&[
            ("1", "ada", "10"),
            ("2", "grace", "20"),
            ("3", "alan", "30"),
        ])],
    )
    .unwrap();
    let found = rows
        .find(&[m("name", "grace"), m("id", "3"), m("nope", "1")])
        .unwrap();
    assert_eq!(found.len(), 2);
    assert!(
        found[0]
            .fields
            .contains(&("visits".into(), Some("20".into())))
    );
    assert!(rows.can_delete());
    assert_eq!(rows.delete(&[m("name", "grace"), m("id", "3")]).unwrap(), 2);
    assert_eq!(rows.delete(&[m("name", "grace")]).unwrap(), 0);
    assert_eq!(query(&path, "SELECT id FROM contacts"), strings(&[&["1"]]));
}
