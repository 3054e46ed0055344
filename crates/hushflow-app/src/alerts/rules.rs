//! The built-in rule kinds and how each judges one new audit record against the log before it.
//! Pure: a rule reads records and answers an [`Alert`] or nothing; the texts it writes hold
//! actors, pipeline names, counts and thresholds, never a detail text (which could hold a key
//! reference) and never a value.

use hushflow_state::audit::AuditRecord;
use serde::Deserialize;
use std::time::Duration;

/// A rule kind, as `kind = "…"` in an `[[alert]]` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One actor detokenized more than `threshold` values within `window`.
    Detokenize,
    /// One actor exported keys more than `threshold` times (default 0: any) within `window`.
    KeyExport,
    /// Quarantined records were exported (decrypted out of the state directory).
    QuarantineExport,
    /// A run wrote more than `factor` times the median of its pipeline's last `runs` runs.
    BulkWrite,
    /// A run's policy fingerprint differs from its pipeline's previous run.
    PolicyChanged,
    /// A run's sink destination differs from its pipeline's previous run.
    SinkChanged,
    /// A subject's keys were erased.
    Erasure,
    /// A key was rotated.
    KeyRotation,
    /// A check of the audit chain found it broken.
    AuditVerifyFailed,
    /// One actor failed to sign in more than `threshold` times within `window` (the access
    /// layer's `sign-in` records with outcome `refused`).
    SigninFailures,
    /// One actor was denied more than `threshold` times within `window` (records with outcome
    /// `denied`).
    PermissionDenials,
}

impl Kind {
    /// The word of the kind, as configured.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Detokenize => "detokenize",
            Kind::KeyExport => "key_export",
            Kind::QuarantineExport => "quarantine_export",
            Kind::BulkWrite => "bulk_write",
            Kind::PolicyChanged => "policy_changed",
            Kind::SinkChanged => "sink_changed",
            Kind::Erasure => "erasure",
            Kind::KeyRotation => "key_rotation",
            Kind::AuditVerifyFailed => "audit_verify_failed",
            Kind::SigninFailures => "signin_failures",
            Kind::PermissionDenials => "permission_denials",
        }
    }

    /// How serious the kind is, for syslog and the webhook.
    pub fn severity(self) -> Severity {
        match self {
            Kind::Detokenize
            | Kind::KeyExport
            | Kind::QuarantineExport
            | Kind::BulkWrite
            | Kind::AuditVerifyFailed => Severity::Critical,
            _ => Severity::Warning,
        }
    }
}

/// An alert's severity (syslog's numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// syslog 2.
    Critical,
    /// syslog 4.
    Warning,
}

impl Severity {
    /// `critical` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
        }
    }

    /// The syslog severity number.
    pub fn syslog(self) -> u8 {
        match self {
            Severity::Critical => 2,
            Severity::Warning => 4,
        }
    }
}

/// One configured rule, its thresholds filled with the kind's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// What it watches.
    pub kind: Kind,
    /// Fires when the amount in the window goes above this.
    pub threshold: u64,
    /// The sliding window of the counting kinds.
    pub window: Duration,
    /// `bulk_write`: how many times the median.
    pub factor: f64,
    /// `bulk_write`: how many earlier runs make the median.
    pub runs: usize,
    /// `bulk_write`: earlier runs needed before it judges at all.
    pub min_runs: usize,
}

impl Rule {
    /// A rule of `kind` with its defaults.
    pub fn new(kind: Kind) -> Rule {
        let (threshold, window) = match kind {
            Kind::Detokenize => (1000, 3600),
            Kind::SigninFailures => (5, 900),
            Kind::PermissionDenials => (10, 900),
            _ => (0, 3600),
        };
        Rule {
            kind,
            threshold,
            window: Duration::from_secs(window),
            factor: 3.0,
            runs: 10,
            min_runs: 3,
        }
    }
}

/// What a rule raised.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The rule's kind.
    pub kind: Kind,
    /// Its text: actor, pipeline, counts, thresholds; never a value.
    pub summary: String,
    /// The audit record that raised it.
    pub seq: u64,
    /// Who acted, as the audit log names them.
    pub actor: String,
    /// The pipeline concerned, if any.
    pub pipeline: Option<String>,
}

/// The sink marker the runner puts at the end of a run record's detail (`; sink KIND DIGEST`).
fn sink_of(r: &AuditRecord) -> Option<&str> {
    r.detail.as_deref()?.rsplit_once("; sink ").map(|(_, s)| s)
}

/// What a counting kind counts in `r` (0: the record is not of its kind).
fn amount(kind: Kind, r: &AuditRecord) -> u64 {
    match kind {
        Kind::Detokenize if r.action == "detokenize" => {
            r.counts.get("tokens").copied().unwrap_or(1)
        }
        Kind::KeyExport if matches!(r.action.as_str(), "keys.export" | "keys.export-identity") => 1,
        // What `access::Access::sign_in` writes for a refused sign-in.
        Kind::SigninFailures if r.action == "sign-in" && r.outcome == "refused" => 1,
        Kind::PermissionDenials if r.outcome == "denied" => 1,
        _ => 0,
    }
}

fn median(mut values: Vec<u64>) -> f64 {
    values.sort_unstable();
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2] as f64,
        _ => (values[n / 2 - 1] + values[n / 2]) as f64 / 2.0,
    }
}

impl Rule {
    /// Judges `record` (just appended) against `before`, the records written before it in
    /// order. Each kind fires once per crossing: a counting kind when this record takes its
    /// actor's amount in the window above the threshold, not again while it stays above.
    pub fn judge(&self, record: &AuditRecord, before: &[AuditRecord]) -> Option<Alert> {
        let alert = |summary: String| Alert {
            kind: self.kind,
            summary,
            seq: record.seq,
            actor: record.actor.clone(),
            pipeline: record.pipeline.clone(),
        };
        let previous_runs = || {
            before.iter().rev().filter(|r| {
                r.action == "run" && r.pipeline == record.pipeline && r.outcome != "failure"
            })
        };
        let is_run = record.action == "run" && record.outcome != "failure";
        match self.kind {
            Kind::Detokenize | Kind::KeyExport | Kind::SigninFailures | Kind::PermissionDenials => {
                let now = amount(self.kind, record);
                if now == 0 {
                    return None;
                }
                let since = record
                    .time
                    .checked_sub(jiff::SignedDuration::try_from(self.window).ok()?)
                    .ok()?;
                let earlier: u64 = before
                    .iter()
                    .filter(|r| r.actor == record.actor && r.time >= since)
                    .map(|r| amount(self.kind, r))
                    .sum();
                let total = earlier + now;
                let what = match self.kind {
                    Kind::Detokenize => "detokenized values",
                    Kind::KeyExport => "key exports",
                    Kind::SigninFailures => "failed sign-ins",
                    _ => "permission denials",
                };
                (earlier <= self.threshold && total > self.threshold).then(|| {
                    alert(format!(
                        "{}: {total} {what} by {} within {}s (threshold {})",
                        self.kind.as_str(),
                        record.actor,
                        self.window.as_secs(),
                        self.threshold
                    ))
                })
            }
            Kind::QuarantineExport => {
                (record.action == "quarantine.export" && record.outcome == "ok").then(|| {
                    alert(format!(
                        "quarantine_export: {} exported {} quarantined record(s){}",
                        record.actor,
                        record.counts.get("records").copied().unwrap_or(0),
                        on(&record.pipeline)
                    ))
                })
            }
            Kind::BulkWrite => {
                if !is_run {
                    return None;
                }
                let written = record.counts.get("written").copied().unwrap_or(0);
                let last: Vec<u64> = previous_runs()
                    .take(self.runs)
                    .map(|r| r.counts.get("written").copied().unwrap_or(0))
                    .collect();
                if last.len() < self.min_runs {
                    return None;
                }
                let m = median(last);
                (written as f64 > self.factor * m.max(1.0)).then(|| {
                    alert(format!(
                        "bulk_write: a run{} wrote {written} records, more than {} times the \
                         median {m} of its last {} runs",
                        on(&record.pipeline),
                        self.factor,
                        self.runs
                    ))
                })
            }
            Kind::PolicyChanged => {
                if !is_run {
                    return None;
                }
                let prev = previous_runs().next()?;
                (prev.policy_fingerprint != record.policy_fingerprint).then(|| {
                    alert(format!(
                        "policy_changed: the policy fingerprint{} changed from {} to {} since \
                         the previous run (audit record {})",
                        on(&record.pipeline),
                        short(prev.policy_fingerprint.as_deref()),
                        short(record.policy_fingerprint.as_deref()),
                        prev.seq
                    ))
                })
            }
            Kind::SinkChanged => {
                if !is_run {
                    return None;
                }
                let now = sink_of(record)?;
                let prev = previous_runs().find_map(|r| sink_of(r).map(|s| (r.seq, s)))?;
                (prev.1 != now).then(|| {
                    alert(format!(
                        "sink_changed: the sink destination{} changed from {} to {} since the \
                         previous run (audit record {})",
                        on(&record.pipeline),
                        prev.1,
                        now,
                        prev.0
                    ))
                })
            }
            Kind::Erasure => (record.action == "erase" && record.outcome == "ok").then(|| {
                alert(format!(
                    "erasure: {} erased a subject's keys{}",
                    record.actor,
                    on(&record.pipeline)
                ))
            }),
            Kind::KeyRotation => (record.action == "keys.rotate" && record.outcome == "ok")
                .then(|| alert(format!("key_rotation: {} rotated a key", record.actor))),
            Kind::AuditVerifyFailed => (record.action == "audit.verify" && record.outcome != "ok")
                .then(|| {
                    alert(format!(
                        "audit_verify_failed: a check of the audit chain by {} found it {}",
                        record.actor, record.outcome
                    ))
                }),
        }
    }
}

fn on(pipeline: &Option<String>) -> String {
    pipeline
        .as_deref()
        .map(|p| format!(" of pipeline {p}"))
        .unwrap_or_default()
}

fn short(fingerprint: Option<&str>) -> String {
    fingerprint
        .map(|f| f.chars().take(12).collect())
        .unwrap_or_else(|| "none".into())
}
