//! Secret references: the strings that stand in for secrets in pipeline files, so that the
//! files themselves can be committed and shared. A reference is not secret; its value is.
//!
//! This module knows the shape of a reference (`scheme:name`) only. Which schemes exist, and
//! what a name may look like in each, is the business of the providers registered in a
//! [`SecretProviders`](crate::SecretProviders).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::{SecretError, SecretProviders};

/// Where a secret lives: a scheme and a name, written `scheme:name`, as in `env:NAME`,
/// `file:PATH` or `keyring:NAME`.
///
/// A `SecretRef` parsed from text always has a registered scheme and a name its provider
/// accepted (see [`SecretProviders::parse`]); the constructors below build references of the
/// built-in schemes in code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretRef {
    scheme: &'static str,
    name: String,
}

impl SecretRef {
    /// Parses a reference of a built-in scheme: `env:NAME`, `file:PATH` or `keyring:NAME`.
    /// Where other schemes may be registered, parse with [`SecretProviders::parse`] instead.
    ///
    /// Errors never repeat the input beyond a short scheme-like prefix, because the input may be
    /// a secret pasted where its reference belongs.
    pub fn parse(s: &str) -> Result<SecretRef, SecretError> {
        SecretProviders::builtin().parse(s)
    }

    /// An environment variable.
    pub fn env(name: impl Into<String>) -> SecretRef {
        SecretRef::from_parts("env", name.into())
    }

    /// A file holding only the secret (one trailing newline is ignored); it must be mode 0600.
    /// References are text, so a path that is not UTF-8 is taken lossily.
    pub fn file(path: impl AsRef<Path>) -> SecretRef {
        SecretRef::from_parts("file", path.as_ref().to_string_lossy().into_owned())
    }

    /// A key in hushflow's local keyring in the state directory.
    pub fn keyring(name: impl Into<String>) -> SecretRef {
        SecretRef::from_parts("keyring", name.into())
    }

    pub(crate) fn from_parts(scheme: &'static str, name: String) -> SecretRef {
        SecretRef { scheme, name }
    }

    /// The scheme word, for messages and metrics.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// Everything after the colon: what the scheme's provider looks up.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The path of a `file:` reference.
    pub fn as_file(&self) -> Option<&Path> {
        (self.scheme == "file").then(|| Path::new(&self.name))
    }

    /// The key name of a `keyring:` reference.
    pub fn as_keyring(&self) -> Option<&str> {
        (self.scheme == "keyring").then_some(self.name.as_str())
    }

    /// A `file:` reference with a relative path made relative to `dir` instead of the working
    /// directory (a pipeline file's references are relative to the pipeline file); any other
    /// reference as it is.
    pub fn relative_to(self, dir: &Path) -> SecretRef {
        match self.as_file() {
            Some(path) if path.is_relative() => SecretRef::file(dir.join(path)),
            _ => self,
        }
    }
}

/// The syntactic half of parsing: the text before the first colon, and the rest (which may hold
/// more colons, and may be empty). Text without a colon is not a reference.
pub(crate) fn split(s: &str) -> Result<(&str, &str), SecretError> {
    s.split_once(':').ok_or(SecretError::NotAReference)
}

/// The error for a prefix that no provider is registered for: the prefix is named if it looks
/// like a scheme; `known` lists the registered schemes.
pub(crate) fn unknown_scheme(prefix: &str, known: impl FnOnce() -> String) -> SecretError {
    if looks_like_scheme(prefix) {
        SecretError::UnknownScheme {
            scheme: prefix.to_owned(),
            known: known(),
        }
    } else {
        // Something like `user:password` or a token with a colon in it: not worth echoing.
        SecretError::NotAReference
    }
}

/// A prefix short and plain enough that echoing it cannot leak much, and long enough to help
/// with typos such as `vault:` or `ENV:`. Letters and `-` only, starting with a letter: a short
/// run with digits before a colon is as likely to be the start of a token as a scheme (a
/// registered scheme with digits in it is found by its provider, not by this rule).
fn looks_like_scheme(s: &str) -> bool {
    (1..=MAX_SCHEME_LEN).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-')
}

/// The longest scheme word.
const MAX_SCHEME_LEN: usize = 12;

/// Whether a provider may use `s` as its scheme: 1 to 12 characters from `a-z`, `0-9` and `-`,
/// starting with a letter (`env`, `aws-sm`).
pub(crate) fn is_scheme_word(s: &str) -> bool {
    (1..=MAX_SCHEME_LEN).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// True if `s` parses as a reference of a built-in scheme. Lets callers tell a reference from a
/// literal value (for example, to refuse literal tokens in pipeline files); where other schemes
/// may be registered, ask [`SecretProviders::is_reference`] instead.
pub fn is_reference(s: &str) -> bool {
    SecretProviders::builtin().is_reference(s)
}

impl FromStr for SecretRef {
    type Err = SecretError;

    /// As [`SecretRef::parse`]: built-in schemes only.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SecretRef::parse(s)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        for text in [
            "env:CRM_TOKEN",
            "file:/run/secrets/crm token",
            "file:relative/path.txt",
            "file:C:/odd:path",
            "keyring:email-pepper",
            "keyring:0.v2_x",
        ] {
            let r = SecretRef::parse(text).unwrap();
            assert_eq!(r.to_string(), text);
            assert_eq!(text.parse::<SecretRef>().unwrap(), r);
            assert!(is_reference(text));
        }
        assert_eq!(SecretRef::parse("env:A").unwrap(), SecretRef::env("A"));
        assert_eq!(SecretRef::parse("file:/x").unwrap(), SecretRef::file("/x"));
        assert_eq!(
            SecretRef::parse("keyring:k").unwrap(),
            SecretRef::keyring("k")
        );
    }

    #[test]
    fn accessors() {
        let r = SecretRef::parse("file:C:/odd:path").unwrap();
        assert_eq!((r.scheme(), r.name()), ("file", "C:/odd:path"));
        assert_eq!(r.as_file(), Some(Path::new("C:/odd:path")));
        assert_eq!(r.as_keyring(), None);
        let r = SecretRef::keyring("pepper");
        assert_eq!(r.as_keyring(), Some("pepper"));
        assert_eq!(r.as_file(), None);
        assert_eq!(SecretRef::env("X").as_file(), None);
    }

    #[test]
    fn relative_files_are_taken_from_the_given_directory() {
        let dir = Path::new("/etc/pipelines");
        assert_eq!(
            SecretRef::file("secrets/token").relative_to(dir),
            SecretRef::file("/etc/pipelines/secrets/token")
        );
        for unchanged in [
            SecretRef::file("/run/secrets/token"),
            SecretRef::env("relative"),
            SecretRef::keyring("relative"),
        ] {
            assert_eq!(unchanged.clone().relative_to(dir), unchanged);
        }
    }

    #[test]
    fn unknown_schemes_list_the_known_ones() {
        let e = SecretRef::parse("vault:kv/crm").unwrap_err();
        assert!(matches!(e, SecretError::UnknownScheme { ref scheme, .. } if scheme == "vault"));
        let msg = e.to_string();
        for s in ["env:NAME", "file:PATH", "keyring:NAME", "`vault:`"] {
            assert!(msg.contains(s), "{msg}");
        }
        assert!(
            msg.ends_with("the schemes are env:NAME, file:PATH and keyring:NAME"),
            "{msg}"
        );
        // Schemes are case-sensitive.
        assert!(matches!(
            SecretRef::parse("ENV:X"),
            Err(SecretError::UnknownScheme { .. })
        ));
        // A hyphenated scheme is a scheme too (`aws-sm:` when no provider for it is built in).
        assert!(matches!(
            SecretRef::parse("aws-sm:crm/token"),
            Err(SecretError::UnknownScheme { ref scheme, .. }) if scheme == "aws-sm"
        ));
        assert!(!is_reference("vault:kv/crm"));
    }

    #[test]
    fn empty_names_are_refused_with_an_example() {
        for (text, example) in [
            ("env:", "env:CRM_TOKEN"),
            ("file:", "file:/"),
            ("keyring:", "keyring:"),
        ] {
            let msg = SecretRef::parse(text).unwrap_err().to_string();
            assert!(msg.contains("needs a name"), "{msg}");
            assert!(msg.contains(example), "{msg}");
            assert!(!is_reference(text));
        }
    }

    #[test]
    fn literal_values_are_not_echoed() {
        let canary = "sk_live_9f8e7d6c5b4a";
        for text in [
            canary.to_string(),
            format!("admin:{canary}"),
            format!("env:TOKEN={canary}"),
            format!("{canary}:{canary}"),
            // Digits before the colon are not echoed either.
            format!("9f8e7d6c:{canary}"),
            format!("sk2:{canary}"),
        ] {
            let e = SecretRef::parse(&text).unwrap_err();
            let msg = e.to_string();
            assert!(!msg.contains(canary), "{msg}");
            assert!(!format!("{e:?}").contains(canary));
            assert!(!is_reference(&text));
        }
        for not_echoed in ["9f8e7d6c:x", "sk2:x", "-a:x", "abcdefghijklm:x", ":x"] {
            assert!(
                matches!(
                    SecretRef::parse(not_echoed),
                    Err(SecretError::NotAReference)
                ),
                "{not_echoed}"
            );
        }
    }

    #[test]
    fn scheme_words() {
        for ok in ["env", "aws-sm", "s3", "a", "abcdefghijkl"] {
            assert!(is_scheme_word(ok), "{ok}");
        }
        for bad in ["", "Env", "3s", "-a", "a_b", "a:b", "abcdefghijklm", "é"] {
            assert!(!is_scheme_word(bad), "{bad}");
        }
    }
}
