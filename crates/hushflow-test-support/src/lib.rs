//! What the tests of several crates share, so that each does not carry its own copy: a
//! PostgreSQL database per test ([`pg::Database`]) and a real secret-store server per test
//! ([`service::Service`]: OpenBao, moto).
//!
//! A test dependency only: nothing in a shipped crate may depend on it.

pub mod pg;
pub mod service;
