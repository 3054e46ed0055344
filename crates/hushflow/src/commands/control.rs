//! Changing what runs: `hushflow pause`, `unpause` and `clear`, through the app layer's
//! audited actions (`hushflow_app::actions::orchestration`).

use super::{Exit, Failure, Session};
use crate::cli::{ClearArgs, PipelineArg};
use hushflow_app::actions::orchestration;

/// `hushflow pause` (`paused`) and `hushflow unpause`.
pub(super) fn pause(
    session: &Session<'_>,
    args: &PipelineArg,
    paused: bool,
) -> Result<Exit, Failure> {
    let pipeline = &args.pipeline;
    let name = orchestration::set_paused(&session.app, &session.actor, pipeline, paused)?;
    session.out.line(format!(
        "{name}: {}",
        if paused { "paused" } else { "unpaused" }
    ));
    Ok(Exit::Success)
}

pub(super) fn clear(session: &Session<'_>, args: &ClearArgs) -> Result<Exit, Failure> {
    let ClearArgs { run, tasks } = args;
    let c = orchestration::clear(
        &session.app,
        &session.actor,
        &run.run,
        tasks,
        run.pipeline.as_deref(),
    )?;
    if c.cleared.is_empty() {
        session.out.line(format!(
            "run {}: nothing to clear (no ended task matched)",
            c.run
        ));
    } else {
        session.out.line(format!(
            "run {}: cleared {}; the scheduler runs them again",
            c.run,
            c.cleared.join(", ")
        ));
    }
    Ok(Exit::Success)
}
