//! SQLite databases. The sink creates its table on first use, keyed on the pipeline's record
//! key, and upserts (or appends) one transaction per batch, so that a run can be repeated and a
//! failed batch leaves nothing half-written.

mod config;
mod sink;
#[cfg(test)]
mod tests;

pub use config::{SqliteMode, SqliteSinkConfig};
pub use sink::SqliteSink;
