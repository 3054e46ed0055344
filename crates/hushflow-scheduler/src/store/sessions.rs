//! Sign-in sessions and sign-in attempts. A session is stored under the SHA-256 of its secret
//! (the cookie's value), so a copy of the store signs no one in. Attempts are kept by a digest
//! of the address, for rate limiting, and pruned once they no longer count.

use super::*;

/// A sign-in session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The SHA-256 (hex) of the session's secret; never the secret.
    pub id: String,
    /// The signed-in user.
    pub user: String,
    /// When the user signed in (the absolute timeout counts from here).
    pub created_at: Millis,
    /// When the session was last used (the idle timeout counts from here; updated at most
    /// once a minute).
    pub last_seen_at: Millis,
    /// When the session ends whatever happens (the absolute timeout).
    pub expires_at: Millis,
}

const SESSION_COLUMNS: &str = "id, user_name, created_at, last_seen_at, expires_at";

impl Store {
    /// Records a new session.
    pub fn create_session(&mut self, session: &SessionRow) -> Result<(), StoreError> {
        self.db.exec(
            &format!("INSERT INTO hf_sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"),
            &[
                session.id.as_str().into(),
                session.user.as_str().into(),
                session.created_at.into(),
                session.last_seen_at.into(),
                session.expires_at.into(),
            ],
        )?;
        Ok(())
    }

    /// The session stored under `id`.
    pub fn session(&mut self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        let rows = self.db.query(
            &format!("SELECT {SESSION_COLUMNS} FROM hf_sessions WHERE id = $1"),
            &[id.into()],
        )?;
        Ok(rows.first().map(|r| SessionRow {
            id: r.string(0),
            user: r.string(1),
            created_at: r.int0(2),
            last_seen_at: r.int0(3),
            expires_at: r.int0(4),
        }))
    }

    /// Records a use of session `id` at `now`, unless one was recorded after `unless_after`.
    pub fn touch_session(
        &mut self,
        id: &str,
        now: Millis,
        unless_after: Millis,
    ) -> Result<(), StoreError> {
        self.db.exec(
            "UPDATE hf_sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at <= $3",
            &[id.into(), now.into(), unless_after.into()],
        )?;
        Ok(())
    }

    /// Ends session `id`; `false` when there was none.
    pub fn end_session(&mut self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .db
            .exec("DELETE FROM hf_sessions WHERE id = $1", &[id.into()])?
            == 1)
    }

    /// Ends every session of user `name`; how many there were.
    pub fn end_user_sessions(&mut self, name: &str) -> Result<u64, StoreError> {
        self.db.exec(
            "DELETE FROM hf_sessions WHERE user_name = $1",
            &[name.into()],
        )
    }

    /// Deletes sessions past their absolute timeout or idle since `idle_before`; how many.
    pub fn prune_sessions(&mut self, now: Millis, idle_before: Millis) -> Result<u64, StoreError> {
        self.db.exec(
            "DELETE FROM hf_sessions WHERE expires_at <= $1 OR last_seen_at < $2",
            &[now.into(), idle_before.into()],
        )
    }

    /// Records a sign-in attempt from the address with `address_digest`, by `user` when the
    /// name is a user's (an unknown name is not kept: it may be a password typed in the wrong
    /// field).
    pub fn record_sign_in_attempt(
        &mut self,
        user: Option<&str>,
        address_digest: &str,
        at: Millis,
        succeeded: bool,
    ) -> Result<(), StoreError> {
        self.db.exec(
            "INSERT INTO hf_sign_in_attempts (user_name, address_digest, at, succeeded) \
             VALUES ($1, $2, $3, $4)",
            &[
                user.into(),
                address_digest.into(),
                at.into(),
                i64::from(succeeded).into(),
            ],
        )?;
        Ok(())
    }

    /// Failed sign-ins from the address with `address_digest` since `since`: how many, and
    /// when the oldest of them was.
    pub fn failed_sign_ins_from(
        &mut self,
        address_digest: &str,
        since: Millis,
    ) -> Result<(i64, Option<Millis>), StoreError> {
        let rows = self.db.query(
            "SELECT COUNT(*), MIN(at) FROM hf_sign_in_attempts WHERE address_digest = $1 \
             AND at >= $2 AND succeeded = 0",
            &[address_digest.into(), since.into()],
        )?;
        Ok(rows.first().map_or((0, None), |r| (r.int0(0), r.int(1))))
    }

    /// Deletes sign-in attempts older than `before`; how many.
    pub fn prune_sign_in_attempts(&mut self, before: Millis) -> Result<u64, StoreError> {
        self.db.exec(
            "DELETE FROM hf_sign_in_attempts WHERE at < $1",
            &[before.into()],
        )
    }
}
