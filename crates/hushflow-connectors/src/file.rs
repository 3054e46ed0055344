//! Files that hold contact data: created private (mode 0600 on Unix), and for file sinks written
//! beside the target under a temporary name and renamed into place only when complete.

use hushflow_core::Error;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Tells temporary files of one process apart.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Options that create a file only readable and writable by its owner.
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// The directory a file lives in (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Creates the directory a file will live in, with its parents.
pub(crate) fn create_parent(path: &Path) -> Result<(), Error> {
    let parent = parent_of(path);
    fs::create_dir_all(parent).map_err(|e| Error::io(parent, "creating the directory", e))
}

/// Creates `path` as an empty private file unless it exists, so that a program which then opens
/// it (SQLite) does not create it with the default, world-readable mode.
pub(crate) fn create_private_if_absent(path: &Path) -> Result<(), Error> {
    create_parent(path)?;
    match private_options().open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io(path, "creating the file", e)),
    }
}

/// A file being written under a temporary name in its target's directory. [`PendingFile::commit`]
/// renames it over the target; dropping it uncommitted removes it, so that a failed run leaves
/// the target as it was.
#[derive(Debug)]
pub(crate) struct PendingFile {
    target: PathBuf,
    temp: PathBuf,
    committed: bool,
}

impl PendingFile {
    /// Creates the temporary file (and the target's directory) and returns it open for writing.
    pub(crate) fn create(target: &Path) -> Result<(PendingFile, File), Error> {
        let Some(name) = target.file_name() else {
            return Err(Error::Config(format!(
                "{}: a sink's path must name a file",
                target.display()
            )));
        };
        if target.is_dir() {
            return Err(Error::Destination {
                path: target.to_path_buf(),
                message: "is a directory; name a file to write instead".into(),
            });
        }
        create_parent(target)?;
        let dir = parent_of(target);
        let mut attempts = 0;
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let mut temp_name = std::ffi::OsString::from(".");
            temp_name.push(name);
            temp_name.push(format!(".{}-{n}.tmp", std::process::id()));
            let temp = dir.join(temp_name);
            match private_options().open(&temp) {
                Ok(file) => {
                    let pending = PendingFile {
                        target: target.to_path_buf(),
                        temp,
                        committed: false,
                    };
                    return Ok((pending, file));
                }
                // Left over by a process that had our id and was killed; pick another name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => {
                    attempts += 1;
                }
                Err(e) => return Err(Error::io(temp, "creating a temporary file", e)),
            }
        }
    }

    /// Makes the written file durable and renames it over the target.
    pub(crate) fn commit(mut self, file: File) -> Result<(), Error> {
        file.sync_all()
            .map_err(|e| Error::io(&self.target, "saving to disk", e))?;
        drop(file);
        fs::rename(&self.temp, &self.target)
            .map_err(|e| Error::io(&self.target, "moving the finished file into place", e))?;
        self.committed = true;
        // Make the rename itself durable; not every platform lets a directory be synced.
        #[cfg(unix)]
        if let Ok(dir) = File::open(parent_of(&self.target)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}
