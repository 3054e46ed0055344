//! `hushflow audit`: read and check the tamper-evident audit log, and tag its head.

use super::{Exit, Failure, Session, failure, invalid};
use crate::cli::{AuditCommand, AuditListArgs, AuditShipArgs, AuditVerifyArgs};
use hushflow_app::actions::audit::{self, AnchorCheck, AnchorKey, Verification};

pub(super) fn audit(session: &Session<'_>, cmd: AuditCommand) -> Result<Exit, Failure> {
    let out = session.out;
    match cmd {
        AuditCommand::List(AuditListArgs { json }) => {
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
        AuditCommand::Verify(AuditVerifyArgs { anchor: false }) => {
            intact(session, audit::verify(&session.app)?)?;
            Ok(Exit::Success)
        }
        AuditCommand::Verify(AuditVerifyArgs { anchor: true }) => {
            let key = anchor_key(session, "check")?;
            let (chain, check) = audit::verify_anchored(&session.app, key)?;
            intact(session, chain)?;
            match check {
                AnchorCheck::Vouched { records, hash } => {
                    out.line(format!(
                        "audit head tag valid (key {}): it vouches for all {records} records, \
                         head {hash}",
                        key.id()
                    ));
                    Ok(Exit::Success)
                }
                // Not recorded: a record written with the key after unvouched ones would re-tag
                // the head over them, blessing what this check just refused.
                problem => Err(failure(format!("audit log anchor: {problem}"))),
            }
        }
        AuditCommand::Ship(AuditShipArgs {
            to,
            follow,
            interval,
            position,
        }) => {
            use hushflow_app::actions::ship::{self, ShipOptions, ShipTarget};
            let target = ShipTarget::parse(&to)?;
            let stop = super::scheduler::stop_flag()?;
            let options = ShipOptions {
                position,
                follow,
                interval,
            };
            let shipped = ship::ship(&session.app, &target, &options, &stop)?;
            out.line(format!("audit ship: {shipped} record(s) shipped to {to}"));
            Ok(Exit::Success)
        }
        AuditCommand::Anchor => {
            let key = anchor_key(session, "tag")?;
            let tagged = audit::tag_head(&session.app, &session.actor, key)?;
            let before = match tagged.before {
                AnchorCheck::Vouched { .. } => "it was already tagged".to_string(),
                before => format!("before: {}", before.label()),
            };
            out.line(format!(
                "audit head tagged with key {} at record {} ({before}); the audit.anchor record \
                 that follows is tagged too",
                key.id(),
                tagged.records
            ));
            Ok(Exit::Success)
        }
    }
}

/// Prints an intact chain; a broken one is the failure naming its first problem.
fn intact(session: &Session<'_>, chain: Verification) -> Result<(), Failure> {
    match chain {
        Verification::Intact { records, head } => {
            session
                .out
                .line(format!("audit log intact: {records} records, head {head}"));
            Ok(())
        }
        Verification::Broken { seq, problem } => {
            let mut broken = failure(format!("audit log broken at record {seq}: {problem}"));
            // Recorded (the chain continues after the break, which stays visible) so that the
            // audit_verify_failed alert rule and the metrics see it.
            record_failure(
                session,
                format!("broken at record {seq}"),
                "broken",
                &mut broken,
            );
            Err(broken)
        }
    }
}

/// Appends an `audit.verify` record of a failed check, without the anchor key so that it can
/// never move the head's tag; a failure to append is added to `to`.
fn record_failure(session: &Session<'_>, detail: String, outcome: &str, to: &mut Failure) {
    let unkeyed = hushflow_app::Session::new(
        session.state.clone().with_anchor_key(None),
        session.out.redactor.clone(),
    );
    if let Err(e) = unkeyed.audit(
        &session.actor,
        "audit.verify",
        detail,
        std::collections::BTreeMap::new(),
        outcome,
    ) {
        to.message = format!(
            "{}\n(the failed check could not be audited: {})",
            to.message, e.message
        );
    }
}

/// The anchor key, or the invalid-input failure saying the head cannot be checked (or tagged)
/// without it.
fn anchor_key<'s>(session: &'s Session<'_>, what: &str) -> Result<&'s AnchorKey, Failure> {
    session.anchor_key.as_ref().ok_or_else(|| {
        invalid(format!(
            "cannot {what} the audit head's tag without the anchor key: give the master key \
             (HUSHFLOW_MASTER_KEY or --master-key) or --anchor-key REF"
        ))
    })
}
