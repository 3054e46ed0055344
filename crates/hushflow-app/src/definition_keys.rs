//! Where the key that signs pipeline definitions lives. By default it is a file in the state
//! directory (`definition.key`, 0600), made the first time a scheduler, `trigger` or a worker
//! needs it: on one machine the scheduler and its workers share the state directory, and so the
//! key pair, with no configuration. Elsewhere the signing key is a secret reference
//! (`--definition-key`, `HUSHFLOW_DEFINITION_KEY`) and workers are given only its public key
//! (`--definition-public-key`, `HUSHFLOW_DEFINITION_PUBLIC_KEY`).

use crate::{Error, Result};
use hushflow_scheduler::DefinitionSigner;
use hushflow_state::atomic_file::AtomicFile;
use std::io::Write;
use std::path::Path;

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
/// agree on one: the key is written to a private temporary file and moved into place only if
/// no file is there yet, and the one that loses the race reads the winner's.
pub fn load_or_create(path: &Path) -> Result<DefinitionSigner> {
    if let Some(signer) = read(path)? {
        return Ok(signer);
    }
    let signer = DefinitionSigner::generate().map_err(Error::failed)?;
    let failed = |e: std::io::Error| Error::failed(format!("{}: {e}", path.display()));
    let mut file = AtomicFile::create(path).map_err(failed)?;
    write_key(&mut file, &signer).map_err(failed)?;
    match file.commit_new() {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(failed(e)),
    }
    read(path)?.ok_or_else(|| Error::failed(format!("{}: vanished", path.display())))
}

/// Writes a new signing key to `path` (created 0600; an existing file is never replaced).
pub fn create(path: &Path) -> Result<DefinitionSigner> {
    let signer = DefinitionSigner::generate().map_err(Error::failed)?;
    let mut file = crate::files::create_private(path)?;
    write_key(&mut file, &signer)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::failed(format!("{}: {e}", path.display())))?;
    Ok(signer)
}

fn write_key(out: &mut impl Write, signer: &DefinitionSigner) -> std::io::Result<()> {
    let secret = signer.secret_base64();
    out.write_all(secret.as_bytes())?;
    out.write_all(b"\n")
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
