//! Permission denials, audited: the server checks every request with
//! [`Principal::may`](super::Principal::may) and records each refusal here.

use super::{Access, AccessError, Permission, Principal};
use crate::Session;
use std::collections::BTreeMap;

impl Access {
    /// Audits that `principal` was refused `permission` (on `pipeline`, when the request was
    /// about one) from `address`: action `access.denied`, outcome `denied`. Returns the error
    /// to answer with.
    pub fn record_denial(
        &self,
        session: &Session,
        principal: &Principal,
        permission: Permission,
        pipeline: Option<&str>,
        address: &str,
    ) -> Result<AccessError, AccessError> {
        let on = pipeline.map_or_else(String::new, |p| format!(" on pipeline {p}"));
        let detail = format!(
            "{permission}{on} refused to role {} from {address}",
            principal.role
        );
        match pipeline {
            Some(p) => session.audit_task(
                &principal.actor,
                "access.denied",
                p,
                detail,
                BTreeMap::new(),
                "denied",
            )?,
            None => session.audit(
                &principal.actor,
                "access.denied",
                detail,
                BTreeMap::new(),
                "denied",
            )?,
        }
        Ok(AccessError::Denied { permission })
    }
}
