//! The orchestration listings: `hushflow pipelines`, `runs`, `tasks` and `logs`. Each asks the
//! app layer's query (`hushflow_app::actions::orchestration`) and prints its views as a table,
//! or as JSON lines with `--json`.

use super::{Exit, Failure, Session, failure};
use crate::cli::{JsonLines, LogsArgs, RunsArgs, TasksArgs};
use hushflow_app::actions::orchestration::{self, RunTasks};

/// One view as one line of JSON.
fn to_json(view: &impl serde::Serialize) -> Result<String, Failure> {
    serde_json::to_string(view).map_err(failure)
}

/// A run's or task's duration: seconds once ended, `…` while running, `-` before it starts.
fn duration_text(started_at: Option<&str>, seconds: Option<f64>) -> String {
    match (started_at, seconds) {
        (Some(_), Some(s)) => format!("{s:.1}s"),
        (Some(_), None) => "…".into(),
        _ => "-".into(),
    }
}

/// `hushflow pipelines`: what the metadata store schedules, whether it is paused, when it runs
/// next and how its newest run went.
pub(super) fn pipelines(session: &Session<'_>, args: &JsonLines) -> Result<Exit, Failure> {
    let json = args.json;
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

pub(super) fn runs(session: &Session<'_>, args: &RunsArgs) -> Result<Exit, Failure> {
    let out = session.out;
    let json = args.format.json;
    let runs = orchestration::runs(&session.app, args.pipeline.as_deref(), args.limit)?;
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

pub(super) fn print_tasks(
    session: &Session<'_>,
    run: &RunTasks,
    json: bool,
) -> Result<(), Failure> {
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

pub(super) fn tasks(session: &Session<'_>, args: &TasksArgs) -> Result<Exit, Failure> {
    let run = orchestration::tasks(&session.app, &args.run.run, args.run.pipeline.as_deref())?;
    print_tasks(session, &run, args.format.json)?;
    Ok(Exit::Success)
}

pub(super) fn logs(session: &Session<'_>, args: &LogsArgs) -> Result<Exit, Failure> {
    let LogsArgs { run, task, attempt } = args;
    let log = orchestration::logs(&session.app, &run.run, task, run.pipeline.as_deref())?;
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
