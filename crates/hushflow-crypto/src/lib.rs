//! hushflow's key handling: the local [`Keyring`] in the state directory, which makes and keeps
//! the random keys that `keyring:` references name, and [`HmacSha256`], the keyed hash behind
//! pseudonyms and privacy-preserving join keys.
//!
//! Key material only leaves this crate as a [`hushflow_secrets::SecretValue`]; `Debug` and
//! errors show names and ids, never material.

mod error;
mod keyring;
mod mac;
mod store;
mod token;

pub use error::KeyringError;
pub use keyring::{KeyInfo, Keyring};
pub use mac::HmacSha256;
pub use token::{TokenError, Tokenizer, fingerprint_key_id, token_key_id};
