//! Roles, as Airflow users know them, and the one permission matrix: what each role may do.
//! Each role holds every permission of the roles below it (Viewer ⊂ User ⊂ Op ⊂ Admin), so the
//! matrix is the lowest role each permission needs; `docs/access.md` prints the same table, and
//! a test keeps the two equal.

use super::Permission;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A role: what a user or an API token may do, everywhere or on the pipelines it is limited to.
/// Ordered: a higher role may do everything a lower one may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reads pipelines, runs, task states, counts and logs.
    Viewer,
    /// A Viewer who also triggers, pauses, clears and backfills.
    User,
    /// A User who also lists and replays quarantine, manages pools and reads connections'
    /// secret references.
    Op,
    /// An Op who also manages users, roles and tokens, reads keys (never their material) and
    /// the audit log.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::User, Role::Op, Role::Admin];

    /// The role as stored and written: `viewer`, `user`, `op` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::User => "user",
            Role::Op => "op",
            Role::Admin => "admin",
        }
    }

    /// The role's name for people: `Viewer`, `User`, `Op`, `Admin`.
    pub fn title(self) -> &'static str {
        match self {
            Role::Viewer => "Viewer",
            Role::User => "User",
            Role::Op => "Op",
            Role::Admin => "Admin",
        }
    }

    /// The lowest role that holds `permission`; `None` for the permissions no role holds
    /// (detokenize and the exports: only a grant gives them).
    ///
    /// This is the permission matrix: the one place that says which role may do what.
    pub fn lowest_with(permission: Permission) -> Option<Role> {
        use Permission::*;
        match permission {
            ReadPipelines | ReadRuns | ReadLogs => Some(Role::Viewer),
            Trigger | Pause | Clear | Backfill => Some(Role::User),
            ReadQuarantine | Replay | ManagePools | ReadConnections => Some(Role::Op),
            ManageUsers | ManageTokens | ReadKeys | ReadAudit => Some(Role::Admin),
            Detokenize | ExportKeys | ExportQuarantine => None,
        }
    }

    /// Whether this role holds `permission` (before any grant or pipeline limit).
    pub fn permits(self, permission: Permission) -> bool {
        Role::lowest_with(permission).is_some_and(|lowest| self >= lowest)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role; give one of viewer, user, op, admin")]
pub struct UnknownRole;

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(text: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or(UnknownRole)
    }
}
