//! Who is asking, once signed in or holding a token: their actor (for the audit log), role,
//! the pipelines their role is limited to, and the extra permissions granted to them.

use super::{Permission, Role};
use crate::Actor;
use serde::{Deserialize, Serialize};

/// A grant to a user: an extra permission (everywhere, or on one pipeline), or a limit of the
/// user's role to a pipeline (the role then applies to the pipelines so named, and no other).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Grant {
    /// The extra permission; `None`: the grant limits the role to `pipeline`.
    pub permission: Option<Permission>,
    /// The pipeline it applies to; `None`: every pipeline (then `permission` is set).
    pub pipeline: Option<String>,
}

impl Grant {
    /// An extra `permission`, everywhere or on `pipeline` alone.
    pub fn permission(permission: Permission, pipeline: Option<String>) -> Grant {
        Grant {
            permission: Some(permission),
            pipeline,
        }
    }

    /// A limit of the role to `pipeline` (with the other limits, if any).
    pub fn limit_to(pipeline: impl Into<String>) -> Grant {
        Grant {
            permission: None,
            pipeline: Some(pipeline.into()),
        }
    }
}

/// A signed-in user or a token holder: what the server checks every request against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Who it is, as the audit log records it (an API user or an API token, by name).
    pub actor: Actor,
    /// Its role.
    pub role: Role,
    /// The pipelines its role is limited to; `None`: every pipeline.
    pub pipelines: Option<Vec<String>>,
    /// Permissions granted besides the role's (each [`Grant::permission`] is set).
    pub extra: Vec<Grant>,
}

impl Principal {
    /// A principal with `role` on every pipeline and no grant.
    pub fn new(actor: Actor, role: Role) -> Principal {
        Principal {
            actor,
            role,
            pipelines: None,
            extra: Vec::new(),
        }
    }

    /// A principal with `role` and the user's grants: limits (grants without a permission)
    /// become [`Principal::pipelines`], the others [`Principal::extra`].
    pub fn with_grants(actor: Actor, role: Role, grants: Vec<Grant>) -> Principal {
        let mut limits: Vec<String> = Vec::new();
        let mut extra = Vec::new();
        for grant in grants {
            match grant {
                Grant {
                    permission: None,
                    pipeline: Some(pipeline),
                } => limits.push(pipeline),
                Grant {
                    permission: None,
                    pipeline: None,
                } => {}
                grant => extra.push(grant),
            }
        }
        limits.sort();
        limits.dedup();
        extra.sort();
        extra.dedup();
        Principal {
            actor,
            role,
            pipelines: (!limits.is_empty()).then_some(limits),
            extra,
        }
    }

    /// Whether the principal may use `permission` on `pipeline`.
    ///
    /// `pipeline` is the pipeline the request is about; `None` for a request about no single
    /// pipeline (a user, the audit log) or for a listing, which the caller then filters item by
    /// item with `Some(name)`: with `None`, a permission held on any pipeline is enough.
    /// Limits to pipelines apply only to [per-pipeline](Permission::is_per_pipeline)
    /// permissions.
    pub fn may(&self, permission: Permission, pipeline: Option<&str>) -> bool {
        let covers = |limit: Option<&str>| match (limit, pipeline) {
            (None, _) | (Some(_), None) => true,
            (Some(limit), Some(name)) => limit == name,
        };
        let by_role = self.role.permits(permission)
            && match (&self.pipelines, pipeline) {
                (Some(limits), Some(name)) if permission.is_per_pipeline() => {
                    limits.iter().any(|l| l == name)
                }
                _ => true,
            };
        by_role
            || self.extra.iter().any(|g| {
                g.permission == Some(permission)
                    && (!permission.is_per_pipeline() || covers(g.pipeline.as_deref()))
            })
    }

    /// Whether the principal may see `pipeline` at all (to filter listings): it may read its
    /// runs.
    pub fn sees(&self, pipeline: &str) -> bool {
        self.may(Permission::ReadRuns, Some(pipeline))
            || self.may(Permission::ReadPipelines, Some(pipeline))
    }
}
