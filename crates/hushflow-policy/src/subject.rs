//! One person as a pipeline writes them, for data subject requests: the values a compiled
//! policy gives an email address, a phone number or a record key ([`SubjectValue`]), so that
//! their rows are found in a sink by those pseudonyms and never by scanning for plaintext; and
//! the managed list of erased and opted-out people ([`ErasedList`]) that keeps them out of every
//! later run of every pipeline.
//!
//! The list holds keyed digests, `HMAC-SHA256(list key, kind NUL normalized value)`, never an
//! identifier: a record is dropped when one of its email fields, phone fields (each in the
//! normalizations the policy writes it out in) or its record key gives a listed digest.

use crate::compiled::{CompiledPolicy, Transform};
use crate::normalize::{Normalize, Normalizer};
use hushflow_core::{Batch, Cell};
use hushflow_crypto::HmacSha256;
use hushflow_secrets::SecretValue;
use std::collections::HashSet;

/// What identifies the person a request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifierKind {
    /// An email address: matched through fields hashed with `normalize = "email"`.
    Email,
    /// A phone number: matched through fields hashed with `normalize = "phone"`.
    Phone,
    /// The record key (the pipeline's `key` field, as the source has it).
    Subject,
}

impl IdentifierKind {
    /// The kind a word names ([`IdentifierKind::as_str`]).
    pub fn parse(word: &str) -> Option<IdentifierKind> {
        match word {
            "email" => Some(IdentifierKind::Email),
            "phone" => Some(IdentifierKind::Phone),
            "subject" => Some(IdentifierKind::Subject),
            _ => None,
        }
    }

    /// The word for this kind, in the list's digests and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierKind::Email => "email",
            IdentifierKind::Phone => "phone",
            IdentifierKind::Subject => "subject",
        }
    }

    fn normalize(self) -> Option<Normalize> {
        match self {
            IdentifierKind::Email => Some(Normalize::Email),
            IdentifierKind::Phone => Some(Normalize::Phone),
            IdentifierKind::Subject => None,
        }
    }
}

/// A value the policy writes for the person into one output field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectValue {
    /// The output field.
    pub field: String,
    /// The value written there for the person (a digest, a token, the key itself).
    pub value: String,
}

/// The managed list of erased and opted-out people: keyed digests of their normalized
/// identifiers, and the key they were made with.
pub struct ErasedList {
    mac: HmacSha256,
    entries: HashSet<[u8; 32]>,
    /// The kinds of identifier listed: a run checks only those (one HMAC per check and row).
    kinds: Vec<IdentifierKind>,
}

impl ErasedList {
    /// A list of `entries` (each digest with the kind of identifier it was made from) made
    /// under `key`.
    pub fn new(
        key: &SecretValue,
        entries: impl IntoIterator<Item = (IdentifierKind, [u8; 32])>,
    ) -> ErasedList {
        let mut kinds = Vec::new();
        let entries = entries
            .into_iter()
            .map(|(kind, digest)| {
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
                digest
            })
            .collect();
        ErasedList {
            mac: HmacSha256::new(key),
            entries,
            kinds,
        }
    }

    /// The digest the list holds for an identifier of `kind` in its normalized form.
    pub fn digest(&self, kind: IdentifierKind, normalized: &str) -> [u8; 32] {
        let mut buf = Vec::new();
        digest(&self.mac, kind, normalized, &mut buf)
    }

    /// Whether the list holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn lists(&self, kind: IdentifierKind, normalized: &str, buf: &mut Vec<u8>) -> bool {
        self.entries
            .contains(&digest(&self.mac, kind, normalized, buf))
    }
}

/// `HMAC(kind NUL normalized)`, built in `buf` (reused across rows).
fn digest(mac: &HmacSha256, kind: IdentifierKind, normalized: &str, buf: &mut Vec<u8>) -> [u8; 32] {
    buf.clear();
    buf.extend_from_slice(kind.as_str().as_bytes());
    buf.push(0);
    buf.extend_from_slice(normalized.as_bytes());
    mac.mac(buf)
}

/// The normalized forms of `value` as `kind` that the list may hold for it: the plain form of
/// its kind (an email lowercased, a phone in E.164) and each form `normalizers` write it in.
/// A form that cannot read the value gives nothing.
pub fn normalized_forms(
    kind: IdentifierKind,
    value: &str,
    normalizers: &[Normalizer],
) -> Vec<String> {
    let mut forms = Vec::new();
    let mut text = String::new();
    match kind.normalize() {
        None => {
            let trimmed = value.trim();
            if !trimmed.is_empty() {
                forms.push(trimmed.to_string());
            }
        }
        Some(base) => {
            let base = Normalizer::new(base);
            for n in std::iter::once(&base).chain(normalizers.iter()) {
                if n.kind() == base.kind()
                    && n.apply(value, &mut text).unwrap_or(false)
                    && !forms.contains(&text)
                {
                    forms.push(text.clone());
                }
            }
        }
    }
    forms
}

/// The compiled form of the list for one policy: which source columns are checked, in which
/// normalization.
pub(crate) struct ErasedFilter {
    list: ErasedList,
    checks: Vec<(usize, IdentifierKind, Normalizer)>,
    key_column: Option<usize>,
}

impl ErasedFilter {
    /// Clears `keep` for rows naming a listed person; returns how many it removed.
    pub(crate) fn filter(&self, batch: &Batch, keep: &mut [bool]) -> usize {
        let mut removed = 0;
        let mut text = String::new();
        let mut buf = Vec::new();
        for (row, kept) in keep.iter_mut().enumerate() {
            if !*kept {
                continue;
            }
            let listed = self.checks.iter().any(|(column, kind, n)| {
                let cell = batch.column(*column).get(row);
                !cell.is_null()
                    && n.apply(cell.text, &mut text).unwrap_or(false)
                    && self.list.lists(*kind, &text, &mut buf)
            }) || self.key_column.is_some_and(|column| {
                let cell = batch.column(column).get(row);
                let key = cell.text.trim();
                !cell.is_null()
                    && !key.is_empty()
                    && self.list.lists(IdentifierKind::Subject, key, &mut buf)
            });
            if listed {
                *kept = false;
                removed += 1;
            }
        }
        removed
    }
}

impl CompiledPolicy {
    /// The normalizations the policy writes identifiers of `kind` out in (its `hash` and
    /// `match_hash` rules with that normalization).
    pub fn normalizers(&self, kind: IdentifierKind) -> Vec<Normalizer> {
        let Some(wanted) = kind.normalize() else {
            return Vec::new();
        };
        let mut found: Vec<Normalizer> = Vec::new();
        for op in &self.ops {
            if let Transform::Hmac { normalize, .. } | Transform::MatchHash { normalize } =
                &op.transform
                && normalize.kind() == wanted
                && !found.contains(normalize)
            {
                found.push(normalize.clone());
            }
        }
        found
    }

    /// Drops, from every batch, records that name a person on `list`: through the source
    /// columns the policy hashes as emails or phone numbers, and through `key_column` (the
    /// record key's source column). Filtered records count as suppressed, and reach a keyed
    /// sink's withdrawal like any suppressed record.
    pub fn with_erased(mut self, list: ErasedList, key_column: Option<usize>) -> CompiledPolicy {
        if list.is_empty() {
            self.erased = None;
            return self;
        }
        let mut checks: Vec<(usize, IdentifierKind, Normalizer)> = Vec::new();
        for op in &self.ops {
            let (Transform::Hmac { normalize, .. } | Transform::MatchHash { normalize }) =
                &op.transform
            else {
                continue;
            };
            let kind = match normalize.kind() {
                Normalize::Email => IdentifierKind::Email,
                Normalize::Phone => IdentifierKind::Phone,
                _ => continue,
            };
            // Nobody is listed by this kind: nothing to check, nothing to spend per row.
            if !list.kinds.contains(&kind) {
                continue;
            }
            // The plain form of the kind too: the list holds it for every erased person.
            let base = Normalizer::new(normalize.kind());
            for n in [normalize.clone(), base] {
                if !checks.iter().any(|(c, _, m)| *c == op.input && *m == n) {
                    checks.push((op.input, kind, n));
                }
            }
        }
        let key_column = key_column.filter(|_| list.kinds.contains(&IdentifierKind::Subject));
        self.erased = (!checks.is_empty() || key_column.is_some()).then_some(ErasedFilter {
            list,
            checks,
            key_column,
        });
        self
    }

    /// The values this policy writes for the person `value` (an identifier of `kind`), by
    /// output field: each keyed or unkeyed hash of a field normalized as that kind, and for a
    /// record key (`kind` [`IdentifierKind::Subject`], `key_column` its source column) every
    /// field made from the key's column by a deterministic rule (kept, hashed, tokenized).
    /// Tokens under a subject's own key are not made here: they need the subject's key.
    pub fn subject_values(
        &self,
        kind: IdentifierKind,
        value: &str,
        key_column: Option<usize>,
    ) -> Vec<SubjectValue> {
        let mut out = Vec::new();
        let mut scratch = crate::compiled::Scratch::default();
        let value = value.trim();
        for op in &self.ops {
            let wanted = match (&op.transform, kind) {
                (
                    Transform::Hmac { normalize, .. } | Transform::MatchHash { normalize },
                    IdentifierKind::Email | IdentifierKind::Phone,
                ) => Some(normalize.kind()) == kind.normalize(),
                (
                    Transform::Copy
                    | Transform::Typed(_)
                    | Transform::Hmac { .. }
                    | Transform::MatchHash { .. }
                    | Transform::Tokenize(_),
                    IdentifierKind::Subject,
                ) => key_column == Some(op.input),
                _ => false,
            };
            if !wanted {
                continue;
            }
            let produced = match &op.transform {
                Transform::Copy | Transform::Typed(_) => Some(value.to_string()),
                t => {
                    let mut column = hushflow_core::Column::default();
                    match self.transform_cell(t, Cell::text(value), &mut column, &mut scratch) {
                        Ok(()) => column
                            .iter()
                            .next()
                            .filter(|c| !c.is_null())
                            .map(|c| c.text.to_string()),
                        Err(_) => None,
                    }
                }
            };
            if let Some(v) = produced.filter(|v| !v.is_empty()) {
                out.push(SubjectValue {
                    field: op.field.clone(),
                    value: v,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CompileInputs, Day, KeyMaterial, Policy, ResolvedKey};
    use hushflow_core::Schema;

    const KEY: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

    fn compiled() -> CompiledPolicy {
        let policy: Policy = toml::from_str(
            r#"
            fields.id = { hash = "hmac-sha256", key = "env:PEPPER" }
            fields.email = { hash = "hmac-sha256", key = "env:PEPPER", normalize = "email" }
            fields.audience = { from = "email", match_hash = "sha256", normalize = "email" }
            fields.phone = { hash = "hmac-sha256", key = "env:PEPPER", normalize = "phone" }
            fields.city = "keep"
            "#,
        )
        .unwrap();
        let mut keys = KeyMaterial::new();
        keys.insert(
            "env:PEPPER".into(),
            ResolvedKey {
                id: "00".into(),
                material: SecretValue::new(KEY.to_vec()),
            },
        );
        let schema = Schema::new(
            ["id", "email", "phone", "city"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        );
        policy
            .compile(
                &schema,
                &CompileInputs {
                    subjects: None,
                    keys: &keys,
                    suppression_list: &[],
                    today: Day {
                        year: 2026,
                        month: 1,
                        day: 1,
                    },
                    withdrawal_key: None,
                },
            )
            .unwrap()
    }

    fn batch(rows: &[[&str; 4]]) -> Batch {
        let schema = std::sync::Arc::new(Schema::new(
            ["id", "email", "phone", "city"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ));
        let mut b = Batch::new(schema);
        for (n, row) in rows.iter().enumerate() {
            b.push_row(n as u64 + 1, row.iter().map(|c| Cell::text(c)));
        }
        b
    }

    /// The values found for a person are exactly the ones a run writes for them.
    #[test]
    fn subject_values_are_what_a_run_writes() {
        let policy = compiled();
        let out = policy.apply(&batch(&[[
            "c-9",
            "Ada@Example.com",
            "+14155550101",
            "Paris",
        ]]));
        let written = |field: &str| {
            let i = out.batch.schema().index_of(field).unwrap();
            out.batch.column(i).get(0).text.to_string()
        };
        let email = policy.subject_values(IdentifierKind::Email, " ada@EXAMPLE.com ", None);
        let fields: Vec<&str> = email.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["email", "audience"]);
        assert_eq!(email[0].value, written("email"));
        assert_eq!(email[1].value, written("audience"));
        let phone = policy.subject_values(IdentifierKind::Phone, "+1 415 555 0101", None);
        assert_eq!(phone.len(), 1);
        assert_eq!(phone[0].value, written("phone"));
        let key = policy.subject_values(IdentifierKind::Subject, "c-9", Some(0));
        assert_eq!(key.len(), 1);
        assert_eq!(
            (key[0].field.as_str(), key[0].value.clone()),
            ("id", written("id"))
        );
        // Without the key's column, a record key is nowhere.
        assert!(
            policy
                .subject_values(IdentifierKind::Subject, "c-9", None)
                .is_empty()
        );
    }

    /// A listed person is dropped through any spelling of their email or their record key;
    /// everyone else leaves.
    #[test]
    fn the_erased_list_drops_listed_people_only() {
        let key = SecretValue::new(vec![7; 32]);
        let probe = ErasedList::new(&key, []);
        let forms = normalized_forms(IdentifierKind::Email, "ADA@example.com", &[]);
        let mut entries: Vec<(IdentifierKind, [u8; 32])> = forms
            .iter()
            .map(|f| {
                (
                    IdentifierKind::Email,
                    probe.digest(IdentifierKind::Email, f),
                )
            })
            .collect();
        entries.push((
            IdentifierKind::Subject,
            probe.digest(IdentifierKind::Subject, "c-3"),
        ));
        let policy = compiled().with_erased(ErasedList::new(&key, entries), Some(0));
        let out = policy.apply(&batch(&[
            ["c-1", " Ada@Example.COM", "", "Paris"],
            ["c-2", "grace@example.com", "", "Oslo"],
            ["c-3", "alan@example.com", "", "Rome"],
        ]));
        assert_eq!(out.suppressed, 2);
        assert_eq!(out.batch.len(), 1);
        let city = out.batch.schema().index_of("city").unwrap();
        assert_eq!(out.batch.column(city).get(0).text, "Oslo");
    }
}
