//! `hushflow audit`: read and check the tamper-evident audit log, and tag its head.

use super::{Exit, Failure, Session, failure, invalid};
use crate::cli::{
    AuditCommand, AuditListArgs, AuditShipArgs, AuditVerifyArgs, AuditVerifyCopyArgs,
};
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
            ca_file,
        }) => {
            use hushflow_app::actions::ship::{self, ShipOptions, ShipTarget};
            let target = ShipTarget::parse_with_ca(&to, ca_file)?;
            let stop = super::scheduler::stop_flag()?;
            let options = ShipOptions {
                position,
                follow,
                interval,
                skip_if_busy: false,
            };
            let shipped = ship::ship(&session.app, &target, &options, &stop)?;
            out.line(format!("audit ship: {shipped} record(s) shipped to {to}"));
            Ok(Exit::Success)
        }
        AuditCommand::VerifyCopy(AuditVerifyCopyArgs { copy, json }) => {
            let key = anchor_key(session, "check")?;
            let report = hushflow_app::actions::ship::verify_copy(&copy, key)?;
            if json {
                out.line(serde_json::to_string(&report).map_err(failure)?);
            }
            let name = copy.display();
            if let Some(problem) = &report.broken {
                return Err(failure(format!(
                    "audit copy {name}: the chain is broken at {problem}"
                )));
            }
            if let Some(seq) = report.forged.first() {
                return Err(failure(format!(
                    "audit copy {name}: the checkpoint for record {seq} does not verify under key \
                     {} or names a record the copy does not hold: the copy or its checkpoints \
                     were rewritten",
                    key.id()
                )));
            }
            if !json {
                out.line(format!(
                    "audit copy {name}: {} records ({}..{}), chain intact; {} checkpoint(s) \
                     verified under key {}, vouching for records up to {}{}",
                    report.records,
                    report.first,
                    report.last,
                    report.vouched,
                    key.id(),
                    report.vouched_to,
                    if report.other_key > 0 {
                        format!("; {} under another key, not checked", report.other_key)
                    } else {
                        String::new()
                    }
                ));
                if report.vouched_to < report.last {
                    out.note(format!(
                        "warning: records {}..{} are not vouched for by a tag yet (a later \
                         checkpoint will cover them, or they were written without the anchor key)",
                        report.vouched_to + 1,
                        report.last
                    ));
                }
            }
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

/// `[audit] ship_to` of the alerts file, when it sets one.
fn configured_target(
    session: &Session<'_>,
) -> Option<(hushflow_app::actions::ship::ShipTarget, std::time::Duration)> {
    match hushflow_app::alerts::AlertConfig::load(session.state.root()) {
        Ok(config) => config.and_then(|c| c.ship_to),
        // Already reported when the alert rules were installed at start-up.
        Err(_) => None,
    }
}

/// Ships what is new once, giving way to another shipper; a failure is a warning (the run's
/// outcome stands, and the next shipping catches up).
pub(super) fn ship_configured_once(session: &Session<'_>) {
    let Some((target, interval)) = configured_target(session) else {
        return;
    };
    let options = hushflow_app::actions::ship::ShipOptions {
        position: None,
        follow: false,
        interval,
        skip_if_busy: true,
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    if let Err(e) = hushflow_app::actions::ship::ship(&session.app, &target, &options, &stop) {
        session
            .out
            .note(format!("warning: audit shipping ([audit] ship_to): {e}"));
    }
}

/// Starts `[audit] ship_to` shipping for a long-running command (`scheduler`, `worker`),
/// following new records until `stop` is set; the handle is joined when the command ends.
pub(super) fn start_configured_shipping(
    session: &Session<'_>,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<Option<std::thread::JoinHandle<()>>, Failure> {
    let Some((target, interval)) = configured_target(session) else {
        return Ok(None);
    };
    tracing::info!("audit shipping ([audit] ship_to) every {interval:?}");
    hushflow_app::actions::ship::spawn_shipping(session.app.clone(), target, interval, stop.clone())
        .map(Some)
        .map_err(failure)
}
