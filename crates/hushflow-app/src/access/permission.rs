//! Permissions: each thing a role or a grant may allow. Which role holds which is the matrix in
//! [`Role::lowest_with`](super::Role::lowest_with).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Something a principal may be allowed to do, on every pipeline or on some.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// See pipelines: schedules, paused or not, next runs.
    ReadPipelines,
    /// See runs and their tasks: states, tries, durations, counts.
    ReadRuns,
    /// Read a task try's redacted log.
    ReadLogs,
    /// Start a run.
    Trigger,
    /// Pause or unpause a pipeline.
    Pause,
    /// Clear a run's tasks so they run again.
    Clear,
    /// Create runs for past intervals.
    Backfill,
    /// See quarantine counts and quarantined records' reasons.
    ReadQuarantine,
    /// Replay quarantined records.
    Replay,
    /// Change pools' slots.
    ManagePools,
    /// See connections' secret references (never the secrets).
    ReadConnections,
    /// Add, remove and change users, their roles and grants.
    ManageUsers,
    /// Create, list and revoke API tokens.
    ManageTokens,
    /// See keys' names, purposes and versions (never their material).
    ReadKeys,
    /// Read and verify the audit log.
    ReadAudit,
    /// Turn tokens back into the values they stand for. No role has it: only a grant.
    Detokenize,
    /// Export key material. No role has it: only a grant.
    ExportKeys,
    /// Export quarantined records in the clear. No role has it: only a grant.
    ExportQuarantine,
}

impl Permission {
    /// Every permission, in the order of the matrix.
    pub const ALL: [Permission; 18] = [
        Permission::ReadPipelines,
        Permission::ReadRuns,
        Permission::ReadLogs,
        Permission::Trigger,
        Permission::Pause,
        Permission::Clear,
        Permission::Backfill,
        Permission::ReadQuarantine,
        Permission::Replay,
        Permission::ManagePools,
        Permission::ReadConnections,
        Permission::ManageUsers,
        Permission::ManageTokens,
        Permission::ReadKeys,
        Permission::ReadAudit,
        Permission::Detokenize,
        Permission::ExportKeys,
        Permission::ExportQuarantine,
    ];

    /// The permission as stored and written (`read-pipelines`, `export-keys`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadPipelines => "read-pipelines",
            Permission::ReadRuns => "read-runs",
            Permission::ReadLogs => "read-logs",
            Permission::Trigger => "trigger",
            Permission::Pause => "pause",
            Permission::Clear => "clear",
            Permission::Backfill => "backfill",
            Permission::ReadQuarantine => "read-quarantine",
            Permission::Replay => "replay",
            Permission::ManagePools => "manage-pools",
            Permission::ReadConnections => "read-connections",
            Permission::ManageUsers => "manage-users",
            Permission::ManageTokens => "manage-tokens",
            Permission::ReadKeys => "read-keys",
            Permission::ReadAudit => "read-audit",
            Permission::Detokenize => "detokenize",
            Permission::ExportKeys => "export-keys",
            Permission::ExportQuarantine => "export-quarantine",
        }
    }

    /// Whether the permission is about one pipeline's things (runs, logs, quarantine), so that
    /// a limit to some pipelines applies to it. Users, tokens, keys, pools and the audit log
    /// belong to no pipeline.
    pub fn is_per_pipeline(self) -> bool {
        !matches!(
            self,
            Permission::ManagePools
                | Permission::ManageUsers
                | Permission::ManageTokens
                | Permission::ReadKeys
                | Permission::ReadAudit
                | Permission::ExportKeys
        )
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A permission name that is not one of those listed in `docs/access.md`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown permission; give one of the names in docs/access.md (read-runs, trigger, detokenize, …)"
)]
pub struct UnknownPermission;

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(text: &str) -> Result<Permission, UnknownPermission> {
        let text = text.trim();
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(text) || p.as_str().replace('-', "_") == text)
            .ok_or(UnknownPermission)
    }
}
