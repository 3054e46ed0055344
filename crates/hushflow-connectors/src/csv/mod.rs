//! CSV files. The source needs a header row, streams records with one reused buffer and copies
//! only the columns the pipeline needs; the sink writes a header of the output fields and
//! replaces its target atomically when the run finishes.
//!
//! Every value is text: an empty field is read as null, and null is written as an empty field.

mod config;
mod cutter;
mod decode;
mod rows;
mod sink;
mod source;
#[cfg(test)]
mod tests;

pub use config::{CsvSinkConfig, CsvSourceConfig};
pub use rows::CsvRows;
pub use sink::CsvSink;
pub use source::CsvSource;
