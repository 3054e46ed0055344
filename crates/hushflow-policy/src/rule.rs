//! The policy as written in a pipeline file, and the checks that need no data.
//!
//! A field rule is a string (`"keep"`, `"drop"`, `"null"`) or a table naming exactly one action
//! (`hash`, `match_hash`, `mask`, `tokenize`, `generalize`, `redact`) with that action's options,
//! plus `from` to derive the field from another source field. Tables are read into one raw
//! struct first, so that a misplaced option gets an error that says which action it belongs to.

use crate::generalize::Generalization;
use crate::mask::MaskRule;
use crate::normalize::{Normalize, Platform};
use crate::pii::PiiKind;
use crate::value_type::ValueType;
use hushflow_secrets::SecretProviders;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// What happens to one output field: the action, and the source field it reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldRule {
    /// The source field read, when it is not the output field's own name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// What is done to the value.
    pub action: Action,
    /// The type a kept value leaves as (`type = "timestamp"`), checked and written in its
    /// canonical form; `None`: as the source read it.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub value_type: Option<ValueType>,
}

/// What a field rule does to its value; every field not named in the policy is dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Leaves unchanged.
    Keep,
    /// Never leaves; also what every unlisted field gets.
    Drop,
    /// Leaves as null, so a sink's column still exists.
    Null,
    /// Keyed HMAC-SHA256: a pseudonym that joins across systems sharing the key.
    Hash(HashRule),
    /// Unkeyed SHA-256 of the normalized value, as ad platforms require for audience matching.
    MatchHash(MatchHashRule),
    /// Shows some characters and hides the rest.
    Mask(MaskRule),
    /// Deterministic, reversible AES-SIV token carrying the key id.
    Tokenize(TokenizeRule),
    /// A coarser value: a year, an age band, a prefix, a bucket.
    Generalize(Generalization),
    /// PII found in free text is replaced by a label such as `[EMAIL]`.
    Redact(RedactRule),
}

/// The keyed hash a `hash` rule computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum HashAlgorithm {
    /// HMAC-SHA256, keyed with a secret from the key reference.
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
}

/// The unkeyed hash a `match_hash` rule computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum MatchAlgorithm {
    /// SHA-256, the hash the ad platforms match on.
    #[serde(rename = "sha256")]
    Sha256,
}

/// The cipher a `tokenize` rule encrypts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum TokenAlgorithm {
    /// AES-SIV (RFC 5297): deterministic, so equal values give equal tokens.
    #[serde(rename = "aes-siv")]
    AesSiv,
}

/// How a digest is written out.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
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

/// A normalization and its options, shared by `hash` and `match_hash`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Normalization {
    /// The normalization: none, trim, lower, email or phone.
    pub kind: Normalize,
    /// Default region (ISO 3166 alpha-2) for phone numbers written without a country code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Gmail rules for emails: dots and `+suffix` of gmail.com/googlemail.com local parts
    /// removed, googlemail.com written gmail.com.
    pub gmail: bool,
}

/// `hash`: a keyed pseudonym of the (normalized) value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HashRule {
    /// The hash function, keyed with `key`.
    pub algorithm: HashAlgorithm,
    /// A secret reference (`keyring:NAME`, `env:NAME`, `file:PATH`), never the key itself.
    pub key: String,
    /// What is done to the value before it is hashed.
    pub normalize: Normalization,
    /// How the digest is written out.
    pub encoding: Encoding,
}

/// `match_hash`: an unkeyed SHA-256 of the value normalized the way an ad platform asks, for
/// audience matching.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchHashRule {
    /// The hash function: SHA-256, the only one.
    pub algorithm: MatchAlgorithm,
    /// What is done to the value before it is hashed, on top of the platform's rules.
    pub normalize: Normalization,
    /// Whose normalization rules to follow.
    pub platform: Platform,
}

/// `tokenize`: a reversible token that only holders of the key can turn back into the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenizeRule {
    /// The cipher tokens are made with: AES-SIV, the only one.
    pub algorithm: TokenAlgorithm,
    /// A secret reference (`keyring:NAME`, `env:NAME`, `file:PATH`) to the key, never the key
    /// itself.
    pub key: String,
    /// A key of its own per subject (the record key), wrapped under `key`: erasing one subject
    /// (`hushflow erase`) makes its tokens unreadable everywhere.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub per_subject: bool,
}

/// `redact`: the personal data found in free text replaced by a label per kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedactRule {
    /// The kinds of personal data to find; the rest of the text stays as it is.
    pub kinds: Vec<PiiKind>,
    /// Region(s) for phone numbers in national format: a number valid in any of them counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<Regions>,
    /// A source field holding each record's own country (an ISO code or a name), whose phone
    /// numbering plan is used instead of `region` when the field names a known country.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region_from: Option<String>,
}

/// The most regions a `redact` rule may list: every one is tried for each national-format
/// candidate that fails the ones before it.
pub const MAX_REDACT_REGIONS: usize = 16;

/// `region = "US"` or `region = ["US", "GB", "DE"]`. (Untagged, so a single region serializes
/// as the string it always was and existing policies keep their fingerprints.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Regions {
    /// One region.
    One(String),
    /// Several regions, in the order they are tried.
    Many(Vec<String>),
}

impl Regions {
    /// The regions, in the order written.
    pub fn list(&self) -> Vec<&str> {
        match self {
            Regions::One(r) => vec![r.as_str()],
            Regions::Many(rs) => rs.iter().map(String::as_str).collect(),
        }
    }
}

impl FieldRule {
    /// A rule doing `action` to the field of the same name.
    pub fn action(action: Action) -> Self {
        FieldRule {
            from: None,
            action,
            value_type: None,
        }
    }

    /// Whether a value of this field leaves the source at all.
    pub fn emits(&self) -> bool {
        !matches!(self.action, Action::Drop)
    }

    /// Whether the source needs to read a field for this rule (a nulled field is never read).
    pub fn reads_source(&self) -> bool {
        !matches!(self.action, Action::Drop | Action::Null)
    }

    /// The source field this rule reads, given the output field's name.
    pub fn source_field<'a>(&'a self, name: &'a str) -> &'a str {
        self.from.as_deref().unwrap_or(name)
    }

    /// The secret reference this rule needs resolved, if any.
    pub fn key_reference(&self) -> Option<&str> {
        match &self.action {
            Action::Hash(h) => Some(&h.key),
            Action::Tokenize(t) => Some(&t.key),
            _ => None,
        }
    }

    /// The type this rule's values leave as, if they have one: the declared `type` of a kept
    /// value, a year (an integer), or the consent field kept (a boolean, `true`/`false`);
    /// `consent` is the policy's consent field.
    pub fn output_type(&self, name: &str, consent: Option<&str>) -> Option<ValueType> {
        match &self.action {
            Action::Keep => self.value_type.or_else(|| {
                (consent == Some(self.source_field(name))).then_some(ValueType::Boolean)
            }),
            Action::Generalize(Generalization::Year) => Some(ValueType::Integer),
            _ => None,
        }
    }

    /// One line a person can read, for `hushflow validate`'s plan.
    pub fn describe(&self) -> String {
        let mut s = match &self.action {
            Action::Keep if self.value_type.is_some() => {
                format!("kept as {}", self.value_type.map_or("", ValueType::as_str))
            }
            Action::Keep => "kept as is".to_string(),
            Action::Drop => "dropped".to_string(),
            Action::Null => "emptied (null)".to_string(),
            Action::Hash(h) => format!(
                "HMAC-SHA256 with {}{}, {}",
                h.key,
                h.normalize.describe(),
                h.encoding
            ),
            Action::MatchHash(m) => format!(
                "unkeyed SHA-256 for {} matching{}",
                m.platform,
                m.normalize.describe()
            ),
            Action::Mask(m) => m.describe(),
            Action::Tokenize(t) if t.per_subject => format!(
                "AES-SIV token with a key per subject, wrapped under {} (erasable)",
                t.key
            ),
            Action::Tokenize(t) => format!("AES-SIV token with {}", t.key),
            Action::Generalize(g) => format!("generalized to {g}"),
            Action::Redact(r) => {
                let kinds: Vec<&str> = r.kinds.iter().map(|k| k.label()).collect();
                let mut s = format!("PII redacted: {}", kinds.join(" "));
                if let Some(regions) = &r.region {
                    s.push_str(&format!(" (phone regions {})", regions.list().join(" ")));
                }
                if let Some(field) = &r.region_from {
                    s.push_str(&format!(" (each record's region from `{field}`)"));
                }
                s
            }
        };
        if let Some(from) = &self.from {
            s.push_str(&format!(" (from `{from}`)"));
        }
        s
    }
}

impl Normalization {
    fn describe(&self) -> String {
        let mut s = match self.kind {
            Normalize::None => return String::new(),
            kind => format!(", normalized as {kind}"),
        };
        if let Some(region) = &self.region {
            s.push_str(&format!(" (region {region})"));
        }
        if self.gmail {
            s.push_str(" with gmail rules");
        }
        s
    }
}

/// Every option any action takes, read in one pass; [`RawRule::into_rule`] checks the mix.
/// Its doc comments are the descriptions editors show from the pipeline file's JSON Schema.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "field rule table",
    description = "One action (hash, match_hash, mask, tokenize, generalize, redact) with its options; `from` alone (a kept copy of another field) or `type` alone (the value kept, typed) keep the value."
)]
struct RawRule {
    /// The source field read, when it is not the output field's own name.
    from: Option<String>,
    /// Keyed HMAC-SHA256 pseudonym; needs `key`.
    hash: Option<HashAlgorithm>,
    /// Unkeyed SHA-256 for ad platforms' audience matching.
    match_hash: Option<MatchAlgorithm>,
    /// Show some characters, hide the rest.
    #[schemars(with = "Option<crate::mask::MaskForm>")]
    mask: Option<MaskRule>,
    /// Reversible AES-SIV token; needs `key`.
    tokenize: Option<TokenAlgorithm>,
    /// A coarser value: a year, an age band, a prefix, a bucket, bands.
    #[schemars(with = "Option<crate::generalize::GeneralizeForm>")]
    generalize: Option<Generalization>,
    /// The kinds of personal data to replace by a label in free text.
    redact: Option<Vec<PiiKind>>,
    /// A secret reference to the key (`keyring:NAME`, `env:NAME`, `file:PATH`), never a key.
    key: Option<String>,
    /// What is done to the value before it is hashed.
    normalize: Option<Normalize>,
    /// Default region (ISO 3166 alpha-2) for phone numbers without a country code, or a list:
    /// a number valid in any listed region is a phone.
    region: Option<Regions>,
    /// `redact`: the field holding each record's own country (ISO code or name), tried before
    /// `region`.
    region_from: Option<String>,
    /// Gmail rules for emails (dots and +suffix removed).
    gmail: Option<bool>,
    /// How a digest is written: `hex` (default) or `base64url`.
    encoding: Option<Encoding>,
    /// Whose audience-matching rules `match_hash` follows.
    platform: Option<Platform>,
    /// `tokenize` with a key of its own per subject (erasable).
    per_subject: Option<bool>,
    /// The type a kept value leaves as: text, integer, boolean, date or timestamp.
    #[serde(rename = "type")]
    value_type: Option<ValueType>,
}

impl RawRule {
    fn into_rule<E: de::Error>(self) -> Result<FieldRule, E> {
        let named: Vec<&str> = [
            ("hash", self.hash.is_some()),
            ("match_hash", self.match_hash.is_some()),
            ("mask", self.mask.is_some()),
            ("tokenize", self.tokenize.is_some()),
            ("generalize", self.generalize.is_some()),
            ("redact", self.redact.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, present)| present.then_some(n))
        .collect();
        if named.len() > 1 {
            return Err(E::custom(format!(
                "a field rule takes one action; this one names {}",
                named.join(" and ")
            )));
        }
        let action = named.first().copied().unwrap_or("keep");
        let allowed: &[&str] = match action {
            "hash" => &["key", "normalize", "region", "gmail", "encoding"],
            "match_hash" => &["normalize", "region", "gmail", "platform"],
            "tokenize" => &["key", "per_subject"],
            "redact" => &["region", "region_from"],
            "keep" => &["type"],
            _ => &[],
        };
        for (option, present) in [
            ("key", self.key.is_some()),
            ("normalize", self.normalize.is_some()),
            ("region", self.region.is_some()),
            ("region_from", self.region_from.is_some()),
            ("gmail", self.gmail.is_some()),
            ("encoding", self.encoding.is_some()),
            ("platform", self.platform.is_some()),
            ("per_subject", self.per_subject.is_some()),
            ("type", self.value_type.is_some()),
        ] {
            if present && !allowed.contains(&option) {
                return Err(E::custom(format!("`{option}` does not apply to {action}")));
            }
        }
        let single_region = match (&self.region, action) {
            (Some(Regions::Many(_)), "hash" | "match_hash") => {
                return Err(E::custom(format!(
                    "`region` of {action} is one region, such as \"US\""
                )));
            }
            (Some(Regions::One(r)), _) => Some(r.clone()),
            _ => None,
        };
        let normalize = Normalization {
            kind: self.normalize.unwrap_or_default(),
            region: single_region,
            gmail: self.gmail.unwrap_or(false),
        };
        let need_key = |key: Option<String>| {
            key.ok_or_else(|| {
                E::custom(format!(
                    "{action} needs `key`, a secret reference such as \"keyring:NAME\""
                ))
            })
        };
        let action = if let Some(algorithm) = self.hash {
            Action::Hash(HashRule {
                algorithm,
                key: need_key(self.key)?,
                normalize,
                encoding: self.encoding.unwrap_or_default(),
            })
        } else if let Some(algorithm) = self.match_hash {
            Action::MatchHash(MatchHashRule {
                algorithm,
                normalize,
                platform: self.platform.unwrap_or_default(),
            })
        } else if let Some(mask) = self.mask {
            Action::Mask(mask)
        } else if let Some(algorithm) = self.tokenize {
            Action::Tokenize(TokenizeRule {
                algorithm,
                key: need_key(self.key)?,
                per_subject: self.per_subject.unwrap_or(false),
            })
        } else if let Some(g) = self.generalize {
            Action::Generalize(g)
        } else if let Some(kinds) = self.redact {
            if kinds.is_empty() {
                return Err(E::custom(
                    "`redact` needs at least one kind, e.g. [\"email\", \"phone\"]",
                ));
            }
            Action::Redact(RedactRule {
                kinds,
                region: self.region,
                region_from: self.region_from,
            })
        } else if self.from.is_some() || self.value_type.is_some() {
            // `{ from = "email" }` or `{ type = "date" }` alone: the value kept, under another
            // name or as a typed value.
            Action::Keep
        } else {
            return Err(E::custom(
                "a field rule table needs an action: hash, match_hash, mask, tokenize, generalize or redact (or `type` to keep the value typed)",
            ));
        };
        Ok(FieldRule {
            from: self.from,
            action,
            value_type: self.value_type,
        })
    }
}

impl schemars::JsonSchema for FieldRule {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FieldRule".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let table = generator.subschema_for::<RawRule>();
        schemars::json_schema!({
            "description": "What happens to the field: \"keep\", \"drop\", \"null\", or a table naming one action and its options.",
            "anyOf": [
                { "type": "string", "enum": ["keep", "drop", "null"] },
                table
            ]
        })
    }
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
                    "keep" => Ok(FieldRule::action(Action::Keep)),
                    "drop" => Ok(FieldRule::action(Action::Drop)),
                    "null" => Ok(FieldRule::action(Action::Null)),
                    // The value is a misspelt action, not data, but keep it out anyway: it
                    // could be a value pasted into the wrong place.
                    _ => Err(E::custom(
                        "unknown field action; expected \"keep\", \"drop\", \"null\" or a table such as { hash = … }",
                    )),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FieldRule, A::Error> {
                RawRule::deserialize(de::value::MapAccessDeserializer::new(map))?.into_rule()
            }
        }
        deserializer.deserialize_any(RuleVisitor)
    }
}

/// `[policy.consent]`: only records whose consent field is an explicit yes leave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// The field that holds each record's consent.
    pub field: String,
}

/// `[policy.suppression]`: records whose field matches a line of the list never leave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Suppression {
    /// One email, or its HMAC-SHA256 hex under `key`, per line; relative to the pipeline file.
    pub file: std::path::PathBuf,
    /// The field compared with the list's lines.
    pub field: String,
    /// The key the list's hashed entries were made with; by default the key of the field's own
    /// `hash` rule, if it has one.
    #[serde(default)]
    pub key: Option<String>,
}

/// The `[policy]` table: field rules in the order written, which is also the output order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Policy {
    fields: Vec<(String, FieldRule)>,
    consent: Option<Consent>,
    suppression: Option<Suppression>,
}

/// The `[policy]` table as written.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Policy")]
struct PolicyTable {
    /// A rule per field that may leave the source, in output order; every other field is
    /// dropped.
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, FieldRule>")]
    fields: OrderedRules,
    /// Only records whose consent field is an explicit yes leave.
    #[serde(default)]
    consent: Option<Consent>,
    /// Records whose field is on the list never leave.
    #[serde(default)]
    suppression: Option<Suppression>,
}

impl schemars::JsonSchema for Policy {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Policy".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        PolicyTable::json_schema(generator)
    }
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
            consent: table.consent,
            suppression: table.suppression,
        })
    }
}

/// A policy that cannot be used; messages name fields, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// No field leaves the source.
    #[error("the policy names no field that leaves the source; add e.g. `fields.id = \"keep\"`")]
    Empty,
    /// A field is named more than once; holds its name.
    #[error("field `{0}` is named twice in the policy")]
    Duplicate(String),
    /// A `key` option that is not a secret reference.
    #[error(
        "policy field `{field}`: `key` is not a secret reference; write keyring:NAME, env:NAME or file:PATH"
    )]
    KeyNotAReference {
        /// The field whose rule has the key.
        field: String,
    },
    /// A key reference was not among the resolved keys handed to compilation.
    #[error("policy field `{field}`: key {key} was not resolved")]
    KeyNotResolved {
        /// The field whose rule names the key.
        field: String,
        /// The key's reference.
        key: String,
    },
    /// A resolved key is shorter than 32 bytes, too short for hashing or tokens.
    #[error(
        "policy field `{field}`: key {key} is shorter than 32 bytes; use `hushflow keys create`"
    )]
    KeyTooShort {
        /// The field whose rule names the key.
        field: String,
        /// The key's reference.
        key: String,
    },
    /// The source lacks a field the policy reads; holds its name.
    #[error("the source has no field `{0}`, which the policy reads")]
    MissingSourceField(String),
    /// A rule's options do not fit together or are out of range.
    #[error("policy field `{field}`: {message}")]
    Invalid {
        /// The field whose rule is wrong.
        field: String,
        /// What is wrong, in words that name no value.
        message: String,
    },
}

impl Policy {
    /// A policy of `fields` (name and rule, in output order), without consent or suppression
    /// filters.
    pub fn from_rules(fields: Vec<(String, FieldRule)>) -> Self {
        Policy {
            fields,
            consent: None,
            suppression: None,
        }
    }

    /// The field rules, in output order.
    pub fn rules(&self) -> &[(String, FieldRule)] {
        &self.fields
    }

    /// The rule for output field `field`, if the policy names it.
    pub fn rule(&self, field: &str) -> Option<&FieldRule> {
        self.fields.iter().find(|(n, _)| n == field).map(|(_, r)| r)
    }

    /// The type of each output field that has one ([`FieldRule::output_type`]), in output
    /// order: what a database sink makes its column.
    pub fn output_types(&self) -> Vec<(String, ValueType)> {
        let consent = self.consent.as_ref().map(|c| c.field.as_str());
        self.fields
            .iter()
            .filter_map(|(name, rule)| rule.output_type(name, consent).map(|t| (name.clone(), t)))
            .collect()
    }

    /// The consent filter, if the policy has one.
    pub fn consent(&self) -> Option<&Consent> {
        self.consent.as_ref()
    }

    /// The suppression filter, if the policy has one.
    pub fn suppression(&self) -> Option<&Suppression> {
        self.suppression.as_ref()
    }

    /// Checks that need no data and no secret: something leaves, no field twice, every key is
    /// a reference of a built-in scheme, options make sense.
    pub fn check(&self) -> Result<(), PolicyError> {
        self.check_keys_by(&hushflow_secrets::is_reference)
    }

    /// As [`Policy::check`], with keys that may be references of any scheme registered in
    /// `secrets` (a pipeline's policy is checked this way).
    pub fn check_with(&self, secrets: &SecretProviders<'_>) -> Result<(), PolicyError> {
        self.check_keys_by(&|key| secrets.is_reference(key))
    }

    /// The checks, with `is_reference` telling a key's reference from a literal key.
    pub(crate) fn check_keys_by(
        &self,
        is_reference: &dyn Fn(&str) -> bool,
    ) -> Result<(), PolicyError> {
        let mut seen = std::collections::HashSet::with_capacity(self.fields.len());
        for (name, rule) in &self.fields {
            if !seen.insert(name.as_str()) {
                return Err(PolicyError::Duplicate(name.clone()));
            }
            if let Some(key) = rule.key_reference()
                && !is_reference(key)
            {
                return Err(PolicyError::KeyNotAReference {
                    field: name.clone(),
                });
            }
            let invalid = |message: String| PolicyError::Invalid {
                field: name.clone(),
                message,
            };
            match &rule.action {
                Action::Hash(HashRule { normalize, .. })
                | Action::MatchHash(MatchHashRule { normalize, .. }) => {
                    normalize.check().map_err(invalid)?
                }
                Action::Mask(m) => m.check().map_err(invalid)?,
                Action::Generalize(g) => g.check().map_err(invalid)?,
                Action::Redact(r) => {
                    // Each kind once: the list's length is bounded by the kinds there are.
                    if let Some(twice) = r
                        .kinds
                        .iter()
                        .enumerate()
                        .find_map(|(i, k)| r.kinds[..i].contains(k).then_some(k))
                    {
                        return Err(invalid(format!(
                            "`redact` names each kind once; `{}` is named twice",
                            twice.name()
                        )));
                    }
                    if let Some(regions) = &r.region {
                        let list = regions.list();
                        if list.is_empty() || list.len() > MAX_REDACT_REGIONS {
                            return Err(invalid(format!(
                                "`region` lists 1 to {MAX_REDACT_REGIONS} regions"
                            )));
                        }
                        for region in list {
                            crate::normalize::parse_region(region).map_err(invalid)?;
                        }
                    }
                    if r.region_from
                        .as_deref()
                        .is_some_and(|f| f.trim().is_empty())
                    {
                        return Err(invalid("`region_from` names a source field".into()));
                    }
                }
                _ => {}
            }
        }
        if let Some(s) = &self.suppression
            && let Some(key) = &s.key
            && !is_reference(key)
        {
            return Err(PolicyError::KeyNotAReference {
                field: "suppression".into(),
            });
        }
        if !self.fields.iter().any(|(_, r)| r.emits()) {
            return Err(PolicyError::Empty);
        }
        Ok(())
    }

    /// Fields the source must provide: those the rules read (in policy order), then the consent
    /// and suppression fields. A source reads nothing else.
    pub fn source_fields(&self) -> Vec<String> {
        let mut fields: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let reads = self
            .fields
            .iter()
            .filter(|(_, r)| r.reads_source())
            .map(|(n, r)| r.source_field(n))
            .chain(self.fields.iter().filter_map(|(_, r)| match &r.action {
                Action::Redact(RedactRule { region_from, .. }) => region_from.as_deref(),
                _ => None,
            }))
            .chain(self.consent.iter().map(|c| c.field.as_str()))
            .chain(self.suppression.iter().map(|s| s.field.as_str()));
        for field in reads {
            if seen.insert(field) {
                fields.push(field.to_string());
            }
        }
        fields
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
        let keys = self
            .fields
            .iter()
            .filter_map(|(_, r)| r.key_reference())
            .chain(self.suppression.iter().filter_map(|s| s.key.as_deref()));
        for key in keys {
            if !refs.contains(&key) {
                refs.push(key);
            }
        }
        refs
    }

    /// The key the suppression list's hashed entries use: its own, or the field's hash key.
    pub fn suppression_key(&self) -> Option<&str> {
        let s = self.suppression.as_ref()?;
        s.key
            .as_deref()
            .or_else(|| match self.rule(&s.field).map(|r| &r.action) {
                Some(Action::Hash(h)) => Some(h.key.as_str()),
                _ => None,
            })
    }

    /// SHA-256 over the policy's canonical JSON: the audit log records which policy moved data
    /// without recording the policy's content.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
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
    fn parses_the_issue_example() {
        let p = parse(
            r#"
            fields.id          = "keep"
            fields.email       = { hash = "hmac-sha256", key = "env:HF_PEPPER", normalize = "email" }
            fields.email_match = { from = "email", match_hash = "sha256", normalize = "email" }
            fields.phone       = { mask = { keep_last = 4 } }
            fields.phone_e164  = { from = "phone", hash = "hmac-sha256", key = "env:HF_PEPPER", normalize = "phone", region = "US" }
            fields.first_name  = { tokenize = "aes-siv", key = "keyring:names" }
            fields.birth_date  = { generalize = "year" }
            fields.postal_code = { generalize = { prefix = 3 } }
            fields.notes       = { redact = ["email", "phone", "credit_card", "iban", "us_ssn", "ip_address"] }

            [consent]
            field = "marketing_opt_in"

            [suppression]
            file = "suppressed.txt"
            field = "email"
            "#,
        )
        .unwrap();
        p.check().unwrap();
        assert_eq!(
            p.output_fields(),
            [
                "id",
                "email",
                "email_match",
                "phone",
                "phone_e164",
                "first_name",
                "birth_date",
                "postal_code",
                "notes"
            ]
        );
        assert_eq!(
            p.source_fields(),
            [
                "id",
                "email",
                "phone",
                "first_name",
                "birth_date",
                "postal_code",
                "notes",
                "marketing_opt_in"
            ]
        );
        assert_eq!(p.key_references(), ["env:HF_PEPPER", "keyring:names"]);
        assert_eq!(p.suppression_key(), Some("env:HF_PEPPER"));
        match &p.rule("phone_e164").unwrap().action {
            Action::Hash(h) => {
                assert_eq!(h.normalize.kind, Normalize::Phone);
                assert_eq!(h.normalize.region.as_deref(), Some("US"));
            }
            other => panic!("expected hash, got {other:?}"),
        }
    }

    #[test]
    fn parses_actions_in_written_order() {
        let p = parse(
            r#"
            fields.zeta = "keep"
            fields.alpha = { hash = "hmac-sha256", key = "keyring:pepper", normalize = "email" }
            fields.notes = "drop"
            fields.phone = "null"
            fields.copy = { from = "zeta" }
            "#,
        )
        .unwrap();
        let names: Vec<_> = p.rules().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["zeta", "alpha", "notes", "phone", "copy"]);
        assert_eq!(p.output_fields(), ["zeta", "alpha", "phone", "copy"]);
        assert_eq!(p.source_fields(), ["zeta", "alpha"]);
        assert_eq!(p.rule("copy").unwrap().action, Action::Keep);
        p.check().unwrap();
    }

    #[test]
    fn rejects_bad_rules_without_echoing_values() {
        let e = parse(r#"fields.email = "kep-canary""#).unwrap_err();
        assert!(e.message().contains("unknown field action"), "{e}");
        assert!(!e.message().contains("canary"));
        let e = parse(r#"fields.email = { hash = "hmac-sha256", key = "env:K", salt = "x" }"#)
            .unwrap_err();
        assert!(e.message().contains("salt"), "{e}");
        let e = parse(
            r#"fields.e = { hash = "hmac-sha256", key = "env:K", mask = { keep_last = 2 } }"#,
        )
        .unwrap_err();
        assert!(e.message().contains("one action"), "{e}");
        let e = parse(r#"fields.e = { mask = { keep_last = 2 }, key = "env:K" }"#).unwrap_err();
        assert!(e.message().contains("`key` does not apply to mask"), "{e}");
        let e = parse(r#"fields.e = { hash = "hmac-sha256" }"#).unwrap_err();
        assert!(e.message().contains("needs `key`"), "{e}");
        let e = parse(r#"fields.e = { normalize = "email" }"#).unwrap_err();
        assert!(e.message().contains("does not apply"), "{e}");
    }

    /// Every size and count is bounded when the policy is checked: `fixed = 4000000000` was
    /// accepted and then aborted the run allocating four billion mask characters per value.
    #[test]
    fn sizes_and_counts_are_bounded() {
        let refused = |rule: &str, option: &str, limit: &str| {
            let p = parse(&format!("fields.f = {rule}")).unwrap();
            let e = p.check().unwrap_err().to_string();
            assert!(
                e.starts_with("policy field `f`:") && e.contains(option) && e.contains(limit),
                "{rule}: {e}"
            );
        };
        refused("{ mask = { fixed = 4000000000 } }", "`fixed`", "64");
        refused("{ mask = { fixed = 65 } }", "`fixed`", "64");
        refused("{ mask = { keep_first = 65 } }", "`keep_first`", "64");
        refused(
            "{ mask = { keep_last = 9000000000000000000 } }",
            "`keep_last`",
            "64",
        );
        refused("{ generalize = { prefix = 65 } }", "`prefix`", "64");
        refused(
            "{ generalize = { age_band = 4000000000 } }",
            "`age_band`",
            "150",
        );
        refused(
            "{ generalize = { bucket = 9000000000000000000 } }",
            "`bucket`",
            "1000000000000000",
        );
        let edges: Vec<String> = (0..101).map(|i| i.to_string()).collect();
        refused(
            &format!("{{ generalize = {{ bands = [{}] }} }}", edges.join(", ")),
            "`bands`",
            "100",
        );
        refused(
            &format!(
                "{{ generalize = {{ bands = [1], labels = [\"a\", \"{}\"] }} }}",
                "x".repeat(65)
            ),
            "`labels`",
            "64",
        );
        refused(
            r#"{ redact = ["email", "phone", "email"] }"#,
            "`redact`",
            "once",
        );
        for fine in [
            "{ mask = { keep_first = 64, keep_last = 64, fixed = 64 } }",
            "{ generalize = { prefix = 64 } }",
            "{ generalize = { age_band = 150 } }",
            "{ generalize = { bucket = 1000000000000000 } }",
        ] {
            parse(&format!("fields.f = {fine}"))
                .unwrap()
                .check()
                .unwrap_or_else(|e| panic!("{fine}: {e}"));
        }
    }

    #[test]
    fn redact_takes_a_list_of_regions_and_a_country_field() {
        let p = parse(
            r#"
            fields.id = "keep"
            fields.notes = { redact = ["email", "phone"], region = ["US", "GB", "DE", "FR", "ES"], region_from = "country" }
            "#,
        )
        .unwrap();
        p.check().unwrap();
        assert_eq!(p.source_fields(), ["id", "notes", "country"]);
        assert_eq!(p.output_fields(), ["id", "notes"]);
        match &p.rule("notes").unwrap().action {
            Action::Redact(r) => {
                assert_eq!(
                    r.region.as_ref().unwrap().list(),
                    ["US", "GB", "DE", "FR", "ES"]
                );
                assert_eq!(r.region_from.as_deref(), Some("country"));
            }
            other => panic!("expected redact, got {other:?}"),
        }
        let described = p.rule("notes").unwrap().describe();
        assert!(described.contains("US GB DE FR ES") && described.contains("`country`"));
        // One region is written as before, so fingerprints of existing policies do not change.
        let one = parse(r#"fields.notes = { redact = ["phone"], region = "US" }"#).unwrap();
        assert!(
            serde_json::to_string(&one)
                .unwrap()
                .contains(r#""region":"US""#)
        );
        for (rule, message) in [
            (
                r#"{ redact = ["phone"], region = ["US", "XX"] }"#,
                "ISO 3166",
            ),
            (r#"{ redact = ["phone"], region = [] }"#, "1 to 16"),
            (
                r#"{ redact = ["phone"], region_from = " " }"#,
                "source field",
            ),
        ] {
            let e = parse(&format!("fields.n = {rule}"))
                .unwrap()
                .check()
                .unwrap_err()
                .to_string();
            assert!(e.contains(message), "{rule}: {e}");
        }
        let e = parse(
            r#"fields.p = { hash = "hmac-sha256", key = "env:K", normalize = "phone", region = ["US", "DE"] }"#,
        )
        .unwrap_err();
        assert!(e.message().contains("one region"), "{e}");
        let e = parse(r#"fields.p = { mask = "phone", region_from = "country" }"#).unwrap_err();
        assert!(e.message().contains("`region_from` does not apply"), "{e}");
    }

    #[test]
    fn literal_key_is_refused_without_printing_it() {
        let p = parse(r#"fields.email = { hash = "hmac-sha256", key = "s3cr3t-canary" }"#).unwrap();
        let e = p.check().unwrap_err();
        assert!(matches!(e, PolicyError::KeyNotAReference { .. }));
        assert!(!e.to_string().contains("canary"));
    }

    #[test]
    fn keys_of_a_registered_scheme_pass_check_with() {
        struct Vault;
        impl hushflow_secrets::SecretProvider for Vault {
            fn scheme(&self) -> &'static str {
                "vault"
            }
            fn usage(&self) -> &'static str {
                "vault:PATH"
            }
            fn example(&self) -> &'static str {
                "vault:kv/pepper"
            }
            fn resolve(
                &self,
                _: &str,
            ) -> Result<hushflow_secrets::SecretValue, hushflow_secrets::SecretError> {
                unreachable!("checks resolve nothing")
            }
        }
        let p = parse(
            r#"
            fields.email = { hash = "hmac-sha256", key = "vault:kv/pepper" }
            suppression = { field = "email", file = "s.txt", key = "vault:kv/suppress" }
            "#,
        )
        .unwrap();
        let mut secrets = SecretProviders::default();
        assert!(matches!(
            p.check_with(&secrets),
            Err(PolicyError::KeyNotAReference { .. })
        ));
        assert!(matches!(
            p.check(),
            Err(PolicyError::KeyNotAReference { .. })
        ));
        secrets.register(Vault);
        assert_eq!(p.check_with(&secrets), Ok(()));
        // The built-in check knows the built-in schemes only.
        assert!(p.check().is_err());
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
        let d = parse("fields.a = \"keep\"\n[consent]\nfield = \"x\"")
            .unwrap()
            .fingerprint();
        assert_eq!(a.len(), 64);
        assert!(a != b && a != c && a != d);
        assert_eq!(a, parse(r#"fields.a = "keep""#).unwrap().fingerprint());
    }
}
