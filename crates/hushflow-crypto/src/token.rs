//! Deterministic, reversible tokens: AES-SIV (RFC 5297), so the same value under the same key
//! always gives the same token (joins still work) and a holder of the key can reverse it.
//!
//! Construction, so that other systems can reproduce it:
//! - key: HKDF-SHA256 (RFC 5869) of the key material, no salt, info
//!   `hushflow tokenize aes-siv v1`, 64 bytes, used as AES-SIV-256's key (CMAC half first);
//! - associated data: one component, the bytes `hushflow-token-v1`;
//! - token: `tok1.<key id>.<base64url without padding of (SIV tag ‖ ciphertext)>`.
//!
//! The key id travels in the token so that a rotated keyring still finds the key that made it.

use aes_siv::KeyInit;
use aes_siv::siv::Aes256Siv;
use base64::Engine as _;
use hkdf::Hkdf;
use hushflow_secrets::SecretValue;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const INFO: &[u8] = b"hushflow tokenize aes-siv v1";
const AD: &[u8] = b"hushflow-token-v1";
const PREFIX: &str = "tok1.";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the key id must be 1 to 64 characters of [0-9a-z]")]
    BadKeyId,
    #[error("token key material must be at least 32 bytes")]
    ShortKey,
    #[error("not a hushflow token (they start with `tok1.`)")]
    NotAToken,
    #[error("the token was made with key id {token}, not with this key ({key})")]
    WrongKey { token: String, key: String },
    #[error("the token is damaged or was not made with this key")]
    Damaged,
}

/// A keyed tokenizer. Holds the derived key, never the token's plaintexts.
pub struct Tokenizer {
    key_id: String,
    key: Zeroizing<[u8; 64]>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// The key id of key material that has no keyring id (`env:`/`file:` keys): the first 16 hex
/// characters of its SHA-256. Public: it names the key, it does not reveal it.
pub fn fingerprint_key_id(material: &SecretValue) -> String {
    hex::encode(&Sha256::digest(material.expose())[..8])
}

/// The key id a token names, read without any key.
pub fn token_key_id(token: &str) -> Option<&str> {
    let rest = token.trim().strip_prefix(PREFIX)?;
    let (id, _) = rest.split_once('.')?;
    (!id.is_empty()).then_some(id)
}

impl Tokenizer {
    pub fn new(key_id: &str, material: &SecretValue) -> Result<Tokenizer, TokenError> {
        if key_id.is_empty()
            || key_id.len() > 64
            || !key_id
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        {
            return Err(TokenError::BadKeyId);
        }
        if material.expose().len() < 32 {
            return Err(TokenError::ShortKey);
        }
        let mut key = Zeroizing::new([0u8; 64]);
        Hkdf::<Sha256>::new(None, material.expose())
            .expand(INFO, key.as_mut())
            .map_err(|_| TokenError::ShortKey)?;
        Ok(Tokenizer {
            key_id: key_id.to_string(),
            key,
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    fn cipher(&self) -> Aes256Siv {
        // AES-SIV keeps CMAC state and needs `&mut`; a cipher per call keeps the tokenizer
        // shareable across worker threads (two AES key schedules, well under the cost of a value).
        Aes256Siv::new(&(*self.key).into())
    }

    /// Appends the token for `plaintext` to `out`.
    pub fn tokenize_into(&self, plaintext: &[u8], out: &mut String) {
        let mut buffer = Vec::with_capacity(plaintext.len() + 16);
        buffer.extend_from_slice(plaintext);
        // Encryption with one header cannot fail (the limit is 126 headers); an empty token is
        // the safe fallback should the crate ever say otherwise.
        if self.cipher().encrypt_in_place([AD], &mut buffer).is_err() {
            return;
        }
        out.push_str(PREFIX);
        out.push_str(&self.key_id);
        out.push('.');
        B64.encode_string(&buffer, out);
    }

    pub fn tokenize(&self, plaintext: &[u8]) -> String {
        let mut out = String::new();
        self.tokenize_into(plaintext, &mut out);
        out
    }

    pub fn detokenize(&self, token: &str) -> Result<Vec<u8>, TokenError> {
        let token = token.trim();
        let id = token_key_id(token).ok_or(TokenError::NotAToken)?;
        if id != self.key_id {
            return Err(TokenError::WrongKey {
                token: id.to_string(),
                key: self.key_id.clone(),
            });
        }
        let body = &token[PREFIX.len() + id.len() + 1..];
        let mut buffer = B64.decode(body).map_err(|_| TokenError::Damaged)?;
        self.cipher()
            .decrypt_in_place([AD], &mut buffer)
            .map_err(|_| TokenError::Damaged)?;
        Ok(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_siv::siv::Aes128Siv;
    use proptest::prelude::*;

    fn material(byte: u8) -> SecretValue {
        SecretValue::new(vec![byte; 32])
    }

    /// RFC 5297, appendix A.1 (deterministic authenticated encryption): proves the crate is AES-SIV.
    #[test]
    fn rfc5297_a1_vector() {
        let key = hex::decode("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
            .unwrap();
        let ad = hex::decode("101112131415161718191a1b1c1d1e1f2021222324252627").unwrap();
        let plaintext = hex::decode("112233445566778899aabbccddee").unwrap();
        let mut cipher = Aes128Siv::new(key.as_slice().try_into().unwrap());
        let out = cipher.encrypt([&ad], &plaintext).unwrap();
        assert_eq!(
            hex::encode(out),
            "85632d07c6e8f37f950acd320a2ecc9340c02b9690c4dc04daef7f6afe5c"
        );
    }

    #[test]
    fn tokens_are_deterministic_keyed_and_reversible() {
        let t = Tokenizer::new("0011223344556677", &material(7)).unwrap();
        let a = t.tokenize("Jane".as_bytes());
        assert_eq!(a, t.tokenize(b"Jane"));
        assert!(a.starts_with("tok1.0011223344556677."));
        assert_ne!(a, t.tokenize(b"Jane "));
        assert_eq!(t.detokenize(&a).unwrap(), b"Jane");
        let other = Tokenizer::new("0011223344556677", &material(8)).unwrap();
        assert_ne!(a, other.tokenize(b"Jane"));
        assert!(matches!(other.detokenize(&a), Err(TokenError::Damaged)));
        assert_eq!(t.detokenize(&t.tokenize(b"")).unwrap(), b"");
    }

    #[test]
    fn bad_tokens_are_errors_that_do_not_echo_them() {
        let t = Tokenizer::new("abc", &material(1)).unwrap();
        let good = t.tokenize(b"canary-plaintext");
        let mut tampered = good.clone();
        tampered.pop();
        tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
        for bad in [
            &tampered[..],
            &good[..good.len() - 5],
            "tok1.abc.",
            "canary",
            "tok1.zzz.AAAA",
        ] {
            let e = t.detokenize(bad).unwrap_err();
            assert!(!e.to_string().contains("canary"), "{e}");
        }
        assert!(matches!(
            t.detokenize("tok1.zzz.AAAA"),
            Err(TokenError::WrongKey { .. })
        ));
        assert_eq!(token_key_id(&good), Some("abc"));
        assert!(Tokenizer::new("ABC", &material(1)).is_err());
        assert!(Tokenizer::new("abc", &SecretValue::new(vec![1; 16])).is_err());
    }

    #[test]
    fn debug_shows_the_key_id_only() {
        let t = Tokenizer::new("abc", &material(0x41)).unwrap();
        let shown = format!("{t:?}");
        assert!(shown.contains("abc") && !shown.contains("AAAA") && !shown.contains("65, 65"));
    }

    proptest! {
        #[test]
        fn detokenize_inverts_tokenize(bytes in proptest::collection::vec(any::<u8>(), 0..200), text in "\\PC{0,60}") {
            let t = Tokenizer::new("k1", &material(3)).unwrap();
            prop_assert_eq!(t.detokenize(&t.tokenize(&bytes)).unwrap(), bytes);
            prop_assert_eq!(t.detokenize(&t.tokenize(text.as_bytes())).unwrap(), text.as_bytes());
        }
    }
}
