//! Runs a [`Plan`]: the source reads on its own thread while this one applies the policy and
//! writes the sink, so both cores work. Bad records go to the quarantine (or stop the run when
//! `on_error = "fail"`); every run, whatever its end, leaves one record in the audit log.

use crate::audit::{AuditLog, NewRecord};
use crate::pipeline::{OnError, SinkSpec, SourceSpec};
use crate::plan::Plan;
use crate::quarantine::Quarantine;
use crate::state::StateDir;
use hushflow_connectors::csv::{CsvSink, CsvSource};
use hushflow_connectors::jsonl::{JsonlSink, JsonlSource};
use hushflow_connectors::sqlite::SqliteSink;
use hushflow_core::{
    Batch, CellKind, Encode, RecordError, RejectReason, Sink, Source, SourceBatch, SourceChunk,
};
use hushflow_policy::{CompileInputs, CompiledPolicy, Day, KeyMaterial};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

/// How a run ended. The CLI maps these to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Finished, with records quarantined.
    Partial,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Partial => "partial",
            Outcome::Failure => "failure",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub read: u64,
    pub written: u64,
    /// Left out on purpose: `filtered_no_consent + suppressed`.
    pub filtered: u64,
    pub filtered_no_consent: u64,
    pub suppressed: u64,
    pub quarantined: u64,
}

#[derive(Debug)]
pub struct RunReport {
    pub run_id: String,
    pub outcome: Outcome,
    pub counts: Counts,
    pub reasons: BTreeMap<String, u64>,
    pub elapsed: Duration,
    /// The quarantine file, when records were quarantined.
    pub quarantine: Option<PathBuf>,
    pub sink: PathBuf,
    /// Why the run failed; never holds a record value.
    pub error: Option<String>,
}

impl RunReport {
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
    pub state: &'a StateDir,
    /// Whom quarantined records are encrypted to: the state directory's identity.
    pub quarantine_to: &'a hushflow_crypto::StateRecipient,
    pub actor: String,
    pub progress: &'a (dyn Fn(u64) + Sync),
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Connector(#[from] hushflow_core::Error),
    #[error(transparent)]
    Policy(#[from] hushflow_policy::PolicyError),
    #[error("quarantine {path}: {source}")]
    Quarantine {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Record(RecordError),
    #[error("audit store: {0}")]
    Audit(#[from] crate::audit::AuditError),
    #[error("state directory: {0}")]
    State(std::io::Error),
    #[error(
        "hushflow stopped on a bug (a panic in the {0}); the run was stopped and nothing was committed past the batch before it"
    )]
    Panicked(&'static str),
}

/// Runs the plan and records the run in the audit log. An `Err` means not even the audit record
/// could be written; a failed run is an `Ok` report with [`Outcome::Failure`].
pub fn run(plan: &Plan, keys: &KeyMaterial, ctx: &RunContext<'_>) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let run_id = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%S%.6fZ")
        .to_string();
    let quarantine_path = ctx
        .state
        .quarantine_dir()
        .map_err(RunError::State)?
        .join(format!(
            "{}-{run_id}{}",
            plan.name,
            crate::quarantine::SUFFIX
        ));
    let mut quarantine = Quarantine::new(quarantine_path, ctx.quarantine_to.clone());
    let mut counts = Counts::default();

    // The reader's and the workers' panics come back as errors; this catches the writer's (the
    // sink's), so that a bug still ends in an audited, failed run.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        move_records(plan, keys, ctx, &mut quarantine, &mut counts)
    }))
    .unwrap_or(Err(RunError::Panicked("sink")));
    let finished = quarantine.finish().map_err(|source| RunError::Quarantine {
        path: quarantine.path().to_path_buf(),
        source,
    });
    let result = result.and(finished);
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
        ("quarantined".into(), counts.quarantined),
    ]);
    audit_counts.extend(
        reasons
            .iter()
            .map(|(k, v)| (format!("quarantined.{k}"), *v)),
    );
    let mut audit = AuditLog::open(ctx.state.root())?;
    audit.append(NewRecord {
        actor: ctx.actor.clone(),
        action: "run".into(),
        pipeline: Some(plan.name.clone()),
        policy_fingerprint: Some(plan.fingerprint.clone()),
        counts: audit_counts,
        outcome: outcome.as_str().into(),
        // Errors name files, lines and fields, never values; the audit log keeps the kind of
        // failure so that a reader can tell runs apart.
        detail: Some(match &error {
            Some(_) => format!("run {run_id} failed"),
            None => format!("run {run_id}"),
        }),
    })?;

    Ok(RunReport {
        run_id,
        outcome,
        quarantine: (counts.quarantined > 0).then(|| quarantine.path().to_path_buf()),
        counts,
        reasons,
        elapsed: started.elapsed(),
        sink: plan.sink.path().to_path_buf(),
        error,
    })
}

fn open_source(plan: &Plan) -> Result<Box<dyn Source>, hushflow_core::Error> {
    let wanted = plan.source_fields_needed();
    Ok(match &plan.source {
        SourceSpec::Csv(c) => Box::new(CsvSource::open(c, Some(&wanted))?),
        SourceSpec::Jsonl(c) => Box::new(JsonlSource::open(c, Some(&wanted))?),
    })
}

fn open_sink(plan: &Plan) -> Result<Box<dyn Sink>, hushflow_core::Error> {
    Ok(match &plan.sink {
        SinkSpec::Csv(c) => Box::new(CsvSink::new(c)?),
        SinkSpec::Jsonl(c) => Box::new(JsonlSink::new(c)?),
        SinkSpec::Sqlite(c) => Box::new(SqliteSink::new(c, &plan.key)?),
    })
}

/// One source batch after the policy: what the writer needs, in the order it must happen.
struct Processed {
    read: u64,
    /// Records set aside, in source order: (line, reason, raw bytes).
    rejected: Vec<(u64, RejectReason, Vec<u8>)>,
    output: Batch,
    /// `output` as the sink's encoder wrote it, when the sink has one.
    encoded: Option<Vec<u8>>,
    no_consent: u64,
    suppressed: u64,
}

/// Key check, policy and (for sinks with an encoder) encoding for one batch: pure CPU work, run
/// on any worker thread.
fn process(
    item: SourceBatch,
    key_column: Option<usize>,
    key: &str,
    policy: &CompiledPolicy,
    encoder: Option<&dyn Encode>,
) -> Result<Processed, RunError> {
    let SourceBatch {
        mut batch,
        rejected,
    } = item;
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
        rejected: set_aside,
        output: out.batch,
        encoded,
        no_consent: out.no_consent as u64,
        suppressed: out.suppressed as u64,
    })
}

fn move_records(
    plan: &Plan,
    keys: &KeyMaterial,
    ctx: &RunContext<'_>,
    quarantine: &mut Quarantine,
    counts: &mut Counts,
) -> Result<(), RunError> {
    let suppression_list = match &plan.suppression_file {
        Some(path) => read_lines(path)?,
        None => Vec::new(),
    };
    let mut source = open_source(plan)?;
    let schema = source.schema();
    let policy = plan.policy.compile(
        &schema,
        &CompileInputs {
            keys,
            suppression_list: &suppression_list,
            today: today(),
        },
    )?;
    // The key may leave under a new name (`fields.id = { from = "customer_id" }`): it is checked
    // in the source field it is read from.
    let key_source = plan
        .policy
        .rule(&plan.key)
        .map_or(plan.key.as_str(), |rule| rule.source_field(&plan.key));
    let key_column = schema.index_of(key_source);
    let mut sink = open_sink(plan)?;
    sink.open(policy.output_schema())?;
    let encoder = sink.encoder();
    let encoder = encoder.as_deref();

    // reader → workers (the policy, in parallel) → this thread (quarantine and sink, in source
    // order). Bounded channels keep a few batches in flight: memory stays flat whatever the input.
    let workers = plan.workers.max(1);
    let (work_tx, work_rx) = mpsc::sync_channel::<(u64, SourceChunk)>(workers);
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::sync_channel::<(u64, Result<Processed, RunError>)>(workers * 2);
    let batch_size = plan.batch_size;
    let (policy, key) = (&policy, plan.key.as_str());
    // Set when the writer stops early (an error): the reader stops reading and the workers
    // drain what is queued without working on it, so every thread ends.
    let stop = AtomicBool::new(false);
    let stop = &stop;
    std::thread::scope(|scope| -> Result<(), RunError> {
        // Owned by this closure, so an early return drops it and the workers' sends fail.
        let done_rx = done_rx;
        let reader_done = done_tx.clone();
        scope.spawn(move || {
            for seq in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // Chunks are only cut here; the workers decode them, in parallel. A panic (a bug)
                // ends the run in order, like a read error, rather than the process.
                let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    source.next_chunk(batch_size)
                }));
                let Ok(next) = next else {
                    let _ = reader_done.send((seq, Err(RunError::Panicked("source"))));
                    break;
                };
                match next {
                    Ok(Some(chunk)) => {
                        // A closed channel means the writer stopped (an error): stop reading.
                        if work_tx.send((seq, chunk)).is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = reader_done.send((seq, Err(RunError::Connector(e))));
                        break;
                    }
                }
            }
        });
        for _ in 0..workers {
            let (work_rx, done_tx) = (&work_rx, done_tx.clone());
            scope.spawn(move || {
                loop {
                    // The lock is held only to take the next batch, not while working on it.
                    let next = work_rx.lock().map(|rx| rx.recv());
                    let Ok(Ok((seq, chunk))) = next else { break };
                    if stop.load(Ordering::Relaxed) {
                        continue;
                    }
                    // A panic (a bug) becomes this batch's error, in order, so the writer
                    // stops the run cleanly and audits it instead of the process aborting.
                    let processed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        process(chunk.decode()?, key_column, key, policy, encoder)
                    }))
                    .unwrap_or(Err(RunError::Panicked("policy")));
                    if done_tx.send((seq, processed)).is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            });
        }
        drop(done_tx);

        // Workers finish out of order; hold early batches until their turn.
        let mut waiting: BTreeMap<u64, Result<Processed, RunError>> = BTreeMap::new();
        let mut next_seq = 0;
        let mut write = || -> Result<(), RunError> {
            for (seq, item) in done_rx.iter() {
                waiting.insert(seq, item);
                while let Some(item) = waiting.remove(&next_seq) {
                    next_seq += 1;
                    let p = item?;
                    counts.read += p.read;
                    for (line, reason, raw) in &p.rejected {
                        reject(plan, quarantine, *line, reason, raw)?;
                    }
                    counts.filtered_no_consent += p.no_consent;
                    counts.suppressed += p.suppressed;
                    counts.filtered += p.no_consent + p.suppressed;
                    match &p.encoded {
                        Some(bytes) => sink.write_encoded(bytes)?,
                        None if !p.output.is_empty() => sink.write_batch(&p.output)?,
                        None => {}
                    }
                    counts.written += p.output.len() as u64;
                    (ctx.progress)(counts.read);
                }
            }
            Ok(())
        };
        let written = write();
        if written.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        written
    })?;
    sink.finish()?;
    Ok(())
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
            path: plan.source.path().to_path_buf(),
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
