//! Where a pipeline's paths really lead, and the directories they must stay out of.
//!
//! The state directory holds the audit log (and its head anchor), the keyring and the
//! quarantine, written through `hushflow-state` only. A pipeline that could name a file there
//! could rewrite the audit log with a `sql` task or a sink, or read the keyring as a source. So
//! every path a pipeline reads or writes (a source, a sink, a `sql` task's database, the
//! suppression list, a replay's `--out`) is [`resolve`]d the way the operating system will
//! find it and checked against [`Protected`] before anything is read, validation included.

use std::path::{Component, Path, PathBuf};

/// How many symlinks [`resolve`] follows before it stops (Linux's own limit).
const MAX_LINKS: usize = 40;

/// `path` as the operating system will find it: absolute, every symlink followed (a dangling
/// one too: a file created through it lands at its target), `.` and `..` applied. The part
/// that does not exist yet is appended as written: directories a sink creates are plain ones.
pub fn resolve(path: &Path) -> PathBuf {
    let absolute = match std::path::absolute(path) {
        Ok(p) => p,
        Err(_) => path.to_path_buf(),
    };
    resolve_from(&absolute, 0)
}

fn resolve_from(path: &Path, links: usize) -> PathBuf {
    if let Ok(real) = path.canonicalize() {
        return real;
    }
    // A dangling symlink: follow it by hand.
    if links < MAX_LINKS
        && let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.file_type().is_symlink()
        && let Ok(target) = std::fs::read_link(path)
    {
        let base = path.parent().unwrap_or(Path::new("/"));
        return resolve_from(&base.join(target), links + 1);
    }
    let mut components = path.components();
    let last = components.next_back();
    let parent = components.as_path();
    match last {
        Some(Component::Normal(name)) => resolve_from(parent, links).join(name),
        Some(Component::CurDir) => resolve_from(parent, links),
        Some(Component::ParentDir) => {
            let mut dir = resolve_from(parent, links);
            dir.pop();
            dir
        }
        // The root (which exists, so this is not reached) or an empty path.
        _ => path.to_path_buf(),
    }
}

/// Directories no path of a pipeline may resolve into: the state directory.
#[derive(Debug, Clone, Default)]
pub struct Protected {
    /// Each directory as given (for messages) and resolved.
    dirs: Vec<(PathBuf, PathBuf)>,
}

impl Protected {
    /// Protects nothing: for checks that have no state directory (tests, `hushflow sample`).
    pub fn nothing() -> Protected {
        Protected::default()
    }

    /// Protects the state directory at `root` (existing or not: it is resolved as it would be
    /// created).
    pub fn state_dir(root: &Path) -> Protected {
        Protected {
            dirs: vec![(root.to_path_buf(), resolve(root))],
        }
    }

    /// An error message when `path` resolves into (or onto) a protected directory. `what` names
    /// the path for the message ("the sink's file").
    pub fn check(&self, path: &Path, what: &str) -> Result<(), String> {
        if self.dirs.is_empty() {
            return Ok(());
        }
        let resolved = resolve(path);
        for (given, dir) in &self.dirs {
            if resolved.starts_with(dir) {
                let via = if resolved == path {
                    String::new()
                } else {
                    format!(" (it resolves to {})", resolved.display())
                };
                return Err(format!(
                    "{what} {}{via} is inside the state directory {}, which holds the audit \
                     log, the keyring and the quarantine; a pipeline may not read or write \
                     there: choose a path outside it",
                    path.display(),
                    given.display()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    // A test may unwrap: a panic is a failed test, with its message.
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolves_links_dots_and_missing_parts() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("state")).unwrap();
        std::fs::write(root.join("state/audit.db"), "").unwrap();
        symlink(root.join("state"), root.join("link")).unwrap();
        symlink(root.join("state/audit.db"), root.join("file-link")).unwrap();
        symlink(root.join("state/later.db"), root.join("dangling")).unwrap();
        symlink("dangling", root.join("dangling2")).unwrap();
        for (given, expected) in [
            ("state/audit.db", "state/audit.db"),
            ("link/audit.db", "state/audit.db"),
            ("file-link", "state/audit.db"),
            ("dangling", "state/later.db"),
            ("dangling2", "state/later.db"),
            ("new/../state/x", "state/x"),
            ("link/new/deeper/../x", "state/new/x"),
            ("./out/./a.csv", "out/a.csv"),
        ] {
            assert_eq!(resolve(&root.join(given)), root.join(expected), "{given}");
        }
    }

    #[test]
    fn the_state_directory_is_protected_however_it_is_reached() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir(root.join("state")).unwrap();
        symlink(root.join("state"), root.join("link")).unwrap();
        let protected = Protected::state_dir(&root.join("link/../state"));
        for inside in [
            "state",
            "state/audit.db",
            "link/audit.head",
            "out/../state/new/x.csv",
        ] {
            let e = protected
                .check(&root.join(inside), "the sink's file")
                .unwrap_err();
            assert!(
                e.starts_with("the sink's file") && e.contains("state directory"),
                "{e}"
            );
        }
        for outside in ["out/x.csv", "stateful/x.csv", "x.csv"] {
            protected
                .check(&root.join(outside), "the sink's file")
                .unwrap();
        }
        Protected::nothing()
            .check(&root.join("state/audit.db"), "x")
            .unwrap();
    }
}
