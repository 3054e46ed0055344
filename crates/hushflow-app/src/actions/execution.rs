//! Scheduling and executing in this process: the scheduler's loop over a directory of pipeline
//! files ([`run_scheduler`]), and waiting for given runs while executing their tasks here
//! ([`wait_for_runs`], behind `trigger --wait` and `backfill --wait`). The front end gives the
//! [`Executor`] (how a try runs), the stop flags (its signals) and a place for notes (its
//! output); what is decided, and when, is here.

use crate::actions::orchestration::absolute;
use crate::{Error, Result, Session};
use hushflow_scheduler::store::{RunRow, StoreConfig};
use hushflow_scheduler::{
    Clock, Executor, RunState, Scheduler, SchedulerOptions, Store, SystemClock, WorkerOptions,
    run_worker,
};
use hushflow_spec::dag::{self, Dag};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// The pipeline files (`*.toml`) of a directory, parsed again only when one changes.
#[derive(Debug)]
pub struct PipelineDir {
    dir: PathBuf,
    seen: BTreeMap<PathBuf, (SystemTime, u64)>,
    dags: BTreeMap<PathBuf, Dag>,
}

impl PipelineDir {
    /// The files of `dir`, none read yet.
    pub fn new(dir: PathBuf) -> Self {
        PipelineDir {
            dir,
            seen: BTreeMap::new(),
            dags: BTreeMap::new(),
        }
    }

    /// Re-reads changed files and forgets removed ones. A file that does not validate is
    /// reported once to `warn` (with the reason) and not scheduled until it does.
    pub fn refresh(&mut self, session: &Session, warn: &dyn Fn(String)) -> Vec<&Dag> {
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
                    &crate::secrets::providers(None),
                    &session.protected(),
                ) {
                    Ok(d) => {
                        self.dags.insert(path, d);
                    }
                    Err(e) => {
                        warn(format!(
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

/// How [`run_scheduler`] runs.
pub struct SchedulerLoop {
    /// Time between ticks.
    pub tick: Duration,
    /// Stop once no run is queued or running.
    pub until_idle: bool,
    /// The scheduler's options (heartbeat timeout, the definition signer).
    pub scheduler: SchedulerOptions,
    /// The local worker's options, when this process also executes tasks.
    pub worker: Option<WorkerOptions>,
}

fn open(config: &StoreConfig) -> Result<Store> {
    config.open(SystemClock.now()).map_err(Error::failed)
}

/// Ticks the scheduler over `dir`'s pipelines until `stop` is set (or, with `until_idle`, no
/// run is queued or running), executing tasks with a local worker when the options ask for
/// one. Warnings and the runs each tick created go to `note`; tasks lost for good go to the
/// executor's `failed`.
pub fn run_scheduler(
    session: &Session,
    dir: &mut PipelineDir,
    executor: &dyn Executor,
    options: SchedulerLoop,
    stop: &AtomicBool,
    note: &dyn Fn(String),
) -> Result<()> {
    let config = session.store_config()?;
    let clock = SystemClock;
    let mut scheduler = Scheduler::new(open(&config)?, &clock, options.scheduler);
    // One tick before the local worker starts, so that with until_idle it sees the runs this
    // tick creates rather than an idle store.
    let mut first = Some(
        scheduler
            .tick(&dir.refresh(session, note))
            .map_err(Error::failed)?,
    );
    std::thread::scope(|scope| -> Result<()> {
        let worker = options
            .worker
            .as_ref()
            .map(|w| scope.spawn(|| run_worker(&config, &clock, executor, w, stop)));
        let result = (|| -> Result<()> {
            while !stop.load(Ordering::SeqCst) {
                let report = match first.take() {
                    Some(report) => report,
                    None => scheduler
                        .tick(&dir.refresh(session, note))
                        .map_err(Error::failed)?,
                };
                for w in &report.warnings {
                    note(format!("warning: {w}"));
                }
                for task in &report.tasks_failed_lost {
                    executor.failed(task);
                }
                if report.runs_created > 0 {
                    // A result line of the scheduler's loop, like a run's summary.
                    note(format!("scheduler: created {} run(s)", report.runs_created));
                }
                if report.tasks_requeued > 0 {
                    tracing::warn!(
                        tasks = report.tasks_requeued,
                        "scheduler: tasks of stopped workers handed to other workers"
                    );
                }
                if options.until_idle && !scheduler.store().busy().map_err(Error::failed)? {
                    break;
                }
                std::thread::sleep(options.tick);
            }
            Ok(())
        })();
        stop.store(true, Ordering::SeqCst);
        if let Some(w) = worker {
            match w.join() {
                Ok(r) => {
                    r.map_err(Error::failed)?;
                }
                Err(_) => return Err(Error::failed("the local worker panicked")),
            }
        }
        result
    })
}

/// Why a queued run that [`wait_for_runs`] executes has not started, in words: its pipeline is
/// paused, or other runs hold its `max_active_runs` slots, which the waiting command does not
/// execute. `None` when nothing holds it back (it is about to start).
pub fn waiting_reason(store: &mut Store, run: &RunRow, worker: &str) -> Result<Option<String>> {
    let w = store.waiting(run).map_err(Error::failed)?;
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
    let live = store.live_workers(since, worker).map_err(Error::failed)?;
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

/// Schedules and executes the given runs here (no others) until they end, `interrupted` is
/// set, or `timeout` passes (an error naming what the runs wait for). While a run waits for
/// others that this process does not execute, says which to `note`, once per change. Answers
/// the runs as they are at the end.
pub fn wait_for_runs(
    session: &Session,
    executor: &dyn Executor,
    runs: &[i64],
    timeout: Option<Duration>,
    interrupted: &AtomicBool,
    note: &dyn Fn(String),
) -> Result<Vec<RunRow>> {
    let config = session.store_config()?;
    let clock = SystemClock;
    let stop = AtomicBool::new(false);
    let mut options = WorkerOptions::new(2);
    options.trust = session.definition_trust()?;
    options.poll = Duration::from_millis(50);
    // Only these runs: a laptop waiting on its trigger must not pick up others' tasks.
    options.only_runs = Some(runs.to_vec());
    let mut scheduler = Scheduler::new(open(&config)?, &clock, SchedulerOptions::default());
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<Vec<RunRow>> {
        let worker = scope.spawn(|| run_worker(&config, &clock, executor, &options, &stop));
        let mut said: Vec<String> = Vec::new();
        let result = (|| loop {
            scheduler.tick(&[]).map_err(Error::failed)?;
            let mut rows = Vec::new();
            for id in runs {
                rows.extend(
                    scheduler
                        .store()
                        .find_run(&id.to_string(), None)
                        .map_err(Error::failed)?,
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
                    note(format!("note: {reason}"));
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
                return Err(Error::failed(format!(
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
            .map_err(|_| Error::failed("the local worker panicked"))?
            .map_err(Error::failed)?;
        result
    })
}
