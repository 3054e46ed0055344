//! Writes batches to a SQLite table, one transaction per batch.

use super::config::{SqliteMode, SqliteSinkConfig};
use crate::fields::{Output, list, not_open};
use crate::file::create_private_if_absent;
use hushflow_core::{Batch, Cell, CellKind, Column, Error, Position, Schema, Sink, Withdrawal};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long to wait for another connection (a reader, a backup) to release the database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A table of a SQLite database. [`Sink::open`] creates the database (mode 0600) and the table
/// if needed: the key column is `TEXT PRIMARY KEY NOT NULL` and the other columns have no
/// declared type, so each value keeps the type it is bound with; a typed field (the policy's
/// `type`, a generalized year, the consent field) gets its declared type (`INTEGER`, `BOOLEAN`,
/// `DATE`, `TIMESTAMP`, `TEXT`). An existing table must have a column for every output field,
/// and a typed field's column must be declared with its type (or with none).
///
/// Each batch is written in one transaction: a batch that fails leaves the table as it was.
/// Values are bound by kind: null as NULL, text and nested JSON as TEXT, a number as INTEGER if
/// it is an integer that fits 64 bits and as REAL otherwise, a boolean as 0 or 1.
#[derive(Debug)]
pub struct SqliteSink {
    path: PathBuf,
    table: String,
    mode: SqliteMode,
    fields: Option<Vec<String>>,
    key: String,
    /// Value types of typed output fields (`integer`, `timestamp`, …), by field.
    types: HashMap<String, String>,
    open: Option<OpenSqlite>,
}

#[derive(Debug)]
struct OpenSqlite {
    conn: Connection,
    output: Output,
    /// The insert, kept prepared in the connection's statement cache.
    insert: String,
    /// `replace` commits the position with the swap, at the end.
    pending_position: Option<(String, Position)>,
    /// Keys of withdrawn records, acted on in the next batch's transaction.
    withdrawals: Option<(Column, Withdrawal)>,
}

/// Where positions of incremental sources are kept, beside the data they belong to.
const CURSORS: &str = "hushflow_cursors";

fn save_position(
    tx: &rusqlite::Transaction<'_>,
    pipeline: &str,
    position: &Position,
) -> rusqlite::Result<()> {
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {CURSORS} (pipeline TEXT PRIMARY KEY, cursor_value TEXT NOT \
         NULL, key_value TEXT NOT NULL, committed_at TEXT NOT NULL)"
    ))?;
    tx.execute(
        &format!(
            "INSERT INTO {CURSORS} (pipeline, cursor_value, key_value, committed_at) \
             VALUES (?1, ?2, ?3, datetime('now')) ON CONFLICT (pipeline) DO UPDATE SET \
             cursor_value = excluded.cursor_value, key_value = excluded.key_value, \
             committed_at = excluded.committed_at"
        ),
        rusqlite::params![pipeline, position.cursor, position.key],
    )?;
    Ok(())
}

impl SqliteSink {
    /// `key` is the pipeline's record key: the table's primary key, and what upserts match on.
    /// Checks the configuration; nothing is created before [`Sink::open`].
    pub fn new(config: &SqliteSinkConfig, key: &str) -> Result<Self, Error> {
        check_name(&config.path, "table", &config.table)?;
        check_name(&config.path, "key field", key)?;
        Ok(SqliteSink {
            path: config.path.clone(),
            table: config.table.clone(),
            mode: config.mode,
            fields: config.fields.clone(),
            key: key.to_string(),
            types: HashMap::new(),
            open: None,
        })
    }

    /// The value types of typed output fields (`integer`, `boolean`, `date`, `timestamp`,
    /// `text`), by field: new columns are declared with them, existing ones checked.
    pub fn with_types(mut self, types: HashMap<String, String>) -> Self {
        self.types = types;
        self
    }

    /// The declared type of a new column for `field` (empty: none).
    fn declared_type(&self, field: &str) -> &str {
        self.types
            .get(field)
            .map_or("", |t| crate::column_types::SQLITE.column_type(t))
    }

    fn db_error(&self, what: &str, e: rusqlite::Error) -> Error {
        Error::Destination {
            path: self.path.clone(),
            message: format!("table `{}`: {what}: {e}", self.table),
        }
    }

    /// Where rows go: the table, or in `replace` mode the new table swapped in at the end.
    fn target(&self) -> String {
        match self.mode {
            SqliteMode::Replace => format!("{}__hushflow_new", self.table),
            _ => self.table.clone(),
        }
    }

    /// Checks the table against the output fields, creating it if it does not exist.
    fn prepare_table(&self, conn: &Connection, output: &Output) -> Result<(), Error> {
        let table = self.target();
        if self.mode == SqliteMode::Replace {
            conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", quote(&table)))
                .map_err(|e| self.db_error("dropping an unfinished replacement failed", e))?;
        }
        let columns = {
            let mut stmt = conn
                .prepare("SELECT name, type FROM pragma_table_info(?1)")
                .map_err(|e| self.db_error("reading its columns failed", e))?;
            let names = stmt
                .query_map([&table], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
            names.map_err(|e| self.db_error("reading its columns failed", e))?
        };
        // A typed field must land in a column of its type: refused at the start, not row by row.
        for (column, found) in &columns {
            let field = output.names.iter().find(|n| n.eq_ignore_ascii_case(column));
            if let Some(value_type) = field.and_then(|f| self.types.get(f)) {
                crate::column_types::SQLITE
                    .check(&self.table, column, value_type, found)
                    .map_err(|message| Error::Destination {
                        path: self.path.clone(),
                        message,
                    })?;
            }
        }
        let existing: Vec<String> = columns.into_iter().map(|(name, _)| name).collect();
        if existing.is_empty() {
            let columns: Vec<String> = output
                .names
                .iter()
                .map(|name| {
                    let declared = match self.declared_type(name) {
                        "" if *name == self.key => "TEXT",
                        t => t,
                    };
                    let column = format!("{} {declared}", quote(name));
                    if *name == self.key {
                        format!("{column} PRIMARY KEY NOT NULL")
                    } else {
                        column.trim_end().to_string()
                    }
                })
                .collect();
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {} ({})",
                quote(&table),
                columns.join(", ")
            );
            return conn
                .execute_batch(&sql)
                .map_err(|e| self.db_error("creating it failed", e));
        }
        // SQLite matches column names without regard to ASCII case.
        let missing: Vec<String> = output
            .names
            .iter()
            .filter(|name| !existing.iter().any(|e| e.eq_ignore_ascii_case(name)))
            .cloned()
            .collect();
        if let Some(first) = missing.first() {
            return Err(Error::Destination {
                path: self.path.clone(),
                message: format!(
                    "table `{}` has no column {} (its columns: {}); add {} (ALTER TABLE {} ADD COLUMN {}), \
                     or write to a new table",
                    self.table,
                    list(&missing),
                    list(&existing),
                    if missing.len() == 1 { "it" } else { "them" },
                    quote(&self.table),
                    quote(first),
                ),
            });
        }
        Ok(())
    }

    /// The insert (or upsert) statement for the output fields.
    fn insert_sql(&self, output: &Output) -> String {
        let columns: Vec<String> = output.names.iter().map(|n| quote(n)).collect();
        let params: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote(&self.target()),
            columns.join(", "),
            params.join(", ")
        );
        if self.mode == SqliteMode::Upsert {
            let updates: Vec<String> = output
                .names
                .iter()
                .filter(|n| **n != self.key)
                .map(|n| format!("{c} = excluded.{c}", c = quote(n)))
                .collect();
            sql.push_str(&format!(" ON CONFLICT({}) DO ", quote(&self.key)));
            if updates.is_empty() {
                sql.push_str("NOTHING");
            } else {
                sql.push_str("UPDATE SET ");
                sql.push_str(&updates.join(", "));
            }
        }
        sql
    }
}

impl Sink for SqliteSink {
    fn open(&mut self, schema: &Schema) -> Result<(), Error> {
        if self.open.is_some() {
            return Err(Error::Config(format!(
                "{}: the sink is already open",
                self.path.display()
            )));
        }
        let output = Output::resolve(&self.path, schema, self.fields.as_deref())?;
        for name in &output.names {
            check_name(&self.path, "field", name)?;
        }
        if !output.names.contains(&self.key) {
            return Err(Error::Config(format!(
                "{}: table `{}`: the key field `{}` is the table's primary key, so it must be \
                 among the fields written (add it to `fields`)",
                self.path.display(),
                self.table,
                self.key
            )));
        }

        create_private_if_absent(&self.path)?;
        // Without SQLITE_OPEN_URI: a path is a path, even one that starts with `file:`.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(&self.path, flags).map_err(|e| Error::Destination {
                path: self.path.clone(),
                message: format!("opening the database failed: {e}"),
            })?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .and_then(|()| {
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| {
                    row.get::<_, String>(0)
                })
            })
            .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
            .map_err(|e| Error::Destination {
                path: self.path.clone(),
                message: format!("setting up the database failed: {e}"),
            })?;

        self.prepare_table(&conn, &output)?;
        let insert = self.insert_sql(&output);
        // Prepare now, so that a table the insert does not fit fails before any record moves.
        if let Err(e) = conn.prepare_cached(&insert) {
            let hint = match self.mode {
                SqliteMode::Upsert => format!(
                    "; upsert needs `{}` to be the table's primary key or to have a UNIQUE index",
                    self.key
                ),
                SqliteMode::Append | SqliteMode::Replace => String::new(),
            };
            return Err(Error::Destination {
                path: self.path.clone(),
                message: format!(
                    "table `{}`: preparing the insert failed: {e}{hint}",
                    self.table
                ),
            });
        }
        self.open = Some(OpenSqlite {
            conn,
            output,
            insert,
            pending_position: None,
            withdrawals: None,
        });
        Ok(())
    }

    fn write_batch(&mut self, batch: &Batch) -> Result<(), Error> {
        self.write_batch_at(batch, "", None)
    }

    /// Upsert and append tables keep rows across runs; a `replace` table holds only this run's
    /// rows, so a withdrawn record is simply not in it.
    fn can_withdraw(&self) -> bool {
        self.mode != SqliteMode::Replace
    }

    fn withdraw(&mut self, keys: &Column, how: Withdrawal) -> Result<(), Error> {
        let Some(open) = self.open.as_mut() else {
            return Err(not_open(&self.path));
        };
        match &mut open.withdrawals {
            Some((pending, _)) => keys.iter().for_each(|k| pending.push(k)),
            None => open.withdrawals = Some((keys.clone(), how)),
        }
        Ok(())
    }

    fn keeps_positions(&self) -> bool {
        true
    }

    fn committed_position(&mut self, pipeline: &str) -> Result<Option<Position>, Error> {
        if !self.path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| self.db_error("opening it to read the position failed", e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| self.db_error("setting up the database failed", e))?;
        let exists: bool = conn
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [CURSORS],
                |r| r.get(0),
            )
            .map_err(|e| self.db_error("looking for positions failed", e))?;
        if !exists {
            return Ok(None);
        }
        use rusqlite::OptionalExtension;
        conn.query_row(
            &format!("SELECT cursor_value, key_value FROM {CURSORS} WHERE pipeline = ?1"),
            [pipeline],
            |r| {
                Ok(Position {
                    cursor: r.get(0)?,
                    key: r.get(1)?,
                })
            },
        )
        .optional()
        .map_err(|e| self.db_error("reading the position failed", e))
    }

    fn position_names(&mut self) -> Result<Vec<String>, Error> {
        if !self.path.exists() {
            return Ok(Vec::new());
        }
        let conn = Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| self.db_error("opening it to read the positions failed", e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| self.db_error("setting up the database failed", e))?;
        let exists: bool = conn
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [CURSORS],
                |r| r.get(0),
            )
            .map_err(|e| self.db_error("looking for positions failed", e))?;
        if !exists {
            return Ok(Vec::new());
        }
        let read = |conn: &Connection| -> rusqlite::Result<Vec<String>> {
            let mut stmt = conn.prepare(&format!("SELECT pipeline FROM {CURSORS}"))?;
            stmt.query_map([], |r| r.get(0))?.collect()
        };
        read(&conn).map_err(|e| self.db_error("reading the positions failed", e))
    }

    fn forget_positions(&mut self, names: &[String]) -> Result<(), Error> {
        if names.is_empty() || !self.path.exists() {
            return Ok(());
        }
        let forget = |path: &std::path::Path| -> rusqlite::Result<()> {
            let mut conn = Connection::open(path)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            let tx = conn.transaction()?;
            for name in names {
                tx.execute(
                    &format!("DELETE FROM {CURSORS} WHERE pipeline = ?1"),
                    [name],
                )?;
            }
            tx.commit()
        };
        forget(&self.path).map_err(|e| self.db_error("forgetting old positions failed", e))
    }

    fn write_batch_at(
        &mut self,
        batch: &Batch,
        pipeline: &str,
        position: Option<&Position>,
    ) -> Result<(), Error> {
        let Some(open) = self.open.as_mut() else {
            return Err(not_open(&self.path));
        };
        let columns = open.output.columns(&self.path, batch)?;
        let tx = open.conn.transaction().map_err(|e| Error::Destination {
            path: self.path.clone(),
            message: format!("starting a transaction failed: {e}"),
        })?;
        if let Some((keys, how)) = open.withdrawals.take()
            && let Some(sql) = withdrawal_sql(&self.table, &self.key, &open.output.names, how)
        {
            let mut stmt = tx.prepare_cached(&sql).map_err(|e| Error::Destination {
                path: self.path.clone(),
                message: format!(
                    "table `{}`: preparing the withdrawal failed: {e}",
                    self.table
                ),
            })?;
            for key in keys.iter() {
                stmt.execute([Bind(key)]).map_err(|e| Error::Destination {
                    path: self.path.clone(),
                    message: format!(
                        "table `{}`: removing a withdrawn record's row failed: {e}",
                        self.table
                    ),
                })?;
            }
        }
        {
            let mut stmt = tx
                .prepare_cached(&open.insert)
                .map_err(|e| Error::Destination {
                    path: self.path.clone(),
                    message: format!("table `{}`: preparing the insert failed: {e}", self.table),
                })?;
            for (row, &line) in batch.lines().iter().enumerate() {
                let written = columns
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, column)| {
                        stmt.raw_bind_parameter(i + 1, Bind(column.get(row)))
                    })
                    .and_then(|()| stmt.raw_execute());
                if let Err(e) = written {
                    // Dropping the transaction rolls the batch back.
                    return Err(row_error(
                        &self.path,
                        &self.table,
                        self.mode,
                        &self.key,
                        line,
                        e,
                    ));
                }
            }
        }
        match position {
            Some(p) if self.mode != SqliteMode::Replace => save_position(&tx, pipeline, p)
                .map_err(|e| Error::Destination {
                    path: self.path.clone(),
                    message: format!("recording the position failed: {e}"),
                })?,
            Some(p) => open.pending_position = Some((pipeline.to_string(), p.clone())),
            None => {}
        }
        tx.commit().map_err(|e| Error::Destination {
            path: self.path.clone(),
            message: format!("table `{}`: committing a batch failed: {e}", self.table),
        })
    }

    fn finish(&mut self) -> Result<(), Error> {
        let Some(mut open) = self.open.take() else {
            return Err(not_open(&self.path));
        };
        if self.mode == SqliteMode::Replace {
            let swap = format!(
                "DROP TABLE IF EXISTS {table}; ALTER TABLE {new} RENAME TO {table}",
                table = quote(&self.table),
                new = quote(&self.target())
            );
            let failed = |e: rusqlite::Error| Error::Destination {
                path: self.path.clone(),
                message: format!(
                    "table `{}`: swapping in the new table failed: {e}",
                    self.table
                ),
            };
            let tx = open.conn.transaction().map_err(failed)?;
            tx.execute_batch(&swap).map_err(failed)?;
            if let Some((pipeline, p)) = &open.pending_position {
                save_position(&tx, pipeline, p).map_err(failed)?;
            }
            tx.commit().map_err(failed)?;
        }
        open.conn.flush_prepared_statement_cache();
        open.conn.close().map_err(|(_, e)| Error::Destination {
            path: self.path.clone(),
            message: format!("closing the database failed: {e}"),
        })
    }
}

/// An error from inserting the record that came from source line `line`.
fn row_error(
    path: &Path,
    table: &str,
    mode: SqliteMode,
    key: &str,
    line: u64,
    e: rusqlite::Error,
) -> Error {
    let duplicate = matches!(
        &e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    );
    let message = if duplicate && mode == SqliteMode::Append {
        format!(
            "table `{table}`: the record from line {line} has a `{key}` already in the table; \
             append mode never replaces rows (use mode = \"upsert\" to update them)"
        )
    } else {
        format!("table `{table}`: writing the record from line {line} failed: {e}")
    };
    Error::Destination {
        path: path.to_path_buf(),
        message,
    }
}

/// The statement that acts on one withdrawn key: a delete, or an update that nulls every column
/// written but the key.
fn withdrawal_sql(table: &str, key: &str, columns: &[String], how: Withdrawal) -> Option<String> {
    let (table, key_column) = (quote(table), quote(key));
    match how {
        Withdrawal::Tombstone => {
            let nulls: Vec<String> = columns
                .iter()
                .filter(|c| **c != key)
                .map(|c| format!("{} = NULL", quote(c)))
                .collect();
            // A table of keys only has nothing to null.
            (!nulls.is_empty()).then(|| {
                format!(
                    "UPDATE {table} SET {} WHERE {key_column} = ?1",
                    nulls.join(", ")
                )
            })
        }
        Withdrawal::Delete => Some(format!("DELETE FROM {table} WHERE {key_column} = ?1")),
        Withdrawal::Keep => None,
    }
}

/// Rejects names SQLite cannot take as identifiers.
fn check_name(path: &Path, what: &str, name: &str) -> Result<(), Error> {
    if name.is_empty() || name.contains('\0') {
        let problem = if name.is_empty() {
            "is empty"
        } else {
            "contains a NUL character"
        };
        return Err(Error::Config(format!(
            "{}: the {what} name `{name}` {problem}; SQLite needs a name",
            path.display()
        )));
    }
    Ok(())
}

/// Binds a cell by its kind.
struct Bind<'a>(Cell<'a>);

impl ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let Cell { kind, text } = self.0;
        let as_text = ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes()));
        Ok(match kind {
            CellKind::Null => ToSqlOutput::Owned(Value::Null),
            CellKind::Text | CellKind::Json => as_text,
            CellKind::Number => {
                if let Ok(i) = text.parse::<i64>() {
                    ToSqlOutput::Owned(Value::Integer(i))
                } else {
                    match text.parse::<f64>() {
                        Ok(f) if f.is_finite() => ToSqlOutput::Owned(Value::Real(f)),
                        _ => as_text,
                    }
                }
            }
            CellKind::Bool => match text {
                "true" => ToSqlOutput::Owned(Value::Integer(1)),
                "false" => ToSqlOutput::Owned(Value::Integer(0)),
                _ => as_text,
            },
        })
    }
}

/// `name` as an SQL identifier: in double quotes, with embedded double quotes doubled.
pub(super) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
