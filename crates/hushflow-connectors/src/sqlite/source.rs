//! Reads a SQLite table or query in one statement, in one read transaction (one snapshot), on a
//! thread of its own that owns the connection: each `next_batch` asks it for the next rows, so
//! memory holds one batch whatever the table's size. Only the columns the pipeline needs are
//! selected. With a `cursor`, rows come in (cursor, key) order after the committed position.
//!
//! Positions are kept as text with the value's SQLite type in front (`i:42`, `r:1.5`, `t:…`),
//! so that the next run compares like with like (SQLite orders every integer before any text).

use super::config::SqliteSourceConfig;
use super::sink::quote;
use hushflow_core::{
    Batch, Cell, CellKind, Error, Position, RejectReason, Rejected, Schema, Source, SourceBatch,
};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;

type Reply = Result<Option<(SourceBatch, Option<Position>)>, Error>;

/// Reads a SQLite table or query on a thread of its own, one batch at a time.
pub struct SqliteSource {
    schema: Arc<Schema>,
    ask: Option<mpsc::SyncSender<usize>>,
    answers: mpsc::Receiver<Reply>,
    position: Option<Position>,
    done: bool,
}

fn tag(value: &Value) -> Option<String> {
    match value {
        Value::Integer(i) => Some(format!("i:{i}")),
        Value::Real(r) => Some(format!("r:{r}")),
        Value::Text(t) => Some(format!("t:{t}")),
        Value::Null | Value::Blob(_) => None,
    }
}

fn untag(text: &str) -> Result<Value, Error> {
    let bad = || {
        Error::Config(
            "the stored position of this SQLite source is damaged; run with --full-refresh".into(),
        )
    };
    let (kind, rest) = text.split_once(':').ok_or_else(bad)?;
    Ok(match kind {
        "i" => Value::Integer(rest.parse().map_err(|_| bad())?),
        "r" => Value::Real(rest.parse().map_err(|_| bad())?),
        "t" => Value::Text(rest.to_string()),
        _ => return Err(bad()),
    })
}

impl SqliteSource {
    /// Opens the database read-only and starts the reading thread. `wanted` are the fields the
    /// pipeline reads, `key` the record key, `after` the position to continue from.
    pub fn open(
        config: &SqliteSourceConfig,
        wanted: &[String],
        key: &str,
        after: Option<&Position>,
    ) -> Result<SqliteSource, Error> {
        let path = config.path.clone();
        let from = match (&config.table, &config.query) {
            (Some(t), None) => quote(t),
            (None, Some(q)) => format!("({q})"),
            _ => {
                return Err(Error::Config(format!(
                    "{}: a sqlite source needs exactly one of `table` and `query`",
                    path.display()
                )));
            }
        };
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            Error::Config(format!(
                "{}: opening the database failed: {e}",
                path.display()
            ))
        })?;
        let err = |action: &'static str| {
            let path = path.clone();
            move |e: rusqlite::Error| Error::Config(format!("{}: {action}: {e}", path.display()))
        };
        // The columns there are, for a clear error.
        let probe = conn
            .prepare(&format!("SELECT * FROM {from} AS hf_src LIMIT 0"))
            .map_err(err("reading its columns failed"))?;
        let names: Vec<String> = probe.column_names().iter().map(|s| s.to_string()).collect();
        drop(probe);
        let needed = wanted
            .iter()
            .map(String::as_str)
            .chain(config.cursor.as_deref())
            .chain(config.cursor.as_ref().map(|_| key));
        for name in needed {
            if !names.iter().any(|n| n == name) {
                return Err(Error::Config(format!(
                    "{}: has no column `{name}`; its columns are: {}",
                    path.display(),
                    crate::fields::list(&names)
                )));
            }
        }
        let mut select: Vec<String> = wanted
            .iter()
            .map(|n| format!("hf_src.{}", quote(n)))
            .collect();
        let mut params: Vec<Value> = Vec::new();
        let mut sql;
        if let Some(cursor) = &config.cursor {
            let (c, k) = (
                format!("hf_src.{}", quote(cursor)),
                format!("hf_src.{}", quote(key)),
            );
            select.push(c.clone());
            select.push(k.clone());
            sql = format!("SELECT {} FROM {from} AS hf_src", select.join(", "));
            if let Some(p) = after {
                sql.push_str(&format!(" WHERE ({c}, {k}) > (?1, ?2)"));
                params.push(untag(&p.cursor)?);
                params.push(untag(&p.key)?);
            }
            sql.push_str(&format!(" ORDER BY {c}, {k}"));
        } else {
            sql = format!("SELECT {} FROM {from} AS hf_src", select.join(", "));
        }
        let width = wanted.len();
        let incremental = config.cursor.is_some();
        let schema = Arc::new(Schema::new(wanted.to_vec()));
        let (ask, asked) = mpsc::sync_channel::<usize>(1);
        let (answer, answers) = mpsc::sync_channel::<Reply>(1);
        let thread_schema = schema.clone();
        std::thread::Builder::new()
            .name("sqlite-source".into())
            .spawn(move || {
                read(
                    conn,
                    &sql,
                    params,
                    thread_schema,
                    width,
                    incremental,
                    path,
                    asked,
                    answer,
                )
            })
            .map_err(|e| Error::Config(format!("starting the SQLite reader failed: {e}")))?;
        Ok(SqliteSource {
            schema,
            ask: Some(ask),
            answers,
            position: after.cloned(),
            done: false,
        })
    }
}

/// The reading thread: one statement, stepped as batches are asked for.
#[allow(clippy::too_many_arguments)]
fn read(
    conn: Connection,
    sql: &str,
    params: Vec<Value>,
    schema: Arc<Schema>,
    width: usize,
    incremental: bool,
    path: PathBuf,
    asked: mpsc::Receiver<usize>,
    answer: mpsc::SyncSender<Reply>,
) {
    let fail =
        |e: rusqlite::Error| Error::Config(format!("{}: reading rows failed: {e}", path.display()));
    let run = || -> Result<(), Error> {
        conn.execute_batch("BEGIN").map_err(fail)?;
        let mut stmt = conn.prepare(sql).map_err(fail)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter()))
            .map_err(fail)?;
        let mut line = 0u64;
        while let Ok(max_rows) = asked.recv() {
            let mut batch = Batch::new(schema.clone());
            let mut rejected = Vec::new();
            let mut position = None;
            let mut texts: Vec<(CellKind, String)> = Vec::with_capacity(width);
            while batch.len() + rejected.len() < max_rows.max(1) {
                let Some(row) = rows.next().map_err(fail)? else {
                    break;
                };
                line += 1;
                texts.clear();
                let mut bad = None;
                for i in 0..width {
                    let value = row.get_ref(i).map_err(fail)?;
                    let cell = match value {
                        ValueRef::Null => (CellKind::Null, String::new()),
                        ValueRef::Integer(n) => (CellKind::Number, n.to_string()),
                        ValueRef::Real(r) => (CellKind::Number, r.to_string()),
                        ValueRef::Text(t) | ValueRef::Blob(t) => match std::str::from_utf8(t) {
                            Ok(s) => (CellKind::Text, s.to_string()),
                            Err(_) => {
                                bad.get_or_insert(i);
                                (CellKind::Null, String::new())
                            }
                        },
                    };
                    texts.push(cell);
                }
                if incremental {
                    let cursor: Value = row.get(width).map_err(fail)?;
                    let key: Value = row.get(width + 1).map_err(fail)?;
                    if let (Some(cursor), Some(key)) = (tag(&cursor), tag(&key)) {
                        position = Some(Position { cursor, key });
                    }
                }
                match bad {
                    // The bytes are not kept: they are not UTF-8, and the record is named by
                    // its row number and field.
                    Some(i) => rejected.push(Rejected {
                        line,
                        reason: RejectReason::InvalidUtf8 {
                            field: Some(schema.fields()[i].clone()),
                        },
                        raw: Vec::new(),
                    }),
                    None => batch.push_row(
                        line,
                        texts.iter().map(|(kind, text)| Cell { kind: *kind, text }),
                    ),
                }
            }
            let reply = if batch.is_empty() && rejected.is_empty() {
                None
            } else {
                Some((SourceBatch { batch, rejected }, position))
            };
            let end = reply.is_none();
            if answer.send(Ok(reply)).is_err() || end {
                break;
            }
        }
        Ok(())
    };
    if let Err(e) = run() {
        let _ = answer.send(Err(e));
    }
}

impl Source for SqliteSource {
    fn schema(&self) -> Arc<Schema> {
        self.schema.clone()
    }

    fn next_batch(&mut self, max_rows: usize) -> Result<Option<SourceBatch>, Error> {
        if self.done {
            return Ok(None);
        }
        let closed = || Error::Config("the SQLite reader stopped".into());
        self.ask
            .as_ref()
            .ok_or_else(closed)?
            .send(max_rows)
            .map_err(|_| closed())?;
        match self.answers.recv().map_err(|_| closed())? {
            Ok(Some((batch, position))) => {
                if position.is_some() {
                    self.position = position;
                }
                Ok(Some(batch))
            }
            Ok(None) => {
                self.done = true;
                self.ask = None;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    fn position(&self) -> Option<Position> {
        self.position.clone()
    }
}
