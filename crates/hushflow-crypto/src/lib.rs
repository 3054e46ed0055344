//! hushflow's key handling: the local [`Keyring`] in the state directory, which makes and keeps
//! the random keys that `keyring:` references name, and [`HmacSha256`], the keyed hash behind
//! pseudonyms and privacy-preserving join keys, deterministic tokens, and files at rest
//! (quarantine, staging) in the age format under the state directory's identity.
//!
//! Key material only leaves this crate as a [`hushflow_secrets::SecretValue`]; `Debug` and
//! errors show names and ids, never material.

mod at_rest;
mod error;
mod keyring;
mod mac;
mod store;
mod subject;
mod token;

pub use at_rest::{AtRestError, EncryptedWriter, StateIdentity, StateRecipient};
pub use error::KeyringError;
pub use keyring::{KeyInfo, Keyring, MasterKey, Purpose, Sealing};
pub use mac::HmacSha256;
pub use store::MAX_CREDENTIAL_LEN;
pub use subject::{
    SubjectHandle, SubjectKeyError, SubjectRoot, handle_hex, parse_subject_key_id, subject_key_id,
};
pub use token::{TokenError, Tokenizer, fingerprint_key_id, token_key_id};
