//! Why an access check or an identity action failed. Messages name no secret (password, token,
//! session) and, for sign-in, do not tell whether the user exists.

use super::Permission;

/// What went wrong in identity and access.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// Sign-in refused: an unknown user, a wrong password, a disabled or locked-out user. One
    /// message for all, so that it does not say which (the audit log records the reason).
    #[error(
        "sign-in refused: wrong user name or password, or the account is locked; try again later"
    )]
    SignInRefused,
    /// Too many failed sign-ins from this address: wait before trying again.
    #[error("too many failed sign-ins from this address; try again in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until the next attempt is considered.
        retry_after_secs: u64,
    },
    /// The API token is unknown, malformed, revoked or expired.
    #[error("the API token is not valid (unknown, revoked or expired); ask an Admin for a new one")]
    TokenRefused,
    /// The session is unknown, signed out, idle too long or too old.
    #[error("the session has ended (signed out, idle or too old); sign in again")]
    SessionEnded,
    /// The principal's role and grants do not allow this.
    #[error("permission denied: this needs the `{permission}` permission")]
    Denied {
        /// The permission that was needed.
        permission: Permission,
    },
    /// A bad argument (a user name, a role, a weak password): what is wrong, never the value of
    /// a secret.
    #[error("{0}")]
    Invalid(String),
    /// No such user or token.
    #[error("{0}")]
    NotFound(String),
    /// The user or token name is taken.
    #[error("{0}")]
    Exists(String),
    /// The metadata store, the audit log or the random source failed.
    #[error("{0}")]
    Failed(String),
}

impl From<hushflow_scheduler::StoreError> for AccessError {
    fn from(e: hushflow_scheduler::StoreError) -> AccessError {
        AccessError::Failed(e.to_string())
    }
}

impl From<crate::Error> for AccessError {
    fn from(e: crate::Error) -> AccessError {
        match e.kind {
            crate::ErrorKind::Invalid => AccessError::Invalid(e.message),
            crate::ErrorKind::NotFound => AccessError::NotFound(e.message),
            crate::ErrorKind::Failed => AccessError::Failed(e.message),
        }
    }
}

impl From<AccessError> for crate::Error {
    fn from(e: AccessError) -> crate::Error {
        match e {
            AccessError::NotFound(_) => crate::Error::not_found(e),
            AccessError::Failed(_) => crate::Error::failed(e),
            _ => crate::Error::invalid(e),
        }
    }
}
