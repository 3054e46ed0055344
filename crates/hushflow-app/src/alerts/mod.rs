//! Alert rules on the audit stream: `[[alert]]` blocks of a config file, judged as each audit
//! record is written. Every hushflow process writes its audit records through the state
//! directory ([`hushflow_state::StateDir::audit_log`]); the front end installs the rules there
//! once ([`install`]), so a record is judged by the process that wrote it: a one-off command,
//! a task's child process, a scheduler or a worker alike.
//!
//! A raised alert is itself audited (action `alert`, outcome `raised`, the triggering record's
//! number in its counts) and then delivered on a thread of its own, with retries, to the
//! configured channels ([`deliver`]): the failure webhook's client, syslog (RFC 5424 over TCP or
//! a Unix socket). Deliveries never block the append nor the run; [`flush`] lets a short-lived
//! process wait a bounded time for them before it exits.
//!
//! ```toml
//! # <state dir>/alerts.toml, or the file HUSHFLOW_ALERTS names
//! [[alert]]
//! kind = "detokenize"      # one actor above `threshold` values per `window`
//! threshold = 1000
//! window = "1h"
//!
//! [[alert]]
//! kind = "bulk_write"      # a run above `factor` × the median of its pipeline's last `runs`
//! factor = 3.0
//! runs = 10
//!
//! [delivery.syslog]
//! address = "tcp:127.0.0.1:514"   # or unix:/dev/log
//!
//! [delivery.webhook]
//! url = "env:ALERT_WEBHOOK"       # a secret reference, like on_failure_webhook
//! ```

pub mod deliver;
pub mod rules;
mod tls;

pub use rules::{Alert, Kind, Rule, Severity};

use crate::{Error, Result};
use hushflow_secrets::Redactor;
use hushflow_state::StateDir;
use hushflow_state::audit::{AuditObserver, AuditRecord, NewRecord};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The variable naming the alerts file (else `<state dir>/alerts.toml`, when it exists).
pub const ALERTS_ENV: &str = "HUSHFLOW_ALERTS";
/// The alerts file's name in the state directory.
pub const ALERTS_FILE: &str = "alerts.toml";
/// The actor of the `alert` audit records.
pub const ALERT_ACTOR: &str = "hushflow-alerts";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    alert: Vec<RuleSpec>,
    #[serde(default)]
    delivery: deliver::DeliverySpec,
    #[serde(default)]
    audit: AuditSpec,
}

/// `[audit]`: where every process ships the audit log as it is written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditSpec {
    ship_to: Option<String>,
    interval: Option<String>,
    /// With a `syslog:tls:` target: the receiver's CA (PEM), else the system's roots.
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    kind: Kind,
    threshold: Option<u64>,
    window: Option<String>,
    factor: Option<f64>,
    runs: Option<usize>,
    min_runs: Option<usize>,
}

/// The rules and deliveries of an alerts file.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// The rules, in the file's order.
    pub rules: Vec<Rule>,
    /// Where alerts go.
    pub delivery: deliver::Delivery,
    /// `[audit] ship_to`: where the audit log is shipped as it is written, and how often a
    /// long-running process looks for new records (`interval`, 1 s by default).
    pub ship_to: Option<(crate::actions::ship::ShipTarget, Duration)>,
}

impl AlertConfig {
    /// Parses an alerts file's text; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<AlertConfig> {
        let bad = |what: String| {
            Error::invalid(format!(
                "alerts file {}: {what}; see docs/monitoring.md for the [[alert]] kinds and keys",
                file.display()
            ))
        };
        let spec: FileSpec = toml::from_str(text).map_err(|e| bad(e.message().to_string()))?;
        let mut rules = Vec::new();
        for (i, r) in spec.alert.into_iter().enumerate() {
            let mut rule = Rule::new(r.kind);
            if let Some(t) = r.threshold {
                rule.threshold = t;
            }
            if let Some(w) = &r.window {
                rule.window =
                    hushflow_spec::duration::parse(w, hushflow_spec::duration::Unit::Seconds)
                        .map_err(|e| bad(format!("[[alert]] {} window: {e}", i + 1)))?;
            }
            if let Some(f) = r.factor {
                if !(f.is_finite() && f > 0.0) {
                    return Err(bad(format!("[[alert]] {} factor must be above 0", i + 1)));
                }
                rule.factor = f;
            }
            if let Some(n) = r.runs {
                rule.runs = n.max(1);
            }
            if let Some(n) = r.min_runs {
                rule.min_runs = n.max(1);
            }
            rules.push(rule);
        }
        let delivery = deliver::Delivery::from_spec(spec.delivery).map_err(bad)?;
        let ship_to = match spec.audit.ship_to {
            Some(target) => {
                let target =
                    crate::actions::ship::ShipTarget::parse_with_ca(&target, spec.audit.ca_file)
                        .map_err(|e| bad(format!("[audit] ship_to: {e}")))?;
                let interval = match &spec.audit.interval {
                    Some(i) => {
                        hushflow_spec::duration::parse(i, hushflow_spec::duration::Unit::Seconds)
                            .map_err(|e| bad(format!("[audit] interval: {e}")))?
                    }
                    None => Duration::from_secs(1),
                };
                Some((target, interval))
            }
            None => None,
        };
        Ok(AlertConfig {
            rules,
            delivery,
            ship_to,
        })
    }

    /// The alerts file of a state directory: HUSHFLOW_ALERTS, else `<state>/alerts.toml` when
    /// it exists; `None` without either.
    pub fn load(state: &Path) -> Result<Option<AlertConfig>> {
        let path = match std::env::var_os(ALERTS_ENV) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => {
                let p = state.join(ALERTS_FILE);
                if !p.exists() {
                    return Ok(None);
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::invalid(format!(
                "alerts file {}: {e}; fix or unset {ALERTS_ENV}",
                path.display()
            ))
        })?;
        AlertConfig::parse(&text, &path).map(Some)
    }
}

/// The rules installed on a state directory: judges each appended record, audits what fires,
/// and hands it to the deliveries.
pub struct AlertObserver {
    config: AlertConfig,
    /// The same directory without this observer: its `alert` records do not come back here.
    state: StateDir,
    redactor: Redactor,
}

impl AlertObserver {
    /// The alerts a record raises, given the records before it. Public for tests and for a
    /// server that wants to show what would fire.
    pub fn judge(&self, record: &AuditRecord, before: &[AuditRecord]) -> Vec<Alert> {
        self.config
            .rules
            .iter()
            .filter_map(|r| r.judge(record, before))
            .collect()
    }

    fn raise(&self, alert: Alert) {
        hushflow_metrics::alert_raised(alert.kind.as_str());
        let audited = self.state.audit_log().and_then(|mut log| {
            log.append(NewRecord {
                actor: ALERT_ACTOR.into(),
                action: "alert".into(),
                pipeline: alert.pipeline.clone(),
                policy_fingerprint: None,
                counts: BTreeMap::from([("record".to_string(), alert.seq)]),
                outcome: "raised".into(),
                detail: Some(alert.summary.clone()),
            })
        });
        if let Err(e) = audited {
            tracing::warn!("alert {} was not audited: {e}", alert.kind.as_str());
        }
        let delivery = self.config.delivery.clone();
        let redactor = self.redactor.clone();
        let spawned = std::thread::Builder::new()
            .name("alert-delivery".into())
            .spawn(move || delivery.send(&alert, &redactor));
        match spawned {
            Ok(handle) => pending().push(handle),
            Err(e) => tracing::warn!("an alert delivery could not start: {e}"),
        }
    }
}

impl AuditObserver for AlertObserver {
    fn appended(&self, _state_dir: &Path, record: &AuditRecord) {
        // An alert's own record judges nothing (no alert about alerts).
        if record.action == "alert" || self.config.rules.is_empty() {
            return;
        }
        let before = match self.state.audit_log().and_then(|log| log.list()) {
            Ok(all) => all
                .into_iter()
                .filter(|r| r.seq < record.seq)
                .collect::<Vec<_>>(),
            Err(e) => {
                tracing::warn!("alert rules: the audit log could not be read: {e}");
                return;
            }
        };
        for alert in self.judge(record, &before) {
            self.raise(alert);
        }
    }
}

/// The state directory with the alert rules of its alerts file installed (unchanged without
/// one). Every audit record appended through it (and through its clones) is judged.
pub fn install(state: StateDir, redactor: &Redactor) -> Result<StateDir> {
    let Some(config) = AlertConfig::load(state.root())? else {
        return Ok(state);
    };
    Ok(with_config(state, config, redactor))
}

/// [`install`] with a given configuration.
pub fn with_config(state: StateDir, config: AlertConfig, redactor: &Redactor) -> StateDir {
    let observer = AlertObserver {
        config,
        state: state.clone().without_audit_observer(),
        redactor: redactor.clone(),
    };
    state.with_audit_observer(Arc::new(observer))
}

fn pending() -> std::sync::MutexGuard<'static, Vec<std::thread::JoinHandle<()>>> {
    static PENDING: Mutex<Vec<std::thread::JoinHandle<()>>> = Mutex::new(Vec::new());
    PENDING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Waits up to `limit` for the deliveries this process started; answers how many were still
/// running when it gave up (they are abandoned with the process; the alerts stay audited).
pub fn flush(limit: Duration) -> usize {
    let started = Instant::now();
    let handles: Vec<_> = pending().drain(..).collect();
    let mut left = 0;
    for h in handles {
        while !h.is_finished() && started.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(20));
        }
        if h.is_finished() {
            let _ = h.join();
        } else {
            left += 1;
        }
    }
    left
}

#[cfg(test)]
mod tests;
