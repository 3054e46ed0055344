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

use aes::Aes256;
use aes::cipher::BlockCipherEncrypt;
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

/// Why a tokenizer could not be made, or a token not reversed. Never holds a plaintext.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The key id is empty, too long, or not lowercase alphanumeric.
    #[error("the key id must be 1 to 64 characters of [0-9a-z]")]
    BadKeyId,
    /// The key material is shorter than 32 bytes.
    #[error("token key material must be at least 32 bytes")]
    ShortKey,
    /// The text does not have the shape of a token.
    #[error("not a hushflow token (they start with `tok1.`)")]
    NotAToken,
    /// The token names another key than this tokenizer's.
    #[error("the token was made with key id {token}, not with this key ({key})")]
    WrongKey {
        /// The key id the token names.
        token: String,
        /// This tokenizer's key id.
        key: String,
    },
    /// The token does not decrypt under this key: altered, cut, or forged.
    #[error("the token is damaged or was not made with this key")]
    Damaged,
}

/// A keyed tokenizer. Holds the derived key, never the token's plaintexts.
pub struct Tokenizer {
    key_id: String,
    key: Zeroizing<[u8; 64]>,
    siv: PreKeyedSiv,
}

/// AES-256-SIV encryption (RFC 5297) with everything that depends only on the key and the fixed
/// associated data done once. `aes_siv::Siv` runs two AES key schedules, derives the CMAC
/// subkeys and MACs the associated data on every call: for a short name that was most of the
/// cost of a token (about 540 ns of it, measured). Here a token of a value under 16 bytes costs
/// three AES block encryptions and no allocation. The ciphers are used through `&self` only, so
/// one tokenizer serves every worker thread. Checked against the `aes-siv` crate (RFC 5297's
/// vector, and equal output on arbitrary inputs) in the tests; decryption still goes through
/// the crate.
struct PreKeyedSiv {
    /// K1 in RFC 5297's terms: the CMAC key (the first half of the SIV key).
    mac: Aes256,
    /// K2: the CTR key (the second half).
    ctr: Aes256,
    /// Key-derived constants, wiped on drop: CMAC's subkeys and S2V's state after the
    /// associated data (`dbl(CMAC(0)) xor CMAC(AD)`).
    consts: Zeroizing<[[u8; 16]; 3]>,
}

const SUBKEY1: usize = 0;
const SUBKEY2: usize = 1;
const AD_STATE: usize = 2;

/// RFC 5297's `dbl`: multiplication by x in GF(2^128), big-endian.
fn dbl(block: [u8; 16]) -> [u8; 16] {
    let value = u128::from_be_bytes(block);
    let carry = if value >> 127 == 1 { 0x87 } else { 0 };
    ((value << 1) ^ carry).to_be_bytes()
}

fn xor_into(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}

impl PreKeyedSiv {
    /// `key` is the 64-byte SIV key, MAC half first (the slices cannot have the wrong length).
    fn new(key: &[u8; 64]) -> Result<Self, TokenError> {
        let (mac_key, ctr_key) = key.split_at(32);
        let mac = Aes256::new_from_slice(mac_key).map_err(|_| TokenError::ShortKey)?;
        let ctr = Aes256::new_from_slice(ctr_key).map_err(|_| TokenError::ShortKey)?;
        let mut siv = PreKeyedSiv {
            mac,
            ctr,
            consts: Zeroizing::new([[0; 16]; 3]),
        };
        // CMAC's subkeys (RFC 4493 section 2.3).
        let mut l = aes::Block::default();
        siv.mac.encrypt_block(&mut l);
        let k1 = dbl(l.into());
        siv.consts[SUBKEY1] = k1;
        siv.consts[SUBKEY2] = dbl(k1);
        // S2V over the one header: D = dbl(CMAC(<zero>)) xor CMAC(AD).
        let mut state = dbl(siv.cmac(&[0; 16]));
        xor_into(&mut state, &siv.cmac(AD));
        siv.consts[AD_STATE] = state;
        Ok(siv)
    }

    /// AES-CMAC (RFC 4493) under the MAC key.
    fn cmac(&self, message: &[u8]) -> [u8; 16] {
        // Every block but the last is chained as is; the last is xored with a subkey, padded
        // first (and with the other subkey) when it is not a whole block.
        let last_start = message.len().saturating_sub(1) / 16 * 16;
        let (body, last) = message.split_at(last_start);
        let mut x = aes::Block::default();
        for block in body.chunks_exact(16) {
            xor_into(&mut x, block);
            self.mac.encrypt_block(&mut x);
        }
        let mut final_block = [0u8; 16];
        final_block[..last.len()].copy_from_slice(last);
        if last.len() == 16 {
            xor_into(&mut final_block, &self.consts[SUBKEY1]);
        } else {
            final_block[last.len()] = 0x80;
            xor_into(&mut final_block, &self.consts[SUBKEY2]);
        }
        xor_into(&mut x, &final_block);
        self.mac.encrypt_block(&mut x);
        x.into()
    }

    /// Encrypts `buffer[16..]` in place and writes the synthetic IV to `buffer[..16]`: the
    /// layout of `aes_siv`'s `encrypt_in_place`, IV first.
    fn encrypt(&self, buffer: &mut [u8]) {
        let (iv_out, text) = buffer.split_at_mut(16);
        // S2V, the plaintext being the last input (RFC 5297 section 2.4).
        let mut state = self.consts[AD_STATE];
        let iv = if text.len() >= 16 {
            // T = P xorend D. The plaintext is xored in place, MACed, and restored.
            let tail = text.len() - 16;
            xor_into(&mut text[tail..], &state);
            let iv = self.cmac(text);
            xor_into(&mut text[tail..], &state);
            iv
        } else {
            // T = dbl(D) xor pad(P), one whole block.
            state = dbl(state);
            xor_into(&mut state, text);
            state[text.len()] ^= 0x80;
            self.cmac(&state)
        };
        iv_out.copy_from_slice(&iv);
        // CTR from the IV with bits 63 and 31 cleared (section 2.5), a 128-bit big-endian
        // counter.
        let mut q = iv;
        q[8] &= 0x7f;
        q[12] &= 0x7f;
        let counter = u128::from_be_bytes(q);
        for (i, chunk) in text.chunks_mut(16).enumerate() {
            let mut keystream = aes::Block::from(counter.wrapping_add(i as u128).to_be_bytes());
            self.ctr.encrypt_block(&mut keystream);
            xor_into(chunk, &keystream);
        }
    }
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
    /// A tokenizer for the key `key_id` (it goes into every token) with `material` (at least 32
    /// bytes).
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
            siv: PreKeyedSiv::new(&key)?,
            key,
        })
    }

    /// The key id this tokenizer writes into its tokens.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The `aes-siv` crate's cipher, for detokenizing (not on any hot path). AES-SIV keeps CMAC
    /// state and needs `&mut`; a cipher per call keeps the tokenizer shareable across threads.
    fn cipher(&self) -> Aes256Siv {
        Aes256Siv::new(&(*self.key).into())
    }

    /// Appends the token for `plaintext` to `out`.
    pub fn tokenize_into(&self, plaintext: &[u8], out: &mut String) {
        // IV ‖ ciphertext; on the stack for the short values tokens are made of.
        const STACK: usize = 128;
        let mut stack = [0u8; STACK];
        let mut heap = Vec::new();
        let buffer = if plaintext.len() + 16 <= STACK {
            &mut stack[..plaintext.len() + 16]
        } else {
            heap.resize(plaintext.len() + 16, 0);
            &mut heap[..]
        };
        buffer[16..].copy_from_slice(plaintext);
        self.siv.encrypt(buffer);
        out.push_str(PREFIX);
        out.push_str(&self.key_id);
        out.push('.');
        B64.encode_string(&*buffer, out);
    }

    /// The token for `plaintext`, in a new string.
    pub fn tokenize(&self, plaintext: &[u8]) -> String {
        let mut out = String::new();
        self.tokenize_into(plaintext, &mut out);
        out
    }

    /// The plaintext of a token this key made.
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

    /// The pre-keyed path against the crate, on every length around the block size.
    #[test]
    fn pre_keyed_siv_matches_the_crate() {
        let t = Tokenizer::new("k1", &material(9)).unwrap();
        for len in 0..80 {
            let plaintext: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let mut expected = plaintext.clone();
            t.cipher().encrypt_in_place([AD], &mut expected).unwrap();
            let mut buffer = vec![0u8; len + 16];
            buffer[16..].copy_from_slice(&plaintext);
            t.siv.encrypt(&mut buffer);
            assert_eq!(buffer, expected, "length {len}");
        }
    }

    proptest! {
        #[test]
        fn pre_keyed_siv_matches_the_crate_on_any_input(key in any::<[u8; 32]>(), bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let t = Tokenizer::new("k1", &SecretValue::new(key.to_vec())).unwrap();
            let mut expected = bytes.clone();
            t.cipher().encrypt_in_place([AD], &mut expected).unwrap();
            let mut buffer = vec![0u8; bytes.len() + 16];
            buffer[16..].copy_from_slice(&bytes);
            t.siv.encrypt(&mut buffer);
            prop_assert_eq!(buffer, expected);
        }

        #[test]
        fn detokenize_inverts_tokenize(bytes in proptest::collection::vec(any::<u8>(), 0..200), text in "\\PC{0,60}") {
            let t = Tokenizer::new("k1", &material(3)).unwrap();
            prop_assert_eq!(t.detokenize(&t.tokenize(&bytes)).unwrap(), bytes);
            prop_assert_eq!(t.detokenize(&t.tokenize(text.as_bytes())).unwrap(), text.as_bytes());
        }
    }
}
