//! Versioned schema migrations, written once for both dialects. A migration is never edited once
//! released: a change is a new version. `hushflow db migrate` applies what is missing; the
//! embedded SQLite store migrates itself when opened.

use super::StoreError;
use super::db::{Db, Dialect};

/// One schema change: its number (applied in order, recorded in the store) and what it adds.
pub struct Migration {
    /// The schema version this migration brings the store to.
    pub version: i64,
    /// What it adds, for `db migrate`'s report.
    pub name: &'static str,
    /// Written for SQLite; PostgreSQL's text is derived by [`for_postgres`].
    sql: &'static str,
}

/// The PostgreSQL form of a migration written for SQLite: 64-bit integers, and identity
/// columns for SQLite's autoincrement keys. One text per migration keeps the two schemas from
/// drifting apart.
fn for_postgres(sqlite: &str) -> String {
    sqlite
        .replace(
            "INTEGER PRIMARY KEY AUTOINCREMENT",
            "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        )
        .replace("INTEGER", "BIGINT")
}

/// The tables. Instants are milliseconds since the epoch (UTC); flags are 0/1 integers, so
/// both dialects read every column as an integer or text. Nothing here holds a record value:
/// definitions are pipeline files (secret references only), logs are redacted output.
const V1: &str = r#"
CREATE TABLE hf_pipelines (
    name TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    schedule TEXT,
    timezone TEXT,
    paused INTEGER NOT NULL DEFAULT 0,
    max_active_runs INTEGER NOT NULL DEFAULT 1,
    first_seen_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE hf_definitions (
    fingerprint TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    file TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE hf_pools (name TEXT PRIMARY KEY, slots INTEGER NOT NULL);
CREATE TABLE hf_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline TEXT NOT NULL,
    run_id TEXT NOT NULL,
    run_type TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    logical_date INTEGER NOT NULL,
    interval_start INTEGER NOT NULL,
    interval_end INTEGER NOT NULL,
    state TEXT NOT NULL,
    conf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    ended_at INTEGER,
    UNIQUE (pipeline, run_id)
);
CREATE INDEX hf_runs_state ON hf_runs (state, pipeline);
-- One scheduled or backfill run per interval: a backfill never repeats a scheduled run.
CREATE UNIQUE INDEX hf_runs_interval ON hf_runs (pipeline, interval_start, interval_end)
    WHERE run_type <> 'manual';
CREATE TABLE hf_tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run INTEGER NOT NULL REFERENCES hf_runs (id),
    pipeline TEXT NOT NULL,
    task TEXT NOT NULL,
    position INTEGER NOT NULL,
    kind TEXT NOT NULL,
    upstream TEXT NOT NULL,
    trigger_rule TEXT NOT NULL,
    pool TEXT,
    retries INTEGER NOT NULL,
    retry_delay_ms INTEGER NOT NULL,
    retry_exponential INTEGER NOT NULL,
    max_retry_delay_ms INTEGER NOT NULL,
    timeout_ms INTEGER,
    state TEXT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    lost INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    next_try_at INTEGER,
    started_at INTEGER,
    ended_at INTEGER,
    records_read INTEGER,
    records_written INTEGER,
    records_quarantined INTEGER,
    error TEXT,
    UNIQUE (run, task)
);
CREATE INDEX hf_tasks_claim ON hf_tasks (state, next_try_at);
CREATE INDEX hf_tasks_worker ON hf_tasks (worker, state);
CREATE INDEX hf_tasks_run_state ON hf_tasks (run, state);
CREATE TABLE hf_tries (
    task INTEGER NOT NULL REFERENCES hf_tasks (id),
    attempt INTEGER NOT NULL,
    worker TEXT NOT NULL,
    state TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    error TEXT,
    log TEXT,
    PRIMARY KEY (task, attempt)
);
CREATE TABLE hf_workers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    stopped_at INTEGER
);
"#;

/// Definitions carry the signature of whoever registered them (base64 Ed25519 over the
/// fingerprint, pipeline and file); workers given a public key refuse those without a valid one.
const V2: &str = "ALTER TABLE hf_definitions ADD COLUMN signature TEXT;";

/// Data subject requests and their progress per system (`store/dsr.rs`). A request names its
/// person by a keyed digest only; steps name systems (pipeline and sink), never a value.
const V3: &str = r#"
CREATE TABLE hf_dsr_requests (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    law TEXT NOT NULL,
    subject_digest TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    deadline_at INTEGER NOT NULL,
    completed_at INTEGER
);
CREATE INDEX hf_dsr_requests_subject ON hf_dsr_requests (subject_digest, kind, state);
CREATE TABLE hf_dsr_steps (
    request TEXT NOT NULL REFERENCES hf_dsr_requests (id),
    system TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT NOT NULL,
    count INTEGER NOT NULL,
    done_at INTEGER NOT NULL,
    PRIMARY KEY (request, system)
);
"#;

/// Identity and access for `hushflow serve` (`store/users.rs`, `api_tokens.rs`,
/// `sessions.rs`). Only digests of secrets are kept: passwords as Argon2id PHC strings, API
/// tokens' and sessions' secrets as SHA-256, sign-in addresses as a SHA-256 (pruned with the
/// attempts). A grant's missing permission or pipeline is '' (key columns cannot be NULL).
/// A revoked token keeps its row (for the list and the audit trail) and frees its name.
const V4: &str = r#"
CREATE TABLE hf_users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL,
    failed_count INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER
);
CREATE TABLE hf_user_grants (
    user_name TEXT NOT NULL,
    permission TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_name, permission, pipeline)
);
CREATE TABLE hf_api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    expires_at INTEGER,
    last_used_at INTEGER,
    revoked_at INTEGER
);
CREATE UNIQUE INDEX hf_api_tokens_name ON hf_api_tokens (name) WHERE revoked_at IS NULL;
CREATE TABLE hf_sessions (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX hf_sessions_user ON hf_sessions (user_name);
CREATE TABLE hf_sign_in_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_name TEXT,
    address_digest TEXT NOT NULL,
    at INTEGER NOT NULL,
    succeeded INTEGER NOT NULL
);
CREATE INDEX hf_sign_in_attempts_address ON hf_sign_in_attempts (address_digest, at);
CREATE INDEX hf_sign_in_attempts_user ON hf_sign_in_attempts (user_name, at);
"#;

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "runs, tasks, tries, workers, pools",
        sql: V1,
    },
    Migration {
        version: 2,
        name: "signed definitions",
        sql: V2,
    },
    Migration {
        version: 3,
        name: "data subject requests",
        sql: V3,
    },
    Migration {
        version: 4,
        name: "users, grants, API tokens, sessions, sign-in attempts",
        sql: V4,
    },
];

/// The newest version this build knows.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The version the database is at (0 when it has never been migrated).
pub fn current(db: &mut Db) -> Result<i64, StoreError> {
    let exists = match db.dialect() {
        Dialect::Sqlite => db.query(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'hf_schema_migrations'",
            &[],
        )?,
        Dialect::Postgres => db.query(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() \
             AND table_name = 'hf_schema_migrations'",
            &[],
        )?,
    };
    if exists.is_empty() {
        return Ok(0);
    }
    let rows = db.query("SELECT MAX(version) FROM hf_schema_migrations", &[])?;
    Ok(rows.first().and_then(|r| r.int(0)).unwrap_or(0))
}

/// The database's version, refused when it is newer than this build knows (an older binary
/// must not write to a schema it does not understand).
pub fn check(db: &mut Db) -> Result<i64, StoreError> {
    let found = current(db)?;
    if found > latest() {
        return Err(StoreError::TooNew {
            found,
            known: latest(),
        });
    }
    Ok(found)
}

/// Applies every missing migration, each in its own transaction; returns those applied.
/// Concurrent migrators on PostgreSQL wait for each other on an advisory lock.
pub fn migrate(db: &mut Db, now: i64) -> Result<Vec<&'static Migration>, StoreError> {
    let mut applied = Vec::new();
    db.transaction(|db| {
        if db.dialect() == Dialect::Postgres {
            db.batch("SELECT pg_advisory_xact_lock(7426150081)")?;
        }
        db.batch(
            "CREATE TABLE IF NOT EXISTS hf_schema_migrations (version BIGINT PRIMARY KEY, \
             name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )?;
        let at = current(db)?;
        for m in MIGRATIONS.iter().filter(|m| m.version > at) {
            match db.dialect() {
                Dialect::Sqlite => db.batch(m.sql)?,
                Dialect::Postgres => db.batch(&for_postgres(m.sql))?,
            }
            db.exec(
                "INSERT INTO hf_schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                &[m.version.into(), m.name.into(), now.into()],
            )?;
            applied.push(m);
        }
        Ok(())
    })?;
    check(db)?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    #[test]
    fn postgres_text_uses_64_bit_keys() {
        let pg = super::for_postgres(super::V1);
        assert!(pg.contains("id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"));
        assert!(!pg.contains("INTEGER"));
        assert!(!pg.contains("AUTOINCREMENT"));
    }
}
