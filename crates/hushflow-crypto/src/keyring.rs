//! The local keyring: named, versioned 32-byte keys made here from the OS RNG, and the state
//! directory's age identity (for files at rest), kept in `state_dir/keyring.json` (mode 0600),
//! sealed under a master key when one is given. Keys are never replaced or exported in bulk: a
//! pepper that changes silently would make every pseudonym made with it unlinkable to the old
//! ones. Rotation adds a version and makes it current; old versions still decrypt.
//!
//! Changes are made under an exclusive lock on `keyring.lock`, on the file as it is on disk at
//! that moment, so processes that create or rotate keys at once do not lose each other's work.
//! A change is written to a temporary file, then renamed into place; a caller-given `intent`
//! step runs in between (the CLI writes its audit record there), so a key never exists without
//! its record. Temporary files that a killed writer left behind are removed, under the lock, by
//! the next open or change.
//!
//! Under a master key the file must be sealed. A sealed keyring stays sealed: nothing here
//! writes it plain, and a plain file found where a master key is given is refused rather than
//! sealed, since it may have been swapped in; [`Keyring::seal`] seals a plain one on purpose.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hushflow_secrets::{KeyProvider, SecretError, SecretValue, is_valid_key_name};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::store::{self, Contents, Entry, KEY_LEN};
use crate::{KeyringError, StateIdentity};

/// What a key is for. Rotating a hashing key changes every hash made with it, so it takes an
/// explicit acknowledgement; a key of unknown purpose is treated as a hashing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// A key for keyed hashes (pseudonyms, match keys).
    Hash,
    /// A key for reversible tokens.
    Tokenize,
    /// Not a key: a secret given to hushflow (an OAuth refresh token, a password), kept here
    /// so that it is sealed with the keys and can be replaced when its issuer rotates it. Only
    /// the current version is kept; it is never used as a hashing or tokenizing key.
    Credential,
}

/// What may be shown about a key version: everything but its material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The key's name, as `keyring:` references write it.
    pub name: String,
    /// 1 for the key as created, one more for each rotation; the highest is current.
    pub version: u32,
    /// 16 lowercase hex characters, random: tells keys and versions apart (tokens carry it)
    /// without revealing anything about the material.
    pub id: String,
    /// What the key was created for; `None` when it was created without one, and is then
    /// treated as a hashing key.
    pub purpose: Option<Purpose>,
    /// When this version was made.
    pub created_at: jiff::Timestamp,
}

/// The key that seals the keyring file: base64 of at least 32 random bytes, from a secret
/// reference (`env:HUSHFLOW_MASTER_KEY` by default).
pub struct MasterKey(SecretValue);

impl MasterKey {
    /// Decodes base64 (standard alphabet, padding optional) of at least 32 bytes.
    pub fn from_base64(text: &SecretValue) -> Result<MasterKey, KeyringError> {
        let text = std::str::from_utf8(text.expose()).map_err(|_| KeyringError::BadMasterKey)?;
        let text = text.trim();
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
                .map_err(|_| KeyringError::BadMasterKey)?,
        );
        if decoded.len() < KEY_LEN {
            return Err(KeyringError::BadMasterKey);
        }
        Ok(MasterKey(SecretValue::new(decoded.to_vec())))
    }

    /// A new master key, base64, for `hushflow keys new-master-key`.
    pub fn generate_base64() -> Result<SecretValue, KeyringError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(&mut *bytes).map_err(KeyringError::Random)?;
        Ok(SecretValue::new(
            base64::engine::general_purpose::STANDARD
                .encode(*bytes)
                .into_bytes(),
        ))
    }

    pub(crate) fn expose(&self) -> &[u8] {
        self.0.expose()
    }

    /// A 32-byte key for another purpose than sealing the keyring, derived with HKDF-SHA256
    /// (no salt, `info` naming the purpose): the audit log's head anchor uses one. Different
    /// `info`s give independent keys, and none of them reveals the master key.
    pub fn derive_key(&self, info: &[u8]) -> SecretValue {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        // 32 bytes are far below HKDF-SHA256's limit (8160): this cannot fail.
        let _ = hkdf::Hkdf::<sha2::Sha256>::new(None, self.expose()).expand(info, key.as_mut());
        SecretValue::new(key.to_vec())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

/// The keyring of one state directory.
pub struct Keyring {
    path: PathBuf,
    master: Option<MasterKey>,
    contents: Contents,
}

impl Keyring {
    /// The file name inside the state directory.
    pub const FILE_NAME: &'static str = "keyring.json";
    const LOCK_NAME: &'static str = "keyring.lock";

    /// Opens `state_dir/keyring.json` without a master key; a missing file is an empty keyring,
    /// created on the first change. A sealed keyring needs [`Keyring::open_with`].
    pub fn open(state_dir: &Path) -> Result<Keyring, KeyringError> {
        Keyring::open_with(state_dir, None)
    }

    /// Opens the keyring, unsealing it with `master`. With `master` given, the file must be
    /// sealed: a plain keyring is refused ([`KeyringError::Unsealed`]) and left as it is, since
    /// a plain file where a sealed one belongs may have been swapped in, material and all; a
    /// keyring that was never sealed is sealed once, on purpose, by [`Keyring::seal`]. A
    /// missing file is an empty keyring, sealed from its first change. A file that group or
    /// others can access is refused: its keys must be treated as leaked, or the mode fixed
    /// first. Temporary files that a killed writer left beside the keyring are removed.
    pub fn open_with(state_dir: &Path, master: Option<MasterKey>) -> Result<Keyring, KeyringError> {
        let path = state_dir.join(Self::FILE_NAME);
        let dir = store::keyring_dir(&path);
        if !store::leftovers(dir)?.is_empty() {
            // Not while a writer holds the lock: its own temporary file is no leftover, and a
            // reader does not wait for it. The next open removes what is left then.
            if let Some(lock) = try_lock(dir)? {
                store::remove_leftovers(dir)?;
                drop(lock);
            }
        }
        let loaded = store::load(&path, master.as_ref())?;
        refuse_unsealed(&path, master.as_ref(), &loaded)?;
        Ok(Keyring {
            path,
            master,
            contents: loaded.contents,
        })
    }

    /// Seals the plain keyring of `state_dir` under `master`, once: from then on it opens only
    /// with `master`. A keyring sealed already is left as it is ([`Sealing::AlreadySealed`],
    /// after checking that `master` opens it); a missing file is an error.
    pub fn seal(state_dir: &Path, master: MasterKey) -> Result<(Keyring, Sealing), KeyringError> {
        Keyring::seal_with_intent(state_dir, master, || Ok::<(), KeyringError>(()))
    }

    /// [`Keyring::seal`], calling `intent` once the sealed file is written but before it
    /// replaces the plain one (to record the change first); an error from `intent` leaves the
    /// plain keyring in place.
    pub fn seal_with_intent<E: From<KeyringError>>(
        state_dir: &Path,
        master: MasterKey,
        intent: impl FnOnce() -> Result<(), E>,
    ) -> Result<(Keyring, Sealing), E> {
        let path = state_dir.join(Self::FILE_NAME);
        let lock = lock(store::keyring_dir(&path))?;
        store::remove_leftovers(store::keyring_dir(&path))?;
        let loaded = store::load(&path, Some(&master))?;
        if !loaded.exists {
            return Err(KeyringError::NothingToSeal { path }.into());
        }
        let sealing = if loaded.sealed {
            Sealing::AlreadySealed
        } else {
            let staged = store::stage(&path, &loaded.contents, Some(&master))?;
            intent()?;
            staged.commit()?;
            Sealing::Sealed
        };
        drop(lock);
        let keyring = Keyring {
            path,
            master: Some(master),
            contents: loaded.contents,
        };
        Ok((keyring, sealing))
    }

    /// Removes the temporary files (`.keyring.json.*.tmp`) that writers killed before renaming
    /// them into place left in `state_dir`; for an unsealed keyring they hold its material.
    /// Takes the keyring lock, so a live writer's file is never touched. Returns how many.
    pub fn remove_leftovers(state_dir: &Path) -> Result<usize, KeyringError> {
        let lock = lock(state_dir)?;
        let removed = store::remove_leftovers(state_dir)?;
        drop(lock);
        Ok(removed)
    }

    /// Where the keyring lives (or will, before the first key is created).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file is sealed under a master key (else it is a local, unprotected keyring).
    pub fn is_sealed(&self) -> bool {
        self.master.is_some()
    }

    /// Applies `change` to the keyring as it is on disk now, under the lock, and saves it:
    /// `before_commit` sees the change's value once the new file is written, before it
    /// replaces the old one; its error leaves the old file in place. Memory follows disk: a
    /// change that was not saved is forgotten.
    fn update<T, E: From<KeyringError>>(
        &mut self,
        change: impl FnOnce(&mut Contents) -> Result<T, KeyringError>,
        before_commit: impl FnOnce(&T) -> Result<(), E>,
    ) -> Result<T, E> {
        let dir = store::keyring_dir(&self.path);
        let lock = lock(dir)?;
        store::remove_leftovers(dir)?;
        let loaded = store::load(&self.path, self.master.as_ref())?;
        // Checked again: the file may have been replaced since it was opened.
        refuse_unsealed(&self.path, self.master.as_ref(), &loaded)?;
        let mut contents = loaded.contents;
        let value = change(&mut contents)?;
        let staged = store::stage(&self.path, &contents, self.master.as_ref())?;
        before_commit(&value)?;
        staged.commit()?;
        self.contents = contents;
        // Unlocked when `lock` is closed.
        drop(lock);
        Ok(value)
    }

    /// Creates key `name` with 32 bytes from the OS RNG and saves the keyring before returning.
    /// Names are `[a-z0-9][a-z0-9._-]{0,63}`; an existing name is an error, never a replacement.
    pub fn create(&mut self, name: &str) -> Result<KeyInfo, KeyringError> {
        self.create_for(name, None)
    }

    /// [`Keyring::create`] with the key's purpose recorded.
    pub fn create_for(
        &mut self,
        name: &str,
        purpose: Option<Purpose>,
    ) -> Result<KeyInfo, KeyringError> {
        self.create_with_intent(name, purpose, no_intent)
    }

    /// [`Keyring::create_for`], calling `intent` with the new key's description after the new
    /// keyring is written but before it replaces the old one, so that what `intent` records
    /// (an audit record) exists before the key does. An error from `intent` creates nothing.
    pub fn create_with_intent<E: From<KeyringError>>(
        &mut self,
        name: &str,
        purpose: Option<Purpose>,
        intent: impl FnOnce(&KeyInfo) -> Result<(), E>,
    ) -> Result<KeyInfo, E> {
        if !is_valid_key_name(name) {
            return Err(KeyringError::BadName {
                name: name.to_owned(),
            }
            .into());
        }
        self.update(
            |contents| {
                if contents.keys.contains_key(name) {
                    return Err(KeyringError::Exists {
                        name: name.to_owned(),
                    });
                }
                let entry = new_entry(name, 1, purpose)?;
                let info = entry.info.clone();
                contents.keys.insert(name.to_owned(), vec![entry]);
                Ok(info)
            },
            intent,
        )
    }

    /// Adds a new version of key `name` and makes it current. Old versions stay: tokens made
    /// with them still detokenize. A hashing key (or one of unknown purpose) rotates only with
    /// `hashes_may_change`, since every hash made with the new version differs.
    pub fn rotate(&mut self, name: &str, hashes_may_change: bool) -> Result<KeyInfo, KeyringError> {
        self.rotate_with_intent(name, hashes_may_change, no_intent)
    }

    /// [`Keyring::rotate`], calling `intent` with the new version's description before it is
    /// committed, as [`Keyring::create_with_intent`] does.
    pub fn rotate_with_intent<E: From<KeyringError>>(
        &mut self,
        name: &str,
        hashes_may_change: bool,
        intent: impl FnOnce(&KeyInfo) -> Result<(), E>,
    ) -> Result<KeyInfo, E> {
        let path = self.path.clone();
        self.update(
            |contents| {
                let versions =
                    contents
                        .keys
                        .get_mut(name)
                        .ok_or_else(|| KeyringError::NotFound {
                            name: name.to_owned(),
                            path,
                        })?;
                let current = versions.last().map(|e| (e.info.version, e.info.purpose));
                let (version, purpose) = current.unwrap_or((0, None));
                if purpose == Some(Purpose::Credential) {
                    return Err(KeyringError::WrongKind {
                        name: name.to_owned(),
                        what: "a credential",
                        hint: "replace it with `hushflow keys import NAME` (the value on stdin)",
                    });
                }
                if purpose != Some(Purpose::Tokenize) && !hashes_may_change {
                    return Err(KeyringError::HashesWouldChange {
                        name: name.to_owned(),
                    });
                }
                let entry = new_entry(name, version.saturating_add(1), purpose)?;
                let info = entry.info.clone();
                versions.push(entry);
                Ok(info)
            },
            intent,
        )
    }

    /// Stores `value` as credential `name`: creates it, or replaces the one there (its version
    /// goes up by one and the old value is dropped: an issuer that rotates a refresh token has
    /// revoked the old one). A key of that name is never replaced. `intent` runs before the
    /// change is committed, as in [`Keyring::create_with_intent`].
    pub fn put_credential_with_intent<E: From<KeyringError>>(
        &mut self,
        name: &str,
        value: &SecretValue,
        intent: impl FnOnce(&KeyInfo) -> Result<(), E>,
    ) -> Result<KeyInfo, E> {
        if !is_valid_key_name(name) {
            return Err(KeyringError::BadName {
                name: name.to_owned(),
            }
            .into());
        }
        let bytes = value.expose();
        if bytes.is_empty() || bytes.len() > store::MAX_CREDENTIAL_LEN {
            return Err(KeyringError::BadCredential {
                name: name.to_owned(),
                max: store::MAX_CREDENTIAL_LEN,
            }
            .into());
        }
        self.update(
            |contents| {
                let versions = contents.keys.entry(name.to_owned()).or_default();
                let current = versions.last().map(|e| (e.info.version, e.info.purpose));
                if let Some((_, purpose)) = current
                    && purpose != Some(Purpose::Credential)
                {
                    return Err(KeyringError::WrongKind {
                        name: name.to_owned(),
                        what: "a key",
                        hint: "keys are made here and rotated, never replaced; import the \
                               credential under another name",
                    });
                }
                let version = current.map_or(1, |(v, _)| v.saturating_add(1));
                let mut entry = new_entry(name, version, Some(Purpose::Credential))?;
                entry.material = SecretValue::new(bytes.to_vec());
                let info = entry.info.clone();
                *versions = vec![entry];
                Ok(info)
            },
            intent,
        )
    }

    /// The state directory's age identity, made (and saved) the first time it is asked for.
    pub fn state_identity(&mut self) -> Result<&StateIdentity, KeyringError> {
        if self.contents.identity.is_none() {
            self.update(
                |contents| {
                    if contents.identity.is_none() {
                        contents.identity = Some(StateIdentity::generate());
                    }
                    Ok(())
                },
                no_intent,
            )?;
        }
        self.contents
            .identity
            .as_ref()
            .ok_or(KeyringError::SealFailed)
    }

    /// The state identity if one was made (nothing was ever encrypted at rest otherwise).
    pub fn existing_identity(&self) -> Option<&StateIdentity> {
        self.contents.identity.as_ref()
    }

    /// Every key version's description, by name then version.
    pub fn list(&self) -> Vec<KeyInfo> {
        self.contents
            .keys
            .values()
            .flatten()
            .map(|e| e.info.clone())
            .collect()
    }

    /// Whether the keyring holds a key named `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.contents.keys.contains_key(name)
    }

    /// How many names (not versions) the keyring holds.
    pub fn len(&self) -> usize {
        self.contents.keys.len()
    }

    /// Whether the keyring holds no keys.
    pub fn is_empty(&self) -> bool {
        self.contents.keys.is_empty()
    }

    /// The current version of key `name`, with a copy of its material.
    pub fn get(&self, name: &str) -> Result<(KeyInfo, SecretValue), KeyringError> {
        match self.contents.keys.get(name).and_then(|v| v.last()) {
            Some(e) => Ok(copy(e)),
            None => Err(KeyringError::NotFound {
                name: name.to_owned(),
                path: self.path.clone(),
            }),
        }
    }

    /// Every version of key `name`, oldest first.
    pub fn versions(&self, name: &str) -> Result<Vec<(KeyInfo, SecretValue)>, KeyringError> {
        match self.contents.keys.get(name) {
            Some(v) => Ok(v.iter().map(copy).collect()),
            None => Err(KeyringError::NotFound {
                name: name.to_owned(),
                path: self.path.clone(),
            }),
        }
    }
}

fn copy(e: &Entry) -> (KeyInfo, SecretValue) {
    (
        e.info.clone(),
        SecretValue::new(e.material.expose().to_vec()),
    )
}

fn new_entry(name: &str, version: u32, purpose: Option<Purpose>) -> Result<Entry, KeyringError> {
    let mut material = Zeroizing::new(vec![0u8; KEY_LEN]);
    getrandom::fill(&mut material).map_err(KeyringError::Random)?;
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(KeyringError::Random)?;
    Ok(Entry {
        info: KeyInfo {
            name: name.to_owned(),
            version,
            id: hex::encode(id),
            purpose,
            created_at: jiff::Timestamp::now(),
        },
        material: SecretValue::new(std::mem::take(&mut *material)),
    })
}

/// What [`Keyring::seal`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing {
    /// The plain keyring is sealed now.
    Sealed,
    /// The keyring was sealed already (under the same master key); nothing changed.
    AlreadySealed,
}

fn no_intent<T>(_: &T) -> Result<(), KeyringError> {
    Ok(())
}

/// Under a master key only a sealed file (or none) is a keyring.
fn refuse_unsealed(
    path: &Path,
    master: Option<&MasterKey>,
    loaded: &store::Loaded,
) -> Result<(), KeyringError> {
    if master.is_some() && loaded.exists && !loaded.sealed {
        return Err(KeyringError::Unsealed {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// Takes the exclusive lock on `dir/keyring.lock`; released when the file is closed.
fn lock(dir: &Path) -> Result<File, KeyringError> {
    let lock_path = dir.join(Keyring::LOCK_NAME);
    let lock = open_lock(&lock_path)?;
    lock.lock().map_err(|source| KeyringError::Io {
        path: lock_path,
        action: "lock the keyring",
        source,
    })?;
    Ok(lock)
}

/// [`lock`] unless another process (or handle) holds it now.
fn try_lock(dir: &Path) -> Result<Option<File>, KeyringError> {
    let lock_path = dir.join(Keyring::LOCK_NAME);
    let lock = open_lock(&lock_path)?;
    match lock.try_lock() {
        Ok(()) => Ok(Some(lock)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(source)) => Err(KeyringError::Io {
            path: lock_path,
            action: "lock the keyring",
            source,
        }),
    }
}

fn open_lock(path: &Path) -> Result<File, KeyringError> {
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|source| KeyringError::Io {
        path: path.to_owned(),
        action: "open the keyring lock",
        source,
    })
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
