//! Reading the audit log: its records as views, and the check of its chain and head anchor.

use crate::views::AuditRecordView;
use crate::{Error, Result, Session};
use hushflow_state::audit::AuditLog;
pub use hushflow_state::audit::Verification;

/// Every record, in the order written.
pub fn list(session: &Session) -> Result<Vec<AuditRecordView>> {
    let audit = AuditLog::open(session.state().root()).map_err(Error::failed)?;
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
    let audit = AuditLog::open(session.state().root()).map_err(Error::failed)?;
    audit.verify().map_err(Error::failed)
}
