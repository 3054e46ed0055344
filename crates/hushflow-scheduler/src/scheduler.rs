//! The scheduler's tick: register pipelines, create the runs that are due (exactly once, even
//! with several schedulers), start queued runs up to `max_active_runs`, hand back the tasks of
//! workers that stopped heartbeating, and move every running run forward by its trigger rules.

use crate::clock::Clock;
use crate::definitions::DefinitionSigner;
use crate::state::{RunState, TaskState, decide, run_outcome};
use crate::store::{FailedTask, NewRun, Store, StoreError};
use hushflow_spec::dag::Dag;
use hushflow_spec::schedule::{Millis, rfc3339};
use std::collections::HashMap;
use std::time::Duration;

/// How a scheduler decides: when a worker counts as stopped, how fast it catches up, and the
/// key it signs definitions with.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// A worker whose last heartbeat is older than this has stopped; its tasks go to others.
    pub heartbeat_timeout: Duration,
    /// Scheduled runs created per pipeline per tick when catching up.
    pub catchup_per_tick: usize,
    /// Signs the definitions this scheduler registers (workers given its public key run only
    /// those); unsigned when `None`.
    pub signer: Option<DefinitionSigner>,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            heartbeat_timeout: Duration::from_secs(30),
            catchup_per_tick: 100,
            signer: None,
        }
    }
}

/// What one tick did.
#[derive(Debug, Default, Clone)]
pub struct TickReport {
    /// Scheduled runs created because their interval was due.
    pub runs_created: usize,
    /// Queued runs started within their pipeline's `max_active_runs`.
    pub runs_started: usize,
    /// Waiting tasks their trigger rule decided (queued, skipped or upstream_failed).
    pub tasks_decided: usize,
    /// Runs that ended (every task done).
    pub runs_finished: usize,
    /// Tasks of stopped workers queued again.
    pub tasks_requeued: usize,
    /// Tasks failed for good because their workers kept dying: to be notified like any other.
    pub tasks_failed_lost: Vec<FailedTask>,
    /// Problems found registering pipelines (pool sizes that disagree).
    pub warnings: Vec<String>,
}

/// The scheduler: each [`Scheduler::tick`] registers pipelines, creates due runs and moves
/// runs and tasks on.
pub struct Scheduler<'a> {
    store: Store,
    clock: &'a dyn Clock,
    options: SchedulerOptions,
    /// Fingerprints already registered, so an unchanged file costs no write per tick.
    registered: HashMap<String, String>,
    /// Pipelines whose queue depth the last tick reported, so a drained one is set to 0.
    queued_pipelines: Vec<String>,
}

impl<'a> Scheduler<'a> {
    /// A scheduler over `store`, reading the time from `clock`.
    pub fn new(store: Store, clock: &'a dyn Clock, options: SchedulerOptions) -> Self {
        Scheduler {
            store,
            clock,
            options,
            registered: HashMap::new(),
            queued_pipelines: Vec::new(),
        }
    }

    /// Its store, for queries between ticks.
    pub fn store(&mut self) -> &mut Store {
        &mut self.store
    }

    /// Records a pipeline's definition unless this scheduler already did.
    pub fn register(&mut self, dag: &Dag) -> Result<Vec<String>, StoreError> {
        if self.registered.get(&dag.name) == Some(&dag.fingerprint) {
            return Ok(Vec::new());
        }
        let warnings = self
            .store
            .register(dag, self.options.signer.as_ref(), self.clock.now())?;
        self.registered
            .insert(dag.name.clone(), dag.fingerprint.clone());
        Ok(warnings)
    }

    /// One round: registers `dags`, creates their due runs, starts queued runs, hands back
    /// the tasks of stopped workers and decides the waiting tasks of running runs.
    pub fn tick(&mut self, dags: &[&Dag]) -> Result<TickReport, StoreError> {
        let now = self.clock.now();
        let mut report = TickReport::default();
        for dag in dags {
            report.warnings.extend(self.register(dag)?);
            report.runs_created += self.create_due_runs(dag, now)?;
        }
        report.runs_started = self.store.start_queued_runs(now)?;
        let stale = now - self.options.heartbeat_timeout.as_millis() as Millis;
        let lost = self.store.requeue_lost(stale, now)?;
        report.tasks_requeued = lost.requeued.len();
        for id in lost.failed {
            report.tasks_failed_lost.extend(self.store.failed_task(id)?);
        }
        for run in self.store.running_runs()? {
            let (decided, finished) = advance_run(&mut self.store, run, now)?;
            report.tasks_decided += decided;
            report.runs_finished += usize::from(finished.is_some());
        }
        hushflow_metrics::lost_tries(report.tasks_requeued, report.tasks_failed_lost.len());
        let depths = self.store.queue_depths()?;
        hushflow_metrics::queue_depth(&depths, &self.queued_pipelines);
        self.queued_pipelines = depths.into_iter().map(|(p, _)| p).collect();
        let oldest = self.store.oldest_busy_heartbeat()?;
        hushflow_metrics::heartbeat_age(oldest.map_or(0.0, |h| (now - h) as f64 / 1000.0));
        hushflow_metrics::scheduler_tick(true);
        Ok(report)
    }

    fn create_due_runs(&mut self, dag: &Dag, now: Millis) -> Result<usize, StoreError> {
        let Some(schedule) = &dag.schedule else {
            return Ok(0);
        };
        let Some(pipeline) = self.store.pipeline(&dag.name)? else {
            return Ok(0);
        };
        if pipeline.paused {
            return Ok(0);
        }
        let from = match self.store.last_scheduled_end(&dag.name)? {
            Some(end) => end,
            None => dag.start_date.unwrap_or(pipeline.first_seen_at),
        };
        // Intervals a backfill already covers are skipped (the store refuses a second run
        // for an interval), so look that much further ahead.
        let covered = usize::try_from(self.store.runs_from(&dag.name, from)?).unwrap_or(0);
        let limit = self.options.catchup_per_tick + covered;
        let mut created = 0;
        for interval in schedule.due(from, now, dag.catchup, limit) {
            let run = NewRun {
                run_id: format!("scheduled__{}", rfc3339(interval.start)),
                run_type: "scheduled".into(),
                logical_date: interval.start,
                interval,
                conf: "{}".into(),
            };
            created += usize::from(self.store.create_run(dag, &run, now)?.is_some());
        }
        Ok(created)
    }
}

/// Moves a run on after one of its tasks ended: decides its tasks if one waits on that task,
/// else only checks whether the run is over. A wide run thus costs a count per task, not a
/// read of every task.
pub fn advance_after(
    store: &mut Store,
    run: i64,
    task: &str,
    now: Millis,
) -> Result<Option<RunState>, StoreError> {
    if store.has_waiting_downstream(run, task)? {
        return Ok(advance_run(store, run, now)?.1);
    }
    let (unfinished, failed) = store.run_progress(run)?;
    if unfinished > 0 {
        return Ok(None);
    }
    let state = if failed > 0 {
        RunState::Failed
    } else {
        RunState::Success
    };
    Ok(store.finish_run(run, state, now)?.then_some(state))
}

/// Decides the waiting tasks of one running run (in dependency order, so a failure cascades
/// in one pass) and ends the run when every task has. Workers call it after each task, so a
/// chain of tasks does not wait for the scheduler's next tick.
pub fn advance_run(
    store: &mut Store,
    run: i64,
    now: Millis,
) -> Result<(usize, Option<RunState>), StoreError> {
    let tasks = store.tasks_of(run)?;
    let mut states: HashMap<&str, TaskState> =
        tasks.iter().map(|t| (t.task.as_str(), t.state)).collect();
    let mut decisions = Vec::new();
    for t in &tasks {
        if t.state != TaskState::None {
            continue;
        }
        let upstream: Vec<TaskState> = t
            .upstream
            .iter()
            .map(|u| states.get(u.as_str()).copied().unwrap_or(TaskState::None))
            .collect();
        if let Some(next) = decide(&t.trigger_rule, &upstream) {
            decisions.push((t.id, next));
            states.insert(&t.task, next);
        }
    }
    let decided = store.decide_tasks(&decisions, now)?;
    let all: Vec<TaskState> = tasks.iter().map(|t| states[t.task.as_str()]).collect();
    let finished = match run_outcome(&all) {
        Some(state) if store.finish_run(run, state, now)? => Some(state),
        _ => None,
    };
    Ok((decided, finished))
}
