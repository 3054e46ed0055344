//! The local keyring: named 32-byte keys, made here from the OS RNG, kept in
//! `state_dir/keyring.json` (mode 0600). Keys are never replaced or exported in bulk: a pepper
//! that changes silently would make every pseudonym made with it unlinkable to the old ones.
//!
//! One process at a time should create keys: two creating at once can each write a keyring
//! without the other's new key. The engine serializes runs on the state directory.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use hushflow_secrets::{KeyProvider, SecretError, SecretValue, is_valid_key_name};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::KeyringError;
use crate::store::{self, Entry, KEY_LEN};

/// What may be shown about a key: everything but its material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub name: String,
    /// 16 lowercase hex characters, random: tells keys of the same name apart (after a state
    /// directory is rebuilt, say) without revealing anything about the material.
    pub id: String,
    pub created_at: jiff::Timestamp,
}

/// The keyring of one state directory.
pub struct Keyring {
    path: PathBuf,
    keys: BTreeMap<String, Entry>,
}

impl Keyring {
    /// The file name inside the state directory.
    pub const FILE_NAME: &'static str = "keyring.json";

    /// Opens `state_dir/keyring.json`; a missing file is an empty keyring, created on the first
    /// [`Keyring::create`]. The directory must exist. A file that group or others can access is
    /// refused: its keys must be treated as leaked, or at least the mode fixed first.
    pub fn open(state_dir: &Path) -> Result<Keyring, KeyringError> {
        let path = state_dir.join(Self::FILE_NAME);
        let keys = store::load(&path)?;
        Ok(Keyring { path, keys })
    }

    /// Where the keyring lives (or will, before the first key is created).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates key `name` with 32 bytes from the OS RNG and saves the keyring before returning.
    /// Names are `[a-z0-9][a-z0-9._-]{0,63}`; an existing name is an error, never a replacement.
    pub fn create(&mut self, name: &str) -> Result<KeyInfo, KeyringError> {
        if !is_valid_key_name(name) {
            return Err(KeyringError::BadName {
                name: name.to_owned(),
            });
        }
        if self.keys.contains_key(name) {
            return Err(KeyringError::Exists {
                name: name.to_owned(),
            });
        }
        let mut material = Zeroizing::new(vec![0u8; KEY_LEN]);
        getrandom::fill(&mut material).map_err(KeyringError::Random)?;
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(KeyringError::Random)?;
        let info = KeyInfo {
            name: name.to_owned(),
            id: hex::encode(id),
            created_at: jiff::Timestamp::now(),
        };
        self.keys.insert(
            name.to_owned(),
            Entry {
                info: info.clone(),
                material: SecretValue::new(std::mem::take(&mut *material)),
            },
        );
        // Memory and disk agree afterwards either way: a key that was not saved is forgotten.
        if let Err(e) = store::save(&self.path, &self.keys) {
            self.keys.remove(name);
            return Err(e);
        }
        Ok(info)
    }

    /// Every key's description, sorted by name.
    pub fn list(&self) -> Vec<KeyInfo> {
        self.keys.values().map(|e| e.info.clone()).collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.keys.contains_key(name)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Key `name` with a copy of its material.
    pub fn get(&self, name: &str) -> Result<(KeyInfo, SecretValue), KeyringError> {
        match self.keys.get(name) {
            Some(e) => Ok((
                e.info.clone(),
                SecretValue::new(e.material.expose().to_vec()),
            )),
            None => Err(KeyringError::NotFound {
                name: name.to_owned(),
                path: self.path.clone(),
            }),
        }
    }
}

impl KeyProvider for Keyring {
    fn key_material(&self, name: &str) -> Result<SecretValue, SecretError> {
        self.get(name)
            .map(|(_, material)| material)
            .map_err(|e| SecretError::KeyProvider {
                name: name.to_owned(),
                source: Box::new(e),
            })
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("path", &self.path)
            .field("keys", &self.list())
            .finish()
    }
}
