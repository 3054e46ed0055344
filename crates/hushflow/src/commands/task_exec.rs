//! `hushflow task-exec`: the child side of a task try. It reads the order a worker's
//! [`ProcessExecutor`](super::executor::ProcessExecutor) sends on stdin, runs the one task (a
//! sync, a `sql` statement batch, gc), and reports its counts on its last line of stdout.

use super::executor::{ChildReport, REPORT_PREFIX, TaskOrder};
use super::{Exit, Failure, Session, failure, invalid};
use hushflow_app::tasks::sql as sql_task;
use hushflow_spec::dag::{self, TaskKind};
use hushflow_spec::schedule::rfc3339;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Template values for a try: its run's interval and ids, and the run's `--conf`.
pub fn template_vars(order: &TaskOrder) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::from([
        (
            "data_interval_start".to_string(),
            rfc3339(order.interval_start),
        ),
        ("data_interval_end".to_string(), rfc3339(order.interval_end)),
        ("logical_date".to_string(), rfc3339(order.logical_date)),
        (
            "ds".to_string(),
            rfc3339(order.logical_date)[..10].to_string(),
        ),
        ("run_id".to_string(), order.run_id.clone()),
    ]);
    for (k, v) in &order.conf {
        vars.insert(format!("conf.{k}"), v.clone());
    }
    vars
}

/// `hushflow task-exec`: executes one try from the order on stdin.
pub(super) fn task_exec(session: &Session<'_>) -> Result<Exit, Failure> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(failure)?;
    let order: TaskOrder = serde_json::from_str(&input).map_err(|_| {
        invalid("task-exec reads a task order from a worker on stdin; it is not for direct use")
    })?;
    let _span = tracing::info_span!(
        "task",
        pipeline = %order.pipeline,
        run = %order.run_id,
        task = %order.task,
        attempt = order.attempt,
    )
    .entered();
    // The run's configuration came from the store: check it again before it reaches the text.
    for (k, v) in &order.conf {
        hushflow_app::actions::orchestration::check_conf(k, v)?;
    }
    let text = dag::render(&order.text, &template_vars(&order)).map_err(invalid)?;
    let d = dag::parse(
        &order.file,
        text,
        &super::secret_providers(None),
        &session.protected(),
    )
    .map_err(invalid)?;
    if d.name != order.pipeline {
        return Err(invalid(format!(
            "the definition is of pipeline {}, not of {}; refused",
            d.name, order.pipeline
        )));
    }
    let Some(index) = d.tasks.iter().position(|t| t.name == order.task) else {
        return Err(invalid(format!(
            "the pipeline {} has no task `{}` any more",
            order.pipeline, order.task
        )));
    };
    let at = TryAt {
        pipeline: &order.pipeline,
        task: &order.task,
        run_id: &order.run_id,
        attempt: order.attempt,
        timeout_ms: order.timeout_ms,
        file: &order.file,
    };
    let out = session.out;
    let (result, counts) = execute_task(session, d.tasks, index, &at, Default::default());
    if let Some(r) = counts {
        out.line(format!(
            "{REPORT_PREFIX}{}",
            serde_json::to_string(&r).unwrap_or_default()
        ));
    }
    result
}

/// Which try of which task runs: for the audit log, and the try's time limit.
pub(super) struct TryAt<'a> {
    pub pipeline: &'a str,
    pub task: &'a str,
    pub run_id: &'a str,
    pub attempt: i64,
    pub timeout_ms: Option<i64>,
    pub file: &'a std::path::Path,
}

/// Executes `tasks[index]` of a parsed DAG (the others are its file's, for a retention task):
/// the result, and the counts for whoever started the try (a worker, or `hushflow run --task`).
/// A sync runs with `options`.
pub(super) fn execute_task(
    session: &Session<'_>,
    mut tasks: Vec<dag::TaskDef>,
    index: usize,
    at: &TryAt<'_>,
    options: super::run::RunOptions<'_>,
) -> (Result<Exit, Failure>, Option<ChildReport>) {
    let task = tasks.swap_remove(index);
    // A retention task acts on the sinks of its file's sync tasks.
    let sync_plans = move || -> Vec<hushflow_spec::Plan> {
        tasks
            .into_iter()
            .filter_map(|t| match t.kind {
                TaskKind::Sync(plan) => Some(*plan),
                _ => None,
            })
            .collect()
    };
    let out = session.out;
    match task.kind {
        TaskKind::Sync(plan) => {
            let counts = std::cell::Cell::new(None);
            let prepared = match super::run::prepare_plan(session, *plan) {
                Ok(p) => p,
                Err(e) => return (Err(e), None),
            };
            let options = super::run::RunOptions {
                counts: Some(&counts),
                ..options
            };
            let result = super::run::execute(session, prepared, options);
            (result, counts.take())
        }
        TaskKind::Sql { database, sql } => {
            // A sql task changes a database like a sync does, so it is audited like one. The
            // keyring is opened only for a PostgreSQL URL (its `keyring:` references).
            let try_at = sql_task::TaskTry {
                pipeline: at.pipeline,
                task: at.task,
                run_id: at.run_id,
                attempt: at.attempt,
            };
            let keys = || session.keyring().map_err(Failure::into_app);
            // Stopped by its worker (SIGTERM), a PostgreSQL task cancels its statement on the
            // server before it exits; other tasks keep SIGTERM's default and end at once.
            let stop = Arc::new(AtomicBool::new(false));
            if matches!(database, dag::SqlDatabase::Postgres(_))
                && let Err(e) =
                    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))
            {
                return (Err(failure(e)), None);
            }
            let limits = sql_task::SqlLimits {
                timeout: at
                    .timeout_ms
                    .map(|ms| Duration::from_millis(ms.max(0) as u64)),
                stop: Some(&stop),
            };
            let result = sql_task::execute(
                &session.app,
                &session.actor,
                try_at,
                &database,
                &sql,
                at.file,
                keys,
                limits,
            );
            let rows = match result {
                Ok(rows) => rows,
                Err(e) => return (Err(e.into()), None),
            };
            out.line(format!(
                "sql: {} statement(s) committed, {rows} row(s) changed",
                sql.split(';').filter(|s| !s.trim().is_empty()).count()
            ));
            let report = ChildReport {
                written: Some(rows as i64),
                ..Default::default()
            };
            (Ok(Exit::Success), Some(report))
        }
        TaskKind::Gc => (super::gc::gc(session, false), None),
        TaskKind::Retention => {
            let views = match hushflow_app::actions::retention::enforce_plans(
                &session.app,
                &session.actor,
                sync_plans(),
            ) {
                Ok(v) => v,
                Err(e) => return (Err(e.into()), None),
            };
            let deleted: u64 = views.iter().map(|v| v.rows_deleted).sum();
            out.line(format!(
                "retention: {deleted} row(s) past retention deleted in {} sink(s)",
                views.len()
            ));
            let report = ChildReport {
                written: Some(deleted as i64),
                ..Default::default()
            };
            (Ok(Exit::Success), Some(report))
        }
        TaskKind::Empty => (Ok(Exit::Success), None),
    }
}
