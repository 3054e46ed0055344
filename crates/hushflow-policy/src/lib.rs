//! The privacy policy: what may leave a source, and in what form.
//!
//! A [`Policy`] is data read from a pipeline file: one [`FieldRule`] per named field, record
//! filters (consent, suppression), and default-deny for every other field. Before a run it is
//! compiled against the source's schema and the resolved key material into a
//! [`CompiledPolicy`]: filters and a list of per-column operations that
//! [`CompiledPolicy::apply`] runs over each batch. This crate never does I/O and never sees where
//! a secret came from, only its resolved value.

mod compiled;
mod filter;
pub mod generalize;
mod mask;
mod normalize;
pub mod pii;
mod rule;
mod subject;
mod value_type;

pub use compiled::{
    CompileInputs, CompiledPolicy, KeyMaterial, MIN_KEY_BYTES, PolicyOutput, ResolvedKey,
    SubjectKeys, Subjects,
};
pub use generalize::{Day, Generalization};
pub use mask::MaskRule;
pub use normalize::{Normalize, Normalizer, Platform};
pub use rule::{
    Action, Consent, Encoding, FieldRule, HashAlgorithm, HashRule, MAX_REDACT_REGIONS,
    MatchHashRule, Normalization, Policy, PolicyError, RedactRule, Regions, Suppression,
    TokenizeRule,
};
pub use subject::{ErasedList, IdentifierKind, SubjectValue, normalized_forms};
pub use value_type::{ValueType, parse_bool};
