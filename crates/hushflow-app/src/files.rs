//! Files an action writes for a person: new, and readable by their owner only.

use crate::{Error, Result};
use std::path::Path;

/// Writes a new file readable by its owner only; an existing file is not replaced. Written in
/// place, not through `hushflow_state::atomic_file`: a file cut short (a full disk, a killed
/// process) stays where the person asked for it, in sight, rather than as a hidden temporary
/// file holding the same personal data or key.
pub fn create_private(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            Error::failed(format!(
                "{}: {e}; pick a new file name (an existing file is never replaced)",
                path.display()
            ))
        })
}
