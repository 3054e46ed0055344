//! Workers: claim a ready task, execute it, report how the try ended, and move the task's run
//! forward. A worker heartbeats on its own connection; if it stops (killed, machine gone),
//! a scheduler hands its tasks to other workers after the heartbeat timeout.

use crate::clock::Clock;
use crate::scheduler::advance_after;
use crate::state::TaskState;
use crate::store::{Claim, Completed, StoreConfig, StoreError, TryOutcome};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Runs the tasks a worker claims.
pub trait Executor: Send + Sync {
    /// Executes one try. `stop` is set when the worker is asked to shut down; an executor may
    /// finish the try or end it early (it then fails and is retried).
    fn execute(&self, claim: &Claim, stop: &AtomicBool) -> TryOutcome;

    /// Told when a task has failed for good (no retry left): notifications go here.
    fn failed(&self, _claim: &Claim, _outcome: &TryOutcome) {}
}

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Unique among the workers sharing the store: `host:pid:…`.
    pub id: String,
    pub host: String,
    /// Tasks this worker runs at once.
    pub concurrency: usize,
    pub heartbeat_every: Duration,
    /// Wait between claims when nothing is ready.
    pub poll: Duration,
    /// Stop once no run is queued or running.
    pub until_idle: bool,
}

impl WorkerOptions {
    pub fn new(concurrency: usize) -> WorkerOptions {
        let host = hostname();
        let id = format!("{host}:{}:{:08x}", std::process::id(), nonce());
        WorkerOptions {
            id,
            host,
            concurrency: concurrency.max(1),
            heartbeat_every: Duration::from_secs(5),
            poll: Duration::from_millis(250),
            until_idle: false,
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

#[derive(Debug, Default)]
pub struct WorkerReport {
    pub tries: u64,
    pub succeeded: u64,
}

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
    let result = std::thread::scope(|scope| -> Result<(), StoreError> {
        let heartbeat = scope.spawn(|| -> Result<(), StoreError> {
            let mut store = config.open(clock.now())?;
            let mut last = std::time::Instant::now();
            while !slots_done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                if last.elapsed() >= options.heartbeat_every {
                    store.heartbeat(&options.id, clock.now())?;
                    last = std::time::Instant::now();
                }
            }
            Ok(())
        });
        let slots: Vec<_> = (0..options.concurrency)
            .map(|_| {
                scope.spawn(|| -> Result<(), StoreError> {
                    let mut store = config.open(clock.now())?;
                    while !stop.load(Ordering::SeqCst) {
                        let Some(claim) = store.claim(&options.id, clock.now())? else {
                            if options.until_idle && !store.busy()? {
                                break;
                            }
                            std::thread::sleep(options.poll);
                            continue;
                        };
                        tries.fetch_add(1, Ordering::Relaxed);
                        let outcome = executor.execute(&claim, stop);
                        let completed = store.complete(&claim, &outcome, clock.now())?;
                        match completed {
                            Completed::Now(TaskState::Success) => {
                                succeeded.fetch_add(1, Ordering::Relaxed);
                            }
                            Completed::Now(TaskState::Failed) => executor.failed(&claim, &outcome),
                            _ => {}
                        }
                        advance_after(&mut store, claim.run, &claim.task, clock.now())?;
                    }
                    Ok(())
                })
            })
            .collect();
        let mut first_error = Ok(());
        for slot in slots {
            let r = slot
                .join()
                .unwrap_or_else(|_| Err(StoreError::Database("a worker thread panicked".into())));
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
    store.stop_worker(&options.id, clock.now())?;
    result?;
    Ok(WorkerReport {
        tries: tries.into_inner(),
        succeeded: succeeded.into_inner(),
    })
}
