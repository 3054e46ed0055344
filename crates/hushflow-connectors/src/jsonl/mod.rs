//! JSON lines files: one JSON object per line. The source keeps each value's kind (text, number,
//! boolean, null, nested JSON) so that a JSON lines or SQLite sink writes it back as it came; the
//! sink writes one object per row with its keys in output order and replaces its target
//! atomically when the run finishes.

mod config;
mod flat;
mod rows;
mod sink;
mod source;
#[cfg(test)]
mod tests;

pub use config::{JsonlSinkConfig, JsonlSourceConfig};
pub use rows::JsonlRows;
pub use sink::JsonlSink;
pub use source::{JsonlSource, MAX_LINE_BYTES};
