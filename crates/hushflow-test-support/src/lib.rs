//! What the tests of several crates share, so that each does not carry its own copy: a
//! PostgreSQL database per test ([`pg::Database`]) and a real secret-store server per test
//! ([`service::Service`]: OpenBao, moto), a stateful fake HubSpot ([`hubspot::FakeHubSpot`]) and
//! Prism validating the traffic to it against an OpenAPI subset ([`prism`]).
//!
//! A test dependency only: nothing in a shipped crate may depend on it.

pub mod hubspot;
pub mod pg;
pub mod prism;
pub mod service;
