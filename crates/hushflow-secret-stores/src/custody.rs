//! Key custody: a data key kept only wrapped (encrypted) by a key that never leaves Vault
//! Transit or AWS KMS, so that no master key sits on disk or in the environment.
//!
//! A custodian is named by a spec, `vault-transit:KEYNAME` or `aws-kms:KEY_ID` (a key id, ARN or
//! alias). [`Custodian::wrap`] encrypts a data key under it, [`Custodian::unwrap`] decrypts it,
//! and [`Custodian::rewrap`] re-encrypts a wrapped key under the wrapping key's newest version
//! (Transit `rewrap`, KMS `ReEncrypt`) without the data key leaving the store: after the wrapping
//! key is rotated, the wrapped data key is brought forward and whatever the data key encrypts is
//! not touched.
//!
//! Vault Transit's mount is `transit` unless `HUSHFLOW_VAULT_TRANSIT_MOUNT` says otherwise; the
//! Vault and AWS settings are those of the `vault:` and `aws-sm:` providers.

use base64::Engine as _;
use hushflow_secrets::SecretValue;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::{Reason, StoreError, Stores, wipe_json};

/// Who holds the wrapping key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Custodian {
    /// A Vault (or OpenBao) Transit key, by name.
    VaultTransit {
        /// The Transit key's name.
        key: String,
    },
    /// An AWS KMS key: its id, ARN or `alias/NAME`.
    AwsKms {
        /// The KMS key.
        key_id: String,
    },
}

impl std::fmt::Display for Custodian {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Custodian::VaultTransit { key } => write!(f, "vault-transit:{key}"),
            Custodian::AwsKms { key_id } => write!(f, "aws-kms:{key_id}"),
        }
    }
}

impl Custodian {
    /// The custodian `text` names, `None` when `text` is not a custody spec at all (a base64
    /// master key, say), or an error naming what is wrong with the spec.
    pub fn parse(text: &str) -> Option<Result<Custodian, StoreError>> {
        let text = text.trim();
        let ok_name = |s: &str, extra: &str| {
            !s.is_empty()
                && s.len() <= 2048
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c) || extra.contains(c))
        };
        if let Some(key) = text.strip_prefix("vault-transit:") {
            return Some(if ok_name(key, "") {
                Ok(Custodian::VaultTransit {
                    key: key.to_string(),
                })
            } else {
                Err(StoreError::new(
                    Reason::BadReference,
                    "write vault-transit:KEYNAME (letters, digits, `-`, `_` and `.`)",
                ))
            });
        }
        if let Some(key_id) = text.strip_prefix("aws-kms:") {
            return Some(if ok_name(key_id, ":/") {
                Ok(Custodian::AwsKms {
                    key_id: key_id.to_string(),
                })
            } else {
                Err(StoreError::new(
                    Reason::BadReference,
                    "write aws-kms:KEY_ID (a key id, key ARN or alias/NAME)",
                ))
            });
        }
        None
    }

    /// `data_key` encrypted under the wrapping key, as text to store.
    pub fn wrap(&self, stores: &Stores, data_key: &[u8]) -> Result<String, StoreError> {
        self.wrap_in(stores, data_key).map_err(|e| self.named(e))
    }

    fn wrap_in(&self, stores: &Stores, data_key: &[u8]) -> Result<String, StoreError> {
        let plaintext = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(data_key));
        match self {
            Custodian::VaultTransit { key } => {
                let mut data =
                    vault_post(stores, "encrypt", key, json!({ "plaintext": *plaintext }))?;
                take_text(&mut data, "ciphertext", "Transit encrypt")
            }
            Custodian::AwsKms { key_id } => {
                let mut answer = kms(stores).call(
                    "Encrypt",
                    None,
                    &json!({ "KeyId": key_id, "Plaintext": *plaintext }),
                )?;
                take_text(&mut answer, "CiphertextBlob", "KMS Encrypt")
            }
        }
    }

    /// The data key inside `wrapped`. A wrapped key from another wrapping key is refused by the
    /// store (reported as permission denied or a bad ciphertext).
    pub fn unwrap(&self, stores: &Stores, wrapped: &str) -> Result<SecretValue, StoreError> {
        self.unwrap_in(stores, wrapped).map_err(|e| self.named(e))
    }

    fn unwrap_in(&self, stores: &Stores, wrapped: &str) -> Result<SecretValue, StoreError> {
        let mut answer = match self {
            Custodian::VaultTransit { key } => {
                vault_post(stores, "decrypt", key, json!({ "ciphertext": wrapped }))?
            }
            Custodian::AwsKms { key_id } => kms(stores).call(
                "Decrypt",
                None,
                &json!({ "KeyId": key_id, "CiphertextBlob": wrapped }),
            )?,
        };
        let field = match self {
            Custodian::VaultTransit { .. } => "plaintext",
            Custodian::AwsKms { .. } => "Plaintext",
        };
        let decoded = answer[field]
            .as_str()
            .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok());
        wipe_json(&mut answer);
        decoded.map(SecretValue::new).ok_or_else(|| {
            StoreError::new(
                Reason::BadResponse,
                format!("{self} answered without a data key"),
            )
        })
    }

    /// `wrapped` re-encrypted under the wrapping key's newest version, without the data key
    /// leaving the store.
    pub fn rewrap(&self, stores: &Stores, wrapped: &str) -> Result<String, StoreError> {
        self.rewrap_in(stores, wrapped).map_err(|e| self.named(e))
    }

    /// `e` with this custodian named in front of its sentence (once).
    fn named(&self, e: StoreError) -> StoreError {
        let name = self.to_string();
        if e.detail().contains(&name) {
            return e;
        }
        StoreError::new(e.reason, format!("{name}: {}", e.detail()))
    }

    fn rewrap_in(&self, stores: &Stores, wrapped: &str) -> Result<String, StoreError> {
        match self {
            Custodian::VaultTransit { key } => {
                let mut data = vault_post(stores, "rewrap", key, json!({ "ciphertext": wrapped }))?;
                take_text(&mut data, "ciphertext", "Transit rewrap")
            }
            Custodian::AwsKms { key_id } => {
                let mut answer = kms(stores).call(
                    "ReEncrypt",
                    None,
                    &json!({ "CiphertextBlob": wrapped, "DestinationKeyId": key_id }),
                )?;
                take_text(&mut answer, "CiphertextBlob", "KMS ReEncrypt")
            }
        }
    }
}

/// The length of a data key made by [`open_or_create`], in bytes.
pub const DATA_KEY_LEN: usize = 32;

/// The data key wrapped in the file at `path` (JSON: the custodian and the wrapped key),
/// unwrapped by `custodian`; when the file does not exist, a new random data key, wrapped and
/// written there first (owner-only, never replacing a file). A file wrapped by another
/// custodian is refused: unwrapping it would fail anyway, and the message says which it names.
pub fn open_or_create(
    custodian: &Custodian,
    stores: &Stores,
    path: &std::path::Path,
) -> Result<SecretValue, StoreError> {
    match read_file(path)? {
        Some((named, wrapped)) => {
            check_same(custodian, &named, path)?;
            custodian.unwrap(stores, &wrapped)
        }
        None => {
            let mut key = Zeroizing::new([0u8; DATA_KEY_LEN]);
            getrandom::fill(&mut *key).map_err(|_| {
                StoreError::new(Reason::NotConfigured, "the system's random source failed")
            })?;
            let wrapped = custodian.wrap(stores, &*key)?;
            write_file(path, custodian, &wrapped, false)?;
            Ok(SecretValue::new(key.to_vec()))
        }
    }
}

/// Re-encrypts the wrapped data key in the file at `path` under the wrapping key's newest
/// version ([`Custodian::rewrap`]) and replaces the file; the data key itself, and so all it
/// encrypts, stays the same.
pub fn rewrap_file(
    custodian: &Custodian,
    stores: &Stores,
    path: &std::path::Path,
) -> Result<(), StoreError> {
    let (named, wrapped) = read_file(path)?.ok_or_else(|| {
        StoreError::new(
            Reason::NotFound,
            format!("no wrapped data key at {}", path.display()),
        )
    })?;
    check_same(custodian, &named, path)?;
    let rewrapped = custodian.rewrap(stores, &wrapped)?;
    write_file(path, custodian, &rewrapped, true)
}

fn check_same(
    custodian: &Custodian,
    named: &str,
    path: &std::path::Path,
) -> Result<(), StoreError> {
    if named == custodian.to_string() {
        return Ok(());
    }
    Err(StoreError::new(
        Reason::PermissionDenied,
        // The configured custodian is not named: it is the value of the master-key secret,
        // which the redactor masks anyway.
        format!(
            "the data key in {} is wrapped by {named}, and the master key names another \
             custodian",
            path.display()
        ),
    ))
}

fn read_file(path: &std::path::Path) -> Result<Option<(String, String)>, StoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StoreError::new(
                Reason::NotConfigured,
                format!("cannot read {}: {e}", path.display()),
            ));
        }
    };
    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    match (json["custodian"].as_str(), json["wrapped"].as_str()) {
        (Some(c), Some(w)) if !w.is_empty() => Ok(Some((c.to_string(), w.to_string()))),
        _ => Err(StoreError::new(
            Reason::BadResponse,
            format!("{} is not a wrapped data key file", path.display()),
        )),
    }
}

/// Writes the file through a temporary file renamed into place, owner-only; `replace` says
/// whether an existing file may be replaced (a rewrap) or not (a first creation).
fn write_file(
    path: &std::path::Path,
    custodian: &Custodian,
    wrapped: &str,
    replace: bool,
) -> Result<(), StoreError> {
    use std::io::Write as _;
    let io = |action: &str, e: std::io::Error| {
        StoreError::new(
            Reason::NotConfigured,
            format!("cannot {action} {}: {e}", path.display()),
        )
    };
    let text = json!({ "custodian": custodian.to_string(), "wrapped": wrapped }).to_string();
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("wrapped-key"),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&tmp)
        .map_err(|e| io("create a temporary file for", e))?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all());
    drop(file);
    let placed = written.and_then(|()| {
        if replace {
            std::fs::rename(&tmp, path)
        } else {
            // A hard link fails if `path` exists: two first runs cannot both place a key.
            std::fs::hard_link(&tmp, path).and_then(|()| std::fs::remove_file(&tmp))
        }
    });
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("write", e));
    }
    Ok(())
}

fn vault_post(stores: &Stores, op: &str, key: &str, body: Value) -> Result<Value, StoreError> {
    #[cfg(feature = "vault")]
    {
        let mount = stores
            .env()
            .get("HUSHFLOW_VAULT_TRANSIT_MOUNT")
            .unwrap_or_else(|| "transit".to_string());
        let mount = mount.trim_matches('/');
        let mut body = body;
        let answer = stores
            .vault()
            .post_json(&format!("{mount}/{op}/{key}"), &body);
        wipe_json(&mut body);
        answer
    }
    #[cfg(not(feature = "vault"))]
    {
        let _ = (stores, op, key, body);
        Err(StoreError::new(
            Reason::NotConfigured,
            "this build has no Vault support (the `vault` feature)",
        ))
    }
}

#[cfg(feature = "aws")]
fn kms(stores: &Stores) -> crate::aws::AwsClient {
    crate::aws::AwsClient::kms(stores.env().clone())
        .with_web_identity(stores.aws_sm().web_identity())
}

#[cfg(not(feature = "aws"))]
fn kms(_: &Stores) -> NoAws {
    NoAws
}

/// Stands in for the KMS client in a build without the `aws` feature.
#[cfg(not(feature = "aws"))]
struct NoAws;

#[cfg(not(feature = "aws"))]
impl NoAws {
    fn call(&self, _: &str, _: Option<&str>, _: &Value) -> Result<Value, StoreError> {
        Err(StoreError::new(
            Reason::NotConfigured,
            "this build has no AWS support (the `aws` feature)",
        ))
    }
}

fn take_text(answer: &mut Value, field: &str, what: &str) -> Result<String, StoreError> {
    match answer[field].take() {
        Value::String(s) if !s.is_empty() => Ok(s),
        _ => Err(StoreError::new(
            Reason::BadResponse,
            format!("{what} answered without {field}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_others_are_not_specs() {
        assert_eq!(
            Custodian::parse("vault-transit:hushflow").unwrap().unwrap(),
            Custodian::VaultTransit {
                key: "hushflow".into()
            }
        );
        assert_eq!(
            Custodian::parse(" aws-kms:alias/hushflow\n")
                .unwrap()
                .unwrap(),
            Custodian::AwsKms {
                key_id: "alias/hushflow".into()
            }
        );
        assert_eq!(
            Custodian::parse("aws-kms:arn:aws:kms:eu-west-1:1:key/abc")
                .unwrap()
                .unwrap()
                .to_string(),
            "aws-kms:arn:aws:kms:eu-west-1:1:key/abc"
        );
        assert!(Custodian::parse("dGhpcyBpcyBhIGJhc2U2NCBrZXk=").is_none());
        for bad in [
            "vault-transit:",
            "vault-transit:a/b",
            "aws-kms:",
            "aws-kms:a b",
        ] {
            let e = Custodian::parse(bad).unwrap().unwrap_err();
            assert_eq!(e.reason, Reason::BadReference, "{bad}");
        }
    }
}
