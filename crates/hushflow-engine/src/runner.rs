//! Runs a [`Plan`]: the source reads on its own thread while this one applies the policy and
//! writes the sink, so both cores work. Bad records go to the quarantine (or stop the run when
//! `on_error = "fail"`); every run, whatever its end, leaves one record in the audit log.

use crate::partition::Partition;
use crate::staging::{self, StagedRun};
use hushflow_connectors::{SinkContext, SourceContext};
use hushflow_core::{
    Batch, CellKind, Encode, Position, RecordError, RejectReason, Sink, Source, SourceBatch,
    Withdrawal,
};
use hushflow_crypto::SubjectRoot;
use hushflow_policy::{CompileInputs, CompiledPolicy, Day, KeyMaterial, Subjects};
use hushflow_spec::pipeline::OnError;
use hushflow_spec::plan::Plan;
use hushflow_state::audit::NewRecord;
use hushflow_state::dir::StateDir;
use hushflow_state::quarantine::{Origin, Quarantine};
use hushflow_state::seal::StateMac;
use hushflow_state::subjects::{SubjectStore, SubjectStoreError};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a run ended. The CLI maps these to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Finished, with no record quarantined.
    Success,
    /// Finished, with records quarantined.
    Partial,
    /// The run stopped before the end; [`RunReport::error`] says why.
    Failure,
}

impl Outcome {
    /// The word the audit log and `--json` use: `success`, `partial`, `failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Partial => "partial",
            Outcome::Failure => "failure",
        }
    }
}

/// What happened to a run's records, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Records the source gave, the ones it rejected included.
    pub read: u64,
    /// Records the sink accepted.
    pub written: u64,
    /// Left out on purpose: `filtered_no_consent + suppressed`.
    pub filtered: u64,
    /// Left out because the consent field did not allow it.
    pub filtered_no_consent: u64,
    /// Left out because the suppression list names them.
    pub suppressed: u64,
    /// Filtered records whose key the sink was told to delete or tombstone (`on_withdrawal`).
    pub withdrawn: u64,
    /// Set aside in the quarantine.
    pub quarantined: u64,
    /// Read but left to other partitions (a partitioned run's records of other partitions, not
    /// counted in `read`): the partitions' `read` add up to an unpartitioned run's.
    pub other_partitions: u64,
}

/// What a run did: its counts, outcome and where its output went.
#[derive(Debug)]
pub struct RunReport {
    /// The run's id (a UTC timestamp), which names its quarantine and audit record.
    pub run_id: String,
    /// A staged run that resumed from an earlier attempt's staged data (the source was not read).
    pub resumed: bool,
    /// How the run ended.
    pub outcome: Outcome,
    /// The records by what happened to them.
    pub counts: Counts,
    /// Quarantined records by reason code.
    pub reasons: BTreeMap<String, u64>,
    /// How long the run took.
    pub elapsed: Duration,
    /// The quarantine file, when records were quarantined.
    pub quarantine: Option<PathBuf>,
    /// The sink's location (a file path or a connection's display form).
    pub sink: PathBuf,
    /// Why the run failed; never holds a record value.
    pub error: Option<String>,
    /// The sink's `type` word (a metric label).
    pub sink_kind: &'static str,
    /// How long each write of a batch to the sink took, seconds (the sink latency metric).
    pub sink_writes: Vec<f64>,
    /// The partition the run moved, when it was one (`--partition`).
    pub partition: Option<Partition>,
}

impl RunReport {
    /// Records read per second over the whole run, 0 when it took no time.
    pub fn records_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.counts.read as f64 / secs
        } else {
            0.0
        }
    }
}

/// What a run needs from outside the plan: where state lives, who runs it, and whom to tell
/// about progress (records read so far).
pub struct RunContext<'a> {
    /// The state directory: audit log, quarantine, staged data.
    pub state: &'a StateDir,
    /// The state directory's identity: quarantined and staged records are encrypted to it, and
    /// a staged run reads its segments back with it.
    pub identity: &'a hushflow_crypto::StateIdentity,
    /// Discard staged data of an earlier attempt instead of resuming from it.
    pub fresh: bool,
    /// Replay a quarantine instead of reading the source.
    pub replay: Option<Replay<'a>>,
    /// Connection URLs of database sources and sinks, resolved by [`Plan::resolve_connections`].
    pub connections: &'a hushflow_spec::plan::Connections,
    /// An incremental source reads everything again instead of continuing after its position.
    pub full_refresh: bool,
    /// Who runs it, for the audit record.
    pub actor: String,
    /// Move only the records of this partition (`--partition i/n`); `None` moves them all.
    pub partition: Option<Partition>,
    /// Called with the number of records read so far.
    pub progress: &'a (dyn Fn(u64) + Sync),
}

/// A quarantine to feed through the pipeline again, and the run it came from.
#[derive(Clone, Copy)]
pub struct Replay<'a> {
    /// The run whose quarantine is replayed.
    pub run_id: &'a str,
    /// The quarantined records, decrypted and authenticated.
    pub records: &'a [hushflow_state::quarantine::QuarantinedRecord],
}

/// Why a run could not go on, or could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A source or sink failed.
    #[error(transparent)]
    Connector(#[from] hushflow_core::Error),
    /// The policy could not be compiled or applied.
    #[error(transparent)]
    Policy(#[from] hushflow_policy::PolicyError),
    /// The quarantine file could not be written.
    #[error("quarantine {path}: {source}")]
    Quarantine {
        /// The quarantine file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A record problem that stops the run (`on_error = "fail"`).
    #[error("{0}")]
    Record(RecordError),
    /// The audit record could not be written.
    #[error("audit store: {0}")]
    Audit(#[from] hushflow_state::audit::AuditError),
    /// The state directory could not be used.
    #[error("state directory: {0}")]
    State(std::io::Error),
    /// A partitioned run that cannot be done safely (a sink each run rewrites, staging, a
    /// different partition count than the saved positions').
    #[error("{0}")]
    Partition(String),
    /// A thread panicked; the run was stopped.
    #[error(
        "hushflow stopped on a bug (a panic in the {0}); the run was stopped and nothing was committed past the batch before it"
    )]
    Panicked(&'static str),
    /// Staging or reading staged data failed.
    #[error("staging: {0}")]
    Staging(Box<crate::staging::StagingError>),
    /// The per-subject key store failed.
    #[error(transparent)]
    Subjects(#[from] SubjectStoreError),
    /// The run failed, and its audit record could not be written either (a full disk does
    /// both): the run's own error comes first, since it is the cause.
    #[error("{error}; its audit record could not be written either: {audit}")]
    Unaudited {
        /// The run's error.
        error: String,
        /// Why the audit record could not be written.
        audit: Box<hushflow_state::audit::AuditError>,
    },
}

impl From<crate::staging::StagingError> for RunError {
    fn from(e: crate::staging::StagingError) -> Self {
        RunError::Staging(Box::new(e))
    }
}

/// Runs the plan and records the run in the audit log. An `Err` means not even the audit record
/// could be written; a failed run is an `Ok` report with [`Outcome::Failure`].
pub fn run(plan: &Plan, keys: &KeyMaterial, ctx: &RunContext<'_>) -> Result<RunReport, RunError> {
    // Names, kinds and counts only: a span never carries a record value or a secret.
    let _span = tracing::info_span!(
        "run",
        pipeline = %plan.name,
        source = plan.source.kind(),
        sink = plan.sink.kind(),
        staged = plan.staging,
        partition = ctx.partition.map(|p| p.to_string()),
    )
    .entered();
    let started = Instant::now();
    let new_id = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%S%.6fZ")
        .to_string();
    let recipient = ctx.identity.recipient();
    // Tags staged segments, manifests and quarantine sidecars.
    let mac = StateMac::new(ctx.identity);
    // The sink's destination in the audit record, as a keyed digest of its description (a
    // path or a connection's reference and digest): the alert rules compare it between runs
    // without the record naming where the data went.
    let sink_id = {
        let described = staging::describe_sink(plan, ctx.connections, &mac);
        let tag = mac.tag("hushflow audit sink v1", &[described.as_bytes()]);
        format!("{} {}", plan.sink.kind(), &tag[..16])
    };
    // A staged run that resumes an earlier attempt keeps that attempt's run id.
    // A replay reads its records from the quarantine, never from a staged source.
    let refused = partition_problem(plan, ctx);
    let prepared = match plan.staging && ctx.replay.is_none() && refused.is_none() {
        false => Ok(None),
        true => staging::prepare(
            ctx.state,
            plan,
            &new_id,
            &plan.source_fields_needed(),
            &recipient,
            &mac,
            &staging::describe_sink(plan, ctx.connections, &mac),
            ctx.fresh,
        )
        .map(Some),
    };
    let (run_id, mut staged, resumed, prepare_error) = match prepared {
        Ok(Some(p)) => (
            p.run.manifest().run_id.clone(),
            Some(p.run),
            p.resumed,
            None,
        ),
        Ok(None) => (new_id, None, false, refused),
        Err(e) => (new_id, None, false, Some(RunError::from(e))),
    };
    let quarantine_path = ctx
        .state
        .quarantine_dir()
        .map_err(RunError::State)?
        .join(format!(
            "{}-{run_id}{}",
            plan.name,
            hushflow_state::quarantine::SUFFIX
        ));
    if resumed {
        // The crashed attempt's quarantine never got its last chunk, so it cannot be read; the
        // resumed run quarantines every staged record again.
        match std::fs::remove_file(&quarantine_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(RunError::State(e)),
            _ => {}
        }
    }
    let mut quarantine = Quarantine::new(
        quarantine_path,
        recipient.clone(),
        mac,
        Origin {
            pipeline: plan.name.clone(),
            run_id: run_id.clone(),
            policy_fingerprint: plan.fingerprint.clone(),
        },
    );
    let mut counts = Counts::default();
    let mut sink_writes = Vec::new();

    // The reader's and the workers' panics come back as errors; this catches the writer's (the
    // sink's), so that a bug still ends in an audited, failed run.
    let result = match prepare_error {
        Some(e) => Err(e),
        None => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            move_records(
                plan,
                keys,
                ctx,
                staged.as_mut(),
                &mut quarantine,
                &mut counts,
                &mut sink_writes,
            )
        }))
        .unwrap_or(Err(RunError::Panicked("sink"))),
    };
    // The sink has committed: the staged files have done their job.
    let result = match (result, staged) {
        (Ok(()), Some(run)) => run.commit().map_err(RunError::from),
        (result, _) => result,
    };
    let finished = quarantine.finish().map_err(|source| RunError::Quarantine {
        path: quarantine.path().to_path_buf(),
        source,
    });
    let result = result.and(finished);
    // A quarantine that could not be written whole (a full disk) cannot be opened: remove it
    // rather than leave a truncated file that looks like this run's.
    if matches!(result, Err(RunError::Quarantine { .. })) {
        quarantine.discard();
    }
    counts.quarantined = quarantine.count();

    let outcome = match (&result, counts.quarantined) {
        (Err(_), _) => Outcome::Failure,
        (Ok(()), 0) => Outcome::Success,
        (Ok(()), _) => Outcome::Partial,
    };
    let error = result.err().map(|e| e.to_string());
    let reasons: BTreeMap<String, u64> = quarantine
        .reasons()
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();

    let mut audit_counts: BTreeMap<String, u64> = BTreeMap::from([
        ("read".into(), counts.read),
        ("written".into(), counts.written),
        ("filtered".into(), counts.filtered),
        ("filtered_no_consent".into(), counts.filtered_no_consent),
        ("suppressed".into(), counts.suppressed),
        ("withdrawn".into(), counts.withdrawn),
        ("quarantined".into(), counts.quarantined),
    ]);
    if ctx.partition.is_some() {
        audit_counts.insert("other_partitions".into(), counts.other_partitions);
    }
    audit_counts.extend(
        reasons
            .iter()
            .map(|(k, v)| (format!("quarantined.{k}"), *v)),
    );
    let appended = ctx.state.audit_log().and_then(|mut audit| {
        audit.append(NewRecord {
            actor: ctx.actor.clone(),
            action: "run".into(),
            pipeline: Some(plan.name.clone()),
            policy_fingerprint: Some(plan.fingerprint.clone()),
            counts: audit_counts,
            outcome: outcome.as_str().into(),
            // Errors name files, lines and fields, never values; the audit log keeps the kind of
            // failure so that a reader can tell runs apart.
            detail: Some({
                let how = match (ctx.replay, resumed) {
                    // The pipeline the operator named: its fingerprint is this record's.
                    (Some(r), _) => format!(
                        " (replay of the quarantine of run {} through {})",
                        r.run_id,
                        std::path::absolute(&plan.file)
                            .unwrap_or_else(|_| plan.file.clone())
                            .display()
                    ),
                    (None, true) => " (resumed from staged data)".to_string(),
                    (None, false) => String::new(),
                };
                let failed = if error.is_some() { " failed" } else { "" };
                let part = ctx
                    .partition
                    .map_or(String::new(), |p| format!(" (partition {p})"));
                format!("run {run_id}{part}{how}{failed}; sink {sink_id}")
            }),
        })
    });
    if let Err(audit) = appended {
        return Err(match error {
            Some(error) => RunError::Unaudited {
                error,
                audit: Box::new(audit),
            },
            None => RunError::Audit(audit),
        });
    }

    tracing::info!(
        run_id = %run_id,
        outcome = outcome.as_str(),
        read = counts.read,
        written = counts.written,
        filtered = counts.filtered,
        quarantined = counts.quarantined,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "run finished"
    );
    Ok(RunReport {
        run_id,
        resumed,
        outcome,
        quarantine: (counts.quarantined > 0).then(|| quarantine.path().to_path_buf()),
        counts,
        reasons,
        elapsed: started.elapsed(),
        sink: plan.sink.location().to_path_buf(),
        error,
        sink_kind: plan.sink.kind(),
        sink_writes,
        partition: ctx.partition,
    })
}

/// Positions saved for this pipeline under another partitioning than this run's (unpartitioned,
/// or another partition count) would let rows be read twice or never: the run is refused, unless
/// it is a full refresh, which reads everything again and forgets those positions.
fn other_partitionings(
    plan: &Plan,
    ctx: &RunContext<'_>,
    sink: &mut dyn Sink,
) -> Result<(), RunError> {
    let keeps = sink.keeps_positions();
    let names = match keeps {
        true => sink.position_names()?,
        false => hushflow_state::dir::position_names(ctx.state).map_err(RunError::State)?,
    };
    let count = ctx.partition.map(Partition::count);
    let others: Vec<(String, Option<u32>)> = names
        .into_iter()
        .filter_map(|name| {
            let saved = match Partition::of_position_key(&plan.name, &name) {
                Some(p) => Some(p.count()),
                None if name == plan.name => None,
                None => return None,
            };
            (saved != count).then_some((name, saved))
        })
        .collect();
    let Some((_, saved)) = others.first() else {
        return Ok(());
    };
    if ctx.full_refresh {
        let names: Vec<String> = others.into_iter().map(|(name, _)| name).collect();
        return match keeps {
            true => sink.forget_positions(&names).map_err(RunError::from),
            false => names.iter().try_for_each(|name| {
                hushflow_state::dir::forget_position(ctx.state, name).map_err(RunError::State)
            }),
        };
    }
    let saved = match saved {
        Some(n) => format!("partitioned runs of {n} partitions (--partition I/{n})"),
        None => "unpartitioned runs".to_string(),
    };
    let this = match ctx.partition {
        Some(p) => format!("--partition {p}"),
        None => "an unpartitioned run".to_string(),
    };
    Err(RunError::Partition(format!(
        "{this}: pipeline `{}` has incremental positions saved by {saved}; continuing from them \
         under another partitioning would read rows twice or miss them. Run as before, or start \
         over with --full-refresh (which reads everything again and forgets those positions)",
        plan.name
    )))
}

/// Why a partitioned run cannot be done safely, before anything is read.
fn partition_problem(plan: &Plan, ctx: &RunContext<'_>) -> Option<RunError> {
    let partition = ctx.partition?;
    let why = if ctx.replay.is_some() {
        "a quarantine replay is not partitioned; replay it whole".to_string()
    } else if plan.staging {
        "staging = true is not supported with --partition yet (the partitions would share one \
         staged extract); set staging = false for partitioned runs"
            .to_string()
    } else if !plan.sink.merges_runs() {
        format!(
            "the {} sink is rewritten by each run (a file, or a table in `replace` mode), so \
             each partition would replace the others' rows; partition into a table in `append` \
             or `upsert` mode",
            plan.sink.kind()
        )
    } else {
        return None;
    };
    Some(RunError::Partition(format!(
        "--partition {partition}: {why}"
    )))
}

/// The pipeline's source; an incremental one continues after `after`.
fn open_source(
    plan: &Plan,
    connections: &hushflow_spec::plan::Connections,
    key_source: &str,
    after: Option<&Position>,
) -> Result<Box<dyn Source>, hushflow_core::Error> {
    let fields = plan.source_fields_needed();
    let ctx = SourceContext {
        base: plan.file.parent().unwrap_or(std::path::Path::new("")),
        fields: &fields,
        key: key_source,
        after,
        connections,
    };
    let opened = plan.source.open(&ctx);
    match plan.source.connection() {
        Some(_) => opened.map_err(|e| in_role("source", e)),
        None => opened,
    }
}

fn open_sink(
    plan: &Plan,
    connections: &hushflow_spec::plan::Connections,
) -> Result<Box<dyn Sink>, hushflow_core::Error> {
    let ctx = SinkContext {
        base: plan.file.parent().unwrap_or(std::path::Path::new("")),
        key: &plan.key,
        column_types: plan.column_types(),
        connections,
    };
    let opened = plan.sink.open(&ctx);
    match plan.sink.connection() {
        Some(_) => opened.map_err(|e| in_role("sink", e)),
        None => opened,
    }
}

/// Says which end of the pipeline a connection error is about (a database error names only
/// the host and port).
fn in_role(role: &str, e: hushflow_core::Error) -> hushflow_core::Error {
    match e {
        hushflow_core::Error::Config(message) => {
            hushflow_core::Error::Config(format!("the {role}: {message}"))
        }
        other => other,
    }
}

/// Opens the plan's source (reading its header or columns, no record) and connects to its sink
/// (creating nothing), so that `hushflow check` finds what would stop a run before it starts:
/// a missing file or column, a refused connection or login, a failed TLS handshake.
pub fn check(
    plan: &Plan,
    connections: &hushflow_spec::plan::Connections,
) -> Result<(), hushflow_core::Error> {
    let key_source = plan
        .policy
        .rule(&plan.key)
        .map_or(plan.key.as_str(), |rule| rule.source_field(&plan.key));
    let source = open_source(plan, connections, key_source, None)?;
    let have = source.schema();
    for field in plan.source_fields_needed() {
        if have.index_of(&field).is_none() {
            return Err(hushflow_core::Error::Config(format!(
                "the source has no field `{field}`, which the policy reads"
            )));
        }
    }
    drop(source);
    open_sink(plan, connections)?;
    if let Some(dir) = plan.sink.location().parent()
        && plan.sink.connection().is_none()
        && !dir.as_os_str().is_empty()
        && !dir.is_dir()
    {
        return Err(hushflow_core::Error::Config(format!(
            "the sink's directory {} does not exist",
            dir.display()
        )));
    }
    Ok(())
}

/// One source batch after the policy: what the writer needs, in the order it must happen.
struct Processed {
    read: u64,
    /// Records of other partitions, left out before anything else was done with them.
    other_partitions: u64,
    /// Records set aside, in source order: (line, reason, raw bytes).
    rejected: Vec<(u64, RejectReason, Vec<u8>)>,
    output: Batch,
    /// `output` as the sink's encoder wrote it, when the sink has one.
    encoded: Option<Vec<u8>>,
    no_consent: u64,
    suppressed: u64,
    /// The keys of filtered records, for a sink that deletes withdrawn rows.
    withdrawn: hushflow_core::Column,
    /// The rows as read, kept for a sink that may refuse single records (to quarantine them).
    input: Option<Batch>,
}

/// Keeps the partition's rows of a decoded batch: those whose key value (as text, exactly as the
/// source gave it) hashes to it. Records without a key to hash (the source could not decode them,
/// or their key is empty) are partition 0's, which quarantines them, so that each is counted
/// once whatever the number of partitions.
fn keep_partition(
    partition: Partition,
    batch: &mut Batch,
    rejected: &mut Vec<hushflow_core::Rejected>,
    key_column: Option<usize>,
) {
    if !partition.owns_unkeyed() {
        rejected.clear();
    }
    let keep: Vec<bool> = match key_column {
        Some(k) => batch
            .column(k)
            .iter()
            .map(|c| match c.is_null() || c.text.trim().is_empty() {
                true => partition.owns_unkeyed(),
                false => partition.owns(c.text),
            })
            .collect(),
        None => vec![partition.owns_unkeyed(); batch.len()],
    };
    batch.retain_rows(&keep);
}

/// Key check, policy and (for sinks with an encoder) encoding for one batch: pure CPU work, run
/// on any worker thread.
fn process(
    item: SourceBatch,
    partition: Option<Partition>,
    key_column: Option<usize>,
    key: &str,
    policy: &CompiledPolicy,
    encoder: Option<&dyn Encode>,
    keep_input: bool,
) -> Result<Processed, RunError> {
    let SourceBatch {
        mut batch,
        mut rejected,
    } = item;
    // A partitioned run leaves other partitions' records out first, before any other work.
    let mut other_partitions = 0;
    if let Some(partition) = partition {
        let before = (batch.len() + rejected.len()) as u64;
        keep_partition(partition, &mut batch, &mut rejected, key_column);
        other_partitions = before - (batch.len() + rejected.len()) as u64;
    }
    let read = (batch.len() + rejected.len()) as u64;
    let mut set_aside: Vec<(u64, RejectReason, Vec<u8>)> = rejected
        .into_iter()
        .map(|r| (r.line, r.reason, r.raw))
        .collect();
    if let Some(k) = key_column {
        let keep: Vec<bool> = batch
            .column(k)
            .iter()
            .map(|c| !c.is_null() && !c.text.trim().is_empty())
            .collect();
        if keep.iter().any(|k| !*k) {
            for (row, _) in keep.iter().enumerate().filter(|(_, k)| !**k) {
                let reason = RejectReason::MissingKey {
                    field: key.to_string(),
                };
                set_aside.push((batch.lines()[row], reason, row_json(&batch, row)));
            }
            batch.retain_rows(&keep);
        }
    }
    let out = policy.apply(&batch);
    for (row, reason) in out.rejected {
        set_aside.push((batch.lines()[row], reason, row_json(&batch, row)));
    }
    // Quarantine in source order, whichever stage refused the record.
    set_aside.sort_by_key(|(line, _, _)| *line);
    let encoded = match encoder {
        Some(encoder) if !out.batch.is_empty() => {
            let mut bytes = Vec::with_capacity(out.batch.text_len() + out.batch.len() * 16);
            encoder.encode(&out.batch, &mut bytes)?;
            Some(bytes)
        }
        _ => None,
    };
    Ok(Processed {
        read,
        other_partitions,
        rejected: set_aside,
        output: out.batch,
        encoded,
        no_consent: out.no_consent as u64,
        suppressed: out.suppressed as u64,
        withdrawn: out.withdrawn,
        input: keep_input.then_some(batch),
    })
}

/// The records of a written batch the sink refused, each as its row was read (for a replay),
/// with its line: the output row's line finds the input row, since the policy keeps lines.
fn refused_records(
    output: &Batch,
    input: Option<&Batch>,
    refused: Vec<hushflow_core::SinkRejection>,
) -> Vec<(u64, RejectReason, Vec<u8>)> {
    refused
        .into_iter()
        .filter_map(|r| {
            let line = *output.lines().get(r.row)?;
            let raw = input
                .and_then(|input| {
                    let row = input.lines().iter().position(|l| *l == line)?;
                    Some(row_json(input, row))
                })
                .unwrap_or_default();
            Some((line, r.reason, raw))
        })
        .collect()
}

fn move_records(
    plan: &Plan,
    keys: &KeyMaterial,
    ctx: &RunContext<'_>,
    mut staged: Option<&mut StagedRun>,
    quarantine: &mut Quarantine,
    counts: &mut Counts,
    sink_writes: &mut Vec<f64>,
) -> Result<(), RunError> {
    let suppression_list = match &plan.suppression_file {
        Some(path) => read_lines(path)?,
        None => Vec::new(),
    };
    // The key may leave under a new name (`fields.id = { from = "customer_id" }`): it is checked
    // in the source field it is read from. It also names the subject of per-subject tokens and
    // breaks ties of an incremental source's cursor.
    let key_source = plan
        .policy
        .rule(&plan.key)
        .map_or(plan.key.as_str(), |rule| rule.source_field(&plan.key));
    // An incremental source continues after the position committed with the data: the sink
    // keeps it (opened first, to read it), or the state directory does for file sinks.
    let incremental = plan.incremental() && ctx.replay.is_none();
    // Each partition keeps its own position, apart from the others' and the unpartitioned runs'.
    let position_key = match ctx.partition {
        Some(p) => p.position_key(&plan.name),
        None => plan.name.clone(),
    };
    let mut early_sink = None;
    let after = match incremental {
        false => None,
        true => {
            let mut sink = open_sink(plan, ctx.connections)?;
            other_partitionings(plan, ctx, sink.as_mut())?;
            let position = match (ctx.full_refresh, sink.keeps_positions()) {
                (true, _) => None,
                (false, true) => sink.committed_position(&position_key)?,
                (false, false) => hushflow_state::dir::load_position(ctx.state, &position_key)
                    .map_err(RunError::State)?,
            };
            early_sink = Some(sink);
            position
        }
    };
    // A staged run reads the source into encrypted segments first (unless an earlier attempt
    // did), then loads from them.
    let resuming = staged
        .as_deref()
        .is_some_and(|run| run.manifest().extracted);
    let mut source: Box<dyn Source> = match staged.as_deref_mut() {
        None => match ctx.replay {
            Some(replay) => Box::new(crate::replay::ReplaySource::new(plan, replay.records)?),
            None => open_source(plan, ctx.connections, key_source, after.as_ref())?,
        },
        Some(run) => {
            if run.manifest().extracted {
                run.verify(ctx.identity)?;
            } else {
                let recipient = ctx.identity.recipient();
                run.extract(
                    open_source(plan, ctx.connections, key_source, None)?,
                    plan.workers,
                    plan.batch_size,
                    &recipient,
                    ctx.progress,
                )?;
            }
            Box::new(run.source(ctx.identity)?)
        }
    };
    let schema = source.schema();
    let key_column = schema.index_of(key_source);
    let subject_store = subject_store(ctx, plan, keys)?;
    let subjects = subject_store.as_ref().map(|store| Subjects {
        field: key_source.to_string(),
        keys: store.clone(),
    });
    let mut sink = match early_sink {
        Some(sink) => sink,
        None => open_sink(plan, ctx.connections)?,
    };
    let keeps_positions = sink.keeps_positions();
    // A transactional sink commits each staged segment's number with its rows: a resumed load
    // continues after the segments the sink itself holds of this staged run, and starts again
    // at the first for a sink that holds none (a database removed or replaced, another sink).
    let staged_key = staging::position_key(&plan.name);
    let committed = match staged.as_deref() {
        Some(run) if keeps_positions && resuming => {
            run.committed_in(sink.committed_position(&staged_key)?.as_ref())
        }
        _ => 0,
    };
    // Every segment is in the sink already (the attempt failed after the sink's last commit):
    // the sink is left as it is, not opened again (a `replace` table would be rebuilt empty).
    let complete = staged
        .as_deref()
        .is_some_and(|run| committed > 0 && committed == run.manifest().segments);
    // Records filtered now (consent withdrawn, newly suppressed) may have rows from earlier
    // runs: their keys go to a sink that can act on them, in the batch's transaction.
    let withdrawal = (plan.on_withdrawal != Withdrawal::Keep && sink.can_withdraw())
        .then_some(plan.on_withdrawal);
    let policy = plan.policy.compile(
        &schema,
        &CompileInputs {
            subjects: subjects.as_ref(),
            keys,
            suppression_list: &suppression_list,
            today: today(),
            withdrawal_key: withdrawal.map(|_| plan.key.as_str()),
        },
    )?;
    // People erased or opted out by a data subject request never leave again, whichever
    // pipeline meets them: a list without its key stops the run rather than let them through.
    let policy = {
        let listed = hushflow_state::erased::load(ctx.state.root()).map_err(RunError::State)?;
        if listed.is_empty() {
            policy
        } else {
            let reference = hushflow_state::erased::key_reference();
            let key = keys.get(&reference).ok_or_else(|| {
                RunError::State(std::io::Error::other(format!(
                    "the state directory has a managed suppression list (from `hushflow dsr`), \
                     but its key {reference} was not resolved; run with the keyring that made it"
                )))
            })?;
            let list = hushflow_policy::ErasedList::new(&key.material, listed);
            policy.with_erased(list, key_column)
        }
    };
    if !complete {
        sink.open(policy.output_schema())?;
    }
    let mut last_position: Option<Position> = None;
    // A sink with an encoder (CSV) has its bytes made on the workers; the writer only writes.
    let encoder = sink.encoder();
    let encoder = encoder.as_deref();
    let keep_input = sink.rejects_records();

    // reader → workers (decoding and the policy, in parallel) → this thread (quarantine and
    // sink, in source order).
    let batch_size = plan.batch_size;
    let (policy, key, partition) = (&policy, plan.key.as_str(), ctx.partition);
    let mut seq = 0u64;
    crate::workers::in_order(
        plan.workers,
        crate::workers::Stages {
            reader: "source",
            worker: "policy",
        },
        || {
            // The position after this chunk travels with it, to commit with its rows.
            let chunk = source.next_chunk(batch_size).map_err(RunError::Connector)?;
            Ok(chunk.map(|c| (c, source.position())))
        },
        |(chunk, position): (hushflow_core::SourceChunk, Option<Position>)| {
            process(
                chunk.decode()?,
                partition,
                key_column,
                key,
                policy,
                encoder,
                keep_input,
            )
            .map(|p| (p, position))
        },
        |(p, position)| {
            counts.read += p.read;
            counts.other_partitions += p.other_partitions;
            for (line, reason, raw) in &p.rejected {
                reject(plan, quarantine, *line, reason, raw)?;
            }
            counts.filtered_no_consent += p.no_consent;
            counts.suppressed += p.suppressed;
            counts.filtered += p.no_consent + p.suppressed;
            seq += 1;
            // Keys made for new subjects reach the disk before any token made with them leaves.
            if let Some(store) = &subject_store {
                store.flush()?;
            }
            // Rows of segments an earlier attempt committed are in the sink already; their
            // rejected records are quarantined again above, since that attempt's file is lost.
            let mut refused_count = 0;
            if seq > committed {
                if let Some(how) = withdrawal
                    && !p.withdrawn.is_empty()
                {
                    sink.withdraw(&p.withdrawn, how)?;
                    counts.withdrawn += p.withdrawn.len() as u64;
                }
                // A staged segment's rows commit with its number; a source's with its cursor.
                let (key, at) = match staged.as_deref() {
                    Some(run) if keeps_positions => {
                        (staged_key.as_str(), Some(run.position_after(seq)))
                    }
                    _ => (position_key.as_str(), position.clone()),
                };
                let write = Instant::now();
                match &p.encoded {
                    Some(bytes) => sink.write_encoded_at(bytes, key, at.as_ref())?,
                    None if !p.output.is_empty() || at.is_some() || !p.withdrawn.is_empty() => {
                        sink.write_batch_at(&p.output, key, at.as_ref())?
                    }
                    None => {}
                }
                sink_writes.push(write.elapsed().as_secs_f64());
                // Records the destination refused one by one are quarantined, not written.
                let refused = refused_records(&p.output, p.input.as_ref(), sink.take_rejections());
                for (line, reason, raw) in &refused {
                    reject(plan, quarantine, *line, reason, raw)?;
                }
                refused_count = refused.len() as u64;
            }
            if position.is_some() {
                last_position = position;
            }
            counts.written += (p.output.len() as u64).saturating_sub(refused_count);
            (ctx.progress)(counts.read);
            Ok(())
        },
    )?;
    if !complete {
        sink.finish()?;
    }
    // A file sink is complete only now: its position is kept after it.
    if !keeps_positions && let Some(position) = &last_position {
        hushflow_state::dir::save_position(ctx.state, &position_key, position)
            .map_err(RunError::State)?;
    }
    Ok(())
}

/// The subject key store, when a `tokenize` rule keeps a key per subject.
fn subject_store(
    ctx: &RunContext<'_>,
    plan: &Plan,
    keys: &KeyMaterial,
) -> Result<Option<Arc<SubjectStore>>, RunError> {
    let roots: Vec<(String, SubjectRoot)> = plan
        .per_subject_keys()
        .into_iter()
        .filter_map(|r| {
            keys.get(r)
                .map(|k| (r.to_string(), SubjectRoot::new(&k.id, &k.material)))
        })
        .collect();
    if roots.is_empty() {
        return Ok(None);
    }
    Ok(Some(Arc::new(SubjectStore::open(ctx.state.root(), roots)?)))
}

fn reject(
    plan: &Plan,
    quarantine: &mut Quarantine,
    line: u64,
    reason: &RejectReason,
    raw: &[u8],
) -> Result<(), RunError> {
    if plan.on_error == OnError::Fail {
        return Err(RunError::Record(RecordError {
            path: plan.source.location().to_path_buf(),
            line,
            reason: reason.clone(),
        }));
    }
    quarantine
        .add(line, reason, raw)
        .map_err(|source| RunError::Quarantine {
            path: quarantine.path().to_path_buf(),
            source,
        })
}

/// A row as a JSON object, for quarantining a record the source parsed but a later stage refused.
/// Only the fields the source read are there: dropped fields were never read.
fn row_json(batch: &Batch, row: usize) -> Vec<u8> {
    let mut object = serde_json::Map::new();
    for (name, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let cell = column.get(row);
        let value = match cell.kind {
            CellKind::Null => serde_json::Value::Null,
            CellKind::Bool => serde_json::Value::Bool(cell.text == "true"),
            CellKind::Number | CellKind::Json => serde_json::from_str(cell.text)
                .unwrap_or_else(|_| serde_json::Value::String(cell.text.to_string())),
            CellKind::Text => serde_json::Value::String(cell.text.to_string()),
        };
        object.insert(name.clone(), value);
    }
    serde_json::to_vec(&object).unwrap_or_default()
}

/// The suppression list: emails or their HMACs, not record data, but still read only here.
fn read_lines(path: &std::path::Path) -> Result<Vec<String>, RunError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        RunError::State(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        ))
    })?;
    Ok(text.lines().map(str::to_string).collect())
}

/// The run's date (UTC), for age bands without an explicit `as_of`.
fn today() -> Day {
    let date = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    Day {
        year: i32::from(date.year()),
        month: date.month() as u8,
        day: date.day() as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hushflow_core::{Cell, Schema, SinkRejection};

    fn batch(fields: &[&str], rows: &[(u64, &[&str])]) -> Batch {
        let schema = Arc::new(Schema::new(fields.iter().map(|f| f.to_string()).collect()));
        let mut b = Batch::new(schema);
        for (line, cells) in rows {
            b.push_row(*line, cells.iter().map(|c| Cell::text(c)));
        }
        b
    }

    #[test]
    fn a_refused_output_row_is_quarantined_as_its_input_row_was_read() {
        // Line 3 was filtered by the policy: output row 1 is input row 2 (line 4).
        let input = batch(
            &["id", "email"],
            &[
                (2, &["1", "a@x.example"]),
                (3, &["2", "b@x.example"]),
                (4, &["3", "c@x.example"]),
            ],
        );
        let output = batch(
            &["id", "email_hash"],
            &[(2, &["1", "h1"]), (4, &["3", "h3"])],
        );
        let refused = vec![SinkRejection {
            row: 1,
            reason: RejectReason::Refused {
                field: Some("email_hash".into()),
                detail: "not a valid email".into(),
            },
        }];
        let records = refused_records(&output, Some(&input), refused);
        assert_eq!(records.len(), 1);
        let (line, reason, raw) = &records[0];
        assert_eq!(*line, 4);
        assert_eq!(reason.code(), "refused");
        let row: serde_json::Value = serde_json::from_slice(raw).unwrap();
        assert_eq!(row, serde_json::json!({"id": "3", "email": "c@x.example"}));
        // A row index past the batch is dropped rather than guessed at.
        let out_of_range = vec![SinkRejection {
            row: 9,
            reason: RejectReason::MissingKey { field: "id".into() },
        }];
        assert!(refused_records(&output, Some(&input), out_of_range).is_empty());
    }
}
