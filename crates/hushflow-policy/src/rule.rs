//! The policy as written in a pipeline file, and its checks that need no data.

use crate::Normalize;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// What happens to one field on its way out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FieldRule {
    /// Leaves unchanged.
    Keep,
    /// Never leaves; also what every unlisted field gets.
    Drop,
    /// Leaves as an empty value, so a sink's column still exists.
    Null,
    /// Leaves as a keyed hash (a pseudonym that still joins).
    Hash(HashRule),
}

impl FieldRule {
    /// Whether a value of this field leaves the source at all.
    pub fn emits(&self) -> bool {
        !matches!(self, FieldRule::Drop)
    }

    /// Whether the source needs to read this field (a nulled field's content is never read).
    pub fn reads_source(&self) -> bool {
        matches!(self, FieldRule::Keep | FieldRule::Hash(_))
    }

    /// One line a person can read, for `hushflow validate`'s plan.
    pub fn describe(&self) -> String {
        match self {
            FieldRule::Keep => "kept as is".into(),
            FieldRule::Drop => "dropped".into(),
            FieldRule::Null => "emptied (null)".into(),
            FieldRule::Hash(h) => {
                let mut s = format!("HMAC-SHA256 with {}", h.key);
                if h.normalize != Normalize::None {
                    s.push_str(&format!(", normalized as {}", h.normalize));
                }
                s.push_str(&format!(", {}", h.encoding));
                s
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HashAlgorithm {
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
}

/// How a digest is written out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Lowercase hexadecimal, 64 characters: what most systems join on.
    #[default]
    Hex,
    /// URL-safe base64 without padding, 43 characters.
    Base64url,
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::Hex => "hex",
            Encoding::Base64url => "base64url",
        })
    }
}

/// `{ hash = "hmac-sha256", key = "keyring:NAME", normalize = "email", encoding = "hex" }`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashRule {
    pub hash: HashAlgorithm,
    /// A secret reference (`keyring:NAME`, `env:NAME`, `file:PATH`), never the key itself.
    pub key: String,
    #[serde(default)]
    pub normalize: Normalize,
    #[serde(default)]
    pub encoding: Encoding,
}

impl<'de> Deserialize<'de> for FieldRule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RuleVisitor;
        impl<'de> Visitor<'de> for RuleVisitor {
            type Value = FieldRule;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#""keep", "drop", "null" or a table such as { hash = "hmac-sha256", key = "keyring:NAME" }"#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FieldRule, E> {
                match v {
                    "keep" => Ok(FieldRule::Keep),
                    "drop" => Ok(FieldRule::Drop),
                    "null" => Ok(FieldRule::Null),
                    // The value is a misspelt action, not data, but keep it out anyway: it
                    // could be a value pasted into the wrong place.
                    _ => Err(E::custom(
                        "unknown field action; expected \"keep\", \"drop\", \"null\" or a table with `hash`",
                    )),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FieldRule, A::Error> {
                HashRule::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(FieldRule::Hash)
            }
        }
        deserializer.deserialize_any(RuleVisitor)
    }
}

/// The `[policy]` table: field rules in the order written, which is also the output order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Policy {
    fields: Vec<(String, FieldRule)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyTable {
    #[serde(default)]
    fields: OrderedRules,
}

#[derive(Default)]
struct OrderedRules(Vec<(String, FieldRule)>);

impl<'de> Deserialize<'de> for OrderedRules {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedRules;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of field names to rules")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedRules, A::Error> {
                let mut rules: Vec<(String, FieldRule)> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let rule = map.next_value::<FieldRule>()?;
                    rules.push((name, rule));
                }
                Ok(OrderedRules(rules))
            }
        }
        deserializer.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = PolicyTable::deserialize(deserializer)?;
        Ok(Policy {
            fields: table.fields.0,
        })
    }
}

/// A policy that cannot be used; messages name fields, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy names no field that leaves the source; add e.g. `fields.id = \"keep\"`")]
    Empty,
    #[error("field `{0}` is named twice in the policy")]
    Duplicate(String),
    #[error(
        "policy field `{field}`: `{key}` is not a secret reference; write keyring:NAME, env:NAME or file:PATH"
    )]
    KeyNotAReference { field: String, key: String },
    #[error("policy field `{field}`: key {key} was not resolved")]
    KeyNotResolved { field: String, key: String },
    #[error(
        "policy field `{field}`: key {key} is shorter than 16 bytes; use `hushflow keys create`"
    )]
    KeyTooShort { field: String, key: String },
    #[error("the source has no field `{0}`, which the policy names")]
    MissingSourceField(String),
}

impl Policy {
    pub fn from_rules(fields: Vec<(String, FieldRule)>) -> Self {
        Policy { fields }
    }

    pub fn rules(&self) -> &[(String, FieldRule)] {
        &self.fields
    }

    pub fn rule(&self, field: &str) -> Option<&FieldRule> {
        self.fields.iter().find(|(n, _)| n == field).map(|(_, r)| r)
    }

    /// Checks that need no data and no secret: something leaves, no field twice, every key is
    /// a reference.
    pub fn check(&self) -> Result<(), PolicyError> {
        for (i, (name, rule)) in self.fields.iter().enumerate() {
            if self.fields[..i].iter().any(|(n, _)| n == name) {
                return Err(PolicyError::Duplicate(name.clone()));
            }
            if let FieldRule::Hash(h) = rule
                && !hushflow_secrets::is_reference(&h.key)
            {
                return Err(PolicyError::KeyNotAReference {
                    field: name.clone(),
                    // A literal key is a secret: name where it is, not what it is.
                    key: "(literal value)".into(),
                });
            }
        }
        if !self.fields.iter().any(|(_, r)| r.emits()) {
            return Err(PolicyError::Empty);
        }
        Ok(())
    }

    /// Fields the source must provide, in policy order: a source reads nothing else.
    pub fn source_fields(&self) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(_, r)| r.reads_source())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Fields that leave, in output order.
    pub fn output_fields(&self) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(_, r)| r.emits())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Secret references the policy needs resolved before it can compile.
    pub fn key_references(&self) -> Vec<&str> {
        let mut refs: Vec<&str> = Vec::new();
        for (_, rule) in &self.fields {
            if let FieldRule::Hash(h) = rule
                && !refs.contains(&h.key.as_str())
            {
                refs.push(&h.key);
            }
        }
        refs
    }

    /// SHA-256 over the policy's canonical JSON: the audit log records which policy moved data
    /// without recording the policy's content.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_vec(&self.fields).unwrap_or_default();
        hex::encode(Sha256::digest(&canonical))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Policy, toml::de::Error> {
        toml::from_str(s)
    }

    #[test]
    fn parses_actions_in_written_order() {
        let p = parse(
            r#"
            fields.zeta = "keep"
            fields.alpha = { hash = "hmac-sha256", key = "keyring:pepper", normalize = "email" }
            fields.notes = "drop"
            fields.phone = "null"
            "#,
        )
        .unwrap();
        let names: Vec<_> = p.rules().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["zeta", "alpha", "notes", "phone"]);
        assert_eq!(p.output_fields(), ["zeta", "alpha", "phone"]);
        assert_eq!(p.source_fields(), ["zeta", "alpha"]);
        assert_eq!(p.key_references(), ["keyring:pepper"]);
        match p.rule("alpha") {
            Some(FieldRule::Hash(h)) => {
                assert_eq!(h.normalize, Normalize::Email);
                assert_eq!(h.encoding, Encoding::Hex);
            }
            other => panic!("expected a hash rule, got {other:?}"),
        }
        p.check().unwrap();
    }

    #[test]
    fn rejects_unknown_action_and_option_without_echoing_value() {
        let e = parse(r#"fields.email = "kep-canary""#).unwrap_err();
        assert!(e.message().contains("unknown field action"), "{e}");
        assert!(!e.message().contains("canary"));
        let e = parse(r#"fields.email = { hash = "hmac-sha256", key = "env:K", salt = "x" }"#)
            .unwrap_err();
        assert!(e.message().contains("salt"), "{e}");
    }

    #[test]
    fn literal_key_is_refused_without_printing_it() {
        let p = parse(r#"fields.email = { hash = "hmac-sha256", key = "s3cr3t-canary" }"#).unwrap();
        let e = p.check().unwrap_err();
        assert!(matches!(e, PolicyError::KeyNotAReference { .. }));
        assert!(!e.to_string().contains("canary"));
    }

    #[test]
    fn empty_or_all_drop_policy_is_refused() {
        assert_eq!(parse("").unwrap().check(), Err(PolicyError::Empty));
        assert_eq!(
            parse(r#"fields.a = "drop""#).unwrap().check(),
            Err(PolicyError::Empty)
        );
    }

    #[test]
    fn fingerprint_changes_with_any_rule() {
        let a = parse(r#"fields.a = "keep""#).unwrap().fingerprint();
        let b = parse(r#"fields.a = "null""#).unwrap().fingerprint();
        let c = parse(r#"fields.b = "keep""#).unwrap().fingerprint();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, parse(r#"fields.a = "keep""#).unwrap().fingerprint());
    }
}
