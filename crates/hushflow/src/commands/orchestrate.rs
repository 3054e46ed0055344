//! The orchestration commands: `scheduler`, `worker`, `trigger`, `backfill`, `pause`,
//! `unpause`, `runs`, `tasks`, `logs` and `db migrate`, over the metadata store.

use super::executor::ProcessExecutor;
use super::{Exit, Failure, Session, failure, invalid};
use crate::cli::Timing;
use hushflow_scheduler::store::{RunRow, StoreConfig};
use hushflow_scheduler::{
    Clock, NewRun, RunState, Scheduler, SchedulerOptions, Store, SystemClock, WorkerOptions,
    run_worker,
};
use hushflow_secrets::{SecretRef, SecretResolver};
use hushflow_spec::dag::{self, Dag};
use hushflow_spec::schedule::{Interval, Millis, parse_duration, parse_instant, rfc3339};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// Where the metadata lives, from `--metadata` (a secret reference) or the state directory.
pub(super) fn store_config(
    session: &Session<'_>,
    metadata: Option<&str>,
) -> Result<StoreConfig, Failure> {
    match metadata {
        None => Ok(StoreConfig::Sqlite(
            session.state.root().join("metadata.db"),
        )),
        Some(reference) => {
            let reference = SecretRef::parse(reference).map_err(|e| {
                invalid(format!(
                    "--metadata: {e}; give a secret reference (env:NAME or file:PATH) holding the postgres:// URL"
                ))
            })?;
            let resolver = SecretResolver::new(session.out.redactor.clone(), None);
            let url = resolver.resolve(&reference).map_err(invalid)?;
            // The resolver masks the URL and its password from here on.
            Ok(StoreConfig::Postgres(url))
        }
    }
}

fn open(config: &StoreConfig) -> Result<Store, Failure> {
    config.open(SystemClock.now()).map_err(failure)
}

fn duration(flag: &str, value: &str) -> Result<Duration, Failure> {
    parse_duration(value).map_err(|m| invalid(format!("--{flag} {m}")))
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
        master_key_ref: session.master_key.clone(),
        redactor: session.out.redactor.clone(),
    })
}

fn worker_options(concurrency: usize, timing: &Timing) -> Result<WorkerOptions, Failure> {
    let mut o = WorkerOptions::new(concurrency);
    o.until_idle = timing.until_idle;
    o.heartbeat_every = duration("heartbeat-every", &timing.heartbeat_every)?;
    o.heartbeat_timeout = duration("heartbeat-timeout", &timing.heartbeat_timeout)?;
    o.poll = duration("poll", &timing.poll)?;
    if o.heartbeat_every.is_zero() || o.heartbeat_every * 3 > o.heartbeat_timeout {
        return Err(invalid(
            "--heartbeat-every must be at most a third of --heartbeat-timeout, or live workers \
             would be taken for dead and their tasks run twice",
        ));
    }
    Ok(o)
}

/// Definitions are registered under their absolute path: a worker started elsewhere resolves
/// the file's relative paths the same way.
fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
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
                match dag::load(&absolute(&path), &session.protected()) {
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
    metadata: Option<&str>,
    pipelines: &Path,
    parallelism: usize,
    timing: &Timing,
) -> Result<Exit, Failure> {
    let config = store_config(session, metadata)?;
    let tick = duration("tick", &timing.tick)?;
    let options = SchedulerOptions {
        heartbeat_timeout: duration("heartbeat-timeout", &timing.heartbeat_timeout)?,
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
    let mut workers = worker_options(parallelism, timing)?;
    // The local worker stops when the scheduler does: deciding idleness itself, it could leave
    // between ticks while the next tick still creates runs.
    workers.until_idle = false;
    let out = session.out;
    out.note(format!(
        "scheduler: {} pipeline file(s) in {}, {} local slot(s), metadata {config:?}",
        dir.refresh(session).len(),
        pipelines.display(),
        parallelism
    ));
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
                    out.note(format!("scheduler: created {} run(s)", report.runs_created));
                }
                if report.tasks_requeued > 0 {
                    out.note(format!(
                        "scheduler: {} task(s) of stopped workers handed to other workers",
                        report.tasks_requeued
                    ));
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
    metadata: Option<&str>,
    concurrency: usize,
    timing: &Timing,
) -> Result<Exit, Failure> {
    let config = store_config(session, metadata)?;
    let stop = stop_flag()?;
    let exec = executor(session)?;
    let options = worker_options(concurrency, timing)?;
    session.out.note(format!(
        "worker {}: {} slot(s), metadata {config:?}",
        options.id, options.concurrency
    ));
    let report = run_worker(&config, &SystemClock, &exec, &options, &stop).map_err(failure)?;
    session.out.note(format!(
        "worker {}: stopped after {} tries ({} succeeded)",
        options.id, report.tries, report.succeeded
    ));
    Ok(Exit::Success)
}

/// A pipeline named on the command line: a file (registered now), or a registered name.
fn resolve_pipeline(
    session: &Session<'_>,
    store: &mut Store,
    pipeline: &str,
) -> Result<Dag, Failure> {
    let path = Path::new(pipeline);
    if path.is_file() {
        let d = dag::load(&absolute(path), &session.protected()).map_err(invalid)?;
        store.register(&d, SystemClock.now()).map_err(failure)?;
        return Ok(d);
    }
    let Some(row) = store.pipeline(pipeline).map_err(failure)? else {
        return Err(invalid(format!(
            "{pipeline}: no such pipeline file, and no registered pipeline has that name; give \
             the file, or start a scheduler over its directory first"
        )));
    };
    let (file, text) = store
        .definition(&row.fingerprint)
        .map_err(failure)?
        .ok_or_else(|| {
            failure(format!(
                "the definition of {pipeline} is missing from the metadata store"
            ))
        })?;
    dag::parse(&file, text, &session.protected()).map_err(invalid)
}

fn parse_conf(pairs: &[String]) -> Result<String, Failure> {
    let mut conf = BTreeMap::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(invalid(format!(
                "--conf wants KEY=VALUE; got a value without `=` for `{}`",
                pair.chars().take(20).collect::<String>()
            )));
        };
        // Values are substituted into the pipeline's text: keep them to what cannot break out
        // of a TOML string or a SQL literal.
        let safe = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:+/@ ".contains(c))
        };
        if !safe(k) || !safe(v) {
            return Err(invalid(format!(
                "--conf {k}: keys and values may use letters, digits, spaces and - _ . : + / @ only"
            )));
        }
        conf.insert(k.to_string(), v.to_string());
    }
    serde_json::to_string(&conf).map_err(failure)
}

pub(super) fn trigger(
    session: &Session<'_>,
    metadata: Option<&str>,
    pipeline: &str,
    conf: &[String],
    wait: bool,
) -> Result<Exit, Failure> {
    let config = store_config(session, metadata)?;
    let mut store = open(&config)?;
    let d = resolve_pipeline(session, &mut store, pipeline)?;
    let now = SystemClock.now();
    // A manual run covers the latest complete interval of its schedule (or the instant now).
    let interval = d
        .schedule
        .as_ref()
        .and_then(|s| s.due(i64::MIN / 4, now, false, 1).pop())
        .unwrap_or(Interval {
            start: now,
            end: now,
        });
    let run = NewRun {
        run_id: format!("manual__{}", hushflow_spec::schedule::rfc3339_millis(now)),
        run_type: "manual".into(),
        logical_date: interval.start,
        interval,
        conf: parse_conf(conf)?,
    };
    let id = store
        .create_run(&d, &run, now)
        .map_err(failure)?
        .ok_or_else(|| failure("a run with this id exists already; try again"))?;
    session.audit_pipeline("trigger", &d.name, format!("run {} ({})", id, run.run_id))?;
    session
        .out
        .line(format!("{}: created run {id} ({})", d.name, run.run_id));
    if !wait || paused(session, &mut store, &d.name)? {
        return Ok(Exit::Success);
    }
    wait_for(session, &config, &[id])
}

pub(super) fn backfill(
    session: &Session<'_>,
    metadata: Option<&str>,
    pipeline: &str,
    from: &str,
    to: &str,
    wait: bool,
) -> Result<Exit, Failure> {
    let config = store_config(session, metadata)?;
    let mut store = open(&config)?;
    let d = resolve_pipeline(session, &mut store, pipeline)?;
    let Some(schedule) = &d.schedule else {
        return Err(invalid(format!(
            "{} has no schedule, so it has no intervals to backfill; use `hushflow trigger`",
            d.name
        )));
    };
    let tz = Some(schedule.timezone());
    let from = parse_instant(from, tz).map_err(|m| invalid(format!("--from {m}")))?;
    let to = parse_instant(to, tz).map_err(|m| invalid(format!("--to {m}")))?;
    if to <= from {
        return Err(invalid("--to must be after --from"));
    }
    // An incremental source reads after its committed position, whatever the interval: a
    // backfill of such a task moves only what changed since the last run, not the past.
    for task in &d.tasks {
        if let hushflow_spec::dag::TaskKind::Sync(plan) = &task.kind
            && plan.incremental()
        {
            session.out.note(format!(
                "warning: task {} reads its source by cursor, so its backfill runs read only \
                 records changed since the last committed position, not each interval's; \
                 use the interval in the source (`{{{{ data_interval_start }}}}` in a query) or \
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
        match store.create_run(&d, &run, now).map_err(failure)? {
            Some(id) => created.push(id),
            None => existing += 1,
        }
    }
    session.audit_pipeline(
        "backfill",
        &d.name,
        format!(
            "{} run(s) from {} to {}",
            created.len(),
            rfc3339(from),
            rfc3339(to)
        ),
    )?;
    session.out.line(format!(
        "{}: {} interval(s) from {} to {}: created {} run(s), {existing} had one already",
        d.name,
        intervals.len(),
        rfc3339(from),
        rfc3339(to),
        created.len()
    ));
    if !wait || created.is_empty() || paused(session, &mut store, &d.name)? {
        return Ok(Exit::Success);
    }
    wait_for(session, &config, &created)
}

/// Whether the pipeline is paused (its new runs wait for `unpause`); says so.
fn paused(session: &Session<'_>, store: &mut Store, name: &str) -> Result<bool, Failure> {
    let paused = store
        .pipeline(name)
        .map_err(failure)?
        .is_some_and(|p| p.paused);
    if paused {
        session.out.note(format!(
            "note: {name} is paused, so its runs wait; `hushflow unpause {name}` starts them"
        ));
    }
    Ok(paused)
}

/// Schedules and executes here until the given runs end; fails when one failed.
fn wait_for(session: &Session<'_>, config: &StoreConfig, runs: &[i64]) -> Result<Exit, Failure> {
    let clock = SystemClock;
    let exec = executor(session)?;
    let stop = AtomicBool::new(false);
    let mut options = WorkerOptions::new(2);
    options.poll = Duration::from_millis(50);
    // Only these runs: a laptop waiting on its trigger must not pick up others' tasks.
    options.only_runs = Some(runs.to_vec());
    let mut scheduler = Scheduler::new(open(config)?, &clock, SchedulerOptions::default());
    let interrupted = stop_flag()?;
    let states = std::thread::scope(|scope| -> Result<Vec<RunRow>, Failure> {
        let worker = scope.spawn(|| run_worker(config, &clock, &exec, &options, &stop));
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
            std::thread::sleep(Duration::from_millis(50));
        })();
        stop.store(true, Ordering::SeqCst);
        worker
            .join()
            .map_err(|_| failure("the local worker panicked"))?
            .map_err(failure)?;
        result
    })?;
    let mut store = open(config)?;
    for r in &states {
        print_tasks(session, &mut store, r, false)?;
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

pub(super) fn pause(
    session: &Session<'_>,
    metadata: Option<&str>,
    pipeline: &str,
    paused: bool,
) -> Result<Exit, Failure> {
    let config = store_config(session, metadata)?;
    let mut store = open(&config)?;
    let name = match Path::new(pipeline).is_file() {
        true => resolve_pipeline(session, &mut store, pipeline)?.name,
        false => pipeline.to_string(),
    };
    if !store.set_paused(&name, paused).map_err(failure)? {
        return Err(invalid(format!("no registered pipeline is called {name}")));
    }
    let action = if paused { "pause" } else { "unpause" };
    session.audit_pipeline(action, &name, format!("{action}d"))?;
    session.out.line(format!(
        "{name}: {}",
        if paused { "paused" } else { "unpaused" }
    ));
    Ok(Exit::Success)
}

fn ms_between(a: Option<Millis>, b: Option<Millis>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:.1}s", (b - a) as f64 / 1000.0),
        (Some(_), None) => "…".into(),
        _ => "-".into(),
    }
}

pub(super) fn runs(
    session: &Session<'_>,
    metadata: Option<&str>,
    pipeline: Option<&str>,
    limit: i64,
    json: bool,
) -> Result<Exit, Failure> {
    let config = store_config(session, metadata)?;
    let mut store = open(&config)?;
    let out = session.out;
    if let Some(name) = pipeline
        && store.pipeline(name).map_err(failure)?.is_none()
    {
        return Err(invalid(format!(
            "no pipeline is registered as {name}; `hushflow pipelines` lists them"
        )));
    }
    let rows = store.runs(pipeline, limit).map_err(failure)?;
    if !json {
        out.line(format!(
            "{:<6} {:<20} {:<42} {:<9} {:<8} {:<41} {:>8}  tasks",
            "run", "pipeline", "run id", "type", "state", "data interval", "duration"
        ));
    }
    for r in rows {
        let states = store.task_states(r.id).map_err(failure)?;
        if json {
            let tasks: serde_json::Map<String, serde_json::Value> = states
                .iter()
                .map(|(s, n)| (s.clone(), (*n).into()))
                .collect();
            out.line(serde_json::json!({
                "run": r.id, "pipeline": r.pipeline, "run_id": r.run_id, "run_type": r.run_type,
                "state": r.state.as_str(), "logical_date": rfc3339(r.logical_date),
                "data_interval_start": rfc3339(r.interval.start), "data_interval_end": rfc3339(r.interval.end),
                "started_at": r.started_at.map(rfc3339), "ended_at": r.ended_at.map(rfc3339), "tasks": tasks,
            }).to_string());
        } else {
            let tasks: Vec<String> = states.iter().map(|(s, n)| format!("{s} {n}")).collect();
            out.line(format!(
                "{:<6} {:<20} {:<42} {:<9} {:<8} {:<41} {:>8}  {}",
                r.id,
                r.pipeline,
                r.run_id,
                r.run_type,
                r.state.as_str(),
                format!(
                    "{} – {}",
                    rfc3339(r.interval.start),
                    rfc3339(r.interval.end)
                ),
                ms_between(r.started_at, r.ended_at),
                tasks.join(", ")
            ));
        }
    }
    Ok(Exit::Success)
}

/// `hushflow pipelines`: what the metadata store schedules, whether it is paused, when it runs
/// next and how its newest run went.
pub(super) fn pipelines(
    session: &Session<'_>,
    metadata: Option<&str>,
    json: bool,
) -> Result<Exit, Failure> {
    let config = store_config(session, metadata)?;
    let mut store = open(&config)?;
    let out = session.out;
    let now = SystemClock.now();
    let rows = store.pipelines().map_err(failure)?;
    if !json {
        if rows.is_empty() {
            out.line("no pipeline is registered; the scheduler registers the files under --pipelines, `trigger FILE` one file");
        } else {
            out.line(format!(
                "{:<24} {:<7} {:<28} {:<21} last run",
                "pipeline", "paused", "schedule", "next run"
            ));
        }
    }
    for (p, last) in rows {
        let schedule = p
            .schedule
            .as_deref()
            .map(|e| hushflow_spec::schedule::Schedule::parse(e, p.timezone.as_deref()));
        let next = match (&schedule, p.paused) {
            (Some(Ok(s)), false) => s.next(now.max(p.first_seen_at), false).map(rfc3339),
            _ => None,
        };
        let described = match (&p.schedule, &p.timezone) {
            (Some(e), Some(tz)) => format!("{e} ({tz})"),
            (Some(e), None) => e.clone(),
            (None, _) => "manual".to_string(),
        };
        if json {
            out.line(
                serde_json::json!({
                    "pipeline": p.name, "paused": p.paused, "schedule": p.schedule,
                    "timezone": p.timezone, "next_run": next, "last_run_state": last,
                    "max_active_runs": p.max_active_runs,
                })
                .to_string(),
            );
        } else {
            out.line(format!(
                "{:<24} {:<7} {:<28} {:<21} {}",
                p.name,
                if p.paused { "yes" } else { "no" },
                described,
                next.as_deref().unwrap_or("-"),
                last.as_deref().unwrap_or("-")
            ));
        }
    }
    Ok(Exit::Success)
}

fn one_run(store: &mut Store, run: &str, pipeline: Option<&str>) -> Result<RunRow, Failure> {
    let mut found = store.find_run(run, pipeline).map_err(failure)?;
    match found.len() {
        0 => Err(invalid(format!("no run {run}; `hushflow runs` lists them"))),
        1 => Ok(found.remove(0)),
        _ => Err(invalid(format!(
            "several pipelines have a run {run}; add --pipeline NAME"
        ))),
    }
}

fn print_tasks(
    session: &Session<'_>,
    store: &mut Store,
    run: &RunRow,
    json: bool,
) -> Result<(), Failure> {
    let out = session.out;
    let tasks = store.tasks_of(run.id).map_err(failure)?;
    if !json {
        out.line(format!(
            "run {} {} ({}): {}",
            run.id,
            run.pipeline,
            run.run_id,
            run.state.as_str()
        ));
        out.line(format!(
            "  {:<24} {:<16} {:>5} {:>9} {:>10} {:>10} {:>11}  error",
            "task", "state", "tries", "duration", "read", "written", "quarantined"
        ));
    }
    let n = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    for t in tasks {
        if json {
            out.line(serde_json::json!({
                "run": run.id, "pipeline": run.pipeline, "run_id": run.run_id, "task": t.task, "kind": t.kind,
                "state": t.state.as_str(), "tries": t.tries, "failures": t.failures,
                "started_at": t.started_at.map(rfc3339), "ended_at": t.ended_at.map(rfc3339),
                "next_try_at": t.next_try_at.map(rfc3339),
                "records_read": t.records_read, "records_written": t.records_written,
                "records_quarantined": t.records_quarantined, "error": t.error,
            }).to_string());
        } else {
            out.line(format!(
                "  {:<24} {:<16} {:>5} {:>9} {:>10} {:>10} {:>11}  {}",
                t.task,
                t.state.as_str(),
                t.tries,
                ms_between(t.started_at, t.ended_at),
                n(t.records_read),
                n(t.records_written),
                n(t.records_quarantined),
                t.error.unwrap_or_default()
            ));
        }
    }
    Ok(())
}

pub(super) fn tasks(
    session: &Session<'_>,
    metadata: Option<&str>,
    run: &str,
    pipeline: Option<&str>,
    json: bool,
) -> Result<Exit, Failure> {
    let config = store_config(session, metadata)?;
    let mut store = open(&config)?;
    let r = one_run(&mut store, run, pipeline)?;
    print_tasks(session, &mut store, &r, json)?;
    Ok(Exit::Success)
}

pub(super) fn logs(
    session: &Session<'_>,
    metadata: Option<&str>,
    run: &str,
    task: &str,
    pipeline: Option<&str>,
    attempt: Option<i64>,
) -> Result<Exit, Failure> {
    let config = store_config(session, metadata)?;
    let mut store = open(&config)?;
    let r = one_run(&mut store, run, pipeline)?;
    let Some(t) = store
        .tasks_of(r.id)
        .map_err(failure)?
        .into_iter()
        .find(|t| t.task == task)
    else {
        return Err(invalid(format!(
            "run {} has no task {task}; `hushflow tasks {}` lists them",
            r.id, r.id
        )));
    };
    let tries = store.tries(t.id).map_err(failure)?;
    if tries.is_empty() {
        session
            .out
            .line(format!("{task} has not run yet ({})", t.state.as_str()));
    }
    for tr in tries
        .into_iter()
        .filter(|tr| attempt.is_none_or(|a| a == tr.attempt))
    {
        session.out.line(format!(
            "=== {} {} try {} on {}: {} ({} – {})",
            r.pipeline,
            task,
            tr.attempt,
            tr.worker,
            tr.state,
            rfc3339(tr.started_at),
            tr.ended_at.map_or("…".into(), rfc3339)
        ));
        if let Some(log) = tr.log {
            session.out.line(log.trim_end());
        }
        if let Some(e) = tr.error {
            session.out.line(format!("error: {e}"));
        }
    }
    Ok(Exit::Success)
}

pub(super) fn clear(
    session: &Session<'_>,
    metadata: Option<&str>,
    run: &str,
    tasks: &[String],
    pipeline: Option<&str>,
) -> Result<Exit, Failure> {
    let config = store_config(session, metadata)?;
    let mut store = open(&config)?;
    let r = one_run(&mut store, run, pipeline)?;
    let known: Vec<String> = store
        .tasks_of(r.id)
        .map_err(failure)?
        .into_iter()
        .map(|t| t.task)
        .collect();
    if let Some(unknown) = tasks.iter().find(|t| !known.contains(t)) {
        return Err(invalid(format!(
            "run {} has no task {unknown}; `hushflow tasks {}` lists them",
            r.id, r.id
        )));
    }
    let cleared = store.clear_tasks(r.id, tasks).map_err(failure)?;
    if cleared.is_empty() {
        session.out.line(format!(
            "run {}: nothing to clear (no ended task matched)",
            r.id
        ));
        return Ok(Exit::Success);
    }
    session.audit_pipeline(
        "clear",
        &r.pipeline,
        format!("run {} ({}): {}", r.id, r.run_id, cleared.join(", ")),
    )?;
    session.out.line(format!(
        "run {}: cleared {}; the scheduler runs them again",
        r.id,
        cleared.join(", ")
    ));
    Ok(Exit::Success)
}

pub(super) fn db_migrate(session: &Session<'_>, metadata: Option<&str>) -> Result<Exit, Failure> {
    let config = store_config(session, metadata)?;
    let (mut store, applied) = config.migrate(SystemClock.now()).map_err(failure)?;
    for m in &applied {
        session.out.line(format!("applied migration {m}"));
    }
    session.out.line(format!(
        "metadata schema at version {} ({config:?})",
        store.schema_version().map_err(failure)?
    ));
    Ok(Exit::Success)
}

pub(super) fn db_prune(
    session: &Session<'_>,
    metadata: Option<&str>,
    older_than: &str,
    pipeline: Option<&str>,
) -> Result<Exit, Failure> {
    let age = duration("older-than", older_than)?;
    let config = store_config(session, metadata)?;
    let mut store = open(&config)?;
    let before = SystemClock.now() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX / 2);
    let (runs, tasks, tries) = store.prune(before, pipeline).map_err(failure)?;
    let counts = BTreeMap::from([
        ("runs".to_string(), runs),
        ("tasks".to_string(), tasks),
        ("tries".to_string(), tries),
    ]);
    session.audit_task(
        "prune",
        pipeline.unwrap_or("*"),
        format!("finished runs that ended before {}", rfc3339(before)),
        counts,
        "success",
    )?;
    session.out.line(format!(
        "deleted {runs} run(s), {tasks} task(s) and {tries} tr{} that ended before {}",
        if tries == 1 { "y" } else { "ies" },
        rfc3339(before)
    ));
    Ok(Exit::Success)
}
