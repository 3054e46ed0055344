//! The settings of identity and access: session timeouts, lock-out and rate limits, the
//! password hashing cost. The defaults follow OWASP's advice; a server may tighten them.

use std::time::Duration;

/// Argon2id's cost: memory in KiB, passes and lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordParams {
    /// Memory, in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl PasswordParams {
    /// OWASP's Argon2id parameters (Password Storage Cheat Sheet): 19 MiB, 2 passes, 1 lane.
    pub const OWASP: PasswordParams = PasswordParams {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };

    /// The cheapest parameters Argon2 accepts, for tests that sign in many times (never for
    /// stored users: a hash made with them is hashed again at its next sign-in with the
    /// policy's parameters, when those are stronger).
    pub const TEST_ONLY: PasswordParams = PasswordParams {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };
}

impl Default for PasswordParams {
    fn default() -> Self {
        PasswordParams::OWASP
    }
}

/// How sessions, sign-in and passwords behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicy {
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, used or not.
    pub absolute_timeout: Duration,
    /// Failed sign-ins in a row after which a user is locked out.
    pub max_failures_per_user: u32,
    /// How long a lock-out lasts.
    pub lockout: Duration,
    /// Failed sign-ins from one address within [`AccessPolicy::address_window`] after which
    /// that address is refused until the oldest of them leaves the window.
    pub max_failures_per_address: u32,
    /// The window failed sign-ins from an address are counted in.
    pub address_window: Duration,
    /// The fewest characters a password may have.
    pub min_password_chars: usize,
    /// Argon2id's cost for new password hashes.
    pub password: PasswordParams,
    /// A token's or session's last use is written at most this often (a busy client must not
    /// write on every request).
    pub touch_interval: Duration,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        AccessPolicy {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 3600),
            max_failures_per_user: 5,
            lockout: Duration::from_secs(15 * 60),
            max_failures_per_address: 20,
            address_window: Duration::from_secs(15 * 60),
            min_password_chars: 12,
            password: PasswordParams::OWASP,
            touch_interval: Duration::from_secs(60),
        }
    }
}

/// A duration in the store's milliseconds.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
