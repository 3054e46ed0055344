//! The state directory (`.hushflow/` by default): keyring, audit store, quarantine and run
//! state. It holds key material and quarantined personal data, so it is private to its owner.

use crate::audit::{AnchorKey, AuditError, AuditLog, AuditObserver};
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A state directory, opened (and made private) by [`StateDir::open`], with the key that tags
/// its audit head when the opener has one ([`StateDir::with_anchor_key`]).
#[derive(Clone)]
pub struct StateDir {
    root: PathBuf,
    /// Given by the front end that knows the master key (or a separate anchor secret), so that
    /// every append through [`StateDir::audit_log`] keeps the head's tag current.
    anchor_key: Option<AnchorKey>,
    /// Told of every record appended through [`StateDir::audit_log`] (the alert rules).
    observer: Option<std::sync::Arc<dyn AuditObserver>>,
}

impl std::fmt::Debug for StateDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDir")
            .field("root", &self.root)
            .field("anchor_key", &self.anchor_key)
            .field("observed", &self.observer.is_some())
            .finish()
    }
}

impl StateDir {
    /// Opens the state directory, creating it (mode 0700) if missing. A directory that group or
    /// others can read is tightened to 0700: it holds keys. A directory owned by another user
    /// is refused: its owner could replace the keyring or rewrite the audit log under us.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<StateDir> {
        let root = root.into();
        create_private_dir(&root)?;
        Ok(StateDir {
            root,
            anchor_key: None,
            observer: None,
        })
    }

    /// The same directory, whose audit log is opened with `key` (or without one, `None`): the
    /// key that tags the head anchor (see the `audit` module).
    pub fn with_anchor_key(mut self, key: Option<AnchorKey>) -> StateDir {
        self.anchor_key = key;
        self
    }

    /// The key that tags the audit head, if the opener gave one.
    pub fn anchor_key(&self) -> Option<&AnchorKey> {
        self.anchor_key.as_ref()
    }

    /// The same directory, whose audit logs tell `observer` of every record appended: every
    /// process of hushflow writes its audit records through here, so an observer installed by
    /// the front end sees them all (the app layer's alert rules).
    pub fn with_audit_observer(mut self, observer: std::sync::Arc<dyn AuditObserver>) -> StateDir {
        self.observer = Some(observer);
        self
    }

    /// The same directory without its observer (what an observer itself appends through, so
    /// that its own records do not come back to it).
    pub fn without_audit_observer(mut self) -> StateDir {
        self.observer = None;
        self
    }

    /// Opens the audit log (`audit.db`) with this directory's anchor key and observer.
    pub fn audit_log(&self) -> Result<AuditLog, AuditError> {
        let log = AuditLog::open(&self.root, self.anchor_key.clone())?;
        Ok(match &self.observer {
            Some(o) => log.observed_by(std::sync::Arc::clone(o)),
            None => log,
        })
    }

    /// The directory's path.
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

/// Creates `dir` (and its parents) private to us, or checks an existing one is ours and
/// tightens it to 0700.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = fs::metadata(dir)?;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is owned by uid {}, not by this user (uid {me}): a state directory holds \
                 keys and the audit log, so it must be your own; use one you own (or fix its \
                 owner with chown)",
                dir.display(),
                meta.uid()
            ),
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
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

/// The names of the positions the state directory keeps (`cursors/<name>.json`).
pub fn position_names(state: &StateDir) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(state.root().join("cursors")) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        let file = entry?.file_name();
        if let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".json")) {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// Removes the position kept under `name`, if there is one.
pub fn forget_position(state: &StateDir, name: &str) -> io::Result<()> {
    let path = state.root().join("cursors").join(format!("{name}.json"));
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Saves a position atomically (a temporary file renamed over the old one), 0600.
pub fn save_position(
    state: &StateDir,
    pipeline: &str,
    position: &hushflow_core::Position,
) -> io::Result<()> {
    let dir = state.root().join("cursors");
    create_private_dir(&dir)?;
    let path = dir.join(format!("{pipeline}.json"));
    let text = serde_json::json!({ "cursor": position.cursor, "key": position.key }).to_string();
    crate::atomic_file::write(&path, text.as_bytes())
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

    /// Changing a directory's owner needs root: elsewhere the test has nothing to set up.
    #[test]
    fn a_directory_owned_by_another_user_is_refused() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("state");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let other = if rustix::process::geteuid().as_raw() == 65534 {
            65533
        } else {
            65534
        };
        if std::os::unix::fs::chown(&root, Some(other), None).is_err() {
            eprintln!("skipped: changing the owner needs root");
            return;
        }
        let e = StateDir::open(&root).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        let message = e.to_string();
        assert!(
            message.contains(&format!("owned by uid {other}")) && message.contains("your own"),
            "{message}"
        );
        // Left as it was: not tightened, not taken over.
        let meta = fs::metadata(&root).unwrap();
        assert_eq!(meta.uid(), other);
        assert_eq!(meta.permissions().mode() & 0o777, 0o755);
        // The quarantine directory under a state directory is checked too.
        std::os::unix::fs::chown(&root, Some(rustix::process::geteuid().as_raw()), None).unwrap();
        let state = StateDir::open(&root).unwrap();
        fs::create_dir(root.join("quarantine")).unwrap();
        std::os::unix::fs::chown(root.join("quarantine"), Some(other), None).unwrap();
        assert!(state.quarantine_dir().is_err());
    }
}
