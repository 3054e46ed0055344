//! Secrets for hushflow: how pipeline files refer to them, how they are held in memory, and how
//! they are kept out of everything the process prints.
//!
//! - A [`SecretRef`] (`env:NAME`, `file:PATH`, `keyring:NAME`) stands in for a secret in
//!   configuration, so pipeline files can be committed; references are not secret.
//! - A [`SecretValue`] holds the secret itself: wiped on drop, printed as `***`.
//! - A [`SecretResolver`] turns references into values and registers each value with a
//!   [`Redactor`] before returning it.
//! - The [`Redactor`] masks registered secrets and their hex and base64 forms in text; its
//!   [`RedactingMakeWriter`] sits under the `tracing` fmt layer and its panic hook scrubs panic
//!   messages, so a secret that reaches a log line or a panic is masked on the way out.
//!
//! There is no global state: the CLI makes one `Redactor` and hands clones to whatever needs it.

mod error;
mod redact;
mod reference;
mod resolve;
mod value;
mod writer;

pub use error::SecretError;
pub use redact::{MASK, MIN_SECRET_LEN, Redactor};
pub use reference::{SecretRef, is_reference, is_valid_key_name};
pub use resolve::{KeyProvider, MAX_SECRET_FILE_LEN, SecretResolver};
pub use value::SecretValue;
pub use writer::{RedactingMakeWriter, RedactingWriter};
