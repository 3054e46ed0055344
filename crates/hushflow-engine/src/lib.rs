//! The data plane: runs a validated [`hushflow_spec::Plan`] (source → policy → sink),
//! quarantining bad records, staging the source encrypted when asked, and replaying a
//! quarantine. Writes into the state directory only through `hushflow-state`.
//!
//! Must not depend on the scheduler or on anything that parses command lines.

pub mod partition;
pub mod replay;
pub mod runner;
pub mod staging;
mod workers;

pub use hushflow_core::Withdrawal;
pub use hushflow_policy::{KeyMaterial, ResolvedKey};
pub use partition::{Partition, PartitionError};
pub use runner::{Counts, Outcome, Replay, RunContext, RunError, RunReport, check, run};
