//! Keyring errors. They name the key and the file, never material, and never the text of a JSON
//! parse error: serde_json quotes the offending value ("invalid type: string \"…\""), which in a
//! keyring file would be key material.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    #[error("{path}: cannot {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "keyring file {path} is accessible by group or others (mode {mode:04o}); \
         run `chmod 600 {path}` and try again"
    )]
    Permissions { path: PathBuf, mode: u32 },

    /// The file is not JSON of the expected shape; only the position is given.
    #[error(
        "keyring file {path} is damaged ({what} at line {line}, column {column}); restore it \
         from a backup, or move it away to start an empty keyring (keys in it are then lost)"
    )]
    Corrupt {
        path: PathBuf,
        what: &'static str,
        line: usize,
        column: usize,
    },

    /// The file parsed but one key in it is not valid.
    /// The file parsed but one key in it is not valid. `which` is "`name`", or "number N"
    /// when the name itself is invalid and so not worth repeating.
    #[error(
        "keyring file {path} is damaged: key {which} {problem}; restore the file from a backup"
    )]
    BadEntry {
        path: PathBuf,
        which: String,
        problem: &'static str,
    },

    #[error(
        "keyring file {path} has format version {version}, but this hushflow reads only \
         version {supported}; upgrade hushflow"
    )]
    UnsupportedVersion {
        path: PathBuf,
        version: u64,
        supported: u64,
    },

    #[error(
        "`{name}` is not a valid key name: use 1 to 64 characters from a-z, 0-9, `.`, `_` and \
         `-`, starting with a letter or digit"
    )]
    BadName { name: String },

    #[error("a key named `{name}` already exists; pick another name (keys are never replaced)")]
    Exists { name: String },

    #[error("no key named `{name}` in {path}; create it first, or correct the name")]
    NotFound { name: String, path: PathBuf },

    #[error("the operating system's random number generator failed: {0}; no key was created")]
    Random(getrandom::Error),

    #[error(
        "keyring file {path} is encrypted under a master key; set HUSHFLOW_MASTER_KEY (or pass \
         --master-key with a secret reference) and try again"
    )]
    Sealed { path: PathBuf },

    #[error(
        "keyring file {path} does not open with this master key (a different key, or the file \
         was tampered with); use the master key it was sealed with"
    )]
    WrongMasterKey { path: PathBuf },

    /// A master key was given but the file is plain: refused, never sealed silently, since a
    /// plain file where a sealed one belongs may have been swapped in with chosen material.
    #[error(
        "keyring file {path} is not sealed, but a master key was given: refused, since a \
         sealed keyring may have been replaced by a plain one. If this keyring has never been \
         sealed, seal it once with `hushflow keys seal` (audited); if it was sealed before, it \
         was replaced: restore keyring.json from a backup and do not use these keys"
    )]
    Unsealed { path: PathBuf },

    #[error(
        "no keyring file at {path}, so nothing to seal; under a master key the first key created \
         makes a sealed keyring"
    )]
    NothingToSeal { path: PathBuf },

    #[error("the keyring could not be sealed")]
    SealFailed,

    #[error(
        "the master key must be base64 (standard alphabet) of at least 32 random bytes; make \
         one with `hushflow keys new-master-key`"
    )]
    BadMasterKey,

    #[error(
        "`{name}` is a hashing key (or its purpose is unknown): rotating it changes every hash \
         made with it, so joins with earlier outputs break. Pass --i-understand-hashes-change to \
         rotate it anyway"
    )]
    HashesWouldChange { name: String },

    #[error("key `{name}` has no version with id {id} in {path}")]
    NoSuchVersion {
        name: String,
        id: String,
        path: PathBuf,
    },
}
