//! The orchestration commands: `scheduler`, `worker`, `trigger`, `backfill`, `pause`,
//! `unpause`, `runs`, `tasks`, `logs`, `clear` and `db migrate`/`prune`, over the metadata
//! store. All but `scheduler` and `worker` parse their arguments, call the app layer's action
//! (`hushflow_app::actions::orchestration`) and print what it answers; those two run the
//! scheduler and workers here with the process executor (`executor.rs`).

use super::executor::ProcessExecutor;
use super::{Exit, Failure, Session, failure, invalid};
use crate::cli::Timing;
use hushflow_app::actions::orchestration::{self, RunTasks, absolute};
use hushflow_scheduler::store::{RunRow, StoreConfig};
use hushflow_scheduler::{
    Clock, RunState, Scheduler, SchedulerOptions, Store, SystemClock, WorkerOptions, run_worker,
};
use hushflow_spec::dag::{self, Dag};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// Where the metadata lives, from `--metadata` (a secret reference) or the state directory.
fn store_config(session: &Session<'_>) -> Result<StoreConfig, Failure> {
    Ok(session.app.store_config()?)
}

/// One view as one line of JSON.
fn to_json(view: &impl serde::Serialize) -> Result<String, Failure> {
    serde_json::to_string(view).map_err(failure)
}

fn open(config: &StoreConfig) -> Result<Store, Failure> {
    config.open(SystemClock.now()).map_err(failure)
}

/// SIGINT and SIGTERM ask for a graceful stop: no new claims, running tries finish.
fn stop_flag() -> Result<Arc<AtomicBool>, Failure> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(failure)?;
    }
    Ok(stop)
}

fn executor(session: &Session<'_>) -> Result<ProcessExecutor, Failure> {
    Ok(ProcessExecutor {
        exe: std::env::current_exe().map_err(failure)?,
        state_dir: session.state.root().to_path_buf(),
        master_key: session.master_key_arg.clone(),
        anchor_key: session.anchor_key_arg.clone(),
        master_key_ref: session.master_key.clone(),
        redactor: session.out.redactor.clone(),
        trust: session.app.definition_trust()?,
        audit: hushflow_app::Session::new(session.state.clone(), session.out.redactor.clone()),
        actor: session.actor.clone(),
    })
}

/// Worker options; the worker runs only definitions the session trusts (signed with the
/// definition key, or a key of --definition-public-key).
fn worker_options(
    session: &Session<'_>,
    concurrency: usize,
    timing: &Timing,
) -> Result<WorkerOptions, Failure> {
    let mut o = WorkerOptions::new(concurrency);
    o.trust = session.app.definition_trust()?;
    o.until_idle = timing.until_idle;
    o.heartbeat_every = timing.heartbeat_every;
    o.heartbeat_timeout = timing.heartbeat_timeout;
    o.poll = timing.poll;
    if o.heartbeat_every.is_zero() || o.heartbeat_every * 3 > o.heartbeat_timeout {
        return Err(invalid(
            "--heartbeat-every must be at most a third of --heartbeat-timeout, or live workers \
             would be taken for dead and their tasks run twice",
        ));
    }
    Ok(o)
}

/// The pipeline files of a directory, parsed again only when one changes.
struct PipelineDir {
    dir: PathBuf,
    seen: BTreeMap<PathBuf, (SystemTime, u64)>,
    dags: BTreeMap<PathBuf, Dag>,
}

impl PipelineDir {
    fn new(dir: PathBuf) -> Self {
        PipelineDir {
            dir,
            seen: BTreeMap::new(),
            dags: BTreeMap::new(),
        }
    }

    /// Re-reads changed files; a file that does not validate is reported once and skipped.
    fn refresh(&mut self, session: &Session<'_>) -> Vec<&Dag> {
        let mut present = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|e| e != "toml") {
                    continue;
                }
                let Ok(meta) = entry.metadata() else { continue };
                let stamp = (
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    meta.len(),
                );
                present.push(path.clone());
                if self.seen.get(&path) == Some(&stamp) {
                    continue;
                }
                self.seen.insert(path.clone(), stamp);
                match dag::load(
                    &absolute(&path),
                    &super::secret_providers(None),
                    &session.protected(),
                ) {
                    Ok(d) => {
                        self.dags.insert(path, d);
                    }
                    Err(e) => {
                        session.out.note(format!(
                            "warning: {e}; the pipeline is not scheduled until it validates"
                        ));
                        self.dags.remove(&path);
                    }
                }
            }
        }
        self.dags.retain(|p, _| present.contains(p));
        self.dags.values().collect()
    }
}

pub(super) fn scheduler(
    session: &Session<'_>,
    pipelines: &Path,
    parallelism: usize,
    timing: &Timing,
) -> Result<Exit, Failure> {
    let config = store_config(session)?;
    let tick = timing.tick;
    let options = SchedulerOptions {
        heartbeat_timeout: timing.heartbeat_timeout,
        // The definitions it registers are signed: workers run nothing else.
        signer: Some(session.app.definition_signer()?),
        ..Default::default()
    };
    let stop = stop_flag()?;
    let clock = SystemClock;
    if !pipelines.is_dir() {
        session.out.note(format!(
            "note: {} is not a directory, so no pipeline is scheduled from files; runs made with \
             `hushflow trigger` and `backfill` are still executed (pass --pipelines DIR)",
            pipelines.display()
        ));
    }
    let mut dir = PipelineDir::new(pipelines.to_path_buf());
    let exec = executor(session)?;
    let mut workers = worker_options(session, parallelism, timing)?;
    // The local worker stops when the scheduler does: deciding idleness itself, it could leave
    // between ticks while the next tick still creates runs.
    workers.until_idle = false;
    let out = session.out;
    tracing::info!(
        "scheduler: {} pipeline file(s) in {}, {} local slot(s), metadata {config:?}",
        dir.refresh(session).len(),
        pipelines.display(),
        parallelism
    );
    let mut scheduler = Scheduler::new(open(&config)?, &clock, options);
    // One tick before the local worker starts, so that with --until-idle it sees the runs
    // this tick creates rather than an idle store.
    let mut first = Some(scheduler.tick(&dir.refresh(session)).map_err(failure)?);
    std::thread::scope(|scope| -> Result<Exit, Failure> {
        let worker = (parallelism > 0)
            .then(|| scope.spawn(|| run_worker(&config, &clock, &exec, &workers, &stop)));
        let result = (|| -> Result<(), Failure> {
            while !stop.load(Ordering::SeqCst) {
                let report = match first.take() {
                    Some(report) => report,
                    None => scheduler.tick(&dir.refresh(session)).map_err(failure)?,
                };
                for w in &report.warnings {
                    out.note(format!("warning: {w}"));
                }
                for task in &report.tasks_failed_lost {
                    hushflow_scheduler::Executor::failed(&exec, task);
                }
                if report.runs_created > 0 {
                    // A result line of the scheduler's loop, like a run's summary.
                    out.note(format!("scheduler: created {} run(s)", report.runs_created));
                }
                if report.tasks_requeued > 0 {
                    tracing::warn!(
                        tasks = report.tasks_requeued,
                        "scheduler: tasks of stopped workers handed to other workers"
                    );
                }
                if timing.until_idle && !scheduler.store().busy().map_err(failure)? {
                    break;
                }
                std::thread::sleep(tick);
            }
            Ok(())
        })();
        stop.store(true, Ordering::SeqCst);
        if let Some(w) = worker {
            match w.join() {
                Ok(r) => {
                    r.map_err(failure)?;
                }
                Err(_) => return Err(failure("the local worker panicked")),
            }
        }
        result.map(|()| Exit::Success)
    })
}

pub(super) fn worker(
    session: &Session<'_>,
    concurrency: usize,
    timing: &Timing,
) -> Result<Exit, Failure> {
    let config = store_config(session)?;
    let stop = stop_flag()?;
    let exec = executor(session)?;
    let options = worker_options(session, concurrency, timing)?;
    tracing::info!(
        worker = %options.id,
        slots = options.concurrency,
        "worker started, metadata {config:?}"
    );
    let report = run_worker(&config, &SystemClock, &exec, &options, &stop).map_err(failure)?;
    tracing::info!(
        worker = %options.id,
        tries = report.tries,
        succeeded = report.succeeded,
        "worker stopped"
    );
    Ok(Exit::Success)
}

/// `--wait`, with its `--timeout` if one was given.
type Wait = Option<Option<Duration>>;

pub(super) fn trigger(
    session: &Session<'_>,
    pipeline: &str,
    conf: &[String],
    wait: Wait,
    json: bool,
) -> Result<Exit, Failure> {
    let timeout = wait.flatten();
    let conf = orchestration::conf_from_pairs(conf)?;
    let t = orchestration::trigger(&session.app, &session.actor, pipeline, &conf)?;
    if let Some(w) = t.warning() {
        session.out.note(format!("warning: {w}"));
    }
    if json {
        let view = hushflow_app::views::TriggeredView::new(&t);
        session
            .out
            .line(serde_json::to_string(&view).map_err(failure)?);
    } else {
        session.out.line(format!(
            "{}: created run {} ({})",
            t.pipeline, t.run, t.run_id
        ));
    }
    if wait.is_none() || said_paused(session, &t.pipeline, t.paused) {
        return Ok(Exit::Success);
    }
    wait_for(session, &store_config(session)?, &[t.run], timeout)
}

pub(super) fn backfill(
    session: &Session<'_>,
    pipeline: &str,
    from: &str,
    to: &str,
    wait: Wait,
) -> Result<Exit, Failure> {
    let timeout = wait.flatten();
    let b = orchestration::backfill(&session.app, &session.actor, pipeline, from, to)?;
    for w in &b.warnings {
        session.out.note(format!("warning: {w}"));
    }
    session.out.line(format!(
        "{}: {} interval(s) from {} to {}: created {} run(s), {} had one already",
        b.pipeline,
        b.intervals,
        b.from,
        b.to,
        b.created.len(),
        b.existing
    ));
    if wait.is_none() || b.created.is_empty() || said_paused(session, &b.pipeline, b.paused) {
        return Ok(Exit::Success);
    }
    wait_for(session, &store_config(session)?, &b.created, timeout)
}

/// Whether the pipeline is paused (its new runs wait for `unpause`); says so.
fn said_paused(session: &Session<'_>, name: &str, paused: bool) -> bool {
    if paused {
        session.out.note(format!(
            "note: {name} is paused, so its runs wait; `hushflow unpause {name}` starts them"
        ));
    }
    paused
}

/// Why a queued run that `--wait` executes has not started, in words: its pipeline is paused,
/// or other runs hold its `max_active_runs` slots, which this command does not execute. `None`
/// when nothing holds it back (it is about to start).
fn waiting_reason(
    store: &mut Store,
    run: &RunRow,
    worker: &str,
) -> Result<Option<String>, Failure> {
    let w = store.waiting(run).map_err(failure)?;
    if w.paused {
        return Ok(Some(format!(
            "run {} waits: {} is paused (`hushflow unpause {}` starts it)",
            run.id, w.pipeline, w.pipeline
        )));
    }
    let running = w
        .ahead
        .iter()
        .filter(|r| r.state == RunState::Running)
        .count() as i64;
    if w.ahead.is_empty() || (running < w.max_active_runs && w.ahead.len() as i64 == running) {
        return Ok(None);
    }
    let first = &w.ahead[0];
    let others = match w.ahead.len() {
        1 => String::new(),
        n => format!(" (and {} more run(s) ahead of it)", n - 1),
    };
    // Workers elsewhere may execute the run ahead; say whether any is alive.
    let since = SystemClock.now() - 30_000;
    let live = store.live_workers(since, worker).map_err(failure)?;
    let who = if live == 0 {
        "no scheduler or worker is running (none heartbeated in the last 30 s), so it does not \
         move: start `hushflow scheduler` (or a worker)"
            .to_string()
    } else {
        format!("{live} other worker(s) are running and should execute it")
    };
    Ok(Some(format!(
        "run {} waits behind run {} ({}, {}){others}: {} runs at most {} run(s) at a time \
         (max_active_runs). This command executes only run {}; {who}. Ctrl-C stops waiting \
         (the run stays queued), and --timeout gives up by itself",
        run.id,
        first.id,
        first.run_id,
        first.state.as_str(),
        w.pipeline,
        w.max_active_runs,
        run.id
    )))
}

/// Schedules and executes here until the given runs end; fails when one failed. While a run
/// waits for others that this command does not execute, says which; gives up after `timeout`.
fn wait_for(
    session: &Session<'_>,
    config: &StoreConfig,
    runs: &[i64],
    timeout: Option<Duration>,
) -> Result<Exit, Failure> {
    let clock = SystemClock;
    let exec = executor(session)?;
    let stop = AtomicBool::new(false);
    let mut options = WorkerOptions::new(2);
    options.trust = session.app.definition_trust()?;
    options.poll = Duration::from_millis(50);
    // Only these runs: a laptop waiting on its trigger must not pick up others' tasks.
    options.only_runs = Some(runs.to_vec());
    let mut scheduler = Scheduler::new(open(config)?, &clock, SchedulerOptions::default());
    let interrupted = stop_flag()?;
    let started = std::time::Instant::now();
    let states = std::thread::scope(|scope| -> Result<Vec<RunRow>, Failure> {
        let worker = scope.spawn(|| run_worker(config, &clock, &exec, &options, &stop));
        let mut said: Vec<String> = Vec::new();
        let result = (|| loop {
            scheduler.tick(&[]).map_err(failure)?;
            let mut rows = Vec::new();
            for id in runs {
                rows.extend(
                    scheduler
                        .store()
                        .find_run(&id.to_string(), None)
                        .map_err(failure)?,
                );
            }
            if rows.iter().all(|r| r.state.is_done()) || interrupted.load(Ordering::SeqCst) {
                return Ok(rows);
            }
            let mut reasons = Vec::new();
            for r in rows.iter().filter(|r| r.state == RunState::Queued) {
                reasons.extend(waiting_reason(scheduler.store(), r, &options.id)?);
            }
            for reason in &reasons {
                if !said.contains(reason) {
                    session.out.note(format!("note: {reason}"));
                }
            }
            said = reasons;
            if let Some(limit) = timeout
                && started.elapsed() >= limit
            {
                let open: Vec<String> = rows
                    .iter()
                    .filter(|r| !r.state.is_done())
                    .map(|r| format!("run {} is {}", r.id, r.state.as_str()))
                    .collect();
                let why = match said.is_empty() {
                    true => String::new(),
                    false => format!(": {}", said.join("; ")),
                };
                return Err(failure(format!(
                    "gave up waiting after {limit:?} (--timeout): {}{why}. The runs stay as \
                     they are; a scheduler or worker executes them",
                    open.join(", ")
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        })();
        stop.store(true, Ordering::SeqCst);
        worker
            .join()
            .map_err(|_| failure("the local worker panicked"))?
            .map_err(failure)?;
        result
    })?;
    let ids: Vec<i64> = states.iter().map(|r| r.id).collect();
    for run in orchestration::tasks_of_runs(&session.app, &ids)? {
        print_tasks(session, &run, false)?;
    }
    let failed = states
        .iter()
        .filter(|r| r.state != RunState::Success)
        .count();
    if failed > 0 {
        return Err(failure(format!(
            "{failed} run(s) did not succeed; see `hushflow logs RUN TASK`"
        )));
    }
    Ok(Exit::Success)
}

pub(super) fn pause(session: &Session<'_>, pipeline: &str, paused: bool) -> Result<Exit, Failure> {
    let name = orchestration::set_paused(&session.app, &session.actor, pipeline, paused)?;
    session.out.line(format!(
        "{name}: {}",
        if paused { "paused" } else { "unpaused" }
    ));
    Ok(Exit::Success)
}

/// A run's or task's duration: seconds once ended, `…` while running, `-` before it starts.
fn duration_text(started_at: Option<&str>, seconds: Option<f64>) -> String {
    match (started_at, seconds) {
        (Some(_), Some(s)) => format!("{s:.1}s"),
        (Some(_), None) => "…".into(),
        _ => "-".into(),
    }
}

pub(super) fn runs(
    session: &Session<'_>,
    pipeline: Option<&str>,
    limit: i64,
    json: bool,
) -> Result<Exit, Failure> {
    let out = session.out;
    let runs = orchestration::runs(&session.app, pipeline, limit)?;
    if !json {
        out.line(format!(
            "{:<6} {:<20} {:<42} {:<9} {:<8} {:<41} {:>8}  tasks",
            "run", "pipeline", "run id", "type", "state", "data interval", "duration"
        ));
    }
    for r in runs {
        if json {
            out.line(to_json(&r)?);
            continue;
        }
        let tasks: Vec<String> = r.tasks.iter().map(|(s, n)| format!("{s} {n}")).collect();
        out.line(format!(
            "{:<6} {:<20} {:<42} {:<9} {:<8} {:<41} {:>8}  {}",
            r.run,
            r.pipeline,
            r.run_id,
            r.run_type,
            r.state,
            format!("{} – {}", r.data_interval_start, r.data_interval_end),
            duration_text(r.started_at.as_deref(), r.duration_seconds),
            tasks.join(", ")
        ));
    }
    Ok(Exit::Success)
}

/// `hushflow pipelines`: what the metadata store schedules, whether it is paused, when it runs
/// next and how its newest run went.
pub(super) fn pipelines(session: &Session<'_>, json: bool) -> Result<Exit, Failure> {
    let out = session.out;
    let pipelines = orchestration::pipelines(&session.app)?;
    if !json {
        if pipelines.is_empty() {
            out.line("no pipeline is registered; the scheduler registers the files under --pipelines, `trigger FILE` one file");
        } else {
            out.line(format!(
                "{:<24} {:<7} {:<28} {:<21} last run",
                "pipeline", "paused", "schedule", "next run"
            ));
        }
    }
    for p in pipelines {
        if json {
            out.line(to_json(&p)?);
            continue;
        }
        let described = match (&p.schedule, &p.timezone) {
            (Some(e), Some(tz)) => format!("{e} ({tz})"),
            (Some(e), None) => e.clone(),
            (None, _) => "manual".to_string(),
        };
        out.line(format!(
            "{:<24} {:<7} {:<28} {:<21} {}",
            p.pipeline,
            if p.paused { "yes" } else { "no" },
            described,
            p.next_run.as_deref().unwrap_or("-"),
            p.last_run_state.as_deref().unwrap_or("-")
        ));
    }
    Ok(Exit::Success)
}

fn print_tasks(session: &Session<'_>, run: &RunTasks, json: bool) -> Result<(), Failure> {
    let out = session.out;
    let r = &run.run;
    if !json {
        out.line(format!(
            "run {} {} ({}): {}",
            r.run, r.pipeline, r.run_id, r.state
        ));
        out.line(format!(
            "  {:<24} {:<16} {:>5} {:>9} {:>10} {:>10} {:>11}  error",
            "task", "state", "tries", "duration", "read", "written", "quarantined"
        ));
    }
    let n = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    for t in &run.tasks {
        if json {
            out.line(to_json(t)?);
            continue;
        }
        out.line(format!(
            "  {:<24} {:<16} {:>5} {:>9} {:>10} {:>10} {:>11}  {}",
            t.task,
            t.state,
            t.tries,
            duration_text(t.started_at.as_deref(), t.duration_seconds),
            n(t.records_read),
            n(t.records_written),
            n(t.records_quarantined),
            t.error.as_deref().unwrap_or_default()
        ));
    }
    Ok(())
}

pub(super) fn tasks(
    session: &Session<'_>,
    run: &str,
    pipeline: Option<&str>,
    json: bool,
) -> Result<Exit, Failure> {
    let run = orchestration::tasks(&session.app, run, pipeline)?;
    print_tasks(session, &run, json)?;
    Ok(Exit::Success)
}

pub(super) fn logs(
    session: &Session<'_>,
    run: &str,
    task: &str,
    pipeline: Option<&str>,
    attempt: Option<i64>,
) -> Result<Exit, Failure> {
    let log = orchestration::logs(&session.app, run, task, pipeline)?;
    if log.tries.is_empty() {
        session
            .out
            .line(format!("{task} has not run yet ({})", log.state));
    }
    for tr in log
        .tries
        .into_iter()
        .filter(|tr| attempt.is_none_or(|a| a == tr.attempt))
    {
        session.out.line(format!(
            "=== {} {} try {} on {}: {} ({} – {})",
            log.pipeline,
            task,
            tr.attempt,
            tr.worker,
            tr.state,
            tr.started_at,
            tr.ended_at.as_deref().unwrap_or("…")
        ));
        if let Some(text) = tr.log {
            session.out.line(text.trim_end());
        }
        if let Some(e) = tr.error {
            session.out.line(format!("error: {e}"));
        }
    }
    Ok(Exit::Success)
}

pub(super) fn clear(
    session: &Session<'_>,
    run: &str,
    tasks: &[String],
    pipeline: Option<&str>,
) -> Result<Exit, Failure> {
    let c = orchestration::clear(&session.app, &session.actor, run, tasks, pipeline)?;
    if c.cleared.is_empty() {
        session.out.line(format!(
            "run {}: nothing to clear (no ended task matched)",
            c.run
        ));
    } else {
        session.out.line(format!(
            "run {}: cleared {}; the scheduler runs them again",
            c.run,
            c.cleared.join(", ")
        ));
    }
    Ok(Exit::Success)
}

pub(super) fn db_migrate(session: &Session<'_>) -> Result<Exit, Failure> {
    let m = orchestration::migrate(&session.app)?;
    for applied in &m.applied {
        session.out.line(format!("applied migration {applied}"));
    }
    session.out.line(format!(
        "metadata schema at version {} ({})",
        m.schema_version, m.store
    ));
    Ok(Exit::Success)
}

/// `hushflow db grants`: least-privilege grants for a PostgreSQL metadata store, as SQL.
pub(super) fn db_grants(
    out: &crate::output::Output,
    roles: hushflow_scheduler::store::grants::Roles,
) -> Result<Exit, Failure> {
    out.line(orchestration::grants(&roles)?.trim_end());
    Ok(Exit::Success)
}

/// `hushflow db definition-key create|show`.
pub(super) fn definition_key(
    session: &Session<'_>,
    cmd: crate::cli::DefinitionKeyCommand,
) -> Result<Exit, Failure> {
    use crate::cli::DefinitionKeyCommand;
    let out = session.out;
    match cmd {
        DefinitionKeyCommand::Create { out: file } => {
            let k = orchestration::create_definition_key(
                &session.app,
                &session.actor,
                file.as_deref(),
            )?;
            out.note(match (k.created, file.is_some()) {
                (true, true) => format!(
                    "created a definition signing key in {} (keep it secret); give schedulers \
                     and `trigger` --definition-key file:{}, and workers its public key:",
                    k.location, k.location
                ),
                (true, false) => format!(
                    "created the state directory's definition signing key ({}); give workers on \
                     other machines its public key (--definition-public-key or \
                     HUSHFLOW_DEFINITION_PUBLIC_KEY):",
                    k.location
                ),
                (false, _) => format!(
                    "the state directory has a definition signing key already ({}); its public \
                     key, for workers' --definition-public-key:",
                    k.location
                ),
            });
            out.line(k.public_key);
        }
        DefinitionKeyCommand::Show => {
            let k = orchestration::definition_public_key(&session.app)?;
            out.note(format!("the definition signing key in {}:", k.location));
            out.line(k.public_key);
        }
    }
    Ok(Exit::Success)
}

pub(super) fn db_prune(
    session: &Session<'_>,
    older_than: Duration,
    pipeline: Option<&str>,
) -> Result<Exit, Failure> {
    let age = older_than;
    let p = orchestration::prune(&session.app, &session.actor, age, pipeline)?;
    session.out.line(format!(
        "deleted {} run(s), {} task(s) and {} tr{} that ended before {}",
        p.runs,
        p.tasks,
        p.tries,
        if p.tries == 1 { "y" } else { "ies" },
        p.before
    ));
    Ok(Exit::Success)
}
