//! The keyring file: the only code that reads or writes it.
//!
//! Format version 2, JSON:
//! `{"version": 2, "identity": "AGE-SECRET-KEY-1…", "keys": [{"name", "version", "id",
//! "purpose", "created_at", "material": base64 of 32 bytes}]}`; a name appears once per version.
//! A credential (purpose `credential`: a secret given to hushflow, such as an OAuth refresh
//! token) holds 1 to [`MAX_CREDENTIAL_LEN`] bytes of any kind instead of a 32-byte key.
//! Version 1 (no identity, one version per name, no purpose) is still read.
//!
//! Under a master key the same JSON is sealed: `{"version": 2, "sealed": {"kdf": "hkdf-sha256",
//! "cipher": "aes-256-gcm", "salt", "nonce", "ciphertext"}}` (base64), where the AES key is
//! HKDF-SHA256(master key, salt, info "hushflow keyring v2 aes-256-gcm") and the associated data
//! is "hushflow keyring v2". A new salt and nonce are drawn on every save.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hushflow_secrets::{SecretValue, is_valid_key_name};
use serde::{Deserialize, Deserializer, Serialize};
use zeroize::Zeroizing;

use crate::{KeyInfo, KeyringError, MasterKey, Purpose, StateIdentity};

pub(crate) const VERSION: u64 = 2;
pub(crate) const KEY_LEN: usize = 32;
/// The longest credential the keyring holds (an OAuth refresh token is well under 1 KiB).
pub const MAX_CREDENTIAL_LEN: usize = 16 * 1024;
const SEAL_INFO: &[u8] = b"hushflow keyring v2 aes-256-gcm";
const SEAL_AD: &[u8] = b"hushflow keyring v2";

/// A key version as held in memory.
pub(crate) struct Entry {
    pub(crate) info: KeyInfo,
    pub(crate) material: SecretValue,
}

/// Everything the file holds: each name's versions, oldest first, and the state identity.
#[derive(Default)]
pub(crate) struct Contents {
    pub(crate) keys: BTreeMap<String, Vec<Entry>>,
    pub(crate) identity: Option<StateIdentity>,
}

#[derive(Serialize)]
struct FileOut<'a> {
    version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<&'a str>,
    keys: Vec<KeyOut<'a>>,
}

#[derive(Serialize)]
struct KeyOut<'a> {
    name: &'a str,
    version: u32,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    purpose: Option<Purpose>,
    created_at: jiff::Timestamp,
    material: &'a str,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: String,
    cipher: String,
    salt: String,
    nonce: String,
    ciphertext: String,
}

#[derive(Serialize)]
struct SealedFileOut<'a> {
    version: u64,
    sealed: &'a Sealed,
}

#[derive(Deserialize)]
struct Envelope {
    version: u64,
    #[serde(default)]
    sealed: Option<Sealed>,
}

#[derive(Deserialize)]
struct FileIn {
    #[serde(default)]
    identity: Option<Material>,
    #[serde(default)]
    keys: Vec<KeyIn>,
}

#[derive(Deserialize)]
struct KeyIn {
    name: String,
    #[serde(default = "first_version")]
    version: u32,
    id: String,
    #[serde(default)]
    purpose: Option<Purpose>,
    created_at: jiff::Timestamp,
    material: Material,
}

fn first_version() -> u32 {
    1
}

/// Secret text (base64 material, an age identity), wiped when dropped, including when parsing
/// fails part-way.
struct Material(Zeroizing<String>);

impl<'de> Deserialize<'de> for Material {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Material(Zeroizing::new(s)))
    }
}

/// What [`load`] found besides the contents.
pub(crate) struct Loaded {
    pub(crate) contents: Contents,
    /// The file exists and is sealed under a master key.
    pub(crate) sealed: bool,
    /// The file exists.
    pub(crate) exists: bool,
}

/// Reads the keyring at `path`; a missing file is an empty keyring. A sealed file needs
/// `master`; a plain one is read either way: whether a plain file is acceptable is the caller's
/// decision ([`Loaded::sealed`]).
pub(crate) fn load(path: &Path, master: Option<&MasterKey>) -> Result<Loaded, KeyringError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Ok(Loaded {
                contents: Contents::default(),
                sealed: false,
                exists: false,
            });
        }
        Err(e) => return Err(io_err(path, "open the keyring file")(e)),
    };
    // Checked on the open file, so the file that is read is the file that was checked.
    let meta = file
        .metadata()
        .map_err(io_err(path, "inspect the keyring file"))?;
    check_mode(path, &meta)?;
    let expected = usize::try_from(meta.len()).unwrap_or(0);
    let mut bytes = Zeroizing::new(Vec::with_capacity(expected + 1));
    file.read_to_end(&mut bytes)
        .map_err(io_err(path, "read the keyring file"))?;

    let envelope: Envelope = serde_json::from_slice(&bytes).map_err(corrupt(path))?;
    if !(1..=VERSION).contains(&envelope.version) {
        return Err(KeyringError::UnsupportedVersion {
            path: path.to_owned(),
            version: envelope.version,
            supported: VERSION,
        });
    }
    let sealed = envelope.sealed.is_some();
    let plain = match envelope.sealed {
        None => bytes,
        Some(sealed) => {
            let master = master.ok_or_else(|| KeyringError::Sealed {
                path: path.to_owned(),
            })?;
            unseal(path, master, &sealed)?
        }
    };
    let parsed: FileIn = serde_json::from_slice(&plain).map_err(corrupt(path))?;
    let mut contents = Contents::default();
    if let Some(identity) = parsed.identity {
        let identity = StateIdentity::parse(&identity.0).map_err(|_| KeyringError::BadEntry {
            path: path.to_owned(),
            which: "the state identity".into(),
            problem: "is not an age X25519 identity",
        })?;
        contents.identity = Some(identity);
    }
    for (i, k) in parsed.keys.into_iter().enumerate() {
        if !is_valid_key_name(&k.name) {
            return Err(KeyringError::BadEntry {
                path: path.to_owned(),
                which: format!("number {}", i + 1),
                problem: "has an invalid name",
            });
        }
        let bad = |problem| KeyringError::BadEntry {
            path: path.to_owned(),
            which: format!("`{}` version {}", k.name, k.version),
            problem,
        };
        if k.id.len() != 16 || !k.id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("has an id that is not 16 lowercase hex digits"));
        }
        let material = Zeroizing::new(
            STANDARD
                .decode(k.material.0.as_bytes())
                .map_err(|_| bad("has material that is not base64"))?,
        );
        if k.purpose == Some(Purpose::Credential) {
            if material.is_empty() || material.len() > MAX_CREDENTIAL_LEN {
                return Err(bad("is a credential of no bytes or too many"));
            }
        } else if material.len() != KEY_LEN {
            return Err(bad("has material that is not 32 bytes long"));
        }
        let versions = contents.keys.entry(k.name.clone()).or_default();
        // Versions are stored in order, each one more than the last.
        let expected = versions
            .last()
            .map_or(1, |e| e.info.version.saturating_add(1));
        // A credential keeps only its current version, which may be any.
        let first_credential = versions.is_empty() && k.purpose == Some(Purpose::Credential);
        if k.version != expected && !(first_credential && k.version >= 1) {
            return Err(bad(
                if versions.iter().any(|e| e.info.version == k.version) {
                    "appears twice"
                } else {
                    "is out of order (versions must count up from 1)"
                },
            ));
        }
        let info = KeyInfo {
            name: k.name,
            version: k.version,
            id: k.id,
            purpose: k.purpose,
            created_at: k.created_at,
        };
        versions.push(Entry {
            info,
            material: SecretValue::new(material.to_vec()),
        });
    }
    Ok(Loaded {
        contents,
        sealed,
        exists: true,
    })
}

fn corrupt(path: &Path) -> impl Fn(serde_json::Error) -> KeyringError + '_ {
    move |e| KeyringError::Corrupt {
        path: path.to_owned(),
        what: match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "not valid JSON"
            }
            _ => "unexpected contents",
        },
        line: e.line(),
        column: e.column(),
    }
}

fn seal_key(master: &MasterKey, salt: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), master.expose());
    // 32 bytes is far below HKDF-SHA256's limit of 8160: this cannot fail.
    let _ = hk.expand(SEAL_INFO, &mut *key);
    key
}

fn seal(master: &MasterKey, plain: &[u8]) -> Result<Sealed, KeyringError> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut salt).map_err(KeyringError::Random)?;
    getrandom::fill(&mut nonce).map_err(KeyringError::Random)?;
    let key = seal_key(master, &salt);
    let cipher = Aes256Gcm::new_from_slice(&*key).map_err(|_| KeyringError::SealFailed)?;
    let ciphertext = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plain,
                aad: SEAL_AD,
            },
        )
        .map_err(|_| KeyringError::SealFailed)?;
    Ok(Sealed {
        kdf: "hkdf-sha256".into(),
        cipher: "aes-256-gcm".into(),
        salt: STANDARD.encode(salt),
        nonce: STANDARD.encode(nonce),
        ciphertext: STANDARD.encode(ciphertext),
    })
}

fn unseal(
    path: &Path,
    master: &MasterKey,
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, KeyringError> {
    let damaged = |problem| KeyringError::BadEntry {
        path: path.to_owned(),
        which: "the sealed contents".into(),
        problem,
    };
    if sealed.kdf != "hkdf-sha256" || sealed.cipher != "aes-256-gcm" {
        return Err(damaged("use an unknown cipher"));
    }
    let salt = STANDARD
        .decode(&sealed.salt)
        .map_err(|_| damaged("have a salt that is not base64"))?;
    let nonce: [u8; 12] = STANDARD
        .decode(&sealed.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| damaged("have a nonce that is not 12 bytes of base64"))?;
    let ciphertext = STANDARD
        .decode(&sealed.ciphertext)
        .map_err(|_| damaged("are not base64"))?;
    let key = seal_key(master, &salt);
    let cipher = Aes256Gcm::new_from_slice(&*key).map_err(|_| KeyringError::SealFailed)?;
    cipher
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &ciphertext,
                aad: SEAL_AD,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| KeyringError::WrongMasterKey {
            path: path.to_owned(),
        })
}

/// A new keyring written to a temporary file beside the old one and synced, not yet in place:
/// [`Staged::commit`] renames it over the old file; dropping it removes the temporary file.
pub(crate) struct Staged {
    path: PathBuf,
    dir: PathBuf,
    tmp: tempfile::NamedTempFile,
}

/// The temporary files' names: `.keyring.json.<random>.tmp`, for [`remove_leftovers`].
const TMP_PREFIX: &str = ".keyring.json.";
const TMP_SUFFIX: &str = ".tmp";

/// Writes the new keyring (sealed under `master` when one is given) to a mode-0600 temporary
/// file in the keyring's directory and syncs it; nothing is in place until
/// [`Staged::commit`]. Under a master key the temporary file holds only sealed bytes; without
/// one it holds the plain keyring, as `keyring.json` itself does, and a file left behind by a
/// killed process is removed by [`remove_leftovers`].
pub(crate) fn stage(
    path: &Path,
    contents: &Contents,
    master: Option<&MasterKey>,
) -> Result<Staged, KeyringError> {
    let entries: Vec<&Entry> = contents.keys.values().flatten().collect();
    let encoded: Vec<Zeroizing<String>> = entries
        .iter()
        .map(|e| Zeroizing::new(STANDARD.encode(e.material.expose())))
        .collect();
    let identity = contents.identity.as_ref().map(|i| i.secret());
    let identity_text = identity
        .as_ref()
        .and_then(|i| std::str::from_utf8(i.expose()).ok());
    let file = FileOut {
        version: VERSION,
        identity: identity_text,
        keys: entries
            .iter()
            .zip(&encoded)
            .map(|(e, material)| KeyOut {
                name: &e.info.name,
                version: e.info.version,
                id: &e.info.id,
                purpose: e.info.purpose,
                created_at: e.info.created_at,
                material: material.as_str(),
            })
            .collect(),
    };
    // Sized generously so that the buffer is not reallocated, leaving unwiped copies behind.
    let encode_error = |e: serde_json::Error| KeyringError::Io {
        path: path.to_owned(),
        action: "encode the keyring",
        source: e.into(),
    };
    let mut bytes = Zeroizing::new(Vec::with_capacity(512 + 200 * entries.len()));
    serde_json::to_writer_pretty(&mut *bytes, &file).map_err(encode_error)?;
    if let Some(master) = master {
        let sealed = seal(master, &bytes)?;
        // The plaintext buffer is wiped on drop; the sealed one needs no wiping.
        bytes = Zeroizing::new(
            serde_json::to_vec_pretty(&SealedFileOut {
                version: VERSION,
                sealed: &sealed,
            })
            .map_err(encode_error)?,
        );
    }
    bytes.push(b'\n');

    let dir = keyring_dir(path).to_owned();
    let mut tmp = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .suffix(TMP_SUFFIX)
        .rand_bytes(16)
        .tempfile_in(&dir)
        .map_err(io_err(&dir, "create a temporary keyring file"))?;
    // Created 0600 by `tempfile`; a umask such as 0277 would take the owner's write bit, so the
    // mode is set outright.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io_err(
                tmp.path(),
                "set the mode of the temporary keyring file",
            ))?;
    }
    let file = tmp.as_file_mut();
    file.write_all(&bytes)
        .map_err(io_err(tmp.path(), "write the new keyring"))?;
    tmp.as_file()
        .sync_all()
        .map_err(io_err(tmp.path(), "sync the new keyring to disk"))?;
    Ok(Staged {
        path: path.to_owned(),
        dir,
        tmp,
    })
}

impl Staged {
    /// Renames the new keyring over the old file and syncs the directory so that the rename
    /// survives a crash. Readers see the old keyring or the new one, never a partial file.
    pub(crate) fn commit(self) -> Result<(), KeyringError> {
        let Staged { path, dir, tmp } = self;
        // On failure the temporary file comes back inside the error and is removed on drop.
        tmp.persist(&path)
            .map_err(|e| io_err(&path, "replace the keyring file")(e.error))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&dir, "sync the state directory"))?;
        Ok(())
    }
}

/// The temporary keyring files in `dir` that a killed process left behind.
pub(crate) fn leftovers(dir: &Path) -> Result<Vec<PathBuf>, KeyringError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir, "list the state directory")(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(dir, "list the state directory"))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() > TMP_PREFIX.len() + TMP_SUFFIX.len()
            && name.starts_with(TMP_PREFIX)
            && name.ends_with(TMP_SUFFIX)
        {
            found.push(entry.path());
        }
    }
    Ok(found)
}

/// Removes the temporary keyring files in `dir` that a killed process left behind. The caller
/// holds the keyring lock, so that no live writer's file is among them. Returns how many.
pub(crate) fn remove_leftovers(dir: &Path) -> Result<usize, KeyringError> {
    let found = leftovers(dir)?;
    for path in &found {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(io_err(path, "remove a temporary keyring file left behind")(
                    e,
                ));
            }
        }
    }
    if !found.is_empty() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir, "sync the state directory"))?;
    }
    Ok(found.len())
}

/// The directory the keyring file is in.
pub(crate) fn keyring_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn io_err(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> KeyringError {
    let path = path.to_owned();
    move |source| KeyringError::Io {
        path,
        action,
        source,
    }
}

#[cfg(unix)]
fn check_mode(path: &Path, meta: &fs::Metadata) -> Result<(), KeyringError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyringError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path, _meta: &fs::Metadata) -> Result<(), KeyringError> {
    Ok(())
}
