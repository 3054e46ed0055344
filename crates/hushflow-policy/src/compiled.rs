//! The policy compiled against one source schema: filters, then a list of column operations,
//! run batch by batch. Field names are looked up once here, never per record; transformed values
//! are written straight into the output column's buffer.

use crate::filter::{ConsentFilter, SuppressionFilter};
use crate::generalize::{Day, Generalization};
use crate::mask::MaskRule;
use crate::normalize::Normalizer;
use crate::pii::{Finding, PiiDetector};
use crate::rule::{Action, Encoding, Policy, PolicyError};
use crate::value_type::ValueType;
use base64::Engine as _;
use hushflow_core::{Batch, Cell, CellKind, Column, RejectReason, Schema};
use hushflow_crypto::{HmacSha256, Tokenizer};
use hushflow_secrets::SecretValue;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// A resolved key: its public id (carried in tokens) and its material.
pub struct ResolvedKey {
    /// The key version's id, which tokens carry.
    pub id: String,
    /// The key material, wiped on drop.
    pub material: SecretValue,
}

/// Resolved keys by secret reference (`keyring:pepper` → its id and bytes).
pub type KeyMaterial = HashMap<String, ResolvedKey>;

/// Minimum key length for keyed hashing and tokens: 256 bits.
pub const MIN_KEY_BYTES: usize = 32;

/// Per-subject keys for `tokenize` with `per_subject = true` (erasure by crypto-shredding).
/// The engine keeps them; the policy only asks, so it stays free of I/O.
pub trait SubjectKeys: Send + Sync {
    /// The tokenizer of `subject`'s own key under the root key `key` (a secret reference), made
    /// on first use. The error is a fixed text: it names no subject.
    fn tokenizer(&self, key: &str, subject: &str) -> Result<Tokenizer, &'static str>;
}

/// Where per-subject keys come from, and which source field names the subject.
#[derive(Clone)]
pub struct Subjects {
    /// The source field whose value names the subject (the record key).
    pub field: String,
    /// Where the subjects' keys are kept.
    pub keys: Arc<dyn SubjectKeys>,
}

/// What the policy needs besides itself, gathered by the engine (the policy does no I/O).
pub struct CompileInputs<'a> {
    /// Needed when a `tokenize` rule has `per_subject = true`.
    pub subjects: Option<&'a Subjects>,
    /// The keys the policy's references resolved to.
    pub keys: &'a KeyMaterial,
    /// The lines of the suppression list, when the policy has one.
    pub suppression_list: &'a [String],
    /// The run's date, for age bands without `as_of`.
    pub today: Day,
    /// The output field a keyed sink matches rows on, when withdrawn records (filtered by
    /// consent or suppression) must reach it: their key's output value is then computed too.
    pub withdrawal_key: Option<&'a str>,
}

pub(crate) enum Transform {
    Copy,
    /// A kept value checked and written in its type's canonical form.
    Typed(ValueType),
    Null,
    Hmac {
        mac: Box<HmacSha256>,
        normalize: Normalizer,
        encoding: Encoding,
    },
    MatchHash {
        normalize: Normalizer,
    },
    Mask(MaskRule),
    Tokenize(Box<Tokenizer>),
    TokenizePerSubject {
        key: String,
        /// The source column naming the subject.
        subject: usize,
        keys: Arc<dyn SubjectKeys>,
    },
    Generalize(Generalization),
    Redact(Box<PiiDetector>),
    /// Redaction with each record's phone region read from another source column.
    RedactByRegion {
        detector: Box<PiiDetector>,
        /// The source column holding each record's country.
        country: usize,
    },
}

pub(crate) struct Op {
    /// The output field's name, for reject reasons.
    pub(crate) field: String,
    pub(crate) input: usize,
    pub(crate) transform: Transform,
}

/// What [`CompiledPolicy::apply`] gives back for one batch.
#[derive(Debug)]
pub struct PolicyOutput {
    /// Rows that leave, over [`CompiledPolicy::output_schema`].
    pub batch: Batch,
    /// Rows (by index in the input batch) the policy refused, and why; the engine quarantines them.
    pub rejected: Vec<(usize, RejectReason)>,
    /// Rows removed because consent was not an explicit yes.
    pub no_consent: usize,
    /// Rows removed because they match the suppression list.
    pub suppressed: usize,
    /// The key field's output values of the filtered rows (consent or suppression), as a sink
    /// holds them, when compiled with a `withdrawal_key`; empty otherwise.
    pub withdrawn: Column,
}

/// A [`Policy`] compiled against one source schema and the resolved keys, ready to
/// [`apply`](CompiledPolicy::apply) to every batch of a run, from any number of threads.
pub struct CompiledPolicy {
    pub(crate) ops: Vec<Op>,
    output: Arc<Schema>,
    consent: Option<ConsentFilter>,
    suppression: Option<SuppressionFilter>,
    today: Day,
    /// The op (index into `ops`) that makes the key sinks match withdrawn rows on.
    withdrawal_op: Option<usize>,
    /// The managed list of erased and opted-out people (`subject.rs`), when there is one.
    pub(crate) erased: Option<crate::subject::ErasedFilter>,
}

impl std::fmt::Debug for CompiledPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledPolicy")
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

fn key<'k>(
    keys: &'k KeyMaterial,
    field: &str,
    reference: &str,
) -> Result<&'k ResolvedKey, PolicyError> {
    let key = keys
        .get(reference)
        .ok_or_else(|| PolicyError::KeyNotResolved {
            field: field.to_string(),
            key: reference.to_string(),
        })?;
    if key.material.expose().len() < MIN_KEY_BYTES {
        return Err(PolicyError::KeyTooShort {
            field: field.to_string(),
            key: reference.to_string(),
        });
    }
    Ok(key)
}

impl Policy {
    /// Binds the policy to a source schema, its keys and its suppression list. Fails if the
    /// source lacks a field the policy reads or a key is missing.
    pub fn compile(
        &self,
        input: &Schema,
        inputs: &CompileInputs<'_>,
    ) -> Result<CompiledPolicy, PolicyError> {
        // A key that resolved is a reference (of whatever scheme its resolver knew); any other
        // key must look like one, so that a literal key is refused without being printed.
        self.check_keys_by(&|key| {
            inputs.keys.contains_key(key) || hushflow_secrets::is_reference(key)
        })?;
        // Each field's first position, found once: `Schema::index_of` per rule is quadratic.
        let mut positions: HashMap<&str, usize> = HashMap::with_capacity(input.len());
        for (i, f) in input.fields().iter().enumerate() {
            positions.entry(f.as_str()).or_insert(i);
        }
        let index = |field: &str| {
            positions
                .get(field)
                .copied()
                .ok_or_else(|| PolicyError::MissingSourceField(field.to_string()))
        };
        let mut ops = Vec::new();
        let mut output = Vec::new();
        let consent_field = self.consent().map(|c| c.field.as_str());
        for (name, rule) in self.rules() {
            let invalid = |message: String| PolicyError::Invalid {
                field: name.clone(),
                message,
            };
            let transform = match &rule.action {
                Action::Drop => continue,
                Action::Keep => match rule.output_type(name, consent_field) {
                    Some(t) => Transform::Typed(t),
                    None => Transform::Copy,
                },
                Action::Null => Transform::Null,
                Action::Hash(h) => Transform::Hmac {
                    mac: Box::new(HmacSha256::new(&key(inputs.keys, name, &h.key)?.material)),
                    normalize: h.normalize.compile(None).map_err(invalid)?,
                    encoding: h.encoding,
                },
                Action::MatchHash(m) => Transform::MatchHash {
                    normalize: m.normalize.compile(Some(m.platform)).map_err(invalid)?,
                },
                Action::Mask(m) => Transform::Mask(m.clone()),
                Action::Tokenize(t) if t.per_subject => {
                    let subjects = inputs.subjects.ok_or_else(|| {
                        invalid("per_subject needs the pipeline's key to name subjects".into())
                    })?;
                    key(inputs.keys, name, &t.key)?;
                    Transform::TokenizePerSubject {
                        key: t.key.clone(),
                        subject: index(&subjects.field)?,
                        keys: subjects.keys.clone(),
                    }
                }
                Action::Tokenize(t) => {
                    let k = key(inputs.keys, name, &t.key)?;
                    Transform::Tokenize(Box::new(
                        Tokenizer::new(&k.id, &k.material).map_err(|e| invalid(e.to_string()))?,
                    ))
                }
                Action::Generalize(g) => Transform::Generalize(g.clone()),
                Action::Redact(r) => {
                    let regions = r.region.as_ref().map(|r| r.list()).unwrap_or_default();
                    let detector = Box::new(
                        PiiDetector::with_regions(&r.kinds, &regions)
                            .map_err(|e| invalid(e.to_string()))?,
                    );
                    match &r.region_from {
                        Some(field) => Transform::RedactByRegion {
                            detector,
                            country: index(field)?,
                        },
                        None => Transform::Redact(detector),
                    }
                }
            };
            // A nulled field is not read, so it needs no source column.
            let input = match transform {
                Transform::Null => 0,
                _ => index(rule.source_field(name))?,
            };
            ops.push(Op {
                field: name.clone(),
                input,
                transform,
            });
            output.push(name.clone());
        }
        let consent = self
            .consent()
            .map(|c| index(&c.field).map(|i| ConsentFilter::new(i, &c.field)))
            .transpose()?;
        let suppression = match self.suppression() {
            Some(s) => {
                let mac = match self.suppression_key() {
                    Some(reference) => Some(HmacSha256::new(
                        &key(inputs.keys, "suppression", reference)?.material,
                    )),
                    None => None,
                };
                let column = index(&s.field)?;
                // Every form the field leaves in: a listed person must match in each.
                let forms = ops.iter().filter(|op| op.input == column).filter_map(|op| {
                    match &op.transform {
                        Transform::Hmac { normalize, .. } | Transform::MatchHash { normalize } => {
                            Some(normalize.clone())
                        }
                        _ => None,
                    }
                });
                Some(
                    SuppressionFilter::new(column, inputs.suppression_list, mac, forms).map_err(
                        |message| PolicyError::Invalid {
                            field: "suppression".into(),
                            message,
                        },
                    )?,
                )
            }
            None => None,
        };
        let withdrawal_op = inputs
            .withdrawal_key
            .and_then(|key| ops.iter().position(|op| op.field == key));
        Ok(CompiledPolicy {
            ops,
            output: Arc::new(Schema::new(output)),
            consent,
            suppression,
            today: inputs.today,
            withdrawal_op,
            erased: None,
        })
    }
}

/// Tokens under each row's subject key. A row whose subject key cannot be had is refused (and
/// quarantined by the engine), never written with a token made some other way.
fn per_subject(
    op: &Op,
    source: &Column,
    subjects: &Column,
    kept: &[usize],
    failed: &mut [Option<RejectReason>],
    key: &str,
    keys: &dyn SubjectKeys,
) -> Column {
    let mut out = Column::with_capacity(kept.len(), source.text_len() * 2 + kept.len() * 80);
    for (out_row, &row) in kept.iter().enumerate() {
        let cell = source.get(row);
        if cell.is_null() {
            out.push_null();
            continue;
        }
        match keys.tokenizer(key, subjects.get(row).text.trim()) {
            Ok(t) => out.push_with(CellKind::Text, |s| t.tokenize_into(cell.text.as_bytes(), s)),
            Err(detail) => {
                out.push_null();
                if failed[out_row].is_none() {
                    failed[out_row] = Some(RejectReason::InvalidField {
                        field: op.field.clone(),
                        detail: detail.into(),
                    });
                }
            }
        }
    }
    out
}

/// Redaction with each row's phone region taken from its country column; a row whose country is
/// blank or unknown gets the rule's configured regions.
fn redact_by_region(
    source: &Column,
    countries: &Column,
    kept: &[usize],
    detector: &PiiDetector,
    scratch: &mut Scratch,
) -> Column {
    let mut out = Column::with_capacity(
        kept.len(),
        source.text_len() / source.len().max(1) * kept.len(),
    );
    for &row in kept {
        let cell = source.get(row);
        if cell.is_null() {
            out.push_null();
            continue;
        }
        let country = countries.get(row);
        // Most notes hold no candidate at all: look the country up only for those that may.
        let region = if country.is_null() || !detector.may_find(cell.text) {
            None
        } else {
            detector.phone_region(country.text, &mut scratch.country)
        };
        detector.redact_in(cell.text, region, &mut scratch.findings, &mut scratch.text);
        out.push(Cell {
            kind: cell.kind,
            text: &scratch.text,
        });
    }
    out
}

/// Reused buffers for one thread's work.
#[derive(Default)]
pub(crate) struct Scratch {
    text: String,
    findings: Vec<Finding>,
    /// A country name, lowercased.
    country: String,
}

impl CompiledPolicy {
    /// The fields of the batches [`CompiledPolicy::apply`] gives back: those that leave, in policy
    /// order.
    pub fn output_schema(&self) -> &Arc<Schema> {
        &self.output
    }

    /// Transforms one batch: filters first, then column by column over the rows the filters
    /// kept. Filtered rows are never copied or transformed (in the benchmark's data the consent
    /// filter leaves about a third of the rows).
    pub fn apply(&self, input: &Batch) -> PolicyOutput {
        let rows = input.len();
        let mut keep = vec![true; rows];
        // Rows whose consent is no yes/no value: refused, not filtered (nor withdrawn).
        let mut refused = Vec::new();
        let no_consent = self
            .consent
            .as_ref()
            .map_or(0, |c| c.filter(input, &mut keep, &mut refused));
        let suppressed = self
            .suppression
            .as_ref()
            .map_or(0, |s| s.filter(input, &mut keep))
            + self
                .erased
                .as_ref()
                .map_or(0, |e| e.filter(input, &mut keep));
        let kept: Vec<usize> = (0..rows).filter(|&row| keep[row]).collect();

        // Indexed like `kept`: the output rows.
        let mut failed: Vec<Option<RejectReason>> = vec![None; kept.len()];
        let mut scratch = Scratch::default();
        let columns: Vec<Column> = self
            .ops
            .iter()
            .map(|op| self.column(op, input, &kept, &mut failed, &mut scratch))
            .collect();

        let lines = kept.iter().map(|&row| input.lines()[row]).collect();
        let mut batch = Batch::from_columns(self.output.clone(), columns, lines);
        let mut rejected = refused;
        if failed.iter().any(Option::is_some) {
            let mut leaves = vec![true; kept.len()];
            for (out_row, reason) in failed.into_iter().enumerate() {
                if let Some(reason) = reason {
                    leaves[out_row] = false;
                    rejected.push((kept[out_row], reason));
                }
            }
            batch.retain_rows(&leaves);
        }
        // In source order, as the engine quarantines them.
        rejected.sort_by_key(|(row, _)| *row);
        let withdrawn = match self.withdrawal_op {
            Some(op) if kept.len() < rows => {
                // A row refused for its consent value was not withdrawn: only the rows the
                // filters removed are.
                let mut not_withdrawn = keep.clone();
                for (row, _) in &rejected {
                    not_withdrawn[*row] = true;
                }
                if not_withdrawn.iter().all(|k| *k) {
                    Column::default()
                } else {
                    self.withdrawn_keys(&self.ops[op], input, &not_withdrawn)
                }
            }
            _ => Column::default(),
        };
        PolicyOutput {
            batch,
            rejected,
            no_consent,
            suppressed,
            withdrawn,
        }
    }

    /// The key's output values of the rows the filters removed; a key that cannot be made
    /// (null, or refused by its rule) names no row a sink could hold, so it is left out.
    fn withdrawn_keys(&self, op: &Op, input: &Batch, keep: &[bool]) -> Column {
        let filtered: Vec<usize> = (0..keep.len()).filter(|&row| !keep[row]).collect();
        let mut failed = vec![None; filtered.len()];
        let keys = self.column(op, input, &filtered, &mut failed, &mut Scratch::default());
        let mut out = Column::with_capacity(keys.len(), keys.text_len());
        for (row, cell) in keys.iter().enumerate() {
            if failed[row].is_none() && !cell.is_null() {
                out.push(cell);
            }
        }
        out
    }

    /// The output column of `op` for the input rows `kept`; a row whose value fails is noted
    /// in `failed` (indexed like `kept`) and gets a null.
    fn column(
        &self,
        op: &Op,
        input: &Batch,
        kept: &[usize],
        failed: &mut [Option<RejectReason>],
        scratch: &mut Scratch,
    ) -> Column {
        // A `null` field reads nothing from the source (its column may not even be there).
        if let Transform::Null = op.transform {
            let mut c = Column::with_capacity(kept.len(), 0);
            (0..kept.len()).for_each(|_| c.push_null());
            return c;
        }
        let source = input.column(op.input);
        if let Transform::TokenizePerSubject { key, subject, keys } = &op.transform {
            return per_subject(
                op,
                source,
                input.column(*subject),
                kept,
                failed,
                key,
                &**keys,
            );
        }
        if let Transform::Typed(t) = op.transform {
            let mut out = Column::with_capacity(kept.len(), source.text_len());
            for (out_row, &row) in kept.iter().enumerate() {
                let cell = source.get(row);
                if let Err(detail) = t.convert(cell.kind, cell.text, &mut out) {
                    out.push_null();
                    if failed[out_row].is_none() {
                        failed[out_row] = Some(RejectReason::InvalidField {
                            field: op.field.clone(),
                            detail: detail.into(),
                        });
                    }
                }
            }
            return out;
        }
        if let Transform::RedactByRegion { detector, country } = &op.transform {
            return redact_by_region(source, input.column(*country), kept, detector, scratch);
        }
        let mut out = match op.transform {
            Transform::Copy if kept.len() == source.len() => return source.clone(),
            Transform::Copy => return source.gather(kept),
            // The kept rows' share of the text, and room for values that grow (tokens, digests).
            _ => Column::with_capacity(
                kept.len(),
                source.text_len() / source.len().max(1) * kept.len() + kept.len() * 8,
            ),
        };
        for (out_row, &row) in kept.iter().enumerate() {
            let cell = source.get(row);
            if cell.is_null() {
                out.push_null();
                continue;
            }
            match self.transform_cell(&op.transform, cell, &mut out, scratch) {
                Ok(()) => {}
                Err(detail) => {
                    out.push_null();
                    if failed[out_row].is_none() {
                        failed[out_row] = Some(RejectReason::InvalidField {
                            field: op.field.clone(),
                            detail: detail.into(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Pushes exactly one cell to `out` on success, none on error.
    pub(crate) fn transform_cell(
        &self,
        t: &Transform,
        cell: Cell<'_>,
        out: &mut Column,
        scratch: &mut Scratch,
    ) -> Result<(), &'static str> {
        let text = &mut scratch.text;
        match t {
            Transform::Copy
            | Transform::Typed(_)
            | Transform::Null
            | Transform::TokenizePerSubject { .. }
            | Transform::RedactByRegion { .. } => {
                unreachable!("handled per column")
            }
            Transform::Hmac {
                mac,
                normalize,
                encoding,
            } => {
                if !normalize.apply(cell.text, text)? {
                    out.push_null();
                    return Ok(());
                }
                let digest = mac.mac(text.as_bytes());
                out.push_with(CellKind::Text, |s| encode(&digest, *encoding, s));
            }
            Transform::MatchHash { normalize } => {
                let trimmed = cell.text.trim();
                // Already a SHA-256 digest (hashed upstream): pass it through, never hash twice.
                if trimmed.len() == 64 && trimmed.bytes().all(|b| b.is_ascii_hexdigit()) {
                    out.push_with(CellKind::Text, |s| {
                        s.push_str(trimmed);
                        let start = s.len() - 64;
                        s[start..].make_ascii_lowercase();
                    });
                    return Ok(());
                }
                if !normalize.apply(cell.text, text)? {
                    out.push_null();
                    return Ok(());
                }
                let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
                out.push_with(CellKind::Text, |s| encode(&digest, Encoding::Hex, s));
            }
            Transform::Mask(m) => out.push_with(CellKind::Text, |s| m.apply(cell.text, s)),
            Transform::Tokenize(t) => {
                out.push_with(CellKind::Text, |s| t.tokenize_into(cell.text.as_bytes(), s))
            }
            Transform::Generalize(g) => {
                // A blank value is a missing one (JSON's "" as much as CSV's empty cell).
                if cell.text.trim().is_empty() {
                    out.push_null();
                    return Ok(());
                }
                text.clear();
                g.apply(cell.text, self.today, text)?;
                out.push(Cell::text(text));
            }
            Transform::Redact(d) => {
                d.redact_into(cell.text, &mut scratch.findings, text);
                out.push(Cell {
                    kind: cell.kind,
                    text,
                });
            }
        }
        Ok(())
    }
}

fn encode(digest: &[u8; 32], encoding: Encoding, out: &mut String) {
    match encoding {
        Encoding::Hex => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for b in digest {
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
        Encoding::Base64url => {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(digest, out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(names: &[&str]) -> Arc<Schema> {
        Arc::new(Schema::new(names.iter().map(|s| s.to_string()).collect()))
    }

    const KEY: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

    fn keys() -> KeyMaterial {
        let mut k = KeyMaterial::new();
        k.insert(
            "env:PEPPER".into(),
            ResolvedKey {
                id: "0011223344556677".into(),
                material: SecretValue::new(KEY.to_vec()),
            },
        );
        k
    }

    fn compile(
        policy: &str,
        schema: &Schema,
        suppression: &[String],
    ) -> Result<CompiledPolicy, PolicyError> {
        let p: Policy = toml::from_str(policy).unwrap();
        let keys = keys();
        p.compile(
            schema,
            &CompileInputs {
                subjects: None,
                keys: &keys,
                suppression_list: suppression,
                withdrawal_key: None,
                today: Day {
                    year: 2026,
                    month: 11,
                    day: 22,
                },
            },
        )
    }

    fn batch() -> Batch {
        let mut b = Batch::new(schema(&[
            "id", "email", "notes", "opt_in", "phone", "birth",
        ]));
        b.push_row(
            2,
            [
                Cell::text("1"),
                Cell::text(" Jane@Example.com"),
                Cell::text("secret note"),
                Cell::text("Yes"),
                Cell::text("(415) 555-0132"),
                Cell::text("1984-07-09"),
            ],
        );
        b.push_row(
            3,
            [
                Cell::text("2"),
                Cell::NULL,
                Cell::text("x"),
                Cell::text("no"),
                Cell::NULL,
                Cell::text("not a date"),
            ],
        );
        b.push_row(
            4,
            [
                Cell::text("3"),
                Cell::text("bob@example.com"),
                Cell::NULL,
                Cell::text("1"),
                Cell::text("12"),
                Cell::NULL,
            ],
        );
        b
    }

    #[test]
    fn keep_drop_null_and_from_in_policy_order() {
        let c = compile(
            r#"
            fields.email = "null"
            fields.id = "keep"
            fields.notes = "drop"
            fields.id_copy = { from = "id" }
            "#,
            batch().schema(),
            &[],
        )
        .unwrap();
        let out = c.apply(&batch()).batch;
        assert_eq!(out.schema().fields(), &["email", "id", "id_copy"]);
        assert!(out.column(0).get(0).is_null());
        assert_eq!(out.column(2).get(1).text, "2");
        assert_eq!(out.lines(), &[2, 3, 4]);
        assert!(!format!("{out:?}").contains("secret note"));
    }

    #[test]
    fn redact_reads_each_records_region_from_its_country_field() {
        let mut b = Batch::new(schema(&["notes", "country"]));
        b.push_row(
            1,
            [Cell::text("Büro 030 1234567"), Cell::text("Deutschland")],
        );
        b.push_row(2, [Cell::text("Büro 030 1234567"), Cell::text("US")]);
        b.push_row(3, [Cell::text("tél. 01 44 60 56 93"), Cell::text("fr")]);
        // Unknown country: the configured regions (ES) decide.
        b.push_row(
            4,
            [Cell::text("móvil 612 34 56 78"), Cell::text("Atlantis")],
        );
        b.push_row(5, [Cell::text("móvil 612 34 56 78"), Cell::NULL]);
        let c = compile(
            r#"fields.notes = { redact = ["phone"], region = ["ES"], region_from = "country" }"#,
            b.schema(),
            &[],
        )
        .unwrap();
        let out = c.apply(&b).batch;
        assert_eq!(out.schema().fields(), &["notes"]);
        let notes: Vec<&str> = (0..5).map(|r| out.column(0).get(r).text).collect();
        assert_eq!(
            notes,
            [
                "Büro [PHONE]",
                "Büro 030 1234567",
                "tél. [PHONE]",
                "móvil [PHONE]",
                "móvil [PHONE]"
            ]
        );
    }

    #[test]
    fn hmac_matches_an_independent_computation() {
        let c = compile(
            r#"fields.email = { hash = "hmac-sha256", key = "env:PEPPER", normalize = "email" }
               fields.e64 = { from = "email", hash = "hmac-sha256", key = "env:PEPPER", normalize = "email", encoding = "base64url" }"#,
            batch().schema(),
            &[],
        )
        .unwrap();
        let out = c.apply(&batch()).batch;
        // Python: hmac.new(b"0123456789abcdef0123456789abcdef", b"jane@example.com", "sha256")
        assert_eq!(
            out.column(0).get(0).text,
            "e54ecd8285defd5c7a03f9025dba809862224f8c4b3b8ec1b7844d775a27b734"
        );
        assert_eq!(
            out.column(1).get(0).text,
            "5U7NgoXe_Vx6A_kCXbqAmGIiT4xLO47Bt4RNd1ontzQ"
        );
        assert!(out.column(0).get(1).is_null(), "null stays null");
    }

    #[test]
    fn match_hash_is_plain_sha256_and_passes_digests_through() {
        let mut b = Batch::new(schema(&["email"]));
        b.push_row(1, [Cell::text("  Jane.Doe@GMAIL.com ")]);
        let digest = "A".repeat(64);
        b.push_row(2, [Cell::text(&digest)]);
        let c = compile(
            r#"fields.email = { match_hash = "sha256", normalize = "email" }"#,
            b.schema(),
            &[],
        )
        .unwrap();
        let out = c.apply(&b).batch;
        // Python: hashlib.sha256(b"janedoe@gmail.com").hexdigest() (Google removes gmail dots)
        assert_eq!(
            out.column(0).get(0).text,
            "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69"
        );
        assert_eq!(out.column(0).get(1).text, "a".repeat(64));
    }

    #[test]
    fn failed_steps_reject_the_row_and_filters_count() {
        let c = compile(
            r#"
            fields.id = "keep"
            fields.phone = { hash = "hmac-sha256", key = "env:PEPPER", normalize = "phone", region = "US" }
            fields.birth = { generalize = "year" }
            [consent]
            field = "opt_in"
            "#,
            batch().schema(),
            &[],
        )
        .unwrap();
        let out = c.apply(&batch());
        // Row 2 (index 1) has no consent: filtered, not rejected, though its date is bad.
        assert_eq!(out.no_consent, 1);
        // Row 3 (index 2): "12" is no phone number.
        assert_eq!(out.rejected.len(), 1);
        assert_eq!(out.rejected[0].0, 2);
        assert_eq!(
            out.rejected[0].1.to_string(),
            "field `phone`: not a phone number"
        );
        assert_eq!(out.batch.lines(), &[2]);
        assert_eq!(out.batch.column(2).get(0).text, "1984");
    }

    /// The consent field leaves as `true`/`false`, whatever its spelling; a value that is no
    /// yes/no answer is refused (not filtered, not withdrawn), naming the field, not the value.
    /// Typed fields leave in their canonical form, or refuse the record.
    #[test]
    fn consent_is_normalized_and_typed_values_are_checked() {
        let mut b = Batch::new(schema(&["id", "opt_in", "visits", "signed_up", "born"]));
        let rows = [
            ["1", "YES", "3", "2026-01-02T04:00:00+01:00", "1984-07-09"],
            ["2", "On", "+4", "2026-01-02T03:00:00Z", ""],
            [
                "3",
                "maybe-canary",
                "5",
                "2026-01-02T03:00:00Z",
                "1984-07-09",
            ],
            ["4", "no", "6", "2026-01-02T03:00:00Z", "1984-07-09"],
            [
                "5",
                "1",
                "many-canary",
                "2026-01-02T03:00:00Z",
                "1984-07-09",
            ],
            ["6", "y", "7", "2026-01-02T03:00:00Z", "09/07/1984"],
        ];
        for (i, row) in rows.iter().enumerate() {
            b.push_row(i as u64 + 2, row.iter().map(|v| Cell::text(v)));
        }
        let p: Policy = toml::from_str(
            r#"
            fields.id = { type = "integer" }
            fields.opt_in = "keep"
            fields.visits = { type = "integer" }
            fields.signed_up = { type = "timestamp" }
            fields.born = { type = "date" }
            [consent]
            field = "opt_in"
            "#,
        )
        .unwrap();
        let types: Vec<(String, ValueType)> = p.output_types();
        assert_eq!(types.len(), 5);
        assert_eq!(types[1], ("opt_in".to_string(), ValueType::Boolean));
        let keys = keys();
        let c = p
            .compile(
                b.schema(),
                &CompileInputs {
                    subjects: None,
                    keys: &keys,
                    suppression_list: &[],
                    withdrawal_key: Some("id"),
                    today: Day {
                        year: 2026,
                        month: 11,
                        day: 22,
                    },
                },
            )
            .unwrap();
        let out = c.apply(&b);
        assert_eq!(out.no_consent, 1);
        let withdrawn: Vec<&str> = out.withdrawn.iter().map(|c| c.text).collect();
        assert_eq!(withdrawn, ["4"], "a refused consent is not a withdrawal");
        let rejected: Vec<(usize, String)> = out
            .rejected
            .iter()
            .map(|(row, r)| (*row, r.to_string()))
            .collect();
        assert_eq!(
            rejected,
            [
                (
                    2,
                    format!("field `opt_in`: {}", ValueType::Boolean.refusal())
                ),
                (
                    4,
                    format!("field `visits`: {}", ValueType::Integer.refusal())
                ),
                (5, format!("field `born`: {}", ValueType::Date.refusal())),
            ]
        );
        assert!(!format!("{rejected:?}").contains("canary"));
        let out = out.batch;
        assert_eq!(out.lines(), &[2, 3]);
        let cell = |col: usize, row: usize| {
            let c = out.column(col).get(row);
            (c.kind, c.text.to_string())
        };
        assert_eq!(cell(0, 0), (CellKind::Number, "1".into()));
        assert_eq!(cell(1, 0), (CellKind::Bool, "true".into()));
        assert_eq!(cell(1, 1), (CellKind::Bool, "true".into()));
        assert_eq!(cell(2, 1), (CellKind::Number, "4".into()));
        assert_eq!(cell(3, 0), (CellKind::Text, "2026-01-02T03:00:00Z".into()));
        assert_eq!(cell(4, 0), (CellKind::Text, "1984-07-09".into()));
        assert!(out.column(4).get(1).is_null(), "empty is null");
    }

    #[test]
    fn type_applies_to_kept_values_only() {
        let e = toml::from_str::<Policy>(
            r#"fields.email = { hash = "hmac-sha256", key = "env:K", type = "integer" }"#,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("`type` does not apply to hash"),
            "{e}"
        );
        let e = toml::from_str::<Policy>(r#"fields.n = { type = "decimal" }"#).unwrap_err();
        assert!(e.to_string().contains("unknown variant"), "{e}");
        let p: Policy = toml::from_str(r#"fields.n = { from = "m", type = "date" }"#).unwrap();
        assert_eq!(p.rules()[0].1.describe(), "kept as date (from `m`)");
    }

    #[test]
    fn a_policy_of_null_fields_needs_no_source_column() {
        let mut b = Batch::new(schema(&[]));
        b.push_row(1, std::iter::empty::<Cell<'_>>());
        let c = compile(r#"fields.gone = "null""#, b.schema(), &[]).unwrap();
        let out = c.apply(&b);
        assert_eq!(out.batch.len(), 1);
        assert!(out.batch.column(0).get(0).is_null());
    }

    #[test]
    fn a_blank_value_generalizes_to_null_not_to_an_error() {
        let mut b = Batch::new(schema(&["birth"]));
        b.push_row(1, [Cell::text("")]);
        b.push_row(2, [Cell::text("  ")]);
        b.push_row(3, [Cell::text("1984-07-09")]);
        let c = compile(r#"fields.birth = { generalize = "year" }"#, b.schema(), &[]).unwrap();
        let out = c.apply(&b);
        assert!(out.rejected.is_empty());
        assert!(out.batch.column(0).get(0).is_null());
        assert!(out.batch.column(0).get(1).is_null());
        assert_eq!(out.batch.column(0).get(2).text, "1984");
    }

    #[test]
    fn suppression_matches_plain_and_hashed_entries() {
        let bob_mac =
            hex::encode(HmacSha256::new(&SecretValue::new(KEY.to_vec())).mac(b"bob@example.com"));
        let list = vec![
            "# comment".to_string(),
            " JANE@example.com".to_string(),
            bob_mac,
            String::new(),
        ];
        let c = compile(
            r#"
            fields.id = "keep"
            fields.email = { hash = "hmac-sha256", key = "env:PEPPER", normalize = "email" }
            [suppression]
            file = "s.txt"
            field = "email"
            "#,
            batch().schema(),
            &list,
        )
        .unwrap();
        let out = c.apply(&batch());
        assert_eq!(out.suppressed, 2);
        assert_eq!(out.batch.lines(), &[3]);
    }

    fn mac_hex(value: &str) -> String {
        hex::encode(HmacSha256::new(&SecretValue::new(KEY.to_vec())).mac(value.as_bytes()))
    }

    fn emails(values: &[&str]) -> Batch {
        let mut b = Batch::new(schema(&["email"]));
        for (line, v) in values.iter().enumerate() {
            b.push_row(line as u64 + 2, [Cell::text(v)]);
        }
        b
    }

    const SUPPRESS_EMAIL: &str = r#"
            [suppression]
            file = "s.txt"
            field = "email"
            "#;

    /// The lines (from 2) that leave when `policy` runs over `values` with the list `list`.
    fn leaving(policy: &str, values: &[&str], list: &[String]) -> Vec<u64> {
        let b = emails(values);
        let c = compile(&format!("{policy}\n{SUPPRESS_EMAIL}"), b.schema(), list).unwrap();
        let out = c.apply(&b);
        assert!(out.rejected.is_empty());
        out.batch.lines().to_vec()
    }

    /// With gmail rules, `michal.7+promo@gmail.com` is hashed as `michal7@gmail.com`: the list's
    /// HMAC of that address must stop it, as must the plain address.
    #[test]
    fn suppression_uses_the_hash_rules_gmail_normalization() {
        let policy = r#"fields.email = { hash = "hmac-sha256", key = "env:PEPPER", normalize = "email", gmail = true }"#;
        let values = [
            "michal.7+promo@gmail.com",
            " Michal.7@GoogleMail.com",
            "\"Michal\" <M.i.chal7+x@gmail.com>",
            "michal8@gmail.com",
            "michal7@example.com",
        ];
        let kept = [5, 6];
        assert_eq!(
            leaving(policy, &values, &[mac_hex("michal7@gmail.com")]),
            kept
        );
        assert_eq!(
            leaving(policy, &values, &["Michal7@gmail.com".into()]),
            kept
        );
        // The list's own entries are normalized the same way.
        assert_eq!(
            leaving(policy, &values, &["m.ichal7+list@googlemail.com".into()]),
            kept
        );
    }

    /// `"Michal W" <michal@wonka.example>` (as `sample contacts` writes some addresses) is the
    /// address `michal@wonka.example`, for the pseudonym and for the list.
    #[test]
    fn display_name_emails_are_matched_by_their_address() {
        let policy =
            r#"fields.email = { hash = "hmac-sha256", key = "env:PEPPER", normalize = "email" }"#;
        let values = [
            "\"Michal W\" <michal@wonka.example>",
            "Michal W <Michal@Wonka.example> ",
            "<michal@wonka.example>",
            "michal@wonka.example",
            "\"Other\" <other@wonka.example>",
            "michal.w@wonka.example",
        ];
        let kept = [6, 7];
        assert_eq!(
            leaving(policy, &values, &["michal@wonka.example".into()]),
            kept
        );
        assert_eq!(
            leaving(policy, &values, &[mac_hex("michal@wonka.example")]),
            kept
        );
        assert_eq!(
            leaving(
                policy,
                &values,
                &["\"M. W.\" <MICHAL@wonka.example>".into()]
            ),
            kept
        );
        // The pseudonym is the address's.
        let b = emails(&values[..1]);
        let out = compile(policy, b.schema(), &[]).unwrap().apply(&b).batch;
        assert_eq!(out.column(0).get(0).text, mac_hex("michal@wonka.example"));
    }

    /// A second rule writing the field out under gmail rules (or a platform's) is another form
    /// the person leaves in: the list is matched in each.
    #[test]
    fn suppression_matches_every_form_the_field_leaves_in() {
        let policy = r#"
            fields.email = { hash = "hmac-sha256", key = "env:PEPPER", normalize = "email" }
            fields.email_g = { from = "email", hash = "hmac-sha256", key = "env:PEPPER", normalize = "email", gmail = true }
            "#;
        let values = ["jane.doe+x@gmail.com", "jane.doe@example.com"];
        assert_eq!(
            leaving(policy, &values, &[mac_hex("janedoe@gmail.com")]),
            [3]
        );
        let policy = r#"
            fields.email = "drop"
            fields.email_match = { from = "email", match_hash = "sha256", normalize = "email" }
            "#;
        // Google's rules remove gmail dots: the listed inbox's match hash is this record's.
        assert_eq!(
            leaving(policy, &values, &["janedoe+x@gmail.com".into()]),
            [3]
        );
    }

    proptest::proptest! {
        /// The finding's rule: a record whose output pseudonym is on the list never leaves.
        #[test]
        fn a_record_whose_pseudonym_is_listed_never_leaves(
            display in proptest::option::of("[A-Za-z ]{0,8}"),
            local in "[a-zA-Z0-9._+-]{1,12}",
            domain in proptest::sample::select(vec!["gmail.com", "GoogleMail.com", "example.com", "Wonka.Example"]),
            pad in "[ \t]{0,2}",
            gmail in proptest::bool::ANY,
            normalize in proptest::sample::select(vec!["email", "lower", "trim", "none"]),
        ) {
            let address = format!("{local}@{domain}");
            let value = match display {
                Some(name) => format!("{pad}\"{name}\" <{address}>{pad}"),
                None => format!("{pad}{address}{pad}"),
            };
            let gmail = if gmail && normalize == "email" { ", gmail = true" } else { "" };
            let policy = format!(
                r#"fields.email = {{ hash = "hmac-sha256", key = "env:PEPPER", normalize = "{normalize}"{gmail} }}"#
            );
            let b = emails(&[&value]);
            let out = compile(&policy, b.schema(), &[]).unwrap().apply(&b).batch;
            let pseudonym = out.column(0).get(0).text.to_string();
            proptest::prop_assert!(leaving(&policy, &[&value], &[pseudonym]).is_empty(), "{value:?} left");
        }
    }

    /// The withdrawn records' keys are the values the sink holds: the key's own output (here
    /// its HMAC), only for rows the filters removed, and only when asked for.
    #[test]
    fn withdrawn_keys_are_the_filtered_rows_output_keys() {
        let policy: Policy = toml::from_str(
            r#"
            fields.email = { hash = "hmac-sha256", key = "env:PEPPER", normalize = "email" }
            fields.id = "keep"
            [suppression]
            file = "s.txt"
            field = "email"
            "#,
        )
        .unwrap();
        let keys = keys();
        let b = batch();
        let list = vec!["bob@example.com".to_string()];
        let compiled = |withdrawal_key| {
            policy
                .compile(
                    b.schema(),
                    &CompileInputs {
                        subjects: None,
                        keys: &keys,
                        suppression_list: &list,
                        withdrawal_key,
                        today: Day {
                            year: 2026,
                            month: 11,
                            day: 22,
                        },
                    },
                )
                .unwrap()
        };
        let out = compiled(Some("email")).apply(&b);
        assert_eq!(out.suppressed, 1);
        let expected =
            hex::encode(HmacSha256::new(&SecretValue::new(KEY.to_vec())).mac(b"bob@example.com"));
        let withdrawn: Vec<&str> = out.withdrawn.iter().map(|c| c.text).collect();
        assert_eq!(withdrawn, [expected.as_str()]);
        assert!(compiled(None).apply(&b).withdrawn.is_empty());
    }

    #[test]
    fn a_resolved_key_of_any_scheme_compiles() {
        let p: Policy =
            toml::from_str(r#"fields.email = { hash = "hmac-sha256", key = "vault:kv/pepper" }"#)
                .unwrap();
        let mut keys = keys();
        let compile = |keys: &KeyMaterial| {
            p.compile(
                batch().schema(),
                &CompileInputs {
                    subjects: None,
                    keys,
                    suppression_list: &[],
                    withdrawal_key: None,
                    today: Day {
                        year: 2026,
                        month: 11,
                        day: 22,
                    },
                },
            )
        };
        // Not resolved, and not a reference of a built-in scheme: refused as a literal key,
        // without printing it.
        let e = compile(&keys).unwrap_err();
        assert!(matches!(e, PolicyError::KeyNotAReference { .. }), "{e}");
        assert!(!e.to_string().contains("kv/pepper"), "{e}");
        keys.insert(
            "vault:kv/pepper".into(),
            ResolvedKey {
                id: "8899aabbccddeeff".into(),
                material: SecretValue::new(KEY.to_vec()),
            },
        );
        assert!(compile(&keys).is_ok());
    }

    #[test]
    fn missing_source_field_and_short_key_are_errors() {
        let e = compile(r#"fields.fax = "keep""#, batch().schema(), &[]).unwrap_err();
        assert_eq!(e, PolicyError::MissingSourceField("fax".into()));
        let e = compile(
            r#"fields.email = { hash = "hmac-sha256", key = "env:OTHER" }"#,
            batch().schema(),
            &[],
        )
        .unwrap_err();
        assert!(matches!(e, PolicyError::KeyNotResolved { .. }));
    }

    /// Checking and compiling look each rule's field up once (a set, a map), not by scanning
    /// every rule or column before it: 40,000 rules take well under a second even in a debug
    /// build, where the quadratic scans took seconds.
    #[test]
    fn forty_thousand_rules_check_and_compile_in_linear_time() {
        let names: Vec<String> = (0..40_000).map(|i| format!("f{i:05}")).collect();
        let text: String = names
            .iter()
            .map(|n| format!("fields.{n} = \"keep\"\n"))
            .collect();
        let p: Policy = toml::from_str(&text).unwrap();
        let schema = Schema::new(names.clone());
        let keys = keys();
        let inputs = CompileInputs {
            subjects: None,
            keys: &keys,
            suppression_list: &[],
            withdrawal_key: None,
            today: Day {
                year: 2026,
                month: 11,
                day: 22,
            },
        };
        let start = std::time::Instant::now();
        p.check().unwrap();
        assert_eq!(p.source_fields().len(), names.len());
        p.compile(&schema, &inputs).unwrap();
        let took = start.elapsed();
        // Linear takes about 0.1 s in a debug build and quadratic tens of seconds: the bound
        // tells them apart with room for a loaded CI machine (speed itself lives in bench/).
        assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    }
}
