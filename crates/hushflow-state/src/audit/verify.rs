//! Verification: walking the chain and checking the head anchor, and the report it gives.
//!
//! See [`AuditLog::verify`] and [`Tamper`] for the exact rules. In short: it walks the records
//! in `seq` order and names the first record that was changed, inserted, or that follows removed
//! records; then it checks the anchor.
//!
//! [`AuditLog::verify_anchor`] also checks the head's tagged checkpoint with the anchor key and
//! reports an [`AnchorCheck`]: the tag must verify and vouch for every record in the table.

use super::anchor::{Anchor, AnchorKey, AnchorState, read_anchor};
use super::rows::RawRow;
use super::{AuditError, AuditLog, GENESIS_HASH};
use std::fmt;
use std::time::Duration;

/// The result of [`AuditLog::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every record matches its hash and links to the one before, and the log reaches the head
    /// anchor. `head` is the last record's hash (64 zeros for an empty log).
    Intact {
        /// How many records the log holds.
        records: u64,
        /// The last record's hash.
        head: String,
    },
    /// The first problem found, at record `seq` (see [`Tamper`] for which record is named).
    Broken {
        /// The record named (see [`Tamper`]).
        seq: u64,
        /// What was done to the log.
        problem: Tamper,
    },
}

impl Verification {
    /// Whether the chain holds.
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
    /// A record no longer is what was written.
    Changed,
    /// Records were removed before the named one.
    Removed,
    /// A record was inserted that is not part of the chain.
    Inserted,
    /// Records were removed at the end of the log.
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

impl AuditLog {
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
        let anchor = self.read_head()?;
        let rows = self.raw_rows()?;
        Ok(analyse(&rows, anchor.as_ref()))
    }

    /// Checks the chain as [`AuditLog::verify`] does, and the head's tagged checkpoint with the
    /// log's anchor key (see [`AnchorCheck`]): the tag must verify, the record it names must be
    /// there with the tagged hash, and the table must hold exactly as many records as the tag
    /// vouches for. Both results are returned; the log passes when the first is
    /// [`Verification::Intact`] and the second [`AnchorCheck::Vouched`].
    /// Without a key, [`AuditError::NoAnchorKey`]: the tag cannot be checked.
    pub fn verify_anchor(&self) -> Result<(Verification, AnchorCheck), AuditError> {
        let Some(key) = &self.key else {
            return Err(AuditError::NoAnchorKey);
        };
        // An appender writes the head after its record commits, so a reading taken in between
        // sees a record the tag does not vouch for yet. Such a reading (records beyond the
        // head, or a head that moved meanwhile) is taken again, for up to about two seconds.
        let mut attempts = 0;
        loop {
            let anchor = self.read_head()?;
            let rows = self.raw_rows()?;
            let chain = analyse(&rows, anchor.as_ref());
            let check = check_anchor(&rows, anchor.as_ref(), key);
            attempts += 1;
            let settling = matches!(check, AnchorCheck::Unvouched { .. })
                && attempts < 40
                && (anchor.as_ref().map_or(0, |a| a.seq) < rows.len() as u64
                    || self.read_head()? != anchor);
            if !settling {
                return Ok((chain, check));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The head anchor, `None` if missing; a damaged one is an error.
    fn read_head(&self) -> Result<Option<Anchor>, AuditError> {
        match read_anchor(&self.head_path)? {
            AnchorState::Missing => Ok(None),
            AnchorState::At(anchor) => Ok(Some(anchor)),
            AnchorState::Damaged(problem) => Err(AuditError::AnchorDamaged {
                path: self.head_path.clone(),
                problem,
            }),
        }
    }
}

/// What the head's tagged checkpoint says about the log, checked with the anchor key by
/// [`AuditLog::verify_anchor`]. Only [`AnchorCheck::Vouched`] passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorCheck {
    /// The tag verifies and vouches for every record in the table: `records` records, the last
    /// with `hash` (64 zeros for an empty log).
    Vouched {
        /// How many records the table holds, all vouched for.
        records: u64,
        /// The last record's hash.
        hash: String,
    },
    /// The head carries no tagged checkpoint (or the head is missing): the log was never tagged
    /// with the key (started without it, or before anchoring), or the tag was removed.
    NoTag,
    /// The checkpoint's tag does not verify under this key: the head was forged, or, when
    /// `other_key`, possibly tagged under another key (another master key or anchor secret).
    TagInvalid {
        /// Whether the checkpoint names another key id than this key's.
        other_key: bool,
    },
    /// The table holds `records` records but the tag vouches for `tagged`: records
    /// `records + 1 ..= tagged` were removed.
    Truncated {
        /// How many records the tag vouches for.
        tagged: u64,
        /// How many records the table holds.
        records: u64,
    },
    /// Record `seq`, which the tag vouches for, is not the record tagged: the chain was rewritten
    /// (consistently, or `verify` would have named the record) up to or past it, or cut before
    /// it and written on (by later appends, which leave the tag alone).
    Changed {
        /// The first record vouched for that is not the one tagged.
        seq: u64,
    },
    /// Records `tagged + 1 ..= records` are not vouched for by the tag: written without the key
    /// (the next record written with it re-tags them, if the chain holds), or forged.
    Unvouched {
        /// How many records the tag vouches for.
        tagged: u64,
        /// How many records the table holds.
        records: u64,
    },
}

impl AnchorCheck {
    /// Whether the tag vouches for every record: the one passing result.
    pub fn is_vouched(&self) -> bool {
        matches!(self, AnchorCheck::Vouched { .. })
    }

    /// A few words naming the problem: `vouched`, `no tag`, `tag invalid`, `truncated`,
    /// `rewritten`, `unvouched records`.
    pub fn label(&self) -> &'static str {
        match self {
            AnchorCheck::Vouched { .. } => "vouched",
            AnchorCheck::NoTag => "no tag",
            AnchorCheck::TagInvalid { .. } => "tag invalid",
            AnchorCheck::Truncated { .. } => "truncated",
            AnchorCheck::Changed { .. } => "rewritten",
            AnchorCheck::Unvouched { .. } => "unvouched records",
        }
    }
}

impl fmt::Display for AnchorCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnchorCheck::Vouched { records, hash } => write!(
                f,
                "vouched: the tag vouches for all {records} records (head {hash})"
            ),
            AnchorCheck::NoTag => f.write_str(
                "no tag: the head audit.head carries no tag made with the anchor key; either the \
                 log was never tagged (started without the key, or before anchoring: check it, \
                 then tag it with `hushflow audit anchor`), or the tag was removed",
            ),
            AnchorCheck::TagInvalid { other_key: true } => f.write_str(
                "tag invalid: the head's tag was not made with this key; it was forged, or made \
                 under another master key or anchor key",
            ),
            AnchorCheck::TagInvalid { other_key: false } => f.write_str(
                "tag invalid: the head's tag does not verify under this key; the head was forged",
            ),
            AnchorCheck::Truncated { tagged, records } => write!(
                f,
                "truncated: the tag vouches for {tagged} records but the log holds {records}; \
                 records {} to {tagged} were removed",
                records + 1
            ),
            AnchorCheck::Changed { seq } => write!(
                f,
                "rewritten: record {seq} is not the record the tag vouches for; the log was \
                 rewritten up to or past it (or cut before it and written on)"
            ),
            AnchorCheck::Unvouched { tagged, records } => write!(
                f,
                "unvouched records: the tag vouches for {tagged} records but the log holds \
                 {records}; records {} to {records} were written without the anchor key (the \
                 next record written with the key re-tags them) or forged",
                tagged + 1
            ),
        }
    }
}

/// The anchor check of [`AuditLog::verify_anchor`], over the rows as read.
pub(super) fn check_anchor(
    rows: &[RawRow],
    anchor: Option<&Anchor>,
    key: &AnchorKey,
) -> AnchorCheck {
    let Some(checkpoint) = anchor.and_then(|a| a.checkpoint.as_ref()) else {
        return AnchorCheck::NoTag;
    };
    if !key.verifies(checkpoint) {
        return AnchorCheck::TagInvalid {
            other_key: checkpoint.key != key.id(),
        };
    }
    let tagged = checkpoint.seq;
    let records = rows.len() as u64;
    if tagged > records {
        return AnchorCheck::Truncated { tagged, records };
    }
    if tagged > 0
        && !rows
            .iter()
            .any(|r| r.seq == tagged as i64 && r.hash == checkpoint.hash.as_bytes())
    {
        return AnchorCheck::Changed { seq: tagged };
    }
    if records > tagged {
        return AnchorCheck::Unvouched { tagged, records };
    }
    AnchorCheck::Vouched {
        records,
        hash: checkpoint.hash.clone(),
    }
}

/// Walks the chain and then checks the anchor; see [`AuditLog::verify`] for the rules.
pub(super) fn analyse(rows: &[RawRow], anchor: Option<&Anchor>) -> Verification {
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use std::sync::Arc;

    #[test]
    fn an_untouched_log_is_intact() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path(), None).unwrap();
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
    fn an_unreadable_record_fails_list_but_verify_names_it() {
        let (dir, log) = log_with(4);
        sql(&dir, "UPDATE audit SET time = 'yesterday' WHERE seq = 2");
        let err = log.list().unwrap_err();
        assert!(matches!(err, AuditError::Corrupt { seq: 2, .. }), "{err:?}");
        assert!(err.to_string().contains("hushflow audit verify"), "{err}");
        assert_eq!(broken(&log), (2, Tamper::Changed));
    }

    #[test]
    fn verify_while_another_connection_appends_sees_no_tampering() {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        AuditLog::open(dir.path(), None).unwrap();
        let writer = {
            let dir = Arc::clone(&dir);
            std::thread::spawn(move || {
                let mut log = AuditLog::open(dir.path(), None).unwrap();
                for i in 0..40 {
                    log.append(sample(i)).unwrap();
                }
            })
        };
        let log = AuditLog::open(dir.path(), None).unwrap();
        while !writer.is_finished() {
            let v = log.verify().unwrap();
            assert!(v.is_intact(), "{v}");
        }
        writer.join().unwrap();
        assert!(log.verify().unwrap().is_intact());
    }
}
