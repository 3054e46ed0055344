//! `hushflow scheduler` and `hushflow worker`: the long-running processes. They turn the
//! timing options into the scheduler's and worker's options, install the signal handlers and
//! run the app layer's loop (`hushflow_app::actions::execution`) with the process executor
//! (`executor.rs`), printing its notes.

use super::executor::ProcessExecutor;
use super::{Exit, Failure, Session, failure, invalid};
use crate::cli::{MetricsOptions, SchedulerArgs, Timing, WorkerArgs};
use hushflow_app::actions::execution::{self, PipelineDir, SchedulerLoop};
use hushflow_scheduler::{SchedulerOptions, SystemClock, WorkerOptions, run_worker};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// SIGINT and SIGTERM ask for a graceful stop: no new claims, running tries finish.
pub(super) fn stop_flag() -> Result<Arc<AtomicBool>, Failure> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(failure)?;
    }
    Ok(stop)
}

/// Worker options; the worker runs only definitions the session trusts (signed with the
/// definition key, or a key of --definition-public-key).
fn worker_options(
    session: &Session<'_>,
    concurrency: usize,
    timing: &Timing,
) -> Result<WorkerOptions, Failure> {
    let mut o = WorkerOptions::new(concurrency);
    o.trust = session.app.definition_trust()?;
    o.until_idle = timing.until_idle;
    o.heartbeat_every = timing.heartbeat_every;
    o.heartbeat_timeout = timing.heartbeat_timeout;
    o.poll = timing.poll;
    if o.heartbeat_every.is_zero() || o.heartbeat_every * 3 > o.heartbeat_timeout {
        return Err(invalid(
            "--heartbeat-every must be at most a third of --heartbeat-timeout, or live workers \
             would be taken for dead and their tasks run twice",
        ));
    }
    Ok(o)
}

/// Serves the metrics when `--metrics-addr` is given, and follows the audit log for them. The
/// long-running commands call it first (`scheduler`, `worker`; the server will too).
pub(super) fn serve_metrics(
    session: &Session<'_>,
    options: &MetricsOptions,
) -> Result<(), Failure> {
    let Some(addr) = options.metrics_addr else {
        return Ok(());
    };
    let bound = hushflow_metrics::exporter::serve(addr).map_err(failure)?;
    session
        .out
        .note(format!("metrics: serving http://{bound}/metrics"));
    hushflow_app::monitor::spawn_audit_metrics(
        session.state.clone(),
        std::time::Duration::from_secs(2),
        std::time::Duration::from_secs(300),
    );
    Ok(())
}

pub(super) fn scheduler(session: &Session<'_>, args: &SchedulerArgs) -> Result<Exit, Failure> {
    let SchedulerArgs {
        pipelines,
        parallelism,
        timing,
        metrics,
    } = args;
    serve_metrics(session, metrics)?;
    let config = session.app.store_config()?;
    let options = SchedulerOptions {
        heartbeat_timeout: timing.heartbeat_timeout,
        // The definitions it registers are signed: workers run nothing else.
        signer: Some(session.app.definition_signer()?),
        ..Default::default()
    };
    let stop = stop_flag()?;
    let shipping = super::audit::start_configured_shipping(session, &stop)?;
    if !pipelines.is_dir() {
        session.out.note(format!(
            "note: {} is not a directory, so no pipeline is scheduled from files; runs made with \
             `hushflow trigger` and `backfill` are still executed (pass --pipelines DIR)",
            pipelines.display()
        ));
    }
    let note = |text: String| session.out.note(text);
    let mut dir = PipelineDir::new(pipelines.clone());
    let exec = ProcessExecutor::for_session(session)?;
    let mut workers = worker_options(session, *parallelism, timing)?;
    // The local worker stops when the scheduler does: deciding idleness itself, it could leave
    // between ticks while the next tick still creates runs.
    workers.until_idle = false;
    tracing::info!(
        "scheduler: {} pipeline file(s) in {}, {} local slot(s), metadata {config:?}",
        dir.refresh(&session.app, &note).len(),
        pipelines.display(),
        parallelism
    );
    let options = SchedulerLoop {
        tick: timing.tick,
        until_idle: timing.until_idle,
        scheduler: options,
        worker: (*parallelism > 0).then_some(workers),
    };
    let result = execution::run_scheduler(&session.app, &mut dir, &exec, options, &stop, &note);
    stop_shipping(&stop, shipping);
    result?;
    Ok(Exit::Success)
}

pub(super) fn worker(session: &Session<'_>, args: &WorkerArgs) -> Result<Exit, Failure> {
    let config = session.app.store_config()?;
    serve_metrics(session, &args.metrics)?;
    let stop = stop_flag()?;
    let shipping = super::audit::start_configured_shipping(session, &stop)?;
    let exec = ProcessExecutor::for_session(session)?;
    let options = worker_options(session, args.concurrency, &args.timing)?;
    tracing::info!(
        worker = %options.id,
        slots = options.concurrency,
        "worker started, metadata {config:?}"
    );
    let report = run_worker(&config, &SystemClock, &exec, &options, &stop);
    stop_shipping(&stop, shipping);
    let report = report.map_err(failure)?;
    tracing::info!(
        worker = %options.id,
        tries = report.tries,
        succeeded = report.succeeded,
        "worker stopped"
    );
    Ok(Exit::Success)
}

/// Stops the background audit shipping (`--until-idle` ends without a signal) and waits for
/// its last pass.
fn stop_shipping(stop: &AtomicBool, shipping: Option<std::thread::JoinHandle<()>>) {
    let Some(handle) = shipping else {
        return;
    };
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    if handle.join().is_err() {
        tracing::warn!("audit shipping stopped with a panic");
    }
}
