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
//! # Records and the chain
//!
//! Records are numbered `seq` = 1, 2, 3, … Each stores `prev_hash`, the `hash` of the record
//! before it (64 zeros for the first), and its own `hash`: SHA-256 over the domain tag
//! `hushflow-audit-v1\n`, `seq` as 8 big-endian bytes, then every other column in schema order
//! (time, actor, action, pipeline, policy_fingerprint, counts, outcome, detail, prev_hash), each
//! as a presence byte (0 for NULL, 1 otherwise) followed by its length as 8 big-endian bytes and
//! its bytes. The lengths make field boundaries unambiguous: moving text from `actor` into
//! `action`, or turning an empty `detail` into NULL, changes the hash. The hash covers the bytes
//! as stored — `time` as RFC 3339 text, `counts` as canonical JSON (sorted keys, no whitespace)
//! — so an edit of any column, even one that means the same, shows.
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
//! # The head anchor
//!
//! Deleting the newest records leaves a perfectly consistent chain, so the chain alone cannot
//! show it. After each append the log writes `<state_dir>/audit.head` (0600, via a temporary
//! file and rename) with the last `seq` and `hash`; `verify` reports [`Tamper::Truncated`] when
//! the database ends before the record the anchor names, and [`Tamper::Changed`] when that
//! record's hash differs from the anchor's. The anchor is written after the record commits (a
//! crash in between leaves it one record behind, which is fine: the anchor only vouches for a
//! prefix), under the database's write lock (so concurrent appenders never move it backwards),
//! and only if the record it names is still there unchanged. Once the anchor stops matching,
//! appends still record what happened but leave the anchor alone: the evidence is not
//! overwritten by the next run. A new log starts with an anchor at seq 0 written by
//! [`AuditLog::open`], so a missing anchor next to records means it was removed.
//!
//! After an investigation, start a new log by moving `audit.db` and `audit.head` aside (keep
//! them as evidence); the next [`AuditLog::open`] creates both afresh.
//!
//! # What `verify` names
//!
//! See [`AuditLog::verify`] and [`Tamper`] for the exact rules. In short: it walks the records
//! in `seq` order and names the first record that was changed, inserted, or that follows removed
//! records; then it checks the anchor.
//!
//! # Limits
//!
//! The chain has no key: it is *evidence* against accidental or careless edits and against
//! anyone who edits the database without rewriting everything after the edit. Not caught:
//! - someone who rewrites records *and* recomputes every later hash *and* rewrites the anchor
//!   (all of which lives in the state directory);
//! - forged records appended at the end with correct hashes (the anchor only vouches for what
//!   was there when it was written);
//! - removal of the whole store (`audit.db` and `audit.head` together): a new, empty log starts.
//!
//! A later issue may sign the head with a key kept outside the state directory, which would
//! catch the first two. Where an edit was disguised by recomputing hashes, `verify` can only name the
//! last record the disguise reached, not the first one edited.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The database's file name inside the state directory.
pub const DB_FILE: &str = "audit.db";
/// The head anchor's file name inside the state directory.
pub const HEAD_FILE: &str = "audit.head";
/// The `prev_hash` of the first record, and the anchor's hash for an empty log.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const HEAD_TMP_FILE: &str = "audit.head.tmp";
const HASH_DOMAIN: &[u8] = b"hushflow-audit-v1\n";
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

/// One stored record. Serializes with `time` as an RFC 3339 string and `counts` as an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub seq: u64,
    #[serde(serialize_with = "serialize_display")]
    pub time: jiff::Timestamp,
    pub actor: String,
    pub action: String,
    pub pipeline: Option<String>,
    pub policy_fingerprint: Option<String>,
    pub counts: BTreeMap<String, u64>,
    pub outcome: String,
    pub detail: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

fn serialize_display<S: serde::Serializer>(
    value: &impl fmt::Display,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

impl AuditRecord {
    /// The hash this record's fields call for; equals [`AuditRecord::hash`] for a record as
    /// written.
    pub fn compute_hash(&self) -> String {
        let time = self.time.to_string();
        let counts = canonical_counts(&self.counts);
        record_hash(&HashInput {
            seq: self.seq,
            time: time.as_bytes(),
            actor: self.actor.as_bytes(),
            action: self.action.as_bytes(),
            pipeline: self.pipeline.as_deref().map(str::as_bytes),
            policy_fingerprint: self.policy_fingerprint.as_deref().map(str::as_bytes),
            counts: counts.as_bytes(),
            outcome: self.outcome.as_bytes(),
            detail: self.detail.as_deref().map(str::as_bytes),
            prev_hash: self.prev_hash.as_bytes(),
        })
    }
}

/// The result of [`AuditLog::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every record matches its hash and links to the one before, and the log reaches the head
    /// anchor. `head` is the last record's hash (64 zeros for an empty log).
    Intact { records: u64, head: String },
    /// The first problem found, at record `seq` (see [`Tamper`] for which record is named).
    Broken { seq: u64, problem: Tamper },
}

impl Verification {
    pub fn is_intact(&self) -> bool {
        matches!(self, Verification::Intact { .. })
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verification::Intact { records, head } => {
                write!(f, "intact: {records} records, head {head}")
            }
            Verification::Broken { seq, problem } => write!(f, "broken at record {seq}: {problem}"),
        }
    }
}

/// What was done to the log. The `seq` reported with it names:
/// - `Changed`: the record that no longer is what was written — its content does not match its
///   hash; or it was rewritten with a recomputed hash (shown by its successor, which still
///   links to the old hash); or it differs from the head anchor; or its `seq` was altered (then
///   the `seq` it had).
/// - `Removed`: the first record still present after the removed ones (its number is the first
///   after the gap, or, if later records were renumbered, the number it took over).
/// - `Inserted`: the record that is not part of the chain — a second record with the same
///   `seq`, a record its successor links past, or a record whose `seq` skips ahead although it
///   links to its predecessor.
/// - `Truncated`: the first missing record at the end: the log ends before the record the head
///   anchor names, or the anchor itself was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    Changed,
    Removed,
    Inserted,
    Truncated,
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tamper::Changed => {
                "it was altered after it was written (it no longer matches the hash chain)"
            }
            Tamper::Removed => "one or more records before it were removed",
            Tamper::Inserted => "it was inserted; it is not part of the original chain",
            Tamper::Truncated => {
                "it and any newer records were removed (the log ends before its head anchor \
                 audit.head, or the anchor itself was removed)"
            }
        })
    }
}

/// Errors of the audit store. Each says what to do next where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(
        "audit store {path} could not be opened: {source}; check that the state directory \
         exists and belongs to the user running hushflow"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "audit store {path}: {action} failed: {source}; if the file is damaged, move it aside \
         (keep it for inspection) to start a new log"
    )]
    Sql {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "audit store {path} is busy: another hushflow process held it for more than {seconds} s; \
         try again when it has finished"
    )]
    Busy { path: PathBuf, seconds: u64 },
    #[error(
        "audit head anchor {path}: {action} failed: {source}; check the state directory's \
         permissions and free space"
    )]
    Anchor {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(
        "audit head anchor {path} is damaged ({problem}); hushflow writes it with every record, \
         so it was edited or corrupted: restore it from a backup, or move audit.db and \
         audit.head aside (keep them as evidence) to start a new log"
    )]
    AnchorDamaged { path: PathBuf, problem: String },
    #[error(
        "audit record {seq} was written, but the head anchor {path} was not updated ({source}); \
         the next record written updates it"
    )]
    AnchorNotUpdated {
        seq: u64,
        path: PathBuf,
        #[source]
        source: Box<AuditError>,
    },
    #[error(
        "audit store {path}: record {seq} cannot be read ({problem}); run `hushflow audit \
         verify` to see whether the log was tampered with"
    )]
    Corrupt {
        path: PathBuf,
        seq: i64,
        problem: String,
    },
    #[error("audit record not written: `{field}` {problem}; this is a bug in the caller")]
    InvalidRecord {
        field: &'static str,
        problem: &'static str,
    },
}

/// The audit store of one state directory.
pub struct AuditLog {
    conn: Connection,
    path: PathBuf,
    head_path: PathBuf,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens `<state_dir>/audit.db`, creating it (mode 0600) and its table if missing; an
    /// existing file with any other mode is set to 0600. A new, empty log also gets its head
    /// anchor (seq 0). The state directory itself must exist (the caller creates it, 0700).
    /// Opening never repairs anything: a tampered log stays as it is for [`AuditLog::verify`].
    pub fn open(state_dir: &Path) -> Result<AuditLog, AuditError> {
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
            write_anchor(&head_path, 0, GENESIS_HASH)?;
        }
        tx.commit().map_err(sql_error(&path, "create the table"))?;
        Ok(AuditLog {
            conn,
            path,
            head_path,
        })
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

        self.advance_anchor()
            .map_err(|source| AuditError::AnchorNotUpdated {
                seq,
                path: self.head_path.clone(),
                source: Box::new(source),
            })?;
        Ok(stored)
    }

    /// Moves the head anchor to the current head, under the write lock so that concurrent
    /// appenders never move it backwards, and only while the record it names is still there
    /// unchanged: an anchor that no longer matches is evidence and stays as it is.
    fn advance_anchor(&mut self) -> Result<(), AuditError> {
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_error(path, "lock for the head anchor"))?;
        let vouched = match read_anchor(&self.head_path)? {
            AnchorState::Missing | AnchorState::Damaged(_) => false,
            AnchorState::At(anchor) if anchor.seq == 0 => true,
            AnchorState::At(anchor) => {
                let matching: i64 = tx
                    .query_row(
                        "SELECT count(*) FROM audit WHERE seq = ?1 AND hash = ?2",
                        params![anchor.seq as i64, anchor.hash],
                        |row| row.get(0),
                    )
                    .map_err(sql_error(path, "check the head anchor"))?;
                matching == 1
            }
        };
        if vouched {
            let (seq, hash): (i64, String) = tx
                .query_row(
                    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .map_err(sql_error(path, "read the head"))?;
            write_anchor(&self.head_path, seq as u64, &hash)?;
        }
        // Nothing was written to the database; ending the transaction only releases the lock.
        tx.rollback().map_err(sql_error(path, "release the lock"))
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

    /// Checks every record's hash and link, then the head anchor, and names the first problem.
    ///
    /// Records are walked in `seq` order (ties, possible only in a table rebuilt without its
    /// primary key, in rowid order). `seq` order is the order that counts: `seq` is covered by
    /// the hash while the rowid is not (in a rebuilt table it can be anything, and `VACUUM` may
    /// renumber it), and in the table as created the two are the same. For each record, with
    /// `expected` = the previous record's `seq` + 1 and `link` = its hash (1 and 64 zeros for
    /// the first), in this order:
    /// 1. it matches its hash, links to `link` and has `seq == expected`: fine, go on;
    /// 2. `seq` below `expected` (a duplicate): `Inserted` at it if it matches its own hash,
    ///    else `Changed` at the `seq` it had (its successor's `seq` - 1, found by the hash);
    /// 3. the next record links to `link`, i.e. past this one: `Inserted` at this one;
    /// 4. it claims the same predecessor as the previous record: `Inserted` at the previous one;
    /// 5. `seq` above `expected`: if it links to `link`, `Inserted` (consistent) or `Changed`
    ///    (not); if the record it links to is elsewhere in the table under another `seq`,
    ///    `Changed` at `expected`; otherwise records are missing: `Removed` at this one;
    /// 6. `seq == expected` but something is off: `Changed` at this one, except when it
    ///    matches its hash and its own hash is confirmed by its successor or the anchor — then
    ///    the *previous* record was rewritten with a recomputed hash: `Changed` at that one —
    ///    and when its content matches a higher `seq` — later records were renumbered to close
    ///    a gap: `Removed` at this one.
    ///
    /// If the whole chain holds, the anchor is checked: the log ending before the anchored
    /// record, or a missing anchor next to records, is `Truncated` at the first missing `seq`;
    /// an anchored record whose hash differs is `Changed` at it. A damaged anchor file is an
    /// error ([`AuditError::AnchorDamaged`]).
    pub fn verify(&self) -> Result<Verification, AuditError> {
        // The anchor is read before the records: anchors are written after their record
        // commits, so records read afterwards reach at least as far as the anchor even while
        // another process appends.
        let anchor = match read_anchor(&self.head_path)? {
            AnchorState::Missing => None,
            AnchorState::At(anchor) => Some(anchor),
            AnchorState::Damaged(problem) => {
                return Err(AuditError::AnchorDamaged {
                    path: self.head_path.clone(),
                    problem,
                });
            }
        };
        let rows = self.raw_rows()?;
        Ok(analyse(&rows, anchor.as_ref()))
    }

    /// Every row as stored, sorted by (seq, rowid), read without assuming the column types so
    /// that a tampered row is still a row to judge.
    fn raw_rows(&self) -> Result<Vec<RawRow>, AuditError> {
        let read = || -> rusqlite::Result<Vec<RawRow>> {
            let mut stmt = self
                .conn
                .prepare(&format!("SELECT rowid, {COLUMNS} FROM audit"))?;
            let rows = stmt.query_map([], |row| {
                let mut typed = true;
                let rowid = row.get(0)?;
                let seq = match row.get_ref(1)? {
                    ValueRef::Integer(i) => i,
                    other => {
                        typed = false;
                        String::from_utf8_lossy(&value_bytes(other))
                            .trim()
                            .parse()
                            .unwrap_or(i64::MAX)
                    }
                };
                let mut required = |i| row.get_ref(i).map(|v| required_bytes(v, &mut typed));
                let time = required(2)?;
                let actor = required(3)?;
                let action = required(4)?;
                let counts = required(7)?;
                let outcome = required(8)?;
                let prev_hash = required(10)?;
                let hash = required(11)?;
                let mut optional = |i| row.get_ref(i).map(|v| optional_bytes(v, &mut typed));
                let pipeline = optional(5)?;
                let policy_fingerprint = optional(6)?;
                let detail = optional(9)?;
                Ok(RawRow {
                    rowid,
                    seq,
                    typed,
                    time,
                    actor,
                    action,
                    pipeline,
                    policy_fingerprint,
                    counts,
                    outcome,
                    detail,
                    prev_hash,
                    hash,
                })
            })?;
            rows.collect()
        };
        let mut rows = read().map_err(sql_error(&self.path, "read the records"))?;
        rows.sort_by_key(|r| (r.seq, r.rowid));
        Ok(rows)
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

/// Counts as canonical JSON: a `BTreeMap` serializes with sorted keys and no whitespace.
#[allow(clippy::expect_used)] // Serializing string keys and integers cannot fail.
fn canonical_counts(counts: &BTreeMap<String, u64>) -> String {
    serde_json::to_string(counts).expect("a map of strings to integers always serializes")
}

/// The fields as the hash sees them: the bytes as stored.
struct HashInput<'a> {
    seq: u64,
    time: &'a [u8],
    actor: &'a [u8],
    action: &'a [u8],
    pipeline: Option<&'a [u8]>,
    policy_fingerprint: Option<&'a [u8]>,
    counts: &'a [u8],
    outcome: &'a [u8],
    detail: Option<&'a [u8]>,
    prev_hash: &'a [u8],
}

fn record_hash(input: &HashInput<'_>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(HASH_DOMAIN);
    hasher.update(input.seq.to_be_bytes());
    for field in [
        Some(input.time),
        Some(input.actor),
        Some(input.action),
        input.pipeline,
        input.policy_fingerprint,
        Some(input.counts),
        Some(input.outcome),
        input.detail,
        Some(input.prev_hash),
    ] {
        match field {
            None => hasher.update([0u8]),
            Some(bytes) => {
                hasher.update([1u8]);
                hasher.update((bytes.len() as u64).to_be_bytes());
                hasher.update(bytes);
            }
        }
    }
    hex::encode(hasher.finalize())
}

/// A row as stored. `typed` is false when a column holds a type the schema does not allow
/// (possible only in a table rebuilt without `STRICT`); such a row never matches its hash.
#[derive(Debug, Clone)]
struct RawRow {
    rowid: i64,
    seq: i64,
    typed: bool,
    time: Vec<u8>,
    actor: Vec<u8>,
    action: Vec<u8>,
    pipeline: Option<Vec<u8>>,
    policy_fingerprint: Option<Vec<u8>>,
    counts: Vec<u8>,
    outcome: Vec<u8>,
    detail: Option<Vec<u8>>,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

impl RawRow {
    fn hash_at(&self, seq: i64) -> String {
        record_hash(&HashInput {
            seq: seq as u64,
            time: &self.time,
            actor: &self.actor,
            action: &self.action,
            pipeline: self.pipeline.as_deref(),
            policy_fingerprint: self.policy_fingerprint.as_deref(),
            counts: &self.counts,
            outcome: &self.outcome,
            detail: self.detail.as_deref(),
            prev_hash: &self.prev_hash,
        })
    }

    /// Whether the content, numbered `seq`, matches the stored hash.
    fn matches_at(&self, seq: i64) -> bool {
        self.typed && self.hash_at(seq).as_bytes() == self.hash.as_slice()
    }

    fn to_record(&self) -> Result<AuditRecord, String> {
        if !self.typed {
            return Err("a column holds a value of the wrong type".into());
        }
        let text = |bytes: &[u8], field: &str| {
            String::from_utf8(bytes.to_vec()).map_err(|_| format!("`{field}` is not UTF-8"))
        };
        let optional = |bytes: &Option<Vec<u8>>, field: &str| {
            bytes.as_deref().map(|b| text(b, field)).transpose()
        };
        Ok(AuditRecord {
            seq: u64::try_from(self.seq).map_err(|_| "`seq` is negative".to_string())?,
            time: text(&self.time, "time")?
                .parse()
                .map_err(|_| "`time` is not an RFC 3339 timestamp".to_string())?,
            actor: text(&self.actor, "actor")?,
            action: text(&self.action, "action")?,
            pipeline: optional(&self.pipeline, "pipeline")?,
            policy_fingerprint: optional(&self.policy_fingerprint, "policy_fingerprint")?,
            counts: serde_json::from_slice(&self.counts)
                .map_err(|_| "`counts` is not a JSON object of counts".to_string())?,
            outcome: text(&self.outcome, "outcome")?,
            detail: optional(&self.detail, "detail")?,
            prev_hash: text(&self.prev_hash, "prev_hash")?,
            hash: text(&self.hash, "hash")?,
        })
    }
}

fn value_bytes(value: ValueRef<'_>) -> Vec<u8> {
    match value {
        ValueRef::Null => Vec::new(),
        ValueRef::Integer(i) => i.to_string().into_bytes(),
        ValueRef::Real(f) => f.to_string().into_bytes(),
        ValueRef::Text(b) | ValueRef::Blob(b) => b.to_vec(),
    }
}

fn required_bytes(value: ValueRef<'_>, typed: &mut bool) -> Vec<u8> {
    if !matches!(value, ValueRef::Text(_)) {
        *typed = false;
    }
    value_bytes(value)
}

fn optional_bytes(value: ValueRef<'_>, typed: &mut bool) -> Option<Vec<u8>> {
    match value {
        ValueRef::Null => None,
        ValueRef::Text(b) => Some(b.to_vec()),
        other => {
            *typed = false;
            Some(value_bytes(other))
        }
    }
}

/// Walks the chain and then checks the anchor; see [`AuditLog::verify`] for the rules.
fn analyse(rows: &[RawRow], anchor: Option<&Anchor>) -> Verification {
    let chain = first_chain_problem(rows, anchor);
    let accepted = match chain {
        Some((_, _, accepted)) => &rows[..accepted],
        None => rows,
    };
    // The anchored record, if it is among the records the chain accepted, must match it.
    let anchor_problem = anchor.and_then(|a| {
        let seq = i64::try_from(a.seq).ok()?;
        let row = accepted.iter().find(|r| r.seq == seq)?;
        (row.hash != a.hash.as_bytes()).then_some((seq, Tamper::Changed))
    });
    let broken = |seq: i64, problem| Verification::Broken {
        seq: u64::try_from(seq).unwrap_or(0),
        problem,
    };
    match (chain, anchor_problem) {
        (Some((seq, problem, _)), Some((anchor_seq, anchor_problem))) => {
            if anchor_seq < seq {
                broken(anchor_seq, anchor_problem)
            } else {
                broken(seq, problem)
            }
        }
        (Some((seq, problem, _)), None) => broken(seq, problem),
        (None, Some((seq, problem))) => broken(seq, problem),
        (None, None) => {
            let records = rows.len() as u64;
            let head_seq = rows.last().map_or(0, |r| r.seq);
            let missing = match anchor {
                None => records > 0,
                Some(a) => a.seq > records,
            };
            if missing {
                broken(head_seq + 1, Tamper::Truncated)
            } else {
                Verification::Intact {
                    records,
                    head: rows.last().map_or_else(
                        || GENESIS_HASH.to_string(),
                        |r| String::from_utf8_lossy(&r.hash).into_owned(),
                    ),
                }
            }
        }
    }
}

/// The first problem in the chain: (seq to name, what, how many rows were accepted before it).
fn first_chain_problem(rows: &[RawRow], anchor: Option<&Anchor>) -> Option<(i64, Tamper, usize)> {
    // The seq a record had, judged by who links to its hash: its successor, or the anchor.
    let original_seq = |i: usize| -> i64 {
        let hash = &rows[i].hash;
        if let Some(successor) = rows
            .iter()
            .enumerate()
            .find(|(j, s)| *j != i && &s.prev_hash == hash)
        {
            return successor.1.seq - 1;
        }
        match anchor {
            Some(a) if a.hash.as_bytes() == hash.as_slice() => a.seq as i64,
            _ => rows[i].seq,
        }
    };
    // Whether something other than the record itself vouches for its hash.
    let confirmed = |i: usize| -> bool {
        let row = &rows[i];
        rows.get(i + 1)
            .is_some_and(|next| next.prev_hash == row.hash)
            || anchor.is_some_and(|a| a.seq as i64 == row.seq && a.hash.as_bytes() == row.hash)
    };

    let genesis = GENESIS_HASH.as_bytes();
    let mut prev: Option<&RawRow> = None;
    for (i, row) in rows.iter().enumerate() {
        let (expected, link) = match prev {
            Some(p) => (p.seq.saturating_add(1), p.hash.as_slice()),
            None => (1, genesis),
        };
        let consistent = row.matches_at(row.seq);
        let linked = row.prev_hash == link;
        // 1. Fine.
        if consistent && linked && row.seq == expected {
            prev = Some(row);
            continue;
        }
        let found = |seq: i64, tamper| Some((seq, tamper, i));
        // 2. A duplicate (or, for the first record, a number below 1).
        if row.seq < expected {
            return if consistent {
                found(row.seq, Tamper::Inserted)
            } else {
                found(original_seq(i), Tamper::Changed)
            };
        }
        // 3. The next record links past this one, to the one before it.
        if rows.get(i + 1).is_some_and(|next| next.prev_hash == link) {
            return found(row.seq, Tamper::Inserted);
        }
        // 4. This record claims the previous record's predecessor: the previous one was slipped
        //    in (rule 3 has ruled out that the successor vouches for the previous one).
        if let Some(p) = prev
            && row.prev_hash == p.prev_hash
        {
            return found(p.seq, Tamper::Inserted);
        }
        // 5. A gap in the numbers.
        if row.seq > expected {
            if linked {
                return if consistent {
                    found(row.seq, Tamper::Inserted)
                } else {
                    found(original_seq(i), Tamper::Changed)
                };
            }
            let moved = row.seq == expected + 1
                && rows[i + 1..]
                    .iter()
                    .any(|other| other.hash == row.prev_hash);
            return if moved {
                found(expected, Tamper::Changed)
            } else {
                found(row.seq, Tamper::Removed)
            };
        }
        // 6. The right number, but the content or the link is off.
        if !linked {
            if consistent && confirmed(i) {
                if let Some(p) = prev {
                    return found(p.seq, Tamper::Changed);
                }
            } else if !consistent {
                let bound = row.seq.saturating_add(rows.len() as i64 + 1);
                if (row.seq + 1..=bound).any(|seq| row.matches_at(seq)) {
                    return found(row.seq, Tamper::Removed);
                }
            }
        }
        return found(row.seq, Tamper::Changed);
    }
    None
}

/// The last record the log vouches for, kept outside the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Anchor {
    seq: u64,
    hash: String,
}

enum AnchorState {
    Missing,
    Damaged(String),
    At(Anchor),
}

fn read_anchor(path: &Path) -> Result<AnchorState, AuditError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(AnchorState::Missing),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return Ok(AnchorState::Damaged("not UTF-8".into()));
        }
        Err(source) => {
            return Err(AuditError::Anchor {
                path: path.to_path_buf(),
                action: "reading",
                source,
            });
        }
    };
    let anchor: Anchor = match serde_json::from_str(&text) {
        Ok(anchor) => anchor,
        Err(_) => return Ok(AnchorState::Damaged("not a head anchor".into())),
    };
    let hex_hash = anchor.hash.len() == 64
        && anchor
            .hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex_hash || (anchor.seq == 0 && anchor.hash != GENESIS_HASH) || anchor.seq > i64::MAX as u64
    {
        return Ok(AnchorState::Damaged(
            "not a valid sequence number and hash".into(),
        ));
    }
    Ok(AnchorState::At(anchor))
}

/// Writes the anchor atomically: a 0600 temporary file, synced, renamed over the old one, then
/// the directory synced so the rename survives a crash. Callers hold the database's write lock,
/// so a fixed temporary name cannot collide.
fn write_anchor(path: &Path, seq: u64, hash: &str) -> Result<(), AuditError> {
    let failed = |action| {
        move |source| AuditError::Anchor {
            path: path.to_path_buf(),
            action,
            source,
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(HEAD_TMP_FILE);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed("removing a stale temporary file")(e)),
    }
    let json = serde_json::to_string(&Anchor {
        seq,
        hash: hash.to_string(),
    })
    .map_err(|e| failed("encoding the head")(io::Error::other(e)))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(failed("creating"))?;
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(failed("setting the mode of"))?;
    file.write_all(json.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(failed("writing"))?;
    drop(file);
    fs::rename(&tmp, path).map_err(failed("replacing"))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(failed("syncing the directory of"))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn sample(i: u64) -> NewRecord {
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
    fn log_with(n: u64) -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path()).unwrap();
        for i in 1..=n {
            log.append(sample(i)).unwrap();
        }
        (dir, log)
    }

    /// Tampers with the database directly, as an attacker with file access would.
    fn sql(dir: &tempfile::TempDir, statements: &str) {
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(statements).unwrap();
    }

    fn insert(dir: &tempfile::TempDir, r: &AuditRecord) {
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
    fn forged(seq: u64, prev_hash: &str) -> AuditRecord {
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

    fn broken(log: &AuditLog) -> (u64, Tamper) {
        match log.verify().unwrap() {
            Verification::Broken { seq, problem } => (seq, problem),
            intact => panic!("expected a broken log, got {intact:?}"),
        }
    }

    fn hash_of(log: &AuditLog, seq: u64) -> String {
        log.list().unwrap()[seq as usize - 1].hash.clone()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn appended_records_list_back_in_order_with_their_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path()).unwrap();
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
    fn each_record_links_to_the_hash_of_the_one_before() {
        let (_dir, log) = log_with(5);
        let records = log.list().unwrap();
        assert_eq!(records[0].prev_hash, GENESIS_HASH);
        for pair in records.windows(2) {
            assert_eq!(pair[1].prev_hash, pair[0].hash);
        }
        for r in &records {
            assert_eq!(r.hash, r.compute_hash());
            assert_eq!(r.hash.len(), 64);
        }
    }

    #[test]
    fn the_hash_separates_fields_unambiguously() {
        let a = forged(1, GENESIS_HASH);
        let mut b = a.clone();
        b.actor = "mallorykeys".into();
        b.action = ".create".into();
        assert_ne!(
            a.compute_hash(),
            b.compute_hash(),
            "text moved across a field boundary"
        );
        let mut c = a.clone();
        c.detail = Some(String::new());
        let mut d = a.clone();
        d.detail = None;
        assert_ne!(c.compute_hash(), d.compute_hash(), "empty is not absent");
    }

    #[test]
    fn store_and_anchor_are_private_files() {
        let (dir, log) = log_with(2);
        assert_eq!(mode(&dir.path().join(DB_FILE)), 0o600);
        assert_eq!(mode(&dir.path().join(HEAD_FILE)), 0o600);
        drop(log);
        fs::set_permissions(dir.path().join(DB_FILE), fs::Permissions::from_mode(0o644)).unwrap();
        AuditLog::open(dir.path()).unwrap();
        assert_eq!(
            mode(&dir.path().join(DB_FILE)),
            0o600,
            "a loose file is tightened"
        );
        assert!(!dir.path().join(HEAD_TMP_FILE).exists());
    }

    #[test]
    fn an_untouched_log_is_intact() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path()).unwrap();
        assert_eq!(
            log.verify().unwrap(),
            Verification::Intact {
                records: 0,
                head: GENESIS_HASH.into()
            }
        );
        for i in 1..=6 {
            let r = log.append(sample(i)).unwrap();
            assert_eq!(
                log.verify().unwrap(),
                Verification::Intact {
                    records: i,
                    head: r.hash
                }
            );
        }
    }

    #[test]
    fn a_reopened_log_continues_the_sequence() {
        let (dir, log) = log_with(3);
        let head = hash_of(&log, 3);
        drop(log);
        let mut log = AuditLog::open(dir.path()).unwrap();
        let next = log.append(sample(4)).unwrap();
        assert_eq!(next.seq, 4);
        assert_eq!(next.prev_hash, head);
        assert!(log.verify().unwrap().is_intact());
    }

    #[test]
    fn an_edited_record_is_named_changed() {
        let (dir, log) = log_with(6);
        sql(&dir, "UPDATE audit SET actor = 'mallory' WHERE seq = 3");
        assert_eq!(broken(&log), (3, Tamper::Changed));
    }

    #[test]
    fn the_hash_covers_every_column() {
        let edits = [
            ("seq", "1000"),
            ("seq", "0"),
            ("time", "'2001-01-01T00:00:00Z'"),
            ("actor", "'mallory'"),
            ("action", "'validate'"),
            ("pipeline", "'other'"),
            ("pipeline", "NULL"),
            ("policy_fingerprint", "'abcd'"),
            ("policy_fingerprint", "NULL"),
            ("counts", "'{\"read\":1,\"written\":9}'"),
            ("counts", "'{\"read\": 30, \"written\": 27}'"),
            ("outcome", "'failure'"),
            ("detail", "'other'"),
            ("detail", "NULL"),
            ("prev_hash", &format!("'{}'", "ab".repeat(32))),
            ("hash", &format!("'{}'", "cd".repeat(32))),
        ];
        let columns: Vec<&str> = COLUMNS.split(", ").map(str::trim).collect();
        for column in &columns {
            assert!(
                edits.iter().any(|(c, _)| c == column),
                "{column} is not tested"
            );
        }
        for (column, value) in edits {
            // Record 3 has every optional column set, so NULL is a change too.
            let (dir, log) = log_with(6);
            sql(
                &dir,
                &format!("UPDATE audit SET {column} = {value} WHERE seq = 3"),
            );
            assert_eq!(broken(&log), (3, Tamper::Changed), "{column} = {value}");
        }
    }

    #[test]
    fn a_record_rewritten_with_a_recomputed_hash_is_named() {
        let (dir, log) = log_with(6);
        let mut r = log.list().unwrap()[2].clone();
        r.actor = "mallory".into();
        sql(
            &dir,
            &format!(
                "UPDATE audit SET actor = 'mallory', hash = '{}' WHERE seq = 3",
                r.compute_hash()
            ),
        );
        assert_eq!(broken(&log), (3, Tamper::Changed));
    }

    #[test]
    fn a_rewritten_newest_record_is_caught_by_the_anchor() {
        let (dir, log) = log_with(6);
        let prev = hash_of(&log, 5);
        sql(&dir, "DELETE FROM audit WHERE seq = 6");
        insert(&dir, &forged(6, &prev));
        assert_eq!(broken(&log), (6, Tamper::Changed));
    }

    #[test]
    fn a_removed_record_is_named_by_the_record_after_the_gap() {
        let (dir, log) = log_with(6);
        sql(&dir, "DELETE FROM audit WHERE seq = 3");
        assert_eq!(broken(&log), (4, Tamper::Removed));

        let (dir, log) = log_with(6);
        sql(&dir, "DELETE FROM audit WHERE seq IN (3, 4)");
        assert_eq!(broken(&log), (5, Tamper::Removed));

        let (dir, log) = log_with(6);
        sql(&dir, "DELETE FROM audit WHERE seq = 1");
        assert_eq!(broken(&log), (2, Tamper::Removed));
    }

    #[test]
    fn a_removal_hidden_by_renumbering_is_still_a_removal() {
        let (dir, log) = log_with(6);
        sql(
            &dir,
            "DELETE FROM audit WHERE seq = 3; UPDATE audit SET seq = seq - 1 WHERE seq > 3",
        );
        assert_eq!(broken(&log), (3, Tamper::Removed));
    }

    #[test]
    fn an_inserted_record_is_named() {
        // Records 4.. move up by one; a forged record with a correct hash of its own takes
        // seq 4, linked to record 3, while the real record 4 still links to 3.
        let (dir, log) = log_with(6);
        let h3 = hash_of(&log, 3);
        sql(
            &dir,
            "UPDATE audit SET seq = seq + 100 WHERE seq >= 4;
             UPDATE audit SET seq = seq - 99 WHERE seq >= 100;",
        );
        insert(&dir, &forged(4, &h3));
        assert_eq!(broken(&log), (4, Tamper::Inserted));
    }

    #[test]
    fn an_inserted_copy_with_a_stale_hash_is_named() {
        // As the CLI test does it: the forgery copies record 3's hash instead of computing one.
        let (dir, log) = log_with(6);
        sql(
            &dir,
            "UPDATE audit SET seq = seq + 100 WHERE seq >= 4;
             UPDATE audit SET seq = seq - 99 WHERE seq >= 100;
             INSERT INTO audit (seq, time, actor, action, pipeline, policy_fingerprint, counts,
                                outcome, detail, prev_hash, hash)
               SELECT 4, time, 'mallory', action, pipeline, policy_fingerprint, counts, outcome,
                      detail, hash, hash FROM audit WHERE seq = 3;",
        );
        assert_eq!(broken(&log), (4, Tamper::Inserted));
    }

    #[test]
    fn a_duplicate_seq_in_a_rebuilt_table_is_named_inserted() {
        for forged_first in [false, true] {
            let (dir, log) = log_with(6);
            let h3 = hash_of(&log, 3);
            // Rebuild the table without its primary key, so that two records can share seq 4;
            // with `forged_first` the forgery also gets the lower rowid.
            sql(
                &dir,
                "ALTER TABLE audit RENAME TO genuine;
                 CREATE TABLE audit (seq INTEGER, time TEXT, actor TEXT, action TEXT, pipeline TEXT,
                     policy_fingerprint TEXT, counts TEXT, outcome TEXT, detail TEXT,
                     prev_hash TEXT, hash TEXT);",
            );
            if forged_first {
                sql(
                    &dir,
                    "INSERT INTO audit SELECT * FROM genuine WHERE seq < 4",
                );
                insert(&dir, &forged(4, &h3));
                sql(
                    &dir,
                    "INSERT INTO audit SELECT * FROM genuine WHERE seq >= 4",
                );
            } else {
                sql(&dir, "INSERT INTO audit SELECT * FROM genuine");
                insert(&dir, &forged(4, &h3));
            }
            sql(&dir, "DROP TABLE genuine");
            assert_eq!(
                broken(&log),
                (4, Tamper::Inserted),
                "forged first: {forged_first}"
            );
        }
    }

    #[test]
    fn a_removed_tail_is_caught_by_the_head_anchor() {
        let (dir, log) = log_with(6);
        sql(&dir, "DELETE FROM audit WHERE seq = 6");
        assert_eq!(broken(&log), (6, Tamper::Truncated));
        sql(&dir, "DELETE FROM audit WHERE seq = 5");
        assert_eq!(broken(&log), (5, Tamper::Truncated));
        sql(&dir, "DELETE FROM audit");
        assert_eq!(broken(&log), (1, Tamper::Truncated));
    }

    #[test]
    fn appending_after_a_truncation_keeps_the_evidence() {
        let (dir, mut log) = log_with(6);
        let anchor = fs::read_to_string(dir.path().join(HEAD_FILE)).unwrap();
        sql(&dir, "DELETE FROM audit WHERE seq = 6");
        let r = log.append(sample(7)).unwrap();
        assert_eq!(r.seq, 6, "the record is still written");
        log.append(sample(8)).unwrap();
        assert_eq!(broken(&log), (6, Tamper::Changed));
        assert_eq!(
            fs::read_to_string(dir.path().join(HEAD_FILE)).unwrap(),
            anchor
        );
    }

    #[test]
    fn a_removed_anchor_is_reported_and_not_recreated() {
        let (dir, mut log) = log_with(6);
        fs::remove_file(dir.path().join(HEAD_FILE)).unwrap();
        assert_eq!(broken(&log), (7, Tamper::Truncated));
        log.append(sample(7)).unwrap();
        drop(log);
        let log = AuditLog::open(dir.path()).unwrap();
        assert!(!dir.path().join(HEAD_FILE).exists());
        assert_eq!(broken(&log), (8, Tamper::Truncated));
    }

    #[test]
    fn a_damaged_anchor_is_an_error_that_says_what_to_do() {
        let (dir, log) = log_with(2);
        fs::write(
            dir.path().join(HEAD_FILE),
            "{\"seq\": 2, \"hash\": \"nope\"}",
        )
        .unwrap();
        let err = log.verify().unwrap_err();
        assert!(matches!(err, AuditError::AnchorDamaged { .. }), "{err:?}");
        assert!(
            err.to_string().contains("restore it from a backup"),
            "{err}"
        );
    }

    #[test]
    fn an_unreadable_record_fails_list_but_verify_names_it() {
        let (dir, log) = log_with(4);
        sql(&dir, "UPDATE audit SET time = 'yesterday' WHERE seq = 2");
        let err = log.list().unwrap_err();
        assert!(matches!(err, AuditError::Corrupt { seq: 2, .. }), "{err:?}");
        assert!(err.to_string().contains("hushflow audit verify"), "{err}");
        assert_eq!(broken(&log), (2, Tamper::Changed));
    }

    #[test]
    fn concurrent_appenders_do_not_fork_the_chain() {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let dir = Arc::clone(&dir);
                std::thread::spawn(move || {
                    let mut log = AuditLog::open(dir.path()).unwrap();
                    for i in 0..15 {
                        log.append(sample(t * 100 + i)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let log = AuditLog::open(dir.path()).unwrap();
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
    fn verify_while_another_connection_appends_sees_no_tampering() {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        AuditLog::open(dir.path()).unwrap();
        let writer = {
            let dir = Arc::clone(&dir);
            std::thread::spawn(move || {
                let mut log = AuditLog::open(dir.path()).unwrap();
                for i in 0..40 {
                    log.append(sample(i)).unwrap();
                }
            })
        };
        let log = AuditLog::open(dir.path()).unwrap();
        while !writer.is_finished() {
            let v = log.verify().unwrap();
            assert!(v.is_intact(), "{v}");
        }
        writer.join().unwrap();
        assert!(log.verify().unwrap().is_intact());
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
        let err = AuditLog::open(Path::new("/nonexistent/state")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("audit store /nonexistent/state/audit.db could not be opened"),
            "{err}"
        );
    }
}
