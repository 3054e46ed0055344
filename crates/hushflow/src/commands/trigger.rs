//! `hushflow trigger` and `hushflow backfill`: create runs through the app layer's actions and,
//! with `--wait`, execute them here until they end (`hushflow_app::actions::execution`),
//! printing their tasks.

use super::executor::ProcessExecutor;
use super::history::print_tasks;
use super::scheduler::stop_flag;
use super::{Exit, Failure, Session, failure};
use crate::cli::{BackfillArgs, TriggerArgs};
use hushflow_app::actions::{execution, orchestration};
use hushflow_scheduler::RunState;
use std::time::Duration;

pub(super) fn trigger(session: &Session<'_>, args: &TriggerArgs) -> Result<Exit, Failure> {
    let conf = args.conf.iter().cloned().collect();
    let t = orchestration::trigger(&session.app, &session.actor, &args.pipeline.pipeline, &conf)?;
    if let Some(w) = t.warning() {
        session.out.note(format!("warning: {w}"));
    }
    if args.json {
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
    match args.wait.wait() {
        Some(timeout) if !said_paused(session, &t.pipeline, t.paused) => {
            wait_for(session, &[t.run], timeout)
        }
        _ => Ok(Exit::Success),
    }
}

pub(super) fn backfill(session: &Session<'_>, args: &BackfillArgs) -> Result<Exit, Failure> {
    let b = orchestration::backfill(
        &session.app,
        &session.actor,
        &args.pipeline.pipeline,
        &args.from,
        &args.to,
    )?;
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
    match args.wait.wait() {
        Some(timeout) if !b.created.is_empty() && !said_paused(session, &b.pipeline, b.paused) => {
            wait_for(session, &b.created, timeout)
        }
        _ => Ok(Exit::Success),
    }
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

/// Executes the runs here until they end and prints their tasks; fails when one did not
/// succeed. Ctrl-C stops waiting (the runs stay queued).
fn wait_for(
    session: &Session<'_>,
    runs: &[i64],
    timeout: Option<Duration>,
) -> Result<Exit, Failure> {
    let exec = ProcessExecutor::for_session(session)?;
    let interrupted = stop_flag()?;
    let note = |text: String| session.out.note(text);
    let states = execution::wait_for_runs(&session.app, &exec, runs, timeout, &interrupted, &note)?;
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
