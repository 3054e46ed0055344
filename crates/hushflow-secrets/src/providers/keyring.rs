//! `keyring:NAME`: a key in hushflow's local keyring. The keyring itself lives in
//! `hushflow-crypto`, which depends on this crate rather than the other way round, so it is
//! reached through the [`KeyProvider`] trait.

use super::SecretProvider;
use crate::{SecretError, SecretValue};

/// Something that holds named keys: hushflow's keyring, or a stand-in in tests. Implemented in
/// `hushflow-crypto`, which depends on this crate rather than the other way round.
pub trait KeyProvider: Sync {
    /// The material of key `name`. Errors must name the key, never material.
    fn key_material(&self, name: &str) -> Result<SecretValue, SecretError>;
}

/// `keys` is `None` when there is no state directory, and so no keyring.
pub(crate) struct KeyringProvider<'a> {
    pub(crate) keys: Option<&'a dyn KeyProvider>,
}

impl SecretProvider for KeyringProvider<'_> {
    fn scheme(&self) -> &'static str {
        "keyring"
    }

    fn usage(&self) -> &'static str {
        "keyring:NAME"
    }

    fn example(&self) -> &'static str {
        "keyring:email-pepper"
    }

    fn check(&self, name: &str) -> Result<(), SecretError> {
        if !is_valid_key_name(name) {
            return Err(SecretError::BadKeyName {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    fn resolve(&self, name: &str) -> Result<SecretValue, SecretError> {
        match self.keys {
            Some(keys) => keys.key_material(name),
            None => Err(SecretError::NoKeyring {
                name: name.to_owned(),
            }),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Redactor, SecretRef, SecretResolver};

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

    struct Keys;

    impl KeyProvider for Keys {
        fn key_material(&self, name: &str) -> Result<SecretValue, SecretError> {
            match name {
                "pepper" => Ok(SecretValue::new(vec![0xa5; 32])),
                _ => Err(SecretError::KeyProvider {
                    name: name.to_owned(),
                    source: "no such key".into(),
                }),
            }
        }
    }

    #[test]
    fn keyring_references() {
        let r = SecretRef::keyring("pepper");
        let e = SecretResolver::new(Redactor::new(), None)
            .resolve(&r)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("keyring references need a state directory"),
            "{e}"
        );

        let redactor = Redactor::new();
        let keys = Keys;
        let resolver = SecretResolver::new(redactor.clone(), Some(&keys));
        let v = resolver.resolve(&r).unwrap();
        assert_eq!(v.expose(), &[0xa5; 32]);
        // Binary material is registered by its encodings.
        assert_eq!(redactor.scrub(&hex::encode(v.expose())), "***");
        let e = resolver.resolve(&SecretRef::keyring("other")).unwrap_err();
        assert_eq!(e.to_string(), "keyring:other: no such key");
        assert!(format!("{resolver:?}").contains("keyring: true"));
    }
}
