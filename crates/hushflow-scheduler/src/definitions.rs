//! Signed definitions. A try executes the pipeline text the metadata store holds, so a worker
//! must not take that text on the store's word: anyone who can write the store (a leaked worker
//! credential) could otherwise change a pipeline's policy, sinks and SQL for every worker. Two
//! checks, before a try starts:
//!
//! - the text's SHA-256 must be the definition's fingerprint (what the run was created from);
//! - the definition must carry an Ed25519 signature, made by whoever registered it (a scheduler,
//!   `trigger FILE`, `backfill FILE`) over its fingerprint, pipeline name and file path, that a
//!   public key the worker was given verifies. The signing key never enters the store, so the
//!   definition's authenticity does not depend on who can write it.
//!
//! Keys are kept by the CLI and the app layer (a file in the state directory, or a secret
//! reference); this module only signs and verifies.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use zeroize::Zeroizing;

/// Separates these signatures from any other use of the same key.
const CONTEXT: &[u8] = b"hushflow pipeline definition v1";

/// How public keys are written: `ed25519:` and the key's 32 bytes in base64.
const PUBLIC_PREFIX: &str = "ed25519:";

/// The fingerprint of a definition's text: its SHA-256, hex (as `dag::parse` computes it).
pub fn fingerprint(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// What a signature covers: each part length-prefixed, so no two different definitions give
/// the same bytes.
fn message(fingerprint: &str, pipeline: &str, file: &Path) -> Vec<u8> {
    let parts: [&[u8]; 4] = [
        CONTEXT,
        fingerprint.as_bytes(),
        pipeline.as_bytes(),
        file.as_os_str().as_bytes(),
    ];
    let mut m = Vec::new();
    for part in parts {
        m.extend_from_slice(&(part.len() as u64).to_be_bytes());
        m.extend_from_slice(part);
    }
    m
}

/// Why a definition key could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionKeyError {
    /// The signing key is neither 32 bytes nor their base64.
    #[error(
        "a definition signing key is 32 bytes, or their base64 (as `hushflow db definition-key \
         create` writes it); this one is neither"
    )]
    BadSigningKey,
    /// A public key is not `ed25519:` and its base64 (the text given is quoted: public keys
    /// are not secret).
    #[error(
        "`{0}` is not a definition public key; give `ed25519:` and 44 base64 characters, as \
         `hushflow db definition-key create` prints it"
    )]
    BadPublicKey(String),
    /// The system gave no randomness for a new key.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

/// The key that signs definitions when they are registered. Its `Debug` shows only the public
/// key.
#[derive(Clone)]
pub struct DefinitionSigner {
    key: SigningKey,
}

impl fmt::Debug for DefinitionSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DefinitionSigner({})", self.public_key())
    }
}

impl DefinitionSigner {
    /// A new random key.
    pub fn generate() -> Result<DefinitionSigner, DefinitionKeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut seed[..]).map_err(|e| DefinitionKeyError::Random(e.to_string()))?;
        Ok(DefinitionSigner {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// A key from its secret: 32 raw bytes (a keyring key), or their base64 (a key file).
    pub fn from_secret(secret: &[u8]) -> Result<DefinitionSigner, DefinitionKeyError> {
        let seed: Zeroizing<[u8; 32]> = if secret.len() == 32 {
            let mut seed = Zeroizing::new([0u8; 32]);
            seed.copy_from_slice(secret);
            seed
        } else {
            let text = std::str::from_utf8(secret)
                .map_err(|_| DefinitionKeyError::BadSigningKey)?
                .trim();
            let bytes = Zeroizing::new(
                STANDARD
                    .decode(text)
                    .map_err(|_| DefinitionKeyError::BadSigningKey)?,
            );
            let mut seed = Zeroizing::new([0u8; 32]);
            if bytes.len() != 32 {
                return Err(DefinitionKeyError::BadSigningKey);
            }
            seed.copy_from_slice(&bytes);
            seed
        };
        Ok(DefinitionSigner {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The secret in base64, as a key file holds it.
    pub fn secret_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.key.to_bytes()))
    }

    /// The public key that verifies this key's signatures (for workers' trust).
    pub fn public_key(&self) -> DefinitionPublicKey {
        DefinitionPublicKey(self.key.verifying_key())
    }

    /// The signature (base64) of a definition: its fingerprint, pipeline and file.
    pub fn sign(&self, fingerprint: &str, pipeline: &str, file: &Path) -> String {
        let signature = self.key.sign(&message(fingerprint, pipeline, file));
        STANDARD.encode(signature.to_bytes())
    }
}

/// A key that verifies definitions, given to workers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DefinitionPublicKey(VerifyingKey);

impl fmt::Display for DefinitionPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", STANDARD.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for DefinitionPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl DefinitionPublicKey {
    /// `ed25519:BASE64` (the prefix may be left out).
    pub fn parse(text: &str) -> Result<DefinitionPublicKey, DefinitionKeyError> {
        let text = text.trim();
        let bad = || DefinitionKeyError::BadPublicKey(text.chars().take(60).collect());
        let b64 = text.strip_prefix(PUBLIC_PREFIX).unwrap_or(text);
        let bytes: [u8; 32] = STANDARD
            .decode(b64)
            .map_err(|_| bad())?
            .try_into()
            .map_err(|_| bad())?;
        VerifyingKey::from_bytes(&bytes)
            .map(DefinitionPublicKey)
            .map_err(|_| bad())
    }

    /// Several keys, separated by commas or white space (the old and the new key while a
    /// signing key is replaced).
    pub fn parse_list(text: &str) -> Result<Vec<DefinitionPublicKey>, DefinitionKeyError> {
        let keys = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(DefinitionPublicKey::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(DefinitionKeyError::BadPublicKey(String::new()));
        }
        Ok(keys)
    }

    fn verifies(&self, message: &[u8], signature: &Signature) -> bool {
        self.0.verify(message, signature).is_ok()
    }
}

/// A definition as a claim or a failed task carries it, to be checked before its text is used.
#[derive(Debug, Clone, Copy)]
pub struct DefinitionRef<'a> {
    /// The pipeline the task belongs to (the signature must be for this pipeline).
    pub pipeline: &'a str,
    /// The pipeline file the definition was read from (for messages).
    pub file: &'a Path,
    /// The pipeline file's text, as registered: what the fingerprint and signature cover.
    pub text: &'a str,
    /// The fingerprint the run was created from.
    pub fingerprint: &'a str,
    /// Base64, as stored; `None` when it was registered unsigned.
    pub signature: Option<&'a str>,
}

/// Which definitions a worker executes.
#[derive(Debug, Clone, Default)]
pub enum DefinitionTrust {
    /// Only definitions whose text matches their fingerprint; signatures are not checked (for
    /// tests and embedders that sign nothing; the CLI always gives keys).
    #[default]
    FingerprintOnly,
    /// Also only definitions signed by one of these keys.
    SignedBy(Vec<DefinitionPublicKey>),
}

/// Why a definition was refused. The messages name the pipeline and fingerprints, never the
/// text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionRefused {
    /// The text in the store does not match its fingerprint.
    #[error(
        "refused to run the definition of {pipeline}: its text does not match its fingerprint \
         (the metadata store holds text whose SHA-256 is {actual}, registered as {expected}), so \
         it was changed in the store after it was registered"
    )]
    Altered {
        /// The pipeline whose definition was refused.
        pipeline: String,
        /// The fingerprint it was registered with.
        expected: String,
        /// The SHA-256 of the text the store holds now.
        actual: String,
    },
    /// The definition carries no signature, and the worker asks for one.
    #[error(
        "refused to run the definition of {pipeline} ({fingerprint}): it is not signed, and \
         this worker runs only definitions signed with its definition key; register the file \
         again with a scheduler or `hushflow trigger FILE` that has the signing key"
    )]
    Unsigned {
        /// The pipeline whose definition was refused.
        pipeline: String,
        /// The definition's fingerprint.
        fingerprint: String,
    },
    /// The signature is not from a key the worker trusts (or the definition changed).
    #[error(
        "refused to run the definition of {pipeline} ({fingerprint}): its signature is not \
         from a key this worker trusts ({trusted}), so it was not registered by a scheduler \
         this worker trusts, or it was changed in the store; if the signing key was replaced, \
         give workers its public key (--definition-public-key)"
    )]
    BadSignature {
        /// The pipeline whose definition was refused.
        pipeline: String,
        /// The definition's fingerprint.
        fingerprint: String,
        /// The public keys the worker trusts, comma-separated.
        trusted: String,
    },
}

impl DefinitionTrust {
    /// Whether a worker may execute this definition.
    pub fn check(&self, d: &DefinitionRef<'_>) -> Result<(), DefinitionRefused> {
        let actual = fingerprint(d.text);
        if actual != d.fingerprint {
            return Err(DefinitionRefused::Altered {
                pipeline: d.pipeline.to_string(),
                expected: d.fingerprint.to_string(),
                actual,
            });
        }
        let DefinitionTrust::SignedBy(keys) = self else {
            return Ok(());
        };
        let Some(signature) = d.signature.filter(|s| !s.is_empty()) else {
            return Err(DefinitionRefused::Unsigned {
                pipeline: d.pipeline.to_string(),
                fingerprint: d.fingerprint.to_string(),
            });
        };
        let bad = || DefinitionRefused::BadSignature {
            pipeline: d.pipeline.to_string(),
            fingerprint: d.fingerprint.to_string(),
            trusted: keys
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        };
        let bytes: [u8; 64] = STANDARD
            .decode(signature.trim())
            .map_err(|_| bad())?
            .try_into()
            .map_err(|_| bad())?;
        let signature = Signature::from_bytes(&bytes);
        let message = message(&actual, d.pipeline, d.file);
        if keys.iter().any(|k| k.verifies(&message, &signature)) {
            Ok(())
        } else {
            Err(bad())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[pipeline]\nname = \"p\"\n";

    fn definition<'a>(text: &'a str, fp: &'a str, signature: Option<&'a str>) -> DefinitionRef<'a> {
        DefinitionRef {
            pipeline: "p",
            file: Path::new("/srv/pipelines/p.toml"),
            text,
            fingerprint: fp,
            signature,
        }
    }

    #[test]
    fn a_signed_definition_verifies_and_any_change_is_refused() {
        let signer = DefinitionSigner::generate().unwrap();
        let trust = DefinitionTrust::SignedBy(vec![signer.public_key()]);
        let fp = fingerprint(TEXT);
        let sig = signer.sign(&fp, "p", Path::new("/srv/pipelines/p.toml"));
        trust.check(&definition(TEXT, &fp, Some(&sig))).unwrap();

        // The text changed, its fingerprint kept.
        let altered = "[pipeline]\nname = \"p\"\n# more\n";
        assert!(matches!(
            trust.check(&definition(altered, &fp, Some(&sig))),
            Err(DefinitionRefused::Altered { .. })
        ));
        // The text and its fingerprint changed together: the signature no longer fits.
        let fp2 = fingerprint(altered);
        assert!(matches!(
            trust.check(&definition(altered, &fp2, Some(&sig))),
            Err(DefinitionRefused::BadSignature { .. })
        ));
        // Unsigned, or signed for another pipeline or file.
        assert!(matches!(
            trust.check(&definition(TEXT, &fp, None)),
            Err(DefinitionRefused::Unsigned { .. })
        ));
        let mut other = definition(TEXT, &fp, Some(&sig));
        other.pipeline = "q";
        assert!(trust.check(&other).is_err());
        let mut moved = definition(TEXT, &fp, Some(&sig));
        moved.file = Path::new("/tmp/p.toml");
        assert!(trust.check(&moved).is_err());
        // Signed by a key the worker was not given.
        let stranger = DefinitionSigner::generate().unwrap();
        let forged = stranger.sign(&fp, "p", Path::new("/srv/pipelines/p.toml"));
        let e = trust
            .check(&definition(TEXT, &fp, Some(&forged)))
            .unwrap_err();
        assert!(
            e.to_string().contains(&signer.public_key().to_string()),
            "{e}"
        );
        assert!(
            trust
                .check(&definition(TEXT, &fp, Some("bm9pc2U=")))
                .is_err()
        );
        // Without keys only the fingerprint is checked.
        DefinitionTrust::FingerprintOnly
            .check(&definition(TEXT, &fp, None))
            .unwrap();
        assert!(
            DefinitionTrust::FingerprintOnly
                .check(&definition(altered, &fp, None))
                .is_err()
        );
    }

    #[test]
    fn keys_round_trip_through_their_text() {
        let signer = DefinitionSigner::generate().unwrap();
        let again = DefinitionSigner::from_secret(signer.secret_base64().as_bytes()).unwrap();
        assert_eq!(again.public_key(), signer.public_key());
        let raw = DefinitionSigner::from_secret(&[7u8; 32]).unwrap();
        let from_b64 =
            DefinitionSigner::from_secret(STANDARD.encode([7u8; 32]).as_bytes()).unwrap();
        assert_eq!(raw.public_key(), from_b64.public_key());
        assert!(DefinitionSigner::from_secret(b"short").is_err());

        let public = signer.public_key().to_string();
        assert!(public.starts_with("ed25519:"), "{public}");
        assert_eq!(
            DefinitionPublicKey::parse(&public).unwrap(),
            signer.public_key()
        );
        let both = format!("{public}, {}", raw.public_key());
        assert_eq!(DefinitionPublicKey::parse_list(&both).unwrap().len(), 2);
        assert!(DefinitionPublicKey::parse("ed25519:nope").is_err());
        assert!(DefinitionPublicKey::parse_list(" , ").is_err());
        // Debug never shows the secret.
        let debug = format!("{signer:?}");
        assert!(!debug.contains(signer.secret_base64().as_str()), "{debug}");
    }
}
