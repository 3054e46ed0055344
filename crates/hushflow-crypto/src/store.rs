//! The keyring file: the only code that reads or writes it, so that encryption at rest can be
//! added here alone.
//!
//! Format (version 1), JSON:
//! `{"version": 1, "keys": [{"name", "id", "created_at", "material": base64 of 32 bytes}]}`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hushflow_secrets::{SecretValue, is_valid_key_name};
use serde::{Deserialize, Deserializer, Serialize};
use zeroize::Zeroizing;

use crate::{KeyInfo, KeyringError};

pub(crate) const VERSION: u64 = 1;
pub(crate) const KEY_LEN: usize = 32;

/// A key as held in memory.
pub(crate) struct Entry {
    pub(crate) info: KeyInfo,
    pub(crate) material: SecretValue,
}

#[derive(Serialize)]
struct FileOut<'a> {
    version: u64,
    keys: Vec<KeyOut<'a>>,
}

#[derive(Serialize)]
struct KeyOut<'a> {
    name: &'a str,
    id: &'a str,
    created_at: jiff::Timestamp,
    material: &'a str,
}

#[derive(Deserialize)]
struct VersionOnly {
    version: u64,
}

#[derive(Deserialize)]
struct FileIn {
    #[serde(rename = "version")]
    _version: u64,
    keys: Vec<KeyIn>,
}

#[derive(Deserialize)]
struct KeyIn {
    name: String,
    id: String,
    created_at: jiff::Timestamp,
    material: Material,
}

/// Base64 material, wiped when dropped, including when parsing fails part-way.
struct Material(Zeroizing<String>);

impl<'de> Deserialize<'de> for Material {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Material(Zeroizing::new(s)))
    }
}

/// Reads the keyring at `path`; a missing file is an empty keyring.
pub(crate) fn load(path: &Path) -> Result<BTreeMap<String, Entry>, KeyringError> {
    let io = |action: &'static str| {
        move |source| KeyringError::Io {
            path: path.to_owned(),
            action,
            source,
        }
    };
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(io("open the keyring file")(e)),
    };
    // Checked on the open file, so the file that is read is the file that was checked.
    let meta = file.metadata().map_err(io("inspect the keyring file"))?;
    check_mode(path, &meta)?;
    let expected = usize::try_from(meta.len()).unwrap_or(0);
    let mut bytes = Zeroizing::new(Vec::with_capacity(expected + 1));
    file.read_to_end(&mut bytes)
        .map_err(io("read the keyring file"))?;

    let corrupt = |e: serde_json::Error| KeyringError::Corrupt {
        path: path.to_owned(),
        what: match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "not valid JSON"
            }
            _ => "unexpected contents",
        },
        line: e.line(),
        column: e.column(),
    };
    let version: VersionOnly = serde_json::from_slice(&bytes).map_err(corrupt)?;
    if version.version != VERSION {
        return Err(KeyringError::UnsupportedVersion {
            path: path.to_owned(),
            version: version.version,
            supported: VERSION,
        });
    }
    let parsed: FileIn = serde_json::from_slice(&bytes).map_err(corrupt)?;

    let mut keys = BTreeMap::new();
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
            which: format!("`{}`", k.name),
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
        if material.len() != KEY_LEN {
            return Err(bad("has material that is not 32 bytes long"));
        }
        if keys.contains_key(&k.name) {
            return Err(bad("appears twice"));
        }
        let info = KeyInfo {
            name: k.name.clone(),
            id: k.id,
            created_at: k.created_at,
        };
        let material = SecretValue::new(material.to_vec());
        keys.insert(k.name, Entry { info, material });
    }
    Ok(keys)
}

/// Writes the keyring atomically: a mode-0600 temporary file in the same directory, fsynced,
/// renamed over the old file, and the directory fsynced so that the rename survives a crash.
/// Readers see the old keyring or the new one, never a partial file.
pub(crate) fn save(path: &Path, keys: &BTreeMap<String, Entry>) -> Result<(), KeyringError> {
    let encoded: Vec<Zeroizing<String>> = keys
        .values()
        .map(|e| Zeroizing::new(STANDARD.encode(e.material.expose())))
        .collect();
    let file = FileOut {
        version: VERSION,
        keys: keys
            .values()
            .zip(&encoded)
            .map(|(e, material)| KeyOut {
                name: &e.info.name,
                id: &e.info.id,
                created_at: e.info.created_at,
                material: material.as_str(),
            })
            .collect(),
    };
    // Sized generously so that the buffer is not reallocated, leaving unwiped copies behind.
    let mut bytes = Zeroizing::new(Vec::with_capacity(256 + 160 * keys.len()));
    serde_json::to_writer_pretty(&mut *bytes, &file).map_err(|e| KeyringError::Io {
        path: path.to_owned(),
        action: "encode the keyring",
        source: e.into(),
    })?;
    bytes.push(b'\n');

    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let io = |p: &Path, action: &'static str| {
        let p = p.to_owned();
        move |source| KeyringError::Io {
            path: p,
            action,
            source,
        }
    };
    let tmp = TempFile::new(dir)?;
    let mut f = tmp.open()?;
    f.write_all(&bytes)
        .map_err(io(&tmp.path, "write the new keyring"))?;
    f.sync_all()
        .map_err(io(&tmp.path, "sync the new keyring to disk"))?;
    drop(f);
    fs::rename(&tmp.path, path).map_err(io(path, "replace the keyring file"))?;
    tmp.disarm();
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir, "sync the state directory"))?;
    Ok(())
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

/// A temporary file that is removed unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    fn new(dir: &Path) -> Result<TempFile, KeyringError> {
        let mut suffix = [0u8; 8];
        getrandom::fill(&mut suffix).map_err(KeyringError::Random)?;
        Ok(TempFile {
            path: dir.join(format!(".keyring.json.{}.tmp", hex::encode(suffix))),
            armed: true,
        })
    }

    fn open(&self) -> Result<File, KeyringError> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(&self.path)
            .map_err(|source| KeyringError::Io {
                path: self.path.clone(),
                action: "create a temporary keyring file",
                source,
            })?;
        // The umask can only take bits away, but a umask such as 0277 would take the owner's
        // write bit; set the mode outright.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(|source| KeyringError::Io {
                    path: self.path.clone(),
                    action: "set the mode of the temporary keyring file",
                    source,
                })?;
        }
        Ok(file)
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: the file holds key material, but the error that got us here is the
            // one worth reporting.
            let _ = fs::remove_file(&self.path);
        }
    }
}
