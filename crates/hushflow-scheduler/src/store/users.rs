//! Users of `hushflow serve` and their grants. A password is kept as an Argon2id PHC string
//! only; the app layer hashes and verifies (`hushflow_app::access`). Lock-out after failed
//! sign-ins is one conditional statement, so concurrent attempts on several servers count
//! each failure once.

use super::*;

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// The user name (unique).
    pub name: String,
    /// The password as an Argon2id PHC string (`$argon2id$v=19$m=…`); never the password.
    pub password_hash: String,
    /// The role's name (`viewer`, `user`, `op`, `admin`).
    pub role: String,
    /// A disabled user cannot sign in.
    pub disabled: bool,
    /// When the user was added.
    pub created_at: Millis,
    /// When the password was last set.
    pub password_changed_at: Millis,
    /// Failed sign-ins since the last success or lock-out.
    pub failed_count: i64,
    /// Until when sign-in is refused after too many failures.
    pub locked_until: Option<Millis>,
}

/// A grant to a user as stored: an extra permission and/or a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserGrantRow {
    /// The permission's name; `None` for a limit of the role to `pipeline`.
    pub permission: Option<String>,
    /// The pipeline; `None` for every pipeline.
    pub pipeline: Option<String>,
    /// When it was granted.
    pub created_at: Millis,
}

const USER_COLUMNS: &str = "name, password_hash, role, disabled, created_at, \
     password_changed_at, failed_count, locked_until";

fn user_row(r: &Row) -> UserRow {
    UserRow {
        name: r.string(0),
        password_hash: r.string(1),
        role: r.string(2),
        disabled: r.int0(3) != 0,
        created_at: r.int0(4),
        password_changed_at: r.int0(5),
        failed_count: r.int0(6),
        locked_until: r.int(7),
    }
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

impl Store {
    /// Adds a user; `false` (and nothing changed) when the name is taken.
    pub fn add_user(&mut self, user: &UserRow) -> Result<bool, StoreError> {
        let n = self.db.exec(
            &format!(
                "INSERT INTO hf_users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (name) DO NOTHING"
            ),
            &[
                user.name.as_str().into(),
                user.password_hash.as_str().into(),
                user.role.as_str().into(),
                i64::from(user.disabled).into(),
                user.created_at.into(),
                user.password_changed_at.into(),
                user.failed_count.into(),
                user.locked_until.into(),
            ],
        )?;
        Ok(n == 1)
    }

    /// The user `name`.
    pub fn user(&mut self, name: &str) -> Result<Option<UserRow>, StoreError> {
        let rows = self.db.query(
            &format!("SELECT {USER_COLUMNS} FROM hf_users WHERE name = $1"),
            &[name.into()],
        )?;
        Ok(rows.first().map(user_row))
    }

    /// Every user, by name.
    pub fn users(&mut self) -> Result<Vec<UserRow>, StoreError> {
        let rows = self.db.query(
            &format!("SELECT {USER_COLUMNS} FROM hf_users ORDER BY name"),
            &[],
        )?;
        Ok(rows.iter().map(user_row).collect())
    }

    /// Removes the user `name` with its grants and sessions; `false` when there was none.
    pub fn remove_user(&mut self, name: &str) -> Result<bool, StoreError> {
        self.db.transaction(|db| {
            db.exec(
                "DELETE FROM hf_user_grants WHERE user_name = $1",
                &[name.into()],
            )?;
            db.exec(
                "DELETE FROM hf_sessions WHERE user_name = $1",
                &[name.into()],
            )?;
            Ok(db.exec("DELETE FROM hf_users WHERE name = $1", &[name.into()])? == 1)
        })
    }

    /// Sets the role of user `name`; `false` when there is no such user.
    pub fn set_user_role(&mut self, name: &str, role: &str) -> Result<bool, StoreError> {
        Ok(self.db.exec(
            "UPDATE hf_users SET role = $2 WHERE name = $1",
            &[name.into(), role.into()],
        )? == 1)
    }

    /// Sets the password hash of user `name`, lifts a lock-out and ends the user's sessions
    /// (a reset password must sign out whoever held the old one); `false` when there is no
    /// such user.
    pub fn set_user_password(
        &mut self,
        name: &str,
        password_hash: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.db.transaction(|db| {
            db.exec(
                "DELETE FROM hf_sessions WHERE user_name = $1",
                &[name.into()],
            )?;
            Ok(db.exec(
                "UPDATE hf_users SET password_hash = $2, password_changed_at = $3, \
                 failed_count = 0, locked_until = NULL WHERE name = $1",
                &[name.into(), password_hash.into(), now.into()],
            )? == 1)
        })
    }

    /// Replaces the hash of user `name`'s unchanged password (made again with stronger
    /// parameters at sign-in); sessions stay.
    pub fn rehash_user_password(
        &mut self,
        name: &str,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        self.db.exec(
            "UPDATE hf_users SET password_hash = $2 WHERE name = $1",
            &[name.into(), password_hash.into()],
        )?;
        Ok(())
    }

    /// Disables or enables user `name` (disabling ends its sessions); `false` when there is no
    /// such user.
    pub fn set_user_disabled(&mut self, name: &str, disabled: bool) -> Result<bool, StoreError> {
        self.db.transaction(|db| {
            if disabled {
                db.exec(
                    "DELETE FROM hf_sessions WHERE user_name = $1",
                    &[name.into()],
                )?;
            }
            Ok(db.exec(
                "UPDATE hf_users SET disabled = $2 WHERE name = $1",
                &[name.into(), i64::from(disabled).into()],
            )? == 1)
        })
    }

    /// Counts a failed sign-in of user `name`: at the `max_failures`-th failure in a row the
    /// user is locked until `locked_until` and the count starts again. Returns the user's count
    /// and lock after it (`None` when there is no such user).
    pub fn record_user_failure(
        &mut self,
        name: &str,
        max_failures: i64,
        locked_until: Millis,
    ) -> Result<Option<(i64, Option<Millis>)>, StoreError> {
        let n = self.db.exec(
            "UPDATE hf_users SET \
             locked_until = CASE WHEN failed_count + 1 >= $2 THEN $3 ELSE locked_until END, \
             failed_count = CASE WHEN failed_count + 1 >= $2 THEN 0 ELSE failed_count + 1 END \
             WHERE name = $1",
            &[name.into(), max_failures.into(), locked_until.into()],
        )?;
        if n == 0 {
            return Ok(None);
        }
        Ok(self.user(name)?.map(|u| (u.failed_count, u.locked_until)))
    }

    /// A successful sign-in of user `name`: its failure count starts again.
    pub fn record_user_success(&mut self, name: &str) -> Result<(), StoreError> {
        self.db.exec(
            "UPDATE hf_users SET failed_count = 0, locked_until = NULL WHERE name = $1",
            &[name.into()],
        )?;
        Ok(())
    }

    /// The grants of user `name`, in order.
    pub fn user_grants(&mut self, name: &str) -> Result<Vec<UserGrantRow>, StoreError> {
        let rows = self.db.query(
            "SELECT permission, pipeline, created_at FROM hf_user_grants WHERE user_name = $1 \
             ORDER BY permission, pipeline",
            &[name.into()],
        )?;
        Ok(rows
            .iter()
            .map(|r| UserGrantRow {
                permission: non_empty(r.string(0)),
                pipeline: non_empty(r.string(1)),
                created_at: r.int0(2),
            })
            .collect())
    }

    /// Grants `permission` (or, when `None`, a limit) on `pipeline` (or every pipeline) to user
    /// `name`; `false` when it already held it.
    pub fn add_user_grant(
        &mut self,
        name: &str,
        permission: Option<&str>,
        pipeline: Option<&str>,
        now: Millis,
    ) -> Result<bool, StoreError> {
        Ok(self.db.exec(
            "INSERT INTO hf_user_grants (user_name, permission, pipeline, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_name, permission, pipeline) DO NOTHING",
            &[
                name.into(),
                permission.unwrap_or("").into(),
                pipeline.unwrap_or("").into(),
                now.into(),
            ],
        )? == 1)
    }

    /// Takes back a grant; `false` when the user did not hold it.
    pub fn remove_user_grant(
        &mut self,
        name: &str,
        permission: Option<&str>,
        pipeline: Option<&str>,
    ) -> Result<bool, StoreError> {
        Ok(self.db.exec(
            "DELETE FROM hf_user_grants WHERE user_name = $1 AND permission = $2 AND pipeline = $3",
            &[
                name.into(),
                permission.unwrap_or("").into(),
                pipeline.unwrap_or("").into(),
            ],
        )? == 1)
    }
}
