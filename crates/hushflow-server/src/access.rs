//! The seam between the server and the app layer's access control (`hushflow_app::access`):
//! who a request comes from (an API token, a session cookie), signing in and out, and the
//! audit record of a denial. Every call is blocking (the metadata store), so callers run it on
//! the blocking pool.
//!
//! PLACEHOLDER until the `access` branch is merged: everything is refused.

use hushflow_app::{Actor, Session};
use serde::Serialize;

/// What a role may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    ReadPipelines,
    ReadRuns,
    ReadLogs,
    Trigger,
    Pause,
    Clear,
    ReadQuarantine,
    Replay,
    ReadAudit,
    ReadKeys,
    ManageUsers,
    ManageTokens,
}

/// A role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Role {
    Viewer,
    User,
    Op,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::User, Role::Op, Role::Admin];
}

/// Who a request comes from, and what they may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub actor: Actor,
    pub role: Role,
}

impl Principal {
    pub fn may(&self, _permission: Permission, _pipeline: Option<&str>) -> bool {
        false
    }
}

/// Why a credential was not accepted; `message` is for the person, never holds the credential.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub message: String,
}

/// A session just made at sign-in: the cookie's secret and the CSRF token of its forms.
pub struct NewSession {
    pub secret: String,
    pub csrf: String,
}

pub fn by_token(_session: &Session, _token: &str) -> Result<Principal, Refusal> {
    Err(Refusal {
        message: "not yet".into(),
    })
}

pub fn by_session(_session: &Session, _secret: &str) -> Result<(Principal, String), Refusal> {
    Err(Refusal {
        message: "not yet".into(),
    })
}

pub fn sign_in(
    _session: &Session,
    _user: &str,
    _password: &str,
    _address: &str,
) -> Result<(Principal, NewSession), Refusal> {
    Err(Refusal {
        message: "not yet".into(),
    })
}

pub fn sign_out(_session: &Session, _secret: &str) {}

pub fn record_denial(
    _session: &Session,
    _principal: &Principal,
    _permission: Permission,
    _target: &str,
    _address: &str,
) {
}

/// The role's name as the dashboard shows it.
pub fn role_name(principal: &Principal) -> String {
    format!("{:?}", principal.role)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub name: String,
}

pub fn users(_session: &Session) -> Result<Vec<UserView>, crate::error::ApiError> {
    Ok(Vec::new())
}

pub fn tokens(_session: &Session) -> Result<Vec<TokenView>, crate::error::ApiError> {
    Ok(Vec::new())
}
