//! Secrets for hushflow, and only that: how configuration refers to them, where they are looked
//! up, how they are held in memory, and how they are kept out of everything the process prints.
//!
//! - A [`SecretRef`] (`scheme:name`: `env:NAME`, `file:PATH`, `keyring:NAME`) stands in for a
//!   secret in configuration, so pipeline files can be committed; references are not secret.
//! - A [`SecretProvider`] looks secrets up for one scheme. `env:`, `file:` and `keyring:` are
//!   built in (the keyring itself is reached through the [`KeyProvider`] trait); another store
//!   (`vault:`, `aws-sm:`) is a provider in its own module or crate, behind a Cargo feature, and
//!   is registered in a [`SecretProviders`] registry by whoever builds it (the CLI, in one
//!   place).
//! - A [`SecretResolver`] holds the registry and a [`Redactor`]. Its
//!   [`resolve`](SecretResolver::resolve) is the one place a value comes out of a provider, and
//!   it registers every value with the redactor before returning it.
//! - A [`SecretValue`] holds the secret itself: wiped on drop, printed as `***`.
//! - The [`Redactor`] masks registered secrets and their hex and base64 forms in text; its
//!   [`RedactingMakeWriter`] sits under the `tracing` fmt layer and its panic hook scrubs panic
//!   messages, so a secret that reaches a log line or a panic is masked on the way out.
//!
//! Validation accepts exactly the registered schemes. The registry is a value, not a global:
//! code that must tell a reference from a literal secret (the spec crate's pipeline and DAG
//! checks, `Policy::check_with` in the policy crate) is handed it and asks
//! [`SecretProviders::is_reference`] or [`SecretProviders::parse`], so `vault:` passes only
//! where a vault provider is registered, and each provider checks its names' syntax there,
//! before any secret is needed. The free [`is_reference`] and [`SecretRef::parse`] know the
//! built-in schemes only, for code that has no registry at hand.
//!
//! There is no global state: the CLI makes one `Redactor` and hands clones to whatever needs
//! it, and builds its registry in one function, so every command sees the same schemes.
//!
//! This crate must not depend on any other hushflow crate: the keyring (`hushflow-crypto`), the
//! spec, the engine and the CLI all depend on it. It does no network I/O; a provider that needs
//! a network client brings it in its own crate.

mod error;
mod providers;
mod redact;
mod reference;
mod resolve;
mod url_password;
mod value;
mod writer;

pub use error::SecretError;
pub use providers::{
    KeyProvider, MAX_SECRET_FILE_LEN, SecretProvider, SecretProviders, is_valid_key_name,
};
pub use redact::{MASK, MIN_SECRET_LEN, Redactor};
pub use reference::{SecretRef, is_reference};
pub use resolve::SecretResolver;
pub use url_password::url_password;
pub use value::SecretValue;
pub use writer::{RedactingMakeWriter, RedactingWriter};
