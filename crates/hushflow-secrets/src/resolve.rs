//! Turning references into values. Every value is registered with the redactor before the
//! caller sees it, so there is no window in which a resolved secret could be logged unmasked.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

use crate::{Redactor, SecretError, SecretRef, SecretValue};

/// Largest secret file accepted. Secrets are tokens, passwords and keys; a larger file is
/// almost certainly the wrong path, and reading it whole would be wasteful.
pub const MAX_SECRET_FILE_LEN: u64 = 1024 * 1024;

/// Something that holds named keys: hushflow's keyring, or a stand-in in tests. Implemented in
/// `hushflow-crypto`, which depends on this crate rather than the other way round.
pub trait KeyProvider {
    /// The material of key `name`. Errors must name the key, never material.
    fn key_material(&self, name: &str) -> Result<SecretValue, SecretError>;
}

/// Resolves references and registers what it finds with the redactor.
pub struct SecretResolver<'a> {
    redactor: Redactor,
    keys: Option<&'a dyn KeyProvider>,
}

impl<'a> SecretResolver<'a> {
    /// `keys` is `None` when there is no state directory, and so no keyring.
    pub fn new(redactor: Redactor, keys: Option<&'a dyn KeyProvider>) -> Self {
        SecretResolver { redactor, keys }
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The secret `r` points at, registered with the redactor. An empty secret is an error:
    /// it is always a mistake (an unset variable exported as empty, a truncated file), and
    /// pressing on would fail later with a less helpful message.
    pub fn resolve(&self, r: &SecretRef) -> Result<SecretValue, SecretError> {
        let value = match r {
            SecretRef::Env(name) => read_env(name)?,
            SecretRef::File(path) => read_secret_file(path)?,
            SecretRef::Keyring(name) => match self.keys {
                Some(keys) => keys.key_material(name)?,
                None => return Err(SecretError::NoKeyring { name: name.clone() }),
            },
        };
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
    let Ok(text) = value.expose_str() else {
        return Vec::new();
    };
    let Some((_, rest)) = text.trim().split_once("://") else {
        return Vec::new();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return Vec::new();
    };
    let Some((_, password)) = userinfo.split_once(':') else {
        return Vec::new();
    };
    let mut parts = vec![SecretValue::new(password.as_bytes().to_vec())];
    let decoded = percent_decode(password.as_bytes());
    if decoded != password.as_bytes() {
        parts.push(SecretValue::new(decoded));
    }
    parts
}

fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(h * 16 + l);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

impl fmt::Debug for SecretResolver<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretResolver")
            .field("redactor", &self.redactor)
            .field("keyring", &self.keys.is_some())
            .finish()
    }
}

fn read_env(name: &str) -> Result<SecretValue, SecretError> {
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

/// Reads a secret file after checking, on the open file so that it cannot be swapped in
/// between, that nobody but the owner can read or write it.
fn read_secret_file(path: &Path) -> Result<SecretValue, SecretError> {
    let io_err = |action: &'static str| {
        move |source| SecretError::FileRead {
            path: path.to_owned(),
            action,
            source,
        }
    };
    let file = File::open(path).map_err(io_err("open"))?;
    let meta = file.metadata().map_err(io_err("inspect"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(SecretError::FilePermissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    let too_large = || SecretError::FileTooLarge {
        path: path.to_owned(),
        limit: MAX_SECRET_FILE_LEN,
    };
    if meta.len() > MAX_SECRET_FILE_LEN {
        return Err(too_large());
    }
    // Sized up front so the buffer is not reallocated (leaving unwiped copies) while reading.
    let expected = usize::try_from(meta.len()).unwrap_or(0);
    let mut bytes = Zeroizing::new(Vec::with_capacity(expected + 1));
    // Read one byte past the limit to notice files that grew, or that report no size.
    file.take(MAX_SECRET_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err("read"))?;
    if bytes.len() as u64 > MAX_SECRET_FILE_LEN {
        return Err(too_large());
    }
    // Editors add a final newline; nobody means it as part of the secret.
    if bytes.ends_with(b"\r\n") {
        let len = bytes.len() - 2;
        bytes.truncate(len);
    } else if bytes.ends_with(b"\n") {
        let len = bytes.len() - 1;
        bytes.truncate(len);
    }
    Ok(SecretValue::new(std::mem::take(&mut *bytes)))
}

#[cfg(test)]
#[allow(unsafe_code)] // `set_var` is unsafe since edition 2024; each test sets its own variable.
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const CANARY: &str = "canary-env-4b7d1e";

    fn secret_file(dir: &Path, name: &str, contents: &[u8], mode: u32) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn env_resolves_and_registers() {
        // Unique names: tests run in parallel in one process.
        let name = "HUSHFLOW_TEST_SECRET_ENV_RESOLVE";
        // SAFETY: no other test reads or writes this variable.
        unsafe { std::env::set_var(name, CANARY) };
        let redactor = Redactor::new();
        let resolver = SecretResolver::new(redactor.clone(), None);
        let v = resolver.resolve(&SecretRef::Env(name.into())).unwrap();
        assert_eq!(v.expose(), CANARY.as_bytes());
        assert_eq!(redactor.scrub(&format!("x {CANARY} y")), "x *** y");
    }

    #[test]
    fn a_url_password_is_masked_on_its_own() {
        let name = "HUSHFLOW_TEST_SECRET_URL_PASSWORD";
        // SAFETY: no other test reads or writes this variable.
        unsafe { std::env::set_var(name, "postgres://app:pw%40canary-77@db.example/crm") };
        let redactor = Redactor::new();
        let resolver = SecretResolver::new(redactor.clone(), None);
        resolver.resolve(&SecretRef::Env(name.into())).unwrap();
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

    #[test]
    fn env_errors_name_the_variable() {
        let resolver = SecretResolver::new(Redactor::new(), None);
        let name = "HUSHFLOW_TEST_SECRET_SURELY_UNSET";
        let msg = resolver
            .resolve(&SecretRef::Env(name.into()))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(&format!("set {name} or change the reference env:{name}")),
            "{msg}"
        );

        let empty = "HUSHFLOW_TEST_SECRET_ENV_EMPTY";
        // SAFETY: no other test reads or writes this variable.
        unsafe { std::env::set_var(empty, "") };
        let e = resolver.resolve(&SecretRef::Env(empty.into())).unwrap_err();
        assert!(matches!(e, SecretError::Empty { .. }));
        assert!(e.to_string().contains(&format!("env:{empty} is empty")));

        let bad = "HUSHFLOW_TEST_SECRET_ENV_NOT_UTF8";
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: no other test reads or writes this variable.
        unsafe { std::env::set_var(bad, std::ffi::OsStr::from_bytes(b"\xffsecret")) };
        let e = resolver.resolve(&SecretRef::Env(bad.into())).unwrap_err();
        assert!(matches!(e, SecretError::EnvNotUnicode { .. }));
    }

    #[test]
    fn file_refused_when_group_or_others_have_access() {
        let dir = tempfile::tempdir().unwrap();
        let resolver = SecretResolver::new(Redactor::new(), None);
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o610] {
            let path = secret_file(dir.path(), "token", CANARY.as_bytes(), mode);
            let e = resolver
                .resolve(&SecretRef::File(path.clone()))
                .unwrap_err();
            assert!(matches!(e, SecretError::FilePermissions { .. }), "{mode:o}");
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("chmod 600 {}", path.display())),
                "{msg}"
            );
            assert!(msg.contains(&format!("{mode:04o}")), "{msg}");
            assert!(!msg.contains(CANARY));
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn file_accepted_at_0600_and_0400() {
        let dir = tempfile::tempdir().unwrap();
        let redactor = Redactor::new();
        let resolver = SecretResolver::new(redactor.clone(), None);
        for (name, contents, mode) in [
            ("plain", CANARY.to_string(), 0o600),
            ("lf", format!("{CANARY}\n"), 0o600),
            ("crlf", format!("{CANARY}\r\n"), 0o400),
        ] {
            let path = secret_file(dir.path(), name, contents.as_bytes(), mode);
            let v = resolver.resolve(&SecretRef::File(path)).unwrap();
            assert_eq!(v.expose_str().unwrap(), CANARY, "{name}");
        }
        // Only one newline is stripped: the rest is the secret's business.
        let path = secret_file(dir.path(), "two", format!("{CANARY}\n\n").as_bytes(), 0o600);
        let v = resolver.resolve(&SecretRef::File(path)).unwrap();
        assert_eq!(v.expose(), format!("{CANARY}\n").as_bytes());
        assert_eq!(redactor.scrub(CANARY), "***");
    }

    #[test]
    fn file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let resolver = SecretResolver::new(Redactor::new(), None);
        for contents in [&b""[..], b"\n", b"\r\n"] {
            let path = secret_file(dir.path(), "empty", contents, 0o600);
            let e = resolver
                .resolve(&SecretRef::File(path.clone()))
                .unwrap_err();
            assert!(matches!(e, SecretError::Empty { .. }), "{e}");
            assert!(e.to_string().contains(&format!("file:{}", path.display())));
        }
        let missing = dir.path().join("missing");
        let msg = resolver
            .resolve(&SecretRef::File(missing.clone()))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("cannot open secret file"), "{msg}");
        assert!(
            msg.contains(&format!("file:{}", missing.display())),
            "{msg}"
        );

        let big = vec![b'x'; MAX_SECRET_FILE_LEN as usize + 1];
        let path = secret_file(dir.path(), "big", &big, 0o600);
        let e = resolver.resolve(&SecretRef::File(path)).unwrap_err();
        assert!(matches!(e, SecretError::FileTooLarge { .. }), "{e}");
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
        let r = SecretRef::Keyring("pepper".into());
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
        let e = resolver
            .resolve(&SecretRef::Keyring("other".into()))
            .unwrap_err();
        assert_eq!(e.to_string(), "keyring:other: no such key");
        assert!(format!("{resolver:?}").contains("keyring: true"));
    }
}
