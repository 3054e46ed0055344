//! Tags that authenticate what the state directory keeps beside its encrypted files: staged
//! segments and their manifest, quarantine sidecars.
//!
//! age encrypts to a *public* recipient, and the recipient is written in plain in every staged
//! run's manifest: anyone who can write to the state directory can make a valid age file of
//! their own. age's authentication proves only that a file was not changed after it was
//! encrypted, not who encrypted it. These tags prove that hushflow wrote the content: they are
//! HMAC-SHA256 under a key only the holder of the state identity's *secret* can derive.
//!
//! Construction, so that other tools can check them:
//! - key: `K = HMAC-SHA256(key = the state identity as text, "AGE-SECRET-KEY-1…",
//!   message = "hushflow state mac v1")`;
//! - tag: `HMAC-SHA256(K, domain || 0x00 || for each part: u64 big-endian length || part)`,
//!   written as 64 lowercase hex digits. The domain names what is tagged (a segment, a
//!   manifest, a sidecar), so that a tag of one kind is never valid for another.

use hushflow_crypto::{HmacSha256, StateIdentity};
use hushflow_secrets::SecretValue;
use sha2::{Digest, Sha256};
use std::fmt;

const KEY_LABEL: &[u8] = b"hushflow state mac v1";

/// The state directory's tagging key, derived from its identity.
#[derive(Clone)]
pub struct StateMac {
    mac: HmacSha256,
}

impl StateMac {
    /// Derives the tagging key from the state identity's secret.
    pub fn new(identity: &StateIdentity) -> StateMac {
        let derive = HmacSha256::new(&identity.secret());
        let key = SecretValue::new(derive.mac(KEY_LABEL).to_vec());
        StateMac {
            mac: HmacSha256::new(&key),
        }
    }

    /// The tag of `parts` under `domain`, as 64 hex digits.
    pub fn tag(&self, domain: &str, parts: &[&[u8]]) -> String {
        hex::encode(self.mac.mac(&message(domain, parts)))
    }

    /// Whether `tag` is the tag of `parts` under `domain` (compared in constant time).
    pub fn verify(&self, domain: &str, parts: &[&[u8]], tag: &str) -> bool {
        match hex::decode(tag) {
            Ok(tag) if tag.len() == 32 => self.mac.verify(&message(domain, parts), &tag),
            _ => false,
        }
    }
}

impl fmt::Debug for StateMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StateMac { .. }")
    }
}

/// The SHA-256 of `bytes`, for tagging long content through its digest.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// An unambiguous encoding of the domain and the parts.
fn message(domain: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut m =
        Vec::with_capacity(domain.len() + 1 + parts.iter().map(|p| p.len() + 8).sum::<usize>());
    m.extend_from_slice(domain.as_bytes());
    m.push(0);
    for part in parts {
        m.extend_from_slice(&(part.len() as u64).to_be_bytes());
        m.extend_from_slice(part);
    }
    m
}

/// A JSON object's canonical bytes without its `tag` member, and the tag it carried: what a
/// tagged JSON file's tag covers. Canonical: compact, object members sorted by key at every
/// level, so that the bytes do not depend on how the file was laid out or parsed.
pub fn canonical_without_tag(
    mut value: serde_json::Value,
) -> (Option<String>, serde_json::Value, Vec<u8>) {
    let tag = value
        .as_object_mut()
        .and_then(|o| o.remove("tag"))
        .and_then(|t| t.as_str().map(str::to_owned));
    let mut bytes = Vec::new();
    canonical(&value, &mut bytes);
    (tag, value, bytes)
}

fn canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    match value {
        serde_json::Value::Object(members) => {
            let mut sorted: Vec<_> = members.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, member)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // A string or a number always serializes: the error cannot happen.
                let _ = serde_json::to_writer(&mut *out, key);
                out.push(b':');
                canonical(member, out);
            }
            out.push(b'}');
        }
        serde_json::Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out);
            }
            out.push(b']');
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_depend_on_the_identity_the_domain_and_every_part() {
        let id = StateIdentity::generate();
        let mac = StateMac::new(&id);
        let t = mac.tag("d", &[b"run", b"1"]);
        assert_eq!(t.len(), 64);
        assert!(mac.verify("d", &[b"run", b"1"], &t));
        assert!(!mac.verify("e", &[b"run", b"1"], &t), "another domain");
        assert!(!mac.verify("d", &[b"run", b"2"], &t), "another part");
        assert!(
            !mac.verify("d", &[b"ru", b"n1"], &t),
            "parts are not concatenated"
        );
        assert!(!mac.verify("d", &[b"run", b"1"], &t[..62]), "a cut tag");
        assert!(!mac.verify("d", &[b"run", b"1"], "not hex"));
        let other = StateMac::new(&StateIdentity::generate());
        assert!(!other.verify("d", &[b"run", b"1"], &t), "another identity");
        // The same identity, read back from its text, derives the same key.
        let again = StateIdentity::parse(std::str::from_utf8(id.secret().expose()).unwrap());
        assert!(StateMac::new(&again.unwrap()).verify("d", &[b"run", b"1"], &t));
        assert_eq!(format!("{mac:?}"), "StateMac { .. }");
    }

    #[test]
    fn the_canonical_form_ignores_only_the_tag() {
        let a = serde_json::json!({"b": 1, "a": "x", "tag": "00"});
        let b = serde_json::json!({"a": "x", "b": 1});
        let (tag, _, bytes) = canonical_without_tag(a);
        assert_eq!(tag.as_deref(), Some("00"));
        assert_eq!(bytes, canonical_without_tag(b).2);
        assert_eq!(bytes, br#"{"a":"x","b":1}"#);
        let c = serde_json::json!({"a": "x", "b": 2});
        assert_ne!(bytes, canonical_without_tag(c).2);
        let nested = serde_json::json!({"z": [{"y": 1, "x": null}], "tag": 5});
        let (tag, _, bytes) = canonical_without_tag(nested);
        assert_eq!(tag, None, "a tag that is not a string is no tag");
        assert_eq!(bytes, br#"{"z":[{"x":null,"y":1}]}"#);
    }
}
