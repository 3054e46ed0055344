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
    UnknownScheme {
        /// The prefix as written, without the colon.
        scheme: String,
        /// The registered schemes, as a sentence for the message.
        known: String,
    },

    /// A registered scheme with nothing after the colon.
    #[error("`{scheme}:` needs a name after the colon, as in {example}")]
    EmptyName {
        /// The scheme that was given no name.
        scheme: &'static str,
        /// A whole reference of that scheme, to show what is missing.
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
    BadKeyName {
        /// The refused key name.
        name: String,
    },

    /// An `env:` reference to a variable that is not set.
    #[error(
        "environment variable {name} is not set; set {name} or change the reference env:{name}"
    )]
    EnvMissing {
        /// The environment variable that is not set.
        name: String,
    },

    /// An `env:` reference to a variable whose value is not text.
    #[error(
        "environment variable {name} is not valid UTF-8; set {name} to text (encode binary \
         secrets as hex or base64) or use a file: reference"
    )]
    EnvNotUnicode {
        /// The environment variable whose value is not UTF-8.
        name: String,
    },

    /// A `file:` reference whose file cannot be opened or read.
    #[error("cannot {action} secret file {path}: {source}; check the reference file:{path}")]
    FileRead {
        /// The secret file that could not be read.
        path: PathBuf,
        /// What failed, as a verb for the message ("open", "inspect", "read").
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The file grants some permission to group or others. Refused even when only "write" is
    /// granted, because then someone else could plant a secret of their choosing.
    #[error(
        "secret file {path} is accessible by group or others (mode {mode:04o}); \
         run `chmod 600 {path}` and try again"
    )]
    FilePermissions {
        /// The secret file that others can reach.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// A `file:` reference to a file too large to be a secret: likely the wrong file.
    #[error(
        "secret file {path} is larger than {limit} bytes, which is too large for a secret; \
         check that file:{path} points at the secret itself"
    )]
    FileTooLarge {
        /// The file that is too large.
        path: PathBuf,
        /// The largest secret file accepted, in bytes.
        limit: u64,
    },

    /// A reference that resolved to an empty value, which is never a usable secret.
    #[error("secret {reference} is empty; put the secret in it or change the reference")]
    Empty {
        /// The reference, as written (`env:CRM_TOKEN`).
        reference: String,
    },

    /// A `keyring:` reference where no keyring is available (no state directory).
    #[error(
        "keyring:{name}: keyring references need a state directory; give the pipeline one, \
         or use an env: or file: reference instead"
    )]
    NoKeyring {
        /// The key the reference names.
        name: String,
    },

    /// An error from the keyring behind a [`crate::KeyProvider`]; its message names the key only.
    #[error("keyring:{name}: {source}")]
    KeyProvider {
        /// The key the reference names.
        name: String,
        /// The keyring's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// An error from a provider outside this crate (`vault:`, say), about the reference
    /// `scheme:name`: a name it refuses, or a secret it cannot fetch. `source` must not hold a
    /// secret value, and when the name is refused it should not repeat the name either (leave
    /// `name` empty).
    #[error("{scheme}:{name}: {source}")]
    Provider {
        /// The provider's scheme.
        scheme: &'static str,
        /// The name after the colon, or empty when the provider refused the name itself.
        name: String,
        /// The provider's error, holding no secret value.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// A secret read as text that is not UTF-8.
    #[error(
        "the secret is not valid UTF-8 but this setting needs text; store it as text \
         (hex or base64 for binary secrets)"
    )]
    NotUtf8,
}
