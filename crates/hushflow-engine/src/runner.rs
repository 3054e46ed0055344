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
use hushflow_core::{Batch, CellKind, RecordError, RejectReason, Sink, Source, SourceBatch};
use hushflow_policy::KeyMaterial;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;
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
    pub filtered: u64,
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
        .join(format!("{}-{run_id}.jsonl", plan.name));
    let mut quarantine = Quarantine::new(quarantine_path);
    let mut counts = Counts::default();

    let result = move_records(plan, keys, ctx, &mut quarantine, &mut counts);
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

fn move_records(
    plan: &Plan,
    keys: &KeyMaterial,
    ctx: &RunContext<'_>,
    quarantine: &mut Quarantine,
    counts: &mut Counts,
) -> Result<(), RunError> {
    let mut source = open_source(plan)?;
    let schema = source.schema();
    let policy = plan.policy.compile(&schema, keys)?;
    let key_column = schema.index_of(&plan.key);
    let mut sink = open_sink(plan)?;
    sink.open(policy.output_schema())?;

    // Two batches in flight: enough to keep both threads busy, little enough to bound memory.
    let (tx, rx) = mpsc::sync_channel::<Result<SourceBatch, hushflow_core::Error>>(2);
    let batch_size = plan.batch_size;
    std::thread::scope(|scope| -> Result<(), RunError> {
        scope.spawn(move || {
            loop {
                let next = source.next_batch(batch_size);
                let done = !matches!(next, Ok(Some(_)));
                let item = match next {
                    Ok(Some(b)) => Ok(b),
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                // A closed channel means the consumer stopped (an error): stop reading.
                if tx.send(item).is_err() || done {
                    break;
                }
            }
        });

        for item in rx {
            let SourceBatch {
                mut batch,
                rejected,
            } = item?;
            counts.read += (batch.len() + rejected.len()) as u64;
            for r in &rejected {
                reject(plan, quarantine, r.line, &r.reason, &r.raw)?;
            }
            if let Some(k) = key_column {
                reject_missing_keys(plan, quarantine, &mut batch, k)?;
            }
            let out = policy.apply(&batch);
            for (row, reason) in &out.rejected {
                reject(
                    plan,
                    quarantine,
                    batch.lines()[*row],
                    reason,
                    &row_json(&batch, *row),
                )?;
            }
            counts.filtered += out.filtered as u64;
            if !out.batch.is_empty() {
                sink.write_batch(&out.batch)?;
            }
            counts.written += out.batch.len() as u64;
            (ctx.progress)(counts.read);
        }
        Ok(())
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

fn reject_missing_keys(
    plan: &Plan,
    quarantine: &mut Quarantine,
    batch: &mut Batch,
    key_column: usize,
) -> Result<(), RunError> {
    let keep: Vec<bool> = batch
        .column(key_column)
        .iter()
        .map(|c| !c.is_null() && !c.text.trim().is_empty())
        .collect();
    if keep.iter().all(|k| *k) {
        return Ok(());
    }
    let reason = RejectReason::MissingKey {
        field: plan.key.clone(),
    };
    for (row, _) in keep.iter().enumerate().filter(|(_, k)| !**k) {
        reject(
            plan,
            quarantine,
            batch.lines()[row],
            &reason,
            &row_json(batch, row),
        )?;
    }
    batch.retain_rows(&keep);
    Ok(())
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
