//! Users: add, list, remove, change role, reset password, grant. Each change is audited with
//! the actor who made it; none records or returns a password.

use super::password::{check_password, hash_password};
use super::{Access, AccessError, Grant, Permission, Role};
use crate::views::{UserView, VIEW_VERSION};
use crate::{Actor, Session};
use hushflow_scheduler::store::{Store, UserGrantRow, UserRow};
use hushflow_spec::schedule::rfc3339;
use std::collections::BTreeMap;

/// The longest user, token or pipeline name accepted.
const MAX_NAME_CHARS: usize = 64;

/// Refuses a user or token name that is empty, too long, or holds other than letters, digits,
/// `.`, `_` and `-` (a name starts with a letter or digit). An e-mail address is refused: the
/// metadata store holds no personal data, so give a short name.
pub fn check_name(what: &str, name: &str) -> Result<(), AccessError> {
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let ok = first_ok
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        return Ok(());
    }
    let hint = if name.contains('@') {
        " (not an e-mail address: the metadata store keeps no personal data)"
    } else {
        ""
    };
    Err(AccessError::Invalid(format!(
        "the {what} name is not valid{hint}: give 1 to {MAX_NAME_CHARS} letters, digits, `.`, `_` \
         or `-`, starting with a letter or digit"
    )))
}

fn check_pipeline(pipeline: &str) -> Result<(), AccessError> {
    if pipeline.is_empty()
        || pipeline.chars().count() > 200
        || pipeline
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(AccessError::Invalid(
            "--pipeline: give a pipeline's name (no spaces or control characters)".into(),
        ));
    }
    Ok(())
}

fn no_such_user() -> AccessError {
    AccessError::NotFound("no user has that name (`hushflow users list` lists them)".into())
}

/// The role a stored user or token names.
pub(crate) fn stored_role(what: &str, role: &str) -> Result<Role, AccessError> {
    role.parse().map_err(|_| {
        AccessError::Failed(format!(
            "{what} has a role this hushflow does not know; set it again with `users set-role` \
             or `tokens create`"
        ))
    })
}

/// A stored grant as the app knows it (`None` for one naming a permission this build does not
/// know: it grants nothing).
pub(crate) fn grant_of(row: &UserGrantRow) -> Option<Grant> {
    let permission = match &row.permission {
        None => None,
        Some(name) => Some(name.parse::<Permission>().ok()?),
    };
    Some(Grant {
        permission,
        pipeline: row.pipeline.clone(),
    })
}

impl Access {
    fn user_view(&self, store: &mut Store, user: &UserRow) -> Result<UserView, AccessError> {
        let now = self.now();
        let grants = store
            .user_grants(&user.name)?
            .iter()
            .filter_map(grant_of)
            .collect();
        let locked_until = user.locked_until.filter(|until| *until > now);
        Ok(UserView {
            version: VIEW_VERSION,
            name: user.name.clone(),
            role: stored_role("the user", &user.role)?,
            disabled: user.disabled,
            locked: locked_until.is_some(),
            locked_until: locked_until.map(rfc3339),
            created_at: rfc3339(user.created_at),
            password_changed_at: rfc3339(user.password_changed_at),
            grants,
        })
    }

    fn existing_user(&self, store: &mut Store, name: &str) -> Result<UserRow, AccessError> {
        store.user(name)?.ok_or_else(no_such_user)
    }

    /// Refuses a change that would leave no enabled Admin (nobody could manage users through
    /// the server any more).
    fn keep_an_admin(&self, store: &mut Store, leaving: &str) -> Result<(), AccessError> {
        let others = store
            .users()?
            .iter()
            .filter(|u| u.name != leaving && !u.disabled && u.role == Role::Admin.as_str())
            .count();
        let is_admin = store
            .user(leaving)?
            .is_some_and(|u| !u.disabled && u.role == Role::Admin.as_str());
        if is_admin && others == 0 {
            return Err(AccessError::Invalid(
                "that is the last enabled Admin; add or promote another Admin first".into(),
            ));
        }
        Ok(())
    }

    fn audit_users(
        &self,
        session: &Session,
        actor: &Actor,
        action: &str,
        detail: String,
    ) -> Result<(), AccessError> {
        Ok(session.audit(actor, action, detail, BTreeMap::new(), "success")?)
    }

    /// Adds user `name` with `role` and `password` (hashed with Argon2id; the password is
    /// checked first: long enough, not the name). Audited as `users.add`.
    pub fn add_user(
        &self,
        session: &Session,
        store: &mut Store,
        actor: &Actor,
        name: &str,
        role: Role,
        password: &str,
    ) -> Result<UserView, AccessError> {
        check_name("user", name)?;
        check_password(password, name, self.policy.min_password_chars)?;
        let now = self.now();
        let started = std::time::Instant::now();
        let password_hash = hash_password(password, self.policy.password)?;
        tracing::debug!(
            user = name,
            memory_kib = self.policy.password.memory_kib,
            iterations = self.policy.password.iterations,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "password hashed with Argon2id"
        );
        let row = UserRow {
            name: name.to_string(),
            password_hash,
            role: role.as_str().to_string(),
            disabled: false,
            created_at: now,
            password_changed_at: now,
            failed_count: 0,
            locked_until: None,
        };
        if !store.add_user(&row)? {
            return Err(AccessError::Exists(format!(
                "a user named {name} exists already; `users reset-password` or `users set-role` \
                 change it"
            )));
        }
        self.audit_users(
            session,
            actor,
            "users.add",
            format!("user {name}, role {role}"),
        )?;
        self.user_view(store, &row)
    }

    /// Every user, by name.
    pub fn list_users(&self, store: &mut Store) -> Result<Vec<UserView>, AccessError> {
        store
            .users()?
            .iter()
            .map(|u| self.user_view(store, u))
            .collect()
    }

    /// The user `name`.
    pub fn user(&self, store: &mut Store, name: &str) -> Result<UserView, AccessError> {
        let row = self.existing_user(store, name)?;
        self.user_view(store, &row)
    }

    /// Removes user `name` with its grants and sessions. Audited as `users.remove`.
    pub fn remove_user(
        &self,
        session: &Session,
        store: &mut Store,
        actor: &Actor,
        name: &str,
    ) -> Result<(), AccessError> {
        self.existing_user(store, name)?;
        self.keep_an_admin(store, name)?;
        if !store.remove_user(name)? {
            return Err(no_such_user());
        }
        self.audit_users(session, actor, "users.remove", format!("user {name}"))
    }

    /// Gives user `name` the role `role` (effective at its next request). Audited as
    /// `users.set-role`.
    pub fn set_role(
        &self,
        session: &Session,
        store: &mut Store,
        actor: &Actor,
        name: &str,
        role: Role,
    ) -> Result<UserView, AccessError> {
        let before = self.existing_user(store, name)?;
        if role != Role::Admin {
            self.keep_an_admin(store, name)?;
        }
        store.set_user_role(name, role.as_str())?;
        self.audit_users(
            session,
            actor,
            "users.set-role",
            format!("user {name}, role {} to {role}", before.role),
        )?;
        self.user(store, name)
    }

    /// Sets a new password for user `name`, lifts its lock-out and ends its sessions. Audited
    /// as `users.reset-password`.
    pub fn reset_password(
        &self,
        session: &Session,
        store: &mut Store,
        actor: &Actor,
        name: &str,
        password: &str,
    ) -> Result<(), AccessError> {
        self.existing_user(store, name)?;
        check_password(password, name, self.policy.min_password_chars)?;
        let hash = hash_password(password, self.policy.password)?;
        tracing::debug!(
            user = name,
            "new password hashed with Argon2id; ending its sessions"
        );
        if !store.set_user_password(name, &hash, self.now())? {
            return Err(no_such_user());
        }
        self.audit_users(
            session,
            actor,
            "users.reset-password",
            format!("user {name}: new password, sessions ended"),
        )
    }

    /// Disables (ending its sessions) or enables user `name`. Audited as `users.disable` or
    /// `users.enable`.
    pub fn set_disabled(
        &self,
        session: &Session,
        store: &mut Store,
        actor: &Actor,
        name: &str,
        disabled: bool,
    ) -> Result<UserView, AccessError> {
        self.existing_user(store, name)?;
        if disabled {
            self.keep_an_admin(store, name)?;
        }
        store.set_user_disabled(name, disabled)?;
        let action = if disabled {
            "users.disable"
        } else {
            "users.enable"
        };
        self.audit_users(session, actor, action, format!("user {name}"))?;
        self.user(store, name)
    }

    /// Grants user `name` an extra permission (everywhere or on one pipeline) or limits its
    /// role to a pipeline. Audited as `users.grant`.
    pub fn grant(
        &self,
        session: &Session,
        store: &mut Store,
        actor: &Actor,
        name: &str,
        grant: &Grant,
    ) -> Result<UserView, AccessError> {
        check_grant(grant)?;
        self.existing_user(store, name)?;
        let permission = grant.permission.map(Permission::as_str);
        store.add_user_grant(name, permission, grant.pipeline.as_deref(), self.now())?;
        self.audit_users(session, actor, "users.grant", describe(name, grant))?;
        self.user(store, name)
    }

    /// Takes back a grant from user `name`. Audited as `users.revoke-grant`.
    pub fn revoke_grant(
        &self,
        session: &Session,
        store: &mut Store,
        actor: &Actor,
        name: &str,
        grant: &Grant,
    ) -> Result<UserView, AccessError> {
        self.existing_user(store, name)?;
        let permission = grant.permission.map(Permission::as_str);
        if !store.remove_user_grant(name, permission, grant.pipeline.as_deref())? {
            return Err(AccessError::NotFound(
                "the user holds no such grant (`hushflow users list` shows its grants)".into(),
            ));
        }
        self.audit_users(session, actor, "users.revoke-grant", describe(name, grant))?;
        self.user(store, name)
    }
}

fn check_grant(grant: &Grant) -> Result<(), AccessError> {
    if let Some(pipeline) = &grant.pipeline {
        check_pipeline(pipeline)?;
    }
    match (grant.permission, &grant.pipeline) {
        (None, None) => Err(AccessError::Invalid(
            "a grant needs --permission, --pipeline or both".into(),
        )),
        (Some(p), Some(_)) if !p.is_per_pipeline() => Err(AccessError::Invalid(format!(
            "`{p}` belongs to no pipeline; grant it without --pipeline"
        ))),
        _ => Ok(()),
    }
}

fn describe(name: &str, grant: &Grant) -> String {
    match (grant.permission, &grant.pipeline) {
        (Some(p), Some(pipeline)) => format!("user {name}, permission {p} on pipeline {pipeline}"),
        (Some(p), None) => format!("user {name}, permission {p} on every pipeline"),
        (None, Some(pipeline)) => format!("user {name}, role limited to pipeline {pipeline}"),
        (None, None) => format!("user {name}"),
    }
}
