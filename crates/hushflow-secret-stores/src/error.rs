//! Why a store could not give a secret. Messages are built here from the reason and from
//! configuration (an address, a mount, a field name); never from a response body, a token or a
//! value, because these messages reach logs and terminals.

use std::fmt;

/// What went wrong, in the words an operator acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The reference itself is malformed (its text is not repeated).
    BadReference,
    /// The store is not configured (no address, no credentials, no region).
    NotConfigured,
    /// The credentials are valid but may not read this secret.
    PermissionDenied,
    /// There is no such secret, or no such field in it.
    NotFound,
    /// The Vault is sealed (or is a standby that cannot answer).
    Sealed,
    /// The token or credentials were refused as expired, revoked or invalid.
    ExpiredToken,
    /// The store could not be reached, or did not answer in time.
    Unreachable,
    /// The store answered with something this client does not understand.
    BadResponse,
    /// A TLS or address policy refused the connection (plain HTTP off loopback, a bad CA file).
    Insecure,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::BadReference => "malformed reference",
            Reason::NotConfigured => "not configured",
            Reason::PermissionDenied => "permission denied",
            Reason::NotFound => "not found",
            Reason::Sealed => "sealed",
            Reason::ExpiredToken => "expired or revoked credentials",
            Reason::Unreachable => "unreachable",
            Reason::BadResponse => "unexpected response",
            Reason::Insecure => "refused as insecure",
        })
    }
}

/// A store's error: the reason and a sentence about it, holding no secret.
#[derive(Debug, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct StoreError {
    /// What went wrong.
    pub reason: Reason,
    detail: String,
}

impl StoreError {
    /// An error for `reason`; `detail` must hold configuration only (addresses, paths, field
    /// and variable names), never a value.
    pub fn new(reason: Reason, detail: impl Into<String>) -> StoreError {
        StoreError {
            reason,
            detail: detail.into(),
        }
    }

    /// The sentence after the reason.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}
