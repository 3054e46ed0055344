//! The `[source]` and `[sink]` tables of a pipeline file with `type = "postgres"`.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// How a connection is encrypted: libpq's `sslmode` and `sslrootcert` (which may also be given
/// in the URL's query string; the pipeline's keys win), and whether an unencrypted connection
/// to a remote host is allowed. Every postgres `[source]` and `[sink]` takes these three keys:
/// - `sslmode`: `disable`, `allow`, `prefer`, `require`, `verify-ca` or `verify-full`; default
///   `verify-full`, or `prefer` for a loopback address or a Unix socket;
/// - `sslrootcert`: a PEM file of the root certificates to trust, or `system` (the default) for
///   the operating system's store; relative to the pipeline file;
/// - `allow_insecure`: allow a mode that may send data unencrypted (`disable`, `allow`,
///   `prefer`) to a host that is not loopback; off by default, and validate warns when it is on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// `sslmode`; `None`: `verify-full`, or `prefer` for a loopback address or a Unix socket.
    pub sslmode: Option<String>,
    /// `sslrootcert`: a PEM file of root certificates; `None` or `system`: the operating system's
    /// store.
    pub sslrootcert: Option<PathBuf>,
    /// `allow_insecure`: allow a mode that may send data unencrypted to a host that is not loopback.
    pub allow_insecure: bool,
}

/// Reads rows of a table, or of a query, from PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresSourceConfig {
    /// A secret reference (`env:NAME`, `file:PATH`, `keyring:NAME`) holding the connection URL,
    /// `postgres://user:password@host:port/db?sslmode=…`. Never the URL itself.
    pub url: String,
    /// The table (optionally `schema.table`) to read; or give `query`.
    #[serde(default)]
    pub table: Option<String>,
    /// A `SELECT` whose result is read as if it were a table.
    #[serde(default)]
    pub query: Option<String>,
    /// A column that grows when a row changes (`updated_at`, a sequence): each run reads only
    /// rows after the last committed (cursor, key). Without it every run reads everything.
    #[serde(default)]
    pub cursor: Option<String>,
    /// See [`Tls`].
    #[serde(default)]
    pub sslmode: Option<String>,
    /// The root certificates to trust (see [`Tls`]).
    #[serde(default)]
    pub sslrootcert: Option<PathBuf>,
    /// Allow a mode that may send data unencrypted to a remote host (see [`Tls`]).
    #[serde(default)]
    pub allow_insecure: bool,
}

/// Writes rows to a table of a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresSinkConfig {
    /// A secret reference holding the connection URL (see the source's `url`).
    pub url: String,
    /// The table (optionally `schema.table`). Created if missing, keyed on the record key.
    pub table: String,
    /// How rows meet the rows already in the table (default `upsert`).
    #[serde(default)]
    pub mode: PostgresMode,
    /// The fields to write, in this order; default every field the policy outputs.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// See [`Tls`].
    #[serde(default)]
    pub sslmode: Option<String>,
    /// The root certificates to trust (see [`Tls`]).
    #[serde(default)]
    pub sslrootcert: Option<PathBuf>,
    /// Allow a mode that may send data unencrypted to a remote host (see [`Tls`]).
    #[serde(default)]
    pub allow_insecure: bool,
    /// Rows older than this (a duration such as `"400d"`; a bare number is days) are deleted by
    /// `hushflow retention enforce`, judged by the timestamp field `retain_by`.
    #[serde(default)]
    pub retain: Option<String>,
    /// The output field (a timestamp or date) rows are aged by, with `retain`.
    #[serde(default)]
    pub retain_by: Option<String>,
}

/// How rows meet the rows already in the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PostgresMode {
    /// COPY into a temporary table, then `INSERT … ON CONFLICT (key) DO UPDATE`: new keys are
    /// inserted, present ones updated; re-running gives the same table.
    #[default]
    Upsert,
    /// COPY straight into the table; a key already present stops the run.
    Append,
    /// Load a new table and swap it in when the run succeeds: the table holds exactly this
    /// run's rows, and readers never see it half-loaded.
    Replace,
}

impl PostgresSourceConfig {
    /// The table's TLS keys.
    pub fn tls(&self) -> Tls {
        Tls {
            sslmode: self.sslmode.clone(),
            sslrootcert: self.sslrootcert.clone(),
            allow_insecure: self.allow_insecure,
        }
    }
}

impl PostgresSinkConfig {
    /// The table's TLS keys.
    pub fn tls(&self) -> Tls {
        Tls {
            sslmode: self.sslmode.clone(),
            sslrootcert: self.sslrootcert.clone(),
            allow_insecure: self.allow_insecure,
        }
    }
}

/// A PostgreSQL connection: the URL's reference and the table's TLS keys.
#[derive(Debug)]
struct PostgresConnection<'a> {
    reference: &'a str,
    tls: Tls,
}

impl crate::Connection for PostgresConnection<'_> {
    fn reference(&self) -> &str {
        self.reference
    }

    fn check_url(&self, url: &str, base: &Path) -> Result<Vec<String>, String> {
        let target = super::connect::target(url, &self.tls, base).map_err(|e| e.to_string())?;
        Ok(super::connect::warnings(&target, &self.tls))
    }
}

/// `sslrootcert` is a file relative to the pipeline file, or `system`.
fn resolve_roots(roots: &mut Option<PathBuf>, base: &Path) {
    if let Some(p) = roots
        && p.as_os_str() != "system"
    {
        *p = base.join(&*p);
    }
}

impl crate::SourceConfig for PostgresSourceConfig {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn location(&self) -> &Path {
        Path::new(self.table.as_deref().unwrap_or("query"))
    }

    fn file(&self) -> Option<&Path> {
        None
    }

    fn resolve_paths(&mut self, base: &Path) {
        resolve_roots(&mut self.sslrootcert, base);
    }

    fn connection(&self) -> Option<Box<dyn crate::Connection + '_>> {
        Some(Box::new(PostgresConnection {
            reference: &self.url,
            tls: self.tls(),
        }))
    }

    fn incremental(&self) -> bool {
        self.cursor.is_some()
    }

    fn open(
        &self,
        ctx: &crate::SourceContext<'_>,
    ) -> Result<Box<dyn hushflow_core::Source>, hushflow_core::Error> {
        Ok(Box::new(super::PostgresSource::open(
            self,
            ctx.connection(&self.url)?,
            ctx.base,
            ctx.fields,
            ctx.key,
            ctx.after,
        )?))
    }
}

impl crate::SinkConfig for PostgresSinkConfig {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn location(&self) -> &Path {
        Path::new(&self.table)
    }

    fn file(&self) -> Option<&Path> {
        None
    }

    fn relocate(&mut self, to: &Path) {
        self.table = to.to_string_lossy().into_owned();
    }

    fn resolve_paths(&mut self, base: &Path) {
        resolve_roots(&mut self.sslrootcert, base);
    }

    fn fields(&self) -> Option<&[String]> {
        self.fields.as_deref()
    }

    fn connection(&self) -> Option<Box<dyn crate::Connection + '_>> {
        Some(Box::new(PostgresConnection {
            reference: &self.url,
            tls: self.tls(),
        }))
    }

    fn keeps_rows(&self) -> bool {
        true
    }

    fn merges_runs(&self) -> bool {
        self.mode != PostgresMode::Replace
    }

    fn withdraws_rows(&self) -> bool {
        true
    }

    fn commits_per_batch(&self) -> bool {
        true
    }

    fn open(
        &self,
        ctx: &crate::SinkContext<'_>,
    ) -> Result<Box<dyn hushflow_core::Sink>, hushflow_core::Error> {
        Ok(Box::new(super::PostgresSink::new(
            self,
            ctx.connection(&self.url)?,
            ctx.base,
            ctx.key,
            ctx.column_types.clone(),
        )?))
    }

    fn problems(&self) -> Vec<crate::ConfigProblem> {
        crate::rows::retention_problems(&self.retain, &self.retain_by)
    }

    fn retention(&self) -> Option<(&str, &str)> {
        Some((self.retain.as_deref()?, self.retain_by.as_deref()?))
    }

    fn rows(
        &self,
        ctx: &crate::SinkContext<'_>,
    ) -> Result<Option<Box<dyn crate::SinkRows>>, hushflow_core::Error> {
        Ok(Some(Box::new(super::PostgresRows::new(
            self,
            ctx.connection(&self.url)?,
            ctx.base,
        )?)))
    }
}
