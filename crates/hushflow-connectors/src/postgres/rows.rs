//! A PostgreSQL sink's rows by value ([`SinkRows`]): values bound as text parameters and
//! compared with each column as text, so a key of any type matches.

use super::config::PostgresSinkConfig;
use super::connect;
use super::sql::{describe, ident};
use crate::rows::{FoundRow, RowMatch, SinkRows, on_columns};
use hushflow_core::Error;
use std::path::Path;

/// The rows of a PostgreSQL sink's table.
pub struct PostgresRows {
    client: postgres::Client,
    table: String,
}

impl PostgresRows {
    /// Connects to the database of `config` (`url` resolved).
    pub fn new(config: &PostgresSinkConfig, url: &str, base: &Path) -> Result<Self, Error> {
        let target = connect::target(url, &config.tls(), base)?;
        Ok(PostgresRows {
            client: connect::connect(&target)?,
            table: config.table.clone(),
        })
    }

    fn error(&self, what: &str) -> impl Fn(postgres::Error) -> Error + use<> {
        let (table, what) = (self.table.clone(), what.to_string());
        move |e| Error::Destination {
            path: table.clone().into(),
            message: format!("{what}: {}", describe(&e)),
        }
    }

    /// The table's columns; `None` when it does not exist.
    fn columns(&mut self) -> Result<Option<Vec<String>>, Error> {
        let sql = format!("SELECT * FROM {} LIMIT 0", ident(&self.table));
        match self.client.prepare(&sql) {
            Ok(stmt) => Ok(Some(
                stmt.columns()
                    .iter()
                    .map(|c| c.name().to_string())
                    .collect(),
            )),
            Err(e) if e.code() == Some(&postgres::error::SqlState::UNDEFINED_TABLE) => Ok(None),
            Err(e) => Err(self.error("reading its columns failed")(e)),
        }
    }

    fn condition(matches: &[&RowMatch], columns: &[String]) -> String {
        matches
            .iter()
            .enumerate()
            .map(|(i, m)| {
                // The table's own spelling of the column (PostgreSQL folds unquoted names).
                let column = columns
                    .iter()
                    .find(|c| c.eq_ignore_ascii_case(&m.field))
                    .unwrap_or(&m.field);
                format!("{}::text = ${}", ident(column), i + 1)
            })
            .collect::<Vec<_>>()
            .join(" OR ")
    }
}

fn params<'m>(matches: &'m [&RowMatch]) -> Vec<&'m (dyn postgres::types::ToSql + Sync)> {
    matches
        .iter()
        .map(|m| &m.value as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

impl SinkRows for PostgresRows {
    fn find(&mut self, matches: &[RowMatch]) -> Result<Vec<FoundRow>, Error> {
        let Some(columns) = self.columns()? else {
            return Ok(Vec::new());
        };
        let matches = on_columns(matches, &columns);
        if matches.is_empty() {
            return Ok(Vec::new());
        }
        let select: Vec<String> = columns
            .iter()
            .map(|c| format!("{}::text", ident(c)))
            .collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE {}",
            select.join(", "),
            ident(&self.table),
            Self::condition(&matches, &columns)
        );
        let rows = self
            .client
            .query(sql.as_str(), &params(&matches))
            .map_err(self.error("looking rows up failed"))?;
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            let mut fields = Vec::with_capacity(columns.len());
            for (i, c) in columns.iter().enumerate() {
                let value: Option<String> = row
                    .try_get(i)
                    .map_err(self.error("reading a found row failed"))?;
                fields.push((c.clone(), value));
            }
            found.push(FoundRow { line: None, fields });
        }
        Ok(found)
    }

    fn can_delete(&self) -> bool {
        true
    }

    fn delete_before(&mut self, field: &str, cutoff: &str) -> Result<u64, Error> {
        let Some(columns) = self.columns()? else {
            return Ok(0);
        };
        let Some(column) = columns.iter().find(|c| c.eq_ignore_ascii_case(field)) else {
            return Err(Error::Destination {
                path: self.table.clone().into(),
                message: format!(
                    "has no column `{field}` (retain_by); name a timestamp field the sink writes"
                ),
            });
        };
        let sql = format!(
            "DELETE FROM {} WHERE {}::timestamptz < $1::text::timestamptz",
            ident(&self.table),
            ident(column)
        );
        self.client
            .execute(sql.as_str(), &[&cutoff])
            .map_err(self.error("deleting rows past retention failed"))
    }

    fn delete(&mut self, matches: &[RowMatch]) -> Result<u64, Error> {
        let Some(columns) = self.columns()? else {
            return Ok(0);
        };
        let matches = on_columns(matches, &columns);
        if matches.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "DELETE FROM {} WHERE {}",
            ident(&self.table),
            Self::condition(&matches, &columns)
        );
        // One statement is one transaction: all the person's rows go, or none.
        self.client
            .execute(sql.as_str(), &params(&matches))
            .map_err(self.error("deleting rows failed"))
    }
}
