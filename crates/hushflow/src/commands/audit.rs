//! `hushflow audit`: read and check the tamper-evident audit log.

use super::{Exit, Failure, Session, failure};
use crate::cli::AuditCommand;
use hushflow_app::actions::audit::{self, Verification};

pub(super) fn audit(session: &Session<'_>, cmd: AuditCommand) -> Result<Exit, Failure> {
    let out = session.out;
    match cmd {
        AuditCommand::List { json } => {
            for r in audit::list(&session.app)? {
                if json {
                    out.line(serde_json::to_string(&r).map_err(failure)?);
                    continue;
                }
                let counts: Vec<String> =
                    r.counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.line(format!(
                    "{:>5}  {}  {:<10} {:<12} {:<24} {:<8} {}{}",
                    r.seq,
                    r.time,
                    r.actor,
                    r.action,
                    r.pipeline.as_deref().unwrap_or("-"),
                    r.outcome,
                    counts.join(" "),
                    r.detail
                        .as_deref()
                        .map(|d| format!("  {d}"))
                        .unwrap_or_default(),
                ));
            }
            Ok(Exit::Success)
        }
        AuditCommand::Verify => match audit::verify(&session.app)? {
            Verification::Intact { records, head } => {
                out.line(format!("audit log intact: {records} records, head {head}"));
                Ok(Exit::Success)
            }
            Verification::Broken { seq, problem } => Err(failure(format!(
                "audit log broken at record {seq}: {problem}"
            ))),
        },
    }
}
