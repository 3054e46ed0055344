//! Turning references into values. [`SecretResolver::resolve`] is the one place a value comes
//! out of a provider, and every value is registered with the redactor there, before the caller
//! sees it, so there is no window in which a resolved secret could be logged unmasked, whatever
//! provider it came from.

use std::fmt;

use crate::{KeyProvider, Redactor, SecretError, SecretProviders, SecretRef, SecretValue};

/// Resolves references through the registered providers and registers what it finds with the
/// redactor.
pub struct SecretResolver<'a> {
    redactor: Redactor,
    providers: SecretProviders<'a>,
}

impl<'a> SecretResolver<'a> {
    /// The built-in providers, with `keys` behind `keyring:`; `keys` is `None` when there is no
    /// state directory, and so no keyring.
    pub fn new(redactor: Redactor, keys: Option<&'a dyn KeyProvider>) -> Self {
        SecretResolver::with_providers(redactor, SecretProviders::new(keys))
    }

    /// Resolves through `providers`: the built-ins and whatever else was registered.
    pub fn with_providers(redactor: Redactor, providers: SecretProviders<'a>) -> Self {
        SecretResolver {
            redactor,
            providers,
        }
    }

    /// The redactor every resolved value is registered with; clones of it mask them too.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The providers references are resolved through, by scheme.
    pub fn providers(&self) -> &SecretProviders<'a> {
        &self.providers
    }

    /// Parses a reference of any scheme this resolver can resolve.
    pub fn parse(&self, s: &str) -> Result<SecretRef, SecretError> {
        self.providers.parse(s)
    }

    /// The secret `r` points at, registered with the redactor. An empty secret is an error:
    /// it is always a mistake (an unset variable exported as empty, a truncated file), and
    /// pressing on would fail later with a less helpful message.
    pub fn resolve(&self, r: &SecretRef) -> Result<SecretValue, SecretError> {
        let value = self.providers.provider(r.scheme())?.resolve(r.name())?;
        if value.is_empty() {
            return Err(SecretError::Empty {
                reference: r.to_string(),
            });
        }
        self.redactor.register(&value);
        // A connection URL's password is printed on its own by drivers ("password
        // authentication failed for …" quotes the user, some messages the whole userinfo), so
        // it is masked apart from the URL, as written and percent-decoded.
        for part in url_password(&value) {
            self.redactor.register(&part);
        }
        Ok(value)
    }
}

/// The password of a `scheme://user:password@host…` value: raw, and percent-decoded when that
/// differs. Nothing for any other value.
fn url_password(value: &SecretValue) -> Vec<SecretValue> {
    let Some(password) = value.expose_str().ok().and_then(crate::url_password) else {
        return Vec::new();
    };
    let mut parts = vec![SecretValue::new(password.as_bytes().to_vec())];
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(password).collect();
    if decoded != password.as_bytes() {
        parts.push(SecretValue::new(decoded));
    }
    parts
}

impl fmt::Debug for SecretResolver<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretResolver")
            .field("redactor", &self.redactor)
            .field("providers", &self.providers)
            .finish()
    }
}

#[cfg(test)]
#[allow(unsafe_code)] // `set_var` is unsafe since edition 2024; each test sets its own variable.
mod tests {
    use super::*;
    use crate::SecretProvider;

    #[test]
    fn a_url_password_is_masked_on_its_own() {
        let name = "HUSHFLOW_TEST_SECRET_URL_PASSWORD";
        // SAFETY: no other test reads or writes this variable.
        unsafe { std::env::set_var(name, "postgres://app:pw%40canary-77@db.example/crm") };
        let redactor = Redactor::new();
        let resolver = SecretResolver::new(redactor.clone(), None);
        resolver.resolve(&SecretRef::env(name)).unwrap();
        assert_eq!(
            redactor.scrub("auth failed: pw@canary-77"),
            "auth failed: ***"
        );
        assert_eq!(
            redactor.scrub("userinfo app:pw%40canary-77"),
            "userinfo app:***"
        );
        assert_eq!(
            redactor.scrub("host db.example"),
            "host db.example",
            "not the host"
        );
        assert!(url_password(&SecretValue::from("postgres://app@db/x".to_string())).is_empty());
        assert!(url_password(&SecretValue::from("just-a-token".to_string())).is_empty());
    }

    const CANARY: &str = "canary-vault-91c2e8";

    /// A provider from outside the crate, as `vault:` would be: it knows nothing of the
    /// redactor.
    struct Vault;

    impl SecretProvider for Vault {
        fn scheme(&self) -> &'static str {
            "vault"
        }
        fn usage(&self) -> &'static str {
            "vault:PATH"
        }
        fn example(&self) -> &'static str {
            "vault:kv/crm"
        }
        fn resolve(&self, name: &str) -> Result<SecretValue, SecretError> {
            match name {
                "kv/crm" => Ok(SecretValue::from(CANARY.to_string())),
                "kv/url" => Ok(SecretValue::from(format!(
                    "postgres://app:{CANARY}@db.example/crm"
                ))),
                "kv/empty" => Ok(SecretValue::new(Vec::new())),
                _ => Err(SecretError::Provider {
                    scheme: "vault",
                    name: name.to_owned(),
                    source: "no such secret".into(),
                }),
            }
        }
    }

    fn with_vault(redactor: &Redactor) -> SecretResolver<'static> {
        let mut providers = SecretProviders::default();
        providers.register(Vault);
        SecretResolver::with_providers(redactor.clone(), providers)
    }

    #[test]
    fn a_value_from_any_provider_is_masked() {
        let redactor = Redactor::new();
        let resolver = with_vault(&redactor);
        let r = resolver.parse("vault:kv/crm").unwrap();
        let v = resolver.resolve(&r).unwrap();
        assert_eq!(v.expose_str().unwrap(), CANARY);
        let line = format!(
            "token={CANARY} hex={} b64={}",
            hex::encode(CANARY),
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, CANARY)
        );
        assert_eq!(redactor.scrub(&line), "token=*** hex=*** b64=***");
        assert!(!redactor.scrub(&format!("{v:?} {v}")).contains(CANARY));

        // A URL's password on its own, as for the built-in providers.
        let redactor = Redactor::new();
        let resolver = with_vault(&redactor);
        resolver
            .resolve(&resolver.parse("vault:kv/url").unwrap())
            .unwrap();
        assert_eq!(redactor.scrub(&format!("auth {CANARY}")), "auth ***");
    }

    #[test]
    fn provider_errors_and_empty_values() {
        let resolver = with_vault(&Redactor::new());
        let e = resolver
            .resolve(&resolver.parse("vault:kv/empty").unwrap())
            .unwrap_err();
        assert!(matches!(e, SecretError::Empty { .. }), "{e}");
        assert!(e.to_string().contains("vault:kv/empty is empty"), "{e}");
        let e = resolver
            .resolve(&resolver.parse("vault:kv/none").unwrap())
            .unwrap_err();
        assert_eq!(e.to_string(), "vault:kv/none: no such secret");
    }

    #[test]
    fn an_unregistered_scheme_does_not_resolve() {
        let redactor = Redactor::new();
        let r = with_vault(&redactor).parse("vault:kv/crm").unwrap();
        let plain = SecretResolver::new(redactor.clone(), None);
        let e = plain.resolve(&r).unwrap_err();
        assert!(
            matches!(e, SecretError::UnknownScheme { ref scheme, .. } if scheme == "vault"),
            "{e}"
        );
        assert!(plain.parse("vault:kv/crm").is_err());
        assert!(redactor.is_empty());
    }
}
