//! DAG files: a pipeline file read as tasks with dependencies, a schedule and retry rules. A
//! file without `[[task]]`s (one sync) is a DAG of one task named `sync`. Everything is checked
//! here, before any scheduler or worker acts on it: unknown names, cycles, pools, durations.

use crate::duration::Seconds;
use crate::paths::Protected;
pub use crate::pipeline::TriggerRule;
use crate::pipeline::{self, PipelineSection, PipelineSpec, SpecError, SpecSource, TaskScope};
use crate::plan::{self, Plan, SyncParts};
use crate::schedule::{self, Millis, Schedule};
use hushflow_secrets::SecretProviders;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// The task name a one-sync pipeline file runs as.
pub const SYNC_TASK: &str = "sync";

/// A pipeline file checked as a DAG: its tasks in dependency order, its schedule and its pools.
#[derive(Debug)]
pub struct Dag {
    /// The pipeline's name.
    pub name: String,
    /// The pipeline file.
    pub file: PathBuf,
    /// The file's text: workers run exactly the version a run was created from.
    pub text: String,
    /// SHA-256 of the text.
    pub fingerprint: String,
    /// When runs are due; `None` for runs triggered by hand only.
    pub schedule: Option<Schedule>,
    /// The first data interval starts at or after this instant; without it, when the scheduler
    /// first sees the pipeline.
    pub start_date: Option<Millis>,
    /// Whether a run is created for every missed interval, or only for the latest.
    pub catchup: bool,
    /// Runs of the pipeline that may be active at once.
    pub max_active_runs: u32,
    /// A secret reference holding the URL to tell about failed tasks.
    pub on_failure_webhook: Option<String>,
    /// Named concurrency limits: at most that many tasks naming the pool run at once.
    pub pools: BTreeMap<String, u32>,
    /// In dependency order: every task comes after the tasks it depends on.
    pub tasks: Vec<TaskDef>,
}

/// One task of a DAG, checked.
#[derive(Debug)]
pub struct TaskDef {
    /// The task's name, unique in its DAG.
    pub name: String,
    /// The tasks that must end before this one is decided.
    pub depends_on: Vec<String>,
    /// When the task runs once its upstream tasks have ended.
    pub trigger_rule: TriggerRule,
    /// How often and after how long a failed try is tried again.
    pub retry: RetryPolicy,
    /// A try that runs longer is stopped and counts as failed.
    pub timeout: Option<Duration>,
    /// The pool whose slots the task takes, if any.
    pub pool: Option<String>,
    /// What the task does.
    pub kind: TaskKind,
}

/// What a task does.
#[derive(Debug)]
pub enum TaskKind {
    /// One sync: the task's validated plan.
    Sync(Box<Plan>),
    /// Statements run in one transaction against `database`.
    Sql {
        /// The database the statements run against.
        database: SqlDatabase,
        /// The statements, as written.
        sql: String,
    },
    /// Removes expired staged files from the state directory.
    Gc,
    /// Deletes rows past their sink's `retain` period, in the sinks of this file's sync tasks.
    Retention,
    /// Does nothing: joins branches, or measures the scheduler.
    Empty,
}

impl TaskKind {
    /// The word used in pipeline files and the metadata store: `sync`, `sql`, `gc`,
    /// `retention`, `empty`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TaskKind::Sync(_) => "sync",
            TaskKind::Sql { .. } => "sql",
            TaskKind::Gc => "gc",
            TaskKind::Retention => "retention",
            TaskKind::Empty => "empty",
        }
    }
}

/// The database an `sql` task runs against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlDatabase {
    /// A secret reference to a postgres:// URL.
    Postgres(String),
    /// A SQLite file, resolved against the pipeline file.
    Sqlite(PathBuf),
}

/// How a task retries: `retries` tries after the first, waiting [`RetryPolicy::delay_after`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries after the first that fails.
    pub retries: u32,
    /// The wait before the first retry.
    pub delay: Duration,
    /// Whether the wait doubles on each further retry.
    pub exponential: bool,
    /// The longest wait.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The wait before the next try after `failures` failed tries (1 for the first failure):
    /// `delay`, doubled per further failure when exponential, never above `max_delay`.
    pub fn delay_after(&self, failures: u32) -> Duration {
        let doublings = if self.exponential {
            failures.saturating_sub(1).min(30)
        } else {
            0
        };
        self.delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay.max(self.delay.min(self.max_delay)))
    }
}

const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(60);
const DEFAULT_MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// When a schedule's next run happens, as the scheduler would decide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextRun {
    /// No schedule, or a schedule with no point left.
    Never,
    /// At least one interval has ended already: runs are created at the next tick. `intervals`
    /// counts them (with catch-up; one without), up to [`CATCHUP_COUNT_LIMIT`].
    Now {
        /// How many runs are due: the intervals that ended with catch-up, one without.
        intervals: usize,
    },
    /// The first interval ends at this time.
    At(Millis),
}

/// How far `next_run` counts overdue intervals: enough to tell a mistake from a backlog.
pub const CATCHUP_COUNT_LIMIT: usize = 10_000;

/// Above this many overdue intervals, validation warns that catch-up would create that many runs.
pub const CATCHUP_WARN_AT: usize = 1_000;

impl Dag {
    /// The task named `name`, if the DAG has one.
    pub fn task(&self, name: &str) -> Option<&TaskDef> {
        self.tasks.iter().find(|t| t.name == name)
    }

    /// The next run of a pipeline first seen at `now`: its intervals begin at `start_date`
    /// (or now, without one), and a run is created when its interval has ended.
    pub fn next_run(&self, now: Millis) -> NextRun {
        let Some(schedule) = &self.schedule else {
            return NextRun::Never;
        };
        let from = self.start_date.unwrap_or(now);
        let Some(first_start) = schedule.next(from, true) else {
            return NextRun::Never;
        };
        let Some(first_end) = schedule.next(first_start, false) else {
            return NextRun::Never;
        };
        if first_end > now {
            return NextRun::At(first_end);
        }
        let intervals = match self.catchup {
            true => schedule.due(from, now, true, CATCHUP_COUNT_LIMIT).len(),
            false => 1,
        };
        NextRun::Now { intervals }
    }

    /// What validation should warn about the schedule at `now`: a catch-up that would create
    /// more runs than anyone means to (a minutely schedule from 1970).
    pub fn schedule_warnings(&self, now: Millis) -> Vec<String> {
        match self.next_run(now) {
            NextRun::Now { intervals } if intervals > CATCHUP_WARN_AT => {
                let count = match intervals >= CATCHUP_COUNT_LIMIT {
                    true => format!("more than {CATCHUP_COUNT_LIMIT}"),
                    false => intervals.to_string(),
                };
                vec![format!(
                    "catchup = true with this start_date creates {count} runs, one per \
                     interval since then; set a later start_date or catchup = false"
                )]
            }
            _ => Vec::new(),
        }
    }
}

/// Reads and checks a pipeline file as a DAG: secret references must be of a scheme registered
/// in `secrets`, and no path it names may lead into a `protected` directory (the state
/// directory).
pub fn load(
    file: &Path,
    secrets: &SecretProviders<'_>,
    protected: &Protected,
) -> Result<Dag, SpecError> {
    let text = pipeline::read(file)?;
    parse(file, text, secrets, protected)
}

/// Checks the text of a pipeline file as a DAG; `file` locates messages and relative paths.
/// Secret references must be of a scheme registered in `secrets`; no path it names may lead
/// into a `protected` directory (the state directory).
pub fn parse(
    file: &Path,
    text: String,
    secrets: &SecretProviders<'_>,
    protected: &Protected,
) -> Result<Dag, SpecError> {
    let spec = pipeline::parse(file, &text, secrets)?;
    let fingerprint = hex::encode(Sha256::digest(text.as_bytes()));
    let src = SpecSource::new(file, &text);
    check_templates(&src)?;
    let PipelineSpec {
        pipeline: section,
        source,
        policy,
        sink,
        task: task_specs,
        pools: pool_specs,
    } = spec;
    let name = section.name.get_ref().clone();
    let at = |span: std::ops::Range<usize>, key: &str, message: String| {
        src.error_at(span, Some(key.to_string()), message)
    };
    if let Some(problem) = plan::name_problem(&name) {
        return Err(at(section.name.span(), "pipeline.name", problem));
    }

    let timezone = section.timezone.as_ref().map(|t| t.get_ref().as_str());
    if let Some(tz) = &section.timezone {
        schedule::parse_instant("2000-01-01", Some(tz.get_ref()))
            .map_err(|m| at(tz.span(), "pipeline.timezone", m))?;
    }
    let schedule = match &section.schedule {
        None => None,
        Some(s) => Some(
            Schedule::parse(s.get_ref(), timezone)
                .map_err(|m| at(s.span(), "pipeline.schedule", m))?,
        ),
    };
    let start_date = match &section.start_date {
        None => None,
        Some(d) => Some(
            schedule::parse_instant(d.get_ref(), timezone)
                .map_err(|m| at(d.span(), "pipeline.start_date", m))?,
        ),
    };
    let max_active_runs = match &section.max_active_runs {
        Some(m) if *m.get_ref() == 0 => {
            return Err(at(
                m.span(),
                "pipeline.max_active_runs",
                "must be at least 1".into(),
            ));
        }
        Some(m) => *m.get_ref(),
        None => 1,
    };
    if let Some(w) = &section.on_failure_webhook
        && !secrets.is_reference(w.get_ref())
    {
        return Err(at(
            w.span(),
            "pipeline.on_failure_webhook",
            "must be a secret reference (env:NAME, file:PATH or keyring:NAME) holding the URL: \
             webhook URLs carry their credentials"
                .into(),
        ));
    }
    let mut pools = BTreeMap::new();
    for (pool, slots) in &pool_specs {
        if *slots.get_ref() == 0 {
            return Err(at(
                slots.span(),
                &format!("pools.{pool}"),
                "must be at least 1".into(),
            ));
        }
        pools.insert(pool.clone(), *slots.get_ref());
    }
    let defaults = retry_policy(&src, &section, None)?;
    let default_timeout = timeout(&src, section.timeout.as_ref(), "pipeline.timeout")?;

    let mut tasks = Vec::new();
    if task_specs.is_empty() {
        let key = section.key.clone().ok_or_else(|| {
            at(
                src.span_of(&["pipeline"]),
                "pipeline.key",
                "missing: name the record key (`key = \"id\"`)".into(),
            )
        })?;
        let (Some(source), Some(sink)) = (source, sink) else {
            return Err(src.error_at(
                0..0,
                None,
                "a pipeline file holds [source], [policy] and [sink] (one sync) or [[task]]s",
            ));
        };
        let parts = SyncParts {
            name: name.clone(),
            key,
            source,
            policy: policy.unwrap_or_default(),
            sink,
        };
        tasks.push(TaskDef {
            name: SYNC_TASK.into(),
            depends_on: Vec::new(),
            trigger_rule: TriggerRule::AllSuccess,
            retry: defaults,
            timeout: default_timeout,
            pool: None,
            kind: TaskKind::Sync(Box::new(plan::check(
                file,
                text.clone(),
                None,
                &section,
                parts,
                secrets,
                protected,
            )?)),
        });
    } else {
        for key in ["source", "policy", "sink"] {
            let present = match key {
                "source" => source.is_some(),
                "policy" => policy.is_some(),
                _ => sink.is_some(),
            };
            if present {
                return Err(at(
                    src.span_of(&[key]),
                    key,
                    format!(
                        "a file with [[task]]s gives each task its own `{key}`; move it into the tasks"
                    ),
                ));
            }
        }
        for (index, spec) in task_specs.into_iter().enumerate() {
            let scope = TaskScope {
                index,
                name: spec.name.get_ref().clone(),
            };
            let shared = Shared {
                file,
                text: &text,
                section: &section,
                pools: &pools,
                default_timeout,
                secrets,
            };
            tasks.push(task(&shared, scope, spec, protected)?);
        }
    }
    let tasks = order(&src, tasks)?;
    Ok(Dag {
        name,
        file: file.to_path_buf(),
        fingerprint,
        schedule,
        start_date,
        catchup: section.catchup.unwrap_or(false),
        max_active_runs,
        on_failure_webhook: section.on_failure_webhook.map(|w| w.into_inner()),
        pools,
        tasks,
        text,
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

/// What every task of a file is checked against.
struct Shared<'a> {
    file: &'a Path,
    text: &'a str,
    section: &'a PipelineSection,
    pools: &'a BTreeMap<String, u32>,
    default_timeout: Option<Duration>,
    secrets: &'a SecretProviders<'a>,
}

fn task(
    shared: &Shared<'_>,
    scope: TaskScope,
    spec: pipeline::TaskSpec,
    protected: &Protected,
) -> Result<TaskDef, SpecError> {
    let Shared {
        file,
        text,
        section,
        pools,
        default_timeout,
        secrets,
    } = *shared;
    let src = SpecSource {
        file,
        text,
        scope: Some(&scope),
    };
    let at = |span: std::ops::Range<usize>, key: &str, message: &str| {
        src.error_at(span, Some(key.to_string()), message)
    };
    let name = spec.name.get_ref().clone();
    if !valid_name(&name) {
        return Err(at(
            spec.name.span(),
            "name",
            "must be non-empty and use only letters, digits, '-' and '_'",
        ));
    }
    if name.chars().count() > plan::MAX_NAME_CHARS {
        return Err(at(
            spec.name.span(),
            "name",
            &format!(
                "is {} characters long; a task name may have at most {} characters (it names \
                 files in the state directory)",
                name.chars().count(),
                plan::MAX_NAME_CHARS
            ),
        ));
    }
    let pool = match &spec.pool {
        Some(p) if !pools.contains_key(p.get_ref()) => {
            return Err(at(
                p.span(),
                "pool",
                "names no pool of this file; declare it under [pools] with its slots (`crm = 2`)",
            ));
        }
        p => p.as_ref().map(|p| p.get_ref().clone()),
    };
    let retry = retry_policy(&src, section, Some(&spec))?;
    let timeout = match timeout(&src, spec.timeout.as_ref(), "timeout")? {
        Some(t) => Some(t),
        None => default_timeout,
    };
    let depends_on = spec
        .depends_on
        .iter()
        .map(|d| d.get_ref().clone())
        .collect();
    let trigger_rule = spec.trigger_rule;
    let kind_name = spec.kind.as_ref().map_or("sync", |k| k.get_ref().as_str());
    let sync_keys = spec.source.is_some() || spec.sink.is_some() || spec.policy.is_some();
    let sql_keys = spec.database.is_some() || spec.sql.is_some();
    let kind = match kind_name {
        "sync" => {
            if sql_keys {
                return Err(at(
                    src.span_of(&["database"]),
                    "database",
                    "belongs to `type = \"sql\"` tasks",
                ));
            }
            let key = spec
                .key
                .clone()
                .or_else(|| section.key.clone())
                .ok_or_else(|| {
                    at(
                        spec.name.span(),
                        "key",
                        "a sync task needs a record key: set `key` here or in [pipeline]",
                    )
                })?;
            let (Some(source), Some(sink)) = (spec.source, spec.sink) else {
                return Err(at(
                    spec.name.span(),
                    "source",
                    "a sync task needs a `source` and a `sink`",
                ));
            };
            let parts = SyncParts {
                name: format!("{}.{name}", section.name.get_ref()),
                key,
                source,
                policy: spec.policy.unwrap_or_default(),
                sink,
            };
            TaskKind::Sync(Box::new(plan::check(
                file,
                text.to_string(),
                Some(scope.clone()),
                section,
                parts,
                secrets,
                protected,
            )?))
        }
        "sql" | "gc" | "retention" | "empty" if sync_keys => {
            return Err(at(
                src.span_of(&["source"]),
                "source",
                "only sync tasks have a source, policy and sink",
            ));
        }
        "sql" => {
            let (Some(database), Some(sql)) = (&spec.database, &spec.sql) else {
                return Err(at(
                    spec.name.span(),
                    "sql",
                    "a sql task needs `database` and `sql`",
                ));
            };
            let db = database.get_ref();
            let database = if secrets.is_reference(db) {
                SqlDatabase::Postgres(db.clone())
            } else if db.contains("://") {
                return Err(at(
                    database.span(),
                    "database",
                    "a database URL must be a secret reference (env:NAME, file:PATH or keyring:NAME) \
                     holding the postgres:// URL",
                ));
            } else {
                let base = file.parent().unwrap_or(Path::new(""));
                let path = base.join(db);
                // The audit log is a SQLite file in the state directory: never a task's.
                protected
                    .check(&path, "the database")
                    .map_err(|m| at(database.span(), "database", &m))?;
                hushflow_connectors::check_target(&path)
                    .map_err(|e| at(database.span(), "database", &e.to_string()))?;
                SqlDatabase::Sqlite(path)
            };
            if sql.get_ref().trim().is_empty() {
                return Err(at(sql.span(), "sql", "must not be empty"));
            }
            TaskKind::Sql {
                database,
                sql: sql.get_ref().clone(),
            }
        }
        "gc" | "retention" | "empty" if sql_keys => {
            return Err(at(
                src.span_of(&["database"]),
                "database",
                "belongs to `type = \"sql\"` tasks",
            ));
        }
        "gc" => TaskKind::Gc,
        "retention" => TaskKind::Retention,
        "empty" => TaskKind::Empty,
        _ => {
            let span = spec.kind.as_ref().map_or(0..0, |k| k.span());
            return Err(at(
                span,
                "type",
                "unknown task type; expected sync, sql, gc, retention or empty",
            ));
        }
    };
    Ok(TaskDef {
        name,
        depends_on,
        trigger_rule,
        retry,
        timeout,
        pool,
        kind,
    })
}

/// A timeout, already parsed as a duration: zero is refused at its key.
fn timeout(
    src: &SpecSource<'_>,
    value: Option<&Spanned<Seconds>>,
    key: &str,
) -> Result<Option<Duration>, SpecError> {
    match value {
        Some(v) if v.get_ref().0.is_zero() => Err(src.error_at(
            v.span(),
            Some(key.into()),
            "must be longer than zero (leave it out for no timeout)",
        )),
        v => Ok(v.map(|v| v.get_ref().0)),
    }
}

/// A task's retry rules: its own keys, else the `[pipeline]` defaults, else hushflow's.
fn retry_policy(
    src: &SpecSource<'_>,
    section: &PipelineSection,
    task: Option<&pipeline::TaskSpec>,
) -> Result<RetryPolicy, SpecError> {
    let prefix = if task.is_some() { "" } else { "pipeline." };
    fn pick(
        own: Option<&Spanned<Seconds>>,
        default: Option<&Spanned<Seconds>>,
    ) -> Option<Duration> {
        own.or(default).map(|d| d.get_ref().0)
    }
    let retries = task
        .and_then(|t| t.retries.as_ref())
        .or(section.retries.as_ref())
        .map_or(0, |r| *r.get_ref());
    let delay = pick(
        task.and_then(|t| t.retry_delay.as_ref()),
        section.retry_delay.as_ref(),
    )
    .unwrap_or(DEFAULT_RETRY_DELAY);
    let max_delay = pick(
        task.and_then(|t| t.max_retry_delay.as_ref()),
        section.max_retry_delay.as_ref(),
    )
    .unwrap_or(DEFAULT_MAX_RETRY_DELAY.max(delay));
    let exponential = task
        .and_then(|t| t.retry_exponential_backoff)
        .or(section.retry_exponential_backoff)
        .unwrap_or(true);
    if max_delay < delay {
        return Err(src.error_at(
            src.span_of(&[if task.is_some() {
                "max_retry_delay"
            } else {
                "pipeline"
            }]),
            Some(format!("{prefix}max_retry_delay")),
            "is shorter than retry_delay",
        ));
    }
    Ok(RetryPolicy {
        retries,
        delay,
        exponential,
        max_delay,
    })
}

/// Sorts tasks so that each follows its upstream tasks; unknown names, duplicates and cycles
/// are errors at the task concerned.
fn order(src: &SpecSource<'_>, tasks: Vec<TaskDef>) -> Result<Vec<TaskDef>, SpecError> {
    let located = |index: usize, key: &str, message: String| {
        let span = src.span_of(&["task", &index.to_string(), key]);
        src.error_at(span, Some(format!("task.{key}")), message)
    };
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, t) in tasks.iter().enumerate() {
        if index.insert(&t.name, i).is_some() {
            return Err(located(
                i,
                "name",
                format!("`{}` names two tasks; task names must be unique", t.name),
            ));
        }
    }
    for (i, t) in tasks.iter().enumerate() {
        for d in &t.depends_on {
            if !index.contains_key(d.as_str()) {
                return Err(located(
                    i,
                    "depends_on",
                    format!(
                        "task `{}` depends on `{d}`, which no task is called",
                        t.name
                    ),
                ));
            }
            if d == &t.name {
                return Err(located(
                    i,
                    "depends_on",
                    format!("task `{}` depends on itself", t.name),
                ));
            }
        }
    }
    // Kahn's algorithm, keeping file order among tasks that are ready together.
    let mut indegree: Vec<usize> = tasks.iter().map(|t| t.depends_on.len()).collect();
    let mut placed = vec![false; tasks.len()];
    let mut sorted = Vec::with_capacity(tasks.len());
    while sorted.len() < tasks.len() {
        let Some(next) = (0..tasks.len()).find(|&i| !placed[i] && indegree[i] == 0) else {
            let stuck = (0..tasks.len()).find(|&i| !placed[i]).unwrap_or(0);
            let names: Vec<&str> = (0..tasks.len())
                .filter(|&i| !placed[i])
                .map(|i| tasks[i].name.as_str())
                .collect();
            return Err(located(
                stuck,
                "depends_on",
                format!(
                    "the tasks {} depend on each other in a cycle",
                    names.join(", ")
                ),
            ));
        };
        placed[next] = true;
        sorted.push(next);
        for (i, t) in tasks.iter().enumerate() {
            if t.depends_on.iter().any(|d| d == &tasks[next].name) {
                indegree[i] -= t
                    .depends_on
                    .iter()
                    .filter(|d| **d == tasks[next].name)
                    .count();
            }
        }
    }
    let mut slots: Vec<Option<TaskDef>> = tasks.into_iter().map(Some).collect();
    Ok(sorted.into_iter().filter_map(|i| slots[i].take()).collect())
}

/// The template names a run provides (besides `conf.NAME`).
pub const TEMPLATE_NAMES: [&str; 5] = [
    "data_interval_start",
    "data_interval_end",
    "logical_date",
    "ds",
    "run_id",
];

/// Every `{{ name }}` must be one a run provides, checked when the file is read rather than
/// at each try (where a typo would use up the retries).
fn check_templates(src: &SpecSource<'_>) -> Result<(), SpecError> {
    let text = src.text;
    let mut at = 0;
    while let Some(open) = text[at..].find("{{").map(|i| i + at) {
        let Some(close) = text[open..].find("}}").map(|i| i + open) else {
            return Err(src.error_at(open..open + 2, None, "a `{{` has no closing `}}`"));
        };
        let name = text[open + 2..close].trim();
        let known = TEMPLATE_NAMES.contains(&name)
            || name.strip_prefix("conf.").is_some_and(|k| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            });
        if !known {
            return Err(src.error_at(
                open..close,
                None,
                format!(
                    "`{{{{ {name} }}}}` is not a template value; use {} or conf.NAME",
                    TEMPLATE_NAMES.join(", ")
                ),
            ));
        }
        at = close + 2;
    }
    Ok(())
}

/// Values a task's text may use as `{{ name }}`: the run's data interval, ids and `--conf`.
pub fn render(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| "a `{{` has no closing `}}`".to_string())?;
        let name = after[..close].trim();
        let value = vars.get(name).ok_or_else(|| {
            format!(
                "`{{{{ {name} }}}}` is not a template value; use data_interval_start, \
                 data_interval_end, logical_date, ds, run_id or conf.NAME"
            )
        })?;
        out.push_str(value);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dag(text: &str) -> Result<Dag, SpecError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dag.toml");
        std::fs::write(dir.path().join("in.csv"), "id,email\n1,a@example.com\n").unwrap();
        parse(
            &file,
            text.to_string(),
            &SecretProviders::default(),
            &Protected::nothing(),
        )
    }

    const HEAD: &str = "[pipeline]\nname = \"nightly\"\nkey = \"id\"\nschedule = \"@daily\"\n";

    fn with_tasks(tasks: &str) -> String {
        format!("{HEAD}{tasks}")
    }

    const SYNC: &str = "source = { type = \"csv\", path = \"in.csv\" }\npolicy = { fields = { id = \"keep\" } }\nsink = { type = \"jsonl\", path = \"out.jsonl\" }\n";

    fn scheduled(extra: &str) -> Dag {
        let text = format!(
            "[pipeline]\nname = \"p\"\nkey = \"id\"\n{extra}\n[[task]]\nname = \"t\"\ntype = \"empty\"\n"
        );
        dag(&text).unwrap()
    }

    #[test]
    fn the_next_run_waits_for_a_future_start_date() {
        let now = schedule::parse_instant("2026-12-03T10:00:00Z", None).unwrap();
        let d = scheduled("schedule = \"@daily\"\nstart_date = \"2027-01-10\"");
        // The first interval is 2027-01-10..11; its run starts when it ends.
        let expected = schedule::parse_instant("2027-01-11T00:00:00Z", None).unwrap();
        assert_eq!(d.next_run(now), NextRun::At(expected));
        assert!(d.schedule_warnings(now).is_empty());
        // Without a start date, the next midnight ends the first interval... of tomorrow.
        let d = scheduled("schedule = \"@daily\"");
        let expected = schedule::parse_instant("2026-12-05T00:00:00Z", None).unwrap();
        assert_eq!(d.next_run(now), NextRun::At(expected));
    }

    #[test]
    fn a_catch_up_from_long_ago_is_counted_and_warned_about() {
        let now = schedule::parse_instant("2026-12-03T10:00:00Z", None).unwrap();
        let d = scheduled("schedule = \"* * * * *\"\nstart_date = \"1970-01-01\"\ncatchup = true");
        assert_eq!(
            d.next_run(now),
            NextRun::Now {
                intervals: CATCHUP_COUNT_LIMIT
            }
        );
        let warnings = d.schedule_warnings(now);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("more than 10000 runs"), "{warnings:?}");
        // A few days behind on a daily schedule is a backlog, not a mistake.
        let d = scheduled("schedule = \"@daily\"\nstart_date = \"2026-11-29\"\ncatchup = true");
        assert_eq!(d.next_run(now), NextRun::Now { intervals: 4 });
        assert!(d.schedule_warnings(now).is_empty());
        // Without catch-up only the latest interval runs.
        let d = scheduled("schedule = \"* * * * *\"\nstart_date = \"1970-01-01\"");
        assert_eq!(d.next_run(now), NextRun::Now { intervals: 1 });
        assert!(d.schedule_warnings(now).is_empty());
    }

    #[test]
    fn tasks_are_ordered_after_their_upstreams() {
        let text = with_tasks(&format!(
            "[[task]]\nname = \"load\"\ndepends_on = [\"extract\"]\ntype = \"empty\"\n\
             [[task]]\nname = \"extract\"\nretries = 3\nretry_delay = \"30s\"\n{SYNC}\
             [[task]]\nname = \"cleanup\"\ntype = \"gc\"\ndepends_on = [\"load\", \"extract\"]\ntrigger_rule = \"all_done\"\n"
        ));
        let d = dag(&text).unwrap();
        let names: Vec<&str> = d.tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["extract", "load", "cleanup"]);
        let extract = d.task("extract").unwrap();
        assert_eq!(extract.retry.retries, 3);
        assert_eq!(extract.retry.delay_after(1), Duration::from_secs(30));
        assert_eq!(extract.retry.delay_after(3), Duration::from_secs(120));
        match &extract.kind {
            TaskKind::Sync(plan) => assert_eq!(plan.name, "nightly.extract"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            d.task("cleanup").unwrap().trigger_rule,
            TriggerRule::AllDone
        );
    }

    /// Every duration key takes the same forms: a bare number of its default unit (seconds
    /// for retries and timeouts, days for `retention`), or a number with a unit.
    #[test]
    fn duration_keys_take_bare_numbers_and_units() {
        let d = dag(&with_tasks(&format!(
            "retry_delay = 45\ntimeout = \"15m\"\n[[task]]\nname = \"a\"\nretries = 2\n\
             max_retry_delay = \"2h\"\ntimeout = 90\n{SYNC}"
        )))
        .unwrap();
        let a = d.task("a").unwrap();
        assert_eq!(a.retry.delay, Duration::from_secs(45));
        assert_eq!(a.retry.max_delay, Duration::from_secs(7200));
        assert_eq!(a.timeout, Some(Duration::from_secs(90)));

        let staged = |retention: &str| {
            let text = format!(
                "[pipeline]\nname = \"p\"\nkey = \"id\"\nstaging = true\nretention = {retention}\n\
                 [source]\ntype = \"csv\"\npath = \"in.csv\"\n[policy]\nfields.id = \"keep\"\n\
                 [sink]\ntype = \"jsonl\"\npath = \"out.jsonl\"\n"
            );
            dag(&text).map(|d| match &d.tasks[0].kind {
                TaskKind::Sync(plan) => plan.retention,
                other => panic!("{other:?}"),
            })
        };
        assert_eq!(staged("7").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(staged("\"7d\"").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(staged("\"12h\"").unwrap(), Duration::from_secs(12 * 3600));
        assert_eq!(staged("\"30m\"").unwrap(), Duration::from_secs(1800));
        assert_eq!(staged("\"45s\"").unwrap(), Duration::from_secs(45));
        let e = staged("\"a week\"").unwrap_err();
        // At the value's line and column (serde errors inside a `[table]` carry no key).
        assert_eq!((e.line, e.column), (5, 13), "{e}");
        assert!(
            e.message
                .contains("is not a duration: write a number of days"),
            "{e}"
        );
        let e = staged("3651").unwrap_err();
        assert!(e.message.contains("at most 3650 days"), "{e}");

        let e = dag(&with_tasks(&format!(
            "[[task]]\nname = \"a\"\nretry_delay = \"soon\"\n{SYNC}"
        )))
        .unwrap_err();
        // HEAD has four lines, then `[[task]]` and `name`.
        assert_eq!(e.line, 7, "{e}");
        assert!(e.message.contains("a number of seconds"), "{e}");
        let e = dag(&with_tasks(&format!(
            "[[task]]\nname = \"a\"\ntimeout = 0\n{SYNC}"
        )))
        .unwrap_err();
        assert!(e.message.contains("longer than zero"), "{e}");
    }

    #[test]
    fn backoff_is_capped() {
        let p = RetryPolicy {
            retries: 10,
            delay: Duration::from_secs(30),
            exponential: true,
            max_delay: Duration::from_secs(300),
        };
        let delays: Vec<u64> = (1..=6).map(|n| p.delay_after(n).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 300, 300]);
        let flat = RetryPolicy {
            exponential: false,
            ..p
        };
        assert_eq!(flat.delay_after(5).as_secs(), 30);
    }

    #[test]
    fn cycles_unknown_names_and_pools_are_located() {
        let cycle = with_tasks(
            "[[task]]\nname = \"a\"\ntype = \"empty\"\ndepends_on = [\"b\"]\n\
             [[task]]\nname = \"b\"\ntype = \"empty\"\ndepends_on = [\"a\"]\n",
        );
        let e = dag(&cycle).unwrap_err();
        assert!(e.message.contains("cycle"), "{e}");
        assert_eq!(e.line, 8, "{e}");

        let unknown =
            with_tasks("[[task]]\nname = \"a\"\ntype = \"empty\"\ndepends_on = [\"nope\"]\n");
        let e = dag(&unknown).unwrap_err();
        assert!(e.message.contains("`nope`"), "{e}");
        assert_eq!(e.line, 8, "{e}");

        let pool = with_tasks("[[task]]\nname = \"a\"\ntype = \"empty\"\npool = \"crm\"\n");
        let e = dag(&pool).unwrap_err();
        assert!(e.message.contains("[pools]"), "{e}");
        let ok = format!("{pool}[pools]\ncrm = 2\n");
        assert_eq!(dag(&ok).unwrap().pools["crm"], 2);

        let dup = with_tasks(
            "[[task]]\nname = \"a\"\ntype = \"empty\"\n[[task]]\nname = \"a\"\ntype = \"empty\"\n",
        );
        assert!(dag(&dup).unwrap_err().message.contains("two tasks"));
    }

    #[test]
    fn errors_inside_a_task_name_the_task_and_its_line() {
        let text = with_tasks(&format!(
            "[[task]]\nname = \"a\"\ntype = \"empty\"\n[[task]]\nname = \"extract\"\n{}",
            SYNC.replace("out.jsonl", "in.csv").replace("jsonl", "csv")
        ));
        let e = dag(&text).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("task.extract.sink.path"), "{e}");
        assert_eq!(e.line, 12, "{e}");
        // A literal key inside a task is refused like one at the top.
        let text = with_tasks(&format!(
            "[[task]]\nname = \"x\"\n{}",
            SYNC.replace(
                "id = \"keep\"",
                "id = \"keep\", email = { hash = \"hmac-sha256\", key = \"pepper-canary\" }"
            )
        ));
        let e = dag(&text).unwrap_err();
        assert!(e.message.contains("literal secret"), "{e}");
        assert!(!e.to_string().contains("canary"));
    }

    #[test]
    fn schedule_zone_and_webhook_are_checked() {
        let bad =
            HEAD.replace("@daily", "every night") + "[[task]]\nname = \"a\"\ntype = \"empty\"\n";
        let e = dag(&bad).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("pipeline.schedule"));
        let zone =
            format!("{HEAD}timezone = \"Mars/Base\"\n[[task]]\nname = \"a\"\ntype = \"empty\"\n");
        assert_eq!(
            dag(&zone).unwrap_err().key.as_deref(),
            Some("pipeline.timezone")
        );
        let hook = format!(
            "{HEAD}on_failure_webhook = \"https://hooks.example/T0/canary\"\n[[task]]\nname = \"a\"\ntype = \"empty\"\n"
        );
        let e = dag(&hook).unwrap_err();
        assert!(e.message.contains("secret reference"), "{e}");
        assert!(!e.to_string().contains("canary"));
    }

    #[test]
    fn references_of_a_registered_scheme_only() {
        let with = |text: &str, secrets: &SecretProviders<'_>| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("in.csv"), "id,email\n1,a@example.com\n").unwrap();
            parse(
                &dir.path().join("dag.toml"),
                text.to_string(),
                secrets,
                &Protected::nothing(),
            )
        };
        let vault = crate::with_vault();
        let builtin = SecretProviders::default();

        let hook = format!(
            "{HEAD}on_failure_webhook = \"vault:kv/hook\"\n[[task]]\nname = \"a\"\ntype = \"empty\"\n"
        );
        let e = with(&hook, &builtin).unwrap_err();
        assert!(e.message.contains("secret reference"), "{e}");
        let d = with(&hook, &vault).unwrap();
        assert_eq!(d.on_failure_webhook.as_deref(), Some("vault:kv/hook"));

        // A sql task's database is a reference only if its scheme is registered; otherwise it
        // is a SQLite file, as any other text is.
        let sql = with_tasks(
            "[[task]]\nname = \"a\"\ntype = \"sql\"\ndatabase = \"vault:kv/db\"\nsql = \"SELECT 1\"\n",
        );
        match &with(&sql, &vault).unwrap().tasks[0].kind {
            TaskKind::Sql {
                database: SqlDatabase::Postgres(r),
                ..
            } => assert_eq!(r, "vault:kv/db"),
            other => panic!("{other:?}"),
        }
        match &with(&sql, &builtin).unwrap().tasks[0].kind {
            TaskKind::Sql {
                database: SqlDatabase::Sqlite(path),
                ..
            } => assert!(path.ends_with("vault:kv/db"), "{path:?}"),
            other => panic!("{other:?}"),
        }

        // A policy key, in the secret scan and in the policy's own check.
        let sync = format!(
            "{HEAD}[source]\ntype = \"csv\"\npath = \"in.csv\"\n[policy]\nfields.id = {{ hash = \"hmac-sha256\", key = \"vault:kv/pepper\" }}\n[sink]\ntype = \"jsonl\"\npath = \"o.jsonl\"\n"
        );
        let e = with(&sync, &builtin).unwrap_err();
        assert!(e.message.contains("literal secret"), "{e}");
        match &with(&sync, &vault).unwrap().tasks[0].kind {
            TaskKind::Sync(plan) => {
                assert_eq!(plan.policy.key_references(), ["vault:kv/pepper"])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_one_sync_file_is_a_dag_of_one_task() {
        let d = dag(&format!("{HEAD}[source]\ntype = \"csv\"\npath = \"in.csv\"\n[policy]\nfields.id = \"keep\"\n[sink]\ntype = \"jsonl\"\npath = \"o.jsonl\"\n")).unwrap();
        assert_eq!(d.tasks.len(), 1);
        assert_eq!(d.tasks[0].name, SYNC_TASK);
        match &d.tasks[0].kind {
            TaskKind::Sync(plan) => assert_eq!(plan.name, "nightly"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_templates_are_refused_when_the_file_is_read() {
        let text = with_tasks(
            "[[task]]\nname = \"a\"\ntype = \"sql\"\ndatabase = \"x.db\"\nsql = \"SELECT '{{ tpyo }}'\"\n",
        );
        let e = dag(&text).unwrap_err();
        assert!(e.message.contains("tpyo"), "{e}");
        assert_eq!(e.line, 9, "{e}");
        let ok = text.replace("tpyo", "conf.label");
        assert!(dag(&ok).is_ok());
    }

    #[test]
    fn templates_render_known_values_only() {
        let vars = BTreeMap::from([("ds".to_string(), "2026-12-01".to_string())]);
        assert_eq!(
            render("out/{{ ds }}.csv", &vars).unwrap(),
            "out/2026-12-01.csv"
        );
        assert!(
            render("{{ nope }}", &vars)
                .unwrap_err()
                .contains("data_interval_start")
        );
        assert!(render("{{ ds", &vars).is_err());
    }
}
