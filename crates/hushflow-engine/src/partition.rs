//! Partitioned runs (`hushflow run P --partition i/n`): a run that moves only the records whose
//! key hashes to partition `i` of `n`, so that `n` workers (Airflow's mapped tasks) share one
//! large sync and together move each record exactly once.
//!
//! The hash is fixed and documented (`docs/pipeline.md`, "Partitioned runs") so that other tools
//! can reproduce it: the first 8 bytes of SHA-256 over the key's value as UTF-8 text, read as a
//! big-endian unsigned 64-bit integer, modulo `n`. In Python:
//! `int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % n`.

use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The most partitions a run may be split into: far more workers than any one source serves.
pub const MAX_PARTITIONS: u32 = 4096;

/// One partition of a run: `index` of `count`, `index` counted from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    index: u32,
    count: u32,
}

/// Why `--partition` was refused; it holds only the text the user gave, never record data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--partition `{given}`: {why}; give INDEX/COUNT, INDEX counted from 0 and below COUNT, COUNT \
     from 1 to {MAX_PARTITIONS} (the second of four: 1/4)"
)]
pub struct PartitionError {
    given: String,
    why: &'static str,
}

impl Partition {
    /// Partition `index` of `count`, checked as `--partition` is.
    pub fn new(index: u32, count: u32) -> Result<Partition, PartitionError> {
        Self::check(index, count).map_err(|why| PartitionError {
            given: format!("{index}/{count}"),
            why,
        })
    }

    fn check(index: u32, count: u32) -> Result<Partition, &'static str> {
        if count == 0 {
            return Err("the count is 0");
        }
        if count > MAX_PARTITIONS {
            return Err("the count is above the limit");
        }
        if index >= count {
            return Err("the index is not below the count");
        }
        Ok(Partition { index, count })
    }

    /// This partition's index, from 0.
    pub fn index(self) -> u32 {
        self.index
    }

    /// How many partitions the run is split into.
    pub fn count(self) -> u32 {
        self.count
    }

    /// Whether the record with this key value (as the source gives it, as text) is this
    /// partition's.
    pub fn owns(self, key: &str) -> bool {
        partition_of(key, self.count) == self.index
    }

    /// Whether this partition owns the records that have no key to hash: those the source could
    /// not decode and those with an empty key. Partition 0 does, so that each is quarantined and
    /// counted once, by one partition.
    pub fn owns_unkeyed(self) -> bool {
        self.index == 0
    }

    /// The name this partition's incremental position is kept under (in the sink's
    /// `hushflow_cursors` table or the state directory), apart from the other partitions' and
    /// from the unpartitioned runs': `PIPELINE#partition-I-of-N`. A pipeline name cannot hold
    /// `#`, so no pipeline's own name takes this form.
    pub fn position_key(self, pipeline: &str) -> String {
        format!("{pipeline}{PREFIX}{}-of-{}", self.index, self.count)
    }

    /// The partition a position key names, if it is one of `pipeline`'s partitions; `None` for
    /// `pipeline` itself and for anything else.
    pub fn of_position_key(pipeline: &str, key: &str) -> Option<Partition> {
        let rest = key.strip_prefix(pipeline)?.strip_prefix(PREFIX)?;
        let (index, count) = rest.split_once("-of-")?;
        Self::check(index.parse().ok()?, count.parse().ok()?).ok()
    }
}

/// What comes between a pipeline's name and its partition in a position key.
const PREFIX: &str = "#partition-";

/// The partition of `count` a key value belongs to: the first 8 bytes of SHA-256 over its UTF-8
/// bytes, big-endian, modulo `count` (`count` is at least 1).
pub fn partition_of(key: &str, count: u32) -> u32 {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32
}

impl FromStr for Partition {
    type Err = PartitionError;

    /// `INDEX/COUNT`, as `--partition` takes it: `0/4` … `3/4`.
    fn from_str(s: &str) -> Result<Partition, PartitionError> {
        let refuse = |why| PartitionError {
            given: s.to_string(),
            why,
        };
        let (index, count) = s.split_once('/').ok_or_else(|| refuse("there is no `/`"))?;
        let number = |t: &str| {
            // Digits only: `+1` and ` 1` are refused rather than read.
            (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse::<u32>().ok())
                .flatten()
        };
        let index = number(index).ok_or_else(|| refuse("the index is not a whole number"))?;
        let count = number(count).ok_or_else(|| refuse("the count is not a whole number"))?;
        Self::check(index, count).map_err(refuse)
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_hash_is_the_documented_one() {
        // sha256("42") begins 73475cb40a568e8d; 0x73475cb40a568e8d % 4 = 1, and
        // Python's `int.from_bytes(hashlib.sha256(b"42").digest()[:8], "big") % 4` agrees.
        assert_eq!(partition_of("42", 4), 1);
        assert_eq!(partition_of("42", 1), 0);
        assert_eq!(
            partition_of("42", 1000),
            (0x7347_5cb4_0a56_8e8d_u64 % 1000) as u32
        );
    }

    #[test]
    fn partitions_parse_and_bad_ones_are_refused() {
        let p: Partition = "1/4".parse().unwrap();
        assert_eq!((p.index(), p.count()), (1, 4));
        assert_eq!(p.to_string(), "1/4");
        assert_eq!("0/1".parse::<Partition>().unwrap().count(), 1);
        for bad in [
            "4/4", "5/4", "0/0", "1", "", "/4", "1/", "-1/4", "1/-4", "a/4", "1/4/2", " 1/4",
            "+1/4", "0/4097", "1.0/4",
        ] {
            let e = bad.parse::<Partition>().unwrap_err().to_string();
            assert!(e.contains("--partition"), "{bad}: {e}");
        }
    }

    #[test]
    fn position_keys_name_their_partition_and_no_other_pipeline() {
        let p = Partition::new(2, 8).unwrap();
        assert_eq!(p.position_key("crm"), "crm#partition-2-of-8");
        assert_eq!(
            Partition::of_position_key("crm", &p.position_key("crm")),
            Some(p)
        );
        assert_eq!(Partition::of_position_key("crm", "crm"), None);
        assert_eq!(
            Partition::of_position_key("cr", &p.position_key("crm")),
            None
        );
        assert_eq!(
            Partition::of_position_key("crm", "crm#partition-8-of-8"),
            None
        );
    }

    proptest! {
        /// Every key belongs to exactly one partition of any count, and the split is roughly
        /// even over many keys.
        #[test]
        fn every_key_is_in_exactly_one_partition(keys in proptest::collection::vec(".{0,24}", 1..40), count in 1u32..16) {
            for key in &keys {
                let owners = (0..count)
                    .filter(|&i| Partition::new(i, count).unwrap().owns(key))
                    .count();
                prop_assert_eq!(owners, 1);
            }
        }
    }

    #[test]
    fn the_split_is_even() {
        let count = 4;
        let mut sizes = [0u32; 4];
        for id in 0..40_000 {
            sizes[partition_of(&id.to_string(), count) as usize] += 1;
        }
        for size in sizes {
            assert!((9_500..10_500).contains(&size), "{sizes:?}");
        }
    }
}
