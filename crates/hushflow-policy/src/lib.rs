//! The privacy policy: what may leave a source, and in what form.
//!
//! A [`Policy`] is data read from a pipeline file: one [`FieldRule`] per named field, and
//! default-deny for every other field. Before a run it is compiled against the source's schema
//! and the resolved key material into a [`CompiledPolicy`]: a list of per-column operations that
//! [`CompiledPolicy::apply`] runs over each batch. This crate never does I/O and never sees where a
//! secret came from, only its resolved value.

mod compiled;
mod normalize;
mod rule;

pub use compiled::{CompiledPolicy, KeyMaterial, PolicyOutput};
pub use normalize::Normalize;
pub use rule::{Encoding, FieldRule, HashAlgorithm, HashRule, Policy, PolicyError};
