//! What every connector's configuration answers, so that validation, `hushflow check` and the
//! runner work with any connector without naming one: [`SourceConfig`] for a `[source]` table,
//! [`SinkConfig`] for a `[sink]` table. `registry.rs` lists the connectors; nothing else does.

use hushflow_core::{Error, Position, Sink, Source, SourceBatch};
use hushflow_secrets::{Redactor, SecretValue};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::path::Path;

/// The connection secrets a pipeline names (`url = "env:CRM_DB"`, `token = "env:HUBSPOT"`),
/// resolved before the run, by reference, and the redactor they were registered with: a
/// connector that obtains more secrets while it runs (an OAuth access token, a rotated refresh
/// token) registers them there, so they are masked in every log line like the resolved ones.
#[derive(Debug, Default)]
pub struct Connections {
    values: BTreeMap<String, SecretValue>,
    redactor: Redactor,
}

impl Connections {
    /// No connections, and a redactor of their own (tests; a run uses [`Self::with_redactor`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// No connections yet; secrets found later are registered with `redactor`, the one the
    /// process's log writer masks with.
    pub fn with_redactor(redactor: Redactor) -> Self {
        Connections {
            values: BTreeMap::new(),
            redactor,
        }
    }

    /// The redactor that masks these secrets, for secrets a connector obtains while it runs.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }
}

impl std::ops::Deref for Connections {
    type Target = BTreeMap<String, SecretValue>;
    fn deref(&self) -> &Self::Target {
        &self.values
    }
}

impl std::ops::DerefMut for Connections {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.values
    }
}

/// A configuration problem found before anything is opened: the key of the `[source]` or
/// `[sink]` table concerned (`table`, `url`) and what is wrong, never a secret's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The key in the connector's own table (`table`, not `sink.table`).
    pub key: &'static str,
    /// What is wrong, in words that name no secret.
    pub message: String,
}

/// What a source needs to open besides its own table.
pub struct SourceContext<'a> {
    /// The directory of the pipeline file; relative paths were resolved against it already,
    /// but a connection's CA file named in its URL is relative to it too.
    pub base: &'a Path,
    /// The fields the policy reads, in policy order: a source reads no other.
    pub fields: &'a [String],
    /// The record key's source field: an incremental source breaks ties of its cursor with it.
    pub key: &'a str,
    /// An incremental source continues after this position (committed with the data).
    pub after: Option<&'a Position>,
    /// Resolved connection secrets, by reference.
    pub connections: &'a Connections,
}

/// What a sink needs to open besides its own table.
pub struct SinkContext<'a> {
    /// The directory of the pipeline file (see [`SourceContext::base`]).
    pub base: &'a Path,
    /// The pipeline's record key: upserts and withdrawals match rows on it.
    pub key: &'a str,
    /// SQL types of output columns that are not text (a generalized year is an integer).
    pub column_types: HashMap<String, String>,
    /// Resolved connection secrets, by reference.
    pub connections: &'a Connections,
}

impl SourceContext<'_> {
    /// The resolved value of a connection reference.
    pub fn connection(&self, reference: &str) -> Result<&str, Error> {
        resolved(self.connections, reference)
    }
}

impl SinkContext<'_> {
    /// The resolved value of a connection reference.
    pub fn connection(&self, reference: &str) -> Result<&str, Error> {
        resolved(self.connections, reference)
    }
}

fn resolved<'c>(connections: &'c Connections, reference: &str) -> Result<&'c str, Error> {
    connections
        .get(reference)
        .and_then(|v| v.expose_str().ok())
        .ok_or_else(|| Error::Config(format!("the connection {reference} was not resolved")))
}

/// A connection the pipeline names by secret reference, with how to check its resolved value.
pub trait Connection: Debug {
    /// The secret reference of the connection URL (or a service's token).
    fn reference(&self) -> &str;

    /// The key of the connector's table that holds [`Connection::reference`] (`url`, `token`),
    /// for messages.
    fn key(&self) -> &'static str {
        "url"
    }

    /// What [`Connection::reference`]'s value is, for messages ("the postgres:// URL").
    fn holds(&self) -> &'static str {
        "the postgres:// URL"
    }

    /// Further secrets the connection needs besides the main one (an OAuth client secret and
    /// refresh token), as `(key, reference)`: they are resolved, registered with the redactor
    /// and handed over in [`Connections`] like it, but not checked by [`Connection::check_url`].
    fn more_references(&self) -> Vec<(&'static str, &str)> {
        Vec::new()
    }

    /// Checks a resolved URL (its scheme, host, TLS settings) without connecting, and returns
    /// what `validate` should warn about. Errors never contain the URL.
    fn check_url(&self, url: &str, base: &Path) -> Result<Vec<String>, String>;
}

/// Decodes records a source could not read when the run saw them (quarantined as the source's
/// bytes), for a replay of the quarantine.
pub trait RawDecoder {
    /// Decodes `(line, bytes)` records into rows of the source's fields, or rejects them again.
    fn decode(&self, records: &[(u64, &[u8])]) -> Result<SourceBatch, Error>;
}

/// A `[source]` table: what validation, `check` and the runner need of any source.
pub trait SourceConfig: Debug + Send + Sync {
    /// The `type` word (`csv`, `postgres`).
    fn kind(&self) -> &'static str;

    /// The file read, or for a database the table (or `query`), for messages.
    fn location(&self) -> &Path;

    /// The local file this source reads (a CSV file, a SQLite database), `None` for a service.
    /// Validation refuses one inside the state directory before reading anything of it.
    fn file(&self) -> Option<&Path>;

    /// Makes paths relative to the pipeline file absolute, so a pipeline runs the same from any
    /// working directory.
    fn resolve_paths(&mut self, base: &Path);

    /// Problems a look at the table alone finds.
    fn problems(&self) -> Vec<ConfigProblem> {
        Vec::new()
    }

    /// The connection this source opens, when it is a database or a service.
    fn connection(&self) -> Option<Box<dyn Connection + '_>> {
        None
    }

    /// Whether the source reads only what changed since the last committed position.
    fn incremental(&self) -> bool {
        false
    }

    /// The source's field names, when they can be read without reading a record (a CSV
    /// header): validation checks the policy against them. `Ok(None)` when unknown until
    /// opened (a file that does not exist yet). An error when the names cannot be right: a
    /// header that looks like a record ([`name_looks_like_data`](crate::name_looks_like_data));
    /// the names returned all pass that check.
    fn peek_fields(&self) -> Result<Option<Vec<String>>, Error> {
        Ok(None)
    }

    /// Opens the source for reading the fields `ctx` names.
    fn open(&self, ctx: &SourceContext<'_>) -> Result<Box<dyn Source>, Error>;

    /// A decoder for quarantined raw records of this source, when they need the source's own
    /// format (a CSV row needs the file's header). `None`: quarantined records are JSON.
    fn raw_decoder(&self, _fields: &[String]) -> Result<Option<Box<dyn RawDecoder>>, Error> {
        Ok(None)
    }
}

/// A `[sink]` table: what validation, `check` and the runner need of any sink.
pub trait SinkConfig: Debug + Send + Sync {
    /// The `type` word (`csv`, `postgres`).
    fn kind(&self) -> &'static str;

    /// The file written, or for a database the table, for messages.
    fn location(&self) -> &Path;

    /// The local file this sink writes (a CSV file, a SQLite database), `None` for a service.
    /// Validation refuses one inside the state directory, and one that exists but is not a
    /// regular file ([`check_target`](crate::check_target)); the sink checks that again when
    /// it opens.
    fn file(&self) -> Option<&Path>;

    /// Points the sink somewhere else (a replay writes beside the pipeline's output).
    fn relocate(&mut self, to: &Path);

    /// Makes paths relative to the pipeline file absolute.
    fn resolve_paths(&mut self, base: &Path);

    /// The fields the sink writes, when the pipeline lists them.
    fn fields(&self) -> Option<&[String]> {
        None
    }

    /// Problems a look at the table alone finds (an empty table name).
    fn problems(&self) -> Vec<ConfigProblem> {
        Vec::new()
    }

    /// The connection this sink opens, when it is a database or a service.
    fn connection(&self) -> Option<Box<dyn Connection + '_>> {
        None
    }

    /// Whether the sink keeps rows by key across runs (a table, a CRM), so that a later run can
    /// delete or update them; a file sink is written anew each run.
    fn keeps_rows(&self) -> bool {
        false
    }

    /// Whether the rows of several runs add up in the destination (a table appended or upserted
    /// to, a CRM) rather than each run replacing the last's output (a file, a `replace` table).
    /// Partitioned runs (`--partition`) need it: each partition writes its share beside the
    /// others'. By default, what [`SinkConfig::keeps_rows`] says.
    fn merges_runs(&self) -> bool {
        self.keeps_rows()
    }

    /// Whether a sink that [keeps rows](SinkConfig::keeps_rows) can delete or null those of
    /// records withdrawn since (consent lost, newly suppressed): `on_withdrawal`'s `delete` and
    /// `tombstone`, done by its [`Sink`](hushflow_core::Sink)'s `withdraw`. No by default, so a
    /// new sink that keeps rows is refused by `validate` with a consent or suppression filter
    /// (unless `on_withdrawal = "keep"`) until it implements withdrawals and says so here.
    fn withdraws_rows(&self) -> bool {
        false
    }

    /// Whether each batch is committed as it is written (a database transaction), so that a
    /// staged run can resume after the batches committed.
    fn commits_per_batch(&self) -> bool {
        false
    }

    /// Extra words for `validate`'s plan (`table `contacts` (upsert on `id`)`).
    fn describe(&self, _key: &str) -> Option<String> {
        None
    }

    /// Opens the sink. Creates nothing until [`Sink::open`] is called on it.
    fn open(&self, ctx: &SinkContext<'_>) -> Result<Box<dyn Sink>, Error>;

    /// How long rows are kept, and the timestamp field they are aged by (`retain = "400d"`,
    /// `retain_by = "updated_at"`), for `hushflow retention enforce`.
    fn retention(&self) -> Option<(&str, &str)> {
        None
    }

    /// The rows already written, by value, for data subject requests: found, and deleted where
    /// the destination allows ([`SinkRows`](crate::SinkRows)). `None`: this sink cannot look
    /// rows up yet (a service whose API is not wired), which a request reports as not reached.
    fn rows(&self, _ctx: &SinkContext<'_>) -> Result<Option<Box<dyn crate::SinkRows>>, Error> {
        Ok(None)
    }
}
