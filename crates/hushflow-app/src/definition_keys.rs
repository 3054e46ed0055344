//! Where the key that signs pipeline definitions lives. By default it is a file in the state
//! directory (`definition.key`, 0600), made the first time a scheduler, `trigger` or a worker
//! needs it: on one machine the scheduler and its workers share the state directory, and so the
//! key pair, with no configuration. Elsewhere the signing key is a secret reference
//! (`--definition-key`, `HUSHFLOW_DEFINITION_KEY`) and workers are given only its public key
//! (`--definition-public-key`, `HUSHFLOW_DEFINITION_PUBLIC_KEY`).

use crate::{Error, Result};
use hushflow_scheduler::DefinitionSigner;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The default signing key's file in the state directory.
pub const KEY_FILE: &str = "definition.key";

/// The state directory's signing key, if it has one.
pub fn read(path: &Path) -> Result<Option<DefinitionSigner>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let bytes = zeroize::Zeroizing::new(bytes);
            DefinitionSigner::from_secret(&bytes)
                .map(Some)
                .map_err(|e| Error::failed(format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::failed(format!("{}: {e}", path.display()))),
    }
}

/// The state directory's signing key, made now if it has none. Two processes making it at once
/// agree on one: the key is written to a private temporary file and linked into place, and the
/// one that loses the race reads the winner's.
pub fn load_or_create(path: &Path) -> Result<DefinitionSigner> {
    if let Some(signer) = read(path)? {
        return Ok(signer);
    }
    let signer = DefinitionSigner::generate().map_err(Error::failed)?;
    let tmp = temporary(path);
    let written = write_new(&tmp, &signer);
    let linked = written.and_then(|()| {
        std::fs::hard_link(&tmp, path).or_else(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Ok(()),
            _ => Err(Error::failed(format!("{}: {e}", path.display()))),
        })
    });
    let _ = std::fs::remove_file(&tmp);
    linked?;
    read(path)?.ok_or_else(|| Error::failed(format!("{}: vanished", path.display())))
}

/// Writes a new signing key to `path` (created 0600; an existing file is never replaced).
pub fn create(path: &Path) -> Result<DefinitionSigner> {
    let signer = DefinitionSigner::generate().map_err(Error::failed)?;
    write_new(path, &signer)?;
    Ok(signer)
}

fn temporary(path: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}-{n}", std::process::id()));
    path.with_file_name(name)
}

fn write_new(path: &Path, signer: &DefinitionSigner) -> Result<()> {
    let mut file = crate::files::create_private(path)?;
    let secret = signer.secret_base64();
    file.write_all(secret.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::failed(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_directory_key_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        assert!(read(&path).unwrap().is_none());
        let first = load_or_create(&path).unwrap();
        let again = load_or_create(&path).unwrap();
        assert_eq!(first.public_key(), again.public_key());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Racing processes agree on one key.
        let racing = dir.path().join("racing.key");
        let keys: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create(&racing).unwrap().public_key().to_string()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| k == &keys[0]), "{keys:?}");
        // `create` never replaces a file.
        assert!(create(&path).is_err());
        assert_eq!(
            read(&path).unwrap().unwrap().public_key(),
            first.public_key()
        );
    }
}
