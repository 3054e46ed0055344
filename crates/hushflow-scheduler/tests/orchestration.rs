//! The scheduler and workers against both metadata stores: SQLite in a temporary directory and
//! the machine's PostgreSQL (127.0.0.1:5432, a fresh database per test). Time is a fake clock;
//! tasks are executed by a test executor that fails on command, so retries, backoff and
//! trigger rules are checked exactly.

// A test may unwrap: a panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hushflow_scheduler::store::StoreConfig;
use hushflow_scheduler::*;
use hushflow_spec::dag::{self, Dag};
use hushflow_spec::schedule::{Millis, parse_instant, rfc3339};
use hushflow_test_support::pg::Database;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// A metadata store for one test; a PostgreSQL database is dropped afterwards.
struct Meta {
    config: StoreConfig,
    _pg: Option<Database>,
    _dir: tempfile::TempDir,
}

impl Meta {
    /// Runs SQL on the store's database behind its back, as anyone with write access to it can.
    fn tamper(&self, sql: &str) {
        match (&self.config, &self._pg) {
            (StoreConfig::Sqlite(path), _) => rusqlite::Connection::open(path)
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            (_, Some(db)) => db.client().batch_execute(sql).unwrap(),
            _ => unreachable!(),
        }
    }

    /// `None` for PostgreSQL when no test server is configured (the test is skipped).
    fn new(backend: &str, tag: &str) -> Option<Meta> {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            "sqlite" => Some(Meta {
                config: StoreConfig::Sqlite(dir.path().join("metadata.db")),
                _pg: None,
                _dir: dir,
            }),
            _ => {
                let db = Database::new(&format!("sched_{tag}"))?;
                let config = StoreConfig::Postgres(hushflow_secrets::SecretValue::new(
                    db.url().into_bytes(),
                ));
                // PostgreSQL is never migrated implicitly.
                assert!(matches!(
                    config.open(0),
                    Err(StoreError::NotMigrated { .. })
                ));
                let (_, applied) = config.migrate(0).unwrap();
                assert_eq!(applied.len(), store::migrations::MIGRATIONS.len());
                assert!(
                    config.migrate(0).unwrap().1.is_empty(),
                    "migrating twice applies nothing"
                );
                Some(Meta {
                    config,
                    _pg: Some(db),
                    _dir: dir,
                })
            }
        }
    }

    fn store(&self) -> Store {
        self.config.open(0).unwrap()
    }
}

fn at(s: &str) -> Millis {
    parse_instant(s, None).unwrap()
}

fn dag(text: &str) -> Dag {
    dag::parse(
        std::path::Path::new("/nonexistent/dag.toml"),
        text.to_string(),
        &hushflow_secrets::SecretProviders::default(),
        &hushflow_spec::Protected::nothing(),
    )
    .unwrap()
}

/// A manual run with an empty interval at the epoch.
fn manual_run(id: &str) -> NewRun {
    NewRun {
        run_id: id.into(),
        run_type: "manual".into(),
        logical_date: 0,
        interval: hushflow_spec::schedule::Interval { start: 0, end: 0 },
        conf: "{}".into(),
    }
}

/// Empty tasks that fail while the executor says so.
#[derive(Default)]
struct Scripted {
    /// Failures left per task name.
    fail: Mutex<HashMap<String, u32>>,
    /// (task, attempt) in execution order.
    log: Mutex<Vec<(String, i64)>>,
    failed_for_good: Mutex<Vec<String>>,
}

impl Scripted {
    fn failing(pairs: &[(&str, u32)]) -> Scripted {
        let s = Scripted::default();
        *s.fail.lock().unwrap() = pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        s
    }
}

impl Executor for Scripted {
    fn execute(&self, claim: &Claim, _live: &LiveTry) -> TryOutcome {
        self.log
            .lock()
            .unwrap()
            .push((claim.task.clone(), claim.attempt));
        let mut fail = self.fail.lock().unwrap();
        let left = fail.entry(claim.task.clone()).or_insert(0);
        if *left > 0 {
            *left -= 1;
            return TryOutcome {
                success: false,
                error: Some(format!("scripted failure of {}", claim.task)),
                log: "failing on purpose\n".into(),
                ..Default::default()
            };
        }
        TryOutcome {
            success: true,
            log: "ok\n".into(),
            ..Default::default()
        }
    }

    fn failed(&self, task: &FailedTask) {
        self.failed_for_good.lock().unwrap().push(task.task.clone());
    }
}

/// Claims and executes every ready task once, as a worker's slot does.
fn work(store: &mut Store, clock: &FakeClock, exec: &Scripted) -> usize {
    let mut n = 0;
    while let Some(claim) = store.claim("w1", clock.now(), None).unwrap() {
        let outcome = exec.execute(&claim, &LiveTry::default());
        if let Completed::Now(TaskState::Failed) =
            store.complete(&claim, &outcome, clock.now()).unwrap()
        {
            exec.failed(&claim.failed(outcome.error.clone()));
        }
        advance_after(store, claim.run, &claim.task, clock.now()).unwrap();
        n += 1;
    }
    n
}

fn hourly_day_with_catchup(backend: &str) {
    let Some(meta) = Meta::new(backend, "hourly") else {
        return;
    };
    let clock = FakeClock::at(at("2026-11-30T00:00"));
    let d = dag(
        "[pipeline]\nname = \"hourly\"\nschedule = \"@hourly\"\ncatchup = true\n\
         start_date = \"2026-11-30\"\n[[task]]\nname = \"a\"\ntype = \"empty\"\n",
    );
    let mut s1 = Scheduler::new(meta.store(), &clock, SchedulerOptions::default());
    let mut s2 = Scheduler::new(meta.store(), &clock, SchedulerOptions::default());
    assert_eq!(s1.tick(&[&d]).unwrap().runs_created, 0);
    // An interval backfilled ahead of the scheduler is not scheduled a second time.
    let backfilled = NewRun {
        run_id: format!("backfill__{}", rfc3339(at("2026-11-30T05:00"))),
        run_type: "backfill".into(),
        logical_date: at("2026-11-30T05:00"),
        interval: hushflow_spec::schedule::Interval {
            start: at("2026-11-30T05:00"),
            end: at("2026-11-30T06:00"),
        },
        conf: "{}".into(),
    };
    assert!(
        meta.store()
            .create_run(&d, &backfilled, clock.now())
            .unwrap()
            .is_some()
    );
    // Through the day in uneven steps, two schedulers ticking on the same store.
    let mut now = at("2026-11-30T00:00");
    while now < at("2026-12-01T00:00") {
        now += 17 * 60_000;
        clock.set(now.min(at("2026-12-01T00:00")));
        s1.tick(&[&d]).unwrap();
        s2.tick(&[&d]).unwrap();
    }
    let mut store = meta.store();
    let mut runs = store.runs(Some("hourly"), 1000).unwrap();
    // `runs` lists by creation (the backfill of hour 5 came first); check them by interval.
    runs.sort_by_key(|r| r.logical_date);
    assert_eq!(runs.len(), 24, "one run per hour of the day");
    for (i, r) in runs.iter().enumerate() {
        let start = at("2026-11-30T00:00") + i as i64 * 3_600_000;
        assert_eq!(
            (r.interval.start, r.interval.end),
            (start, start + 3_600_000)
        );
        assert_eq!(r.logical_date, start);
        let kind = if i == 5 { "backfill" } else { "scheduled" };
        assert_eq!(r.run_id, format!("{kind}__{}", rfc3339(start)));
        assert_eq!(r.run_type, kind);
    }
    // max_active_runs = 1: one runs, the rest wait their turn.
    let running = runs.iter().filter(|r| r.state == RunState::Running).count();
    assert_eq!(running, 1);
    // Working through them runs each exactly once, oldest first.
    let exec = Scripted::default();
    for _ in 0..30 {
        work(&mut store, &clock, &exec);
        s1.tick(&[&d]).unwrap();
    }
    let log = exec.log.lock().unwrap();
    assert_eq!(log.len(), 24);
    assert!(
        store
            .runs(Some("hourly"), 1000)
            .unwrap()
            .iter()
            .all(|r| r.state == RunState::Success)
    );
    // Ticking again later in the same hour creates nothing new.
    // Retention keeps the newest scheduled run, so scheduling does not start over.
    let (runs_pruned, tasks_pruned, _) = store.prune(at("2026-12-02"), None).unwrap();
    assert_eq!((runs_pruned, tasks_pruned), (23, 23));
    clock.set(at("2026-12-01T00:59"));
    assert_eq!(s1.tick(&[&d]).unwrap().runs_created, 0);
    clock.set(at("2026-12-01T01:00"));
    assert_eq!(s2.tick(&[&d]).unwrap().runs_created, 1);
}

#[test]
fn sqlite_hourly_day_with_catchup() {
    hourly_day_with_catchup("sqlite");
}

#[test]
fn postgres_hourly_day_with_catchup() {
    hourly_day_with_catchup("postgres");
}

#[test]
fn without_catchup_only_the_latest_interval_runs() {
    let Some(meta) = Meta::new("sqlite", "latest") else {
        return;
    };
    let clock = FakeClock::at(at("2026-12-01T10:30"));
    let d = dag(
        "[pipeline]\nname = \"p\"\nschedule = \"@hourly\"\nstart_date = \"2026-11-01\"\n\
         [[task]]\nname = \"a\"\ntype = \"empty\"\n",
    );
    let mut s = Scheduler::new(meta.store(), &clock, SchedulerOptions::default());
    assert_eq!(s.tick(&[&d]).unwrap().runs_created, 1);
    let runs = meta.store().runs(None, 10).unwrap();
    assert_eq!(runs[0].interval.start, at("2026-12-01T09:00"));
    // Paused: nothing new is created.
    meta.store().set_paused("p", true).unwrap();
    clock.set(at("2026-12-01T14:00"));
    assert_eq!(s.tick(&[&d]).unwrap().runs_created, 0);
    meta.store().set_paused("p", false).unwrap();
    assert_eq!(s.tick(&[&d]).unwrap().runs_created, 1);
}

fn retries_and_trigger_rules(backend: &str) {
    let Some(meta) = Meta::new(backend, "retries") else {
        return;
    };
    let clock = FakeClock::at(at("2026-12-01T00:00"));
    let d = dag(
        "[pipeline]\nname = \"p\"\nretry_delay = \"30s\"\nmax_retry_delay = \"100s\"\n\
         [[task]]\nname = \"flaky\"\ntype = \"empty\"\nretries = 3\n\
         [[task]]\nname = \"after\"\ntype = \"empty\"\ndepends_on = [\"flaky\"]\n\
         [[task]]\nname = \"broken\"\ntype = \"empty\"\nretries = 1\nretry_delay = \"10s\"\n\
         [[task]]\nname = \"needs_broken\"\ntype = \"empty\"\ndepends_on = [\"broken\"]\n\
         [[task]]\nname = \"and_then\"\ntype = \"empty\"\ndepends_on = [\"needs_broken\"]\n\
         [[task]]\nname = \"on_failure\"\ntype = \"empty\"\ndepends_on = [\"broken\"]\ntrigger_rule = \"one_failed\"\n\
         [[task]]\nname = \"cleanup\"\ntype = \"empty\"\ndepends_on = [\"after\", \"and_then\"]\ntrigger_rule = \"all_done\"\n\
         [[task]]\nname = \"if_fine\"\ntype = \"empty\"\ndepends_on = [\"flaky\"]\ntrigger_rule = \"one_failed\"\n",
    );
    let mut s = Scheduler::new(meta.store(), &clock, SchedulerOptions::default());
    s.register(&d).unwrap();
    let mut store = meta.store();
    let run = NewRun {
        run_id: "manual__1".into(),
        run_type: "manual".into(),
        logical_date: clock.now(),
        interval: hushflow_spec::schedule::Interval {
            start: clock.now(),
            end: clock.now(),
        },
        conf: "{}".into(),
    };
    let id = store.create_run(&d, &run, clock.now()).unwrap().unwrap();
    assert!(
        store.create_run(&d, &run, clock.now()).unwrap().is_none(),
        "a run id is created once"
    );
    let exec = Scripted::failing(&[("flaky", 2), ("broken", 5)]);
    s.tick(&[]).unwrap();
    work(&mut store, &clock, &exec);
    let state = |store: &mut Store, name: &str| {
        store
            .tasks_of(id)
            .unwrap()
            .into_iter()
            .find(|t| t.task == name)
            .unwrap()
    };
    let flaky = state(&mut store, "flaky");
    assert_eq!(
        (flaky.state, flaky.tries, flaky.failures),
        (TaskState::UpForRetry, 1, 1)
    );
    assert_eq!(flaky.next_try_at, Some(clock.now() + 30_000));
    // Not due yet 29 s later (broken, with a 10 s delay, is).
    clock.advance(Duration::from_secs(29));
    work(&mut store, &clock, &exec);
    assert_eq!(state(&mut store, "flaky").tries, 1);
    clock.advance(Duration::from_secs(1));
    work(&mut store, &clock, &exec);
    let flaky = state(&mut store, "flaky");
    assert_eq!((flaky.state, flaky.tries), (TaskState::UpForRetry, 2));
    // Exponential: the second retry waits 60 s.
    assert_eq!(flaky.next_try_at, Some(clock.now() + 60_000));
    assert_eq!(
        state(&mut store, "broken").state,
        TaskState::Failed,
        "retries = 1: two tries"
    );
    assert_eq!(
        state(&mut store, "needs_broken").state,
        TaskState::UpstreamFailed
    );
    assert_eq!(
        state(&mut store, "and_then").state,
        TaskState::UpstreamFailed,
        "cascades in one pass"
    );
    assert_eq!(
        state(&mut store, "on_failure").state,
        TaskState::Success,
        "one_failed ran"
    );
    clock.advance(Duration::from_secs(60));
    work(&mut store, &clock, &exec);
    s.tick(&[]).unwrap();
    let flaky = state(&mut store, "flaky");
    assert_eq!(
        (flaky.state, flaky.tries, flaky.failures),
        (TaskState::Success, 3, 2)
    );
    assert_eq!(state(&mut store, "after").state, TaskState::Success);
    assert_eq!(
        state(&mut store, "cleanup").state,
        TaskState::Success,
        "all_done runs after failures"
    );
    assert_eq!(state(&mut store, "if_fine").state, TaskState::Skipped);
    let tries = store.tries(flaky.id).unwrap();
    let states: Vec<&str> = tries.iter().map(|t| t.state.as_str()).collect();
    assert_eq!(states, ["failed", "failed", "success"]);
    assert_eq!(tries[0].error.as_deref(), Some("scripted failure of flaky"));
    assert_eq!(*exec.failed_for_good.lock().unwrap(), ["broken"]);
    let r = store.find_run("manual__1", None).unwrap();
    assert_eq!(r[0].state, RunState::Failed, "a failed task fails the run");
    // Clearing works on finished runs only; this one is, so the failed tasks go back to wait.
    let cleared = store.clear_tasks(id, &[]).unwrap();
    assert_eq!(
        cleared,
        [
            "broken",
            "needs_broken",
            "and_then",
            "on_failure",
            "cleanup"
        ]
    );
    assert!(matches!(
        store.clear_tasks(id, &["flaky".to_string()]),
        Err(StoreError::NotFinished)
    ));
    assert_eq!(state(&mut store, "broken").state, TaskState::None);
    assert_eq!(state(&mut store, "broken").failures, 0);
    assert_eq!(
        state(&mut store, "flaky").state,
        TaskState::Success,
        "untouched"
    );
    // The run cannot be finished while its cleared tasks wait.
    assert!(
        !store
            .finish_run(id, RunState::Success, clock.now())
            .unwrap()
    );
    // Retention: a finished run goes with its tasks and tries once it is old enough.
    for _ in 0..3 {
        s.tick(&[]).unwrap();
        work(&mut store, &clock, &exec);
        clock.advance(Duration::from_secs(60));
    }
    assert_eq!(
        store.find_run("manual__1", None).unwrap()[0].state,
        RunState::Failed,
        "broken fails its two tries again"
    );
    let ended = store.find_run("manual__1", None).unwrap()[0]
        .ended_at
        .unwrap();
    assert_eq!(store.prune(ended, None).unwrap(), (0, 0, 0));
    let (runs, tasks, tries) = store.prune(ended + 1, Some("p")).unwrap();
    assert_eq!((runs, tasks), (1, 8));
    assert!(tries >= 8, "{tries}");
    assert!(store.find_run("manual__1", None).unwrap().is_empty());
}

/// A cleared task runs anew: its start and end are those of its new try, within its run's
/// new start and end, so the two durations agree (the task's was once counted from its first
/// try, before the clear, while the run's restarted).
fn cleared_task_times_fit_in_its_run(backend: &str) {
    let Some(meta) = Meta::new(backend, "cleared") else {
        return;
    };
    let clock = FakeClock::at(at("2026-11-30T00:00"));
    let d = dag(
        "[pipeline]\nname = \"c\"\n[[task]]\nname = \"a\"\ntype = \"empty\"\n\
         [[task]]\nname = \"b\"\ntype = \"empty\"\ndepends_on = [\"a\"]\n",
    );
    let mut s = Scheduler::new(meta.store(), &clock, SchedulerOptions::default());
    s.register(&d).unwrap();
    let mut store = meta.store();
    let id = store
        .create_run(&d, &manual_run("manual__1"), clock.now())
        .unwrap()
        .unwrap();
    let exec = Scripted::failing(&[("b", 1)]);
    let step = |store: &mut Store, s: &mut Scheduler<'_>| {
        for _ in 0..4 {
            s.tick(&[]).unwrap();
            clock.advance(Duration::from_secs(1));
            work(store, &clock, &exec);
            clock.advance(Duration::from_secs(1));
        }
    };
    step(&mut store, &mut s);
    assert_eq!(
        store.find_run("manual__1", None).unwrap()[0].state,
        RunState::Failed
    );
    clock.advance(Duration::from_secs(3600));
    assert_eq!(store.clear_tasks(id, &["b".to_string()]).unwrap(), ["b"]);
    step(&mut store, &mut s);
    let run = store.find_run("manual__1", None).unwrap().remove(0);
    assert_eq!(run.state, RunState::Success);
    let (run_start, run_end) = (run.started_at.unwrap(), run.ended_at.unwrap());
    let b = store
        .tasks_of(id)
        .unwrap()
        .into_iter()
        .find(|t| t.task == "b")
        .unwrap();
    let (start, end) = (b.started_at.unwrap(), b.ended_at.unwrap());
    assert!(
        run_start <= start && end <= run_end,
        "task b ran {start}..{end}, outside its run's {run_start}..{run_end}"
    );
    assert!(end - start <= run_end - run_start);
    // Its tries are all kept, numbered on.
    assert_eq!(store.tries(b.id).unwrap().len(), 2);
}

#[test]
fn sqlite_cleared_task_times_fit_in_its_run() {
    cleared_task_times_fit_in_its_run("sqlite");
}

#[test]
fn postgres_cleared_task_times_fit_in_its_run() {
    cleared_task_times_fit_in_its_run("postgres");
}

#[test]
fn sqlite_retries_and_trigger_rules() {
    retries_and_trigger_rules("sqlite");
}

#[test]
fn postgres_retries_and_trigger_rules() {
    retries_and_trigger_rules("postgres");
}

fn pools_and_lost_workers(backend: &str) {
    // (the pool's slots are held by the claims below)
    let Some(meta) = Meta::new(backend, "pools") else {
        return;
    };
    let clock = FakeClock::at(at("2026-12-01T00:00"));
    let d = dag("[pipeline]\nname = \"p\"\n[pools]\ncrm = 2\n\
         [[task]]\nname = \"a\"\ntype = \"empty\"\npool = \"crm\"\n\
         [[task]]\nname = \"b\"\ntype = \"empty\"\npool = \"crm\"\n\
         [[task]]\nname = \"c\"\ntype = \"empty\"\npool = \"crm\"\n\
         [[task]]\nname = \"d\"\ntype = \"empty\"\n");
    let mut s = Scheduler::new(meta.store(), &clock, SchedulerOptions::default());
    s.register(&d).unwrap();
    let mut store = meta.store();
    let run = manual_run("manual__1");
    store.create_run(&d, &run, clock.now()).unwrap().unwrap();
    s.tick(&[]).unwrap();
    store.register_worker("dead", "h", clock.now()).unwrap();
    let mut claims = Vec::new();
    while let Some(c) = store.claim("dead", clock.now(), None).unwrap() {
        claims.push(c);
    }
    let names: Vec<&str> = claims.iter().map(|c| c.task.as_str()).collect();
    assert_eq!(
        names,
        ["a", "b", "d"],
        "the pool holds c back while a and b run"
    );
    // The worker stops heartbeating: after the timeout its tasks are queued again.
    clock.advance(Duration::from_secs(31));
    assert_eq!(s.tick(&[]).unwrap().tasks_requeued, 3);
    // Its late completion no longer counts.
    let late = store
        .complete(
            &claims[0],
            &TryOutcome {
                success: true,
                ..Default::default()
            },
            clock.now(),
        )
        .unwrap();
    assert_eq!(late, Completed::NotOwner);
    let exec = Scripted::default();
    work(&mut store, &clock, &exec);
    let tasks = store.tasks_of(claims[0].run).unwrap();
    assert!(
        tasks.iter().all(|t| t.state == TaskState::Success),
        "{tasks:?}"
    );
    let a = &tasks[0];
    let tries: Vec<String> = store
        .tries(a.id)
        .unwrap()
        .into_iter()
        .map(|t| t.state)
        .collect();
    assert_eq!(tries, ["lost", "success"]);
    assert_eq!(a.failures, 0, "a lost try is not the task's failure");
}

#[test]
fn sqlite_pools_and_lost_workers() {
    pools_and_lost_workers("sqlite");
}

#[test]
fn postgres_pools_and_lost_workers() {
    pools_and_lost_workers("postgres");
}

/// Real worker threads on PostgreSQL: four workers with two slots each drain 200 tasks, each
/// task executed exactly once.
#[test]
fn postgres_workers_claim_each_task_once() {
    let Some(meta) = Meta::new("postgres", "claims") else {
        return;
    };
    let clock = SystemClock;
    let mut text = String::from("[pipeline]\nname = \"wide\"\n");
    for i in 0..200 {
        text.push_str(&format!("[[task]]\nname = \"t{i}\"\ntype = \"empty\"\n"));
    }
    let d = dag(&text);
    let mut s = Scheduler::new(meta.store(), &clock, SchedulerOptions::default());
    s.register(&d).unwrap();
    let run = manual_run("manual__1");
    meta.store().create_run(&d, &run, clock.now()).unwrap();
    s.tick(&[]).unwrap();
    let exec = Scripted::default();
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let mut o = WorkerOptions::new(2);
                o.until_idle = true;
                o.poll = Duration::from_millis(20);
                run_worker(&meta.config, &clock, &exec, &o, &stop).unwrap();
            });
        }
    });
    let log = exec.log.lock().unwrap();
    assert_eq!(log.len(), 200);
    let mut names: Vec<&str> = log.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 200, "no task ran twice");
    assert_eq!(
        meta.store().runs(None, 1).unwrap()[0].state,
        RunState::Success
    );
}

/// A long queue in a full pool does not hide the ready tasks behind it, and a worker limited to
/// some runs (`trigger --wait`) claims nothing else.
#[test]
fn a_full_pool_does_not_starve_other_tasks() {
    let Some(meta) = Meta::new("postgres", "starve") else {
        return;
    };
    let clock = FakeClock::at(at("2026-12-01T00:00"));
    let mut text = String::from("[pipeline]\nname = \"p\"\n[pools]\ncrm = 1\n");
    for i in 0..40 {
        text.push_str(&format!(
            "[[task]]\nname = \"crm{i}\"\ntype = \"empty\"\npool = \"crm\"\n"
        ));
    }
    text.push_str("[[task]]\nname = \"other\"\ntype = \"empty\"\n");
    let d = dag(&text);
    let mut s = Scheduler::new(meta.store(), &clock, SchedulerOptions::default());
    s.register(&d).unwrap();
    let mut store = meta.store();
    let run = |id: &str| NewRun {
        run_id: id.into(),
        run_type: "manual".into(),
        logical_date: 0,
        interval: hushflow_spec::schedule::Interval { start: 0, end: 0 },
        conf: "{}".into(),
    };
    let first = store
        .create_run(&d, &run("manual__1"), clock.now())
        .unwrap()
        .unwrap();
    s.tick(&[]).unwrap();
    store.register_worker("w", "h", clock.now()).unwrap();
    let a = store.claim("w", clock.now(), None).unwrap().unwrap();
    assert_eq!(a.task, "crm0");
    let b = store.claim("w", clock.now(), None).unwrap().unwrap();
    assert_eq!(b.task, "other", "the 39 waiting crm tasks do not hide it");
    assert!(store.claim("w", clock.now(), None).unwrap().is_none());
    // Limited to another run, a worker claims nothing of this one.
    assert!(
        store
            .claim("w", clock.now(), Some(&[first + 1]))
            .unwrap()
            .is_none()
    );
}

/// Stops the first try when told to, succeeds on the next.
struct Cancellable {
    cancelled: AtomicBool,
}

impl Executor for Cancellable {
    fn execute(&self, claim: &Claim, live: &LiveTry) -> TryOutcome {
        live.append(&format!("try {} started\n", claim.attempt));
        if claim.attempt >= 2 {
            return TryOutcome {
                success: true,
                ..Default::default()
            };
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if live.cancelled() {
                self.cancelled
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                return TryOutcome {
                    success: false,
                    error: Some("cancelled".into()),
                    ..Default::default()
                };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        TryOutcome {
            success: true,
            ..Default::default()
        }
    }
}

/// A worker that finds its task handed to another worker (a scheduler thought it dead) stops
/// that try at its next heartbeat: the task does not keep running in two places.
#[test]
fn a_worker_stops_a_try_that_was_taken_from_it() {
    let Some(meta) = Meta::new("sqlite", "taken") else {
        return;
    };
    let clock = SystemClock;
    let d = dag("[pipeline]\nname = \"p\"\n[[task]]\nname = \"long\"\ntype = \"empty\"\n");
    let mut s = Scheduler::new(meta.store(), &clock, SchedulerOptions::default());
    s.register(&d).unwrap();
    let run = manual_run("manual__1");
    meta.store().create_run(&d, &run, clock.now()).unwrap();
    s.tick(&[]).unwrap();
    let exec = Cancellable {
        cancelled: AtomicBool::new(false),
    };
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut o = WorkerOptions::new(1);
            o.until_idle = true;
            o.poll = Duration::from_millis(20);
            o.heartbeat_every = Duration::from_millis(50);
            run_worker(&meta.config, &clock, &exec, &o, &stop).unwrap();
        });
        let mut store = meta.store();
        while store.tasks_of(1).unwrap()[0].state != TaskState::Running {
            std::thread::sleep(Duration::from_millis(10));
        }
        // The running try's output reaches the store at the worker's heartbeats.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let task = store.tasks_of(1).unwrap()[0].id;
            let log = store.tries(task).unwrap()[0]
                .log
                .clone()
                .unwrap_or_default();
            if log.contains("try 1 started") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no live log");
            std::thread::sleep(Duration::from_millis(10));
        }
        // As a scheduler does when the heartbeat is late: hand the task back.
        let lost = store
            .requeue_lost(clock.now() + 60_000, clock.now())
            .unwrap();
        assert_eq!(lost.requeued.len(), 1);
    });
    assert!(
        exec.cancelled.load(std::sync::atomic::Ordering::SeqCst),
        "the first try was stopped"
    );
    let mut store = meta.store();
    let task = &store.tasks_of(1).unwrap()[0];
    assert_eq!(
        (task.state, task.tries, task.failures),
        (TaskState::Success, 2, 0)
    );
    let tries: Vec<String> = store
        .tries(task.id)
        .unwrap()
        .into_iter()
        .map(|t| t.state)
        .collect();
    assert_eq!(tries, ["lost", "success"]);
}

/// Records what a worker executed and what it refused.
#[derive(Default)]
struct Watching {
    executed: Mutex<Vec<String>>,
    refused: Mutex<Vec<String>>,
    failed: Mutex<Vec<String>>,
}

impl Executor for Watching {
    fn execute(&self, claim: &Claim, _live: &LiveTry) -> TryOutcome {
        self.executed.lock().unwrap().push(claim.text.clone());
        TryOutcome {
            success: true,
            ..Default::default()
        }
    }

    fn failed(&self, task: &FailedTask) {
        self.failed.lock().unwrap().push(task.task.clone());
    }

    fn refused(&self, _claim: &Claim, reason: &str) {
        self.refused.lock().unwrap().push(reason.to_string());
    }
}

/// A worker executes a definition only if its text still hashes to the fingerprint the run was
/// created from and it is signed by a key the worker trusts: changing the text in the store
/// (with or without a matching fingerprint) or signing with another key gets the try refused.
fn refused_definitions(backend: &str) {
    let Some(meta) = Meta::new(backend, "signed") else {
        return;
    };
    let clock = SystemClock;
    let signer = DefinitionSigner::generate().unwrap();
    let text = "[pipeline]\nname = \"p\"\n[[task]]\nname = \"a\"\ntype = \"empty\"\n";
    let d = dag(text);
    let mut s = Scheduler::new(
        meta.store(),
        &clock,
        SchedulerOptions {
            signer: Some(signer.clone()),
            ..Default::default()
        },
    );
    s.register(&d).unwrap();
    let mut options = WorkerOptions::new(1);
    options.until_idle = true;
    options.poll = Duration::from_millis(10);
    options.trust = DefinitionTrust::SignedBy(vec![signer.public_key()]);
    // Runs one manual run through a worker; the task's error, and what the executor saw.
    let run_once = |s: &mut Scheduler<'_>, id: &str, tamper: &dyn Fn(i64)| {
        let run = meta
            .store()
            .create_run(&d, &manual_run(id), clock.now())
            .unwrap()
            .unwrap();
        tamper(run);
        s.tick(&[]).unwrap();
        let exec = Watching::default();
        run_worker(
            &meta.config,
            &clock,
            &exec,
            &options,
            &AtomicBool::new(false),
        )
        .unwrap();
        let task = meta.store().tasks_of(run).unwrap().remove(0);
        (task, exec)
    };

    // Untouched: it runs.
    let (task, exec) = run_once(&mut s, "manual__ok", &|_| {});
    assert_eq!(task.state, TaskState::Success, "{:?}", task.error);
    assert_eq!(*exec.executed.lock().unwrap(), [text]);

    // The text changed in the store, its fingerprint kept (the reported attack).
    let evil = text.replace("type = \"empty\"", "type = \"gc\"");
    let (task, exec) = run_once(&mut s, "manual__altered", &|_| {
        meta.tamper(&format!(
            "UPDATE hf_definitions SET text = '{}'",
            evil.replace('\'', "''")
        ))
    });
    assert_eq!(task.state, TaskState::Failed);
    let error = task.error.unwrap();
    assert!(error.contains("does not match its fingerprint"), "{error}");
    assert!(exec.executed.lock().unwrap().is_empty(), "nothing ran");
    assert_eq!(*exec.refused.lock().unwrap(), [error]);
    assert!(
        exec.failed.lock().unwrap().is_empty(),
        "a refused definition's webhook is not read"
    );
    let log = meta.store().tries(task.id).unwrap()[0].log.clone().unwrap();
    assert!(log.contains("does not match its fingerprint"), "{log}");

    // Registering the file again heals it.
    meta.store()
        .register(&d, Some(&signer), clock.now())
        .unwrap();
    let (task, _) = run_once(&mut s, "manual__healed", &|_| {});
    assert_eq!(task.state, TaskState::Success, "{:?}", task.error);

    // A new definition with a fingerprint that fits its text, the run pointed at it: unsigned.
    let fp = definitions::fingerprint(&evil);
    let insert = |signature: &str| {
        format!(
            "DELETE FROM hf_definitions WHERE fingerprint = '{fp}'; \
             INSERT INTO hf_definitions (fingerprint, pipeline, file, text, created_at, signature) \
             VALUES ('{fp}', 'p', '/nonexistent/dag.toml', '{}', 0, {signature})",
            evil.replace('\'', "''")
        )
    };
    let repoint = |run: i64| format!("UPDATE hf_runs SET fingerprint = '{fp}' WHERE id = {run}");
    let (task, exec) = run_once(&mut s, "manual__unsigned", &|run| {
        meta.tamper(&insert("NULL"));
        meta.tamper(&repoint(run));
    });
    assert!(task.error.unwrap().contains("is not signed"));
    assert!(exec.executed.lock().unwrap().is_empty());

    // Signed, but by a key the worker was not given.
    let stranger = DefinitionSigner::generate().unwrap();
    let forged = stranger.sign(&fp, "p", std::path::Path::new("/nonexistent/dag.toml"));
    let (task, exec) = run_once(&mut s, "manual__forged", &|run| {
        meta.tamper(&insert(&format!("'{forged}'")));
        meta.tamper(&repoint(run));
    });
    let error = task.error.unwrap();
    assert!(
        error.contains("not from a key this worker trusts"),
        "{error}"
    );
    assert!(exec.executed.lock().unwrap().is_empty());

    // The same definition signed by the trusted key runs: the check is the key, not the text.
    let genuine = signer.sign(&fp, "p", std::path::Path::new("/nonexistent/dag.toml"));
    let (task, exec) = run_once(&mut s, "manual__genuine", &|run| {
        meta.tamper(&insert(&format!("'{genuine}'")));
        meta.tamper(&repoint(run));
    });
    assert_eq!(task.state, TaskState::Success, "{:?}", task.error);
    assert_eq!(*exec.executed.lock().unwrap(), [evil]);
}

#[test]
fn sqlite_workers_refuse_definitions_changed_in_the_store() {
    refused_definitions("sqlite");
}

#[test]
fn postgres_workers_refuse_definitions_changed_in_the_store() {
    refused_definitions("postgres");
}

/// A data subject request and its systems, in either backend: a system recorded twice (a
/// resumed request) is kept once, and the request's state and deadline read back.
fn dsr_requests(backend: &str) {
    let Some(meta) = Meta::new(backend, "dsr") else {
        return;
    };
    let mut s = meta.store();
    let request = store::DsrRequest {
        id: "dsr-1".into(),
        kind: "erase".into(),
        law: "ccpa".into(),
        subject_digest: "ab".repeat(32),
        state: "open".into(),
        created_at: 1_000,
        deadline_at: 1_000 + 45 * 86_400_000,
        completed_at: None,
    };
    s.create_dsr(&request).unwrap();
    assert_eq!(
        s.open_dsr(&request.subject_digest, "erase").unwrap(),
        Some(request.clone())
    );
    assert_eq!(
        s.open_dsr(&request.subject_digest, "opt-out").unwrap(),
        None
    );
    let step = |system: &str, count| store::DsrStep {
        system: system.into(),
        state: "done".into(),
        detail: "deleted rows".into(),
        count,
        done_at: 2_000,
    };
    s.dsr_step_done("dsr-1", &step("pipeline a", 1)).unwrap();
    s.dsr_step_done("dsr-1", &step("pipeline a", 7)).unwrap();
    s.dsr_step_done("dsr-1", &step("suppression list", 1))
        .unwrap();
    let steps = s.dsr_steps("dsr-1").unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].count, 1, "the first record of a system stands");
    s.complete_dsr("dsr-1", 3_000).unwrap();
    let done = s.dsr("dsr-1").unwrap().unwrap();
    assert_eq!(
        (done.state.as_str(), done.completed_at),
        ("done", Some(3_000))
    );
    assert_eq!(s.open_dsr(&request.subject_digest, "erase").unwrap(), None);
    assert_eq!(s.dsrs().unwrap().len(), 1);
}

#[test]
fn sqlite_stores_data_subject_requests() {
    dsr_requests("sqlite");
}

#[test]
fn postgres_stores_data_subject_requests() {
    dsr_requests("postgres");
}
