//! Orchestration, the way Airflow users know it: pipelines as DAGs of tasks, schedules and data
//! intervals, retries with backoff, pools, run history. The [`store`] keeps it all in SQLite
//! (one machine, no service) or PostgreSQL (schedulers and workers on many machines, claims
//! with `FOR UPDATE SKIP LOCKED`). The [`scheduler`] decides; [`worker`]s execute through an
//! [`Executor`] that the CLI provides, so this crate knows nothing of syncs or secrets.

pub mod clock;
pub mod definitions;
pub mod scheduler;
pub mod state;
pub mod store;
pub mod worker;

pub use clock::{Clock, FakeClock, SystemClock};
pub use definitions::{
    DefinitionPublicKey, DefinitionRef, DefinitionRefused, DefinitionSigner, DefinitionTrust,
};
pub use scheduler::{Scheduler, SchedulerOptions, TickReport, advance_after, advance_run};
pub use state::{RunState, TaskState};
pub use store::{Claim, Completed, FailedTask, NewRun, Store, StoreConfig, StoreError, TryOutcome};
pub use worker::{Executor, LiveTry, WorkerOptions, WorkerReport, run_worker};
