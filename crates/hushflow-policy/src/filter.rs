//! Record filters: consent and suppression. A filtered record is not an error: it is counted
//! and left out on purpose, so it never reaches the quarantine.

use crate::normalize::{Normalize, Normalizer};
use hushflow_core::{Batch, CellKind};
use hushflow_crypto::HmacSha256;
use std::collections::HashSet;

/// Keeps records whose consent field is an explicit yes: true, yes, 1 or y, in any case.
/// Empty means no.
pub(crate) struct ConsentFilter {
    column: usize,
}

impl ConsentFilter {
    pub(crate) fn new(column: usize) -> Self {
        ConsentFilter { column }
    }

    /// Clears `keep` for rows without consent; returns how many it cleared.
    pub(crate) fn filter(&self, batch: &Batch, keep: &mut [bool]) -> usize {
        let mut removed = 0;
        for (row, cell) in batch.column(self.column).iter().enumerate() {
            let yes = match cell.kind {
                CellKind::Null => false,
                CellKind::Bool => cell.text == "true",
                _ => {
                    let v = cell.text.trim();
                    ["true", "yes", "1", "y"]
                        .iter()
                        .any(|y| v.eq_ignore_ascii_case(y))
                }
            };
            if !yes && keep[row] {
                keep[row] = false;
                removed += 1;
            }
        }
        removed
    }
}

/// Removes records whose field (normalized as an email) is on the suppression list, as plain
/// text or as its HMAC-SHA256 under the list's key, so a list can hold no plain addresses.
pub(crate) struct SuppressionFilter {
    column: usize,
    plain: HashSet<String>,
    hashed: HashSet<[u8; 32]>,
    mac: Option<HmacSha256>,
    normalize: Normalizer,
}

impl SuppressionFilter {
    /// `lines`: the list's lines; blank lines and `#` comments are skipped.
    pub(crate) fn new(
        column: usize,
        lines: &[String],
        mac: Option<HmacSha256>,
    ) -> Result<Self, String> {
        let normalize = Normalizer::new(Normalize::Email);
        let mut plain = HashSet::new();
        let mut hashed = HashSet::new();
        let mut text = String::new();
        for (n, line) in lines.iter().enumerate() {
            let entry = line.trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let mut digest = [0u8; 32];
            if entry.len() == 64 && hex::decode_to_slice(entry, &mut digest).is_ok() {
                if mac.is_none() {
                    return Err(format!(
                        "line {} of the suppression list is a hash, but no key is set; add `key` to [policy.suppression]",
                        n + 1
                    ));
                }
                hashed.insert(digest);
            } else if normalize.apply(entry, &mut text).unwrap_or(false) {
                plain.insert(text.clone());
            }
        }
        Ok(SuppressionFilter {
            column,
            plain,
            hashed,
            mac,
            normalize,
        })
    }

    pub(crate) fn filter(&self, batch: &Batch, keep: &mut [bool]) -> usize {
        let mut removed = 0;
        let mut text = String::new();
        for (row, cell) in batch.column(self.column).iter().enumerate() {
            if !keep[row]
                || cell.is_null()
                || !self.normalize.apply(cell.text, &mut text).unwrap_or(false)
            {
                continue;
            }
            let listed = self.plain.contains(&text)
                || self.mac.as_ref().is_some_and(|m| {
                    !self.hashed.is_empty() && self.hashed.contains(&m.mac(text.as_bytes()))
                });
            if listed {
                keep[row] = false;
                removed += 1;
            }
        }
        removed
    }
}
