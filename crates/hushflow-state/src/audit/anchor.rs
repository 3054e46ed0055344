//! The head anchor `audit.head`: the last record the log vouches for, kept outside the
//! database, and how appends move it.
//!
//! Deleting the newest records leaves a perfectly consistent chain, so the chain alone cannot
//! show it. After each append the log writes `<state_dir>/audit.head` (0600, via a temporary
//! file and rename) with the last `seq` and `hash`; `verify` reports
//! [`Tamper::Truncated`](super::Tamper::Truncated) when the database ends before the record the
//! anchor names, and [`Tamper::Changed`](super::Tamper::Changed) when that
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

use super::{AuditError, AuditLog, GENESIS_HASH, sql_error};
use rusqlite::{TransactionBehavior, params};
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub(super) const HEAD_TMP_FILE: &str = "audit.head.tmp";

impl AuditLog {
    /// Moves the head anchor to the current head, under the write lock so that concurrent
    /// appenders never move it backwards, and only while the record it names is still there
    /// unchanged: an anchor that no longer matches is evidence and stays as it is.
    pub(super) fn advance_anchor(&mut self) -> Result<(), AuditError> {
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
}

/// The last record the log vouches for, kept outside the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Anchor {
    pub(super) seq: u64,
    pub(super) hash: String,
}

pub(super) enum AnchorState {
    Missing,
    Damaged(String),
    At(Anchor),
}

pub(super) fn read_anchor(path: &Path) -> Result<AnchorState, AuditError> {
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
pub(super) fn write_anchor(path: &Path, seq: u64, hash: &str) -> Result<(), AuditError> {
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;

    #[test]
    fn a_rewritten_newest_record_is_caught_by_the_anchor() {
        let (dir, log) = log_with(6);
        let prev = hash_of(&log, 5);
        sql(&dir, "DELETE FROM audit WHERE seq = 6");
        insert(&dir, &forged(6, &prev));
        assert_eq!(broken(&log), (6, Tamper::Changed));
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
}
