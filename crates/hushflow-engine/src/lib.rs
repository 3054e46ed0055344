//! The engine: reads pipeline files, validates them into a [`Plan`] before any data moves, runs
//! plans (source → policy → sink, quarantining bad records), and keeps the state directory:
//! the keyring's home, the audit log and the quarantine. Only the engine writes the audit log.

pub mod audit;
pub mod dag;
pub mod pipeline;
pub mod plan;
pub mod quarantine;
pub mod replay;
pub mod runner;
pub mod schedule;
pub mod staging;
pub mod state;
pub mod subjects;
mod workers;

pub use hushflow_core::Withdrawal;
pub use hushflow_policy::KeyMaterial;
pub use pipeline::{OnError, SpecError};
pub use plan::Plan;
pub use runner::{Counts, Outcome, Replay, RunContext, RunError, RunReport, check, run};
pub use state::{StateDir, os_user};
