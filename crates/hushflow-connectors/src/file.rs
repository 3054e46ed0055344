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

/// Checks that a sink's target is a regular file or does not exist yet. A device (`/dev/null`,
/// `/dev/full`), a FIFO, a socket or a directory there is an error naming the path: a file sink
/// renames its results over the target and a SQLite sink writes a database into it, so either
/// would replace or corrupt it. Symlinks are followed: a link to a regular file is fine (a file
/// sink replaces the link itself with its results and leaves the linked file alone), a link to
/// anything else is refused like its target. A target that cannot be looked at (no permission)
/// passes here; opening it reports the problem.
pub fn check_target(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::FileTypeExt;
    let kind = match fs::metadata(path) {
        Ok(meta) if meta.is_file() => return Ok(()),
        Ok(meta) => {
            let t = meta.file_type();
            if t.is_dir() {
                "a directory"
            } else if t.is_char_device() {
                "a character device"
            } else if t.is_block_device() {
                "a block device"
            } else if t.is_fifo() {
                "a FIFO (named pipe)"
            } else if t.is_socket() {
                "a socket"
            } else {
                "a special file"
            }
        }
        Err(_) => return Ok(()),
    };
    let link = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => " (through a symlink)",
        _ => "",
    };
    Err(Error::Destination {
        path: path.to_path_buf(),
        message: format!(
            "exists and is {kind}{link}, not a regular file; hushflow writes a sink's results to \
             a regular file and would replace it: name a new file (or an existing regular one)"
        ),
    })
}

/// Creates `path` as an empty private file unless it exists, so that a program which then opens
/// it (SQLite) does not create it with the default, world-readable mode. An existing target
/// must be a regular file ([`check_target`]).
pub(crate) fn create_private_if_absent(path: &Path) -> Result<(), Error> {
    check_target(path)?;
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
        check_target(target)?;
        create_parent(target)?;
        let dir = parent_of(target);
        remove_abandoned(dir, name);
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

    /// Makes the written file durable and renames it over the target, once the target is
    /// checked again: it may have become a special file while the run wrote.
    pub(crate) fn commit(mut self, file: File) -> Result<(), Error> {
        file.sync_all()
            .map_err(|e| Error::io(&self.target, "saving to disk", e))?;
        drop(file);
        check_target(&self.target)?;
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

/// Removes temporary files of `name` that a killed run left behind (`.NAME.PID-N.tmp`, whose
/// process is gone): they hold a partial copy of the output. A file of a live process, or one
/// whose name does not parse, is left alone.
fn remove_abandoned(dir: &Path, name: &std::ffi::OsStr) {
    let Some(name) = name.to_str() else {
        return;
    };
    let prefix = format!(".{name}.");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|r| r.strip_suffix(".tmp"))
        else {
            continue;
        };
        let Some(pid) = rest
            .split_once('-')
            .and_then(|(pid, n)| n.parse::<u64>().ok().and(pid.parse::<i32>().ok()))
        else {
            continue;
        };
        let gone = match rustix::process::Pid::from_raw(pid) {
            Some(pid) => matches!(
                rustix::process::test_kill_process(pid),
                Err(rustix::io::Errno::SRCH)
            ),
            None => false,
        };
        if gone {
            let _ = fs::remove_file(entry.path());
        }
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_runs_temporary_file_is_removed_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("o.csv");
        // A process id above Linux's maximum (2^22) is never alive.
        let abandoned = dir.path().join(".o.csv.99999999-0.tmp");
        let mine = dir
            .path()
            .join(format!(".o.csv.{}-999.tmp", std::process::id()));
        let other = dir.path().join(".p.csv.99999999-0.tmp");
        for f in [&abandoned, &mine, &other] {
            fs::write(f, "id,email\n1,a@example.com\n").unwrap();
        }
        let (pending, file) = PendingFile::create(&target).unwrap();
        pending.commit(file).unwrap();
        assert!(
            !abandoned.exists(),
            "a dead process's partial copy is removed"
        );
        assert!(mine.exists(), "a live process's file is left alone");
        assert!(other.exists(), "another target's file is left alone");
    }
    use std::os::unix::fs::FileTypeExt;

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn is_fifo(path: &Path) -> bool {
        fs::symlink_metadata(path).unwrap().file_type().is_fifo()
    }

    /// `/dev/null`, a FIFO, a directory, or a link to one, is never written or replaced.
    #[test]
    fn special_targets_are_refused_when_opened_and_again_before_the_rename() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let link = dir.path().join("null-link");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        for (target, kind) in [
            (fifo.as_path(), "a FIFO"),
            (link.as_path(), "a character device (through a symlink)"),
            (sub.as_path(), "a directory"),
            (Path::new("/dev/null"), "a character device"),
        ] {
            for e in [
                PendingFile::create(target).map(|_| ()).unwrap_err(),
                create_private_if_absent(target).unwrap_err(),
            ] {
                let e = e.to_string();
                assert!(
                    e.starts_with(&target.display().to_string())
                        && e.contains(kind)
                        && e.contains("not a regular file")
                        && e.contains("name a new file"),
                    "{e}"
                );
            }
        }
        assert!(is_fifo(&fifo));
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("/dev/null"));

        // The target became a FIFO while the run wrote: the rename does not replace it.
        let target = dir.path().join("out.csv");
        let (pending, file) = PendingFile::create(&target).unwrap();
        mkfifo(&target);
        let e = pending.commit(file).unwrap_err().to_string();
        assert!(e.contains("a FIFO"), "{e}");
        assert!(is_fifo(&target));
        // The temporary file is gone.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 4);

        // A regular file, or a link to one, is fine.
        fs::write(dir.path().join("real.csv"), "old").unwrap();
        std::os::unix::fs::symlink(dir.path().join("real.csv"), dir.path().join("link.csv"))
            .unwrap();
        for ok in ["real.csv", "link.csv", "new.csv"] {
            check_target(&dir.path().join(ok)).unwrap();
        }
    }
}
