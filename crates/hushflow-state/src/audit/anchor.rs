//! The head anchor `audit.head`: the last record the log vouches for, kept outside the
//! database, how appends move it, and its tag.
//!
//! # The head
//!
//! Deleting the newest records leaves a perfectly consistent chain, so the chain alone cannot
//! show it. After each append the log writes `<state_dir>/audit.head` (0600, via a temporary
//! file and rename) with the last `seq` (which, in an intact log, is the record count) and
//! `hash`; `verify` reports [`Tamper::Truncated`](super::Tamper::Truncated) when the database
//! ends before the record the anchor names, and [`Tamper::Changed`](super::Tamper::Changed)
//! when that record's hash differs from the anchor's. The anchor is written after the record
//! commits (a crash in between leaves it one record behind, which is fine: the anchor only
//! vouches for a prefix), under the database's write lock (so concurrent appenders never move it
//! backwards), and only if the record it names is still there unchanged. Once the anchor stops
//! matching, appends still record what happened but leave the anchor alone: the evidence is not
//! overwritten by the next run. A new log starts with an anchor at seq 0 written by
//! [`AuditLog::open`], so a missing anchor next to records means it was removed.
//!
//! After an investigation, start a new log by moving `audit.db` and `audit.head` aside (keep
//! them as evidence); the next [`AuditLog::open`] creates both afresh.
//!
//! # The tag
//!
//! Everything above lives in the state directory, so whoever can write it can also rewrite the
//! chain and the head consistently. The head therefore also carries a *checkpoint*: a
//! `(seq, hash)` the log vouched for, with an HMAC-SHA256 tag under the [`AnchorKey`], a key
//! derived from the master key (or given on its own) and never stored in the state directory:
//!
//! ```json
//! {"seq":8,"hash":"<hex>","checkpoint":{"seq":8,"hash":"<hex>","key":"<key id>","tag":"<hex>"}}
//! ```
//!
//! - `tag` = HMAC-SHA256(anchor key, `hushflow audit anchor v1\n` ‖ `seq` as 8 big-endian bytes
//!   ‖ `hash` as its 64 hex characters); the anchor key = HKDF-SHA256(master key, no salt, info
//!   `hushflow audit anchor v1`);
//! - `key` = the first 8 bytes, hex, of HMAC-SHA256(anchor key, `hushflow audit anchor key id`):
//!   it tells "tagged under another key" from "forged" in reports, nothing more (it is not
//!   covered by the tag, and is not needed to check it).
//!
//! The rules (see [`AuditLog::verify_anchor`] for what is checked):
//! 1. An append made with the key (the log opened with one) moves the checkpoint to the new
//!    record only if the checkpoint's tag verifies under that key *and* the chain holds from the
//!    checkpoint's record to the new one (each record matches its hash, links to the one before,
//!    and the numbers run on without a gap). A head that is tagged and current, the normal
//!    case, so costs reading one record.
//! 2. An append made without the key (or with another key) moves the head's `seq` and `hash` as
//!    before and keeps the checkpoint as it was. So records written without the key are not
//!    vouched for by the tag until the next append with the key re-tags them under rule 1; until
//!    then `verify --anchor` names them, and removing them is not detectable by the tag.
//! 3. A head without a checkpoint (a new log, one from before anchoring, or one whose checkpoint
//!    was removed) is never tagged by an append, nor by [`AuditLog::open`]: an attacker who
//!    empties the table, or removes the whole store, or rewrites the chain, and writes an
//!    untagged head would otherwise have it blessed by the next run. Tagging it is a deliberate
//!    act, [`AuditLog::tag_head`] (`hushflow audit anchor`), once per log, after checking it.
//!    The same holds for a checkpoint tagged under another key.

use super::rows::{RawRow, read_raw_rows};
use super::{AuditError, AuditLog, GENESIS_HASH, sql_error};
use crate::atomic_file::{self, AtomicFile};
use hushflow_crypto::{HmacSha256, MasterKey};
use hushflow_secrets::SecretValue;
use rusqlite::{Connection, TransactionBehavior};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// The HKDF `info` that derives the anchor key from the master key (or from a separate anchor
/// secret).
pub const ANCHOR_KEY_INFO: &[u8] = b"hushflow audit anchor v1";
const TAG_DOMAIN: &[u8] = b"hushflow audit anchor v1\n";
const KEY_ID_INPUT: &[u8] = b"hushflow audit anchor key id";

/// The key that tags the head anchor: HKDF-SHA256 of the master key (or of a separate secret
/// given for the purpose) with the info [`ANCHOR_KEY_INFO`]. It is never written anywhere; the
/// head carries only tags made with it and a short id that names it without revealing it.
#[derive(Clone)]
pub struct AnchorKey {
    mac: HmacSha256,
    id: String,
}

impl AnchorKey {
    /// The anchor key of a master key. A separate anchor secret in the master key's format
    /// (base64 of 32 random bytes, parsed with [`MasterKey::from_base64`]) goes through here
    /// too.
    pub fn from_master(master: &MasterKey) -> AnchorKey {
        AnchorKey::from_material(&master.derive_key(ANCHOR_KEY_INFO))
    }

    fn from_material(key: &SecretValue) -> AnchorKey {
        let mac = HmacSha256::new(key);
        let id = hex::encode(&mac.mac(KEY_ID_INPUT)[..8]);
        AnchorKey { mac, id }
    }

    /// 16 hex digits naming the key (not secret).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn message(seq: u64, hash: &str) -> Vec<u8> {
        let mut message = Vec::with_capacity(TAG_DOMAIN.len() + 8 + hash.len());
        message.extend_from_slice(TAG_DOMAIN);
        message.extend_from_slice(&seq.to_be_bytes());
        message.extend_from_slice(hash.as_bytes());
        message
    }

    pub(super) fn checkpoint(&self, seq: u64, hash: &str) -> Checkpoint {
        Checkpoint {
            seq,
            hash: hash.to_string(),
            key: self.id.clone(),
            tag: hex::encode(self.mac.mac(&AnchorKey::message(seq, hash))),
        }
    }

    /// Whether the checkpoint's tag was made with this key (constant time).
    pub fn verifies(&self, checkpoint: &Checkpoint) -> bool {
        hex::decode(&checkpoint.tag).is_ok_and(|tag| {
            self.mac
                .verify(&AnchorKey::message(checkpoint.seq, &checkpoint.hash), &tag)
        })
    }
}

impl fmt::Debug for AnchorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnchorKey").field("id", &self.id).finish()
    }
}

/// What [`AuditLog::tag_head`] did: the head it tagged and what the anchor was before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadTagged {
    /// The record count the tag vouches for (the last record's `seq`; 0 for an empty log).
    pub records: u64,
    /// The last record's hash (64 zeros for an empty log).
    pub hash: String,
    /// The anchor check before tagging (never `Truncated` or `Changed`: those are refused).
    pub before: super::AnchorCheck,
}

impl AuditLog {
    /// Moves the head anchor to the current head, under the write lock so that concurrent
    /// appenders never move it backwards, and only while the record it names is still there
    /// unchanged: an anchor that no longer matches is evidence and stays as it is. With the key,
    /// the checkpoint moves too when its tag verifies and the chain holds from it to the head;
    /// otherwise the checkpoint is kept as it is (see the module documentation).
    pub(super) fn advance_anchor(&mut self) -> Result<(), AuditError> {
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_error(path, "lock for the head anchor"))?;
        let anchor = match read_anchor(&self.head_path)? {
            AnchorState::Missing | AnchorState::Damaged(_) => None,
            AnchorState::At(anchor) => Some(anchor),
        };
        if let Some(anchor) = anchor {
            let vouched = anchor.seq == 0 || {
                let matching: i64 = tx
                    .query_row(
                        "SELECT count(*) FROM audit WHERE seq = ?1 AND hash = ?2",
                        rusqlite::params![anchor.seq as i64, anchor.hash],
                        |row| row.get(0),
                    )
                    .map_err(sql_error(path, "check the head anchor"))?;
                matching == 1
            };
            if vouched {
                let (seq, hash): (i64, String) = tx
                    .query_row(
                        "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                        [],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .map_err(sql_error(path, "read the head"))?;
                let seq = seq as u64;
                let retagged = match (&self.key, &anchor.checkpoint) {
                    (Some(key), Some(checkpoint)) if key.verifies(checkpoint) => {
                        chain_holds_from(&tx, path, checkpoint)?
                            .filter(|(last, last_hash)| *last == seq && *last_hash == hash)
                            .map(|_| key.checkpoint(seq, &hash))
                    }
                    _ => None,
                };
                let checkpoint = retagged.or(anchor.checkpoint);
                write_anchor(
                    &self.head_path,
                    &Anchor {
                        seq,
                        hash,
                        checkpoint,
                    },
                )?;
            }
        }
        // Nothing was written to the database; ending the transaction only releases the lock.
        tx.rollback().map_err(sql_error(path, "release the lock"))
    }

    /// Tags the current head with the log's anchor key, after checking the whole chain: for a
    /// log started without the key or before anchoring, or whose head was tagged under another
    /// key. This vouches for whatever the log holds now, so it is for an operator who has
    /// checked it (the CLI's `hushflow audit anchor`, which audits it).
    ///
    /// Refused ([`AuditError::TagRefused`]) when the chain is broken, the anchor is missing next
    /// to records, or a checkpoint tagged under this key shows records removed or rewritten:
    /// that is evidence, and moving the log aside is the way on. Without a key,
    /// [`AuditError::NoAnchorKey`].
    pub fn tag_head(&mut self) -> Result<HeadTagged, AuditError> {
        let Some(key) = self.key.clone() else {
            return Err(AuditError::NoAnchorKey);
        };
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_error(path, "lock for the head anchor"))?;
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
        let rows = read_raw_rows(&tx, path, None)?;
        let chain = super::verify::analyse(&rows, anchor.as_ref());
        if !chain.is_intact() {
            return Err(AuditError::TagRefused {
                reason: format!("the chain is {chain}"),
            });
        }
        let before = super::verify::check_anchor(&rows, anchor.as_ref(), &key);
        if matches!(
            before,
            super::AnchorCheck::Truncated { .. } | super::AnchorCheck::Changed { .. }
        ) {
            return Err(AuditError::TagRefused {
                reason: before.to_string(),
            });
        }
        let (records, hash) = rows.last().map_or((0, GENESIS_HASH.to_string()), |r| {
            (r.seq as u64, String::from_utf8_lossy(&r.hash).into_owned())
        });
        write_anchor(
            &self.head_path,
            &Anchor {
                seq: records,
                hash: hash.clone(),
                checkpoint: Some(key.checkpoint(records, &hash)),
            },
        )?;
        tx.rollback().map_err(sql_error(path, "release the lock"))?;
        Ok(HeadTagged {
            records,
            hash,
            before,
        })
    }
}

/// Whether the chain holds from the checkpoint's record to the last one: that record is there
/// with the tagged hash and matches it, and each later record matches its hash, links to the one
/// before and takes the next number. Gives the last record's (seq, hash) if so.
fn chain_holds_from(
    conn: &Connection,
    path: &Path,
    checkpoint: &Checkpoint,
) -> Result<Option<(u64, String)>, AuditError> {
    let from = i64::try_from(checkpoint.seq).unwrap_or(i64::MAX);
    let rows = read_raw_rows(conn, path, Some(from))?;
    Ok(chain_from(&rows, checkpoint))
}

fn chain_from(rows: &[RawRow], checkpoint: &Checkpoint) -> Option<(u64, String)> {
    let mut rows = rows.iter();
    let mut last = (checkpoint.seq as i64, checkpoint.hash.as_bytes());
    if checkpoint.seq > 0 {
        let first = rows.next()?;
        if first.seq != last.0 || first.hash != last.1 || !first.matches_at(first.seq) {
            return None;
        }
    }
    for row in rows {
        if row.seq != last.0 + 1 || row.prev_hash != last.1 || !row.matches_at(row.seq) {
            return None;
        }
        last = (row.seq, &row.hash);
    }
    Some((last.0 as u64, String::from_utf8_lossy(last.1).into_owned()))
}

/// The head as stored in `audit.head`: the last record the log vouches for, and the last
/// checkpoint tagged with the anchor key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Anchor {
    pub(super) seq: u64,
    pub(super) hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) checkpoint: Option<Checkpoint>,
}

/// A `(seq, hash)` tagged with the anchor key: the head's checkpoint, and what audit shipping
/// copies next to the records so that the copy can be checked with the key alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The record vouched for (and every one before it, through the chain).
    pub seq: u64,
    /// That record's hash.
    pub hash: String,
    /// The id of the key that made the tag ([`AnchorKey::id`]).
    pub key: String,
    /// HMAC-SHA256 under the anchor key, hex (see the module documentation).
    pub tag: String,
}

/// The checkpoint the head anchor at `head_path` carries, if it has one; a missing or damaged
/// head has none (`hushflow audit verify` reports those).
pub fn head_checkpoint(head_path: &Path) -> Result<Option<Checkpoint>, AuditError> {
    Ok(match read_anchor(head_path)? {
        AnchorState::At(anchor) => anchor.checkpoint,
        AnchorState::Missing | AnchorState::Damaged(_) => None,
    })
}

pub(super) enum AnchorState {
    Missing,
    Damaged(String),
    At(Anchor),
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn valid_position(seq: u64, hash: &str) -> bool {
    is_hex(hash, 64) && (seq != 0 || hash == GENESIS_HASH) && seq <= i64::MAX as u64
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
    if !valid_position(anchor.seq, &anchor.hash) {
        return Ok(AnchorState::Damaged(
            "not a valid sequence number and hash".into(),
        ));
    }
    if let Some(c) = &anchor.checkpoint
        && !(valid_position(c.seq, &c.hash) && is_hex(&c.key, 16) && is_hex(&c.tag, 64))
    {
        return Ok(AnchorState::Damaged("not a valid tagged checkpoint".into()));
    }
    Ok(AnchorState::At(anchor))
}

/// Writes the anchor atomically: a 0600 temporary file, synced, renamed over the old one, then
/// the directory synced so the rename survives a crash ([`AtomicFile`]). Callers hold the
/// database's write lock, so no other writer is live: the temporary files of writers killed
/// before their rename are removed first.
pub(super) fn write_anchor(path: &Path, anchor: &Anchor) -> Result<(), AuditError> {
    let failed = |action| {
        move |source| AuditError::Anchor {
            path: path.to_path_buf(),
            action,
            source,
        }
    };
    let json = serde_json::to_string(anchor)
        .map_err(|e| failed("encoding the head")(io::Error::other(e)))?;
    atomic_file::remove_leftovers(path).map_err(failed("removing stale temporary files"))?;
    let mut file = AtomicFile::create(path).map_err(failed("creating"))?;
    file.write_all(json.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync())
        .map_err(failed("writing"))?;
    file.commit().map_err(failed("replacing"))?;
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
        let log = AuditLog::open(dir.path(), None).unwrap();
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

    fn intact(records: u64, log: &AuditLog) -> Verification {
        Verification::Intact {
            records,
            head: if records == 0 {
                GENESIS_HASH.into()
            } else {
                hash_of(log, records)
            },
        }
    }

    fn vouched(records: u64, log: &AuditLog) -> AnchorCheck {
        AnchorCheck::Vouched {
            records,
            hash: if records == 0 {
                GENESIS_HASH.into()
            } else {
                hash_of(log, records)
            },
        }
    }

    #[test]
    fn a_new_log_is_untagged_until_tag_head_and_then_stays_vouched_for() {
        let key = anchor_key(1);
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path(), Some(key.clone())).unwrap();
        assert_eq!(anchored(&dir, &key), (intact(0, &log), AnchorCheck::NoTag));
        log.append(sample(0)).unwrap();
        assert_eq!(anchored(&dir, &key).1, AnchorCheck::NoTag);
        // Removing the whole store leaves a new log, untagged: that too shows.
        drop(log);
        fs::remove_file(dir.path().join(DB_FILE)).unwrap();
        fs::remove_file(dir.path().join(HEAD_FILE)).unwrap();
        let mut log = AuditLog::open(dir.path(), Some(key.clone())).unwrap();
        assert_eq!(anchored(&dir, &key).1, AnchorCheck::NoTag);

        log.tag_head().unwrap();
        assert_eq!(anchored(&dir, &key), (intact(0, &log), vouched(0, &log)));
        for i in 1..=4 {
            log.append(sample(i)).unwrap();
            assert_eq!(anchored(&dir, &key), (intact(i, &log), vouched(i, &log)));
        }
        let h = head(&dir);
        assert_eq!(h["seq"], 4);
        assert_eq!(h["checkpoint"]["seq"], 4);
        assert_eq!(h["checkpoint"]["hash"], h["hash"]);
        assert_eq!(h["checkpoint"]["key"], key.id());
        assert_eq!(h["checkpoint"]["tag"].as_str().unwrap().len(), 64);
    }

    /// Security finding 8: deleting the newest rows and copying the new last hash into
    /// `audit.head` passed `verify`. It still does (the chain holds); the tag does not.
    #[test]
    fn truncating_the_newest_rows_and_rewriting_the_head_is_caught_by_the_tag() {
        let key = anchor_key(1);
        let (dir, log) = keyed_log_with(6, &key);
        let h4 = hash_of(&log, 4);
        let original = head(&dir);
        sql(&dir, "DELETE FROM audit WHERE seq > 4");

        // Only the head's seq and hash rewritten: the tag still vouches for 6 records.
        let mut h = original.clone();
        h["seq"] = 4.into();
        h["hash"] = h4.clone().into();
        set_head(&dir, &h);
        assert!(
            log.verify().unwrap().is_intact(),
            "the chain alone cannot see it"
        );
        let (_, check) = anchored(&dir, &key);
        assert_eq!(
            check,
            AnchorCheck::Truncated {
                tagged: 6,
                records: 4
            }
        );
        assert_eq!(check.label(), "truncated");

        // The checkpoint removed as well.
        h.as_object_mut().unwrap().remove("checkpoint");
        set_head(&dir, &h);
        assert_eq!(anchored(&dir, &key).1, AnchorCheck::NoTag);

        // The checkpoint moved to record 4, with the tag it had.
        let mut h = original.clone();
        h["seq"] = 4.into();
        h["hash"] = h4.clone().into();
        h["checkpoint"]["seq"] = 4.into();
        h["checkpoint"]["hash"] = h4.into();
        set_head(&dir, &h);
        assert_eq!(
            anchored(&dir, &key).1,
            AnchorCheck::TagInvalid { other_key: false }
        );
    }

    /// The finding's second case: an emptied table with a genesis head.
    #[test]
    fn an_emptied_table_with_a_genesis_head_is_caught_by_the_tag() {
        let key = anchor_key(1);
        let (dir, log) = keyed_log_with(3, &key);
        let original = head(&dir);
        sql(&dir, "DELETE FROM audit");
        set_head(&dir, &serde_json::json!({"seq": 0, "hash": GENESIS_HASH}));
        assert!(
            log.verify().unwrap().is_intact(),
            "the chain alone cannot see it"
        );
        assert_eq!(anchored(&dir, &key).1, AnchorCheck::NoTag);

        let mut h = original;
        h["seq"] = 0.into();
        h["hash"] = GENESIS_HASH.into();
        set_head(&dir, &h);
        assert_eq!(
            anchored(&dir, &key).1,
            AnchorCheck::Truncated {
                tagged: 3,
                records: 0
            }
        );

        // Without the head file at all, an empty table is intact to the chain; not to the tag.
        fs::remove_file(dir.path().join(HEAD_FILE)).unwrap();
        assert!(log.verify().unwrap().is_intact());
        assert_eq!(anchored(&dir, &key).1, AnchorCheck::NoTag);
    }

    #[test]
    fn a_consistent_rewrite_is_caught_by_the_tag() {
        let key = anchor_key(1);
        let (dir, log) = keyed_log_with(6, &key);
        // Rewrite record 3 and recompute every later hash, and the head's seq and hash: all
        // that lives in the state directory.
        let mut records = log.list().unwrap();
        records[2].actor = "mallory".into();
        for i in 2..records.len() {
            if i > 2 {
                records[i].prev_hash = records[i - 1].hash.clone();
            }
            records[i].hash = records[i].compute_hash();
        }
        sql(&dir, "DELETE FROM audit WHERE seq >= 3");
        for r in &records[2..] {
            insert(&dir, r);
        }
        let mut h = head(&dir);
        h["hash"] = records[5].hash.clone().into();
        set_head(&dir, &h);
        assert!(
            log.verify().unwrap().is_intact(),
            "the chain alone cannot see it"
        );
        assert_eq!(anchored(&dir, &key).1, AnchorCheck::Changed { seq: 6 });
    }

    #[test]
    fn records_forged_at_the_end_are_not_vouched_for() {
        let key = anchor_key(1);
        let (dir, log) = keyed_log_with(6, &key);
        let extra = forged(7, &hash_of(&log, 6));
        insert(&dir, &extra);
        let mut h = head(&dir);
        h["seq"] = 7.into();
        h["hash"] = extra.hash.into();
        set_head(&dir, &h);
        assert!(log.verify().unwrap().is_intact());
        assert_eq!(
            anchored(&dir, &key).1,
            AnchorCheck::Unvouched {
                tagged: 6,
                records: 7
            }
        );
    }

    #[test]
    fn records_written_without_the_key_are_tagged_by_the_next_append_with_it() {
        let key = anchor_key(1);
        let (dir, _keyed) = keyed_log_with(3, &key);
        let mut keyless = AuditLog::open(dir.path(), None).unwrap();
        keyless.append(sample(4)).unwrap();
        keyless.append(sample(5)).unwrap();
        let h = head(&dir);
        assert_eq!(h["seq"], 5);
        assert_eq!(h["checkpoint"]["seq"], 3, "the checkpoint is kept");
        let (chain, check) = anchored(&dir, &key);
        assert!(chain.is_intact());
        assert_eq!(
            check,
            AnchorCheck::Unvouched {
                tagged: 3,
                records: 5
            }
        );

        let mut keyed = AuditLog::open(dir.path(), Some(key.clone())).unwrap();
        keyed.append(sample(6)).unwrap();
        assert_eq!(
            anchored(&dir, &key),
            (intact(6, &keyed), vouched(6, &keyed))
        );
    }

    #[test]
    fn an_append_with_the_key_does_not_tag_over_evidence() {
        let key = anchor_key(1);
        // Truncated below the checkpoint, the head's seq and hash rewritten.
        let (dir, mut log) = keyed_log_with(6, &key);
        let h5 = hash_of(&log, 5);
        sql(&dir, "DELETE FROM audit WHERE seq = 6");
        let mut h = head(&dir);
        h["seq"] = 5.into();
        h["hash"] = h5.into();
        set_head(&dir, &h);
        log.append(sample(7)).unwrap();
        log.append(sample(8)).unwrap();
        assert_eq!(head(&dir)["checkpoint"], h["checkpoint"]);
        let (chain, check) = anchored(&dir, &key);
        assert!(chain.is_intact(), "{chain}");
        assert_eq!(check, AnchorCheck::Changed { seq: 6 });

        // A head that was never tagged (or whose tag was removed) is not tagged by appends.
        let (dir, mut log) = keyed_log_with(3, &key);
        let mut h = head(&dir);
        h.as_object_mut().unwrap().remove("checkpoint");
        set_head(&dir, &h);
        log.append(sample(4)).unwrap();
        assert!(head(&dir).get("checkpoint").is_none());
        assert_eq!(anchored(&dir, &key).1, AnchorCheck::NoTag);
    }

    #[test]
    fn another_key_is_named_and_does_not_move_the_tag() {
        let (a, b) = (anchor_key(1), anchor_key(2));
        assert_ne!(a.id(), b.id());
        let (dir, _log) = keyed_log_with(3, &a);
        assert_eq!(
            anchored(&dir, &b).1,
            AnchorCheck::TagInvalid { other_key: true }
        );
        let mut other = AuditLog::open(dir.path(), Some(b.clone())).unwrap();
        other.append(sample(4)).unwrap();
        assert_eq!(head(&dir)["checkpoint"]["key"], a.id());
        assert_eq!(
            anchored(&dir, &a).1,
            AnchorCheck::Unvouched {
                tagged: 3,
                records: 4
            }
        );
    }

    #[test]
    fn tag_head_tags_a_log_started_without_the_key() {
        let key = anchor_key(1);
        let (dir, _log) = log_with(3);
        let mut log = AuditLog::open(dir.path(), Some(key.clone())).unwrap();
        log.append(sample(4)).unwrap();
        assert_eq!(anchored(&dir, &key).1, AnchorCheck::NoTag);
        let tagged = log.tag_head().unwrap();
        assert_eq!(
            tagged,
            HeadTagged {
                records: 4,
                hash: hash_of(&log, 4),
                before: AnchorCheck::NoTag
            }
        );
        assert_eq!(anchored(&dir, &key).1, vouched(4, &log));
        log.append(sample(5)).unwrap();
        assert_eq!(anchored(&dir, &key).1, vouched(5, &log));
    }

    #[test]
    fn tag_head_refuses_a_log_that_shows_tampering() {
        let key = anchor_key(1);
        // The chain shows it.
        let (dir, mut log) = keyed_log_with(6, &key);
        sql(&dir, "DELETE FROM audit WHERE seq = 6");
        let err = log.tag_head().unwrap_err();
        assert!(matches!(err, AuditError::TagRefused { .. }), "{err:?}");
        assert!(err.to_string().contains("broken at record 6"), "{err}");

        // Only the tag shows it.
        let mut h = head(&dir);
        h["seq"] = 5.into();
        h["hash"] = hash_of(&log, 5).into();
        set_head(&dir, &h);
        let err = log.tag_head().unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        assert_eq!(head(&dir), h, "the evidence is left as it was");

        let mut keyless = AuditLog::open(dir.path(), None).unwrap();
        assert!(matches!(keyless.tag_head(), Err(AuditError::NoAnchorKey)));
        assert!(matches!(
            keyless.verify_anchor(),
            Err(AuditError::NoAnchorKey)
        ));
    }

    #[test]
    fn a_damaged_checkpoint_is_a_damaged_anchor() {
        let key = anchor_key(1);
        let (dir, log) = keyed_log_with(2, &key);
        let mut h = head(&dir);
        h["checkpoint"]["tag"] = "nope".into();
        set_head(&dir, &h);
        assert!(matches!(
            log.verify(),
            Err(AuditError::AnchorDamaged { .. })
        ));
    }

    #[test]
    fn the_anchor_key_is_derived_and_never_written() {
        assert_eq!(anchor_key(1).id(), anchor_key(1).id());
        assert_eq!(anchor_key(1).id().len(), 16);
        let (dir, _log) = keyed_log_with(2, &anchor_key(1));
        let text = fs::read_to_string(dir.path().join(HEAD_FILE)).unwrap();
        use base64::Engine as _;
        assert!(!text.contains(&base64::engine::general_purpose::STANDARD.encode([1u8; 32])));
        assert!(!text.contains(&hex::encode([1u8; 32])));
        assert!(format!("{:?}", anchor_key(1)).contains(anchor_key(1).id()));
    }

    #[test]
    fn concurrent_keyed_appenders_keep_the_head_tagged() {
        let key = anchor_key(1);
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        let mut log = AuditLog::open(dir.path(), Some(key.clone())).unwrap();
        log.tag_head().unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (dir, key) = (std::sync::Arc::clone(&dir), key.clone());
                std::thread::spawn(move || {
                    let mut log = AuditLog::open(dir.path(), Some(key)).unwrap();
                    for i in 0..10 {
                        log.append(sample(t * 100 + i)).unwrap();
                    }
                })
            })
            .collect();
        while threads.iter().any(|t| !t.is_finished()) {
            let (chain, check) = log.verify_anchor().unwrap();
            assert!(chain.is_intact(), "{chain}");
            assert!(check.is_vouched(), "{check}");
        }
        for t in threads {
            t.join().unwrap();
        }
        let (chain, check) = log.verify_anchor().unwrap();
        assert_eq!((chain, check), (intact(40, &log), vouched(40, &log)));
    }
}
