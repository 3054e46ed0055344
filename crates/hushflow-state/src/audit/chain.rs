//! The hash chain: how a record is hashed, over a canonical encoding of its columns.
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

use super::AuditRecord;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const HASH_DOMAIN: &[u8] = b"hushflow-audit-v1\n";

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

/// Counts as canonical JSON: a `BTreeMap` serializes with sorted keys and no whitespace.
#[allow(clippy::expect_used)] // Serializing string keys and integers cannot fail.
pub(super) fn canonical_counts(counts: &BTreeMap<String, u64>) -> String {
    serde_json::to_string(counts).expect("a map of strings to integers always serializes")
}

/// The fields as the hash sees them: the bytes as stored.
pub(super) struct HashInput<'a> {
    pub(super) seq: u64,
    pub(super) time: &'a [u8],
    pub(super) actor: &'a [u8],
    pub(super) action: &'a [u8],
    pub(super) pipeline: Option<&'a [u8]>,
    pub(super) policy_fingerprint: Option<&'a [u8]>,
    pub(super) counts: &'a [u8],
    pub(super) outcome: &'a [u8],
    pub(super) detail: Option<&'a [u8]>,
    pub(super) prev_hash: &'a [u8],
}

pub(super) fn record_hash(input: &HashInput<'_>) -> String {
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

#[cfg(test)]
mod tests {
    use super::super::GENESIS_HASH;
    use super::super::testing::*;

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
}
