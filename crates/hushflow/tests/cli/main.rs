//! The command line's integration tests: each runs the real `hushflow` binary in a private
//! temporary workspace. One test binary with a module per topic, so the workspace links one
//! test executable instead of one per file.

// A test may unwrap: a panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod access;
mod airflow;
mod audit_tamper;
mod bad_input;
mod canary;
#[cfg(all(feature = "hubspot", feature = "salesforce"))]
mod crm_dsr;
mod crosscheck;
mod dsr;
mod end_to_end;
mod erase;
#[cfg(feature = "hubspot")]
mod hubspot;
mod key_lifecycle;
mod monitoring;
mod orchestration;
mod partitioned;
mod policy_actions;
mod postgres;
mod replay;
#[cfg(feature = "salesforce")]
mod salesforce;
mod schema;
// Needs the networked stores, which a build without the default features leaves out.
#[cfg(all(feature = "vault", feature = "aws"))]
mod secret_stores;
#[cfg(feature = "server")]
mod serve;
mod special_files;
mod sqlite_sync;
mod staging;
mod state_paths;
mod tokens;
mod validate;
