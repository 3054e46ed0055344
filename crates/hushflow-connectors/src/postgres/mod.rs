//! PostgreSQL. The source reads a table or a query, only the columns the pipeline needs, in
//! server-side cursor pages (bounded memory), incrementally after a stored position when it has
//! a `cursor` field. The sink bulk-loads each batch with COPY (into the table, or into a
//! temporary table merged with `INSERT … ON CONFLICT`), and records the source's position in the
//! same transaction, so that a crash at any point and a re-run load each record exactly once.
//!
//! Connections are TLS by rustls, with libpq's `sslmode` semantics (see [`connect`]).

mod config;
pub mod connect;
mod rows;
mod sink;
mod source;
mod sql;
#[cfg(test)]
mod tests;

pub use config::{PostgresMode, PostgresSinkConfig, PostgresSourceConfig, Tls};
pub use rows::PostgresRows;
pub use sink::PostgresSink;
pub use source::PostgresSource;
