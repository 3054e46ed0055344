//! Reading the audit log: its records as views, and the check of its chain and head anchor;
//! tagging the head with the anchor key.

use crate::views::AuditRecordView;
use crate::{Actor, Error, Result, Session};
pub use hushflow_state::audit::{AnchorCheck, AnchorKey, HeadTagged, Verification};
use hushflow_state::audit::{AuditError, AuditLog, NewRecord};
use std::collections::BTreeMap;

/// Every record, in the order written.
pub fn list(session: &Session) -> Result<Vec<AuditRecordView>> {
    let audit = session.state().audit_log().map_err(Error::failed)?;
    Ok(audit
        .list()
        .map_err(Error::failed)?
        .into_iter()
        .map(AuditRecordView::from)
        .collect())
}

/// Walks the chain and checks the head anchor: intact, or the first record that was changed,
/// inserted or follows removed records.
pub fn verify(session: &Session) -> Result<Verification> {
    let audit = session.state().audit_log().map_err(Error::failed)?;
    audit.verify().map_err(Error::failed)
}

/// [`verify`], and the check of the head's tag with the anchor key: the log passes when the
/// chain is intact and the tag vouches for every record ([`AnchorCheck::Vouched`]).
pub fn verify_anchored(session: &Session, key: &AnchorKey) -> Result<(Verification, AnchorCheck)> {
    let audit = AuditLog::open(session.state().root(), Some(key.clone())).map_err(Error::failed)?;
    audit.verify_anchor().map_err(Error::failed)
}

/// Tags the head with the anchor key after checking the chain, for a log that was never tagged
/// (a new one, or one from before anchoring) or was tagged under another key; audited as
/// `audit.anchor` by `actor`, refusals too (outcome `refused`). It vouches for whatever the log
/// holds now, so the caller has checked the log first.
pub fn tag_head(session: &Session, actor: &Actor, key: &AnchorKey) -> Result<HeadTagged> {
    let mut audit =
        AuditLog::open(session.state().root(), Some(key.clone())).map_err(Error::failed)?;
    let tagged = audit.tag_head();
    let (outcome, detail) = match &tagged {
        Ok(t) => (
            "ok",
            format!(
                "tagged the head at record {} (before: {})",
                t.records,
                t.before.label()
            ),
        ),
        Err(AuditError::TagRefused { .. }) => ("refused", "the log shows tampering".to_string()),
        Err(e) => return Err(Error::failed(e)),
    };
    // Appended with the key: a head just tagged moves on to this record, still tagged.
    audit
        .append(NewRecord {
            actor: actor.audit_name(),
            action: "audit.anchor".into(),
            pipeline: None,
            policy_fingerprint: None,
            counts: BTreeMap::new(),
            outcome: outcome.into(),
            detail: Some(detail),
        })
        .map_err(Error::failed)?;
    tagged.map_err(Error::failed)
}
