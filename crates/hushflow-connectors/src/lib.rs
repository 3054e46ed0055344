//! The connectors that move records in and out of hushflow: a source reads a file into columnar
//! [`Batch`](hushflow_core::Batch)es and a sink writes batches to a file or a database.
//!
//! Connectors only move records. They know nothing of the privacy policy, and they never put a
//! record's value in an error or a reject reason: problems are named by file, line and field.
//! Malformed input does not stop a source; it comes back as a
//! [`Rejected`](hushflow_core::Rejected) record for the engine to quarantine.
//!
//! Every connector is a folder with the same files: `config.rs` (the `[source]` or `[sink]`
//! table of a pipeline file, implementing [`SourceConfig`]/[`SinkConfig`]), `source.rs` and/or
//! `sink.rs`, and `tests.rs` (a source with much to it splits further: CSV's has `cutter.rs` and
//! `decode.rs`). `registry.rs` is the one list of them; the rest of hushflow
//! reaches a connector through those two traits only. Each family is a Cargo feature.
//!
//! Must not depend on the policy, the spec or the engine: connectors know nothing of privacy.
//!
//! - CSV: [`csv::CsvSource`], [`csv::CsvSink`]
//! - JSON lines, one object per line: [`jsonl::JsonlSource`], [`jsonl::JsonlSink`]
//! - SQLite, upserting on the pipeline's key or appending: [`sqlite::SqliteSink`]
//! - HubSpot CRM contacts, over the shared REST layer [`http`]: [`hubspot::HubSpotSource`],
//!   [`hubspot::HubSpotSink`]
//! - Salesforce sObjects by SOQL and Bulk API 2.0, over the same layer:
//!   [`salesforce::SalesforceSource`], [`salesforce::SalesforceSink`]
//!
//! File sinks write to a private temporary file beside the target and rename it over the target
//! only in [`Sink::finish`](hushflow_core::Sink::finish), so a failed run never leaves a
//! half-written file where the user expects results.

// The helpers shared by connectors are partly unused when a build leaves some families out.
#![cfg_attr(
    not(all(
        feature = "csv",
        feature = "jsonl",
        feature = "sqlite",
        feature = "postgres",
        feature = "hubspot",
        feature = "salesforce"
    )),
    allow(dead_code, unused_imports)
)]

#[cfg(not(any(
    feature = "csv",
    feature = "jsonl",
    feature = "sqlite",
    feature = "postgres",
    feature = "hubspot",
    feature = "salesforce"
)))]
compile_error!(
    "hushflow-connectors needs at least one connector feature (csv, jsonl, sqlite, postgres, hubspot, salesforce)"
);

#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod column_types;
mod config;
mod fields;
mod file;
#[cfg(feature = "http")]
pub mod http;
pub mod registry;
mod rows;
#[cfg(test)]
mod testing;

pub use config::{
    ConfigProblem, Connection, Connections, CredentialSaver, RawDecoder, SaverHandle, SinkConfig,
    SinkContext, SourceConfig, SourceContext,
};
pub use fields::{MAX_NAME_CHARS, name_looks_like_data};
pub use file::check_target;
pub use rows::{FoundRow, RowMatch, SinkRows};
// The connectors' modules are declared in the registry, beside their `type` words, so that
// adding one touches that file and the connector's own folder only.
pub use registry::*;
