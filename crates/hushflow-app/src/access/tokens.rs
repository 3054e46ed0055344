//! API tokens: create (the token is shown once), list, revoke, and the check of every request
//! that carries one. The store keeps a token's public id and the SHA-256 of its secret.

use super::policy::millis;
use super::secret::{digest, format_token, new_secret, new_token_id, parse_token, same_digest};
use super::users::{check_name, stored_role};
use super::{Access, AccessError, Principal, Role};
use crate::views::{TokenView, VIEW_VERSION};
use crate::{Actor, Session};
use hushflow_scheduler::store::{ApiTokenRow, Store};
use hushflow_spec::schedule::{Millis, rfc3339};
use std::collections::BTreeMap;
use std::time::Duration;
use zeroize::Zeroizing;

/// A token just created: the token itself, to be shown once and never again, and its view.
pub struct NewToken {
    /// The token (`hf_<id>_<secret>`), for the `Authorization: Bearer` header.
    pub token: Zeroizing<String>,
    /// What is stored of it (never the secret).
    pub view: TokenView,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("token", &"(hidden)")
            .field("view", &self.view)
            .finish()
    }
}

fn token_view(row: &ApiTokenRow, now: Millis) -> Result<TokenView, AccessError> {
    let state = if row.revoked_at.is_some() {
        "revoked"
    } else if row.expires_at.is_some_and(|at| at <= now) {
        "expired"
    } else {
        "active"
    };
    Ok(TokenView {
        version: VIEW_VERSION,
        id: row.id.clone(),
        name: row.name.clone(),
        role: stored_role("the token", &row.role)?,
        state: state.into(),
        created_at: rfc3339(row.created_at),
        created_by: row.created_by.clone(),
        expires_at: row.expires_at.map(rfc3339),
        last_used_at: row.last_used_at.map(rfc3339),
        revoked_at: row.revoked_at.map(rfc3339),
    })
}

impl Access {
    /// Creates an API token named `name` with `role`, valid for `expires` (`None`: until
    /// revoked). The token is in the answer and nowhere else. Audited as `tokens.create`.
    pub fn create_token(
        &self,
        session: &Session,
        store: &mut Store,
        actor: &Actor,
        name: &str,
        role: Role,
        expires: Option<Duration>,
    ) -> Result<NewToken, AccessError> {
        check_name("token", name)?;
        if expires.is_some_and(|d| d.is_zero()) {
            return Err(AccessError::Invalid(
                "--expires: give a duration such as 30d or 12h (or `never`)".into(),
            ));
        }
        let now = self.now();
        let secret = new_secret()?;
        let row = ApiTokenRow {
            id: new_token_id()?,
            name: name.to_string(),
            role: role.as_str().to_string(),
            secret_hash: digest(&secret),
            created_at: now,
            created_by: actor.audit_name(),
            expires_at: expires.map(|d| now.saturating_add(millis(d))),
            last_used_at: None,
            revoked_at: None,
        };
        tracing::debug!(
            id = row.id.as_str(),
            name,
            "new API token: 32 random bytes, SHA-256 stored"
        );
        if !store.add_api_token(&row)? {
            return Err(AccessError::Exists(format!(
                "a token named {name} exists already; revoke it first or choose another name"
            )));
        }
        let expiry = row.expires_at.map_or_else(
            || "never expires".to_string(),
            |at| format!("expires {}", rfc3339(at)),
        );
        session.audit(
            actor,
            "tokens.create",
            format!("token {name} ({}), role {role}, {expiry}", row.id),
            BTreeMap::new(),
            "success",
        )?;
        Ok(NewToken {
            token: format_token(&row.id, &secret),
            view: token_view(&row, now)?,
        })
    }

    /// Every token, revoked and expired ones too, newest first.
    pub fn list_tokens(&self, store: &mut Store) -> Result<Vec<TokenView>, AccessError> {
        let now = self.now();
        store
            .api_tokens()?
            .iter()
            .map(|row| token_view(row, now))
            .collect()
    }

    /// Revokes the token with id or name `token` (an unrevoked one, by name). Audited as
    /// `tokens.revoke`.
    pub fn revoke_token(
        &self,
        session: &Session,
        store: &mut Store,
        actor: &Actor,
        token: &str,
    ) -> Result<TokenView, AccessError> {
        let row = match store.api_token(token)? {
            Some(row) => Some(row),
            None => store.api_token_named(token)?,
        };
        let Some(row) = row else {
            return Err(AccessError::NotFound(
                "no unrevoked token has that id or name (`hushflow tokens list` lists them)".into(),
            ));
        };
        let now = self.now();
        if !store.revoke_api_token(&row.id, now)? {
            return Err(AccessError::Invalid(format!(
                "token {} ({}) was revoked already",
                row.name, row.id
            )));
        }
        session.audit(
            actor,
            "tokens.revoke",
            format!("token {} ({})", row.name, row.id),
            BTreeMap::new(),
            "success",
        )?;
        let row = store.api_token(&row.id)?.unwrap_or(row);
        token_view(&row, now)
    }

    /// The principal holding `token` (from an `Authorization: Bearer` header): refused when
    /// it is malformed, unknown, revoked or expired, with one message for all. Its secret is
    /// compared by digest in constant time; its last use is recorded (at most once per
    /// [`touch_interval`](super::AccessPolicy::touch_interval)).
    pub fn authenticate_token(
        &self,
        store: &mut Store,
        token: &str,
    ) -> Result<Principal, AccessError> {
        let Some((id, secret)) = parse_token(token) else {
            tracing::debug!("API token refused: not of a token's shape");
            return Err(AccessError::TokenRefused);
        };
        let given = digest(secret);
        let row = store.api_token(id)?.ok_or(AccessError::TokenRefused)?;
        if !same_digest(&given, &row.secret_hash) {
            return Err(AccessError::TokenRefused);
        }
        let now = self.now();
        if row.revoked_at.is_some() || row.expires_at.is_some_and(|at| at <= now) {
            return Err(AccessError::TokenRefused);
        }
        let role = stored_role("the token", &row.role)?;
        store.touch_api_token(&row.id, now, now - millis(self.policy.touch_interval))?;
        Ok(Principal::new(Actor::api_token(&row.name), role))
    }
}
