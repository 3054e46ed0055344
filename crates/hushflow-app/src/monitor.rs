//! Watching the audit log from a long-running process: a follower reads the records written
//! since it last looked (by any process: one-off commands, task children, other workers), so
//! the scheduler's and workers' metrics count detokenizations, key exports and every other
//! audited action, and it checks the chain now and then for the audit verify metric.

use crate::{Error, Result};
use hushflow_state::StateDir;
use hushflow_state::audit::{AuditRecord, Verification};
use std::time::{Duration, Instant};

/// Reads the audit records appended after a position it keeps in memory.
#[derive(Debug)]
pub struct AuditFollower {
    state: StateDir,
    after: u64,
}

impl AuditFollower {
    /// A follower that starts after the log's last record now: it sees what is written from
    /// now on.
    pub fn from_head(state: StateDir) -> Result<AuditFollower> {
        let after = state
            .audit_log()
            .and_then(|log| log.last_seq())
            .map_err(Error::failed)?;
        Ok(AuditFollower { state, after })
    }

    /// A follower that starts after record `after`.
    pub fn after(state: StateDir, after: u64) -> AuditFollower {
        AuditFollower { state, after }
    }

    /// The last record seen.
    pub fn position(&self) -> u64 {
        self.after
    }

    /// The records written since the last call, in order; the position moves past them.
    pub fn poll(&mut self) -> Result<Vec<AuditRecord>> {
        let log = self.state.audit_log().map_err(Error::failed)?;
        let records = log.list_after(self.after).map_err(Error::failed)?;
        if let Some(last) = records.last() {
            self.after = last.seq;
        }
        Ok(records)
    }
}

/// Follows the audit log for this process's metrics, on a thread of its own for the rest of
/// the process: every `every`, the new records are counted; every `verify_every` (and at
/// start) the chain is checked. Errors are logged and retried at the next turn: metrics never
/// stop a scheduler.
pub fn spawn_audit_metrics(state: StateDir, every: Duration, verify_every: Duration) {
    let spawned = std::thread::Builder::new()
        .name("audit-metrics".into())
        .spawn(move || {
            let mut follower = None;
            let mut verified: Option<Instant> = None;
            loop {
                if verified.is_none_or(|t| t.elapsed() >= verify_every) {
                    verified = Some(Instant::now());
                    let intact = match state.audit_log().and_then(|log| log.verify()) {
                        Ok(v) => Some(matches!(v, Verification::Intact { .. })),
                        Err(e) => {
                            tracing::warn!("metrics: the audit log could not be checked: {e}");
                            None
                        }
                    };
                    hushflow_metrics::audit_verified(intact);
                }
                if follower.is_none() {
                    follower = AuditFollower::from_head(state.clone())
                        .inspect_err(|e| tracing::warn!("metrics: audit log: {e}"))
                        .ok();
                }
                if let Some(f) = follower.as_mut() {
                    match f.poll() {
                        Ok(records) => {
                            for r in &records {
                                hushflow_metrics::audit_record(&r.action, &r.outcome, &r.counts);
                            }
                        }
                        Err(e) => tracing::warn!("metrics: audit log: {e}"),
                    }
                }
                std::thread::sleep(every);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("metrics: the audit follower could not start: {e}");
    }
}
