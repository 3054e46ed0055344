//! The secrets identity and access hands out: API tokens (`hf_<id>_<secret>`) and session
//! secrets, each 32 random bytes from the operating system, and what is kept of them (their
//! SHA-256). Comparisons of digests are constant-time (`subtle`).

use super::AccessError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// What every API token starts with, so that secret scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "hf_";

/// Hex characters of a token's public id.
const TOKEN_ID_CHARS: usize = 16;

/// Characters of 32 bytes in unpadded base64url.
const SECRET_CHARS: usize = 43;

/// `n` random bytes from the operating system.
fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, AccessError> {
    let mut bytes = Zeroizing::new([0u8; N]);
    getrandom::fill(&mut bytes[..])
        .map_err(|e| AccessError::Failed(format!("the random source failed: {e}")))?;
    Ok(bytes)
}

/// 32 random bytes in unpadded base64url (43 characters).
pub fn new_secret() -> Result<Zeroizing<String>, AccessError> {
    Ok(Zeroizing::new(URL_SAFE_NO_PAD.encode(&random::<32>()?[..])))
}

/// A new token's public id: 8 random bytes in hex.
pub fn new_token_id() -> Result<String, AccessError> {
    Ok(hex::encode(&random::<8>()?[..]))
}

/// The SHA-256 of `secret`, in hex: what the store keeps of a token's or session's secret.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The SHA-256 of a sign-in address, in hex: enough to count attempts from it, without
/// keeping the address in the store.
pub fn address_digest(address: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"hushflow sign-in address\0");
    h.update(address.trim().as_bytes());
    hex::encode(h.finalize())
}

/// Whether two digests are equal, in time that does not depend on where they differ.
pub fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A token as the holder gives it: `hf_` + id + `_` + secret.
pub fn format_token(id: &str, secret: &str) -> Zeroizing<String> {
    Zeroizing::new(format!("{TOKEN_PREFIX}{id}_{secret}"))
}

/// The id and secret of a token, or `None` when it does not have a token's shape.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.trim().strip_prefix(TOKEN_PREFIX)?;
    let id = rest.get(..TOKEN_ID_CHARS)?;
    let secret = rest.get(TOKEN_ID_CHARS..)?.strip_prefix('_')?;
    let ok = id.bytes().all(|b| b.is_ascii_hexdigit())
        && secret.len() == SECRET_CHARS
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some((id, secret))
}

/// Whether `secret` has the shape of a session secret (before any lookup).
pub fn is_secret_shaped(secret: &str) -> bool {
    secret.len() == SECRET_CHARS
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The CSRF token of the session whose secret is `secret`: derived from it, so that it needs
/// no storage and is valid exactly as long as the session; it does not reveal the secret.
pub fn csrf_token(secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"hushflow csrf\0");
    h.update(secret.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

/// Whether `given` is the CSRF token of the session whose secret is `secret` (constant-time).
pub fn check_csrf(secret: &str, given: &str) -> bool {
    same_digest(&csrf_token(secret), given.trim())
}
