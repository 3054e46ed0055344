//! The managed suppression list of the state directory, `erased.list` (0600): one keyed digest
//! (64 hex characters) per line for each person erased or opted out by a data subject request.
//! Every run of every pipeline using this state directory drops records that give one of these
//! digests (`hushflow_policy::ErasedList`), so an erased person never comes back with the next
//! sync. The digests are made under the keyring key [`KEY_NAME`]; the file holds no identifier.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

/// The list's file in the state directory.
pub const FILE: &str = "erased.list";

/// The keyring key the list's digests are made under (created by the first request).
pub const KEY_NAME: &str = "hushflow-erased";

/// The secret reference of [`KEY_NAME`], under which a run finds the list's key among its keys.
pub fn key_reference() -> String {
    format!("keyring:{KEY_NAME}")
}

/// Where the list of `state_dir` is.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// The digests on the list (empty when there is no list yet). A line that is not a digest is
/// an error naming its line: the list is only written by hushflow, so it was damaged.
pub fn load(state_dir: &Path) -> io::Result<HashSet<[u8; 32]>> {
    let file = path(state_dir);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", file.display()))),
    };
    let mut digests = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut digest = [0u8; 32];
        hex::decode_to_slice(line, &mut digest).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} line {}: not a digest; the list was damaged (restore it from a backup)",
                    file.display(),
                    n + 1
                ),
            )
        })?;
        digests.insert(digest);
    }
    Ok(digests)
}

/// Adds `digests` to the list (those already on it are left), replacing the file at once;
/// returns how many were new.
pub fn add(state_dir: &Path, digests: &[[u8; 32]]) -> io::Result<usize> {
    let mut listed = load(state_dir)?;
    let before = listed.len();
    listed.extend(digests.iter().copied());
    let added = listed.len() - before;
    if added > 0 {
        let mut lines: Vec<String> = listed.iter().map(hex::encode).collect();
        lines.sort();
        let mut text = lines.join("\n");
        text.push('\n');
        crate::atomic_file::write(&path(state_dir), text.as_bytes())?;
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_added_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
        assert_eq!(add(dir.path(), &[[1; 32], [2; 32]]).unwrap(), 2);
        assert_eq!(add(dir.path(), &[[2; 32]]).unwrap(), 0);
        let listed = load(dir.path()).unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.contains(&[1; 32]));
        std::fs::write(path(dir.path()), "nope\n").unwrap();
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }
}
