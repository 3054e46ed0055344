//! Secret providers, one per scheme: `env:`, `file:` and `keyring:` are built in; other stores
//! (`vault:`, `aws-sm:`) are providers that another crate implements and registers.
//!
//! A provider checks a name's syntax and looks the secret up. It does not register the value
//! with the redactor and does not check it for emptiness: [`SecretResolver::resolve`] does both,
//! for every provider, in one place.
//!
//! [`SecretResolver::resolve`]: crate::SecretResolver::resolve

use std::fmt;
use std::sync::LazyLock;

use crate::reference::{self, is_scheme_word};
use crate::{SecretError, SecretRef, SecretValue};

mod env;
mod file;
mod keyring;

pub use file::MAX_SECRET_FILE_LEN;
pub use keyring::{KeyProvider, is_valid_key_name};

/// A secret store behind one scheme.
///
/// Errors must name the reference (`scheme:name`) at most, never a value; and a name that
/// fails [`check`](SecretProvider::check) may be a secret pasted in the wrong place, so its
/// error should not repeat it either.
pub trait SecretProvider: Send + Sync {
    /// The word before the colon: 1 to 12 characters from `a-z`, `0-9` and `-`, starting with a
    /// letter (`env`, `aws-sm`).
    fn scheme(&self) -> &'static str;

    /// How a reference of this scheme is written, for messages: `env:NAME`.
    fn usage(&self) -> &'static str;

    /// A whole reference, shown when the name after the colon is missing: `env:CRM_TOKEN`.
    fn example(&self) -> &'static str;

    /// Checks a (non-empty) name's syntax without looking anything up, so that validating a
    /// pipeline catches a malformed reference before any secret is needed.
    fn check(&self, name: &str) -> Result<(), SecretError> {
        let _ = name;
        Ok(())
    }

    /// Looks the secret up. Called only through [`crate::SecretResolver::resolve`], which
    /// refuses an empty value and registers the rest with the redactor.
    fn resolve(&self, name: &str) -> Result<SecretValue, SecretError>;
}

/// The providers a process knows, by scheme, in the order they were registered. Parsing and
/// validation accept exactly the registered schemes; resolution goes through a
/// [`crate::SecretResolver`] holding the registry.
pub struct SecretProviders<'a> {
    providers: Vec<Box<dyn SecretProvider + 'a>>,
    /// Whether the `keyring:` provider has a keyring behind it (shown by `Debug`).
    keyring: bool,
}

impl<'a> SecretProviders<'a> {
    /// The built-in providers (`env:`, `file:`, `keyring:`), with `keys` behind `keyring:`;
    /// `keys` is `None` when there is no state directory, and so no keyring.
    pub fn new(keys: Option<&'a dyn KeyProvider>) -> Self {
        let mut providers = SecretProviders {
            providers: Vec::new(),
            keyring: keys.is_some(),
        };
        providers.register(env::EnvProvider);
        providers.register(file::FileProvider);
        providers.register(keyring::KeyringProvider { keys });
        providers.keyring = keys.is_some();
        providers
    }

    /// The built-in providers without a keyring: enough to parse and validate references of the
    /// built-in schemes.
    pub fn builtin() -> &'static SecretProviders<'static> {
        static BUILTIN: LazyLock<SecretProviders<'static>> =
            LazyLock::new(|| SecretProviders::new(None));
        &BUILTIN
    }

    /// Adds `provider`, or replaces the one registered for its scheme.
    ///
    /// # Panics
    ///
    /// If the provider's scheme is not a scheme word (see [`SecretProvider::scheme`]): that is a
    /// bug in the provider, not a user's mistake.
    pub fn register(&mut self, provider: impl SecretProvider + 'a) -> &mut Self {
        let scheme = provider.scheme();
        assert!(
            is_scheme_word(scheme),
            "secret provider scheme {scheme:?} is not 1 to 12 characters from a-z, 0-9 and -, \
             starting with a letter"
        );
        if scheme == "keyring" {
            self.keyring = true;
        }
        let provider: Box<dyn SecretProvider + 'a> = Box::new(provider);
        match self.providers.iter_mut().find(|p| p.scheme() == scheme) {
            Some(slot) => *slot = provider,
            None => self.providers.push(provider),
        }
        self
    }

    /// The registered schemes, in registration order.
    pub fn schemes(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.providers.iter().map(|p| p.scheme())
    }

    /// Whether a provider is registered for `scheme`.
    pub fn contains(&self, scheme: &str) -> bool {
        self.get(scheme).is_some()
    }

    /// Parses `scheme:name` for a registered scheme whose provider accepts the name.
    ///
    /// Errors never repeat the input beyond a short scheme-like prefix, because the input may be
    /// a secret pasted where its reference belongs.
    pub fn parse(&self, s: &str) -> Result<SecretRef, SecretError> {
        let (scheme, name) = reference::split(s)?;
        let provider = self.checked(scheme, name)?;
        Ok(SecretRef::from_parts(provider.scheme(), name.to_owned()))
    }

    /// True if `s` parses as a reference of a registered scheme. Lets callers tell a reference
    /// from a literal value (for example, to refuse literal tokens in pipeline files).
    pub fn is_reference(&self, s: &str) -> bool {
        self.parse(s).is_ok()
    }

    /// Checks a reference built in code as [`parse`](SecretProviders::parse) checks text: its
    /// scheme is registered and its provider accepts the name.
    pub fn check(&self, r: &SecretRef) -> Result<(), SecretError> {
        self.checked(r.scheme(), r.name()).map(|_| ())
    }

    /// The provider for `scheme`, or the error that names the registered ones.
    pub(crate) fn provider(&self, scheme: &str) -> Result<&(dyn SecretProvider + 'a), SecretError> {
        self.get(scheme)
            .ok_or_else(|| reference::unknown_scheme(scheme, || self.usage()))
    }

    fn checked(&self, scheme: &str, name: &str) -> Result<&(dyn SecretProvider + 'a), SecretError> {
        let provider = self.provider(scheme)?;
        if name.is_empty() {
            return Err(SecretError::EmptyName {
                scheme: provider.scheme(),
                example: provider.example(),
            });
        }
        provider.check(name)?;
        Ok(provider)
    }

    fn get(&self, scheme: &str) -> Option<&(dyn SecretProvider + 'a)> {
        self.providers
            .iter()
            .find(|p| p.scheme() == scheme)
            .map(|p| &**p)
    }

    /// "env:NAME, file:PATH and keyring:NAME".
    fn usage(&self) -> String {
        let usages: Vec<&str> = self.providers.iter().map(|p| p.usage()).collect();
        match usages.split_last() {
            None => "none (no secret provider is registered)".to_string(),
            Some((last, [])) => (*last).to_string(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        }
    }
}

impl Default for SecretProviders<'_> {
    /// The built-in providers, without a keyring.
    fn default() -> Self {
        SecretProviders::new(None)
    }
}

impl fmt::Debug for SecretProviders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretProviders")
            .field("schemes", &self.schemes().collect::<Vec<_>>())
            .field("keyring", &self.keyring)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for a store such as Vault: `vault:PATH#FIELD`.
    struct Vault;

    impl SecretProvider for Vault {
        fn scheme(&self) -> &'static str {
            "vault"
        }
        fn usage(&self) -> &'static str {
            "vault:PATH#FIELD"
        }
        fn example(&self) -> &'static str {
            "vault:kv/crm#token"
        }
        fn check(&self, name: &str) -> Result<(), SecretError> {
            match name.split_once('#') {
                Some((path, field)) if !path.is_empty() && !field.is_empty() => Ok(()),
                _ => Err(SecretError::Provider {
                    scheme: "vault",
                    name: String::new(),
                    source: "write vault:PATH#FIELD".into(),
                }),
            }
        }
        fn resolve(&self, _: &str) -> Result<SecretValue, SecretError> {
            Ok(SecretValue::new(b"from-vault".to_vec()))
        }
    }

    #[test]
    fn built_ins_in_order() {
        let p = SecretProviders::default();
        assert_eq!(p.schemes().collect::<Vec<_>>(), ["env", "file", "keyring"]);
        assert_eq!(
            SecretProviders::builtin().schemes().collect::<Vec<_>>(),
            ["env", "file", "keyring"]
        );
        assert!(p.contains("env") && !p.contains("vault"));
        assert_eq!(
            format!("{p:?}"),
            r#"SecretProviders { schemes: ["env", "file", "keyring"], keyring: false }"#
        );
    }

    #[test]
    fn a_registered_scheme_parses_and_validates() {
        let mut p = SecretProviders::default();
        assert!(matches!(
            p.parse("vault:kv/crm#token"),
            Err(SecretError::UnknownScheme { .. })
        ));
        assert!(!p.is_reference("vault:kv/crm#token"));

        p.register(Vault);
        assert_eq!(
            p.schemes().collect::<Vec<_>>(),
            ["env", "file", "keyring", "vault"]
        );
        let r = p.parse("vault:kv/crm#token").unwrap();
        assert_eq!((r.scheme(), r.name()), ("vault", "kv/crm#token"));
        assert_eq!(r.to_string(), "vault:kv/crm#token");
        assert!(p.is_reference("vault:kv/crm#token"));
        assert!(p.check(&r).is_ok());
        // The built-in schemes still parse; the free function still knows only those.
        assert!(p.is_reference("env:X"));
        assert!(!crate::is_reference("vault:kv/crm#token"));

        // The provider's own checks and example apply.
        assert!(matches!(
            p.parse("vault:kv/crm"),
            Err(SecretError::Provider { .. })
        ));
        let msg = p.parse("vault:").unwrap_err().to_string();
        assert!(msg.contains("as in vault:kv/crm#token"), "{msg}");
        // An unknown scheme's error lists every registered one.
        let msg = p.parse("vualt:kv/crm#token").unwrap_err().to_string();
        assert!(
            msg.ends_with("the schemes are env:NAME, file:PATH, keyring:NAME and vault:PATH#FIELD"),
            "{msg}"
        );
        assert!(!msg.contains("kv/crm"), "{msg}");
    }

    #[test]
    fn a_registered_scheme_may_hold_digits() {
        struct S3;
        impl SecretProvider for S3 {
            fn scheme(&self) -> &'static str {
                "s3"
            }
            fn usage(&self) -> &'static str {
                "s3:BUCKET/KEY"
            }
            fn example(&self) -> &'static str {
                "s3:secrets/crm-token"
            }
            fn resolve(&self, _: &str) -> Result<SecretValue, SecretError> {
                Ok(SecretValue::new(b"from-s3".to_vec()))
            }
        }
        let mut p = SecretProviders::default();
        assert!(matches!(
            p.parse("s3:secrets/crm-token"),
            Err(SecretError::NotAReference)
        ));
        p.register(S3);
        assert_eq!(p.parse("s3:secrets/crm-token").unwrap().scheme(), "s3");
        // An unregistered prefix with digits is still not echoed.
        assert!(matches!(p.parse("s4:x"), Err(SecretError::NotAReference)));
    }

    #[test]
    fn check_applies_to_references_built_in_code() {
        let p = SecretProviders::default();
        assert!(p.check(&SecretRef::keyring("pepper")).is_ok());
        assert!(matches!(
            p.check(&SecretRef::keyring("Pepper")),
            Err(SecretError::BadKeyName { .. })
        ));
        assert!(matches!(
            p.check(&SecretRef::env("A=b")),
            Err(SecretError::BadEnvName)
        ));
        assert!(matches!(
            p.check(&SecretRef::file("")),
            Err(SecretError::EmptyName { .. })
        ));
    }

    #[test]
    fn registering_a_scheme_again_replaces_its_provider() {
        struct Env2;
        impl SecretProvider for Env2 {
            fn scheme(&self) -> &'static str {
                "env"
            }
            fn usage(&self) -> &'static str {
                "env:ANYTHING"
            }
            fn example(&self) -> &'static str {
                "env:X"
            }
            fn resolve(&self, _: &str) -> Result<SecretValue, SecretError> {
                Ok(SecretValue::new(b"replaced".to_vec()))
            }
        }
        let mut p = SecretProviders::default();
        p.register(Env2);
        assert_eq!(p.schemes().collect::<Vec<_>>(), ["env", "file", "keyring"]);
        // The replacement's check (the default: anything) applies.
        assert!(p.is_reference("env:A=b"));
    }

    #[test]
    #[should_panic(expected = "is not 1 to 12 characters")]
    fn a_scheme_must_be_a_scheme_word() {
        struct Bad;
        impl SecretProvider for Bad {
            fn scheme(&self) -> &'static str {
                "Vault"
            }
            fn usage(&self) -> &'static str {
                "Vault:X"
            }
            fn example(&self) -> &'static str {
                "Vault:x"
            }
            fn resolve(&self, _: &str) -> Result<SecretValue, SecretError> {
                unreachable!()
            }
        }
        SecretProviders::default().register(Bad);
    }
}
