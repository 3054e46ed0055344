//! Record filters: consent and suppression. A filtered record is not an error: it is counted
//! and left out on purpose, so it never reaches the quarantine.

use crate::normalize::{Normalize, Normalizer};
use crate::value_type::{ValueType, parse_bool};
use hushflow_core::{Batch, CellKind, RejectReason};
use hushflow_crypto::HmacSha256;
use std::collections::HashSet;

/// Keeps records whose consent field is an explicit yes ([`parse_bool`]: true, yes, 1, y or
/// on, in any case). Empty means no. Any other value is no answer at all: the record is
/// refused (quarantined, naming the field), never guessed at.
pub(crate) struct ConsentFilter {
    column: usize,
    field: String,
}

impl ConsentFilter {
    pub(crate) fn new(column: usize, field: &str) -> Self {
        ConsentFilter {
            column,
            field: field.to_string(),
        }
    }

    /// Clears `keep` for rows without consent, and for rows whose consent is not a yes/no
    /// value (those are pushed to `refused`, by row); returns how many had no consent.
    pub(crate) fn filter(
        &self,
        batch: &Batch,
        keep: &mut [bool],
        refused: &mut Vec<(usize, RejectReason)>,
    ) -> usize {
        let mut removed = 0;
        for (row, cell) in batch.column(self.column).iter().enumerate() {
            let yes = match cell.kind {
                CellKind::Null => Some(false),
                CellKind::Bool => Some(cell.text == "true"),
                _ if cell.text.trim().is_empty() => Some(false),
                _ => parse_bool(cell.text),
            };
            match yes {
                Some(true) => {}
                Some(false) if keep[row] => {
                    keep[row] = false;
                    removed += 1;
                }
                Some(false) => {}
                None => {
                    keep[row] = false;
                    refused.push((
                        row,
                        RejectReason::InvalidField {
                            field: self.field.clone(),
                            detail: ValueType::Boolean.refusal().into(),
                        },
                    ));
                }
            }
        }
        removed
    }
}

/// Removes records whose field is on the suppression list, as plain text or as its
/// HMAC-SHA256 under the list's key, so a list can hold no plain addresses.
///
/// The field is compared in each form the policy writes it out in (the normalization of every
/// `hash` and `match_hash` rule reading it), and as an email: a record whose pseudonym is the
/// HMAC of a listed address, or is a listed hash, never leaves. Plain entries are normalized in
/// each form too, with the same functions, so `Michal7@gmail.com` on the list and
/// `michal.7+promo@gmail.com` in the source meet under gmail rules.
pub(crate) struct SuppressionFilter {
    column: usize,
    forms: Vec<Form>,
    hashed: HashSet<[u8; 32]>,
    mac: Option<HmacSha256>,
}

/// One normalization the field is compared in, and the plain entries normalized by it.
struct Form {
    normalize: Normalizer,
    plain: HashSet<String>,
}

impl SuppressionFilter {
    /// `lines`: the list's lines; blank lines and `#` comments are skipped. `forms`: the
    /// normalizations the policy writes the field out in; the email normalization is always
    /// one of them.
    pub(crate) fn new(
        column: usize,
        lines: &[String],
        mac: Option<HmacSha256>,
        forms: impl IntoIterator<Item = Normalizer>,
    ) -> Result<Self, String> {
        let mut normalizers = vec![Normalizer::new(Normalize::Email)];
        for n in forms {
            if !normalizers.contains(&n) {
                normalizers.push(n);
            }
        }
        let mut plain_entries = Vec::new();
        let mut hashed = HashSet::new();
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
            } else {
                plain_entries.push(entry);
            }
        }
        let mut text = String::new();
        let forms = normalizers
            .into_iter()
            .map(|normalize| {
                let mut plain = HashSet::new();
                for entry in &plain_entries {
                    // An entry this form cannot read (an email, for a phone form) is matched
                    // in the other forms.
                    if normalize.apply(entry, &mut text).unwrap_or(false) {
                        plain.insert(text.clone());
                    }
                }
                Form { normalize, plain }
            })
            .collect();
        Ok(SuppressionFilter {
            column,
            forms,
            hashed,
            mac,
        })
    }

    pub(crate) fn filter(&self, batch: &Batch, keep: &mut [bool]) -> usize {
        let mut removed = 0;
        let mut text = String::new();
        for (row, cell) in batch.column(self.column).iter().enumerate() {
            if !keep[row] || cell.is_null() {
                continue;
            }
            if self.listed(cell.text, &mut text) {
                keep[row] = false;
                removed += 1;
            }
        }
        removed
    }

    /// Whether `value`, in any of the forms, is a plain entry or the HMAC of one is listed.
    fn listed(&self, value: &str, text: &mut String) -> bool {
        self.forms.iter().any(|form| {
            // A value a form cannot normalize leaves in none of that form's outputs (a `hash`
            // rule refuses the record), so it cannot match there.
            form.normalize.apply(value, text).unwrap_or(false)
                && (form.plain.contains(text.as_str())
                    || self.mac.as_ref().is_some_and(|m| {
                        !self.hashed.is_empty() && self.hashed.contains(&m.mac(text.as_bytes()))
                    }))
        })
    }
}
