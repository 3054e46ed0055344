//! Identity and access: who may do what, over the HTTP API and the dashboard.
//!
//! - [`Role`]s as Airflow users know them (Viewer ⊂ User ⊂ Op ⊂ Admin) and the
//!   [`Permission`]s they hold: one matrix, [`Role::lowest_with`], printed in `docs/access.md`.
//! - [`Grant`]s: an extra permission (everywhere or on one pipeline), or a limit of a user's
//!   role to some pipelines.
//! - [`Principal`]: a signed-in user or a token holder; [`Principal::may`] answers every check.
//! - [`Access`]: the actions over the metadata store, under an [`AccessPolicy`]: users
//!   (`add_user`, `set_role`, `grant`, …), API tokens (`create_token`, `authenticate_token`,
//!   …), sign-in and sessions (`sign_in`, `session`, `sign_out`, `rotate`) and audited
//!   denials (`record_denial`). Changes and failed sign-ins go to the audit log with their
//!   actor; no password, token or session secret is stored, logged or put in an error.
//! - [`AccessError`]: why a check or an identity action failed, naming no secret.

mod denial;
mod error;
mod matrix;
mod password;
mod permission;
mod policy;
mod principal;
mod role;
mod secret;
mod sign_in;
mod tokens;
mod users;

pub use error::AccessError;
pub use matrix::matrix_markdown;
pub use password::{MAX_PASSWORD_BYTES, check_password, hash_password, verify_password};
pub use permission::{Permission, UnknownPermission};
pub use policy::{AccessPolicy, PasswordParams};
pub use principal::{Grant, Principal};
pub use role::{Role, UnknownRole};
pub use secret::{TOKEN_PREFIX, check_csrf, csrf_token};
pub use sign_in::NewSession;
pub use tokens::NewToken;
pub use users::check_name;

use hushflow_scheduler::{Clock, SystemClock};
use hushflow_spec::schedule::Millis;
use std::sync::{Arc, OnceLock};

/// Identity and access under one policy and clock. Built once by a server (it is `Send` and
/// `Sync`) or a command; each action takes the [`Session`](crate::Session) to audit in and the
/// metadata [`Store`](hushflow_scheduler::Store) to read and write.
pub struct Access {
    policy: AccessPolicy,
    clock: Arc<dyn Clock>,
    /// A password hash to check against for unknown user names (made on first use).
    decoy: OnceLock<String>,
}

impl Access {
    /// Identity and access under `policy`, on the system clock.
    pub fn new(policy: AccessPolicy) -> Access {
        Access::with_clock(policy, Arc::new(SystemClock))
    }

    /// Identity and access under `policy`, on `clock` (tests move time to check timeouts).
    pub fn with_clock(policy: AccessPolicy, clock: Arc<dyn Clock>) -> Access {
        Access {
            policy,
            clock,
            decoy: OnceLock::new(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &AccessPolicy {
        &self.policy
    }

    fn now(&self) -> Millis {
        self.clock.now()
    }
}

impl Default for Access {
    fn default() -> Self {
        Access::new(AccessPolicy::default())
    }
}

#[cfg(test)]
mod tests;
