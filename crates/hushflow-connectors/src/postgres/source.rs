//! Reads a table or a query through a server-side cursor in one read-only, repeatable-read
//! transaction: pages of `batch_size` rows, so memory is bounded whatever the table's size, and
//! the run sees one snapshot. Only the columns the pipeline needs are selected (a dropped column
//! is never read). With a `cursor` column, rows come in (cursor, key) order after the position
//! the last run committed (keyset pagination), and the source reports its position per batch.

use super::config::PostgresSourceConfig;
use super::connect;
use super::sql::{column, describe, ident, literal};
use hushflow_core::{Batch, Cell, Error, Position, Schema, Source, SourceBatch, SourceChunk};
use std::path::Path;
use std::sync::Arc;

/// Reads a PostgreSQL table or query in server-side cursor pages.
pub struct PostgresSource {
    client: postgres::Client,
    schema: Arc<Schema>,
    /// Where the cursor's and the key's text sit in a fetched row, when incremental.
    incremental: bool,
    position: Option<Position>,
    /// Rows read so far: a row's number stands in for a line number in reports.
    rows: u64,
    done: bool,
    label: String,
}

const CURSOR_NAME: &str = "hushflow_source";

fn db_error(label: &str, action: &str) -> impl Fn(postgres::Error) -> Error + use<> {
    let (label, action) = (label.to_string(), action.to_string());
    move |e| {
        Error::Config(format!(
            "PostgreSQL source {label}: {action}: {}",
            describe(&e)
        ))
    }
}

impl PostgresSource {
    /// Connects and opens the cursor. `wanted` are the fields the pipeline reads, `key` the
    /// record key, `after` the position to continue from (`None`: from the start).
    pub fn open(
        config: &PostgresSourceConfig,
        url: &str,
        base: &Path,
        wanted: &[String],
        key: &str,
        after: Option<&Position>,
    ) -> Result<PostgresSource, Error> {
        let (from, label) = match (&config.table, &config.query) {
            // Aliased so that ORDER BY and WHERE name the source's columns, not the text casts
            // of the select list (which sort differently).
            (Some(t), None) => (format!("{} AS hf_src", ident(t)), format!("table {t}")),
            (None, Some(q)) => (format!("({q}) AS hf_src"), "query".to_string()),
            _ => {
                return Err(Error::Config(
                    "a postgres source needs exactly one of `table` and `query`".into(),
                ));
            }
        };
        let target = connect::target(url, &config.tls(), base)?;
        let mut client = connect::connect(&target)?;
        let err = |action: &str| db_error(&label, action);

        // The columns there are, for a clear error, and the cursor's and key's types.
        let probe = client
            .prepare(&format!("SELECT * FROM {from} LIMIT 0"))
            .map_err(err("reading its columns"))?;
        let columns: Vec<(&str, &postgres::types::Type)> = probe
            .columns()
            .iter()
            .map(|c| (c.name(), c.type_()))
            .collect();
        let type_of = |name: &str| {
            columns
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| format!("{}.{}", column(t.schema()), column(t.name())))
                .ok_or_else(|| {
                    let names: Vec<String> = columns.iter().map(|(n, _)| n.to_string()).collect();
                    Error::Config(format!(
                        "PostgreSQL source {label}: has no column `{name}`; its columns are: {}",
                        crate::fields::list(&names)
                    ))
                })
        };
        for name in wanted {
            type_of(name)?;
        }

        let mut select: Vec<String> = wanted
            .iter()
            .map(|n| format!("{}::text", column(n)))
            .collect();
        let mut sql = String::new();
        if let Some(cursor) = &config.cursor {
            let (ctype, ktype) = (type_of(cursor)?, type_of(key)?);
            let (c, k) = (
                format!("hf_src.{}", column(cursor)),
                format!("hf_src.{}", column(key)),
            );
            select.push(format!("{c}::text"));
            select.push(format!("{k}::text"));
            sql.push_str(&format!("SELECT {} FROM {from}", select.join(", ")));
            if let Some(p) = after {
                let on: String = client
                    .query_one("SHOW standard_conforming_strings", &[])
                    .and_then(|r| r.try_get(0))
                    .map_err(err("checking standard_conforming_strings"))?;
                if on != "on" {
                    return Err(Error::Config(format!(
                        "PostgreSQL source {label}: incremental reads need \
                         standard_conforming_strings = on"
                    )));
                }
                sql.push_str(&format!(
                    " WHERE ({c}, {k}) > ({}::{ctype}, {}::{ktype})",
                    literal(&p.cursor),
                    literal(&p.key)
                ));
            }
            // Rows whose cursor is NULL are never after a position: an incremental source
            // skips them (a full refresh reads them).
            sql.push_str(&format!(" ORDER BY {c}, {k}"));
        } else {
            sql.push_str(&format!("SELECT {} FROM {from}", select.join(", ")));
        }
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(err("starting the read"))?;
        client
            .batch_execute(&format!("DECLARE {CURSOR_NAME} NO SCROLL CURSOR FOR {sql}"))
            .map_err(err("opening the cursor"))?;
        Ok(PostgresSource {
            client,
            schema: Arc::new(Schema::new(wanted.to_vec())),
            incremental: config.cursor.is_some(),
            position: after.cloned(),
            rows: 0,
            done: false,
            label,
        })
    }
}

impl Source for PostgresSource {
    fn schema(&self) -> Arc<Schema> {
        self.schema.clone()
    }

    fn next_batch(&mut self, max_rows: usize) -> Result<Option<SourceBatch>, Error> {
        match self.next_chunk(max_rows)? {
            Some(chunk) => chunk.decode().map(Some),
            None => Ok(None),
        }
    }

    /// Fetches a page on the reader thread; turning its rows into a batch happens wherever the
    /// chunk is decoded (the engine's workers).
    fn next_chunk(&mut self, max_rows: usize) -> Result<Option<SourceChunk>, Error> {
        if self.done {
            return Ok(None);
        }
        let label = self.label.clone();
        let err = |action: &str| db_error(&label, action);
        let rows = self
            .client
            .query(
                &format!("FETCH {} FROM {CURSOR_NAME}", max_rows.max(1)),
                &[],
            )
            .map_err(err("reading rows"))?;
        if rows.is_empty() {
            self.done = true;
            self.client
                .batch_execute("COMMIT")
                .map_err(err("ending the read"))?;
            return Ok(None);
        }
        let width = self.schema.len();
        if self.incremental {
            // Rows come in cursor order: the last with a cursor is where the next run starts.
            let last = rows.iter().rev().find_map(|row| {
                let cursor: Option<&str> = row.try_get(width).ok()?;
                let key: Option<&str> = row.try_get(width + 1).ok()?;
                Some(Position {
                    cursor: cursor?.to_string(),
                    key: key?.to_string(),
                })
            });
            if last.is_some() {
                self.position = last;
            }
        }
        let first_line = self.rows + 1;
        self.rows += rows.len() as u64;
        let schema = self.schema.clone();
        Ok(Some(SourceChunk::Raw(Box::new(move || {
            let err = |action: &str| db_error(&label, action);
            let mut batch = Batch::new(schema);
            let mut values: Vec<Option<&str>> = Vec::with_capacity(width);
            for (n, row) in rows.iter().enumerate() {
                values.clear();
                for i in 0..width {
                    values.push(row.try_get(i).map_err(err("decoding a row"))?);
                }
                batch.push_row(
                    first_line + n as u64,
                    values.iter().map(|v| v.map_or(Cell::NULL, Cell::text)),
                );
            }
            Ok(SourceBatch {
                batch,
                rejected: Vec::new(),
            })
        }))))
    }

    fn position(&self) -> Option<Position> {
        self.position.clone()
    }
}
