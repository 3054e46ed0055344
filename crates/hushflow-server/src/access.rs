//! The seam between the server and the app layer's access control (`hushflow_app::access`):
//! who a request comes from (an API token, a session cookie), signing in and out, the CSRF
//! check and the audit record of a denial. Each call opens the metadata store and blocks, so
//! callers run it on the blocking pool (`AppState::blocking`).

use crate::error::ApiError;
use hushflow_app::Session;
use hushflow_app::access::{Access, AccessError, NewSession};
use hushflow_app::views::{TokenView, UserView};

pub use hushflow_app::access::{Permission, Principal, Role};

/// An access error as an answer: refused credentials 401, a denial 403, the rest by kind.
pub fn refusal(e: AccessError) -> ApiError {
    use axum::http::StatusCode;
    let status = match &e {
        AccessError::SignInRefused | AccessError::TokenRefused | AccessError::SessionEnded => {
            StatusCode::UNAUTHORIZED
        }
        AccessError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AccessError::Denied { .. } => StatusCode::FORBIDDEN,
        AccessError::Invalid(_) => StatusCode::BAD_REQUEST,
        AccessError::NotFound(_) => StatusCode::NOT_FOUND,
        AccessError::Exists(_) => StatusCode::CONFLICT,
        AccessError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, e.to_string())
}

/// The principal holding the API token `token`.
pub fn by_token(access: &Access, session: &Session, token: &str) -> Result<Principal, ApiError> {
    access
        .authenticate_token(&mut session.open_store()?, token)
        .map_err(refusal)
}

/// The principal of the session whose cookie holds `secret`, and its forms' CSRF token.
pub fn by_session(
    access: &Access,
    session: &Session,
    secret: &str,
) -> Result<(Principal, String), ApiError> {
    let principal = access
        .session(&mut session.open_store()?, secret)
        .map_err(refusal)?;
    Ok((principal, hushflow_app::access::csrf_token(secret)))
}

/// Whether `given` is the CSRF token of the session whose secret is `secret` (constant time).
pub fn csrf_ok(secret: &str, given: &str) -> bool {
    hushflow_app::access::check_csrf(secret, given)
}

/// Signs `user` in from `address`: a new session (rate limits, lock-out and the audit of a
/// failure are the access layer's).
pub fn sign_in(
    access: &Access,
    session: &Session,
    user: &str,
    password: &str,
    address: &str,
) -> Result<(Principal, NewSession), ApiError> {
    access
        .sign_in(session, &mut session.open_store()?, user, password, address)
        .map_err(|e| {
            hushflow_metrics::sign_in_failed(match &e {
                AccessError::RateLimited { .. } => "rate-limited",
                AccessError::SignInRefused => "refused",
                _ => "error",
            });
            refusal(e)
        })
}

/// Ends the session whose cookie holds `secret`.
pub fn sign_out(access: &Access, session: &Session, secret: &str) -> Result<(), ApiError> {
    access
        .sign_out(session, &mut session.open_store()?, secret)
        .map_err(refusal)
}

/// Audits that `principal` was refused `permission` (on `pipeline`) from `address`.
pub fn record_denial(
    access: &Access,
    session: &Session,
    principal: &Principal,
    permission: Permission,
    pipeline: Option<&str>,
    address: &str,
) -> Result<(), ApiError> {
    hushflow_metrics::permission_denied(permission.as_str());
    access
        .record_denial(session, principal, permission, pipeline, address)
        .map(|_| ())
        .map_err(refusal)
}

/// The role's name as the dashboard shows it.
pub fn role_name(principal: &Principal) -> &'static str {
    principal.role.title()
}

/// Every user (never a password hash).
pub fn users(access: &Access, session: &Session) -> Result<Vec<UserView>, ApiError> {
    access
        .list_users(&mut session.open_store()?)
        .map_err(refusal)
}

/// Every API token (never its secret).
pub fn tokens(access: &Access, session: &Session) -> Result<Vec<TokenView>, ApiError> {
    access
        .list_tokens(&mut session.open_store()?)
        .map_err(refusal)
}
