//! What the user wrote: pipeline files (one sync, or a DAG of `[[task]]`s), their schedules,
//! and validation into a [`Plan`] before any data moves. `hushflow validate` is this crate.
//!
//! Reads the pipeline files and, to check the policy's fields, a CSV source's header; does no
//! other I/O and moves no record. Every path a pipeline names is checked against the
//! [`Protected`] directories (the state directory, which the caller names) before that. Must not depend on the engine, the state directory or the
//! scheduler: the scheduler depends on this crate for the `Dag` alone.

pub mod dag;
pub mod paths;
pub mod pipeline;
pub mod plan;
pub mod schedule;

pub use paths::Protected;
pub use pipeline::{OnError, SpecError};
pub use plan::Plan;
