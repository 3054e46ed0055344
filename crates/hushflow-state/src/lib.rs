//! The state directory (`.hushflow/` by default) and what lives in it: the hash-chained audit
//! log, the encrypted quarantine and the per-subject key store. The keyring file is kept by
//! `hushflow-crypto`; this crate only knows where it is.
//!
//! Must not depend on the spec, the engine or the scheduler: every process that writes audit
//! records (a run, a key command, the scheduler's workers) uses this crate alone.

pub mod atomic_file;
pub mod audit;
pub mod dir;
pub mod erased;
pub mod quarantine;
pub mod seal;
pub mod subjects;

pub use dir::{StateDir, os_user};
