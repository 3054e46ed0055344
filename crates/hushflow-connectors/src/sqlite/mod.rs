//! SQLite databases. The source reads a table or a query (incrementally with a `cursor`). The
//! sink creates its table on first use, keyed on the pipeline's record key, and upserts, appends
//! or replaces, one transaction per batch with the source's position, so that a run can be
//! repeated and a failed batch leaves nothing half-written.

mod config;
mod rows;
mod sink;
mod source;
#[cfg(test)]
mod tests;

pub use config::{SqliteMode, SqliteSinkConfig, SqliteSourceConfig};
pub use rows::SqliteRows;
pub use sink::SqliteSink;
pub use source::SqliteSource;
