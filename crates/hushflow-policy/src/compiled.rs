//! The policy compiled against one source schema: a list of column operations, run batch by
//! batch. Field names are looked up once here, never per record.

use crate::{Encoding, FieldRule, Normalize, Policy, PolicyError};
use base64::Engine as _;
use hushflow_core::{Batch, CellKind, Column, RejectReason, Schema};
use hushflow_crypto::HmacSha256;
use hushflow_secrets::SecretValue;
use std::collections::HashMap;
use std::sync::Arc;

/// Resolved key material by secret reference (`keyring:pepper` → its bytes).
pub type KeyMaterial = HashMap<String, SecretValue>;

/// Minimum key length for keyed hashing: shorter keys make pseudonyms guessable.
const MIN_KEY_BYTES: usize = 16;

enum Op {
    Copy {
        input: usize,
    },
    Null,
    Hmac {
        input: usize,
        mac: Box<HmacSha256>,
        normalize: Normalize,
        encoding: Encoding,
    },
}

/// What [`CompiledPolicy::apply`] gives back for one batch.
#[derive(Debug)]
pub struct PolicyOutput {
    /// Rows that leave, over [`CompiledPolicy::output_schema`].
    pub batch: Batch,
    /// Rows (by index in the input batch) the policy refused, and why; the engine quarantines them.
    pub rejected: Vec<(usize, RejectReason)>,
    /// Rows a filter removed on purpose (consent, suppression); counted, not quarantined.
    pub filtered: usize,
}

pub struct CompiledPolicy {
    ops: Vec<Op>,
    output: Arc<Schema>,
}

impl std::fmt::Debug for CompiledPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledPolicy")
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// Binds the policy to a source schema and its keys. Fails if the source lacks a field the
    /// policy reads or a key is missing.
    pub fn compile(
        &self,
        input: &Schema,
        keys: &KeyMaterial,
    ) -> Result<CompiledPolicy, PolicyError> {
        self.check()?;
        let mut ops = Vec::new();
        let mut output = Vec::new();
        for (name, rule) in self.rules() {
            let index = || {
                input
                    .index_of(name)
                    .ok_or_else(|| PolicyError::MissingSourceField(name.clone()))
            };
            let op = match rule {
                FieldRule::Drop => continue,
                FieldRule::Keep => Op::Copy { input: index()? },
                FieldRule::Null => Op::Null,
                FieldRule::Hash(h) => {
                    let key = keys
                        .get(&h.key)
                        .ok_or_else(|| PolicyError::KeyNotResolved {
                            field: name.clone(),
                            key: h.key.clone(),
                        })?;
                    if key.expose().len() < MIN_KEY_BYTES {
                        return Err(PolicyError::KeyTooShort {
                            field: name.clone(),
                            key: h.key.clone(),
                        });
                    }
                    Op::Hmac {
                        input: index()?,
                        mac: Box::new(HmacSha256::new(key)),
                        normalize: h.normalize,
                        encoding: h.encoding,
                    }
                }
            };
            ops.push(op);
            output.push(name.clone());
        }
        Ok(CompiledPolicy {
            ops,
            output: Arc::new(Schema::new(output)),
        })
    }
}

impl CompiledPolicy {
    pub fn output_schema(&self) -> &Arc<Schema> {
        &self.output
    }

    /// Transforms one batch, column by column.
    pub fn apply(&self, input: &Batch) -> PolicyOutput {
        let rows = input.len();
        let mut scratch = String::new();
        let columns = self
            .ops
            .iter()
            .map(|op| match op {
                Op::Copy { input: i } => input.column(*i).clone(),
                Op::Null => {
                    let mut c = Column::with_capacity(rows, 0);
                    (0..rows).for_each(|_| c.push_null());
                    c
                }
                Op::Hmac {
                    input: i,
                    mac,
                    normalize,
                    encoding,
                } => hash_column(input.column(*i), mac, *normalize, *encoding, &mut scratch),
            })
            .collect();
        PolicyOutput {
            batch: Batch::from_columns(self.output.clone(), columns, input.lines().to_vec()),
            rejected: Vec::new(),
            filtered: 0,
        }
    }
}

fn hash_column(
    column: &Column,
    mac: &HmacSha256,
    normalize: Normalize,
    encoding: Encoding,
    scratch: &mut String,
) -> Column {
    let mut out = Column::with_capacity(column.len(), column.len() * 64);
    let mut buf = [0u8; 64];
    for cell in column.iter() {
        if cell.is_null() || !normalize.apply(cell.text, scratch) {
            out.push_null();
            continue;
        }
        let digest = mac.mac(scratch.as_bytes());
        let encoded = match encoding {
            Encoding::Hex => hex::encode_to_slice(digest, &mut buf)
                .map(|_| &buf[..64])
                .ok(),
            Encoding::Base64url => base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode_slice(digest, &mut buf)
                .map(|n| &buf[..n])
                .ok(),
        };
        // Both encodings of a 32-byte digest fit in 64 bytes and are ASCII, so this is never
        // None; a null is still the safe fallback rather than a panic.
        match encoded.and_then(|b| std::str::from_utf8(b).ok()) {
            Some(text) => out.push_with(CellKind::Text, |s| s.push_str(text)),
            None => out.push_null(),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hushflow_core::Cell;

    fn schema(names: &[&str]) -> Arc<Schema> {
        Arc::new(Schema::new(names.iter().map(|s| s.to_string()).collect()))
    }

    fn keys() -> KeyMaterial {
        let mut k = KeyMaterial::new();
        k.insert(
            "env:PEPPER".into(),
            SecretValue::new(b"0123456789abcdef0123456789abcdef".to_vec()),
        );
        k
    }

    fn policy(s: &str) -> Policy {
        toml::from_str(s).unwrap()
    }

    fn batch() -> Batch {
        let mut b = Batch::new(schema(&["id", "email", "notes"]));
        b.push_row(
            2,
            [
                Cell::text("1"),
                Cell::text(" Jane@Example.com"),
                Cell::text("secret note"),
            ],
        );
        b.push_row(3, [Cell::text("2"), Cell::NULL, Cell::text("x")]);
        b
    }

    #[test]
    fn keep_drop_null_in_policy_order() {
        let p = policy(
            r#"
            fields.email = "null"
            fields.id = "keep"
            fields.notes = "drop"
            "#,
        );
        let c = p.compile(batch().schema(), &keys()).unwrap();
        let out = c.apply(&batch()).batch;
        assert_eq!(
            out.schema().fields(),
            &["email".to_string(), "id".to_string()]
        );
        assert!(out.column(0).get(0).is_null());
        assert_eq!(out.column(1).get(1).text, "2");
        assert_eq!(out.lines(), &[2, 3]);
        // Dropped content is nowhere in the output.
        assert!(!format!("{out:?}").contains("secret note"));
    }

    #[test]
    fn hmac_matches_an_independent_computation() {
        let p = policy(
            r#"fields.email = { hash = "hmac-sha256", key = "env:PEPPER", normalize = "email" }"#,
        );
        let c = p.compile(batch().schema(), &keys()).unwrap();
        let out = c.apply(&batch()).batch;
        // Computed independently with Python's standard library:
        // hmac.new(b"0123456789abcdef0123456789abcdef", b"jane@example.com", "sha256").hexdigest()
        assert_eq!(
            out.column(0).get(0).text,
            "e54ecd8285defd5c7a03f9025dba809862224f8c4b3b8ec1b7844d775a27b734"
        );
        assert_eq!(out.column(0).get(0).text.len(), 64);
        assert!(out.column(0).get(1).is_null(), "null stays null");

        let p = policy(
            r#"fields.email = { hash = "hmac-sha256", key = "env:PEPPER", normalize = "email", encoding = "base64url" }"#,
        );
        let out = p
            .compile(batch().schema(), &keys())
            .unwrap()
            .apply(&batch())
            .batch;
        assert_eq!(
            out.column(0).get(0).text,
            "5U7NgoXe_Vx6A_kCXbqAmGIiT4xLO47Bt4RNd1ontzQ"
        );
    }

    #[test]
    fn missing_source_field_and_key_are_errors() {
        let p = policy(r#"fields.phone = "keep""#);
        assert_eq!(
            p.compile(batch().schema(), &keys()).unwrap_err(),
            PolicyError::MissingSourceField("phone".into())
        );
        let p = policy(r#"fields.email = { hash = "hmac-sha256", key = "env:OTHER" }"#);
        assert!(matches!(
            p.compile(batch().schema(), &keys()).unwrap_err(),
            PolicyError::KeyNotResolved { .. }
        ));
    }

    #[test]
    fn short_key_is_refused() {
        let mut k = KeyMaterial::new();
        k.insert("env:PEPPER".into(), SecretValue::new(b"short".to_vec()));
        let p = policy(r#"fields.email = { hash = "hmac-sha256", key = "env:PEPPER" }"#);
        assert!(matches!(
            p.compile(batch().schema(), &k).unwrap_err(),
            PolicyError::KeyTooShort { .. }
        ));
    }
}
