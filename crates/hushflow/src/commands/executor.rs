//! How the CLI executes a claimed task. Each try of a sync, `sql` or `gc` task runs in a child
//! process (`hushflow task-exec`), as Airflow's task runner does: a timeout can stop it, its
//! output becomes the try's log, and it dies with its worker (`PR_SET_PDEATHSIG`), so a killed
//! worker leaves no task running behind the metadata store's back. `empty` tasks run in place.
//!
//! A try is stopped (its timeout, or the task was handed to another worker) with SIGTERM to its
//! process group, then SIGKILL after a grace: a `sql` task on PostgreSQL uses the grace to
//! cancel its statement on the server, so its locks go before the try is marked ended.
//!
//! This file is the worker's side; `task_exec.rs` is the child's, and `TaskOrder` with
//! `ChildReport` is what passes between them.

use hushflow_scheduler::{Claim, DefinitionTrust, Executor, FailedTask, LiveTry, TryOutcome};
use hushflow_secrets::{Redactor, SecretRef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The line a child prints last on stdout with its counts.
pub(super) const REPORT_PREFIX: &str = "@hushflow-report ";

/// How long a stopped try has between SIGTERM and SIGKILL (a `sql` task cancels its statement
/// on the server in it).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What a child needs to execute one try; sent on its stdin.
#[derive(Debug, Serialize, Deserialize)]
pub struct TaskOrder {
    pub file: PathBuf,
    pub text: String,
    pub pipeline: String,
    pub task: String,
    pub run_id: String,
    pub logical_date: i64,
    pub interval_start: i64,
    pub interval_end: i64,
    pub conf: BTreeMap<String, String>,
    pub attempt: i64,
    /// The try's timeout in milliseconds (a `sql` task has the server enforce it too).
    #[serde(default)]
    pub timeout_ms: Option<i64>,
}

/// The counts a child reports on its last line of stdout (`REPORT_PREFIX` and JSON).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct ChildReport {
    pub(super) read: Option<i64>,
    pub(super) written: Option<i64>,
    pub(super) quarantined: Option<i64>,
    /// A sync's other counts, outcome, duration and sink writes, for the worker's metrics (the
    /// child has no recorder: the worker's process is the one Prometheus scrapes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) sync: Option<SyncFacts>,
}

/// What a sync did beyond the stored counts: the worker records it in its metrics.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct SyncFacts {
    pub(super) outcome: String,
    pub(super) filtered: u64,
    pub(super) suppressed: u64,
    pub(super) seconds: f64,
    pub(super) sink: String,
    pub(super) sink_writes: Vec<f64>,
}

impl ChildReport {
    /// The report of a sync, from the engine's.
    pub(super) fn of_sync(report: &hushflow_engine::RunReport) -> ChildReport {
        let c = &report.counts;
        ChildReport {
            read: Some(c.read as i64),
            written: Some(c.written as i64),
            quarantined: Some(c.quarantined as i64),
            sync: Some(SyncFacts {
                outcome: report.outcome.as_str().into(),
                filtered: c.filtered,
                suppressed: c.suppressed,
                seconds: report.elapsed.as_secs_f64(),
                sink: report.sink_kind.into(),
                sink_writes: report.sink_writes.clone(),
            }),
        }
    }

    /// Records the sync this report describes in this process's metrics.
    pub(super) fn record_metrics(&self, pipeline: &str, task: &str) {
        let Some(s) = &self.sync else { return };
        let n = |v: Option<i64>| v.map_or(0, |v| u64::try_from(v).unwrap_or(0));
        hushflow_metrics::sync_finished(&hushflow_metrics::Sync {
            pipeline,
            task,
            outcome: &s.outcome,
            read: n(self.read),
            written: n(self.written),
            filtered: s.filtered,
            suppressed: s.suppressed,
            quarantined: n(self.quarantined),
            seconds: s.seconds,
            sink: &s.sink,
            sink_writes: &s.sink_writes,
        });
    }
}

pub struct ProcessExecutor {
    pub exe: PathBuf,
    pub state_dir: PathBuf,
    /// `--master-key` as given, passed on to the task processes.
    pub master_key: Option<String>,
    /// `--anchor-key` as given, passed on to the task processes (their audit records tag the
    /// head with it).
    pub anchor_key: Option<String>,
    /// The master key's reference (the flag or env:HUSHFLOW_MASTER_KEY), for the webhook's
    /// `keyring:` references.
    pub master_key_ref: Option<SecretRef>,
    pub redactor: Redactor,
    /// The definitions the worker runs: a failed task's webhook is read only from one of them.
    pub trust: DefinitionTrust,
    /// Where refused definitions are audited, and as whom.
    pub audit: hushflow_app::Session,
    pub actor: hushflow_app::Actor,
}

impl ProcessExecutor {
    /// The executor of a command's session: this binary, its state directory and the keys as
    /// given, trusting what the session trusts.
    pub(super) fn for_session(session: &super::Session<'_>) -> Result<Self, super::Failure> {
        Ok(ProcessExecutor {
            exe: std::env::current_exe().map_err(super::failure)?,
            state_dir: session.state.root().to_path_buf(),
            master_key: session.master_key_arg.clone(),
            anchor_key: session.anchor_key_arg.clone(),
            master_key_ref: session.master_key.clone(),
            redactor: session.out.redactor.clone(),
            trust: session.app.definition_trust()?,
            audit: hushflow_app::Session::new(session.state.clone(), session.out.redactor.clone()),
            actor: session.actor.clone(),
        })
    }
}

fn order(claim: &Claim) -> TaskOrder {
    TaskOrder {
        file: claim.file.clone(),
        text: claim.text.clone(),
        pipeline: claim.pipeline.clone(),
        task: claim.task.clone(),
        run_id: claim.run_id.clone(),
        logical_date: claim.logical_date,
        interval_start: claim.interval.start,
        interval_end: claim.interval.end,
        conf: serde_json::from_str(&claim.conf).unwrap_or_default(),
        attempt: claim.attempt,
        timeout_ms: claim.timeout_ms,
    }
}

impl Executor for ProcessExecutor {
    fn refused(&self, claim: &Claim, reason: &str) {
        let detail = format!(
            "task {} of run {}, try {} on worker {}: {reason}",
            claim.task, claim.run_id, claim.attempt, claim.worker
        );
        if let Err(e) = self.audit.audit_task(
            &self.actor,
            "definition.refused",
            &claim.pipeline,
            detail,
            BTreeMap::new(),
            "refused",
        ) {
            eprintln!(
                "{}",
                self.redactor.scrub(&format!(
                    "warning: a refused definition was not audited: {e}"
                ))
            );
        }
    }

    fn execute(&self, claim: &Claim, live: &LiveTry) -> TryOutcome {
        let started = Instant::now();
        live.append(&format!(
            "try {} of {}.{} on worker {} ({})\n",
            claim.attempt, claim.pipeline, claim.task, claim.worker, claim.kind
        ));
        if hushflow_scheduler::store::runs_in_process(&claim.kind) {
            live.append("empty task: nothing to do\n");
            return TryOutcome {
                success: true,
                log: live.snapshot(),
                ..Default::default()
            };
        }
        let timeout = claim
            .timeout_ms
            .map(|ms| Duration::from_millis(ms.max(0) as u64));
        let ended = match self.spawn(claim, timeout, live) {
            Ok(ended) => ended,
            Err(e) => {
                return TryOutcome {
                    success: false,
                    error: Some(format!("could not start the task: {e}")),
                    log: live.snapshot(),
                    ..Default::default()
                };
            }
        };
        let success =
            !ended.timed_out && !ended.cancelled && matches!(ended.code, Some(0) | Some(3));
        let error = if ended.cancelled {
            Some(
                "stopped: this worker no longer holds the task (it was handed to another worker)"
                    .to_string(),
            )
        } else if ended.timed_out {
            Some(format!(
                "timed out after {:.0?}; the try was stopped",
                timeout.unwrap_or_default()
            ))
        } else if success {
            None
        } else {
            Some(ended.last_error.unwrap_or_else(|| {
                format!(
                    "the task exited with {}",
                    ended
                        .code
                        .map_or("a signal".into(), |c| format!("code {c}"))
                )
            }))
        };
        live.append(&format!(
            "try {} {} in {:.2}s\n",
            claim.attempt,
            if success { "succeeded" } else { "failed" },
            started.elapsed().as_secs_f64()
        ));
        ended.report.record_metrics(&claim.pipeline, &claim.task);
        TryOutcome {
            success,
            error,
            log: live.snapshot(),
            records_read: ended.report.read,
            records_written: ended.report.written,
            records_quarantined: ended.report.quarantined,
        }
    }

    fn failed(&self, task: &FailedTask) {
        // The webhook reference is read from the definition's text: only from one this worker
        // would run (a definition changed in the store must not pick the URL).
        if let Err(refused) = self.trust.check(&task.definition()) {
            eprintln!(
                "{}",
                self.redactor.scrub(&format!(
                    "warning: the failure webhook of {} was not told about {}: {refused}",
                    task.pipeline, task.task
                ))
            );
            return;
        }
        // The keyring is opened only for a webhook to resolve (its `keyring:` references).
        let keys = || {
            super::open_keyring(
                &self.state_dir,
                self.master_key_ref.as_ref(),
                &self.redactor,
            )
            .ok()
        };
        if let Err(e) = hushflow_app::webhook::notify(task, &self.redactor, keys) {
            eprintln!(
                "{}",
                self.redactor.scrub(&format!(
                    "warning: the failure webhook of {} was not told about {}: {e}",
                    task.pipeline, task.task
                ))
            );
        }
    }
}

/// How a child process ended.
struct Ended {
    code: Option<i32>,
    report: ChildReport,
    /// The last `error: …` line it printed.
    last_error: Option<String>,
    timed_out: bool,
    cancelled: bool,
}

const MAX_LINE: usize = 64 * 1024;

/// Reads a child's pipe line by line (invalid UTF-8 replaced, so reading never stops early and
/// the child never blocks on a full pipe), handing each line over as it arrives.
fn read_lines(pipe: Option<impl Read>, mut each: impl FnMut(&str)) {
    let Some(pipe) = pipe else { return };
    let mut reader = std::io::BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match std::io::BufRead::read_until(&mut reader, b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                // NUL cannot be stored in PostgreSQL text; a line past 64 KiB is cut.
                buf.truncate(MAX_LINE);
                let line = String::from_utf8_lossy(&buf).replace('\0', "\u{FFFD}");
                each(line.trim_end_matches(['\n', '\r']))
            }
        }
    }
}

impl ProcessExecutor {
    /// Runs `hushflow task-exec` for the claim, its output going to `live` as it comes;
    /// stops it for its timeout or when the try is cancelled.
    fn spawn(
        &self,
        claim: &Claim,
        timeout: Option<Duration>,
        live: &LiveTry,
    ) -> std::io::Result<Ended> {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(&self.exe);
        cmd.arg("--state-dir").arg(&self.state_dir);
        if let Some(m) = &self.master_key {
            cmd.arg("--master-key").arg(m);
        }
        if let Some(a) = &self.anchor_key {
            cmd.arg("--anchor-key").arg(a);
        }
        cmd.arg("task-exec")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group, so that a timeout kills the task's children too.
        cmd.process_group(0);
        super::child::die_with_parent(&mut cmd);
        let mut child = cmd.spawn()?;
        // Whatever goes wrong from here, the child does not outlive this call.
        let kill = |child: &mut std::process::Child| {
            super::child::kill_group(child);
            let _ = child.wait();
        };
        let body = serde_json::to_vec(&order(claim)).map_err(std::io::Error::other)?;
        if let Some(mut stdin) = child.stdin.take()
            && let Err(e) = stdin.write_all(&body)
        {
            kill(&mut child);
            return Err(e);
        }
        let out_pipe = child.stdout.take();
        let err_pipe = child.stderr.take();
        let line = |l: &str| live.append(&format!("{}\n", self.redactor.scrub(l)));
        std::thread::scope(|scope| {
            let out_reader = scope.spawn(|| {
                let mut report = ChildReport::default();
                read_lines(out_pipe, |l| match l.strip_prefix(REPORT_PREFIX) {
                    Some(json) => report = serde_json::from_str(json).unwrap_or_default(),
                    None => line(l),
                });
                report
            });
            let err_reader = scope.spawn(|| {
                let mut last_error = None;
                read_lines(err_pipe, |l| {
                    if let Some(e) = l.strip_prefix("error: ") {
                        last_error = Some(self.redactor.scrub(e).into_owned());
                    }
                    line(l);
                });
                last_error
            });
            let started = Instant::now();
            let (mut timed_out, mut cancelled) = (false, false);
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break status,
                    Ok(None) => {}
                    Err(e) => {
                        kill(&mut child);
                        return Err(e);
                    }
                }
                timed_out = timeout.is_some_and(|t| started.elapsed() >= t);
                cancelled = live.cancelled();
                if timed_out || cancelled {
                    // The whole process group: a task's own children go too.
                    break stop(&mut child)?;
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            Ok(Ended {
                code: status.code(),
                report: out_reader.join().unwrap_or_default(),
                last_error: err_reader.join().unwrap_or_default(),
                timed_out,
                cancelled,
            })
        })
    }
}

/// Stops a try's process group: SIGTERM, then SIGKILL once the leader has exited or the grace
/// is over (whatever of the group is left goes then too).
fn stop(child: &mut std::process::Child) -> std::io::Result<std::process::ExitStatus> {
    super::child::terminate_group(child);
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            super::child::kill_group(child);
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    super::child::kill_group(child);
    child.wait()
}
