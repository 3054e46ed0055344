//! Workers: claim a ready task, execute it, report how the try ended, and move the task's run
//! forward. A worker heartbeats on its own connection; if it stops (killed, machine gone),
//! a scheduler hands its tasks to other workers after the heartbeat timeout. A worker that
//! cannot heartbeat, or finds a task taken from it, stops those tries itself, so a task is not
//! left running in two places.

use crate::clock::Clock;
use crate::definitions::DefinitionTrust;
use crate::scheduler::advance_after;
use crate::state::TaskState;
use crate::store::{
    Claim, Completed, FailedTask, MAX_LOG_BYTES, Store, StoreConfig, StoreError, TryOutcome,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a running try shares with its worker: a flag that asks it to stop, and the output so
/// far, which the worker copies to the store at each heartbeat so `hushflow logs` shows a
/// running task's progress.
#[derive(Debug, Default)]
pub struct LiveTry {
    cancel: AtomicBool,
    log: Mutex<String>,
    /// Bytes of `log` already copied to the store.
    flushed: AtomicU64,
}

impl LiveTry {
    /// Set when the task was handed to another worker, or this worker lost its store: the
    /// executor stops the try as soon as it can.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// Asks the executor to stop the try (see [`LiveTry::cancelled`]).
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Appends (redacted) output.
    pub fn append(&self, text: &str) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.push_str(text);
        // Keep the last MAX_LOG_BYTES or so: a task that prints without end fills no memory.
        if log.len() > 2 * MAX_LOG_BYTES {
            let mut cut = log.len() - MAX_LOG_BYTES;
            while !log.is_char_boundary(cut) {
                cut += 1;
            }
            log.drain(..cut);
            // Copy it whole at the next beat.
            self.flushed.store(0, Ordering::SeqCst);
        }
    }

    /// The output so far.
    pub fn snapshot(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The output so far, if it grew since the last call.
    fn unflushed(&self) -> Option<String> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let len = log.len() as u64;
        (self.flushed.swap(len, Ordering::SeqCst) != len).then(|| log.clone())
    }
}

/// Runs the tasks a worker claims.
pub trait Executor: Send + Sync {
    /// Executes one try, stopping early when `live.cancelled()`, and appending its output to
    /// `live` as it goes.
    fn execute(&self, claim: &Claim, live: &LiveTry) -> TryOutcome;

    /// Told when a task has failed for good (no retry left): notifications go here. Check
    /// the task's definition before reading its text.
    fn failed(&self, _task: &FailedTask) {}

    /// Told when a claimed try was not executed because its definition was refused (changed
    /// in the store, unsigned, or signed by a key the worker does not trust): for the audit
    /// log. The try then fails with `reason`.
    fn refused(&self, _claim: &Claim, _reason: &str) {}
}

/// How a worker runs: who it is, how many tries at once, how often it heartbeats and polls,
/// and which runs and definitions it takes.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Unique among the workers sharing the store: `host:pid:…`.
    pub id: String,
    /// The machine's host name, shown with the worker in the store.
    pub host: String,
    /// Tasks this worker runs at once.
    pub concurrency: usize,
    /// Time between heartbeats (which also copy running tries' output to the store).
    pub heartbeat_every: Duration,
    /// What the schedulers use to declare a worker dead: past half of it without a heartbeat,
    /// this worker stops its tries itself.
    pub heartbeat_timeout: Duration,
    /// Wait between claims when nothing is ready.
    pub poll: Duration,
    /// Stop once no run is queued or running.
    pub until_idle: bool,
    /// Claim only tasks of these runs (`trigger --wait`); any run when `None`.
    pub only_runs: Option<Vec<i64>>,
    /// Which definitions this worker executes: a try whose definition does not pass is not
    /// started, and fails.
    pub trust: DefinitionTrust,
}

impl WorkerOptions {
    /// Options for a new worker on this machine with `concurrency` slots (at least one): a
    /// fresh id, a heartbeat every 5 s against a 30 s timeout, a claim every 250 ms when idle,
    /// any run, and definitions checked against their fingerprint alone until `trust` asks for
    /// signatures.
    pub fn new(concurrency: usize) -> WorkerOptions {
        let host = hostname();
        let id = format!("{host}:{}:{:08x}", std::process::id(), nonce());
        WorkerOptions {
            id,
            host,
            concurrency: concurrency.max(1),
            heartbeat_every: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(30),
            poll: Duration::from_millis(250),
            until_idle: false,
            only_runs: None,
            trust: DefinitionTrust::default(),
        }
    }
}

fn nonce() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    t ^ std::process::id().rotate_left(16)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// What a worker did before it stopped.
#[derive(Debug, Default)]
pub struct WorkerReport {
    /// Tries it executed (or refused to, for their definition).
    pub tries: u64,
    /// Of those, the tries that succeeded.
    pub succeeded: u64,
}

/// Store calls are retried at least this many times (reconnecting in between), and for as long
/// as the caller's budget lasts: a restarting database or a deadlock victim must not strand a
/// claimed task.
const STORE_ATTEMPTS: u32 = 5;

/// Runs `f` on the slot's connection, reconnecting and retrying on errors.
fn retrying<T>(
    store: &mut Option<Store>,
    config: &StoreConfig,
    clock: &dyn Clock,
    budget: Duration,
    mut f: impl FnMut(&mut Store) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let mut last = None;
    let mut attempt = 0u32;
    while attempt < STORE_ATTEMPTS || started.elapsed() < budget {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(100 * u64::from(attempt.min(10))));
        }
        attempt += 1;
        if store.is_none() {
            match config.open(clock.now()) {
                Ok(s) => *store = Some(s),
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            }
        }
        let Some(s) = store.as_mut() else { continue };
        match f(s) {
            Ok(v) => return Ok(v),
            Err(e) => {
                tracing::warn!("metadata store: {e}; retrying");
                *store = None;
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| StoreError::Database("the metadata store is unreachable".into())))
}

/// The tries this worker is running.
type Running = Mutex<HashMap<(i64, i64), Arc<LiveTry>>>;

/// Runs a worker until `stop` is set (or, `until_idle`, until there is nothing left to do).
pub fn run_worker(
    config: &StoreConfig,
    clock: &dyn Clock,
    executor: &dyn Executor,
    options: &WorkerOptions,
    stop: &AtomicBool,
) -> Result<WorkerReport, StoreError> {
    let mut store = config.open(clock.now())?;
    store.register_worker(&options.id, &options.host, clock.now())?;
    let tries = AtomicU64::new(0);
    let succeeded = AtomicU64::new(0);
    let slots_done = AtomicBool::new(false);
    // Set when this worker can no longer vouch for its tries: no new claims.
    let orphaned = AtomicBool::new(false);
    let running: Running = Mutex::new(HashMap::new());
    let result = std::thread::scope(|scope| -> Result<(), StoreError> {
        let heartbeat = scope
            .spawn(|| heartbeat_loop(config, clock, options, &slots_done, &orphaned, &running));
        let slots: Vec<_> = (0..options.concurrency)
            .map(|_| {
                scope.spawn(|| -> Result<(), StoreError> {
                    let result = slot(&Shared {
                        config,
                        clock,
                        executor,
                        options,
                        stop,
                        orphaned: &orphaned,
                        running: &running,
                        tries: &tries,
                        succeeded: &succeeded,
                    });
                    if result.is_err() {
                        // One slot giving up stops the others at once (not when it is joined):
                        // the store then sees this worker stop and hands its tasks on, instead
                        // of a live heartbeat covering a dead slot.
                        orphaned.store(true, Ordering::SeqCst);
                        for live in lock(&running).values() {
                            live.cancel();
                        }
                    }
                    result
                })
            })
            .collect();
        let mut first_error = Ok(());
        for slot in slots {
            let r = slot
                .join()
                .unwrap_or_else(|_| Err(StoreError::Database("a worker thread panicked".into())));
            if r.is_err() {
                // One slot giving up stops the others: the store then sees this worker stop
                // and hands its tasks on, instead of a live heartbeat covering a dead slot.
                orphaned.store(true, Ordering::SeqCst);
            }
            if first_error.is_ok() {
                first_error = r;
            }
        }
        slots_done.store(true, Ordering::SeqCst);
        let hb = heartbeat
            .join()
            .unwrap_or_else(|_| Err(StoreError::Database("the heartbeat thread panicked".into())));
        first_error.and(hb)
    });
    let _ = store.stop_worker(&options.id, clock.now());
    result?;
    Ok(WorkerReport {
        tries: tries.into_inner(),
        succeeded: succeeded.into_inner(),
    })
}

/// What the slots of one worker share.
struct Shared<'a> {
    config: &'a StoreConfig,
    clock: &'a dyn Clock,
    executor: &'a dyn Executor,
    options: &'a WorkerOptions,
    stop: &'a AtomicBool,
    orphaned: &'a AtomicBool,
    running: &'a Running,
    tries: &'a AtomicU64,
    succeeded: &'a AtomicU64,
}

/// One slot: claim, execute, complete, move the run on, until told to stop.
fn slot(w: &Shared<'_>) -> Result<(), StoreError> {
    let (config, clock, options) = (w.config, w.clock, w.options);
    let budget = options.heartbeat_timeout / 2;
    let mut store = None;
    let only = options.only_runs.as_deref();
    while !w.stop.load(Ordering::SeqCst) && !w.orphaned.load(Ordering::SeqCst) {
        let claim = retrying(&mut store, config, clock, budget, |s| {
            s.claim(&options.id, clock.now(), only)
        })?;
        let Some(claim) = claim else {
            if options.until_idle && !retrying(&mut store, config, clock, budget, |s| s.busy())? {
                break;
            }
            std::thread::sleep(options.poll);
            continue;
        };
        w.tries.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!(
            "try",
            pipeline = %claim.pipeline,
            run = %claim.run_id,
            task = %claim.task,
            attempt = claim.attempt,
            worker = %options.id,
        );
        let _entered = span.enter();
        tracing::info!(kind = %claim.kind, "claimed");
        let live = Arc::new(LiveTry::default());
        let key = (claim.task_id, claim.attempt);
        lock(w.running).insert(key, Arc::clone(&live));
        // The text is the store's word until it passes: its fingerprint, then its signature.
        let began = Instant::now();
        let verdict = options.trust.check(&claim.definition());
        let outcome = match &verdict {
            Ok(()) => w.executor.execute(&claim, &live),
            Err(refused) => {
                let reason = refused.to_string();
                tracing::warn!("task {} of {}: {reason}", claim.task, claim.pipeline);
                live.append(&format!("{reason}\n"));
                w.executor.refused(&claim, &reason);
                TryOutcome {
                    success: false,
                    error: Some(reason),
                    log: live.snapshot(),
                    ..Default::default()
                }
            }
        };
        lock(w.running).remove(&key);
        let completed = retrying(&mut store, config, clock, budget, |s| {
            s.complete(&claim, &outcome, clock.now())
        })?;
        tracing::info!(completed = ?completed, "try ended");
        let word = match completed {
            Completed::Now(state) => state.as_str(),
            Completed::NotOwner => "not_owner",
        };
        hushflow_metrics::task_try(
            &claim.pipeline,
            &claim.task,
            word,
            claim.attempt,
            began.elapsed().as_secs_f64(),
        );
        match completed {
            Completed::Now(TaskState::Success) => {
                w.succeeded.fetch_add(1, Ordering::Relaxed);
            }
            // A refused definition's text is not to be read, not even for its webhook.
            Completed::Now(TaskState::Failed) if verdict.is_ok() => {
                w.executor.failed(&claim.failed(outcome.error.clone()))
            }
            _ => {}
        }
        retrying(&mut store, config, clock, budget, |s| {
            advance_after(s, claim.run, &claim.task, clock.now())
        })?;
    }
    Ok(())
}

fn lock(running: &Running) -> std::sync::MutexGuard<'_, HashMap<(i64, i64), Arc<LiveTry>>> {
    running.lock().unwrap_or_else(|p| p.into_inner())
}

/// Beats every `heartbeat_every`, reconnecting when the connection drops. Each beat also asks
/// which tries the store still gives this worker and cancels the others. Without a beat for
/// half the heartbeat timeout, every try is cancelled and no new claim is made.
fn heartbeat_loop(
    config: &StoreConfig,
    clock: &dyn Clock,
    options: &WorkerOptions,
    slots_done: &AtomicBool,
    orphaned: &AtomicBool,
    running: &Running,
) -> Result<(), StoreError> {
    let mut store: Option<Store> = None;
    let mut last_beat = Instant::now();
    let mut last_try = Instant::now();
    while !slots_done.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
        if last_try.elapsed() < options.heartbeat_every {
            continue;
        }
        last_try = Instant::now();
        // Only tries claimed before the store is asked can be judged by its answer: a claim
        // committed after the query would look taken away.
        let before: Vec<((i64, i64), Arc<LiveTry>)> = lock(running)
            .iter()
            .map(|(k, v)| (*k, Arc::clone(v)))
            .collect();
        let beat = (|| -> Result<Vec<(i64, i64)>, StoreError> {
            if store.is_none() {
                store = Some(config.open(clock.now())?);
            }
            let Some(s) = store.as_mut() else {
                return Ok(Vec::new());
            };
            s.heartbeat(&options.id, clock.now())?;
            for ((task, attempt), live) in &before {
                if let Some(log) = live.unflushed()
                    && let Err(e) = s.running_log(*task, *attempt, &log)
                {
                    // A log that cannot be stored must not stop the heartbeat.
                    tracing::warn!("live log of task {task}: {e}");
                }
            }
            s.owned_tries(&options.id)
        })();
        match beat {
            Ok(owned) => {
                last_beat = Instant::now();
                for (key, live) in &before {
                    if !owned.contains(key) {
                        live.cancel();
                    }
                }
            }
            Err(e) => {
                tracing::warn!("heartbeat: {e}; reconnecting");
                store = None;
                if last_beat.elapsed() >= options.heartbeat_timeout / 2 {
                    orphaned.store(true, Ordering::SeqCst);
                    for live in lock(running).values() {
                        live.cancel();
                    }
                }
            }
        }
    }
    Ok(())
}
