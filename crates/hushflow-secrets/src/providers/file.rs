//! `file:PATH`: a file holding only the secret, readable by its owner only.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

use super::SecretProvider;
use crate::{SecretError, SecretValue};

/// Largest secret file accepted. Secrets are tokens, passwords and keys; a larger file is
/// almost certainly the wrong path, and reading it whole would be wasteful.
pub const MAX_SECRET_FILE_LEN: u64 = 1024 * 1024;

pub(crate) struct FileProvider;

impl SecretProvider for FileProvider {
    fn scheme(&self) -> &'static str {
        "file"
    }

    fn usage(&self) -> &'static str {
        "file:PATH"
    }

    fn example(&self) -> &'static str {
        "file:/run/secrets/crm_token"
    }

    fn resolve(&self, name: &str) -> Result<SecretValue, SecretError> {
        read_secret_file(Path::new(name))
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
mod tests {
    use super::*;
    use crate::{Redactor, SecretRef, SecretResolver};
    use std::os::unix::fs::PermissionsExt;

    const CANARY: &str = "canary-env-4b7d1e";

    fn secret_file(dir: &Path, name: &str, contents: &[u8], mode: u32) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn file_refused_when_group_or_others_have_access() {
        let dir = tempfile::tempdir().unwrap();
        let resolver = SecretResolver::new(Redactor::new(), None);
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o610] {
            let path = secret_file(dir.path(), "token", CANARY.as_bytes(), mode);
            let e = resolver.resolve(&SecretRef::file(&path)).unwrap_err();
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
            let v = resolver.resolve(&SecretRef::file(path)).unwrap();
            assert_eq!(v.expose_str().unwrap(), CANARY, "{name}");
        }
        // Only one newline is stripped: the rest is the secret's business.
        let path = secret_file(dir.path(), "two", format!("{CANARY}\n\n").as_bytes(), 0o600);
        let v = resolver.resolve(&SecretRef::file(path)).unwrap();
        assert_eq!(v.expose(), format!("{CANARY}\n").as_bytes());
        assert_eq!(redactor.scrub(CANARY), "***");
    }

    #[test]
    fn file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let resolver = SecretResolver::new(Redactor::new(), None);
        for contents in [&b""[..], b"\n", b"\r\n"] {
            let path = secret_file(dir.path(), "empty", contents, 0o600);
            let e = resolver.resolve(&SecretRef::file(&path)).unwrap_err();
            assert!(matches!(e, SecretError::Empty { .. }), "{e}");
            assert!(e.to_string().contains(&format!("file:{}", path.display())));
        }
        let missing = dir.path().join("missing");
        let msg = resolver
            .resolve(&SecretRef::file(&missing))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("cannot open secret file"), "{msg}");
        assert!(
            msg.contains(&format!("file:{}", missing.display())),
            "{msg}"
        );

        let big = vec![b'x'; MAX_SECRET_FILE_LEN as usize + 1];
        let path = secret_file(dir.path(), "big", &big, 0o600);
        let e = resolver.resolve(&SecretRef::file(path)).unwrap_err();
        assert!(matches!(e, SecretError::FileTooLarge { .. }), "{e}");
    }
}
