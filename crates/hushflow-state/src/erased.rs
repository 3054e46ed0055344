//! The managed suppression list of the state directory, `erased.list` (0600): one line per
//! keyed digest of a person erased or opted out by a data subject request, `KIND HEX` (the kind
//! of identifier it was made from: `email`, `phone`, `subject`; 64 hex characters).
//! Every run of every pipeline using this state directory drops records that give one of these
//! digests (`hushflow_policy::ErasedList`), so an erased person never comes back with the next
//! sync. The digests are made under the keyring key [`KEY_NAME`]; the file holds no identifier.

use hushflow_policy::IdentifierKind;
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

/// A digest on the list, with the kind of identifier it was made from.
pub type Entry = (IdentifierKind, [u8; 32]);

/// The digests on the list (empty when there is no list yet). A line that is not an entry is
/// an error naming its line: the list is only written by hushflow, so it was damaged.
pub fn load(state_dir: &Path) -> io::Result<Vec<Entry>> {
    let file = path(state_dir);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", file.display()))),
    };
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut digest = [0u8; 32];
        let entry = line.split_once(' ').and_then(|(kind, hex)| {
            let kind = IdentifierKind::parse(kind)?;
            hex::decode_to_slice(hex, &mut digest).ok()?;
            Some((kind, digest))
        });
        let Some(entry) = entry else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} line {}: not an entry; the list was damaged (restore it from a backup)",
                    file.display(),
                    n + 1
                ),
            ));
        };
        entries.push(entry);
    }
    Ok(entries)
}

/// Adds `entries` to the list (those already on it are left), replacing the file at once;
/// returns how many were new.
pub fn add(state_dir: &Path, entries: &[Entry]) -> io::Result<usize> {
    let line = |(kind, digest): &Entry| format!("{} {}", kind.as_str(), hex::encode(digest));
    let mut listed: HashSet<String> = load(state_dir)?.iter().map(line).collect();
    let before = listed.len();
    listed.extend(entries.iter().map(line));
    let added = listed.len() - before;
    if added > 0 {
        let mut lines: Vec<String> = listed.into_iter().collect();
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
        let (a, b) = (
            (IdentifierKind::Email, [1; 32]),
            (IdentifierKind::Subject, [2; 32]),
        );
        assert_eq!(add(dir.path(), &[a, b]).unwrap(), 2);
        assert_eq!(add(dir.path(), &[b]).unwrap(), 0);
        let listed = load(dir.path()).unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.contains(&a) && listed.contains(&b));
        std::fs::write(path(dir.path()), "email nothex\n").unwrap();
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }
}
