//! The state directory (`.hushflow/` by default): keyring, audit store, quarantine and run
//! state. It holds key material and quarantined personal data, so it is private to its owner.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Opens the state directory, creating it (mode 0700) if missing. A directory that group or
    /// others can read is tightened to 0700: it holds keys.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<StateDir> {
        let root = root.into();
        create_private_dir(&root)?;
        Ok(StateDir { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `quarantine/`, created on first use.
    pub fn quarantine_dir(&self) -> io::Result<PathBuf> {
        let dir = self.root.join("quarantine");
        create_private_dir(&dir)?;
        Ok(dir)
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The committed position of an incremental source whose sink keeps none (a file sink):
/// `cursors/<pipeline>.json`, written after the sink's file is in place.
pub fn load_position(
    state: &StateDir,
    pipeline: &str,
) -> io::Result<Option<hushflow_core::Position>> {
    let path = state
        .root()
        .join("cursors")
        .join(format!("{pipeline}.json"));
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let damaged = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: damaged", path.display()),
        )
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| damaged())?;
    match (value["cursor"].as_str(), value["key"].as_str()) {
        (Some(cursor), Some(key)) => Ok(Some(hushflow_core::Position {
            cursor: cursor.to_string(),
            key: key.to_string(),
        })),
        _ => Err(damaged()),
    }
}

/// Saves a position atomically (a temporary file renamed over the old one), 0600.
pub fn save_position(
    state: &StateDir,
    pipeline: &str,
    position: &hushflow_core::Position,
) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = state.root().join("cursors");
    create_private_dir(&dir)?;
    let path = dir.join(format!("{pipeline}.json"));
    let tmp = dir.join(format!(".{pipeline}.json.tmp"));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    let text = serde_json::json!({ "cursor": position.cursor, "key": position.key }).to_string();
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, &path)
}

/// The user a record in the audit log is attributed to: the OS user running hushflow.
pub fn os_user() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(name) = std::env::var(var)
            && !name.is_empty()
        {
            return name;
        }
    }
    format!("uid:{}", rustix::process::geteuid().as_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_directories_and_tightens_loose_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("state");
        let state = StateDir::open(&root).unwrap();
        let q = state.quarantine_dir().unwrap();
        for dir in [&root, &q] {
            assert_eq!(
                fs::metadata(dir).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        StateDir::open(&root).unwrap();
        assert_eq!(
            fs::metadata(&root).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
