//! Loads batches with COPY (text format), one transaction per batch: straight into the table
//! (`append`), into a temporary table merged with `INSERT … ON CONFLICT (key) DO UPDATE`
//! (`upsert`), or into a new table swapped in at the end (`replace`). The source's position is
//! written to `hushflow_cursors` in the batch's transaction, so data and cursor commit together.
//!
//! The table is created if missing (the record key is its primary key; column types come from
//! the policy's value types: `bigint`, `boolean`, `date`, `timestamptz` for typed fields and a
//! generalized year, `text` otherwise). An existing column of a typed field must have its type.
//! A field the table lacks is added (`ALTER TABLE … ADD COLUMN`); columns the run does not write
//! are left alone.

use super::config::{PostgresMode, PostgresSinkConfig};
use super::connect;
use super::sql::{column, copy_cell, describe, ident};
use hushflow_core::{
    Batch, Column, Encode, Error, Position, RejectReason, Schema, Sink, SinkRejection, Withdrawal,
};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

const CURSORS: &str = "hushflow_cursors";

/// Where the committed positions live: beside the sink's table, in its schema when the table
/// names one (`crm.contacts` → `crm.hushflow_cursors`), else unqualified (the first schema of
/// the connection's `search_path`, where an unqualified table lands too).
fn cursors_table(table: &str) -> String {
    match table.rsplit_once('.') {
        Some((schema, _)) => ident(&format!("{schema}.{CURSORS}")),
        None => ident(CURSORS),
    }
}
const STAGE: &str = "hushflow_stage";

/// Writes batches to a PostgreSQL table by COPY, with the source's position in the same
/// transaction.
pub struct PostgresSink {
    client: postgres::Client,
    config: PostgresSinkConfig,
    key: String,
    types: HashMap<String, String>,
    /// The fields written, and where each sits in the batches.
    columns: Vec<String>,
    take: Vec<usize>,
    /// Where COPY goes: the table, the stage, or the replacement table.
    copy_into: String,
    /// `replace` commits the position with the swap, at the end.
    pending_position: Option<(String, Position)>,
    /// The key column's type in the table as it is, for matching withdrawn keys sent as text.
    key_type: String,
    /// Keys of withdrawn records, acted on in the next batch's transaction.
    withdrawals: Vec<String>,
    withdrawal: Withdrawal,
    buf: Vec<u8>,
    /// Records of the last batch written that PostgreSQL cannot store (a NUL byte).
    rejections: Vec<SinkRejection>,
}

/// Why a record with a NUL byte in a text value is refused: PostgreSQL's text has none.
const NUL_DETAIL: &str = "contains a NUL byte, which PostgreSQL text cannot hold";

fn db_error(
    table: &str,
    action: &str,
    mode: PostgresMode,
    key: &str,
) -> impl Fn(postgres::Error) -> Error + use<> {
    let (table, action, key) = (table.to_string(), action.to_string(), key.to_string());
    move |e| Error::Destination {
        path: table.clone().into(),
        message: format!("{action}: {}", describe_in(&e, mode, &key)),
    }
}

/// [`describe`], with a unique violation explained for the mode the sink writes in.
fn describe_in(e: &postgres::Error, mode: PostgresMode, key: &str) -> String {
    let Some(d) = e.as_db_error().filter(|d| d.code().code() == "23505") else {
        return describe(e);
    };
    let constraint = d
        .constraint()
        .map_or(String::new(), |c| format!(" (constraint `{c}`)"));
    let why = match mode {
        PostgresMode::Append => format!(
            "append mode only inserts, so a key already in the table (or a value another unique \
             column already holds) stops it; use mode = \"upsert\" to update rows by `{key}`"
        ),
        PostgresMode::Upsert => format!(
            "upsert mode merges rows on the key `{key}` only, so a value of another unique \
             column that a row with another key already holds stops it"
        ),
        PostgresMode::Replace => "replace mode loads this run's rows into a new table with the \
             same constraints, and two of them hold the same value"
            .to_string(),
    };
    format!("a row breaks a unique constraint of the table{constraint}: {why}")
}

impl PostgresSink {
    /// Connects. `types` maps output fields to their value types (`integer`, `timestamp`, …):
    /// the columns hushflow creates get the matching SQL type (missing ones are `text`), and
    /// existing columns must have it.
    pub fn new(
        config: &PostgresSinkConfig,
        url: &str,
        base: &Path,
        key: &str,
        types: HashMap<String, String>,
    ) -> Result<PostgresSink, Error> {
        let target = connect::target(url, &config.tls(), base)?;
        let client = connect::connect(&target)?;
        Ok(PostgresSink {
            client,
            config: config.clone(),
            key: key.to_string(),
            types,
            columns: Vec::new(),
            take: Vec::new(),
            copy_into: ident(&config.table),
            pending_position: None,
            key_type: "text".into(),
            withdrawals: Vec::new(),
            withdrawal: Withdrawal::Delete,
            buf: Vec::new(),
            rejections: Vec::new(),
        })
    }

    fn err(&self, action: &str) -> impl Fn(postgres::Error) -> Error + use<> {
        db_error(&self.config.table, action, self.config.mode, &self.key)
    }

    fn sql_type(&self, field: &str) -> &str {
        self.types
            .get(field)
            .map_or("text", |t| crate::column_types::POSTGRES.column_type(t))
    }

    /// The table's schema and bare name (`public`-or-search-path when unqualified).
    fn split_table(&self) -> (Option<&str>, &str) {
        match self.config.table.rsplit_once('.') {
            Some((schema, name)) => (Some(schema), name),
            None => (None, self.config.table.as_str()),
        }
    }

    fn save_position(
        tx: &mut postgres::Transaction<'_>,
        cursors: &str,
        pipeline: &str,
        position: &Position,
    ) -> Result<(), postgres::Error> {
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {cursors} (pipeline text PRIMARY KEY, cursor_value text \
             NOT NULL, key_value text NOT NULL, committed_at timestamptz NOT NULL DEFAULT now())"
        ))?;
        tx.execute(
            &format!(
                "INSERT INTO {cursors} (pipeline, cursor_value, key_value) VALUES ($1, $2, $3) \
                 ON CONFLICT (pipeline) DO UPDATE SET cursor_value = EXCLUDED.cursor_value, \
                 key_value = EXCLUDED.key_value, committed_at = now()"
            ),
            &[&pipeline, &position.cursor, &position.key],
        )?;
        Ok(())
    }
}

impl Sink for PostgresSink {
    fn open(&mut self, schema: &Schema) -> Result<(), Error> {
        let fields: Vec<String> = match &self.config.fields {
            Some(f) => f.clone(),
            None => schema.fields().to_vec(),
        };
        if !fields.contains(&self.key) {
            return Err(Error::Config(format!(
                "PostgreSQL sink {}: the fields written must include the key `{}`",
                self.config.table, self.key
            )));
        }
        self.take = fields
            .iter()
            .map(|f| {
                schema
                    .index_of(f)
                    .ok_or_else(|| Error::Config(format!("the policy does not output `{f}`")))
            })
            .collect::<Result<_, _>>()?;
        self.columns = fields;
        let table = ident(&self.config.table);
        let defs: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{} {}", column(c), self.sql_type(c)))
            .collect();
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {table} ({}, PRIMARY KEY ({}))",
            defs.join(", "),
            column(&self.key)
        );
        self.client
            .batch_execute(&create)
            .map_err(self.err("creating the table"))?;

        // Schema drift: a field the table lacks becomes a new column.
        let (schema_name, name) = self.split_table();
        let (schema_name, name) = (schema_name.map(str::to_owned), name.to_owned());
        let existing: Vec<(String, String)> = self
            .client
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = coalesce($1, current_schema()) AND table_name = $2",
                &[&schema_name, &name],
            )
            .map_err(self.err("reading its columns"))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        // A typed field must land in a column of its type: a table made by hand (or before the
        // field had a type) is refused at the start, not row by row.
        for (c, found) in &existing {
            if let Some(value_type) = self.types.get(c).filter(|_| self.columns.contains(c)) {
                crate::column_types::POSTGRES
                    .check(&self.config.table, c, value_type, found)
                    .map_err(|message| Error::Destination {
                        path: self.config.table.clone().into(),
                        message,
                    })?;
            }
        }
        let existing: Vec<String> = existing.into_iter().map(|(c, _)| c).collect();
        for c in self.columns.clone() {
            if !existing.contains(&c) {
                let add = format!(
                    "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {} {}",
                    column(&c),
                    self.sql_type(&c)
                );
                self.client
                    .batch_execute(&add)
                    .map_err(self.err("adding a column"))?;
            }
        }

        self.key_type = self
            .client
            .query_one(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
                 WHERE attrelid = $1::text::regclass AND attname = $2",
                &[&table, &self.key],
            )
            .map_err(self.err("reading the key column's type"))?
            .get(0);

        match self.config.mode {
            PostgresMode::Append => {}
            PostgresMode::Upsert => {
                let stage = format!(
                    "CREATE TEMP TABLE IF NOT EXISTS {STAGE} (LIKE {table} INCLUDING DEFAULTS) \
                     ON COMMIT DELETE ROWS"
                );
                self.client
                    .batch_execute(&stage)
                    .map_err(self.err("creating the staging table"))?;
                self.copy_into = STAGE.to_string();
            }
            PostgresMode::Replace => {
                let new = ident(&format!("{}__hushflow_new", self.config.table));
                let create = format!(
                    "DROP TABLE IF EXISTS {new}; CREATE TABLE {new} (LIKE {table} INCLUDING ALL)"
                );
                self.client
                    .batch_execute(&create)
                    .map_err(self.err("creating the replacement table"))?;
                self.copy_into = new;
            }
        }
        Ok(())
    }

    fn write_batch(&mut self, batch: &Batch) -> Result<(), Error> {
        self.write_batch_at(batch, "", None)
    }

    fn write_batch_at(
        &mut self,
        batch: &Batch,
        pipeline: &str,
        position: Option<&Position>,
    ) -> Result<(), Error> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        self.encoding().encode(batch, &mut buf)?;
        let result = self.load(&buf, pipeline, position);
        self.buf = buf;
        result
    }

    fn write_encoded_at(
        &mut self,
        bytes: &[u8],
        pipeline: &str,
        position: Option<&Position>,
    ) -> Result<(), Error> {
        self.load(bytes, pipeline, position)
    }

    fn write_encoded(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.load(bytes, "", None)
    }

    fn encoder(&self) -> Option<std::sync::Arc<dyn Encode>> {
        (!self.columns.is_empty()).then(|| std::sync::Arc::new(self.encoding()) as _)
    }

    fn finish(&mut self) -> Result<(), Error> {
        if self.config.mode != PostgresMode::Replace {
            return Ok(());
        }
        let table = ident(&self.config.table);
        let (_, name) = self.split_table();
        let swap = format!(
            "DROP TABLE IF EXISTS {table}; ALTER TABLE {} RENAME TO {}",
            self.copy_into,
            column(name)
        );
        let pending = self.pending_position.take();
        let cursors = cursors_table(&self.config.table);
        let (swap_err, pos_err) = (
            self.err("swapping in the new table"),
            self.err("recording the position"),
        );
        let (begin_err, commit_err) = (
            self.err("beginning the swap"),
            self.err("committing the swap"),
        );
        let mut tx = self.client.transaction().map_err(begin_err)?;
        tx.batch_execute(&swap).map_err(&swap_err)?;
        if let Some((pipeline, p)) = &pending {
            Self::save_position(&mut tx, &cursors, pipeline, p).map_err(&pos_err)?;
        }
        tx.commit().map_err(commit_err)
    }

    /// Upsert and append tables keep rows across runs; a `replace` table holds only this run's
    /// rows, so a withdrawn record is simply not in it.
    fn can_withdraw(&self) -> bool {
        self.config.mode != PostgresMode::Replace
    }

    fn withdraw(&mut self, keys: &Column, how: Withdrawal) -> Result<(), Error> {
        self.withdrawal = how;
        self.withdrawals
            .extend(keys.iter().map(|k| k.text.to_string()));
        Ok(())
    }

    fn keeps_positions(&self) -> bool {
        true
    }

    /// A record with a NUL byte in a text value, which PostgreSQL cannot store.
    fn rejects_records(&self) -> bool {
        true
    }

    fn take_rejections(&mut self) -> Vec<SinkRejection> {
        std::mem::take(&mut self.rejections)
    }

    fn position_names(&mut self) -> Result<Vec<String>, Error> {
        let cursors = cursors_table(&self.config.table);
        let exists: bool = self
            .client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&cursors])
            .map_err(self.err("looking for the cursor table"))?
            .get(0);
        if !exists {
            return Ok(Vec::new());
        }
        let rows = self
            .client
            .query(&format!("SELECT pipeline FROM {cursors}"), &[])
            .map_err(self.err("reading the committed positions"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn forget_positions(&mut self, names: &[String]) -> Result<(), Error> {
        if names.is_empty() {
            return Ok(());
        }
        let cursors = cursors_table(&self.config.table);
        self.client
            .execute(
                &format!("DELETE FROM {cursors} WHERE pipeline = ANY($1)"),
                &[&names],
            )
            .map_err(self.err("forgetting old positions"))?;
        Ok(())
    }

    fn committed_position(&mut self, pipeline: &str) -> Result<Option<Position>, Error> {
        let cursors = cursors_table(&self.config.table);
        let exists: bool = self
            .client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&cursors])
            .map_err(self.err("looking for the cursor table"))?
            .get(0);
        if !exists {
            return Ok(None);
        }
        let row = self
            .client
            .query_opt(
                &format!("SELECT cursor_value, key_value FROM {cursors} WHERE pipeline = $1"),
                &[&pipeline],
            )
            .map_err(self.err("reading the committed position"))?;
        Ok(row.map(|r| Position {
            cursor: r.get(0),
            key: r.get(1),
        }))
    }
}

impl PostgresSink {
    /// The statement that acts on withdrawn keys (`$1`, as text): a delete, or an update that
    /// nulls every column written but the key.
    fn withdrawal_sql(&self) -> Option<String> {
        let table = ident(&self.config.table);
        let matches = format!(
            "{} = ANY($1::text[]::{}[])",
            column(&self.key),
            self.key_type
        );
        match self.withdrawal {
            Withdrawal::Delete => Some(format!("DELETE FROM {table} WHERE {matches}")),
            Withdrawal::Tombstone => {
                let nulls: Vec<String> = self
                    .columns
                    .iter()
                    .filter(|c| **c != self.key)
                    .map(|c| format!("{} = NULL", column(c)))
                    .collect();
                (!nulls.is_empty())
                    .then(|| format!("UPDATE {table} SET {} WHERE {matches}", nulls.join(", ")))
            }
            Withdrawal::Keep => None,
        }
    }

    fn encoding(&self) -> CopyEncoder {
        CopyEncoder {
            take: self.take.clone(),
            key: (self.config.mode == PostgresMode::Upsert)
                .then(|| self.columns.iter().position(|c| *c == self.key))
                .flatten(),
        }
    }

    /// COPYs rows in COPY text format (and merges them, for upsert) in one transaction with
    /// the position. `framed` is what [`CopyEncoder`] made: the refused records, then the rows.
    fn load(
        &mut self,
        framed: &[u8],
        pipeline: &str,
        position: Option<&Position>,
    ) -> Result<(), Error> {
        self.rejections.clear();
        let (refused, bytes) = unframe(framed).ok_or_else(|| {
            Error::Config(format!(
                "PostgreSQL sink {}: encoded rows not made by this sink's encoder",
                self.config.table
            ))
        })?;
        let cols: Vec<String> = self.columns.iter().map(|c| column(c)).collect();
        let cols = cols.join(", ");
        let copy = format!("COPY {} ({cols}) FROM STDIN", self.copy_into);
        let merge = (self.config.mode == PostgresMode::Upsert).then(|| {
            let key = column(&self.key);
            let updates: Vec<String> = self
                .columns
                .iter()
                .filter(|c| **c != self.key)
                .map(|c| format!("{0} = EXCLUDED.{0}", column(c)))
                .collect();
            let action = if updates.is_empty() {
                "DO NOTHING".to_string()
            } else {
                format!("DO UPDATE SET {}", updates.join(", "))
            };
            format!(
                "INSERT INTO {} ({cols}) SELECT {cols} FROM {STAGE} ON CONFLICT ({key}) {action}",
                ident(&self.config.table)
            )
        });
        let (copy_err, merge_err, pos_err, commit_err) = (
            self.err("loading a batch (COPY)"),
            self.err("merging a batch"),
            self.err("recording the position"),
            self.err("committing a batch"),
        );
        let replace = self.config.mode == PostgresMode::Replace;
        let begin_err = self.err("beginning a batch");
        let withdraw = self.withdrawal_sql();
        let withdraw_err = self.err("removing withdrawn records' rows");
        let withdrawn = std::mem::take(&mut self.withdrawals);
        let cursors = cursors_table(&self.config.table);
        let mut tx = self.client.transaction().map_err(begin_err)?;
        if let Some(sql) = withdraw.filter(|_| !withdrawn.is_empty()) {
            tx.execute(sql.as_str(), &[&withdrawn])
                .map_err(&withdraw_err)?;
        }
        let mut writer = tx.copy_in(&copy).map_err(&copy_err)?;
        writer.write_all(bytes).map_err(|e| Error::Destination {
            path: self.config.table.clone().into(),
            message: format!("loading a batch (COPY): {e}"),
        })?;
        writer.finish().map_err(&copy_err)?;
        if let Some(merge) = &merge {
            tx.execute(merge.as_str(), &[]).map_err(&merge_err)?;
        }
        match position {
            Some(p) if !replace => {
                Self::save_position(&mut tx, &cursors, pipeline, p).map_err(&pos_err)?
            }
            Some(p) => self.pending_position = Some((pipeline.to_string(), p.clone())),
            None => {}
        }
        tx.commit().map_err(&commit_err)?;
        self.rejections = refused
            .into_iter()
            .map(|(row, column)| SinkRejection {
                row,
                reason: RejectReason::Refused {
                    field: self.columns.get(column).cloned(),
                    detail: NUL_DETAIL.into(),
                },
            })
            .collect();
        Ok(())
    }
}

/// A record left out of the rows: its row in the batch and the column holding the NUL.
type Refused = (usize, usize);

/// Reads what [`CopyEncoder`] put before the rows: the refused records, then the rows.
fn unframe(framed: &[u8]) -> Option<(Vec<Refused>, &[u8])> {
    let u32_at = |at: usize| -> Option<usize> {
        let bytes: [u8; 4] = framed.get(at..at + 4)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(bytes)).ok()
    };
    let count = u32_at(0)?;
    let mut refused = Vec::with_capacity(count.min(framed.len() / 8));
    for i in 0..count {
        let at = 4 + i.checked_mul(8)?;
        refused.push((u32_at(at)?, u32_at(at + 4)?));
    }
    let rows = framed.get(4 + count.checked_mul(8)?..)?;
    Some((refused, rows))
}

/// Appends a `u32` the way [`unframe`] reads it.
fn put_u32(out: &mut Vec<u8>, n: usize) -> Result<(), Error> {
    let n = u32::try_from(n)
        .map_err(|_| Error::Config("a batch too large for the PostgreSQL sink".into()))?;
    out.extend_from_slice(&n.to_le_bytes());
    Ok(())
}

/// Encodes batches in COPY's text format, on the engine's workers. For upsert, of the rows of
/// one key in a batch only the last is kept: `ON CONFLICT` cannot touch a row twice in one
/// statement (and row by row, the last would win).
///
/// A record with a NUL byte in a text value is left out and listed before the rows (a `u32`
/// count, then a `u32` row and a `u32` column for each), so that the sink reports it as refused
/// when it loads the rest: PostgreSQL would fail the whole batch on it, naming nothing.
struct CopyEncoder {
    take: Vec<usize>,
    /// The key's place among the written columns, in upsert mode.
    key: Option<usize>,
}

impl Encode for CopyEncoder {
    fn encode(&self, batch: &Batch, out: &mut Vec<u8>) -> Result<(), Error> {
        let columns: Vec<_> = self.take.iter().map(|&i| batch.column(i)).collect();
        // Left out: refused records, and in upsert mode rows a later row of their key replaces.
        let mut skip = vec![false; batch.len()];
        let mut refused = Vec::new();
        for (row, skipped) in skip.iter_mut().enumerate() {
            let nul = columns.iter().position(|c| {
                let cell = c.get(row);
                !cell.is_null() && cell.text.as_bytes().contains(&0)
            });
            if let Some(column) = nul {
                *skipped = true;
                refused.push((row, column));
            }
        }
        put_u32(out, refused.len())?;
        for (row, column) in refused {
            put_u32(out, row)?;
            put_u32(out, column)?;
        }
        if let Some(k) = self.key {
            let keys = columns[k];
            let mut last: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
            for row in 0..batch.len() {
                if skip[row] {
                    continue;
                }
                if let Some(earlier) = last.insert(keys.get(row).text, row) {
                    skip[earlier] = true;
                }
            }
        }
        for (row, _) in skip.iter().enumerate().filter(|(_, s)| !**s) {
            for (n, c) in columns.iter().enumerate() {
                if n > 0 {
                    out.push(b'\t');
                }
                copy_cell(c.get(row), out);
            }
            out.push(b'\n');
        }
        Ok(())
    }
}
