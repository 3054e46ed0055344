//! The JWT bearer flow's assertion (RFC 7523, as Salesforce's "OAuth 2.0 JWT Bearer Flow for
//! Server-to-Server Integration" describes it): a JWT with `iss` = the connected app's consumer
//! key, `sub` = the username, `aud` = the login host, `exp` = three minutes ahead, signed RS256
//! with the private key whose certificate the connected app holds.
//!
//! Signed with ring (rustls's provider, already in the binary): no OpenSSL, no other RSA
//! crate. The key is read once from its PEM (PKCS#8 `PRIVATE KEY`, or PKCS#1 `RSA PRIVATE
//! KEY`), which comes by secret reference and is never shown.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use std::time::{SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// Signs assertions for one connected app and user.
pub(super) struct Signer {
    key: RsaKeyPair,
    client_id: String,
    username: String,
    audience: String,
    rng: SystemRandom,
}

impl Signer {
    /// Reads the private key from its PEM text. The error names what is wrong with the key,
    /// never any of it.
    pub(super) fn new(
        pem: &[u8],
        client_id: &str,
        username: &str,
        audience: &str,
    ) -> Result<Signer, String> {
        let mut found = None;
        for item in ureq::tls::parse_pem(pem) {
            if let Ok(ureq::tls::PemItem::PrivateKey(k)) = item {
                found = Some(k);
                break;
            }
        }
        let key = found.ok_or_else(|| {
            "the private_key secret holds no PEM private key (-----BEGIN PRIVATE KEY-----)"
                .to_string()
        })?;
        // PKCS#8 (`PRIVATE KEY`) first, then PKCS#1 (`RSA PRIVATE KEY`); an EC key fits neither.
        let pair = RsaKeyPair::from_pkcs8(key.der())
            .or_else(|_| RsaKeyPair::from_der(key.der()))
            .map_err(|_| {
                "the private_key is not an RSA key ring can sign with (2048 bits or more)"
                    .to_string()
            })?;
        Ok(Signer {
            key: pair,
            client_id: client_id.to_string(),
            username: username.to_string(),
            audience: audience.trim().trim_end_matches('/').to_string(),
            rng: SystemRandom::new(),
        })
    }

    /// A fresh assertion: `header.claims.signature`, each base64url without padding.
    pub(super) fn assertion(&self) -> Result<Zeroizing<String>, String> {
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            + 180;
        let claims = serde_json::json!({
            "iss": self.client_id,
            "sub": self.username,
            "aud": self.audience,
            "exp": exp,
        });
        let mut out = Zeroizing::new(String::with_capacity(1024));
        out.push_str(&URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#));
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, out.as_bytes(), &mut signature)
            .map_err(|_| "signing the JWT bearer assertion failed".to_string())?;
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(&signature));
        Ok(out)
    }
}
