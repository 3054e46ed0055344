//! The metadata store: pipelines, runs, task instances, tries, workers and pools, in SQLite
//! (embedded, in the state directory) or PostgreSQL (shared by schedulers and workers on many
//! machines). Every change that two processes could race on is one conditional statement or
//! one transaction: a claim locks its task row (`FOR UPDATE SKIP LOCKED`), a completion only
//! lands while the worker still owns the try, a run is created once per `(pipeline, run_id)`.

mod db;
pub mod grants;
pub mod migrations;

use crate::definitions::{DefinitionRef, DefinitionSigner};
use crate::state::{RunState, TaskState};
pub use db::Dialect;
use db::{Db, Row};
use hushflow_spec::dag::{Dag, TaskKind};
use hushflow_spec::schedule::{Interval, Millis};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata database: {0}")]
    Database(String),
    #[error(
        "the metadata database is at schema version {found}, this hushflow knows up to {known}; \
         upgrade hushflow"
    )]
    TooNew { found: i64, known: i64 },
    #[error(
        "the metadata database is at schema version {found}, this hushflow needs {needed}; run \
         `hushflow db migrate --metadata …` (as a role that may create tables)"
    )]
    NotMigrated { found: i64, needed: i64 },
    #[error("metadata database: {0}")]
    Open(String),
    #[error("the run has not finished; clear its tasks once it has (or wait for its retries)")]
    NotFinished,
}

/// Where the metadata lives.
pub enum StoreConfig {
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
    pub name: String,
    pub fingerprint: String,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub paused: bool,
    pub max_active_runs: i64,
    pub first_seen_at: Millis,
}

#[derive(Debug, Clone)]
pub struct RunRow {
    pub id: i64,
    pub pipeline: String,
    pub run_id: String,
    pub run_type: String,
    pub fingerprint: String,
    pub logical_date: Millis,
    pub interval: Interval,
    pub state: RunState,
    pub conf: String,
    pub created_at: Millis,
    pub started_at: Option<Millis>,
    pub ended_at: Option<Millis>,
}

#[derive(Debug, Clone)]
pub struct TaskRow {
    pub id: i64,
    pub run: i64,
    pub task: String,
    pub kind: String,
    pub upstream: Vec<String>,
    pub trigger_rule: String,
    pub pool: Option<String>,
    pub retries: i64,
    pub state: TaskState,
    pub tries: i64,
    pub failures: i64,
    pub worker: Option<String>,
    pub next_try_at: Option<Millis>,
    pub started_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    pub records_read: Option<i64>,
    pub records_written: Option<i64>,
    pub records_quarantined: Option<i64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TryRow {
    pub attempt: i64,
    pub worker: String,
    pub state: String,
    pub started_at: Millis,
    pub ended_at: Option<Millis>,
    pub error: Option<String>,
    pub log: Option<String>,
}

/// A new run to create.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub run_id: String,
    pub run_type: String,
    pub logical_date: Millis,
    pub interval: Interval,
    pub conf: String,
}

/// A task a worker has claimed: what to execute and the try it owns.
#[derive(Debug, Clone)]
pub struct Claim {
    pub task_id: i64,
    /// The run's number (`hf_runs.id`).
    pub run: i64,
    pub attempt: i64,
    pub worker: String,
    pub pipeline: String,
    pub task: String,
    pub kind: String,
    pub run_id: String,
    pub run_type: String,
    pub logical_date: Millis,
    pub interval: Interval,
    pub conf: String,
    pub file: PathBuf,
    pub text: String,
    /// The fingerprint the run was created from (the text must hash to it).
    pub fingerprint: String,
    /// The definition's signature as stored (base64), if it was registered signed.
    pub signature: Option<String>,
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
    pub requeued: Vec<i64>,
    pub failed: Vec<i64>,
}

/// A task that failed for good, for notifications.
#[derive(Debug, Clone)]
pub struct FailedTask {
    pub pipeline: String,
    pub task: String,
    pub attempt: i64,
    pub error: Option<String>,
    pub run_id: String,
    pub logical_date: Millis,
    pub file: PathBuf,
    pub text: String,
    pub fingerprint: String,
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
    pub pipeline: String,
    pub file: PathBuf,
    pub text: String,
    pub fingerprint: String,
    pub signature: Option<String>,
}

impl StoredDefinition {
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
    pub pipeline: String,
    pub paused: bool,
    pub max_active_runs: i64,
    /// Runs of the pipeline running now, then queued runs that start before this one.
    pub ahead: Vec<RunRow>,
}

/// How a try ended, as the worker reports it.
#[derive(Debug, Clone, Default)]
pub struct TryOutcome {
    pub success: bool,
    /// Why it failed; never a record value.
    pub error: Option<String>,
    /// The try's redacted output.
    pub log: String,
    pub records_read: Option<i64>,
    pub records_written: Option<i64>,
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

    pub fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    pub fn schema_version(&mut self) -> Result<i64, StoreError> {
        migrations::current(&mut self.db)
    }

    /// Records a pipeline's current definition, signed by `signer` (workers given its public
    /// key run only definitions it signed), and its pools; keeps whether it is paused. Pools are
    /// shared by name across pipelines (one CRM, one limit): returns a warning for each pool
    /// another pipeline declared with a different size, which this one now replaces. A
    /// definition registered before is written again (its file, text and signature), so
    /// registering the file heals a definition changed in the store.
    pub fn register(
        &mut self,
        dag: &Dag,
        signer: Option<&DefinitionSigner>,
        now: Millis,
    ) -> Result<Vec<String>, StoreError> {
        let file = dag.file.to_string_lossy().into_owned();
        let schedule = dag.schedule.as_ref().map(|s| s.expression().to_string());
        let timezone = dag.schedule.as_ref().map(|s| s.timezone().to_string());
        let signature = signer.map(|s| s.sign(&dag.fingerprint, &dag.name, &dag.file));
        self.db.transaction(|db| {
            db.exec(
                "INSERT INTO hf_definitions (fingerprint, pipeline, file, text, created_at, \
                 signature) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (fingerprint) DO UPDATE \
                 SET pipeline = excluded.pipeline, file = excluded.file, text = excluded.text, \
                 signature = excluded.signature",
                &[
                    dag.fingerprint.as_str().into(),
                    dag.name.as_str().into(),
                    file.as_str().into(),
                    dag.text.as_str().into(),
                    now.into(),
                    signature.clone().into(),
                ],
            )?;
            db.exec(
                "INSERT INTO hf_pipelines (name, fingerprint, schedule, timezone, paused, \
                 max_active_runs, first_seen_at, updated_at) VALUES ($1, $2, $3, $4, 0, $5, $6, $6) \
                 ON CONFLICT (name) DO UPDATE SET fingerprint = excluded.fingerprint, \
                 schedule = excluded.schedule, timezone = excluded.timezone, \
                 max_active_runs = excluded.max_active_runs, updated_at = excluded.updated_at",
                &[
                    dag.name.as_str().into(),
                    dag.fingerprint.as_str().into(),
                    schedule.clone().into(),
                    timezone.clone().into(),
                    i64::from(dag.max_active_runs).into(),
                    now.into(),
                ],
            )?;
            let mut warnings = Vec::new();
            for (pool, slots) in &dag.pools {
                let before = db.query("SELECT slots FROM hf_pools WHERE name = $1", &[pool.as_str().into()])?;
                if let Some(old) = before.first().map(|r| r.int0(0))
                    && old != i64::from(*slots)
                {
                    warnings.push(format!(
                        "pool {pool} had {old} slot(s) and {} now sets {slots}; pools are shared by \
                         name across pipelines, so give it the same size everywhere",
                        dag.name
                    ));
                }
                db.exec(
                    "INSERT INTO hf_pools (name, slots) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET slots = excluded.slots",
                    &[pool.as_str().into(), i64::from(*slots).into()],
                )?;
            }
            Ok(warnings)
        })
    }

    /// A registered pipeline by name (the scheduler asks once per pipeline per tick).
    pub fn pipeline(&mut self, name: &str) -> Result<Option<PipelineRow>, StoreError> {
        let rows = self.db.query(
            &format!("SELECT {PIPELINE_COLUMNS} FROM hf_pipelines WHERE name = $1"),
            &[name.into()],
        )?;
        Ok(rows.first().map(pipeline_row))
    }

    /// Every registered pipeline, by name, with the state of its newest run (by creation).
    pub fn pipelines(&mut self) -> Result<Vec<(PipelineRow, Option<String>)>, StoreError> {
        let rows = self.db.query(
            &format!(
                "SELECT {PIPELINE_COLUMNS}, (SELECT r.state FROM hf_runs r WHERE r.pipeline = \
                 hf_pipelines.name ORDER BY r.id DESC LIMIT 1) FROM hf_pipelines ORDER BY name"
            ),
            &[],
        )?;
        Ok(rows.iter().map(|r| (pipeline_row(r), r.text(7))).collect())
    }

    /// A registered definition (check it with a `DefinitionTrust` before using its text).
    pub fn definition(
        &mut self,
        fingerprint: &str,
    ) -> Result<Option<StoredDefinition>, StoreError> {
        let rows = self.db.query(
            "SELECT pipeline, file, text, signature FROM hf_definitions WHERE fingerprint = $1",
            &[fingerprint.into()],
        )?;
        Ok(rows.first().map(|r| StoredDefinition {
            pipeline: r.string(0),
            file: PathBuf::from(r.string(1)),
            text: r.string(2),
            fingerprint: fingerprint.to_string(),
            signature: r.text(3),
        }))
    }

    /// What a queued run waits for: its pipeline paused, or runs holding the pipeline's
    /// `max_active_runs` slots (then the queued runs that start before it).
    pub fn waiting(&mut self, run: &RunRow) -> Result<Waiting, StoreError> {
        let pipeline = self.pipeline(&run.pipeline)?;
        let rows = self.db.query(
            &format!(
                "SELECT {RUN_COLUMNS} FROM hf_runs WHERE pipeline = $1 AND id <> $2 AND \
                 (state = 'running' OR (state = 'queued' AND (logical_date < $3 OR \
                 (logical_date = $3 AND id < $2)))) \
                 ORDER BY CASE WHEN state = 'running' THEN 0 ELSE 1 END, logical_date, id LIMIT 10"
            ),
            &[
                run.pipeline.as_str().into(),
                run.id.into(),
                run.logical_date.into(),
            ],
        )?;
        Ok(Waiting {
            pipeline: run.pipeline.clone(),
            paused: pipeline.as_ref().is_some_and(|p| p.paused),
            max_active_runs: pipeline.map_or(1, |p| p.max_active_runs),
            ahead: rows.iter().map(run_row).collect(),
        })
    }

    /// Workers other than `except` that heartbeated since `since` and have not stopped.
    pub fn live_workers(&mut self, since: Millis, except: &str) -> Result<i64, StoreError> {
        let rows = self.db.query(
            "SELECT COUNT(*) FROM hf_workers WHERE stopped_at IS NULL AND heartbeat_at >= $1 \
             AND id <> $2",
            &[since.into(), except.into()],
        )?;
        Ok(rows.first().map_or(0, |r| r.int0(0)))
    }

    /// Pauses or unpauses; `false` when no pipeline has that name.
    pub fn set_paused(&mut self, name: &str, paused: bool) -> Result<bool, StoreError> {
        let n = self.db.exec(
            "UPDATE hf_pipelines SET paused = $2 WHERE name = $1",
            &[name.into(), i64::from(paused).into()],
        )?;
        Ok(n == 1)
    }

    /// The end of the newest scheduled interval: scheduling continues from there.
    pub fn last_scheduled_end(&mut self, pipeline: &str) -> Result<Option<Millis>, StoreError> {
        let rows = self.db.query(
            "SELECT MAX(interval_end) FROM hf_runs WHERE pipeline = $1 AND run_type = 'scheduled'",
            &[pipeline.into()],
        )?;
        Ok(rows.first().and_then(|r| r.int(0)))
    }

    /// How many scheduled or backfill runs cover intervals starting at or after `from`.
    pub fn runs_from(&mut self, pipeline: &str, from: Millis) -> Result<i64, StoreError> {
        let rows = self.db.query(
            "SELECT COUNT(*) FROM hf_runs WHERE pipeline = $1 AND run_type <> 'manual' \
             AND interval_start >= $2",
            &[pipeline.into(), from.into()],
        )?;
        Ok(rows.first().map_or(0, |r| r.int0(0)))
    }

    /// Creates a run and its task instances in one transaction, unless a run with that id, or
    /// a scheduled or backfill run of the same interval, exists (another scheduler made it):
    /// `None` then.
    pub fn create_run(
        &mut self,
        dag: &Dag,
        run: &NewRun,
        now: Millis,
    ) -> Result<Option<i64>, StoreError> {
        self.db.transaction(|db| {
            let rows = db.query(
                "INSERT INTO hf_runs (pipeline, run_id, run_type, fingerprint, logical_date, \
                 interval_start, interval_end, state, conf, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9) \
                 ON CONFLICT DO NOTHING RETURNING id",
                &[
                    dag.name.as_str().into(),
                    run.run_id.as_str().into(),
                    run.run_type.as_str().into(),
                    dag.fingerprint.as_str().into(),
                    run.logical_date.into(),
                    run.interval.start.into(),
                    run.interval.end.into(),
                    run.conf.as_str().into(),
                    now.into(),
                ],
            )?;
            let Some(id) = rows.first().and_then(|r| r.int(0)) else {
                return Ok(None);
            };
            for (position, t) in dag.tasks.iter().enumerate() {
                let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                db.exec(
                    "INSERT INTO hf_tasks (run, pipeline, task, position, kind, upstream, \
                     trigger_rule, pool, retries, retry_delay_ms, retry_exponential, \
                     max_retry_delay_ms, timeout_ms, state) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'none')",
                    &[
                        id.into(),
                        dag.name.as_str().into(),
                        t.name.as_str().into(),
                        (position as i64).into(),
                        t.kind.as_str().into(),
                        t.depends_on.join("\n").into(),
                        t.trigger_rule.as_str().into(),
                        t.pool.clone().into(),
                        i64::from(t.retry.retries).into(),
                        ms(t.retry.delay).into(),
                        i64::from(t.retry.exponential).into(),
                        ms(t.retry.max_delay).into(),
                        t.timeout.map(ms).into(),
                    ],
                )?;
            }
            Ok(Some(id))
        })
    }

    /// Starts queued runs of unpaused pipelines, oldest logical date first, while each
    /// pipeline has fewer than `max_active_runs` running. Returns how many started.
    pub fn start_queued_runs(&mut self, now: Millis) -> Result<usize, StoreError> {
        let pipelines = self.db.query(
            "SELECT DISTINCT r.pipeline FROM hf_runs r JOIN hf_pipelines p ON p.name = r.pipeline \
             WHERE r.state = 'queued' AND p.paused = 0",
            &[],
        )?;
        let mut started = 0;
        for p in pipelines {
            let name = p.string(0);
            started += self.db.transaction(|db| {
                // Serializes schedulers deciding for the same pipeline.
                let lock = match db.dialect() {
                    Dialect::Postgres => "SELECT max_active_runs FROM hf_pipelines WHERE name = $1 FOR UPDATE",
                    Dialect::Sqlite => "SELECT max_active_runs FROM hf_pipelines WHERE name = $1",
                };
                let max = db.query(lock, &[name.as_str().into()])?.first().map_or(1, |r| r.int0(0));
                let active = db
                    .query(
                        "SELECT COUNT(*) FROM hf_runs WHERE pipeline = $1 AND state = 'running'",
                        &[name.as_str().into()],
                    )?
                    .first()
                    .map_or(0, |r| r.int0(0));
                let room = (max - active).max(0);
                if room == 0 {
                    return Ok(0);
                }
                let ids = db.query(
                    "SELECT id FROM hf_runs WHERE pipeline = $1 AND state = 'queued' \
                     ORDER BY logical_date, id LIMIT $2",
                    &[name.as_str().into(), room.into()],
                )?;
                for r in &ids {
                    db.exec(
                        "UPDATE hf_runs SET state = 'running', started_at = $2 WHERE id = $1 AND state = 'queued'",
                        &[r.int0(0).into(), now.into()],
                    )?;
                }
                Ok(ids.len())
            })?;
        }
        Ok(started)
    }

    pub fn running_runs(&mut self) -> Result<Vec<i64>, StoreError> {
        let rows = self.db.query(
            "SELECT id FROM hf_runs WHERE state = 'running' ORDER BY id",
            &[],
        )?;
        Ok(rows.iter().map(|r| r.int0(0)).collect())
    }

    pub fn tasks_of(&mut self, run: i64) -> Result<Vec<TaskRow>, StoreError> {
        let rows = self.db.query(
            &format!("SELECT {TASK_COLUMNS} FROM hf_tasks WHERE run = $1 ORDER BY position"),
            &[run.into()],
        )?;
        Ok(rows.iter().map(task_row).collect())
    }

    /// Whether a task of the run waits on `task` (a reason to decide that run's tasks now).
    pub fn has_waiting_downstream(&mut self, run: i64, task: &str) -> Result<bool, StoreError> {
        // Task names are letters, digits, '-' and '_'; '_' is LIKE's wildcard, so escape it.
        let pattern = format!("%\n{}\n%", task.replace('_', "\\_"));
        let rows = self.db.query(
            "SELECT 1 FROM hf_tasks WHERE run = $1 AND state = 'none' \
             AND ('\n' || upstream || '\n') LIKE $2 ESCAPE '\\' LIMIT 1",
            &[run.into(), pattern.into()],
        )?;
        Ok(!rows.is_empty())
    }

    /// How many of a run's tasks have not ended, and how many failed (or could not run).
    pub fn run_progress(&mut self, run: i64) -> Result<(i64, i64), StoreError> {
        let rows = self.db.query(
            "SELECT COALESCE(SUM(CASE WHEN state IN ('success', 'failed', 'upstream_failed', 'skipped') \
             THEN 0 ELSE 1 END), 0), COALESCE(SUM(CASE WHEN state IN ('failed', 'upstream_failed') \
             THEN 1 ELSE 0 END), 0) FROM hf_tasks WHERE run = $1",
            &[run.into()],
        )?;
        Ok(rows.first().map_or((0, 0), |r| (r.int0(0), r.int0(1))))
    }

    /// Moves tasks that wait on their upstreams (`none`) to a decided state, each only if it is
    /// still waiting; returns how many moved.
    pub fn decide_tasks(
        &mut self,
        decisions: &[(i64, TaskState)],
        now: Millis,
    ) -> Result<usize, StoreError> {
        if decisions.is_empty() {
            return Ok(0);
        }
        self.db.transaction(|db| {
            let mut moved = 0;
            for (id, state) in decisions {
                let ended = (!matches!(state, TaskState::Queued)).then_some(now);
                moved += db.exec(
                    "UPDATE hf_tasks SET state = $2, ended_at = $3 WHERE id = $1 AND state = 'none'",
                    &[(*id).into(), state.as_str().into(), ended.into()],
                )? as usize;
            }
            Ok(moved)
        })
    }

    /// Clears ended tasks of a run so they run again (Airflow's "clear"): the named tasks, or
    /// by default the failed ones, each with every task downstream of it. Their failures reset;
    /// past tries stay in the history. A finished run is queued again. Running or queued tasks
    /// are left alone. Returns the names of the tasks cleared.
    pub fn clear_tasks(&mut self, run: i64, tasks: &[String]) -> Result<Vec<String>, StoreError> {
        let all = self.tasks_of(run)?;
        let mut chosen: Vec<String> = if tasks.is_empty() {
            all.iter()
                .filter(|t| matches!(t.state, TaskState::Failed | TaskState::UpstreamFailed))
                .map(|t| t.task.clone())
                .collect()
        } else {
            tasks.to_vec()
        };
        // Downstream closure, in the run's (topological) order.
        for t in &all {
            if !chosen.contains(&t.task) && t.upstream.iter().any(|u| chosen.contains(u)) {
                chosen.push(t.task.clone());
            }
        }
        let cleared: Vec<String> = all
            .iter()
            .filter(|t| chosen.contains(&t.task) && t.state.is_done())
            .map(|t| t.task.clone())
            .collect();
        if cleared.is_empty() {
            return Ok(cleared);
        }
        self.db.transaction(|db| {
            // Only a finished run: in a running one, a task downstream of a cleared task could
            // be running on the old result.
            let reopened = db.exec(
                "UPDATE hf_runs SET state = 'queued', ended_at = NULL WHERE id = $1 \
                 AND state IN ('success', 'failed')",
                &[run.into()],
            )?;
            if reopened == 0 {
                return Err(StoreError::NotFinished);
            }
            for name in &cleared {
                db.exec(
                    "UPDATE hf_tasks SET state = 'none', failures = 0, lost = 0, \
                     next_try_at = NULL, ended_at = NULL, error = NULL, worker = NULL \
                     WHERE run = $1 AND task = $2 \
                     AND state IN ('success', 'failed', 'upstream_failed', 'skipped')",
                    &[run.into(), name.as_str().into()],
                )?;
            }
            Ok(())
        })?;
        Ok(cleared)
    }

    /// Deletes finished runs that ended before `before`, with their tasks and tries (run
    /// history retention). Returns (runs, tasks, tries) deleted.
    pub fn prune(
        &mut self,
        before: Millis,
        pipeline: Option<&str>,
    ) -> Result<(u64, u64, u64), StoreError> {
        // Each pipeline's newest scheduled run stays: scheduling continues from its interval.
        let pick = "SELECT id FROM hf_runs r WHERE state IN ('success', 'failed') AND ended_at < $1 \
             AND ($2 = '' OR pipeline = $2) AND NOT (run_type = 'scheduled' AND interval_end = \
             (SELECT MAX(interval_end) FROM hf_runs n WHERE n.pipeline = r.pipeline \
             AND n.run_type = 'scheduled')) ORDER BY id LIMIT 500";
        let scope = [before.into(), pipeline.unwrap_or("").into()];
        let (mut runs, mut tasks, mut tries) = (0, 0, 0);
        // In batches, so that one prune never holds SQLite's write lock for long.
        loop {
            let ids: Vec<i64> = self
                .db
                .query(pick, &scope)?
                .iter()
                .map(|r| r.int0(0))
                .collect();
            if ids.is_empty() {
                return Ok((runs, tasks, tries));
            }
            let list = ids
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            self.db.transaction(|db| {
                tries += db.exec(
                    &format!(
                        "DELETE FROM hf_tries WHERE task IN (SELECT id FROM hf_tasks WHERE run IN ({list}))"
                    ),
                    &[],
                )?;
                tasks += db.exec(&format!("DELETE FROM hf_tasks WHERE run IN ({list})"), &[])?;
                runs += db.exec(&format!("DELETE FROM hf_runs WHERE id IN ({list})"), &[])?;
                Ok(())
            })?;
        }
    }

    /// Ends a running run, unless a task of it has not ended (a `clear` can race the last
    /// completion).
    pub fn finish_run(
        &mut self,
        run: i64,
        state: RunState,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let n = self.db.exec(
            "UPDATE hf_runs SET state = $2, ended_at = $3 WHERE id = $1 AND state = 'running' \
             AND NOT EXISTS (SELECT 1 FROM hf_tasks WHERE run = $1 \
             AND state NOT IN ('success', 'failed', 'upstream_failed', 'skipped'))",
            &[run.into(), state.as_str().into(), now.into()],
        )?;
        Ok(n == 1)
    }

    /// Claims the oldest task ready to run (queued, or up for retry and due) whose pool has a
    /// free slot, and starts a try for `worker`. Rows other workers are claiming are skipped,
    /// not waited for.
    pub fn claim(
        &mut self,
        worker: &str,
        now: Millis,
        only_runs: Option<&[i64]>,
    ) -> Result<Option<Claim>, StoreError> {
        // Tasks of full pools are left out here, so a long queue in one pool cannot hide the
        // ready tasks behind it; the pools are checked again below under their row locks.
        let runs = match only_runs {
            Some([]) => return Ok(None),
            Some(ids) => format!(
                " AND t.run IN ({})",
                ids.iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => String::new(),
        };
        let lock = match self.db.dialect() {
            Dialect::Postgres => " FOR UPDATE OF t SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let pick = format!(
            "SELECT t.id, t.pool FROM hf_tasks t WHERE (t.state = 'queued' \
             OR (t.state = 'up_for_retry' AND t.next_try_at <= $1)){runs} \
             AND (t.pool IS NULL OR (SELECT COUNT(*) FROM hf_tasks b WHERE b.pool = t.pool \
             AND b.state = 'running') < (SELECT p.slots FROM hf_pools p WHERE p.name = t.pool)) \
             ORDER BY t.id LIMIT 16{lock}"
        );
        // A transaction-scoped advisory lock per pool serializes the workers claiming from it
        // (the count of its running tasks below then holds until the claim commits). Not a row
        // lock: that would need UPDATE on hf_pools, which workers are not granted.
        let pool_lock = match self.db.dialect() {
            Dialect::Postgres => Some("SELECT pg_advisory_xact_lock(26726, hashtext($1))"),
            Dialect::Sqlite => None,
        };
        self.db.transaction(|db| {
            let candidates = db.query(&pick, &[now.into()])?;
            // Lock every pool the candidates use, in name order: two workers locking pools in
            // different orders could deadlock.
            let mut pools: Vec<String> = candidates.iter().filter_map(|c| c.text(1)).collect();
            pools.sort();
            pools.dedup();
            let mut room = std::collections::HashMap::new();
            for pool in &pools {
                if let Some(lock) = pool_lock {
                    db.exec(lock, &[pool.as_str().into()])?;
                }
                let slots = db
                    .query(
                        "SELECT slots FROM hf_pools WHERE name = $1",
                        &[pool.as_str().into()],
                    )?
                    .first()
                    .map_or(1, |r| r.int0(0));
                let busy = db
                    .query(
                        "SELECT COUNT(*) FROM hf_tasks WHERE pool = $1 AND state = 'running'",
                        &[pool.as_str().into()],
                    )?
                    .first()
                    .map_or(0, |r| r.int0(0));
                room.insert(pool.clone(), slots - busy);
            }
            for c in candidates {
                let id = c.int0(0);
                if let Some(pool) = c.text(1)
                    && room.get(&pool).copied().unwrap_or(0) <= 0
                {
                    continue;
                }
                let claimed = db.query(
                    "UPDATE hf_tasks SET state = 'running', worker = $2, tries = tries + 1, \
                     next_try_at = NULL, started_at = COALESCE(started_at, $3), ended_at = NULL \
                     WHERE id = $1 AND (state = 'queued' OR state = 'up_for_retry') \
                     RETURNING tries",
                    &[id.into(), worker.into(), now.into()],
                )?;
                let Some(attempt) = claimed.first().map(|r| r.int0(0)) else {
                    continue;
                };
                db.exec(
                    "INSERT INTO hf_tries (task, attempt, worker, state, started_at) \
                     VALUES ($1, $2, $3, 'running', $4)",
                    &[id.into(), attempt.into(), worker.into(), now.into()],
                )?;
                let rows = db.query(
                    "SELECT t.pipeline, t.task, t.kind, r.run_id, r.run_type, r.logical_date, \
                     r.interval_start, r.interval_end, r.conf, d.file, d.text, t.timeout_ms, \
                     t.retries, t.failures, t.retry_delay_ms, t.retry_exponential, \
                     t.max_retry_delay_ms, r.id, r.fingerprint, d.signature \
                     FROM hf_tasks t JOIN hf_runs r ON r.id = t.run \
                     JOIN hf_definitions d ON d.fingerprint = r.fingerprint WHERE t.id = $1",
                    &[id.into()],
                )?;
                let Some(r) = rows.first() else {
                    return Err(StoreError::Database(format!(
                        "task {id} has no run or definition; the metadata database is inconsistent"
                    )));
                };
                return Ok(Some(Claim {
                    task_id: id,
                    run: r.int0(17),
                    attempt,
                    worker: worker.to_string(),
                    pipeline: r.string(0),
                    task: r.string(1),
                    kind: r.string(2),
                    run_id: r.string(3),
                    run_type: r.string(4),
                    logical_date: r.int0(5),
                    interval: Interval {
                        start: r.int0(6),
                        end: r.int0(7),
                    },
                    conf: r.string(8),
                    file: PathBuf::from(r.string(9)),
                    text: r.string(10),
                    fingerprint: r.string(18),
                    signature: r.text(19),
                    timeout_ms: r.int(11),
                    retries: r.int0(12),
                    failures: r.int0(13),
                    retry_delay_ms: r.int0(14),
                    retry_exponential: r.int0(15) != 0,
                    max_retry_delay_ms: r.int0(16),
                }));
            }
            Ok(None)
        })
    }

    /// Records how a try ended and moves the task on: success; up for retry after the backoff
    /// while retries remain; failed. Lands only while `claim`'s worker still owns the try.
    pub fn complete(
        &mut self,
        claim: &Claim,
        outcome: &TryOutcome,
        now: Millis,
    ) -> Result<Completed, StoreError> {
        let log = tail(&outcome.log).to_string();
        self.db.transaction(|db| {
            let failures = claim.failures + i64::from(!outcome.success);
            let (state, next_try_at) = if outcome.success {
                (TaskState::Success, None)
            } else if failures <= claim.retries {
                let policy = hushflow_spec::dag::RetryPolicy {
                    retries: claim.retries as u32,
                    delay: std::time::Duration::from_millis(claim.retry_delay_ms.max(0) as u64),
                    exponential: claim.retry_exponential,
                    max_delay: std::time::Duration::from_millis(claim.max_retry_delay_ms.max(0) as u64),
                };
                let wait = policy.delay_after(failures as u32).as_millis() as i64;
                (TaskState::UpForRetry, Some(now + wait))
            } else {
                (TaskState::Failed, None)
            };
            let ended = (state != TaskState::UpForRetry).then_some(now);
            let n = db.exec(
                "UPDATE hf_tasks SET state = $4, failures = $5, next_try_at = $6, ended_at = $7, \
                 worker = NULL, records_read = $8, records_written = $9, records_quarantined = $10, \
                 error = $11 WHERE id = $1 AND worker = $2 AND tries = $3 AND state = 'running'",
                &[
                    claim.task_id.into(),
                    claim.worker.as_str().into(),
                    claim.attempt.into(),
                    state.as_str().into(),
                    failures.into(),
                    next_try_at.into(),
                    ended.into(),
                    outcome.records_read.into(),
                    outcome.records_written.into(),
                    outcome.records_quarantined.into(),
                    outcome.error.clone().into(),
                ],
            )?;
            let try_state = match (n, outcome.success) {
                (0, _) => "lost",
                (_, true) => "success",
                (_, false) => "failed",
            };
            db.exec(
                "UPDATE hf_tries SET state = CASE WHEN state = 'lost' THEN 'lost' ELSE $3 END, \
                 ended_at = COALESCE(ended_at, $4), error = COALESCE(error, $5), log = $6 \
                 WHERE task = $1 AND attempt = $2",
                &[
                    claim.task_id.into(),
                    claim.attempt.into(),
                    try_state.into(),
                    now.into(),
                    outcome.error.clone().into(),
                    log.as_str().into(),
                ],
            )?;
            Ok(if n == 1 { Completed::Now(state) } else { Completed::NotOwner })
        })
    }

    pub fn register_worker(&mut self, id: &str, host: &str, now: Millis) -> Result<(), StoreError> {
        self.db.exec(
            "INSERT INTO hf_workers (id, host, pid, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, stopped_at = NULL",
            &[id.into(), host.into(), i64::from(std::process::id()).into(), now.into()],
        )?;
        Ok(())
    }

    pub fn heartbeat(&mut self, id: &str, now: Millis) -> Result<(), StoreError> {
        self.db.exec(
            "UPDATE hf_workers SET heartbeat_at = $2 WHERE id = $1",
            &[id.into(), now.into()],
        )?;
        Ok(())
    }

    /// The output so far of a running try (the tail, capped like a finished try's log).
    pub fn running_log(&mut self, task: i64, attempt: i64, log: &str) -> Result<(), StoreError> {
        self.db.exec(
            "UPDATE hf_tries SET log = $3 WHERE task = $1 AND attempt = $2 AND state = 'running'",
            &[task.into(), attempt.into(), tail(log).into()],
        )?;
        Ok(())
    }

    /// The tries the store gives to this worker: `(task, attempt)` of its running tasks.
    pub fn owned_tries(&mut self, worker: &str) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = self.db.query(
            "SELECT id, tries FROM hf_tasks WHERE worker = $1 AND state = 'running'",
            &[worker.into()],
        )?;
        Ok(rows.iter().map(|r| (r.int0(0), r.int0(1))).collect())
    }

    pub fn stop_worker(&mut self, id: &str, now: Millis) -> Result<(), StoreError> {
        self.db.exec(
            "UPDATE hf_workers SET stopped_at = $2 WHERE id = $1",
            &[id.into(), now.into()],
        )?;
        Ok(())
    }

    /// Hands back the tasks of workers whose heartbeat is older than `stale_before` (or that
    /// stopped without finishing them): their try is marked lost and the task queued again, so
    /// that another worker retries it. Returns the task ids.
    pub fn requeue_lost(&mut self, stale_before: Millis, now: Millis) -> Result<Lost, StoreError> {
        let rows = self.db.query(
            "SELECT t.id, t.worker, t.tries, t.lost FROM hf_tasks t \
             LEFT JOIN hf_workers w ON w.id = t.worker WHERE t.state = 'running' \
             AND (w.id IS NULL OR w.heartbeat_at < $1 OR w.stopped_at IS NOT NULL)",
            &[stale_before.into()],
        )?;
        let mut lost_tasks = Lost::default();
        for r in rows {
            let (id, worker, tries) = (r.int0(0), r.string(1), r.int0(2));
            let lost = r.int0(3) + 1;
            let (state, error, ended) = if lost >= MAX_LOST_TRIES {
                (
                    "failed",
                    Some(format!("lost {lost} tries to workers that stopped; failed")),
                    Some(now),
                )
            } else {
                ("queued", None, None)
            };
            let moved = self.db.transaction(|db| {
                let n = db.exec(
                    "UPDATE hf_tasks SET state = $4, worker = NULL, error = COALESCE($5, error), \
                     ended_at = $6, lost = lost + 1 \
                     WHERE id = $1 AND worker = $2 AND tries = $3 AND state = 'running'",
                    &[
                        id.into(),
                        worker.as_str().into(),
                        tries.into(),
                        state.into(),
                        error.clone().into(),
                        ended.into(),
                    ],
                )?;
                if n == 1 {
                    db.exec(
                        "UPDATE hf_tries SET state = 'lost', ended_at = $3, error = $4 \
                         WHERE task = $1 AND attempt = $2",
                        &[
                            id.into(),
                            tries.into(),
                            now.into(),
                            format!("worker {worker} stopped heartbeating; the task was handed to another worker").into(),
                        ],
                    )?;
                }
                Ok(n == 1)
            })?;
            match (moved, state) {
                (true, "failed") => lost_tasks.failed.push(id),
                (true, _) => lost_tasks.requeued.push(id),
                _ => {}
            }
        }
        Ok(lost_tasks)
    }

    /// What a notification about a failed task needs.
    pub fn failed_task(&mut self, task: i64) -> Result<Option<FailedTask>, StoreError> {
        let rows = self.db.query(
            "SELECT t.pipeline, t.task, t.tries, t.error, r.run_id, r.logical_date, d.file, d.text, \
             r.fingerprint, d.signature FROM hf_tasks t JOIN hf_runs r ON r.id = t.run \
             JOIN hf_definitions d ON d.fingerprint = r.fingerprint WHERE t.id = $1",
            &[task.into()],
        )?;
        Ok(rows.first().map(|r| FailedTask {
            pipeline: r.string(0),
            task: r.string(1),
            attempt: r.int0(2),
            error: r.text(3),
            run_id: r.string(4),
            logical_date: r.int0(5),
            file: PathBuf::from(r.string(6)),
            text: r.string(7),
            fingerprint: r.string(8),
            signature: r.text(9),
        }))
    }

    /// Runs, newest first.
    /// The newest runs, by creation (a backfill of old intervals shows as what happened last).
    pub fn runs(&mut self, pipeline: Option<&str>, limit: i64) -> Result<Vec<RunRow>, StoreError> {
        let rows = match pipeline {
            Some(p) => self.db.query(
                &format!("SELECT {RUN_COLUMNS} FROM hf_runs WHERE pipeline = $1 ORDER BY id DESC LIMIT $2"),
                &[p.into(), limit.into()],
            )?,
            None => self.db.query(
                &format!("SELECT {RUN_COLUMNS} FROM hf_runs ORDER BY id DESC LIMIT $1"),
                &[limit.into()],
            )?,
        };
        Ok(rows.iter().map(run_row).collect())
    }

    /// A run by its number or its run id (with the pipeline when two pipelines share it).
    pub fn find_run(
        &mut self,
        run: &str,
        pipeline: Option<&str>,
    ) -> Result<Vec<RunRow>, StoreError> {
        let rows = match run.parse::<i64>() {
            Ok(id) => self.db.query(
                &format!("SELECT {RUN_COLUMNS} FROM hf_runs WHERE id = $1"),
                &[id.into()],
            )?,
            Err(_) => self.db.query(
                &format!("SELECT {RUN_COLUMNS} FROM hf_runs WHERE run_id = $1 ORDER BY id"),
                &[run.into()],
            )?,
        };
        Ok(rows
            .iter()
            .map(run_row)
            .filter(|r| pipeline.is_none_or(|p| p == r.pipeline))
            .collect())
    }

    pub fn tries(&mut self, task: i64) -> Result<Vec<TryRow>, StoreError> {
        let rows = self.db.query(
            "SELECT attempt, worker, state, started_at, ended_at, error, log FROM hf_tries \
             WHERE task = $1 ORDER BY attempt",
            &[task.into()],
        )?;
        Ok(rows
            .iter()
            .map(|r| TryRow {
                attempt: r.int0(0),
                worker: r.string(1),
                state: r.string(2),
                started_at: r.int0(3),
                ended_at: r.int(4),
                error: r.text(5),
                log: r.text(6),
            })
            .collect())
    }

    /// Whether any run is queued or running (a scheduler `--until-idle` stops when not).
    pub fn busy(&mut self) -> Result<bool, StoreError> {
        let rows = self.db.query(
            "SELECT COUNT(*) FROM hf_runs r JOIN hf_pipelines p ON p.name = r.pipeline \
             WHERE r.state = 'running' OR (r.state = 'queued' AND p.paused = 0)",
            &[],
        )?;
        Ok(rows.first().is_some_and(|r| r.int0(0) > 0))
    }

    /// Counts of tasks per state, for `hushflow runs` and the tests.
    pub fn task_states(&mut self, run: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = self.db.query(
            "SELECT state, COUNT(*) FROM hf_tasks WHERE run = $1 GROUP BY state ORDER BY state",
            &[run.into()],
        )?;
        Ok(rows.iter().map(|r| (r.string(0), r.int0(1))).collect())
    }
}

/// Whether a task kind runs in the worker's own process (nothing to isolate) or in a child.
pub fn runs_in_process(kind: &str) -> bool {
    kind == TaskKind::Empty.as_str()
}
