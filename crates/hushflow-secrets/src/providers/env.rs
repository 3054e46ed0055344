//! `env:NAME`: an environment variable.

use zeroize::Zeroizing;

use super::SecretProvider;
use crate::{SecretError, SecretValue};

pub(crate) struct EnvProvider;

impl SecretProvider for EnvProvider {
    fn scheme(&self) -> &'static str {
        "env"
    }

    fn usage(&self) -> &'static str {
        "env:NAME"
    }

    fn example(&self) -> &'static str {
        "env:CRM_TOKEN"
    }

    fn check(&self, name: &str) -> Result<(), SecretError> {
        // getenv cannot look these up, and `env:X=value` usually means the user pasted an
        // assignment, value included.
        if name.contains(['=', '\0']) {
            return Err(SecretError::BadEnvName);
        }
        Ok(())
    }

    fn resolve(&self, name: &str) -> Result<SecretValue, SecretError> {
        match std::env::var_os(name) {
            None => Err(SecretError::EnvMissing {
                name: name.to_owned(),
            }),
            Some(os) => match os.into_string() {
                Ok(text) => Ok(SecretValue::from(text)),
                Err(os) => {
                    // Not UTF-8, but a secret all the same: wipe it.
                    let _ = Zeroizing::new(os.into_encoded_bytes());
                    Err(SecretError::EnvNotUnicode {
                        name: name.to_owned(),
                    })
                }
            },
        }
    }
}

#[cfg(test)]
#[allow(unsafe_code)] // `set_var` is unsafe since edition 2024; each test sets its own variable.
mod tests {
    use crate::{Redactor, SecretError, SecretRef, SecretResolver};

    const CANARY: &str = "canary-env-4b7d1e";

    #[test]
    fn env_resolves_and_registers() {
        // Unique names: tests run in parallel in one process.
        let name = "HUSHFLOW_TEST_SECRET_ENV_RESOLVE";
        // SAFETY: no other test reads or writes this variable.
        unsafe { std::env::set_var(name, CANARY) };
        let redactor = Redactor::new();
        let resolver = SecretResolver::new(redactor.clone(), None);
        let v = resolver.resolve(&SecretRef::env(name)).unwrap();
        assert_eq!(v.expose(), CANARY.as_bytes());
        assert_eq!(redactor.scrub(&format!("x {CANARY} y")), "x *** y");
    }

    #[test]
    fn env_errors_name_the_variable() {
        let resolver = SecretResolver::new(Redactor::new(), None);
        let name = "HUSHFLOW_TEST_SECRET_SURELY_UNSET";
        let msg = resolver
            .resolve(&SecretRef::env(name))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(&format!("set {name} or change the reference env:{name}")),
            "{msg}"
        );

        let empty = "HUSHFLOW_TEST_SECRET_ENV_EMPTY";
        // SAFETY: no other test reads or writes this variable.
        unsafe { std::env::set_var(empty, "") };
        let e = resolver.resolve(&SecretRef::env(empty)).unwrap_err();
        assert!(matches!(e, SecretError::Empty { .. }));
        assert!(e.to_string().contains(&format!("env:{empty} is empty")));

        let bad = "HUSHFLOW_TEST_SECRET_ENV_NOT_UTF8";
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: no other test reads or writes this variable.
        unsafe { std::env::set_var(bad, std::ffi::OsStr::from_bytes(b"\xffsecret")) };
        let e = resolver.resolve(&SecretRef::env(bad)).unwrap_err();
        assert!(matches!(e, SecretError::EnvNotUnicode { .. }));
    }

    #[test]
    fn assignments_are_refused_without_echoing_them() {
        let canary = "sk_live_9f8e7d6c5b4a";
        for text in [format!("env:TOKEN={canary}"), "env:A\0B".to_string()] {
            let e = SecretRef::parse(&text).unwrap_err();
            assert!(matches!(e, SecretError::BadEnvName), "{e}");
            assert!(!e.to_string().contains(canary));
        }
    }
}
