//! API tokens: each a public id and the SHA-256 of its secret. The secret itself is shown once
//! at creation and never stored. A revoked token keeps its row (the list shows it) and frees
//! its name for a new token.

use super::*;

/// An API token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRow {
    /// The token's public id (part of the token, shown by `tokens list`).
    pub id: String,
    /// Its name, unique among unrevoked tokens; the audit log names the token by it.
    pub name: String,
    /// The role's name.
    pub role: String,
    /// The SHA-256 (hex) of the token's secret part; never the secret.
    pub secret_hash: String,
    /// When it was created.
    pub created_at: Millis,
    /// Who created it (an audit name).
    pub created_by: String,
    /// When it stops being accepted; `None`: never.
    pub expires_at: Option<Millis>,
    /// When it was last accepted (updated at most once a minute).
    pub last_used_at: Option<Millis>,
    /// When it was revoked.
    pub revoked_at: Option<Millis>,
}

const TOKEN_COLUMNS: &str = "id, name, role, secret_hash, created_at, created_by, expires_at, \
     last_used_at, revoked_at";

fn token_row(r: &Row) -> ApiTokenRow {
    ApiTokenRow {
        id: r.string(0),
        name: r.string(1),
        role: r.string(2),
        secret_hash: r.string(3),
        created_at: r.int0(4),
        created_by: r.string(5),
        expires_at: r.int(6),
        last_used_at: r.int(7),
        revoked_at: r.int(8),
    }
}

impl Store {
    /// Adds a token; `false` (and nothing changed) when an unrevoked token has its name.
    pub fn add_api_token(&mut self, token: &ApiTokenRow) -> Result<bool, StoreError> {
        let n = self.db.exec(
            &format!(
                "INSERT INTO hf_api_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, \
                 $8, $9) ON CONFLICT DO NOTHING"
            ),
            &[
                token.id.as_str().into(),
                token.name.as_str().into(),
                token.role.as_str().into(),
                token.secret_hash.as_str().into(),
                token.created_at.into(),
                token.created_by.as_str().into(),
                token.expires_at.into(),
                token.last_used_at.into(),
                token.revoked_at.into(),
            ],
        )?;
        Ok(n == 1)
    }

    /// The token with public id `id`.
    pub fn api_token(&mut self, id: &str) -> Result<Option<ApiTokenRow>, StoreError> {
        let rows = self.db.query(
            &format!("SELECT {TOKEN_COLUMNS} FROM hf_api_tokens WHERE id = $1"),
            &[id.into()],
        )?;
        Ok(rows.first().map(token_row))
    }

    /// The unrevoked token named `name`.
    pub fn api_token_named(&mut self, name: &str) -> Result<Option<ApiTokenRow>, StoreError> {
        let rows = self.db.query(
            &format!(
                "SELECT {TOKEN_COLUMNS} FROM hf_api_tokens WHERE name = $1 AND revoked_at IS NULL"
            ),
            &[name.into()],
        )?;
        Ok(rows.first().map(token_row))
    }

    /// Every token, revoked ones too, newest first.
    pub fn api_tokens(&mut self) -> Result<Vec<ApiTokenRow>, StoreError> {
        let rows = self.db.query(
            &format!("SELECT {TOKEN_COLUMNS} FROM hf_api_tokens ORDER BY created_at DESC, id"),
            &[],
        )?;
        Ok(rows.iter().map(token_row).collect())
    }

    /// Revokes the token `id`; `false` when there is none or it was revoked already.
    pub fn revoke_api_token(&mut self, id: &str, now: Millis) -> Result<bool, StoreError> {
        Ok(self.db.exec(
            "UPDATE hf_api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[id.into(), now.into()],
        )? == 1)
    }

    /// Records a use of token `id` at `now`, unless one was recorded after `unless_after` (so
    /// that a busy client does not write on every request).
    pub fn touch_api_token(
        &mut self,
        id: &str,
        now: Millis,
        unless_after: Millis,
    ) -> Result<(), StoreError> {
        self.db.exec(
            "UPDATE hf_api_tokens SET last_used_at = $2 WHERE id = $1 \
             AND (last_used_at IS NULL OR last_used_at <= $3)",
            &[id.into(), now.into(), unless_after.into()],
        )?;
        Ok(())
    }
}
