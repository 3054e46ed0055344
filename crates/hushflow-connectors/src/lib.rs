//! The connectors that move records in and out of hushflow: a source reads a file into columnar
//! [`Batch`](hushflow_core::Batch)es and a sink writes batches to a file or a database.
//!
//! Connectors only move records. They know nothing of the privacy policy, and they never put a
//! record's value in an error or a reject reason: problems are named by file, line and field.
//! Malformed input does not stop a source; it comes back as a
//! [`Rejected`](hushflow_core::Rejected) record for the engine to quarantine.
//!
//! Every connector is a folder with the same files: `config.rs` (the `[source]` or `[sink]`
//! table of a pipeline file), `source.rs` and/or `sink.rs`, and `tests.rs`.
//!
//! - CSV: [`csv::CsvSource`], [`csv::CsvSink`]
//! - JSON lines, one object per line: [`jsonl::JsonlSource`], [`jsonl::JsonlSink`]
//! - SQLite, upserting on the pipeline's key or appending: [`sqlite::SqliteSink`]
//!
//! File sinks write to a private temporary file beside the target and rename it over the target
//! only in [`Sink::finish`](hushflow_core::Sink::finish), so a failed run never leaves a
//! half-written file where the user expects results.

pub mod csv;
mod fields;
mod file;
pub mod jsonl;
pub mod postgres;
pub mod sqlite;
#[cfg(test)]
mod testing;
