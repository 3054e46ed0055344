//! Replacing a small file all at once: the new contents go to a temporary file beside the
//! target (mode 0600, created by `tempfile`, so a unique name and no clash with another writer),
//! which is synced, renamed over the target and made durable by syncing the directory. A reader
//! sees the old file or the new one, never a part of either; a writer that fails removes its
//! temporary file.
//!
//! This is the one copy of that sequence for the state directory (cursors, the audit head
//! anchor, quarantine sidecars) and the app's definition key. It lives in this crate, the
//! lowest that all of those depend on. `hushflow-crypto` sits below it (this crate uses the
//! keyring), and the one crate below both, `hushflow-secrets`, holds secrets and nothing else
//! (`hushflow-core` does no I/O, and the keyring does not use it); so the keyring keeps its
//! own staged write (the same steps, split around the audit intent it records in between).
//! The engine's staged segments and their manifest are written without a sync each, on
//! purpose (see `staging`).

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A new version of `target` being written to a temporary file in its directory; nothing is in
/// place until [`AtomicFile::commit`]. Dropped without a commit, it removes the temporary file.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    temp: tempfile::NamedTempFile,
}

impl AtomicFile {
    /// Creates the temporary file `.NAME.<random>.tmp` in `target`'s directory, readable and
    /// writable by its owner only.
    pub fn create(target: &Path) -> io::Result<AtomicFile> {
        let temp = tempfile::Builder::new()
            .prefix(&temp_prefix(target))
            .suffix(TEMP_SUFFIX)
            .rand_bytes(RANDOM_CHARS)
            .tempfile_in(parent(target))?;
        // Created 0600 by `tempfile`; a umask such as 0277 would take the owner's write bit, so
        // the mode is set outright.
        temp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))?;
        Ok(AtomicFile {
            target: target.to_path_buf(),
            temp,
        })
    }

    /// The temporary file's path (for messages).
    pub fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    /// Syncs what was written so far to disk. [`AtomicFile::commit`] does this too; a caller
    /// that must know the contents are durable before it does something else calls it first.
    pub fn sync(&self) -> io::Result<()> {
        self.temp.as_file().sync_all()
    }

    /// Syncs the file, renames it over the target and syncs the directory, so that the new
    /// version survives a crash.
    pub fn commit(self) -> io::Result<()> {
        self.sync()?;
        let AtomicFile { target, temp } = self;
        // On failure the temporary file comes back inside the error and is removed on drop.
        temp.persist(&target).map_err(|e| e.error)?;
        sync_dir(parent(&target))
    }

    /// As [`AtomicFile::commit`], but never replaces a file: when `target` exists, fails with
    /// [`io::ErrorKind::AlreadyExists`] and leaves it as it is.
    pub fn commit_new(self) -> io::Result<()> {
        self.sync()?;
        let AtomicFile { target, temp } = self;
        temp.persist_noclobber(&target).map_err(|e| e.error)?;
        sync_dir(parent(&target))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.temp.as_file_mut().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.temp.as_file_mut().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.temp.as_file_mut().flush()
    }
}

/// Replaces `target` with `bytes` at once (see [`AtomicFile`]); the file is 0600.
pub fn write(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = AtomicFile::create(target)?;
    file.write_all(bytes)?;
    file.commit()
}

/// Removes the temporary files of `target` that writers killed before their commit left
/// behind; returns how many. Only for a caller that holds whatever lock serializes the writers
/// of `target` (the audit log's write lock, for its head): a live writer's file would go too.
pub fn remove_leftovers(target: &Path) -> io::Result<usize> {
    let prefix = temp_prefix(target);
    let Some(prefix) = prefix.to_str() else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in fs::read_dir(parent(target))? {
        let entry = entry?;
        let name = entry.file_name();
        let is_leftover = name.to_str().is_some_and(|n| {
            n.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX))
                .is_some_and(|random| {
                    random.len() == RANDOM_CHARS
                        && random.bytes().all(|b| b.is_ascii_alphanumeric())
                })
        });
        if is_leftover {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

const TEMP_SUFFIX: &str = ".tmp";
/// Random characters in a temporary file's name (`tempfile` picks them from `[A-Za-z0-9]`).
const RANDOM_CHARS: usize = 16;

/// `.NAME.`: what a temporary file of `target` is named before its random part.
fn temp_prefix(target: &Path) -> std::ffi::OsString {
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(target.file_name().unwrap_or_default());
    prefix.push(".");
    prefix
}

/// The directory a target is in: `.` for a bare file name.
fn parent(target: &Path) -> &Path {
    match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_target_whole_and_private_leaving_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("head.json");
        fs::write(&target, "old contents, longer than the new ones").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();

        let mut file = AtomicFile::create(&target).unwrap();
        let temp = file.temp_path().to_path_buf();
        let name = temp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(".head.json.") && name.ends_with(".tmp"),
            "{name}"
        );
        assert_eq!(temp.parent(), Some(dir.path()));
        file.write_all(b"new").unwrap();
        assert_eq!(
            fs::read(&target).unwrap(),
            b"old contents, longer than the new ones"
        );
        file.commit().unwrap();

        assert_eq!(fs::read(&target).unwrap(), b"new");
        let mode = fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(names(dir.path()), ["head.json"]);

        write(&target, b"newer").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"newer");
        assert_eq!(names(dir.path()), ["head.json"]);
    }

    #[test]
    fn an_uncommitted_file_is_removed_and_the_target_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("cursor.json");
        fs::write(&target, "old").unwrap();
        let mut file = AtomicFile::create(&target).unwrap();
        file.write_all(b"half").unwrap();
        drop(file);
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["cursor.json"]);
    }

    #[test]
    fn commit_new_never_replaces_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("signing.key");
        let mut first = AtomicFile::create(&target).unwrap();
        first.write_all(b"first").unwrap();
        let mut second = AtomicFile::create(&target).unwrap();
        second.write_all(b"second").unwrap();
        first.commit_new().unwrap();
        let e = second.commit_new().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&target).unwrap(), b"first");
        assert_eq!(names(dir.path()), ["signing.key"]);
    }

    #[test]
    fn leftovers_of_killed_writers_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("audit.head");
        fs::write(&target, "head").unwrap();
        // What a writer killed before its commit leaves (`forget` keeps the file on disk).
        for _ in 0..2 {
            let mut file = AtomicFile::create(&target).unwrap();
            file.write_all(b"half").unwrap();
            std::mem::forget(file);
        }
        for other in [
            ".audit.head.tmp",
            ".audit.head.short.tmp",
            ".audit.head.db.0123456789abcdef.tmp",
            ".other.0123456789abcdef.tmp",
            "audit.head.0123456789abcdef.tmp",
        ] {
            fs::write(dir.path().join(other), "not ours").unwrap();
        }
        assert_eq!(names(dir.path()).len(), 8);
        assert_eq!(remove_leftovers(&target).unwrap(), 2);
        assert_eq!(
            names(dir.path()),
            [
                ".audit.head.db.0123456789abcdef.tmp",
                ".audit.head.short.tmp",
                ".audit.head.tmp",
                ".other.0123456789abcdef.tmp",
                "audit.head",
                "audit.head.0123456789abcdef.tmp",
            ]
        );
        assert_eq!(remove_leftovers(&target).unwrap(), 0);
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("absent").join("f.json");
        assert_eq!(
            write(&target, b"x").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
