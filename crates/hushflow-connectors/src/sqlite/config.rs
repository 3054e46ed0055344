//! The `[sink]` table of a pipeline file with `type = "sqlite"`.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Writes rows to a table of a SQLite database.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqliteSinkConfig {
    /// The database file, created (private to its owner) if it does not exist. In a pipeline
    /// file, a relative path is relative to that file; missing directories are created.
    pub path: PathBuf,
    /// The table to write. Created if absent, with the record key as its primary key; an
    /// existing table must have a column for every field written.
    pub table: String,
    /// `"upsert"` (the default): a row whose key is already in the table replaces that row's
    /// values, so re-running a pipeline gives the same table. `"append"`: rows are only
    /// inserted, and a key already in the table stops the run. `"replace"`: the table is rebuilt
    /// from this run's rows and swapped in at the end.
    #[serde(default)]
    pub mode: SqliteMode,
    /// The fields to write, in this order; must include the record key. Default: every field
    /// the policy outputs, in order.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// Rows older than this (a duration such as `"400d"`; a bare number is days) are deleted by
    /// `hushflow retention enforce`, judged by the timestamp field `retain_by`.
    #[serde(default)]
    pub retain: Option<String>,
    /// The output field (a timestamp or date) rows are aged by, with `retain`.
    #[serde(default)]
    pub retain_by: Option<String>,
}

impl SqliteSinkConfig {
    /// A sink upserting every field into `table` of the database at `path`.
    pub fn new(path: impl Into<PathBuf>, table: impl Into<String>) -> Self {
        SqliteSinkConfig {
            path: path.into(),
            table: table.into(),
            mode: SqliteMode::Upsert,
            fields: None,
            retain: None,
            retain_by: None,
        }
    }
}

/// How rows meet the rows already in the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SqliteMode {
    /// Insert new keys and update the columns of keys already present.
    #[default]
    Upsert,
    /// Insert only; a key already present is an error.
    Append,
    /// Write a new table and swap it in when the run succeeds: the table holds exactly this
    /// run's rows, and readers never see it half-written.
    Replace,
}

/// Reads rows of a table, or of a query, from a SQLite database.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqliteSourceConfig {
    /// The database file (opened read-only). In a pipeline file, relative to that file.
    pub path: PathBuf,
    /// The table to read; or give `query`.
    #[serde(default)]
    pub table: Option<String>,
    /// A `SELECT` whose result is read as if it were a table.
    #[serde(default)]
    pub query: Option<String>,
    /// A column that grows when a row changes: each run reads only rows after the last
    /// committed (cursor, key), as the PostgreSQL source does.
    #[serde(default)]
    pub cursor: Option<String>,
}

impl crate::SourceConfig for SqliteSourceConfig {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn location(&self) -> &Path {
        &self.path
    }

    fn file(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn resolve_paths(&mut self, base: &Path) {
        self.path = base.join(&self.path);
    }

    fn incremental(&self) -> bool {
        self.cursor.is_some()
    }

    fn open(
        &self,
        ctx: &crate::SourceContext<'_>,
    ) -> Result<Box<dyn hushflow_core::Source>, hushflow_core::Error> {
        Ok(Box::new(super::SqliteSource::open(
            self, ctx.fields, ctx.key, ctx.after,
        )?))
    }
}

impl crate::SinkConfig for SqliteSinkConfig {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn location(&self) -> &Path {
        &self.path
    }

    fn file(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn relocate(&mut self, to: &Path) {
        self.path = to.to_path_buf();
    }

    fn resolve_paths(&mut self, base: &Path) {
        self.path = base.join(&self.path);
    }

    fn fields(&self) -> Option<&[String]> {
        self.fields.as_deref()
    }

    fn problems(&self) -> Vec<crate::ConfigProblem> {
        let mut problems = crate::rows::retention_problems(&self.retain, &self.retain_by);
        if self.table.is_empty() {
            problems.insert(
                0,
                crate::ConfigProblem {
                    key: "table",
                    message: "must not be empty".into(),
                },
            );
        }
        problems
    }

    fn keeps_rows(&self) -> bool {
        true
    }

    fn merges_runs(&self) -> bool {
        self.mode != SqliteMode::Replace
    }

    fn withdraws_rows(&self) -> bool {
        true
    }

    fn commits_per_batch(&self) -> bool {
        true
    }

    fn describe(&self, key: &str) -> Option<String> {
        Some(format!(
            "table `{}` ({:?} on `{key}`)",
            self.table, self.mode
        ))
    }

    fn open(
        &self,
        ctx: &crate::SinkContext<'_>,
    ) -> Result<Box<dyn hushflow_core::Sink>, hushflow_core::Error> {
        Ok(Box::new(
            super::SqliteSink::new(self, ctx.key)?.with_types(ctx.column_types.clone()),
        ))
    }

    fn retention(&self) -> Option<(&str, &str)> {
        Some((self.retain.as_deref()?, self.retain_by.as_deref()?))
    }

    fn rows(
        &self,
        _ctx: &crate::SinkContext<'_>,
    ) -> Result<Option<Box<dyn crate::SinkRows>>, hushflow_core::Error> {
        Ok(Some(Box::new(super::SqliteRows::new(self))))
    }
}
