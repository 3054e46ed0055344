//! Files an action writes for a person: new, and readable by their owner only.

use crate::{Error, Result};
use hushflow_state::atomic_file::AtomicFile;
use std::io;
use std::path::Path;

/// Writes a new file readable by its owner only, all at once: `write` fills a temporary file
/// beside it, which is moved into place only if no file is there yet. An existing file is never
/// replaced, and a failed write leaves nothing behind.
pub fn write_new_private(
    path: &Path,
    write: impl FnOnce(&mut AtomicFile) -> io::Result<()>,
) -> Result<()> {
    let refused = |e: io::Error| {
        Error::failed(format!(
            "{}: {e}; pick a new file name (an existing file is never replaced)",
            path.display()
        ))
    };
    let mut file = AtomicFile::create(path).map_err(refused)?;
    write(&mut file).map_err(|e| Error::failed(format!("{}: {e}", path.display())))?;
    file.commit_new().map_err(refused)
}
