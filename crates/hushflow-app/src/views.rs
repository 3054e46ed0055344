//! The view types: what every front end answers with. The CLI's `--json` output, the HTTP API
//! and the Airflow provider serialize these and nothing else, so there is one JSON contract;
//! `docs/json.md` documents every field.
//!
//! # Versioning
//!
//! Every view object carries `"version"`, the [`VIEW_VERSION`] it was written under. Fields may
//! be added within a version (readers ignore fields they do not know); a field is never renamed,
//! removed or given another meaning or type without raising [`VIEW_VERSION`]. Key order is not
//! part of the contract. Times are RFC 3339 UTC strings to the second (`2024-05-01T00:00:00Z`);
//! an absent value is `null`, never a missing key.
//!
//! Views hold names, ids, states, counts and error texts that never quote a record value; never
//! personal data and never a secret.

use hushflow_scheduler::store::{PipelineRow, RunRow, TaskRow, TryRow};
use hushflow_spec::schedule::{Millis, Schedule, rfc3339};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The version of the view types, emitted as `"version"` in every view object.
pub const VIEW_VERSION: u32 = 1;

fn seconds_between(start: Option<Millis>, end: Option<Millis>) -> Option<f64> {
    match (start, end) {
        (Some(a), Some(b)) => Some((b - a) as f64 / 1000.0),
        _ => None,
    }
}

/// A run of a pipeline (`hushflow runs --json`, one per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunView {
    /// The view version it was written under: [`VIEW_VERSION`].
    pub version: u32,
    /// The run's number in the metadata store (what `tasks RUN` and `clear RUN` take).
    pub run: i64,
    /// The pipeline's name.
    pub pipeline: String,
    /// `manual__…`, `scheduled__…` or `backfill__…` with the logical date.
    pub run_id: String,
    /// `manual`, `scheduled` or `backfill`.
    pub run_type: String,
    /// `queued`, `running`, `success` or `failed`.
    pub state: String,
    /// The run's logical date: the start of its data interval for scheduled and backfill runs.
    pub logical_date: String,
    /// The start of the data interval the run covers, included.
    pub data_interval_start: String,
    /// The end of the data interval the run covers, excluded.
    pub data_interval_end: String,
    /// When it started.
    pub started_at: Option<String>,
    /// When it ended.
    pub ended_at: Option<String>,
    /// From start to end, when it has ended.
    pub duration_seconds: Option<f64>,
    /// How many of its tasks are in each state (`{"success": 3, "queued": 1}`).
    pub tasks: BTreeMap<String, i64>,
}

impl RunView {
    /// A run and how many of its tasks are in each state.
    pub fn from_row(run: &RunRow, task_states: Vec<(String, i64)>) -> RunView {
        RunView {
            version: VIEW_VERSION,
            run: run.id,
            pipeline: run.pipeline.clone(),
            run_id: run.run_id.clone(),
            run_type: run.run_type.clone(),
            state: run.state.as_str().to_string(),
            logical_date: rfc3339(run.logical_date),
            data_interval_start: rfc3339(run.interval.start),
            data_interval_end: rfc3339(run.interval.end),
            started_at: run.started_at.map(rfc3339),
            ended_at: run.ended_at.map(rfc3339),
            duration_seconds: seconds_between(run.started_at, run.ended_at),
            tasks: task_states.into_iter().collect(),
        }
    }
}

/// A run created by `hushflow trigger --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TriggeredView {
    /// The view version it was written under: [`VIEW_VERSION`].
    pub version: u32,
    /// The run's number in the metadata store, as in [`RunView`].
    pub run: i64,
    /// The pipeline's name.
    pub pipeline: String,
    /// The run's id, as in [`RunView`].
    pub run_id: String,
    /// The pipeline is paused, so the run waits for `unpause`.
    pub paused: bool,
    /// What the run was made from: `file` (read and registered now), `stored` (the registered
    /// definition; its file loads) or `stored_file_invalid` (the registered definition, while
    /// its file fails validation now).
    pub definition: String,
    /// Why the run may not do what the file says now (its first validation error), or `null`.
    pub warning: Option<String>,
}

impl TriggeredView {
    /// The view of a run [`trigger`](crate::actions::orchestration::trigger) created.
    pub fn new(t: &crate::actions::orchestration::Triggered) -> TriggeredView {
        TriggeredView {
            version: VIEW_VERSION,
            run: t.run,
            pipeline: t.pipeline.clone(),
            run_id: t.run_id.clone(),
            paused: t.paused,
            definition: t.definition.as_str().to_string(),
            warning: t.warning(),
        }
    }
}

/// A task instance of a run (`hushflow tasks RUN --json`, one per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskView {
    /// The view version it was written under: [`VIEW_VERSION`].
    pub version: u32,
    /// The run's number in the metadata store, as in [`RunView`].
    pub run: i64,
    /// The pipeline's name.
    pub pipeline: String,
    /// The run's id, as in [`RunView`].
    pub run_id: String,
    /// The task's name in the pipeline file.
    pub task: String,
    /// `sync`, `sql`, `gc` or `empty`.
    pub kind: String,
    /// `waiting`, `queued`, `running`, `up_for_retry`, `success`, `failed`,
    /// `upstream_failed` or `skipped`.
    pub state: String,
    /// Tries started so far.
    pub tries: i64,
    /// Tries that failed.
    pub failures: i64,
    /// When the task first started.
    pub started_at: Option<String>,
    /// When it ended.
    pub ended_at: Option<String>,
    /// From start to end, when it has ended.
    pub duration_seconds: Option<f64>,
    /// When a task up for retry is tried again.
    pub next_try_at: Option<String>,
    /// Records a sync task read.
    pub records_read: Option<i64>,
    /// Records a sync task wrote (for a `sql` task, the rows it changed).
    pub records_written: Option<i64>,
    /// Records a sync task set aside in the quarantine.
    pub records_quarantined: Option<i64>,
    /// Why its last try failed; never quotes a record value.
    pub error: Option<String>,
}

impl TaskView {
    /// A task of `run`, from its row in the metadata store.
    pub fn from_row(run: &RunRow, task: TaskRow) -> TaskView {
        TaskView {
            version: VIEW_VERSION,
            run: run.id,
            pipeline: run.pipeline.clone(),
            run_id: run.run_id.clone(),
            task: task.task,
            kind: task.kind,
            state: task.state.as_str().to_string(),
            tries: task.tries,
            failures: task.failures,
            started_at: task.started_at.map(rfc3339),
            ended_at: task.ended_at.map(rfc3339),
            duration_seconds: seconds_between(task.started_at, task.ended_at),
            next_try_at: task.next_try_at.map(rfc3339),
            records_read: task.records_read,
            records_written: task.records_written,
            records_quarantined: task.records_quarantined,
            error: task.error,
        }
    }
}

/// One try of a task: who ran it, how it ended, and its redacted output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TryView {
    /// The view version it was written under: [`VIEW_VERSION`].
    pub version: u32,
    /// 1 for the first try.
    pub attempt: i64,
    /// The id of the worker that ran it.
    pub worker: String,
    /// `running`, `success` or `failed`.
    pub state: String,
    /// When it started.
    pub started_at: String,
    /// When it ended.
    pub ended_at: Option<String>,
    /// Why it failed; never quotes a record value.
    pub error: Option<String>,
    /// The try's output, scrubbed of every secret the worker knew; `null` before it wrote any.
    pub log: Option<String>,
}

impl TryView {
    /// A try, from its row in the metadata store.
    pub fn from_row(t: TryRow) -> TryView {
        TryView {
            version: VIEW_VERSION,
            attempt: t.attempt,
            worker: t.worker,
            state: t.state,
            started_at: rfc3339(t.started_at),
            ended_at: t.ended_at.map(rfc3339),
            error: t.error,
            log: t.log,
        }
    }
}

/// A task's tries and their logs (`hushflow logs RUN TASK`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogView {
    /// The view version it was written under: [`VIEW_VERSION`].
    pub version: u32,
    /// The run's number in the metadata store, as in [`RunView`].
    pub run: i64,
    /// The pipeline's name.
    pub pipeline: String,
    /// The run's id, as in [`RunView`].
    pub run_id: String,
    /// The task's name in the pipeline file.
    pub task: String,
    /// The task's state now.
    pub state: String,
    /// Oldest first.
    pub tries: Vec<TryView>,
}

/// A registered pipeline (`hushflow pipelines --json`, one per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelineView {
    /// The view version it was written under: [`VIEW_VERSION`].
    pub version: u32,
    /// The pipeline's name.
    pub pipeline: String,
    /// Whether it is paused: a paused pipeline gets no new runs started.
    pub paused: bool,
    /// The cron expression (or `@daily` preset); `null` for a pipeline run by hand only.
    pub schedule: Option<String>,
    /// The schedule's IANA time zone, when it names one.
    pub timezone: Option<String>,
    /// When the schedule next starts a run; `null` when paused or unscheduled.
    pub next_run: Option<String>,
    /// The state of its newest run.
    pub last_run_state: Option<String>,
    /// How many of its runs may be active at once.
    pub max_active_runs: i64,
}

impl PipelineView {
    /// A registered pipeline, its newest run's state, and its next run after `now`.
    pub fn from_row(p: &PipelineRow, last_run_state: Option<String>, now: Millis) -> PipelineView {
        let schedule = p
            .schedule
            .as_deref()
            .map(|e| Schedule::parse(e, p.timezone.as_deref()));
        let next_run = match (&schedule, p.paused) {
            (Some(Ok(s)), false) => s.next(now.max(p.first_seen_at), false).map(rfc3339),
            _ => None,
        };
        PipelineView {
            version: VIEW_VERSION,
            pipeline: p.name.clone(),
            paused: p.paused,
            schedule: p.schedule.clone(),
            timezone: p.timezone.clone(),
            next_run,
            last_run_state,
            max_active_runs: p.max_active_runs,
        }
    }
}

/// One record of the audit log (`hushflow audit list --json`, one per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecordView {
    /// The view version it was written under: [`VIEW_VERSION`].
    pub version: u32,
    /// 1, 2, 3, … in the order written.
    pub seq: u64,
    /// When it was written, to a fraction of a second.
    pub time: String,
    /// Who acted: an OS user by name, any other actor as `kind:name` (`api-user:ada`).
    pub actor: String,
    /// `run`, `trigger`, `keys.create`, `quarantine.export`, …
    pub action: String,
    /// The pipeline it concerns (`*` for a prune of all pipelines).
    pub pipeline: Option<String>,
    /// The policy a run applied, as its hex fingerprint.
    pub policy_fingerprint: Option<String>,
    /// Counts by name: `{"read": 500, "written": 498}`.
    pub counts: BTreeMap<String, u64>,
    /// `success`, `partial`, `failure`, `ok` or `failed`.
    pub outcome: String,
    /// Text that names no personal data: a key name, a run id, an error category.
    pub detail: Option<String>,
    /// The hash of the record before it (64 zeros for the first), and this record's own.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

impl From<hushflow_state::audit::AuditRecord> for AuditRecordView {
    fn from(r: hushflow_state::audit::AuditRecord) -> AuditRecordView {
        AuditRecordView {
            version: VIEW_VERSION,
            seq: r.seq,
            time: r.time.to_string(),
            actor: r.actor,
            action: r.action,
            pipeline: r.pipeline,
            policy_fingerprint: r.policy_fingerprint,
            counts: r.counts,
            outcome: r.outcome,
            detail: r.detail,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// The counts of a sync run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCounts {
    /// Records read from the source.
    pub read: u64,
    /// Records written to the sink.
    pub written: u64,
    /// `filtered_no_consent + suppressed`.
    pub filtered: u64,
    /// Records filtered out because consent was not an explicit yes.
    pub filtered_no_consent: u64,
    /// Records filtered out because they match the suppression list.
    pub suppressed: u64,
    /// Filtered records whose row the sink was told to delete or tombstone.
    pub withdrawn: u64,
    /// Records set aside in the quarantine.
    pub quarantined: u64,
    /// A partitioned run's records of other partitions, read and left out (not in `read`);
    /// 0 for an unpartitioned run.
    #[serde(default)]
    pub other_partitions: u64,
}

impl From<&hushflow_engine::Counts> for RunCounts {
    fn from(c: &hushflow_engine::Counts) -> RunCounts {
        RunCounts {
            read: c.read,
            written: c.written,
            filtered: c.filtered,
            filtered_no_consent: c.filtered_no_consent,
            suppressed: c.suppressed,
            withdrawn: c.withdrawn,
            quarantined: c.quarantined,
            other_partitions: c.other_partitions,
        }
    }
}

/// How one sync run went (`hushflow run --json`): counts, never values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummaryView {
    /// The view version it was written under: [`VIEW_VERSION`].
    pub version: u32,
    /// The pipeline's name.
    pub pipeline: String,
    /// The sync's id (a timestamp), as in the audit log and the quarantine file's name. Not a
    /// run of the metadata store ([`RunView`]): those are runs, these are syncs.
    pub sync_id: String,
    /// The same as `sync_id`, under its old name; kept until view version 2.
    pub run_id: String,
    /// `success`, `partial` (records quarantined) or `failure`.
    pub outcome: String,
    /// Whether it resumed from an earlier attempt's staged data.
    pub resumed: bool,
    /// The run's counts of records.
    pub counts: RunCounts,
    /// Quarantined records by reason code.
    pub quarantine_reasons: BTreeMap<String, u64>,
    /// The quarantine file, when records were quarantined.
    pub quarantine: Option<String>,
    /// Where the records went: a file or a database.
    pub sink: String,
    /// How long the run took.
    pub elapsed_seconds: f64,
    /// Records read per second.
    pub records_per_second: f64,
    /// Why it failed; names files, lines and fields only.
    pub error: Option<String>,
    /// The partition the sync moved (`--partition`), `null` for all records.
    #[serde(default)]
    pub partition: Option<PartitionView>,
}

/// One partition of a partitioned sync: `index` of `count`, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionView {
    /// The partition, from 0 to `count - 1`.
    pub index: u32,
    /// How many partitions the sync was split into.
    pub count: u32,
}

impl RunSummaryView {
    /// The summary of `pipeline`'s run that `report` describes.
    pub fn new(pipeline: &str, report: &hushflow_engine::RunReport) -> RunSummaryView {
        RunSummaryView {
            version: VIEW_VERSION,
            pipeline: pipeline.to_string(),
            sync_id: report.run_id.clone(),
            run_id: report.run_id.clone(),
            outcome: report.outcome.as_str().to_string(),
            resumed: report.resumed,
            counts: RunCounts::from(&report.counts),
            quarantine_reasons: report.reasons.clone(),
            quarantine: report.quarantine.as_ref().map(|p| p.display().to_string()),
            sink: report.sink.display().to_string(),
            elapsed_seconds: report.elapsed.as_secs_f64(),
            records_per_second: report.records_per_second(),
            error: report.error.clone(),
            partition: report.partition.map(|p| PartitionView {
                index: p.index(),
                count: p.count(),
            }),
        }
    }
}

/// A quarantine file: one run's set-aside records, counted by reason
/// (`hushflow quarantine list --json`, one per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarantineFileView {
    /// The view version it was written under: [`VIEW_VERSION`].
    pub version: u32,
    /// The id of the sync that set the records aside (a timestamp), as in the quarantine file's
    /// name; not a run of the metadata store ([`RunView`]).
    pub sync_id: String,
    /// The same as `sync_id`, under its old name; kept until view version 2.
    pub run: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// How many records the file holds.
    pub records: u64,
    /// Records by reason code (`invalid_field`, `wrong_field_count`, …).
    pub reasons: BTreeMap<String, u64>,
    /// The encrypted file in the state directory.
    pub file: String,
}

/// The body of a failure webhook's POST: a task failed for good (its retries used up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFailedEvent {
    /// The view version it was written under: [`VIEW_VERSION`].
    pub version: u32,
    /// `task_failed`.
    pub event: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// The run's id.
    pub run_id: String,
    /// The task's name in the pipeline file.
    pub task: String,
    /// The last try's number.
    pub attempt: i64,
    /// `failed`.
    pub state: String,
    /// Why it failed; never quotes a record value.
    pub error: Option<String>,
    /// The run's logical date.
    pub logical_date: String,
}

impl TaskFailedEvent {
    /// The event for a task that failed for good.
    pub fn new(task: &hushflow_scheduler::FailedTask) -> TaskFailedEvent {
        TaskFailedEvent {
            version: VIEW_VERSION,
            event: "task_failed".into(),
            pipeline: task.pipeline.clone(),
            run_id: task.run_id.clone(),
            task: task.task.clone(),
            attempt: task.attempt,
            state: "failed".into(),
            error: task.error.clone(),
            logical_date: rfc3339(task.logical_date),
        }
    }
}

/// A key version of the keyring (`GET /api/v1/keys`): its name, purpose and version, never
/// its material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyView {
    /// The view version it was written under: [`VIEW_VERSION`].
    pub version: u32,
    /// The key's name, as `keyring:` references write it.
    pub name: String,
    /// 1 for the key as created, one more per rotation; the highest is current.
    pub key_version: u32,
    /// 16 hex characters telling keys and versions apart; reveals nothing of the material.
    pub id: String,
    /// `hash`, `tokenize`, `credential` (a secret imported with `keys import`), or `null`
    /// (created without one: treated as a hashing key).
    pub purpose: Option<String>,
    /// When this version was made.
    pub created_at: String,
}

impl From<&hushflow_crypto::KeyInfo> for KeyView {
    fn from(k: &hushflow_crypto::KeyInfo) -> KeyView {
        KeyView {
            version: VIEW_VERSION,
            name: k.name.clone(),
            key_version: k.version,
            id: k.id.clone(),
            purpose: k.purpose.map(|p| {
                match p {
                    hushflow_crypto::Purpose::Hash => "hash",
                    hushflow_crypto::Purpose::Tokenize => "tokenize",
                    hushflow_crypto::Purpose::Credential => "credential",
                }
                .to_string()
            }),
            created_at: k.created_at.to_string(),
        }
    }
}

/// The check of the audit log's hash chain (`hushflow audit verify`, `GET /api/v1/audit/verify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditVerifyView {
    /// The view version it was written under: [`VIEW_VERSION`].
    pub version: u32,
    /// Whether every record matches its hash and links to the one before.
    pub intact: bool,
    /// How many records the log holds, when intact.
    pub records: Option<u64>,
    /// The last record's hash, when intact.
    pub head: Option<String>,
    /// The first record found changed, inserted or following removed ones, when broken.
    pub broken_at: Option<u64>,
    /// What the check found, for a person.
    pub message: String,
}

impl From<&hushflow_state::audit::Verification> for AuditVerifyView {
    fn from(v: &hushflow_state::audit::Verification) -> AuditVerifyView {
        use hushflow_state::audit::Verification;
        let (records, head, broken_at) = match v {
            Verification::Intact { records, head } => (Some(*records), Some(head.clone()), None),
            Verification::Broken { seq, .. } => (None, None, Some(*seq)),
        };
        AuditVerifyView {
            version: VIEW_VERSION,
            intact: v.is_intact(),
            records,
            head,
            broken_at,
            message: v.to_string(),
        }
    }
}

/// The tasks a clear queued again (`POST /api/v1/runs/{run}/clear`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClearedView {
    /// The view version it was written under: [`VIEW_VERSION`].
    pub version: u32,
    /// The run's number, as in [`RunView`].
    pub run: i64,
    /// The tasks queued again; empty when no ended task matched (nothing changed).
    pub cleared: Vec<String>,
}

impl From<&crate::actions::orchestration::Cleared> for ClearedView {
    fn from(c: &crate::actions::orchestration::Cleared) -> ClearedView {
        ClearedView {
            version: VIEW_VERSION,
            run: c.run,
            cleared: c.cleared.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hushflow_scheduler::{RunState, TaskState};
    use hushflow_spec::schedule::Interval;

    const JAN_1: Millis = 1_704_067_200_000; // 2024-01-01T00:00:00Z

    fn run_row() -> RunRow {
        RunRow {
            id: 7,
            pipeline: "nightly".into(),
            run_id: "manual__2024-01-01T00:00:00.000Z".into(),
            run_type: "manual".into(),
            fingerprint: "f".into(),
            logical_date: JAN_1,
            interval: Interval {
                start: JAN_1,
                end: JAN_1 + 86_400_000,
            },
            state: RunState::Running,
            conf: "{}".into(),
            created_at: JAN_1,
            started_at: Some(JAN_1 + 1000),
            ended_at: None,
        }
    }

    fn keys(v: &serde_json::Value) -> Vec<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn a_run_view_has_the_fields_the_contract_names() {
        let view = RunView::from_row(&run_row(), vec![("success".into(), 2)]);
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(
            keys(&json),
            [
                "data_interval_end",
                "data_interval_start",
                "duration_seconds",
                "ended_at",
                "logical_date",
                "pipeline",
                "run",
                "run_id",
                "run_type",
                "started_at",
                "state",
                "tasks",
                "version"
            ]
        );
        assert_eq!(json["version"], VIEW_VERSION);
        assert_eq!(json["data_interval_end"], "2024-01-02T00:00:00Z");
        assert_eq!(json["started_at"], "2024-01-01T00:00:01Z");
        assert_eq!(json["ended_at"], serde_json::Value::Null);
        assert_eq!(json["tasks"]["success"], 2);
        assert_eq!(json["state"], "running");
        let back: RunView = serde_json::from_value(json).unwrap();
        assert_eq!(back, view);
    }

    #[test]
    fn a_task_view_has_the_fields_the_contract_names() {
        let task = TaskRow {
            id: 1,
            run: 7,
            task: "load".into(),
            kind: "sync".into(),
            upstream: vec![],
            trigger_rule: "all_success".into(),
            pool: None,
            retries: 2,
            state: TaskState::Success,
            tries: 1,
            failures: 0,
            worker: None,
            next_try_at: None,
            started_at: Some(JAN_1),
            ended_at: Some(JAN_1 + 1500),
            records_read: Some(500),
            records_written: Some(500),
            records_quarantined: Some(0),
            error: None,
        };
        let json = serde_json::to_value(TaskView::from_row(&run_row(), task)).unwrap();
        assert_eq!(
            keys(&json),
            [
                "duration_seconds",
                "ended_at",
                "error",
                "failures",
                "kind",
                "next_try_at",
                "pipeline",
                "records_quarantined",
                "records_read",
                "records_written",
                "run",
                "run_id",
                "started_at",
                "state",
                "task",
                "tries",
                "version"
            ]
        );
        assert_eq!(json["duration_seconds"], 1.5);
        assert_eq!(json["records_read"], 500);
        assert_eq!(json["run_id"], "manual__2024-01-01T00:00:00.000Z");
    }

    #[test]
    fn a_paused_or_unscheduled_pipeline_has_no_next_run() {
        let mut p = PipelineRow {
            name: "yearly".into(),
            fingerprint: "f".into(),
            schedule: Some("@yearly".into()),
            timezone: None,
            paused: false,
            max_active_runs: 1,
            first_seen_at: JAN_1,
        };
        let view = PipelineView::from_row(&p, Some("success".into()), JAN_1 + 1);
        assert_eq!(view.next_run.as_deref(), Some("2025-01-01T00:00:00Z"));
        p.paused = true;
        assert_eq!(PipelineView::from_row(&p, None, JAN_1).next_run, None);
        p.paused = false;
        p.schedule = None;
        assert_eq!(PipelineView::from_row(&p, None, JAN_1).next_run, None);
    }
}

/// A data subject request (`hushflow dsr list|show --json`): its progress and statutory
/// deadline. Names the person by nothing: systems, states and counts only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DsrView {
    /// The view version it was written under: [`VIEW_VERSION`].
    pub version: u32,
    /// The request id, which its audit records name.
    pub id: String,
    /// `erase`, `opt-out` or `access`.
    pub kind: String,
    /// `gdpr` (30 days) or `ccpa` (45 days).
    pub law: String,
    /// `open` until every system is done, then `done`.
    pub state: String,
    /// When it was recorded.
    pub created_at: String,
    /// The statutory deadline.
    pub deadline: String,
    /// When the last system was done.
    pub completed_at: Option<String>,
    /// Each system done so far, in order.
    pub systems: Vec<DsrSystemView>,
}

/// One system's part of a data subject request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DsrSystemView {
    /// The system: a pipeline's sink, the subject keys, the suppression list.
    pub system: String,
    /// `done`, `manual` (rows listed for a person to remove), `unreachable` or `not-held`.
    pub state: String,
    /// What was done, naming no value.
    pub detail: String,
    /// Rows, keys or entries acted on.
    pub count: i64,
    /// When it was recorded.
    pub done_at: String,
}

impl DsrView {
    /// The view of a stored request and its steps.
    pub fn new(
        r: &hushflow_scheduler::store::DsrRequest,
        steps: &[hushflow_scheduler::store::DsrStep],
    ) -> DsrView {
        DsrView {
            version: VIEW_VERSION,
            id: r.id.clone(),
            kind: r.kind.clone(),
            law: r.law.clone(),
            state: r.state.clone(),
            created_at: rfc3339(r.created_at),
            deadline: rfc3339(r.deadline_at),
            completed_at: r.completed_at.map(rfc3339),
            systems: steps
                .iter()
                .map(|s| DsrSystemView {
                    system: s.system.clone(),
                    state: s.state.clone(),
                    detail: s.detail.clone(),
                    count: s.count,
                    done_at: rfc3339(s.done_at),
                })
                .collect(),
        }
    }
}

/// What `hushflow retention enforce` did to one pipeline's sink (`--json`, one per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionView {
    /// The view version it was written under: [`VIEW_VERSION`].
    pub version: u32,
    /// The pipeline.
    pub pipeline: String,
    /// The sink's type and table.
    pub sink: String,
    /// The field rows are aged by.
    pub retain_by: String,
    /// How long rows are kept, as the pipeline says it.
    pub retain: String,
    /// Rows before this instant were deleted.
    pub cutoff: String,
    /// How many.
    pub rows_deleted: u64,
}

/// A user of `hushflow serve` (`hushflow users list --json`, the Admin pages): name, role,
/// state and grants; never a password or its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserView {
    /// The view version it was written under: [`VIEW_VERSION`].
    pub version: u32,
    /// The user name.
    pub name: String,
    /// `viewer`, `user`, `op` or `admin`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub role: crate::Role,
    /// A disabled user cannot sign in.
    pub disabled: bool,
    /// Locked out after failed sign-ins, until `locked_until`.
    pub locked: bool,
    /// When a lock-out ends; `null` when not locked.
    pub locked_until: Option<String>,
    /// When the user was added.
    pub created_at: String,
    /// When the password was last set.
    pub password_changed_at: String,
    /// Extra permissions (`permission` set, on `pipeline` or everywhere when `null`) and
    /// limits of the role to pipelines (`permission` `null`).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub grants: Vec<crate::Grant>,
}

/// An API token (`hushflow tokens list --json`, the Admin pages): never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenView {
    /// The view version it was written under: [`VIEW_VERSION`].
    pub version: u32,
    /// The token's public id (the part after `hf_`; `tokens revoke` takes it or the name).
    pub id: String,
    /// Its name; the audit log records the token's actions under it.
    pub name: String,
    /// `viewer`, `user`, `op` or `admin`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub role: crate::Role,
    /// `active`, `expired` or `revoked`.
    pub state: String,
    /// When it was created.
    pub created_at: String,
    /// Who created it, as the audit log names them.
    pub created_by: String,
    /// When it stops being accepted; `null`: never.
    pub expires_at: Option<String>,
    /// When it was last accepted (to the minute); `null`: never.
    pub last_used_at: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<String>,
}
