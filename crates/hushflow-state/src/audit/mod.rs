//! The tamper-evident audit log: one record per run and per privileged action (key operations,
//! later API actions), hash-chained in `<state_dir>/audit.db` and anchored in
//! `<state_dir>/audit.head`. Only the engine and the CLI write it, through [`AuditLog::append`].
//!
//! # What may go in: never personal data, never secrets
//!
//! The log is kept for years, shown by `hushflow audit list` and copied into reports, and a
//! record cannot be redacted later without breaking the chain. Callers therefore pass only who
//! acted (the OS user, later an API user), what was done (`run`, `validate`, `keys.create`, …),
//! the pipeline's name, the policy's fingerprint, counts, an outcome, and in `detail`
//! non-personal text such as a key name or an error *category* — never an error message that
//! could quote a value, never key material. This module cannot tell; it is the caller's duty.
//!
//! # Where things are
//!
//! - `mod.rs` (here): the store — [`AuditLog`], what callers record ([`NewRecord`]), what is
//!   stored ([`AuditRecord`]), opening, appending and listing, and [`AuditError`];
//! - `chain.rs`: the hash chain — how a record is hashed (canonical encoding of its columns);
//! - `rows.rs`: rows as stored, read without trusting their types, and turned into records;
//! - `anchor.rs`: the head anchor `audit.head`, how appends move it, and its tag under the
//!   [`AnchorKey`] ([`AuditLog::tag_head`]);
//! - `verify.rs`: [`AuditLog::verify`] and its report ([`Verification`], [`Tamper`]), and
//!   [`AuditLog::verify_anchor`] with its [`AnchorCheck`].
//!
//! # Storage
//!
//! SQLite, file mode 0600, in the state directory (0700, created by the caller). The table is
//! `STRICT` and `seq` is its `INTEGER PRIMARY KEY`, so the storage order *is* the `seq` order and
//! two records cannot share a number. The journal is SQLite's default rollback journal with
//! `synchronous = FULL`, not WAL: the log takes one small write per run, so WAL's concurrency
//! buys nothing, while in WAL mode the newest records can sit in `audit.db-wal` — a backup of
//! `audit.db` alone would lack them (and `verify` would rightly call it truncated). With the
//! rollback journal, `audit.db` is the whole log whenever no write is in progress.
//!
//! Appends are serialized by SQLite: [`AuditLog::append`] reads the last record, computes `seq`,
//! `prev_hash` and `hash` and inserts inside one `BEGIN IMMEDIATE` transaction, so two processes
//! appending at once queue up (busy timeout 10 s) instead of forking the chain.
//!
//! # Limits
//!
//! The chain has no key: it is *evidence* against accidental or careless edits and against
//! anyone who edits the database without rewriting everything after the edit. Not caught by
//! [`AuditLog::verify`] alone:
//! - someone who rewrites records *and* recomputes every later hash *and* rewrites the anchor
//!   (all of which lives in the state directory), or removes the newest records and rewrites
//!   the anchor to the new last one;
//! - forged records appended at the end with correct hashes (the anchor only vouches for what
//!   was there when it was written);
//! - removal of the whole store (`audit.db` and `audit.head` together): a new, empty log starts.
//!
//! The head's tag ([`AnchorKey`], checked by [`AuditLog::verify_anchor`]) catches all three when
//! done by someone without the key; see the `anchor` module for its rules. It cannot catch
//! someone who holds the key (the master key), nor the head put back as it was at an earlier
//! time together with the records of then (a rollback): a copy of the head kept off the
//! machine is the remedy. Where an edit was disguised by recomputing hashes, `verify` can only
//! name the last record the disguise reached, not the first one edited.

mod anchor;
mod chain;
mod rows;
mod verify;

pub use anchor::{ANCHOR_KEY_INFO, AnchorKey, Checkpoint, HeadTagged, head_checkpoint};
pub use verify::{AnchorCheck, Tamper, Verification};

use anchor::{Anchor, AnchorState, read_anchor, write_anchor};
use chain::canonical_counts;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The database's file name inside the state directory.
pub const DB_FILE: &str = "audit.db";
/// The head anchor's file name inside the state directory.
pub const HEAD_FILE: &str = "audit.head";
/// The `prev_hash` of the first record, and the anchor's hash for an empty log.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    pipeline TEXT,
    policy_fingerprint TEXT,
    counts TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
) STRICT";

const COLUMNS: &str = "seq, time, actor, action, pipeline, policy_fingerprint, counts, outcome, \
                       detail, prev_hash, hash";

/// What a caller records. No personal data and no secrets: see the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRecord {
    /// Who acted: the OS user, later an API user. Not empty.
    pub actor: String,
    /// What was done: `run`, `validate`, `keys.create`, … Not empty.
    pub action: String,
    /// The pipeline concerned, if any.
    pub pipeline: Option<String>,
    /// The policy's fingerprint, hex.
    pub policy_fingerprint: Option<String>,
    /// read / written / filtered / quarantined / …
    pub counts: BTreeMap<String, u64>,
    /// `success`, `partial`, `failure`, `ok`. Not empty.
    pub outcome: String,
    /// Non-personal text: a key name, an error category.
    pub detail: Option<String>,
}

/// One stored record. Serializes with `time` as an RFC 3339 string and `counts` as an object,
/// and reads back from that form (a shipped copy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The record's number: 1 for the first, one more for each after.
    pub seq: u64,
    /// When the record was written.
    #[serde(
        serialize_with = "serialize_display",
        deserialize_with = "deserialize_parsed"
    )]
    pub time: jiff::Timestamp,
    /// Who acted: the OS user, later an API user.
    pub actor: String,
    /// What was done: `run`, `validate`, `keys.create`, …
    pub action: String,
    /// The pipeline concerned, if any.
    pub pipeline: Option<String>,
    /// The policy's fingerprint, hex.
    pub policy_fingerprint: Option<String>,
    /// read / written / filtered / quarantined / …
    pub counts: BTreeMap<String, u64>,
    /// `success`, `partial`, `failure`, `ok`.
    pub outcome: String,
    /// Non-personal text: a key name, an error category.
    pub detail: Option<String>,
    /// The previous record's hash (64 zeros for the first).
    pub prev_hash: String,
    /// This record's hash, over its fields and `prev_hash` (see [`AuditRecord::compute_hash`]).
    pub hash: String,
}

fn deserialize_parsed<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<jiff::Timestamp, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

fn serialize_display<S: serde::Serializer>(
    value: &impl fmt::Display,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// Errors of the audit store. Each says what to do next where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The database could not be opened or made private.
    #[error(
        "audit store {path} could not be opened: {source}; check that the state directory \
         exists and belongs to the user running hushflow"
    )]
    Open {
        /// The audit database.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A database operation failed.
    #[error(
        "audit store {path}: {action} failed: {source}; if the file is damaged, move it aside \
         (keep it for inspection) to start a new log"
    )]
    Sql {
        /// The audit database.
        path: PathBuf,
        /// What was being done, in a few words.
        action: &'static str,
        /// The database's error.
        #[source]
        source: rusqlite::Error,
    },
    /// Another process held the database longer than the busy timeout.
    #[error(
        "audit store {path} is busy: another hushflow process held it for more than {seconds} s; \
         try again when it has finished"
    )]
    Busy {
        /// The audit database.
        path: PathBuf,
        /// How long hushflow waited for it.
        seconds: u64,
    },
    /// The head anchor could not be read or written.
    #[error(
        "audit head anchor {path}: {action} failed: {source}; check the state directory's \
         permissions and free space"
    )]
    Anchor {
        /// The head anchor file.
        path: PathBuf,
        /// What was being done, in a few words.
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The head anchor does not parse.
    #[error(
        "audit head anchor {path} is damaged ({problem}); hushflow writes it with every record, \
         so it was edited or corrupted: restore it from a backup, or move audit.db and \
         audit.head aside (keep them as evidence) to start a new log"
    )]
    AnchorDamaged {
        /// The head anchor file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A record was written but the head anchor was not moved to it.
    #[error(
        "audit record {seq} was written, but the head anchor {path} was not updated ({source}); \
         the next record written updates it"
    )]
    AnchorNotUpdated {
        /// The record that was written.
        seq: u64,
        /// The head anchor file.
        path: PathBuf,
        /// Why the anchor was not updated.
        #[source]
        source: Box<AuditError>,
    },
    /// A stored record cannot be read back.
    #[error(
        "audit store {path}: record {seq} cannot be read ({problem}); run `hushflow audit \
         verify` to see whether the log was tampered with"
    )]
    Corrupt {
        /// The audit database.
        path: PathBuf,
        /// The record that cannot be read.
        seq: i64,
        /// What is wrong with it.
        problem: String,
    },
    /// The caller's record breaks a rule (an empty `actor`, `action` or `outcome`).
    #[error("audit record not written: `{field}` {problem}; this is a bug in the caller")]
    InvalidRecord {
        /// The [`NewRecord`] field at fault.
        field: &'static str,
        /// What is wrong with it, such as "is empty".
        problem: &'static str,
    },
    /// Tagging or checking the head needs the anchor key and the log has none.
    #[error(
        "the audit head's tag cannot be checked or made without the anchor key: give the master \
         key (HUSHFLOW_MASTER_KEY or --master-key) or the anchor key (--anchor-key)"
    )]
    NoAnchorKey,
    /// [`AuditLog::tag_head`] refused to tag: the chain or the anchor does not hold.
    #[error(
        "the audit head was not tagged: {reason}; that is evidence to keep. To start a new log, \
         move audit.db and audit.head aside (keep them)"
    )]
    TagRefused {
        /// Why tagging was refused: the broken chain or the anchor check that failed.
        reason: String,
    },
}

/// Told of each record once it is in the log (after the append committed). It runs in the
/// appender's thread: it must return quickly and never fail the append (what it does with the
/// record, such as delivering an alert, is its own business, off that thread).
pub trait AuditObserver: Send + Sync {
    /// `record` was appended to the log of `state_dir`.
    fn appended(&self, state_dir: &Path, record: &AuditRecord);
}

/// The audit store of one state directory.
pub struct AuditLog {
    conn: Connection,
    path: PathBuf,
    head_path: PathBuf,
    /// The key that tags the head anchor, when the opener has it.
    key: Option<AnchorKey>,
    /// Told of every record appended (see [`AuditObserver`]).
    observer: Option<std::sync::Arc<dyn AuditObserver>>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens `<state_dir>/audit.db`, creating it (mode 0600) and its table if missing; an
    /// existing file with any other mode is set to 0600. A new, empty log also gets its head
    /// anchor (seq 0), untagged even with `key` (see [`AuditLog::tag_head`]). The state
    /// directory itself must exist (the caller creates it, 0700). Opening never repairs
    /// anything: a tampered log stays as it is for [`AuditLog::verify`]. With `key`, appends
    /// keep a tagged head tagged (see the `anchor` module's rules), and
    /// [`AuditLog::verify_anchor`] and [`AuditLog::tag_head`] can be used.
    pub fn open(state_dir: &Path, key: Option<AnchorKey>) -> Result<AuditLog, AuditError> {
        let path = state_dir.join(DB_FILE);
        let head_path = state_dir.join(HEAD_FILE);
        create_private_file(&path).map_err(|source| AuditError::Open {
            path: path.clone(),
            source,
        })?;
        let mut conn = Connection::open(&path).map_err(sql_error(&path, "open"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sql_error(&path, "set the busy timeout"))?;
        conn.pragma_update_and_check(None, "journal_mode", "DELETE", |row| {
            row.get::<_, String>(0)
        })
        .map_err(sql_error(&path, "set the journal mode"))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql_error(&path, "set synchronous mode"))?;

        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_error(&path, "lock"))?;
        tx.execute_batch(SCHEMA)
            .map_err(sql_error(&path, "create the table"))?;
        let empty: bool = tx
            .query_row("SELECT NOT EXISTS (SELECT 1 FROM audit)", [], |row| {
                row.get(0)
            })
            .map_err(sql_error(&path, "read the head"))?;
        if empty && matches!(read_anchor(&head_path)?, AnchorState::Missing) {
            // Never tagged here, even with the key: a new log is what removing the whole store
            // leaves too. Tagging it is `tag_head`'s deliberate act.
            write_anchor(
                &head_path,
                &Anchor {
                    seq: 0,
                    hash: GENESIS_HASH.into(),
                    checkpoint: None,
                },
            )?;
        }
        tx.commit().map_err(sql_error(&path, "create the table"))?;
        Ok(AuditLog {
            conn,
            path,
            head_path,
            key,
            observer: None,
        })
    }

    /// The same log, telling `observer` of every record appended.
    pub fn observed_by(mut self, observer: std::sync::Arc<dyn AuditObserver>) -> AuditLog {
        self.observer = Some(observer);
        self
    }

    /// `<state_dir>/audit.db`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<state_dir>/audit.head`.
    pub fn head_path(&self) -> &Path {
        &self.head_path
    }

    /// Appends a record and returns it as stored. The last record is read and the new one
    /// inserted in one IMMEDIATE transaction, so concurrent appenders cannot fork the chain;
    /// then the head anchor is moved to the new head (see the module documentation). If the
    /// record was written but the anchor could not be, the error is
    /// [`AuditError::AnchorNotUpdated`]: the record is in the log, do not append it again.
    pub fn append(&mut self, record: NewRecord) -> Result<AuditRecord, AuditError> {
        validate(&record)?;
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_error(path, "lock for appending"))?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(sql_error(path, "read the last record"))?;
        let (seq, prev_hash) = match last {
            None => (1, GENESIS_HASH.to_string()),
            Some((last_seq, hash)) => {
                let seq = u64::try_from(last_seq)
                    .ok()
                    .and_then(|s| s.checked_add(1))
                    .filter(|s| i64::try_from(*s).is_ok())
                    .ok_or_else(|| AuditError::Corrupt {
                        path: path.clone(),
                        seq: last_seq,
                        problem: "its sequence number is out of range".into(),
                    })?;
                (seq, hash)
            }
        };
        // Microseconds, like run ids: enough to order records by eye, short enough to read.
        let now = jiff::Timestamp::now();
        let time = jiff::Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now);
        let mut stored = AuditRecord {
            seq,
            time,
            actor: record.actor,
            action: record.action,
            pipeline: record.pipeline,
            policy_fingerprint: record.policy_fingerprint,
            counts: record.counts,
            outcome: record.outcome,
            detail: record.detail,
            prev_hash,
            hash: String::new(),
        };
        stored.hash = stored.compute_hash();
        tx.execute(
            &format!("INSERT INTO audit ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
            params![
                seq as i64,
                stored.time.to_string(),
                stored.actor,
                stored.action,
                stored.pipeline,
                stored.policy_fingerprint,
                canonical_counts(&stored.counts),
                stored.outcome,
                stored.detail,
                stored.prev_hash,
                stored.hash,
            ],
        )
        .map_err(sql_error(path, "append a record"))?;
        tx.commit().map_err(sql_error(path, "append a record"))?;

        let anchored = self
            .advance_anchor()
            .map_err(|source| AuditError::AnchorNotUpdated {
                seq,
                path: self.head_path.clone(),
                source: Box::new(source),
            });
        // The record is in the log whatever happened to the anchor: observed either way.
        if let Some(observer) = &self.observer
            && let Some(dir) = self.path.parent()
        {
            observer.appended(dir, &stored);
        }
        anchored?;
        Ok(stored)
    }

    /// All records, ordered by `seq`. A record that cannot be read as a record (a column
    /// edited into something that is not a time, not counts, not UTF-8) is
    /// [`AuditError::Corrupt`]; [`AuditLog::verify`] tells what happened to it.
    pub fn list(&self) -> Result<Vec<AuditRecord>, AuditError> {
        self.raw_rows()?
            .iter()
            .map(|row| {
                row.to_record().map_err(|problem| AuditError::Corrupt {
                    path: self.path.clone(),
                    seq: row.seq,
                    problem,
                })
            })
            .collect()
    }
}

impl AuditLog {
    /// The records numbered above `after`, ordered by `seq`: what a follower (the shipper,
    /// the metrics, the alert rules of another process) has not seen yet.
    pub fn list_after(&self, after: u64) -> Result<Vec<AuditRecord>, AuditError> {
        let from = i64::try_from(after.saturating_add(1)).unwrap_or(i64::MAX);
        rows::read_raw_rows(&self.conn, &self.path, Some(from))?
            .iter()
            .map(|row| {
                row.to_record().map_err(|problem| AuditError::Corrupt {
                    path: self.path.clone(),
                    seq: row.seq,
                    problem,
                })
            })
            .collect()
    }

    /// The number of the last record (0 for an empty log).
    pub fn last_seq(&self) -> Result<u64, AuditError> {
        let last: Option<i64> = self
            .conn
            .query_row("SELECT MAX(seq) FROM audit", [], |row| row.get(0))
            .map_err(sql_error(&self.path, "read the last record"))?;
        Ok(last.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
    }
}

fn validate(record: &NewRecord) -> Result<(), AuditError> {
    let invalid = |field, problem| Err(AuditError::InvalidRecord { field, problem });
    for (field, value) in [
        ("actor", &record.actor),
        ("action", &record.action),
        ("outcome", &record.outcome),
    ] {
        if value.is_empty() {
            return invalid(field, "is empty");
        }
    }
    if let Some(fp) = &record.policy_fingerprint
        && (fp.is_empty() || !fp.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return invalid("policy_fingerprint", "is not hex");
    }
    Ok(())
}

/// Creates the file 0600 if missing; tightens an existing one that is not 0600.
pub(crate) fn create_private_file(path: &Path) -> io::Result<()> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    if file.metadata()?.permissions().mode() & 0o777 != 0o600 {
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

fn sql_error<'a>(
    path: &'a Path,
    action: &'static str,
) -> impl Fn(rusqlite::Error) -> AuditError + 'a {
    move |source| match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            AuditError::Busy {
                path: path.to_path_buf(),
                seconds: BUSY_TIMEOUT.as_secs(),
            }
        }
        _ => AuditError::Sql {
            path: path.to_path_buf(),
            action,
            source,
        },
    }
}

/// What the tests of every part of the log share: sample records, and tampering with the
/// database directly, as an attacker with file access would.
#[cfg(test)]
mod testing {
    use super::*;
    pub(super) use rusqlite::Connection;
    pub(super) use sha2::{Digest, Sha256};
    pub(super) use std::collections::BTreeMap;

    pub(super) fn sample(i: u64) -> NewRecord {
        NewRecord {
            actor: "alice".into(),
            action: if i.is_multiple_of(2) {
                "keys.create"
            } else {
                "run"
            }
            .into(),
            pipeline: (!i.is_multiple_of(2)).then(|| "crm-sync".to_string()),
            policy_fingerprint: (!i.is_multiple_of(2))
                .then(|| hex::encode(Sha256::digest(i.to_be_bytes()))),
            counts: BTreeMap::from([("read".into(), 10 * i), ("written".into(), 9 * i)]),
            outcome: "success".into(),
            detail: (!i.is_multiple_of(4)).then(|| format!("run {i}")),
        }
    }

    /// A state directory holding a log of `n` records.
    pub(super) fn log_with(n: u64) -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path(), None).unwrap();
        for i in 1..=n {
            log.append(sample(i)).unwrap();
        }
        (dir, log)
    }

    /// Tampers with the database directly, as an attacker with file access would.
    pub(super) fn sql(dir: &tempfile::TempDir, statements: &str) {
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(statements).unwrap();
    }

    pub(super) fn insert(dir: &tempfile::TempDir, r: &AuditRecord) {
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute(
            &format!("INSERT INTO audit ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
            params![
                r.seq as i64,
                r.time.to_string(),
                r.actor,
                r.action,
                r.pipeline,
                r.policy_fingerprint,
                canonical_counts(&r.counts),
                r.outcome,
                r.detail,
                r.prev_hash,
                r.hash,
            ],
        )
        .unwrap();
    }

    /// A record with a correct hash of its own, chained to `prev_hash`.
    pub(super) fn forged(seq: u64, prev_hash: &str) -> AuditRecord {
        let mut r = AuditRecord {
            seq,
            time: jiff::Timestamp::now(),
            actor: "mallory".into(),
            action: "keys.create".into(),
            pipeline: None,
            policy_fingerprint: None,
            counts: BTreeMap::new(),
            outcome: "ok".into(),
            detail: Some("key backdoor".into()),
            prev_hash: prev_hash.into(),
            hash: String::new(),
        };
        r.hash = r.compute_hash();
        r
    }

    pub(super) fn broken(log: &AuditLog) -> (u64, Tamper) {
        match log.verify().unwrap() {
            Verification::Broken { seq, problem } => (seq, problem),
            intact => panic!("expected a broken log, got {intact:?}"),
        }
    }

    pub(super) fn hash_of(log: &AuditLog, seq: u64) -> String {
        log.list().unwrap()[seq as usize - 1].hash.clone()
    }

    pub(super) fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// The anchor key of a master key made of `byte` repeated.
    pub(super) fn anchor_key(byte: u8) -> AnchorKey {
        use base64::Engine as _;
        let text = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
        let master = hushflow_crypto::MasterKey::from_base64(&hushflow_secrets::SecretValue::new(
            text.into_bytes(),
        ))
        .unwrap();
        AnchorKey::from_master(&master)
    }

    /// A state directory holding a log of `n` records, tagged with `key` when it was new (as
    /// `hushflow audit anchor` does) and appended with `key`.
    pub(super) fn keyed_log_with(n: u64, key: &AnchorKey) -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path(), Some(key.clone())).unwrap();
        log.tag_head().unwrap();
        for i in 1..=n {
            log.append(sample(i)).unwrap();
        }
        (dir, log)
    }

    /// The head file as JSON.
    pub(super) fn head(dir: &tempfile::TempDir) -> serde_json::Value {
        serde_json::from_str(&fs::read_to_string(dir.path().join(HEAD_FILE)).unwrap()).unwrap()
    }

    /// Writes the head file, as an attacker with file access would.
    pub(super) fn set_head(dir: &tempfile::TempDir, head: &serde_json::Value) {
        fs::write(dir.path().join(HEAD_FILE), head.to_string()).unwrap();
    }

    /// The chain's verdict and the anchor's, with `key`.
    pub(super) fn anchored(
        dir: &tempfile::TempDir,
        key: &AnchorKey,
    ) -> (Verification, AnchorCheck) {
        AuditLog::open(dir.path(), Some(key.clone()))
            .unwrap()
            .verify_anchor()
            .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use std::sync::Arc;

    #[test]
    fn appended_records_list_back_in_order_with_their_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path(), None).unwrap();
        let before = jiff::Timestamp::now();
        let returned: Vec<AuditRecord> = (1..=4).map(|i| log.append(sample(i)).unwrap()).collect();
        let listed = log.list().unwrap();
        assert_eq!(listed, returned);
        assert_eq!(
            listed.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        let first = &listed[0];
        assert_eq!(first.actor, "alice");
        assert_eq!(first.action, "run");
        assert_eq!(first.pipeline.as_deref(), Some("crm-sync"));
        assert_eq!(
            first.counts,
            BTreeMap::from([("read".into(), 10), ("written".into(), 9)])
        );
        assert_eq!(first.detail.as_deref(), Some("run 1"));
        assert_eq!(listed[1].pipeline, None);
        assert_eq!(listed[3].detail, None);
        assert!(first.time >= before && first.time <= jiff::Timestamp::now());

        let json: serde_json::Value = serde_json::to_value(first).unwrap();
        assert_eq!(json["time"], first.time.to_string());
        assert!(json["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(json["counts"]["read"], 10);
        assert_eq!(json["seq"], 1);
        assert_eq!(json["detail"], "run 1");
    }

    #[test]
    fn store_and_anchor_are_private_files() {
        let (dir, log) = log_with(2);
        assert_eq!(mode(&dir.path().join(DB_FILE)), 0o600);
        assert_eq!(mode(&dir.path().join(HEAD_FILE)), 0o600);
        drop(log);
        fs::set_permissions(dir.path().join(DB_FILE), fs::Permissions::from_mode(0o644)).unwrap();
        AuditLog::open(dir.path(), None).unwrap();
        assert_eq!(
            mode(&dir.path().join(DB_FILE)),
            0o600,
            "a loose file is tightened"
        );
        // The head's temporary file was renamed into place, not left behind.
        let temporary = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect::<Vec<_>>();
        assert!(temporary.is_empty(), "{temporary:?}");
    }

    #[test]
    fn a_reopened_log_continues_the_sequence() {
        let (dir, log) = log_with(3);
        let head = hash_of(&log, 3);
        drop(log);
        let mut log = AuditLog::open(dir.path(), None).unwrap();
        let next = log.append(sample(4)).unwrap();
        assert_eq!(next.seq, 4);
        assert_eq!(next.prev_hash, head);
        assert!(log.verify().unwrap().is_intact());
    }

    #[test]
    fn concurrent_appenders_do_not_fork_the_chain() {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let dir = Arc::clone(&dir);
                std::thread::spawn(move || {
                    let mut log = AuditLog::open(dir.path(), None).unwrap();
                    for i in 0..15 {
                        log.append(sample(t * 100 + i)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let log = AuditLog::open(dir.path(), None).unwrap();
        let records = log.list().unwrap();
        assert_eq!(
            records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            (1..=60).collect::<Vec<_>>()
        );
        assert_eq!(
            log.verify().unwrap(),
            Verification::Intact {
                records: 60,
                head: records[59].hash.clone()
            }
        );
    }

    #[test]
    fn invalid_records_are_refused_and_nothing_is_written() {
        let (_dir, mut log) = log_with(1);
        let mut r = sample(1);
        r.actor.clear();
        let err = log.append(r).unwrap_err();
        assert!(err.to_string().contains("`actor` is empty"), "{err}");
        let mut r = sample(1);
        r.policy_fingerprint = Some("sha256:ab".into());
        assert!(matches!(
            log.append(r),
            Err(AuditError::InvalidRecord {
                field: "policy_fingerprint",
                ..
            })
        ));
        assert_eq!(log.list().unwrap().len(), 1);
    }

    #[test]
    fn messages_read_well_after_the_record_number() {
        let v = Verification::Broken {
            seq: 3,
            problem: Tamper::Removed,
        };
        assert_eq!(
            v.to_string(),
            "broken at record 3: one or more records before it were removed"
        );
        assert!(Tamper::Truncated.to_string().contains("head anchor"));
        assert!(Tamper::Inserted.to_string().contains("inserted"));
        assert!(Tamper::Changed.to_string().contains("altered"));
        let err = AuditLog::open(Path::new("/nonexistent/state"), None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("audit store /nonexistent/state/audit.db could not be opened"),
            "{err}"
        );
    }
}
