//! Signing in with a password, and the sessions that follow: lock-out per user and rate
//! limiting per address, idle and absolute timeouts, sign-out and rotation. Every failed
//! sign-in is audited with its address and the reason; the caller learns only that it failed.

use super::password::{MAX_PASSWORD_BYTES, hash_password, needs_rehash, verify_password};
use super::policy::millis;
use super::secret::{address_digest, csrf_token, digest, is_secret_shaped, new_secret};
use super::users::{grant_of, stored_role};
use super::{Access, AccessError, Principal};
use crate::{Actor, Session};
use hushflow_scheduler::store::{SessionRow, Store, UserRow};
use hushflow_spec::schedule::{Millis, rfc3339};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// A session just opened: its secret for the cookie, and the CSRF token for its forms.
pub struct NewSession {
    /// The session's secret: the cookie's value (`HttpOnly`, `Secure`, `SameSite=Strict`).
    pub secret: Zeroizing<String>,
    /// The CSRF token every form of the session carries ([`super::check_csrf`] checks it).
    pub csrf: String,
    /// When the session ends whatever happens (the absolute timeout), ms since the epoch.
    pub expires_at: Millis,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("secret", &"(hidden)")
            .field("csrf", &"(hidden)")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Who an unknown user name is audited as: no user name starts with `-`, and the name typed
/// is not recorded (it may be a password typed in the wrong field).
const UNKNOWN_USER: &str = "-";

impl Access {
    /// The principal of user `name`: its role and grants as stored now (`None` when there is
    /// no such user or it is disabled). For sign-in by another route (OpenID Connect).
    pub fn principal_of_user(
        &self,
        store: &mut Store,
        name: &str,
    ) -> Result<Option<Principal>, AccessError> {
        match store.user(name)? {
            Some(user) if !user.disabled => Ok(Some(self.principal_of(store, &user)?)),
            _ => Ok(None),
        }
    }

    fn principal_of(&self, store: &mut Store, user: &UserRow) -> Result<Principal, AccessError> {
        let role = stored_role("the user", &user.role)?;
        let grants = store
            .user_grants(&user.name)?
            .iter()
            .filter_map(grant_of)
            .collect();
        Ok(Principal::with_grants(
            Actor::api_user(&user.name),
            role,
            grants,
        ))
    }

    /// A hash to verify against when the user is unknown, so that an unknown name takes as
    /// long as a wrong password.
    fn decoy_hash(&self) -> &str {
        self.decoy
            .get_or_init(|| {
                let password = new_secret().map_or_else(|_| "decoy".to_string(), |s| s.to_string());
                hash_password(&password, self.policy.password).unwrap_or_default()
            })
            .as_str()
    }

    fn audit_sign_in(
        &self,
        session: &Session,
        actor: &Actor,
        outcome: &str,
        detail: String,
    ) -> Result<(), AccessError> {
        Ok(session.audit(actor, "sign-in", detail, BTreeMap::new(), outcome)?)
    }

    /// Signs user `name` in with `password`, from `address` (the client's IP address): a new
    /// session (never one the client had before: sessions are rotated at sign-in).
    ///
    /// Refused, with one message whatever the reason ([`AccessError::SignInRefused`]), for an
    /// unknown user, a wrong password, a disabled user and a locked-out one; with
    /// [`AccessError::RateLimited`] when the address has failed too often lately. Every
    /// failure is audited (`sign-in`, outcome `refused`) with the address and the reason.
    pub fn sign_in(
        &self,
        session: &Session,
        store: &mut Store,
        name: &str,
        password: &str,
        address: &str,
    ) -> Result<(Principal, NewSession), AccessError> {
        let now = self.now();
        let policy = &self.policy;
        let window = millis(policy.address_window);
        let from = address_digest(address);
        store.prune_sign_in_attempts(now - window.max(millis(policy.lockout)))?;
        let (failures, oldest) = store.failed_sign_ins_from(&from, now - window)?;
        if failures >= i64::from(policy.max_failures_per_address) {
            let retry_after_ms = oldest.map_or(window, |at| at + window - now).max(1_000);
            let known = store.user(name)?.map(|u| u.name);
            self.audit_sign_in(
                session,
                &Actor::api_user(known.as_deref().unwrap_or(UNKNOWN_USER)),
                "refused",
                format!("from {address}: rate limited ({failures} failed sign-ins lately)"),
            )?;
            return Err(AccessError::RateLimited {
                retry_after_secs: u64::try_from((retry_after_ms + 999) / 1_000).unwrap_or(1),
            });
        }

        let user = store.user(name)?;
        // Verify even when the answer is known, so that each refusal takes the same time.
        let password_ok = password.len() <= MAX_PASSWORD_BYTES
            && verify_password(
                password,
                user.as_ref()
                    .map_or_else(|| self.decoy_hash(), |u| u.password_hash.as_str()),
            );
        let refusal = match &user {
            None => Some("unknown user name".to_string()),
            Some(u) if u.disabled => Some("the user is disabled".to_string()),
            Some(u) if u.locked_until.is_some_and(|until| until > now) => Some(format!(
                "the user is locked out until {}",
                rfc3339(u.locked_until.unwrap_or(now))
            )),
            Some(_) if !password_ok => Some("wrong password".to_string()),
            Some(_) => None,
        };
        let known = user.as_ref().map(|u| u.name.as_str());
        let actor = Actor::api_user(known.unwrap_or(UNKNOWN_USER));
        if let Some(reason) = refusal {
            tracing::debug!(
                user = known.unwrap_or(UNKNOWN_USER),
                reason,
                "sign-in refused"
            );
            store.record_sign_in_attempt(known, &from, now, false)?;
            let mut reason = reason;
            if let Some(user) = &user
                && !password_ok
                && !user.disabled
                && user.locked_until.is_none_or(|until| until <= now)
                && let Some((_, Some(until))) = store.record_user_failure(
                    &user.name,
                    i64::from(policy.max_failures_per_user),
                    now + millis(policy.lockout),
                )?
                && until > now
            {
                reason.push_str(&format!("; locked out until {}", rfc3339(until)));
            }
            self.audit_sign_in(
                session,
                &actor,
                "refused",
                format!("from {address}: {reason}"),
            )?;
            return Err(AccessError::SignInRefused);
        }
        let Some(user) = user else {
            return Err(AccessError::SignInRefused);
        };
        store.record_sign_in_attempt(Some(&user.name), &from, now, true)?;
        store.record_user_success(&user.name)?;
        if needs_rehash(&user.password_hash, policy.password) {
            let hash = hash_password(password, policy.password)?;
            store.rehash_user_password(&user.name, &hash)?;
        }
        store.prune_sessions(now, now - millis(policy.idle_timeout))?;
        let principal = self.principal_of(store, &user)?;
        let new = self.open_session(
            store,
            &user.name,
            now,
            now + millis(policy.absolute_timeout),
        )?;
        self.audit_sign_in(session, &actor, "success", format!("from {address}"))?;
        Ok((principal, new))
    }

    fn open_session(
        &self,
        store: &mut Store,
        user: &str,
        created_at: Millis,
        expires_at: Millis,
    ) -> Result<NewSession, AccessError> {
        let secret = new_secret()?;
        store.create_session(&SessionRow {
            id: digest(&secret),
            user: user.to_string(),
            created_at,
            last_seen_at: self.now(),
            expires_at,
        })?;
        Ok(NewSession {
            csrf: csrf_token(&secret),
            secret,
            expires_at,
        })
    }

    /// The live session whose secret is `secret`, ended (and refused) when it is past its
    /// idle or absolute timeout.
    fn live_session(&self, store: &mut Store, secret: &str) -> Result<SessionRow, AccessError> {
        if !is_secret_shaped(secret) {
            return Err(AccessError::SessionEnded);
        }
        let id = digest(secret);
        let row = store.session(&id)?.ok_or(AccessError::SessionEnded)?;
        let now = self.now();
        if now >= row.expires_at || now - row.last_seen_at > millis(self.policy.idle_timeout) {
            store.end_session(&id)?;
            return Err(AccessError::SessionEnded);
        }
        Ok(row)
    }

    /// The principal of the session whose secret is `secret` (the cookie): its user's role and
    /// grants as stored now. Refused once the session is signed out, idle longer than the idle
    /// timeout, older than the absolute timeout, or its user removed or disabled.
    pub fn session(&self, store: &mut Store, secret: &str) -> Result<Principal, AccessError> {
        let row = self.live_session(store, secret)?;
        let user = match store.user(&row.user)? {
            Some(user) if !user.disabled => user,
            _ => {
                store.end_session(&row.id)?;
                return Err(AccessError::SessionEnded);
            }
        };
        let now = self.now();
        store.touch_session(&row.id, now, now - millis(self.policy.touch_interval))?;
        self.principal_of(store, &user)
    }

    /// Ends the session whose secret is `secret` (nothing to do when it has ended already).
    /// Audited as `sign-out` when it was live.
    pub fn sign_out(
        &self,
        session: &Session,
        store: &mut Store,
        secret: &str,
    ) -> Result<(), AccessError> {
        if !is_secret_shaped(secret) {
            return Ok(());
        }
        let id = digest(secret);
        if let Some(row) = store.session(&id)?
            && store.end_session(&id)?
        {
            session.audit(
                &Actor::api_user(&row.user),
                "sign-out",
                "session ended".into(),
                BTreeMap::new(),
                "success",
            )?;
        }
        Ok(())
    }

    /// Replaces the session whose secret is `secret` by a new one of the same user and the
    /// same absolute timeout (after a change of privilege, so that an old cookie is worth
    /// nothing).
    pub fn rotate(&self, store: &mut Store, secret: &str) -> Result<NewSession, AccessError> {
        let row = self.live_session(store, secret)?;
        let new = self.open_session(store, &row.user, row.created_at, row.expires_at)?;
        store.end_session(&row.id)?;
        Ok(new)
    }
}
