//! Per-subject keys, for erasure by crypto-shredding: `tokenize` with `per_subject = true` gives
//! every subject (the record key: a contact's id) a random key of its own, kept wrapped under the
//! pipeline's tokenize key (the *root* key). Deleting one subject's key makes every token made
//! with it unreadable, wherever the tokens were copied.
//!
//! Construction, so that other systems can reproduce it:
//! - handle: the first 16 bytes of HMAC-SHA256(K_h, subject), where K_h is HKDF-SHA256 of the
//!   root material (no salt, info `hushflow subject handle v1`, 32 bytes). The store and the
//!   tokens name a subject by its handle, never by its id;
//! - wrapped key: AES-SIV-256 (RFC 5297) under HKDF-SHA256(root, info `hushflow subject wrap v1`,
//!   64 bytes) of the 32-byte subject key, with the handle as associated data, so a wrapped key
//!   moved to another handle does not unwrap;
//! - token: an ordinary `tok1.` token (see `token.rs`) under the subject key, whose key id is
//!   `<root key id>s<handle as 32 hex digits>`: the id tells which subject key reverses it.

use aes_siv::KeyInit;
use aes_siv::siv::Aes256Siv;
use hkdf::Hkdf;
use hushflow_secrets::SecretValue;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{HmacSha256, TokenError, Tokenizer};

const HANDLE_INFO: &[u8] = b"hushflow subject handle v1";
const WRAP_INFO: &[u8] = b"hushflow subject wrap v1";

/// A subject's handle: a keyed pseudonym of its id.
pub type SubjectHandle = [u8; 16];

/// A root key's derived keys for handles and wrapping.
pub struct SubjectRoot {
    root_id: String,
    handle_mac: HmacSha256,
    wrap_key: Zeroizing<[u8; 64]>,
}

/// Why a subject key could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum SubjectKeyError {
    /// The wrapped key does not authenticate under this root key (damaged, or made under another).
    #[error("the subject key does not unwrap under this root key (damaged, or another key)")]
    Unwrap,
    /// The OS random number generator failed while making a subject key.
    #[error("the operating system's random number generator failed: {0}")]
    Random(getrandom::Error),
    /// The unwrapped subject key could not key a tokenizer.
    #[error(transparent)]
    Token(#[from] TokenError),
}

impl SubjectRoot {
    /// `root_id` is the root key's id (16 lowercase hex digits, as tokens carry it).
    pub fn new(root_id: &str, material: &SecretValue) -> SubjectRoot {
        let hk = Hkdf::<Sha256>::new(None, material.expose());
        let mut handle_key = Zeroizing::new([0u8; 32]);
        let mut wrap_key = Zeroizing::new([0u8; 64]);
        // 32 and 64 bytes are far below HKDF-SHA256's limit (8160): these cannot fail.
        let _ = hk.expand(HANDLE_INFO, handle_key.as_mut());
        let _ = hk.expand(WRAP_INFO, wrap_key.as_mut());
        SubjectRoot {
            root_id: root_id.to_owned(),
            handle_mac: HmacSha256::new(&SecretValue::new(handle_key.to_vec())),
            wrap_key,
        }
    }

    /// The root key's id, as tokens carry it.
    pub fn root_id(&self) -> &str {
        &self.root_id
    }

    /// The handle that names `subject` (its record key) in the store and in tokens.
    pub fn handle(&self, subject: &[u8]) -> SubjectHandle {
        let digest = self.handle_mac.mac(subject);
        let mut handle = [0u8; 16];
        handle.copy_from_slice(&digest[..16]);
        handle
    }

    /// A new random subject key and its wrapped form.
    pub fn new_key(
        &self,
        handle: &SubjectHandle,
    ) -> Result<(SecretValue, Vec<u8>), SubjectKeyError> {
        let mut key = Zeroizing::new(vec![0u8; 32]);
        getrandom::fill(&mut key).map_err(SubjectKeyError::Random)?;
        let mut wrapped = key.to_vec();
        Aes256Siv::new(&(*self.wrap_key).into())
            .encrypt_in_place([&handle[..]], &mut wrapped)
            .map_err(|_| SubjectKeyError::Unwrap)?;
        Ok((SecretValue::new(std::mem::take(&mut *key)), wrapped))
    }

    /// Unwraps a subject key stored under `handle`; the handle must be the one it was wrapped with.
    pub fn unwrap_key(
        &self,
        handle: &SubjectHandle,
        wrapped: &[u8],
    ) -> Result<SecretValue, SubjectKeyError> {
        let mut buffer = Zeroizing::new(wrapped.to_vec());
        Aes256Siv::new(&(*self.wrap_key).into())
            .decrypt_in_place([&handle[..]], &mut *buffer)
            .map_err(|_| SubjectKeyError::Unwrap)?;
        if buffer.len() != 32 {
            return Err(SubjectKeyError::Unwrap);
        }
        Ok(SecretValue::new(std::mem::take(&mut *buffer)))
    }

    /// The tokenizer of one subject's key.
    pub fn tokenizer(
        &self,
        handle: &SubjectHandle,
        key: &SecretValue,
    ) -> Result<Tokenizer, SubjectKeyError> {
        Ok(Tokenizer::new(&subject_key_id(&self.root_id, handle), key)?)
    }
}

/// A handle as 32 lowercase hex digits, as tokens and the audit log show it.
pub fn handle_hex(handle: &SubjectHandle) -> String {
    hex::encode(handle)
}

/// `<root id>s<handle hex>`: the key id of a subject's tokens.
pub fn subject_key_id(root_id: &str, handle: &SubjectHandle) -> String {
    format!("{root_id}s{}", hex::encode(handle))
}

/// Splits a per-subject token's key id into the root key id and the subject's handle; `None` for
/// an ordinary key id.
pub fn parse_subject_key_id(id: &str) -> Option<(&str, SubjectHandle)> {
    let (root, handle) = id.split_once('s')?;
    let bytes = hex::decode(handle).ok()?;
    let handle: SubjectHandle = bytes.try_into().ok()?;
    (!root.is_empty()).then_some((root, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> SubjectRoot {
        SubjectRoot::new("00112233445566aa", &SecretValue::new(vec![7u8; 32]))
    }

    #[test]
    fn handles_are_stable_per_subject_and_keys_unwrap_only_at_their_handle() {
        let r = root();
        let (a, b) = (r.handle(b"42"), r.handle(b"43"));
        assert_eq!(a, r.handle(b"42"));
        assert_ne!(a, b);
        let other = SubjectRoot::new("00112233445566aa", &SecretValue::new(vec![8u8; 32]));
        assert_ne!(a, other.handle(b"42"), "handles are keyed");

        let (key, wrapped) = r.new_key(&a).unwrap();
        assert!(!wrapped.windows(32).any(|w| w == key.expose()));
        assert_eq!(r.unwrap_key(&a, &wrapped).unwrap().expose(), key.expose());
        assert!(
            r.unwrap_key(&b, &wrapped).is_err(),
            "moved to another subject"
        );
        assert!(other.unwrap_key(&a, &wrapped).is_err(), "another root key");
    }

    #[test]
    fn subject_tokens_name_their_subject_and_reverse_with_its_key_only() {
        let r = root();
        let h = r.handle(b"42");
        let (key, _) = r.new_key(&h).unwrap();
        let t = r.tokenizer(&h, &key).unwrap();
        let token = t.tokenize(b"Ada");
        let id = crate::token_key_id(&token).unwrap();
        assert_eq!(parse_subject_key_id(id), Some(("00112233445566aa", h)));
        assert_eq!(t.detokenize(&token).unwrap(), b"Ada");
        assert_eq!(t.tokenize(b"Ada"), token, "deterministic per subject");
        let (other_key, _) = r.new_key(&h).unwrap();
        let other = r.tokenizer(&h, &other_key).unwrap();
        assert_ne!(other.tokenize(b"Ada"), token);
        assert!(other.detokenize(&token).is_err());
        assert_eq!(parse_subject_key_id("00112233445566aa"), None);
    }
}
