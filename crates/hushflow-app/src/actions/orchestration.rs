//! Orchestration over the metadata store: trigger, backfill, pause and unpause, clear, prune and
//! migrate, and the queries behind `runs`, `tasks`, `logs` and `pipelines`. Running the
//! scheduler and workers is the front end's (it provides the executor).

use crate::views::{LogView, PipelineView, RunView, TaskView, TryView, VIEW_VERSION};
use crate::{Actor, Error, Result, Session};
use hushflow_scheduler::store::{RunRow, Store};
use hushflow_scheduler::{Clock, NewRun, SystemClock};
use hushflow_spec::dag::{self, Dag, TaskKind};
use hushflow_spec::schedule::{Interval, parse_instant, rfc3339, rfc3339_millis};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Definitions are registered under their absolute path: a worker started elsewhere resolves
/// the file's relative paths the same way.
pub fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Which definition a run was made from, and why that may not be what the file says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefinitionUsed {
    /// The pipeline file, read and registered now.
    File,
    /// The definition stored when the pipeline was last registered; its file loads now.
    Stored,
    /// The stored definition, while the file itself fails validation (or is gone): the run
    /// does what the file said when it last validated, not what it says now.
    StoredFileInvalid {
        /// The pipeline file the definition was registered from.
        file: PathBuf,
        /// Its first validation error (file, line, key and what is wrong; never a value).
        error: String,
    },
}

impl DefinitionUsed {
    /// `file`, `stored` or `stored_file_invalid`, for JSON output.
    pub fn as_str(&self) -> &'static str {
        match self {
            DefinitionUsed::File => "file",
            DefinitionUsed::Stored => "stored",
            DefinitionUsed::StoredFileInvalid { .. } => "stored_file_invalid",
        }
    }

    /// What a person should be told, when the run is not made from the file as it is now.
    pub fn warning(&self, pipeline: &str) -> Option<String> {
        match self {
            DefinitionUsed::StoredFileInvalid { file, error } => Some(format!(
                "{pipeline}: its file fails validation now ({error}); the run uses the last \
                 stored definition, from when the file last validated. Fix the file (`hushflow \
                 validate {}` shows every error) and trigger again to run what it says",
                file.display()
            )),
            _ => None,
        }
    }
}

/// Whether a registered pipeline's file still loads: its first error when it does not.
fn file_problem(session: &Session, file: &Path) -> Option<String> {
    if !file.is_file() {
        return Some(format!("{}: the file is gone", file.display()));
    }
    dag::load(file, &crate::secrets::providers(None), &session.protected())
        .err()
        .map(|e| e.to_string())
}

/// How a caller names a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineRef<'a> {
    /// A pipeline file (read, validated and registered on the spot) or a registered name: the
    /// CLI, whose user may read the files anyway.
    FileOrName(&'a str),
    /// A registered pipeline's name only, never a path: a remote caller (the HTTP API) must not
    /// make the server read a file of its choosing.
    Registered(&'a str),
}

impl PipelineRef<'_> {
    /// The name or path as given.
    pub fn as_str(&self) -> &str {
        match self {
            PipelineRef::FileOrName(p) | PipelineRef::Registered(p) => p,
        }
    }
}

/// A pipeline named by a caller: a file (registered now, signed with the session's definition
/// key), or a registered name (its stored definition, checked like a worker checks it).
fn resolve_pipeline(
    session: &Session,
    store: &mut Store,
    pipeline: &PipelineRef<'_>,
) -> Result<(Dag, DefinitionUsed)> {
    let protected = session.protected();
    let (pipeline, files) = match pipeline {
        PipelineRef::FileOrName(p) => (*p, true),
        PipelineRef::Registered(p) => (*p, false),
    };
    let path = Path::new(pipeline);
    if files && path.is_file() {
        let d = dag::load(
            &absolute(path),
            &crate::secrets::providers(None),
            &protected,
        )
        .map_err(Error::invalid)?;
        let signer = session.definition_signer()?;
        store
            .register(&d, Some(&signer), SystemClock.now())
            .map_err(Error::failed)?;
        return Ok((d, DefinitionUsed::File));
    }
    let Some(row) = store.pipeline(pipeline).map_err(Error::failed)? else {
        return Err(Error::not_found(format!(
            "{pipeline}: no such pipeline file, and no registered pipeline has that name; give \
             the file, or start a scheduler over its directory first"
        )));
    };
    let stored = store
        .definition(&row.fingerprint)
        .map_err(Error::failed)?
        .ok_or_else(|| {
            Error::failed(format!(
                "the definition of {pipeline} is missing from the metadata store"
            ))
        })?;
    // A run made from it executes only if workers accept it: refuse it here too.
    let mut definition = stored.as_ref();
    definition.pipeline = &row.name;
    session
        .definition_trust()?
        .check(&definition)
        .map_err(|e| Error::failed(format!("{e}; trigger the pipeline's file instead")))?;
    let d = dag::parse(
        &stored.file,
        stored.text,
        &crate::secrets::providers(None),
        &protected,
    )
    .map_err(Error::invalid)?;
    let used = match file_problem(session, &stored.file) {
        None => DefinitionUsed::Stored,
        Some(error) => DefinitionUsed::StoredFileInvalid {
            file: stored.file.clone(),
            error,
        },
    };
    Ok((d, used))
}

/// Whether a registered pipeline is paused (its new runs wait for `unpause`).
fn is_paused(store: &mut Store, name: &str) -> Result<bool> {
    Ok(store
        .pipeline(name)
        .map_err(Error::failed)?
        .is_some_and(|p| p.paused))
}

/// Words that make a `--conf` key look like it holds a secret (matched anywhere in the key,
/// in any case).
const SECRET_WORDS: [&str; 10] = [
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "credential",
    "private_key",
    "private-key",
];

/// Checks one `--conf` pair. Values are substituted into the pipeline's text: keep them to what
/// cannot break out of a TOML string or a SQL literal. They are data, stored in plaintext in the
/// metadata store and shown in run history, so a key that names a secret is refused (secrets
/// are secret references in the pipeline file). Errors name the key, never the value.
pub fn check_conf(key: &str, value: &str) -> Result<()> {
    let safe = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:+/@ ".contains(c))
    };
    if !safe(key) {
        return Err(Error::invalid(
            "--conf: keys may use letters, digits, spaces and - _ . : + / @ only",
        ));
    }
    let lower = key.to_ascii_lowercase();
    if let Some(word) = SECRET_WORDS.iter().find(|w| lower.contains(*w)) {
        return Err(Error::invalid(format!(
            "--conf {key}: the key looks like a secret (`{word}`); run configuration is stored in \
             plaintext in the metadata store and shown in run history, so it takes no secrets. \
             Put a secret reference (env:NAME, file:PATH or keyring:NAME) in the pipeline file \
             instead"
        )));
    }
    if !safe(value) {
        return Err(Error::invalid(format!(
            "--conf {key}: keys and values may use letters, digits, spaces and - _ . : + / @ only"
        )));
    }
    Ok(())
}

/// A run's configuration from `KEY=VALUE` pairs, each checked as [`trigger`] checks it.
pub fn conf_from_pairs(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut conf = BTreeMap::new();
    for pair in pairs {
        // The argument is not quoted: it may be a secret given by mistake.
        let Some((k, v)) = pair.split_once('=') else {
            return Err(Error::invalid(
                "--conf wants KEY=VALUE; one of them has no `=`",
            ));
        };
        check_conf(k, v)?;
        conf.insert(k.to_string(), v.to_string());
    }
    Ok(conf)
}

/// A manual run created by [`trigger`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Triggered {
    /// The pipeline's registered name.
    pub pipeline: String,
    /// The run's number.
    pub run: i64,
    /// The run's id: `manual__` and the time it was created.
    pub run_id: String,
    /// The pipeline is paused, so the run waits for `unpause`.
    pub paused: bool,
    /// The definition the run was made from.
    pub definition: DefinitionUsed,
}

impl Triggered {
    /// What to warn the person who triggered about (the run uses a definition its file no
    /// longer matches), naming the file and its first error, never a value.
    pub fn warning(&self) -> Option<String> {
        self.definition.warning(&self.pipeline)
    }
}

/// Creates a manual run of `pipeline` (a file, registered on the spot, or a registered name)
/// with the run configuration `conf` (its template values `{{ conf.KEY }}`). It covers the
/// latest complete interval of the schedule, or the instant now. Audited as `trigger`.
pub fn trigger(
    session: &Session,
    actor: &Actor,
    pipeline: &str,
    conf: &BTreeMap<String, String>,
) -> Result<Triggered> {
    trigger_pipeline(session, actor, PipelineRef::FileOrName(pipeline), conf)
}

/// [`trigger`] of a pipeline named as `pipeline` says: a remote caller gives
/// [`PipelineRef::Registered`], so no file is read on its behalf.
pub fn trigger_pipeline(
    session: &Session,
    actor: &Actor,
    pipeline: PipelineRef<'_>,
    conf: &BTreeMap<String, String>,
) -> Result<Triggered> {
    for (k, v) in conf {
        check_conf(k, v)?;
    }
    let mut store = session.open_store()?;
    let (d, definition) = resolve_pipeline(session, &mut store, &pipeline)?;
    let now = SystemClock.now();
    let interval = d
        .schedule
        .as_ref()
        .and_then(|s| s.due(i64::MIN / 4, now, false, 1).pop())
        .unwrap_or(Interval {
            start: now,
            end: now,
        });
    let run = NewRun {
        run_id: format!("manual__{}", rfc3339_millis(now)),
        run_type: "manual".into(),
        logical_date: interval.start,
        interval,
        conf: serde_json::to_string(conf).map_err(Error::failed)?,
    };
    let id = store
        .create_run(&d, &run, now)
        .map_err(Error::failed)?
        .ok_or_else(|| Error::failed("a run with this id exists already; try again"))?;
    let stale = match definition {
        DefinitionUsed::StoredFileInvalid { .. } => {
            "; the stored definition, its file failing validation"
        }
        _ => "",
    };
    session.audit_pipeline(
        actor,
        "trigger",
        &d.name,
        format!("run {} ({}){stale}", id, run.run_id),
    )?;
    Ok(Triggered {
        paused: is_paused(&mut store, &d.name)?,
        pipeline: d.name,
        run: id,
        run_id: run.run_id,
        definition,
    })
}

/// The runs a [`backfill`] created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backfilled {
    /// The pipeline's registered name.
    pub pipeline: String,
    /// The schedule's intervals in the range.
    pub intervals: usize,
    /// The numbers of the runs created.
    pub created: Vec<i64>,
    /// Intervals that had a run already.
    pub existing: usize,
    /// The start of the range, included, as RFC 3339.
    pub from: String,
    /// The end of the range, excluded, as RFC 3339.
    pub to: String,
    /// The pipeline is paused, so the runs wait for `unpause`.
    pub paused: bool,
    /// What the caller should be told (tasks whose backfill cannot reload the past).
    pub warnings: Vec<String>,
}

/// A run for every interval of the pipeline's schedule in `[from, to)` (dates or times in the
/// schedule's time zone). An interval that has a run already is left alone. Audited as
/// `backfill`.
pub fn backfill(
    session: &Session,
    actor: &Actor,
    pipeline: &str,
    from: &str,
    to: &str,
) -> Result<Backfilled> {
    let mut store = session.open_store()?;
    let (d, _) = resolve_pipeline(session, &mut store, &PipelineRef::FileOrName(pipeline))?;
    let Some(schedule) = &d.schedule else {
        return Err(Error::invalid(format!(
            "{} has no schedule, so it has no intervals to backfill; use `hushflow trigger`",
            d.name
        )));
    };
    let tz = Some(schedule.timezone());
    let from = parse_instant(from, tz).map_err(|m| Error::invalid(format!("--from {m}")))?;
    let to = parse_instant(to, tz).map_err(|m| Error::invalid(format!("--to {m}")))?;
    if to <= from {
        return Err(Error::invalid("--to must be after --from"));
    }
    // An incremental source reads after its committed position, whatever the interval: a
    // backfill of such a task moves only what changed since the last run, not the past.
    let mut warnings = Vec::new();
    for task in &d.tasks {
        if let TaskKind::Sync(plan) = &task.kind
            && plan.incremental()
        {
            warnings.push(format!(
                "task {} reads its source by cursor, so its backfill runs read only records \
                 changed since the last committed position, not each interval's; use the \
                 interval in the source (`{{{{ data_interval_start }}}}` in a query) or \
                 `run --full-refresh` to reload the past",
                task.name
            ));
        }
    }
    let now = SystemClock.now();
    let intervals = schedule.due(from, to, true, 100_000);
    let (mut created, mut existing) = (Vec::new(), 0);
    for interval in &intervals {
        let run = NewRun {
            run_id: format!("backfill__{}", rfc3339(interval.start)),
            run_type: "backfill".into(),
            logical_date: interval.start,
            interval: *interval,
            conf: "{}".into(),
        };
        match store.create_run(&d, &run, now).map_err(Error::failed)? {
            Some(id) => created.push(id),
            None => existing += 1,
        }
    }
    session.audit_pipeline(
        actor,
        "backfill",
        &d.name,
        format!(
            "{} run(s) from {} to {}",
            created.len(),
            rfc3339(from),
            rfc3339(to)
        ),
    )?;
    Ok(Backfilled {
        paused: is_paused(&mut store, &d.name)?,
        pipeline: d.name,
        intervals: intervals.len(),
        created,
        existing,
        from: rfc3339(from),
        to: rfc3339(to),
        warnings,
    })
}

/// Pauses (`paused`) or unpauses a registered pipeline (named, or given as its file); returns
/// its name. Audited as `pause` or `unpause`.
pub fn set_paused(
    session: &Session,
    actor: &Actor,
    pipeline: &str,
    paused: bool,
) -> Result<String> {
    set_paused_pipeline(session, actor, PipelineRef::FileOrName(pipeline), paused)
}

/// [`set_paused`] of a pipeline named as `pipeline` says: a remote caller gives
/// [`PipelineRef::Registered`], so no file is read on its behalf.
pub fn set_paused_pipeline(
    session: &Session,
    actor: &Actor,
    pipeline: PipelineRef<'_>,
    paused: bool,
) -> Result<String> {
    let mut store = session.open_store()?;
    let name = match pipeline {
        PipelineRef::FileOrName(p) if Path::new(p).is_file() => {
            resolve_pipeline(session, &mut store, &pipeline)?.0.name
        }
        _ => pipeline.as_str().to_string(),
    };
    if !store.set_paused(&name, paused).map_err(Error::failed)? {
        return Err(Error::not_found(format!(
            "no registered pipeline is called {name}"
        )));
    }
    let action = if paused { "pause" } else { "unpause" };
    session.audit_pipeline(actor, action, &name, format!("{action}d"))?;
    Ok(name)
}

/// The tasks a [`clear`] queued again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleared {
    /// The run's number.
    pub run: i64,
    /// Empty when no ended task matched (nothing changed, nothing audited).
    pub cleared: Vec<String>,
}

/// Runs a finished run's tasks again: the failed ones when `tasks` is empty, else the named
/// ones, each with everything downstream of it. Audited as `clear`.
pub fn clear(
    session: &Session,
    actor: &Actor,
    run: &str,
    tasks: &[String],
    pipeline: Option<&str>,
) -> Result<Cleared> {
    let mut store = session.open_store()?;
    let r = one_run(&mut store, run, pipeline)?;
    let known: Vec<String> = store
        .tasks_of(r.id)
        .map_err(Error::failed)?
        .into_iter()
        .map(|t| t.task)
        .collect();
    if let Some(unknown) = tasks.iter().find(|t| !known.contains(t)) {
        return Err(Error::not_found(format!(
            "run {} has no task {unknown}; `hushflow tasks {}` lists them",
            r.id, r.id
        )));
    }
    let cleared = store.clear_tasks(r.id, tasks).map_err(Error::failed)?;
    if !cleared.is_empty() {
        session.audit_pipeline(
            actor,
            "clear",
            &r.pipeline,
            format!("run {} ({}): {}", r.id, r.run_id, cleared.join(", ")),
        )?;
    }
    Ok(Cleared { run: r.id, cleared })
}

/// What a [`prune`] deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// How many runs were deleted.
    pub runs: u64,
    /// How many task instances were deleted with them.
    pub tasks: u64,
    /// How many tries (and their logs) were deleted with them.
    pub tries: u64,
    /// Runs that ended before this time (RFC 3339) were deleted.
    pub before: String,
}

/// Deletes finished runs that ended more than `older_than` ago (of one pipeline, or of all),
/// with their tasks, tries and logs. Each pipeline's newest scheduled run stays. Audited as
/// `prune` with the counts.
pub fn prune(
    session: &Session,
    actor: &Actor,
    older_than: Duration,
    pipeline: Option<&str>,
) -> Result<Pruned> {
    let mut store = session.open_store()?;
    let before = SystemClock.now() - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX / 2);
    let (runs, tasks, tries) = store.prune(before, pipeline).map_err(Error::failed)?;
    let counts = BTreeMap::from([
        ("runs".to_string(), runs),
        ("tasks".to_string(), tasks),
        ("tries".to_string(), tries),
    ]);
    session.audit_task(
        actor,
        "prune",
        pipeline.unwrap_or("*"),
        format!("finished runs that ended before {}", rfc3339(before)),
        counts,
        "success",
    )?;
    Ok(Pruned {
        runs,
        tasks,
        tries,
        before: rfc3339(before),
    })
}

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The migrations applied now (`version name`), oldest first.
    pub applied: Vec<String>,
    /// The schema's version after the migrations.
    pub schema_version: i64,
    /// Which store (`sqlite PATH` or `postgres (url hidden)`).
    pub store: String,
}

/// Applies the metadata schema's missing migrations (as a role that may create tables).
pub fn migrate(session: &Session) -> Result<Migrated> {
    let config = session.store_config()?;
    let (mut store, applied) = config.migrate(SystemClock.now()).map_err(Error::failed)?;
    Ok(Migrated {
        applied,
        schema_version: store.schema_version().map_err(Error::failed)?,
        store: format!("{config:?}"),
    })
}

/// A definition signing key: where it is and its public key (what workers are given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionKey {
    /// `ed25519:…`
    pub public_key: String,
    /// Where the signing key is: a file, or the reference `--definition-key` gave.
    pub location: String,
    /// Made now (else it existed).
    pub created: bool,
}

/// Makes a key that signs pipeline definitions: in `out` (a new file, 0600), or else the state
/// directory's (unless it has one: then that one is shown). Audited as `definition-key.create`
/// when a key is made.
pub fn create_definition_key(
    session: &Session,
    actor: &Actor,
    out: Option<&Path>,
) -> Result<DefinitionKey> {
    let (signer, location, created) = match out {
        Some(path) => (
            crate::definition_keys::create(path)?,
            path.display().to_string(),
            true,
        ),
        None => {
            if let Some(reference) = session.definition_key_reference() {
                return Err(Error::invalid(format!(
                    "--definition-key names a key already ({reference}); `hushflow db \
                     definition-key show` prints its public key, and --out FILE makes a new one"
                )));
            }
            let file = session.definition_key_file();
            let existing = crate::definition_keys::read(&file)?;
            let created = existing.is_none();
            let signer = match existing {
                Some(signer) => signer,
                None => crate::definition_keys::load_or_create(&file)?,
            };
            (signer, file.display().to_string(), created)
        }
    };
    let public_key = signer.public_key().to_string();
    if created {
        session.audit(
            actor,
            "definition-key.create",
            format!("definition signing key in {location}, public key {public_key}"),
            BTreeMap::new(),
            "success",
        )?;
    }
    Ok(DefinitionKey {
        public_key,
        location,
        created,
    })
}

/// The public key of the key this session signs definitions with (`--definition-key`, or the
/// state directory's; none is made).
pub fn definition_public_key(session: &Session) -> Result<DefinitionKey> {
    let (signer, location) = match session.definition_key_reference() {
        Some(reference) => (session.definition_signer()?, reference.to_string()),
        None => {
            let file = session.definition_key_file();
            let signer = crate::definition_keys::read(&file)?.ok_or_else(|| {
                Error::not_found(format!(
                    "{} has no definition signing key yet; `hushflow db definition-key create` \
                     makes one (a scheduler or `trigger FILE` also makes it when it first \
                     registers a pipeline)",
                    session.state().root().display()
                ))
            })?;
            (signer, file.display().to_string())
        }
    };
    Ok(DefinitionKey {
        public_key: signer.public_key().to_string(),
        location,
        created: false,
    })
}

/// The least-privilege grants for a PostgreSQL metadata store, as SQL for its owner to run.
pub fn grants(roles: &hushflow_scheduler::store::grants::Roles) -> Result<String> {
    hushflow_scheduler::store::grants::grants(roles).map_err(Error::invalid)
}

/// The run `run` names: its number, or its run id (with `pipeline` when two pipelines share it).
fn one_run(store: &mut Store, run: &str, pipeline: Option<&str>) -> Result<RunRow> {
    let mut found = store.find_run(run, pipeline).map_err(Error::failed)?;
    match found.len() {
        0 => Err(Error::not_found(format!(
            "no run {run}; `hushflow runs` lists them"
        ))),
        1 => Ok(found.remove(0)),
        _ => Err(Error::invalid(format!(
            "several pipelines have a run {run}; add --pipeline NAME"
        ))),
    }
}

fn run_view(store: &mut Store, run: &RunRow) -> Result<RunView> {
    let states = store.task_states(run.id).map_err(Error::failed)?;
    Ok(RunView::from_row(run, states))
}

/// The newest `limit` runs (of one pipeline, or of all), newest first.
pub fn runs(session: &Session, pipeline: Option<&str>, limit: i64) -> Result<Vec<RunView>> {
    let mut store = session.open_store()?;
    if let Some(name) = pipeline
        && store.pipeline(name).map_err(Error::failed)?.is_none()
    {
        return Err(Error::not_found(format!(
            "no pipeline is registered as {name}; `hushflow pipelines` lists them"
        )));
    }
    let rows = store.runs(pipeline, limit).map_err(Error::failed)?;
    rows.iter().map(|r| run_view(&mut store, r)).collect()
}

/// The registered pipelines: paused or not, their next run and how their newest run went.
pub fn pipelines(session: &Session) -> Result<Vec<PipelineView>> {
    let mut store = session.open_store()?;
    let now = SystemClock.now();
    Ok(store
        .pipelines()
        .map_err(Error::failed)?
        .into_iter()
        .map(|(p, last)| PipelineView::from_row(&p, last, now))
        .collect())
}

/// A run and its tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct RunTasks {
    /// The run, with how many of its tasks are in each state.
    pub run: RunView,
    /// In dependency order.
    pub tasks: Vec<TaskView>,
}

fn run_tasks(store: &mut Store, run: &RunRow) -> Result<RunTasks> {
    let tasks = store.tasks_of(run.id).map_err(Error::failed)?;
    Ok(RunTasks {
        run: run_view(store, run)?,
        tasks: tasks
            .into_iter()
            .map(|t| TaskView::from_row(run, t))
            .collect(),
    })
}

/// The tasks of the run `run` names (its number, or its run id with `pipeline` when two
/// pipelines share it).
pub fn tasks(session: &Session, run: &str, pipeline: Option<&str>) -> Result<RunTasks> {
    let mut store = session.open_store()?;
    let r = one_run(&mut store, run, pipeline)?;
    run_tasks(&mut store, &r)
}

/// The tasks of each run numbered in `runs` (one connection for all of them).
pub fn tasks_of_runs(session: &Session, runs: &[i64]) -> Result<Vec<RunTasks>> {
    let mut store = session.open_store()?;
    let mut found = Vec::new();
    for id in runs {
        for r in store
            .find_run(&id.to_string(), None)
            .map_err(Error::failed)?
        {
            found.push(run_tasks(&mut store, &r)?);
        }
    }
    Ok(found)
}

/// A task's tries and their logs.
pub fn logs(session: &Session, run: &str, task: &str, pipeline: Option<&str>) -> Result<LogView> {
    let mut store = session.open_store()?;
    let r = one_run(&mut store, run, pipeline)?;
    let Some(t) = store
        .tasks_of(r.id)
        .map_err(Error::failed)?
        .into_iter()
        .find(|t| t.task == task)
    else {
        return Err(Error::not_found(format!(
            "run {} has no task {task}; `hushflow tasks {}` lists them",
            r.id, r.id
        )));
    };
    let tries = store.tries(t.id).map_err(Error::failed)?;
    Ok(LogView {
        version: VIEW_VERSION,
        run: r.id,
        pipeline: r.pipeline,
        run_id: r.run_id,
        task: t.task,
        state: t.state.as_str().to_string(),
        tries: tries.into_iter().map(TryView::from_row).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use hushflow_scheduler::{
        Claim, Executor, LiveTry, Scheduler, SchedulerOptions, TryOutcome, WorkerOptions,
        run_worker,
    };
    use std::sync::atomic::AtomicBool;

    const DAG: &str = r#"[pipeline]
name = "nightly"
schedule = "@daily"

[[task]]
name = "first"
type = "empty"

[[task]]
name = "second"
type = "empty"
depends_on = ["first"]
"#;

    struct Workspace {
        dir: tempfile::TempDir,
        session: Session,
    }

    fn workspace() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nightly.toml"), DAG).unwrap();
        let state = hushflow_state::StateDir::open(dir.path().join("state")).unwrap();
        let session = Session::new(state, hushflow_secrets::Redactor::new());
        Workspace { dir, session }
    }

    impl Workspace {
        fn file(&self) -> String {
            self.dir.path().join("nightly.toml").display().to_string()
        }

        /// Schedules and executes (every try succeeds) until no run is queued or running.
        fn execute(&self) {
            struct Succeed;
            impl Executor for Succeed {
                fn execute(&self, _: &Claim, live: &LiveTry) -> TryOutcome {
                    live.append("done\n");
                    TryOutcome {
                        success: true,
                        log: live.snapshot(),
                        ..Default::default()
                    }
                }
            }
            let config = self.session.store_config().unwrap();
            let clock = SystemClock;
            let mut scheduler = Scheduler::new(
                self.session.open_store().unwrap(),
                &clock,
                SchedulerOptions::default(),
            );
            let mut options = WorkerOptions::new(1);
            options.poll = Duration::from_millis(10);
            options.until_idle = true;
            for _ in 0..20 {
                scheduler.tick(&[]).unwrap();
                run_worker(&config, &clock, &Succeed, &options, &AtomicBool::new(false)).unwrap();
            }
        }

        fn audit(&self) -> Vec<(String, String, Option<String>)> {
            self.session
                .state()
                .audit_log()
                .unwrap()
                .list()
                .unwrap()
                .into_iter()
                .map(|r| (r.actor, r.action, r.detail))
                .collect()
        }
    }

    /// Triggering a registered pipeline by name whose file now fails validation runs the
    /// stored definition, and says so: the file and its first error, never the value in it.
    #[test]
    fn a_trigger_by_name_warns_when_the_file_fails_validation_now() {
        let ws = workspace();
        let ada = Actor::api_user("ada");
        let none = BTreeMap::new();
        let first = trigger(&ws.session, &ada, &ws.file(), &none).unwrap();
        assert_eq!(first.definition, DefinitionUsed::File);
        assert_eq!(first.warning(), None);
        let again = trigger(&ws.session, &ada, "nightly", &none).unwrap();
        assert_eq!(again.definition, DefinitionUsed::Stored);
        assert_eq!(again.warning(), None);

        let broken = DAG.replace(
            "type = \"empty\"\n\n[[task]]",
            "type = \"empty\"\ncolour = \"blue-canary\"\n\n[[task]]",
        );
        assert_ne!(broken, DAG);
        std::fs::write(ws.dir.path().join("nightly.toml"), broken).unwrap();
        let stale = trigger(&ws.session, &ada, "nightly", &none).unwrap();
        assert_eq!(stale.definition.as_str(), "stored_file_invalid");
        let warning = stale.warning().unwrap();
        assert!(warning.contains("nightly.toml:8:"), "{warning}");
        assert!(warning.contains("colour"), "{warning}");
        assert!(warning.contains("last stored definition"), "{warning}");
        assert!(!warning.contains("canary"), "{warning}");
        assert_eq!(runs(&ws.session, Some("nightly"), 10).unwrap().len(), 3);
        let audit = ws.audit();
        let detail = audit.last().unwrap().2.as_deref().unwrap();
        assert!(detail.contains("its file failing validation"), "{detail}");

        std::fs::remove_file(ws.dir.path().join("nightly.toml")).unwrap();
        let gone = trigger(&ws.session, &ada, "nightly", &none).unwrap();
        assert!(gone.warning().unwrap().contains("the file is gone"));
    }

    #[test]
    fn a_registered_reference_never_reads_the_file_it_names() {
        let ws = workspace();
        let ada = Actor::api_user("ada");
        let none = BTreeMap::new();
        // A path, even of a valid pipeline file, is no registered name: nothing is read,
        // registered or run, and pausing it finds no pipeline.
        let file = ws.file();
        let e =
            trigger_pipeline(&ws.session, &ada, PipelineRef::Registered(&file), &none).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
        assert!(pipelines(&ws.session).unwrap().is_empty());
        let e = set_paused_pipeline(&ws.session, &ada, PipelineRef::Registered(&file), true)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
        // Once registered (by the CLI's file), the name works.
        trigger(&ws.session, &ada, &file, &none).unwrap();
        let by_name =
            trigger_pipeline(&ws.session, &ada, PipelineRef::Registered("nightly"), &none).unwrap();
        assert_eq!(by_name.definition, DefinitionUsed::Stored);
        set_paused_pipeline(&ws.session, &ada, PipelineRef::Registered("nightly"), true).unwrap();
        assert!(pipelines(&ws.session).unwrap()[0].paused);
    }

    #[test]
    fn actions_answer_with_views_and_audit_their_actor() {
        let ws = workspace();
        let ada = Actor::api_user("ada");
        let conf = BTreeMap::from([("label".to_string(), "first".to_string())]);
        let t = trigger(&ws.session, &ada, &ws.file(), &conf).unwrap();
        assert_eq!(
            (t.pipeline.as_str(), t.run, t.paused),
            ("nightly", 1, false)
        );
        assert!(t.run_id.starts_with("manual__"), "{t:?}");

        let listed = runs(&ws.session, Some("nightly"), 10).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].version, VIEW_VERSION);
        assert_eq!((listed[0].run, listed[0].state.as_str()), (1, "queued"));
        let p = pipelines(&ws.session).unwrap();
        assert_eq!(p[0].pipeline, "nightly");
        assert!(p[0].next_run.is_some(), "{p:?}");

        ws.execute();
        let done = tasks(&ws.session, "1", None).unwrap();
        assert_eq!(done.run.state, "success");
        let names: Vec<(&str, &str)> = done
            .tasks
            .iter()
            .map(|t| (t.task.as_str(), t.state.as_str()))
            .collect();
        assert_eq!(names, [("first", "success"), ("second", "success")]);
        let log = logs(&ws.session, &t.run_id, "second", Some("nightly")).unwrap();
        assert_eq!(log.tries.len(), 1);
        assert_eq!(log.tries[0].log.as_deref(), Some("done\n"));

        let c = clear(&ws.session, &ada, "1", &["second".to_string()], None).unwrap();
        assert_eq!(c.cleared, ["second"]);
        assert_eq!(runs(&ws.session, None, 10).unwrap()[0].state, "queued");

        let airflow = Actor::airflow_task("dags.nightly");
        assert_eq!(
            set_paused(&ws.session, &airflow, "nightly", true).unwrap(),
            "nightly"
        );
        let b = backfill(
            &ws.session,
            &airflow,
            &ws.file(),
            "2024-01-01",
            "2024-01-04",
        )
        .unwrap();
        assert_eq!((b.intervals, b.created.len(), b.existing), (3, 3, 0));
        assert!(b.paused && b.warnings.is_empty(), "{b:?}");
        let again = backfill(&ws.session, &airflow, "nightly", "2024-01-01", "2024-01-04");
        assert_eq!(again.unwrap().existing, 3);

        let pruned = prune(&ws.session, &ada, Duration::ZERO, Some("nightly")).unwrap();
        assert_eq!(pruned.runs, 0, "nothing has ended since the clear");

        let audit = ws.audit();
        let who: Vec<(&str, &str)> = audit
            .iter()
            .map(|(a, b, _)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            who,
            [
                ("api-user:ada", "trigger"),
                ("api-user:ada", "clear"),
                ("airflow-task:dags.nightly", "pause"),
                ("airflow-task:dags.nightly", "backfill"),
                ("airflow-task:dags.nightly", "backfill"),
                ("api-user:ada", "prune"),
            ]
        );
        assert_eq!(
            audit[1].2.as_deref(),
            Some(&*format!("run 1 ({}): second", t.run_id))
        );
    }

    #[test]
    fn what_does_not_exist_is_not_found_and_bad_conf_is_invalid() {
        let ws = workspace();
        let actor = Actor::os_user();
        let e = trigger(&ws.session, &actor, "nope", &BTreeMap::new()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(
            tasks(&ws.session, "9", None).unwrap_err().kind,
            ErrorKind::NotFound
        );
        assert_eq!(
            runs(&ws.session, Some("nope"), 1).unwrap_err().kind,
            ErrorKind::NotFound
        );
        assert_eq!(
            set_paused(&ws.session, &actor, "nope", true)
                .unwrap_err()
                .kind,
            ErrorKind::NotFound
        );
        let quote = BTreeMap::from([("k".to_string(), "a'b".to_string())]);
        let e = trigger(&ws.session, &actor, &ws.file(), &quote).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert_eq!(
            conf_from_pairs(&["novalue".to_string()]).unwrap_err().kind,
            ErrorKind::Invalid
        );
        assert_eq!(
            conf_from_pairs(&["a=b".to_string()]).unwrap(),
            BTreeMap::from([("a".to_string(), "b".to_string())])
        );
        assert!(ws.audit().is_empty(), "{:?}", ws.audit());
    }

    /// Run configuration is stored in plaintext and shown in run history: a key that names a
    /// secret is refused, and no error quotes the value.
    #[test]
    fn secret_looking_conf_keys_are_refused_without_their_value() {
        let ws = workspace();
        let canary = "sk-live-conf-canary";
        for key in [
            "api_token",
            "PASSWORD",
            "db_passwd",
            "client-Secret",
            "apiKey",
            "crm_api_key",
            "aws_credentials",
            "private_key",
            "Token",
        ] {
            let e = conf_from_pairs(&[format!("{key}={canary}")]).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid, "{key}");
            assert!(e.message.contains("secret reference"), "{key}: {e}");
            assert!(e.message.contains(key), "the key is named: {e}");
            assert!(!e.message.contains(canary), "{e}");
            let conf = BTreeMap::from([(key.to_string(), canary.to_string())]);
            let e = trigger(&ws.session, &Actor::os_user(), &ws.file(), &conf).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid, "{key}");
            assert!(!e.message.contains(canary), "{e}");
        }
        // A pair without `=` may be a secret pasted alone: not quoted either.
        let e = conf_from_pairs(&[canary.to_string()]).unwrap_err();
        assert!(!e.message.contains(canary), "{e}");
        let e = conf_from_pairs(&[format!("label={canary}'")]).unwrap_err();
        assert!(!e.message.contains(canary), "{e}");
        // Ordinary keys still work.
        assert_eq!(
            conf_from_pairs(&["region=eu-west-1".to_string()]).unwrap()["region"],
            "eu-west-1"
        );
        assert!(runs(&ws.session, None, 10).unwrap().is_empty(), "no run");
        assert!(ws.audit().is_empty(), "{:?}", ws.audit());
    }

    /// Triggering a registered pipeline by name checks its stored definition as a worker would:
    /// text changed in the store, or a signature from another key, is refused.
    #[test]
    fn a_trigger_by_name_refuses_a_definition_changed_in_the_store() {
        let ws = workspace();
        let actor = Actor::os_user();
        trigger(&ws.session, &actor, &ws.file(), &BTreeMap::new()).unwrap();
        trigger(&ws.session, &actor, "nightly", &BTreeMap::new()).unwrap();
        let db = rusqlite::Connection::open(ws.session.state().root().join("metadata.db")).unwrap();
        db.execute_batch("UPDATE hf_definitions SET text = text || '# changed'")
            .unwrap();
        let e = trigger(&ws.session, &actor, "nightly", &BTreeMap::new()).unwrap_err();
        assert!(e.message.contains("does not match its fingerprint"), "{e}");
        // Another signing key: its workers would refuse the stored definition.
        let other = tempfile::tempdir().unwrap();
        let key = other.path().join("other.key");
        crate::definition_keys::create(&key).unwrap();
        let session = Session::new(
            hushflow_state::StateDir::open(ws.dir.path().join("state")).unwrap(),
            hushflow_secrets::Redactor::new(),
        )
        .with_definition_keys(Some(format!("file:{}", key.display())), None);
        trigger(&session, &actor, &ws.file(), &BTreeMap::new()).unwrap();
        let e = trigger(&ws.session, &actor, "nightly", &BTreeMap::new()).unwrap_err();
        assert!(
            e.message.contains("not from a key this worker trusts"),
            "{e}"
        );
        trigger(&session, &actor, "nightly", &BTreeMap::new()).unwrap();
    }
}
