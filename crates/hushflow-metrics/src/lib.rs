//! hushflow's Prometheus metrics: every metric's name, help text, labels and histogram buckets
//! live in this crate, and every other crate records through its functions, never through the
//! `metrics` macros with a name of its own. That keeps the set small, documented in one place
//! (`docs/monitoring.md` lists the same names) and free of high-cardinality labels.
//!
//! # Labels
//!
//! Only words that come from configuration or from a fixed set: a pipeline's and a task's name,
//! a sink's `type` word, an outcome or a state, an audit action. Never a record key, a value,
//! a run id, a worker id or an error message: the functions take exactly those words and
//! nothing else, so a caller cannot add one.
//!
//! # Recording without an exporter
//!
//! The functions go through the `metrics` facade: in a process that installed no recorder
//! (a `task-exec` child, a library test) they cost a relaxed load and do nothing. The binary
//! installs the Prometheus recorder (feature `exporter`, [`exporter`]) where something reads it:
//! `scheduler` and `worker` with `--metrics-addr`, `run` with `--metrics-file`.

#[cfg(feature = "exporter")]
pub mod exporter;

use metrics::{counter, gauge, histogram};

/// Records read, written, filtered, suppressed and quarantined by syncs.
/// Labels: `pipeline`, `task`, `kind`.
pub const RECORDS: &str = "hushflow_records_total";
/// Syncs (one run of the runner) that ended, by outcome. Labels: `pipeline`, `task`, `outcome`.
pub const SYNCS: &str = "hushflow_syncs_total";
/// How long a sync took, seconds. Labels: `pipeline`, `task`, `outcome`.
pub const SYNC_DURATION: &str = "hushflow_sync_duration_seconds";
/// One write of a batch to a sink, seconds. Label: `sink` (its `type` word).
pub const SINK_WRITE: &str = "hushflow_sink_write_seconds";
/// Task tries that ended on a worker. Labels: `pipeline`, `task`, `outcome`.
pub const TASK_TRIES: &str = "hushflow_task_tries_total";
/// How long a task try took on its worker, seconds. Labels: `pipeline`, `task`, `outcome`.
pub const TASK_DURATION: &str = "hushflow_task_duration_seconds";
/// Tries that were retries (attempt 2 or later). Labels: `pipeline`, `task`.
pub const TASK_RETRIES: &str = "hushflow_task_retries_total";
/// Runs that ended, counted once by the process that ended them. Labels: `pipeline`, `state`.
pub const RUNS_FINISHED: &str = "hushflow_runs_finished_total";
/// How long a run took from its start to its end, seconds. Labels: `pipeline`, `state`.
pub const RUN_DURATION: &str = "hushflow_run_duration_seconds";
/// Tries of workers that stopped heartbeating. Label: `outcome` (`requeued`, `failed`).
pub const LOST_TRIES: &str = "hushflow_lost_tries_total";
/// From a run being due (its interval's end; a manual run's creation) to its start, seconds.
/// Label: `pipeline`.
pub const SCHEDULER_LAG: &str = "hushflow_scheduler_lag_seconds";
/// Tasks queued and not yet claimed, at the scheduler's last tick. Label: `pipeline`.
pub const QUEUE_DEPTH: &str = "hushflow_queue_depth";
/// Age of the oldest heartbeat among workers holding a running task, seconds (0 when none).
pub const HEARTBEAT_AGE: &str = "hushflow_worker_heartbeat_age_seconds";
/// Scheduler ticks, by outcome (`ok`, `error`).
pub const SCHEDULER_TICKS: &str = "hushflow_scheduler_ticks_total";
/// Audit records seen, by action and outcome. Labels: `action`, `outcome`.
pub const AUDIT_RECORDS: &str = "hushflow_audit_records_total";
/// Values detokenized, from the audit records of `detokenize`. Label: `outcome`.
pub const DETOKENIZED: &str = "hushflow_detokenized_values_total";
/// Key exports (`keys.export`, `keys.export-identity`). Label: `outcome`.
pub const KEY_EXPORTS: &str = "hushflow_key_exports_total";
/// 1 when the last check of the audit chain found it intact, 0 when broken.
pub const AUDIT_VERIFY_OK: &str = "hushflow_audit_verify_ok";
/// Checks of the audit chain, by outcome (`intact`, `broken`, `error`).
pub const AUDIT_VERIFICATIONS: &str = "hushflow_audit_verifications_total";
/// Alerts the audit-stream rules raised. Label: `kind`.
pub const ALERTS: &str = "hushflow_alerts_total";
/// Deliveries of alerts. Labels: `channel` (`webhook`, `syslog`, `email`), `outcome`.
pub const ALERT_DELIVERIES: &str = "hushflow_alert_deliveries_total";

/// HTTP requests `hushflow serve` answered, seconds. Labels: `route` (the route's pattern, such
/// as `/api/v1/runs/{run}/tasks`, or `unmatched`), `method`, `status` (the code).
pub const HTTP_REQUESTS: &str = "hushflow_http_request_duration_seconds";
/// Sign-ins `hushflow serve` refused. Label: `reason` (`refused`, `rate-limited`, `error`).
pub const SIGN_IN_FAILURES: &str = "hushflow_sign_in_failures_total";
/// Requests `hushflow serve` refused for a missing permission. Label: `permission`.
pub const PERMISSION_DENIALS: &str = "hushflow_permission_denials_total";

/// Every metric: name, kind and help text, for `describe` and for the documentation test.
pub const ALL: &[(&str, Kind, &str)] = &[
    (
        HTTP_REQUESTS,
        Kind::Histogram,
        "HTTP requests the server answered, by route pattern, method and status.",
    ),
    (
        SIGN_IN_FAILURES,
        Kind::Counter,
        "Sign-ins the server refused, by reason.",
    ),
    (
        PERMISSION_DENIALS,
        Kind::Counter,
        "Requests refused for a missing permission, by permission.",
    ),
    (
        RECORDS,
        Kind::Counter,
        "Records by what happened to them in syncs.",
    ),
    (SYNCS, Kind::Counter, "Syncs that ended, by outcome."),
    (SYNC_DURATION, Kind::Histogram, "How long syncs took."),
    (SINK_WRITE, Kind::Histogram, "One batch write to a sink."),
    (
        TASK_TRIES,
        Kind::Counter,
        "Task tries that ended on a worker, by outcome.",
    ),
    (
        TASK_DURATION,
        Kind::Histogram,
        "How long task tries took on their worker.",
    ),
    (
        TASK_RETRIES,
        Kind::Counter,
        "Task tries that were retries (attempt 2 or later).",
    ),
    (RUNS_FINISHED, Kind::Counter, "Runs that ended, by state."),
    (
        RUN_DURATION,
        Kind::Histogram,
        "How long runs took from start to end.",
    ),
    (
        LOST_TRIES,
        Kind::Counter,
        "Tries of workers that stopped heartbeating.",
    ),
    (
        SCHEDULER_LAG,
        Kind::Histogram,
        "From a run being due to its start.",
    ),
    (
        QUEUE_DEPTH,
        Kind::Gauge,
        "Tasks queued and not yet claimed.",
    ),
    (
        HEARTBEAT_AGE,
        Kind::Gauge,
        "Oldest heartbeat among workers holding a running task.",
    ),
    (
        SCHEDULER_TICKS,
        Kind::Counter,
        "Scheduler ticks, by outcome.",
    ),
    (
        AUDIT_RECORDS,
        Kind::Counter,
        "Audit records seen, by action and outcome.",
    ),
    (DETOKENIZED, Kind::Counter, "Values detokenized."),
    (KEY_EXPORTS, Kind::Counter, "Key exports."),
    (
        AUDIT_VERIFY_OK,
        Kind::Gauge,
        "1 when the last audit chain check found it intact.",
    ),
    (
        AUDIT_VERIFICATIONS,
        Kind::Counter,
        "Checks of the audit chain, by outcome.",
    ),
    (
        ALERTS,
        Kind::Counter,
        "Alerts raised by the audit-stream rules.",
    ),
    (
        ALERT_DELIVERIES,
        Kind::Counter,
        "Deliveries of alerts, by channel and outcome.",
    ),
];

/// A metric's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// A value now.
    Gauge,
    /// Observations in buckets.
    Histogram,
}

/// Buckets of the duration histograms, seconds: from a fast sink write to a long backfill.
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.025, 0.1, 0.25, 1.0, 2.5, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// Registers the help texts with the installed recorder.
pub fn describe() {
    for (name, kind, help) in ALL {
        match kind {
            Kind::Counter => metrics::describe_counter!(*name, *help),
            Kind::Gauge => metrics::describe_gauge!(*name, *help),
            Kind::Histogram => {
                metrics::describe_histogram!(*name, metrics::Unit::Seconds, *help)
            }
        }
    }
}

/// What one sync did, as its runner (or the child that ran it) reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sync<'a> {
    /// The pipeline's name.
    pub pipeline: &'a str,
    /// The task's name (`run` for a one-off `hushflow run`).
    pub task: &'a str,
    /// `success`, `partial`, `failure`.
    pub outcome: &'a str,
    /// Records the source gave.
    pub read: u64,
    /// Records the sink accepted.
    pub written: u64,
    /// Left out on purpose (consent and suppression together).
    pub filtered: u64,
    /// Left out by the suppression list (a part of `filtered`).
    pub suppressed: u64,
    /// Set aside in the quarantine.
    pub quarantined: u64,
    /// How long the sync took, seconds.
    pub seconds: f64,
    /// The sink's `type` word.
    pub sink: &'a str,
    /// How long each batch write to the sink took, seconds.
    pub sink_writes: &'a [f64],
}

/// Records one sync's counts, duration and sink writes.
pub fn sync_finished(s: &Sync<'_>) {
    let (pipeline, task) = (s.pipeline.to_string(), s.task.to_string());
    for (kind, n) in [
        ("read", s.read),
        ("written", s.written),
        ("filtered", s.filtered),
        ("suppressed", s.suppressed),
        ("quarantined", s.quarantined),
    ] {
        counter!(RECORDS, "pipeline" => pipeline.clone(), "task" => task.clone(), "kind" => kind)
            .increment(n);
    }
    let outcome = s.outcome.to_string();
    counter!(SYNCS, "pipeline" => pipeline.clone(), "task" => task.clone(), "outcome" => outcome.clone())
        .increment(1);
    histogram!(SYNC_DURATION, "pipeline" => pipeline, "task" => task, "outcome" => outcome)
        .record(s.seconds);
    if !s.sink.is_empty() {
        let h = histogram!(SINK_WRITE, "sink" => s.sink.to_string());
        for w in s.sink_writes {
            h.record(*w);
        }
    }
}

/// Records a task try that ended on a worker; `attempt` above 1 counts as a retry.
pub fn task_try(pipeline: &str, task: &str, outcome: &str, attempt: i64, seconds: f64) {
    let (pipeline, task) = (pipeline.to_string(), task.to_string());
    counter!(TASK_TRIES, "pipeline" => pipeline.clone(), "task" => task.clone(), "outcome" => outcome.to_string())
        .increment(1);
    histogram!(TASK_DURATION, "pipeline" => pipeline.clone(), "task" => task.clone(), "outcome" => outcome.to_string())
        .record(seconds);
    if attempt > 1 {
        counter!(TASK_RETRIES, "pipeline" => pipeline, "task" => task).increment(1);
    }
}

/// Records a run that this process ended.
pub fn run_finished(pipeline: &str, state: &str, seconds: Option<f64>) {
    counter!(RUNS_FINISHED, "pipeline" => pipeline.to_string(), "state" => state.to_string())
        .increment(1);
    if let Some(s) = seconds {
        histogram!(RUN_DURATION, "pipeline" => pipeline.to_string(), "state" => state.to_string())
            .record(s);
    }
}

/// Records the tries of stopped workers a tick handed back (`requeued`) or failed for good.
pub fn lost_tries(requeued: usize, failed: usize) {
    if requeued > 0 {
        counter!(LOST_TRIES, "outcome" => "requeued").increment(requeued as u64);
    }
    if failed > 0 {
        counter!(LOST_TRIES, "outcome" => "failed").increment(failed as u64);
    }
}

/// Records a run started `seconds` after it was due.
pub fn scheduler_lag(pipeline: &str, seconds: f64) {
    histogram!(SCHEDULER_LAG, "pipeline" => pipeline.to_string()).record(seconds.max(0.0));
}

/// Sets the queued tasks of each pipeline; pipelines absent from `depths` are set to 0 when
/// they were in `before` (what the previous call set), so a drained queue reads 0.
pub fn queue_depth(depths: &[(String, u64)], before: &[String]) {
    for name in before {
        if !depths.iter().any(|(p, _)| p == name) {
            gauge!(QUEUE_DEPTH, "pipeline" => name.clone()).set(0.0);
        }
    }
    for (pipeline, n) in depths {
        gauge!(QUEUE_DEPTH, "pipeline" => pipeline.clone()).set(*n as f64);
    }
}

/// Sets the age of the oldest heartbeat among workers holding a running task.
pub fn heartbeat_age(seconds: f64) {
    gauge!(HEARTBEAT_AGE).set(seconds.max(0.0));
}

/// Records a scheduler tick.
pub fn scheduler_tick(ok: bool) {
    counter!(SCHEDULER_TICKS, "outcome" => if ok { "ok" } else { "error" }).increment(1);
}

/// Records an audit record seen by a process (its own or, through the audit follower, any
/// other's): the action and outcome as labels, the detokenized values and key exports by
/// their counts. `action` is one of hushflow's fixed action words.
pub fn audit_record(action: &str, outcome: &str, counts: &std::collections::BTreeMap<String, u64>) {
    counter!(AUDIT_RECORDS, "action" => action.to_string(), "outcome" => outcome.to_string())
        .increment(1);
    match action {
        "detokenize" => {
            let n = counts
                .get("values")
                .or_else(|| counts.get("tokens"))
                .copied();
            counter!(DETOKENIZED, "outcome" => outcome.to_string()).increment(n.unwrap_or(1));
        }
        "keys.export" | "keys.export-identity" => {
            counter!(KEY_EXPORTS, "outcome" => outcome.to_string()).increment(1);
        }
        _ => {}
    }
}

/// Records a check of the audit chain: `Some(true)` intact, `Some(false)` broken, `None` the
/// check itself failed (the gauge is left as it was).
pub fn audit_verified(intact: Option<bool>) {
    let outcome = match intact {
        Some(true) => "intact",
        Some(false) => "broken",
        None => "error",
    };
    counter!(AUDIT_VERIFICATIONS, "outcome" => outcome).increment(1);
    if let Some(ok) = intact {
        gauge!(AUDIT_VERIFY_OK).set(if ok { 1.0 } else { 0.0 });
    }
}

/// Records an alert raised by an audit-stream rule.
pub fn alert_raised(kind: &str) {
    counter!(ALERTS, "kind" => kind.to_string()).increment(1);
}

/// Records one delivery of an alert.
pub fn alert_delivered(channel: &str, ok: bool) {
    counter!(ALERT_DELIVERIES, "channel" => channel.to_string(), "outcome" => if ok { "ok" } else { "failed" })
        .increment(1);
}

/// Records one HTTP request the server answered. `route` is the route's pattern (never the
/// path as requested, which holds run ids and pipeline names typed by anyone).
pub fn http_request(route: &str, method: &str, status: u16, seconds: f64) {
    histogram!(
        HTTP_REQUESTS,
        "route" => route.to_string(),
        "method" => method.to_string(),
        "status" => status.to_string()
    )
    .record(seconds);
}

/// Records a refused sign-in.
pub fn sign_in_failed(reason: &str) {
    counter!(SIGN_IN_FAILURES, "reason" => reason.to_string()).increment(1);
}

/// Records a request refused for lack of `permission`.
pub fn permission_denied(permission: &str) {
    counter!(PERMISSION_DENIALS, "permission" => permission.to_string()).increment(1);
}
