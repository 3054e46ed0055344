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
    let mut tasks = d.tasks;
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
    let report = |r: ChildReport| {
        out.line(format!(
            "{REPORT_PREFIX}{}",
            serde_json::to_string(&r).unwrap_or_default()
        ));
    };
    match task.kind {
        TaskKind::Sync(plan) => {
            let counts = std::cell::Cell::new(None);
            let prepared = super::run::prepare_plan(session, *plan)?;
            let options = super::run::RunOptions {
                counts: Some(&counts),
                ..Default::default()
            };
            let result = super::run::execute(session, prepared, options);
            if let Some(r) = counts.take() {
                report(r);
            }
            result
        }
        TaskKind::Sql { database, sql } => {
            // A sql task changes a database like a sync does, so it is audited like one. The
            // keyring is opened only for a PostgreSQL URL (its `keyring:` references).
            let at = sql_task::TaskTry {
                pipeline: &order.pipeline,
                task: &order.task,
                run_id: &order.run_id,
                attempt: order.attempt,
            };
            let keys = || session.keyring().map_err(Failure::into_app);
            // Stopped by its worker (SIGTERM), a PostgreSQL task cancels its statement on the
            // server before it exits; other tasks keep SIGTERM's default and end at once.
            let stop = Arc::new(AtomicBool::new(false));
            if matches!(database, dag::SqlDatabase::Postgres(_)) {
                signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))
                    .map_err(failure)?;
            }
            let limits = sql_task::SqlLimits {
                timeout: order
                    .timeout_ms
                    .map(|ms| Duration::from_millis(ms.max(0) as u64)),
                stop: Some(&stop),
            };
            let result = sql_task::execute(
                &session.app,
                &session.actor,
                at,
                &database,
                &sql,
                &order.file,
                keys,
                limits,
            );
            let rows = result?;
            out.line(format!(
                "sql: {} statement(s) committed, {rows} row(s) changed",
                sql.split(';').filter(|s| !s.trim().is_empty()).count()
            ));
            report(ChildReport {
                written: Some(rows as i64),
                ..Default::default()
            });
            Ok(Exit::Success)
        }
        TaskKind::Gc => super::gc::gc(session, false),
        TaskKind::Retention => {
            let views = hushflow_app::actions::retention::enforce_plans(
                &session.app,
                &session.actor,
                sync_plans(),
            )?;
            let deleted: u64 = views.iter().map(|v| v.rows_deleted).sum();
            out.line(format!(
                "retention: {deleted} row(s) past retention deleted in {} sink(s)",
                views.len()
            ));
            report(ChildReport {
                written: Some(deleted as i64),
                ..Default::default()
            });
            Ok(Exit::Success)
        }
        TaskKind::Empty => Ok(Exit::Success),
    }
}
