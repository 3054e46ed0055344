//! Errors. Every message names the reference (env var, file path, key name), which is
//! configuration, and never the secret value, because these messages end up in logs and on
//! terminals that get screenshotted. Where the user can fix the problem, the message says how.

use std::path::PathBuf;

/// The ways a reference can fail to parse or resolve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The text has no `scheme:` prefix. The text itself is not repeated: people paste the
    /// secret where the reference belongs, and this error would then print it.
    #[error(
        "not a secret reference (the value is not shown, in case it is the secret itself); \
         write env:NAME, file:PATH or keyring:NAME instead"
    )]
    NotAReference,

    /// A `scheme:` prefix that no provider is registered for. `known` lists the registered
    /// schemes as they are written ("env:NAME, file:PATH and keyring:NAME").
    #[error("unknown secret reference scheme `{scheme}:`; the schemes are {known}")]
    UnknownScheme { scheme: String, known: String },

    /// A registered scheme with nothing after the colon.
    #[error("`{scheme}:` needs a name after the colon, as in {example}")]
    EmptyName {
        scheme: &'static str,
        example: &'static str,
    },

    /// `env:` names that the OS cannot look up. The name is not shown: `env:TOKEN=s3cr3t`
    /// is a likely mistake and the part after `=` would be the secret.
    #[error(
        "an env: reference names a variable containing `=` or a NUL byte; write env:NAME and \
         set NAME in the environment"
    )]
    BadEnvName,

    /// A `keyring:` name outside the key-name alphabet.
    #[error(
        "keyring:{name}: key names are 1 to 64 characters from a-z, 0-9, `.`, `_` and `-`, \
         starting with a letter or digit"
    )]
    BadKeyName { name: String },

    #[error(
        "environment variable {name} is not set; set {name} or change the reference env:{name}"
    )]
    EnvMissing { name: String },

    #[error(
        "environment variable {name} is not valid UTF-8; set {name} to text (encode binary \
         secrets as hex or base64) or use a file: reference"
    )]
    EnvNotUnicode { name: String },

    #[error("cannot {action} secret file {path}: {source}; check the reference file:{path}")]
    FileRead {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// The file grants some permission to group or others. Refused even when only "write" is
    /// granted, because then someone else could plant a secret of their choosing.
    #[error(
        "secret file {path} is accessible by group or others (mode {mode:04o}); \
         run `chmod 600 {path}` and try again"
    )]
    FilePermissions { path: PathBuf, mode: u32 },

    #[error(
        "secret file {path} is larger than {limit} bytes, which is too large for a secret; \
         check that file:{path} points at the secret itself"
    )]
    FileTooLarge { path: PathBuf, limit: u64 },

    #[error("secret {reference} is empty; put the secret in it or change the reference")]
    Empty { reference: String },

    #[error(
        "keyring:{name}: keyring references need a state directory; give the pipeline one, \
         or use an env: or file: reference instead"
    )]
    NoKeyring { name: String },

    /// An error from the keyring behind a [`crate::KeyProvider`]; its message names the key only.
    #[error("keyring:{name}: {source}")]
    KeyProvider {
        name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// An error from a provider outside this crate (`vault:`, say), about the reference
    /// `scheme:name`: a name it refuses, or a secret it cannot fetch. `source` must not hold a
    /// secret value, and when the name is refused it should not repeat the name either (leave
    /// `name` empty).
    #[error("{scheme}:{name}: {source}")]
    Provider {
        scheme: &'static str,
        name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    #[error(
        "the secret is not valid UTF-8 but this setting needs text; store it as text \
         (hex or base64 for binary secrets)"
    )]
    NotUtf8,
}
