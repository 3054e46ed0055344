//! What the tests of several crates share, so that each does not carry its own copy: a
//! PostgreSQL database per test ([`pg::Database`]); a real server per test
//! ([`service::Service`]: OpenBao, moto, Prism as a validating proxy, [`prism`], and Airflow's
//! execution API, [`airflow`]); and a
//! stateful fake HubSpot ([`hubspot::FakeHubSpot`]) and Salesforce
//! ([`salesforce::FakeSalesforce`]) for Prism to stand in front of.
//!
//! A test dependency only: nothing in a shipped crate may depend on it.

pub mod airflow;
mod fake_http;
pub mod hubspot;
pub mod pg;
pub mod prism;
pub mod salesforce;
pub mod service;
