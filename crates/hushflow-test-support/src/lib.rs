//! What the tests of several crates share, so that each does not carry its own copy: for now a
//! PostgreSQL database per test ([`pg::Database`]).
//!
//! A test dependency only: nothing in a shipped crate may depend on it.

pub mod pg;
