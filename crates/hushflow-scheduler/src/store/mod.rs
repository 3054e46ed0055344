//! The metadata store: pipelines, runs, task instances, tries, workers and pools, in SQLite
//! (embedded, in the state directory) or PostgreSQL (shared by schedulers and workers on many
//! machines). Every change that two processes could race on is one conditional statement or
//! one transaction: a claim locks its task row (`FOR UPDATE SKIP LOCKED`), a completion only
//! lands while the worker still owns the try, a run is created once per `(pipeline, run_id)`.
//!
//! This file holds the store's types and how it opens; its queries live by topic in
//! `pipelines.rs`, `runs.rs`, `tries.rs` and `workers.rs` (and `hushflow serve`'s users, API
//! tokens and sessions in `users.rs`, `api_tokens.rs` and `sessions.rs`), over one query layer for both
//! databases (`db.rs`), with the schema in `migrations.rs` and the roles in `grants.rs`.

mod api_tokens;
mod db;
mod dsr;
pub mod grants;
pub mod migrations;
mod pipelines;
mod runs;
mod sessions;
mod tries;
mod users;
mod workers;

use crate::definitions::{DefinitionRef, DefinitionSigner};
use crate::state::{RunState, TaskState};
pub use api_tokens::ApiTokenRow;
pub use db::Dialect;
use db::{Db, Row};
pub use dsr::{DsrRequest, DsrStep};
use hushflow_spec::dag::{Dag, TaskKind};
use hushflow_spec::schedule::{Interval, Millis};
pub use sessions::SessionRow;
use std::path::{Path, PathBuf};
pub use users::{UserGrantRow, UserRow};

/// What went wrong in the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A statement failed (the database's message).
    #[error("metadata database: {0}")]
    Database(String),
    /// The schema is newer than this build knows.
    #[error(
        "the metadata database is at schema version {found}, this hushflow knows up to {known}; \
         upgrade hushflow"
    )]
    TooNew {
        /// The store's schema version.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// The schema lacks migrations this build needs (`hushflow db migrate`).
    #[error(
        "the metadata database is at schema version {found}, this hushflow needs {needed}; run \
         `hushflow db migrate --metadata …` (as a role that may create tables)"
    )]
    NotMigrated {
        /// The store's schema version.
        found: i64,
        /// The version this build needs.
        needed: i64,
    },
    /// The store could not be opened or connected to.
    #[error("metadata database: {0}")]
    Open(String),
    /// `clear` asked of a run that has not ended.
    #[error("the run has not finished; clear its tasks once it has (or wait for its retries)")]
    NotFinished,
}

/// Where the metadata lives.
pub enum StoreConfig {
    /// An SQLite file (the state directory's `metadata.db`).
    Sqlite(PathBuf),
    /// A resolved postgres:// URL (kept out of `Debug`).
    Postgres(hushflow_secrets::SecretValue),
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreConfig::Sqlite(p) => write!(f, "sqlite {}", p.display()),
            StoreConfig::Postgres(_) => f.write_str("postgres (url hidden)"),
        }
    }
}

impl StoreConfig {
    /// Opens a connection; SQLite migrates itself, PostgreSQL must already be migrated.
    pub fn open(&self, now: Millis) -> Result<Store, StoreError> {
        match self {
            StoreConfig::Sqlite(path) => Store::open_sqlite(path, now),
            StoreConfig::Postgres(url) => {
                let mut store = Store::connect_postgres(url)?;
                let found = migrations::check(&mut store.db)?;
                if found < migrations::latest() {
                    return Err(StoreError::NotMigrated {
                        found,
                        needed: migrations::latest(),
                    });
                }
                Ok(store)
            }
        }
    }

    /// Opens a connection and applies missing migrations (`hushflow db migrate`).
    pub fn migrate(&self, now: Millis) -> Result<(Store, Vec<String>), StoreError> {
        let mut store = match self {
            StoreConfig::Sqlite(path) => Store::open_sqlite(path, now)?,
            StoreConfig::Postgres(url) => Store::connect_postgres(url)?,
        };
        let applied = migrations::migrate(&mut store.db, now)?
            .iter()
            .map(|m| format!("{} {}", m.version, m.name))
            .collect();
        Ok((store, applied))
    }
}

/// The metadata store: one connection to SQLite or PostgreSQL, and every query by topic.
pub struct Store {
    db: Db,
}

const PIPELINE_COLUMNS: &str =
    "name, fingerprint, schedule, timezone, paused, max_active_runs, first_seen_at";

fn pipeline_row(r: &Row) -> PipelineRow {
    PipelineRow {
        name: r.string(0),
        fingerprint: r.string(1),
        schedule: r.text(2),
        timezone: r.text(3),
        paused: r.int0(4) != 0,
        max_active_runs: r.int0(5),
        first_seen_at: r.int0(6),
    }
}

/// A registered pipeline.
#[derive(Debug, Clone)]
pub struct PipelineRow {
    /// The pipeline's name.
    pub name: String,
    /// The fingerprint of its current definition.
    pub fingerprint: String,
    /// Its cron expression or preset; `None` for a manual-only pipeline.
    pub schedule: Option<String>,
    /// The schedule's IANA time zone; `None` for UTC.
    pub timezone: Option<String>,
    /// Paused: no run is created or started.
    pub paused: bool,
    /// Runs that may run at once.
    pub max_active_runs: i64,
    /// When a scheduler first registered it (the default start date).
    pub first_seen_at: Millis,
}

/// A run as stored.
#[derive(Debug, Clone)]
pub struct RunRow {
    /// The run's number, unique in the store.
    pub id: i64,
    /// The pipeline it belongs to.
    pub pipeline: String,
    /// Its id within the pipeline (`scheduled__…`, `manual__…`, `backfill__…`).
    pub run_id: String,
    /// `scheduled`, `manual` or `backfill`.
    pub run_type: String,
    /// The definition it was created from.
    pub fingerprint: String,
    /// The logical date (its interval's start, for scheduled runs).
    pub logical_date: Millis,
    /// Its data interval.
    pub interval: Interval,
    /// Where it stands.
    pub state: RunState,
    /// Its run configuration, as JSON.
    pub conf: String,
    /// When it was created.
    pub created_at: Millis,
    /// When it started, once it has.
    pub started_at: Option<Millis>,
    /// When it ended, once it has.
    pub ended_at: Option<Millis>,
}

/// A task of a run as stored.
#[derive(Debug, Clone)]
pub struct TaskRow {
    /// The task instance's number, unique in the store.
    pub id: i64,
    /// The run's number.
    pub run: i64,
    /// The task's name.
    pub task: String,
    /// Its kind (`sync`, `sql`, `gc`, `empty`).
    pub kind: String,
    /// The tasks it depends on.
    pub upstream: Vec<String>,
    /// Its trigger rule's name.
    pub trigger_rule: String,
    /// Its pool, if any.
    pub pool: Option<String>,
    /// Retries allowed after the first failing try.
    pub retries: i64,
    /// Where it stands.
    pub state: TaskState,
    /// Tries started so far.
    pub tries: i64,
    /// Tries that failed (lost tries do not count).
    pub failures: i64,
    /// The worker of its current or last try.
    pub worker: Option<String>,
    /// When an `up_for_retry` task is queued again.
    pub next_try_at: Option<Millis>,
    /// When its first try started.
    pub started_at: Option<Millis>,
    /// When it ended, once it has.
    pub ended_at: Option<Millis>,
    /// Records its last try read, when it reported them.
    pub records_read: Option<i64>,
    /// Records its last try wrote.
    pub records_written: Option<i64>,
    /// Records its last try quarantined.
    pub records_quarantined: Option<i64>,
    /// Why its last try failed; never a record value.
    pub error: Option<String>,
}

/// One try of a task as stored.
#[derive(Debug, Clone)]
pub struct TryRow {
    /// The try's number, from 1.
    pub attempt: i64,
    /// The worker that ran it.
    pub worker: String,
    /// How it ended (`success`, `failed`, `lost`), or `running`.
    pub state: String,
    /// When it started.
    pub started_at: Millis,
    /// When it ended, once it has.
    pub ended_at: Option<Millis>,
    /// Why it failed; never a record value.
    pub error: Option<String>,
    /// Its redacted output (the tail, when long).
    pub log: Option<String>,
}

/// A new run to create.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Its id within the pipeline.
    pub run_id: String,
    /// `scheduled`, `manual` or `backfill`.
    pub run_type: String,
    /// The logical date.
    pub logical_date: Millis,
    /// The data interval.
    pub interval: Interval,
    /// The run configuration, as JSON.
    pub conf: String,
}

/// A task a worker has claimed: what to execute and the try it owns.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The task instance's number.
    pub task_id: i64,
    /// The run's number (`hf_runs.id`).
    pub run: i64,
    /// The try's number, from 1.
    pub attempt: i64,
    /// The worker that claimed it.
    pub worker: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// The task's name.
    pub task: String,
    /// The task's kind.
    pub kind: String,
    /// The run's id within the pipeline.
    pub run_id: String,
    /// The run's type.
    pub run_type: String,
    /// The run's logical date.
    pub logical_date: Millis,
    /// The run's data interval.
    pub interval: Interval,
    /// The run configuration, as JSON.
    pub conf: String,
    /// The pipeline file the definition was read from.
    pub file: PathBuf,
    /// The definition's text, as registered.
    pub text: String,
    /// The fingerprint the run was created from (the text must hash to it).
    pub fingerprint: String,
    /// The definition's signature as stored (base64), if it was registered signed.
    pub signature: Option<String>,
    /// The try's timeout in milliseconds, if the task has one.
    pub timeout_ms: Option<i64>,
    retries: i64,
    failures: i64,
    retry_delay_ms: i64,
    retry_exponential: bool,
    max_retry_delay_ms: i64,
}

/// Tasks of stopped workers: queued again, or failed after too many lost tries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Lost {
    /// Tasks queued again.
    pub requeued: Vec<i64>,
    /// Tasks failed for good.
    pub failed: Vec<i64>,
}

/// A task that failed for good, for notifications.
#[derive(Debug, Clone)]
pub struct FailedTask {
    /// The pipeline's name.
    pub pipeline: String,
    /// The task's name.
    pub task: String,
    /// The number of its last try.
    pub attempt: i64,
    /// Why it failed; never a record value.
    pub error: Option<String>,
    /// The run's id within the pipeline.
    pub run_id: String,
    /// The run's logical date.
    pub logical_date: Millis,
    /// The pipeline file the definition was read from.
    pub file: PathBuf,
    /// The definition's text, as registered.
    pub text: String,
    /// The fingerprint the run was created from.
    pub fingerprint: String,
    /// The definition's signature as stored (base64), if signed.
    pub signature: Option<String>,
}

impl FailedTask {
    /// Its definition, to be checked before its text is read (for the webhook).
    pub fn definition(&self) -> DefinitionRef<'_> {
        DefinitionRef {
            pipeline: &self.pipeline,
            file: &self.file,
            text: &self.text,
            fingerprint: &self.fingerprint,
            signature: self.signature.as_deref(),
        }
    }
}

impl Claim {
    /// The claim as a failed task, with the try's error.
    pub fn failed(&self, error: Option<String>) -> FailedTask {
        FailedTask {
            pipeline: self.pipeline.clone(),
            task: self.task.clone(),
            attempt: self.attempt,
            error,
            run_id: self.run_id.clone(),
            logical_date: self.logical_date,
            file: self.file.clone(),
            text: self.text.clone(),
            fingerprint: self.fingerprint.clone(),
            signature: self.signature.clone(),
        }
    }

    /// The definition the try would execute, to be checked before it runs.
    pub fn definition(&self) -> DefinitionRef<'_> {
        DefinitionRef {
            pipeline: &self.pipeline,
            file: &self.file,
            text: &self.text,
            fingerprint: &self.fingerprint,
            signature: self.signature.as_deref(),
        }
    }
}

/// A definition as the store holds it.
#[derive(Debug, Clone)]
pub struct StoredDefinition {
    /// The pipeline's name.
    pub pipeline: String,
    /// The pipeline file it was read from.
    pub file: PathBuf,
    /// Its text, as registered.
    pub text: String,
    /// The SHA-256 of its text it was registered with.
    pub fingerprint: String,
    /// Its signature (base64), if it was registered signed.
    pub signature: Option<String>,
}

impl StoredDefinition {
    /// The definition, to be checked before its text is used.
    pub fn as_ref(&self) -> DefinitionRef<'_> {
        DefinitionRef {
            pipeline: &self.pipeline,
            file: &self.file,
            text: &self.text,
            fingerprint: &self.fingerprint,
            signature: self.signature.as_deref(),
        }
    }
}

/// Why a queued run has not started: what holds its pipeline's `max_active_runs` slots, or
/// comes before it.
#[derive(Debug, Clone)]
pub struct Waiting {
    /// The run's pipeline.
    pub pipeline: String,
    /// The pipeline is paused.
    pub paused: bool,
    /// Runs of the pipeline that may run at once.
    pub max_active_runs: i64,
    /// Runs of the pipeline running now, then queued runs that start before this one.
    pub ahead: Vec<RunRow>,
}

/// How a try ended, as the worker reports it.
#[derive(Debug, Clone, Default)]
pub struct TryOutcome {
    /// The try succeeded.
    pub success: bool,
    /// Why it failed; never a record value.
    pub error: Option<String>,
    /// The try's redacted output.
    pub log: String,
    /// Records read, when the task counts them.
    pub records_read: Option<i64>,
    /// Records written.
    pub records_written: Option<i64>,
    /// Records quarantined.
    pub records_quarantined: Option<i64>,
}

/// What a completion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completed {
    /// The task is now in this state.
    Now(TaskState),
    /// The worker no longer owned the try (it was declared lost and handed to another worker);
    /// nothing was changed but the try's own log.
    NotOwner,
}

/// Tries lost to dead workers before a task counts as failed (a task that kills every worker
/// it runs on must not loop forever).
pub const MAX_LOST_TRIES: i64 = 3;

/// Caps a stored log (the tail is kept): a task that prints without end cannot fill the store.
pub const MAX_LOG_BYTES: usize = 256 * 1024;

const TASK_COLUMNS: &str = "id, run, task, kind, upstream, trigger_rule, pool, retries, state, \
     tries, failures, worker, next_try_at, started_at, ended_at, records_read, records_written, \
     records_quarantined, error";

fn task_row(r: &Row) -> TaskRow {
    TaskRow {
        id: r.int0(0),
        run: r.int0(1),
        task: r.string(2),
        kind: r.string(3),
        upstream: r
            .string(4)
            .split('\n')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        trigger_rule: r.string(5),
        pool: r.text(6),
        retries: r.int0(7),
        state: TaskState::parse(&r.string(8)),
        tries: r.int0(9),
        failures: r.int0(10),
        worker: r.text(11),
        next_try_at: r.int(12),
        started_at: r.int(13),
        ended_at: r.int(14),
        records_read: r.int(15),
        records_written: r.int(16),
        records_quarantined: r.int(17),
        error: r.text(18),
    }
}

const RUN_COLUMNS: &str = "id, pipeline, run_id, run_type, fingerprint, logical_date, \
     interval_start, interval_end, state, conf, created_at, started_at, ended_at";

fn run_row(r: &Row) -> RunRow {
    RunRow {
        id: r.int0(0),
        pipeline: r.string(1),
        run_id: r.string(2),
        run_type: r.string(3),
        fingerprint: r.string(4),
        logical_date: r.int0(5),
        interval: Interval {
            start: r.int0(6),
            end: r.int0(7),
        },
        state: RunState::parse(&r.string(8)),
        conf: r.string(9),
        created_at: r.int0(10),
        started_at: r.int(11),
        ended_at: r.int(12),
    }
}

fn tail(log: &str) -> &str {
    if log.len() <= MAX_LOG_BYTES {
        return log;
    }
    let mut start = log.len() - MAX_LOG_BYTES;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    &log[start..]
}

impl Store {
    fn open_sqlite(path: &Path, now: Millis) -> Result<Store, StoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::Open(format!("{}: {e}", parent.display())))?;
        }
        // Created owner-only before SQLite opens it: run history is nobody else's business.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
        let conn = rusqlite::Connection::open(path)
            .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| StoreError::Database(e.to_string()))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| StoreError::Database(e.to_string()))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| StoreError::Database(e.to_string()))?;
        let mut store = Store {
            db: Db::Sqlite(conn),
        };
        if migrations::check(&mut store.db)? < migrations::latest() {
            migrations::migrate(&mut store.db, now)?;
        }
        Ok(store)
    }

    fn connect_postgres(url: &hushflow_secrets::SecretValue) -> Result<Store, StoreError> {
        use hushflow_connectors::postgres::{Tls, connect};
        let url = url
            .expose_str()
            .map_err(|_| StoreError::Open("the metadata URL is not UTF-8".into()))?;
        let target = connect::target(url, &Tls::default(), Path::new("."))
            .map_err(|e| StoreError::Open(e.to_string()))?;
        let client = connect::connect(&target).map_err(|e| StoreError::Open(e.to_string()))?;
        Ok(Store {
            db: Db::Postgres(Box::new(client)),
        })
    }

    /// Which database the store is.
    pub fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    /// The schema version the store is at.
    pub fn schema_version(&mut self) -> Result<i64, StoreError> {
        migrations::current(&mut self.db)
    }
}

/// Whether a task kind runs in the worker's own process (nothing to isolate) or in a child.
pub fn runs_in_process(kind: &str) -> bool {
    kind == TaskKind::Empty.as_str()
}
