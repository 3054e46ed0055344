//! Secret references: the strings that stand in for secrets in pipeline files, so that the
//! files themselves can be committed and shared. A reference is not secret; its value is.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::SecretError;

/// Where a secret lives. Written `env:NAME`, `file:PATH` or `keyring:NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretRef {
    /// An environment variable.
    Env(String),
    /// A file holding only the secret (one trailing newline is ignored); it must be mode 0600.
    File(PathBuf),
    /// A key in hushflow's local keyring in the state directory.
    Keyring(String),
}

impl SecretRef {
    /// Parses `env:NAME`, `file:PATH` or `keyring:NAME`.
    ///
    /// Errors never repeat the input beyond a short scheme-like prefix, because the input may be
    /// a secret pasted where its reference belongs.
    pub fn parse(s: &str) -> Result<SecretRef, SecretError> {
        let Some((scheme, name)) = s.split_once(':') else {
            return Err(SecretError::NotAReference);
        };
        match scheme {
            "env" => {
                if name.is_empty() {
                    return Err(SecretError::EmptyName {
                        scheme: "env",
                        example: "env:CRM_TOKEN",
                    });
                }
                // getenv cannot look these up, and `env:X=value` usually means the user pasted
                // an assignment, value included.
                if name.contains(['=', '\0']) {
                    return Err(SecretError::BadEnvName);
                }
                Ok(SecretRef::Env(name.to_owned()))
            }
            "file" => {
                if name.is_empty() {
                    return Err(SecretError::EmptyName {
                        scheme: "file",
                        example: "file:/run/secrets/crm_token",
                    });
                }
                Ok(SecretRef::File(PathBuf::from(name)))
            }
            "keyring" => {
                if name.is_empty() {
                    return Err(SecretError::EmptyName {
                        scheme: "keyring",
                        example: "keyring:email-pepper",
                    });
                }
                if !is_valid_key_name(name) {
                    return Err(SecretError::BadKeyName {
                        name: name.to_owned(),
                    });
                }
                Ok(SecretRef::Keyring(name.to_owned()))
            }
            other if looks_like_scheme(other) => Err(SecretError::UnknownScheme {
                scheme: other.to_owned(),
            }),
            // Something like `user:password` or a token with a colon in it: not worth echoing.
            _ => Err(SecretError::NotAReference),
        }
    }

    /// The scheme word, for messages and metrics.
    pub fn scheme(&self) -> &'static str {
        match self {
            SecretRef::Env(_) => "env",
            SecretRef::File(_) => "file",
            SecretRef::Keyring(_) => "keyring",
        }
    }
}

/// A prefix short and plain enough that echoing it cannot leak much, and long enough to help
/// with typos such as `vault:` or `ENV:`.
fn looks_like_scheme(s: &str) -> bool {
    (1..=12).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic())
}

/// True if `s` parses as a secret reference. Lets callers tell a reference from a literal value
/// (for example, to refuse literal tokens in pipeline files).
pub fn is_reference(s: &str) -> bool {
    SecretRef::parse(s).is_ok()
}

/// Key names: `[a-z0-9][a-z0-9._-]{0,63}`. Kept here so that `keyring:` references are checked
/// when the pipeline is validated, by the same rule the keyring applies when keys are created.
pub fn is_valid_key_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            rest.len() <= 63
                && (first.is_ascii_lowercase() || first.is_ascii_digit())
                && rest.iter().all(|&b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        }
        None => false,
    }
}

impl FromStr for SecretRef {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SecretRef::parse(s)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "env:{name}"),
            SecretRef::File(path) => write!(f, "file:{}", path.display()),
            SecretRef::Keyring(name) => write!(f, "keyring:{name}"),
        }
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
        assert_eq!(
            SecretRef::parse("env:A").unwrap(),
            SecretRef::Env("A".into())
        );
        assert_eq!(
            SecretRef::parse("file:/x").unwrap(),
            SecretRef::File("/x".into())
        );
        assert_eq!(
            SecretRef::parse("keyring:k").unwrap(),
            SecretRef::Keyring("k".into())
        );
    }

    #[test]
    fn unknown_schemes_list_the_known_ones() {
        let e = SecretRef::parse("vault:kv/crm").unwrap_err();
        assert!(matches!(e, SecretError::UnknownScheme { ref scheme } if scheme == "vault"));
        let msg = e.to_string();
        for s in ["env:NAME", "file:PATH", "keyring:NAME", "`vault:`"] {
            assert!(msg.contains(s), "{msg}");
        }
        // Schemes are case-sensitive.
        assert!(matches!(
            SecretRef::parse("ENV:X"),
            Err(SecretError::UnknownScheme { .. })
        ));
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
        ] {
            let e = SecretRef::parse(&text).unwrap_err();
            let msg = e.to_string();
            assert!(!msg.contains(canary), "{msg}");
            assert!(!format!("{e:?}").contains(canary));
            assert!(!is_reference(&text));
        }
    }

    #[test]
    fn key_names() {
        for ok in ["a", "0", "email-pepper", "k.v_2-x", &"a".repeat(64)] {
            assert!(is_valid_key_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            ".a",
            "_a",
            "A",
            "a b",
            "a/b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(!is_valid_key_name(bad), "{bad}");
        }
        assert!(matches!(
            SecretRef::parse("keyring:Pepper"),
            Err(SecretError::BadKeyName { .. })
        ));
    }
}
