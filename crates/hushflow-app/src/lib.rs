//! The app layer: what hushflow can be asked to do, by whom, and what it answers. One job: turn
//! a request from any front end (the CLI today; the HTTP API and the Airflow provider next)
//! into the same actions on the state directory and the metadata store, record each in the
//! audit log with its [`Actor`], and answer with the same versioned [`views`], so there is one
//! JSON contract (`docs/json.md`).
//!
//! - [`Session`]: the state directory, the master key's reference, the redactor and where the
//!   metadata store is; its audit helpers take the [`Actor`] who acted.
//! - [`Actor`]: an OS user today; an API user or token, or an Airflow task later.
//! - [`access`]: roles, permissions, users, API tokens and sign-in sessions; every check of
//!   the HTTP API and the dashboard is [`access::Principal::may`].
//! - [`actions`]: typed actions, one module per topic; those that change state take an
//!   [`Actor`] and audit it.
//! - [`views`]: what actions answer with, versioned by [`views::VIEW_VERSION`].
//! - [`tasks`]: the `sql` task kind; [`webhook`]: failure notifications.
//! - [`alerts`]: alert rules judged as audit records are written, and their deliveries.
//! - [`monitor`]: following the audit log from a long-running process (metrics).
//! - [`definition_keys`]: the key that signs pipeline definitions, and the keys workers trust.
//! - [`secrets`]: the secret stores this build knows, registered in one place.
//! - [`Error`]: what went wrong, with a kind a front end maps to an exit code or HTTP status.
//!
//! This crate must not depend on `clap` or `axum` (or any other front end's crate): parsing
//! arguments, printing and routing belong to the front ends, which depend on this crate.

pub mod access;
pub mod actions;
mod actor;
pub mod alerts;
pub mod definition_keys;
mod error;
pub mod files;
pub mod monitor;
pub mod secrets;
mod session;
pub mod tasks;
pub mod views;
pub mod webhook;

pub use access::{AccessError, Grant, Permission, Principal, Role};
pub use actor::{ACTOR_ENV, Actor, ActorEnvError, ActorKind};
pub use error::{Error, ErrorKind, Result};
pub use session::Session;
