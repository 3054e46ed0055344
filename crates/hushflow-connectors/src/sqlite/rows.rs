//! A SQLite sink's rows by value ([`SinkRows`]): found and deleted with statements whose
//! values are bound, never spliced, and compared as text.

use super::config::SqliteSinkConfig;
use crate::rows::{FoundRow, RowMatch, SinkRows, on_columns};
use hushflow_core::Error;
use rusqlite::{Connection, OpenFlags, params_from_iter};
use std::path::PathBuf;

/// The rows of a SQLite sink's table.
pub struct SqliteRows {
    path: PathBuf,
    table: String,
}

impl SqliteRows {
    /// The table `config` writes.
    pub fn new(config: &SqliteSinkConfig) -> SqliteRows {
        SqliteRows {
            path: config.path.clone(),
            table: config.table.clone(),
        }
    }

    fn error(&self, what: &str, e: rusqlite::Error) -> Error {
        Error::Destination {
            path: self.path.clone(),
            message: format!("table `{}`: {what}: {e}", self.table),
        }
    }

    /// The open database and the table's columns; `None` when there is no database or table.
    fn open(&self) -> Result<Option<(Connection, Vec<String>)>, Error> {
        if !self.path.exists() {
            return Ok(None);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)
            .map_err(|e| self.error("opening the database failed", e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| self.error("setting up the database failed", e))?;
        let columns = {
            let mut stmt = conn
                .prepare("SELECT name FROM pragma_table_info(?1)")
                .map_err(|e| self.error("reading its columns failed", e))?;
            stmt.query_map([&self.table], |row| row.get::<_, String>(0))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.error("reading its columns failed", e))?
        };
        Ok((!columns.is_empty()).then_some((conn, columns)))
    }

    /// `WHERE` text and its bound values for `matches`.
    fn condition<'m>(matches: &[&'m RowMatch]) -> (String, Vec<&'m str>) {
        let parts: Vec<String> = matches
            .iter()
            .enumerate()
            .map(|(i, m)| {
                format!(
                    "CAST({} AS TEXT) = ?{}",
                    super::sink::quote(&m.field),
                    i + 1
                )
            })
            .collect();
        (
            parts.join(" OR "),
            matches.iter().map(|m| m.value.as_str()).collect(),
        )
    }
}

impl SinkRows for SqliteRows {
    fn find(&mut self, matches: &[RowMatch]) -> Result<Vec<FoundRow>, Error> {
        let Some((conn, columns)) = self.open()? else {
            return Ok(Vec::new());
        };
        let matches = on_columns(matches, &columns);
        if matches.is_empty() {
            return Ok(Vec::new());
        }
        let (condition, values) = Self::condition(&matches);
        let select: Vec<String> = columns
            .iter()
            .map(|c| format!("CAST({} AS TEXT)", super::sink::quote(c)))
            .collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE {condition}",
            select.join(", "),
            super::sink::quote(&self.table)
        );
        let mut stmt = conn
            .prepare(&sql)
            .map_err(|e| self.error("looking rows up failed", e))?;
        let rows = stmt
            .query_map(params_from_iter(values), |row| {
                let mut fields = Vec::with_capacity(columns.len());
                for (i, c) in columns.iter().enumerate() {
                    fields.push((c.clone(), row.get::<_, Option<String>>(i)?));
                }
                Ok(FoundRow { line: None, fields })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.error("looking rows up failed", e))?;
        Ok(rows)
    }

    fn can_delete(&self) -> bool {
        true
    }

    fn delete_before(&mut self, field: &str, cutoff: &str) -> Result<u64, Error> {
        let Some((conn, columns)) = self.open()? else {
            return Ok(0);
        };
        let Some(column) = columns.iter().find(|c| c.eq_ignore_ascii_case(field)) else {
            return Err(Error::Destination {
                path: self.path.clone(),
                message: format!(
                    "table `{}` has no column `{field}` (retain_by); name a timestamp field the \
                     sink writes",
                    self.table
                ),
            });
        };
        // julianday reads RFC 3339 and plain dates alike; a value it cannot read is kept.
        let deleted = conn
            .execute(
                &format!(
                    "DELETE FROM {} WHERE julianday({}) < julianday(?1)",
                    super::sink::quote(&self.table),
                    super::sink::quote(column)
                ),
                [cutoff],
            )
            .map_err(|e| self.error("deleting rows past retention failed", e))?;
        Ok(deleted as u64)
    }

    fn delete(&mut self, matches: &[RowMatch]) -> Result<u64, Error> {
        let Some((mut conn, columns)) = self.open()? else {
            return Ok(0);
        };
        let matches = on_columns(matches, &columns);
        if matches.is_empty() {
            return Ok(0);
        }
        let (condition, values) = Self::condition(&matches);
        let tx = conn
            .transaction()
            .map_err(|e| self.error("beginning the delete failed", e))?;
        let deleted = tx
            .execute(
                &format!(
                    "DELETE FROM {} WHERE {condition}",
                    super::sink::quote(&self.table)
                ),
                params_from_iter(values),
            )
            .map_err(|e| self.error("deleting rows failed", e))?;
        tx.commit()
            .map_err(|e| self.error("committing the delete failed", e))?;
        Ok(deleted as u64)
    }
}
