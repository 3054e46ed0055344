//! Task kinds that run in the app layer rather than the engine: `sql` (statements on a
//! database, in one transaction). A sync task is the engine's run, a `gc` task the staging
//! store's clean-up.

pub mod sql;
