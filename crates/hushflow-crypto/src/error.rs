//! Keyring errors. They name the key and the file, never material, and never the text of a JSON
//! parse error: serde_json quotes the offending value ("invalid type: string \"…\""), which in a
//! keyring file would be key material.

use std::path::PathBuf;

/// Why the keyring could not be read, changed or saved, or a key not made or found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// Reading, encoding, writing or locking the keyring failed.
    #[error("{path}: cannot {action}: {source}")]
    Io {
        /// The file (or the state directory) the operation was on.
        path: PathBuf,
        /// What failed, as a phrase for the message ("read the keyring file").
        action: &'static str,
        /// The operating system's error (or the encoder's).
        #[source]
        source: std::io::Error,
    },

    /// The keyring file grants some permission to group or others.
    #[error(
        "keyring file {path} is accessible by group or others (mode {mode:04o}); \
         run `chmod 600 {path}` and try again"
    )]
    Permissions {
        /// The keyring file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// The file is not JSON of the expected shape; only the position is given.
    #[error(
        "keyring file {path} is damaged ({what} at line {line}, column {column}); restore it \
         from a backup, or move it away to start an empty keyring (keys in it are then lost)"
    )]
    Corrupt {
        /// The keyring file.
        path: PathBuf,
        /// What is wrong, in fixed words ("not valid JSON", "unexpected contents").
        what: &'static str,
        /// The line where parsing failed.
        line: usize,
        /// The column where parsing failed.
        column: usize,
    },

    /// The file parsed but one key in it is not valid. `which` is "`name`", or "number N"
    /// when the name itself is invalid and so not worth repeating.
    #[error(
        "keyring file {path} is damaged: key {which} {problem}; restore the file from a backup"
    )]
    BadEntry {
        /// The keyring file.
        path: PathBuf,
        /// Which key: "`name`", or "number N" when the name is itself invalid.
        which: String,
        /// What is wrong with it, in fixed words that name no material.
        problem: &'static str,
    },

    /// The keyring file was written by a newer (or unknown) format version.
    #[error(
        "keyring file {path} has format version {version}, but this hushflow reads only \
         version {supported}; upgrade hushflow"
    )]
    UnsupportedVersion {
        /// The keyring file.
        path: PathBuf,
        /// The format version the file declares.
        version: u64,
        /// The format version this build reads.
        supported: u64,
    },

    /// A key name outside the key-name alphabet.
    #[error(
        "`{name}` is not a valid key name: use 1 to 64 characters from a-z, 0-9, `.`, `_` and \
         `-`, starting with a letter or digit"
    )]
    BadName {
        /// The refused name.
        name: String,
    },

    /// A key to be created has the name of one that exists.
    #[error("a key named `{name}` already exists; pick another name (keys are never replaced)")]
    Exists {
        /// The name already taken.
        name: String,
    },

    /// No key of that name in the keyring.
    #[error("no key named `{name}` in {path}; create it first, or correct the name")]
    NotFound {
        /// The name asked for.
        name: String,
        /// The keyring file looked in.
        path: PathBuf,
    },

    /// The OS random number generator failed while making a key, a salt or a nonce.
    #[error("the operating system's random number generator failed: {0}; no key was created")]
    Random(getrandom::Error),

    /// The keyring file is sealed and no master key was given.
    #[error(
        "keyring file {path} is encrypted under a master key; set HUSHFLOW_MASTER_KEY (or pass \
         --master-key with a secret reference) and try again"
    )]
    Sealed {
        /// The sealed keyring file.
        path: PathBuf,
    },

    /// The keyring file does not decrypt under the master key given.
    #[error(
        "keyring file {path} does not open with this master key (a different key, or the file \
         was tampered with); use the master key it was sealed with"
    )]
    WrongMasterKey {
        /// The keyring file that did not open.
        path: PathBuf,
    },

    /// A master key was given but the file is plain: refused, never sealed silently, since a
    /// plain file where a sealed one belongs may have been swapped in with chosen material.
    #[error(
        "keyring file {path} is not sealed, but a master key was given: refused, since a \
         sealed keyring may have been replaced by a plain one. If this keyring has never been \
         sealed, seal it once with `hushflow keys seal` (audited); if it was sealed before, it \
         was replaced: restore keyring.json from a backup and do not use these keys"
    )]
    Unsealed {
        /// The plain keyring file.
        path: PathBuf,
    },

    /// Sealing was asked for, but there is no keyring file yet.
    #[error(
        "no keyring file at {path}, so nothing to seal; under a master key the first key created \
         makes a sealed keyring"
    )]
    NothingToSeal {
        /// Where the keyring file would be.
        path: PathBuf,
    },

    /// An internal failure while sealing or saving the keyring, which valid input does not
    /// cause.
    #[error("the keyring could not be sealed")]
    SealFailed,

    /// The master key is not base64 of at least 32 bytes.
    #[error(
        "the master key must be base64 (standard alphabet) of at least 32 random bytes; make \
         one with `hushflow keys new-master-key`"
    )]
    BadMasterKey,

    /// Rotating a hashing key (or one of unknown purpose) without saying that hashes may change.
    #[error(
        "`{name}` is a hashing key (or its purpose is unknown): rotating it changes every hash \
         made with it, so joins with earlier outputs break. Pass --i-understand-hashes-change to \
         rotate it anyway"
    )]
    HashesWouldChange {
        /// The key that was to be rotated.
        name: String,
    },

    /// A credential was to be rotated like a key, or a key replaced like a credential.
    #[error("`{name}` is {what}: {hint}")]
    WrongKind {
        /// The entry's name.
        name: String,
        /// What it is: "a credential" or "a key".
        what: &'static str,
        /// What to do instead.
        hint: &'static str,
    },

    /// A credential given to the keyring is empty or too long.
    #[error("credential `{name}` must hold 1 to {max} bytes")]
    BadCredential {
        /// The credential's name.
        name: String,
        /// The most it may hold.
        max: usize,
    },

    /// A key has no version with the id asked for.
    #[error("key `{name}` has no version with id {id} in {path}")]
    NoSuchVersion {
        /// The key's name.
        name: String,
        /// The version id asked for.
        id: String,
        /// The keyring file looked in.
        path: PathBuf,
    },
}
