//! Salesforce sObjects (contacts, leads, any object by name), over the shared REST layer
//! ([`crate::http`]).
//!
//! - The source reads with the REST `query` resource
//!   (`GET /services/data/vXX.X/query?q=SOQL`, following `nextRecordsUrl`). The SOQL names only
//!   the fields the policy reads, each checked to be an identifier; with `incremental = true`
//!   it reads the window `SystemModstamp > position AND SystemModstamp <= run start`, ordered by
//!   `SystemModstamp, Id`, so a stopped run resumes after the last record it handed out.
//! - The sink upserts with Bulk API 2.0 ingest jobs (one a batch: create, upload the CSV, close,
//!   poll until `JobComplete`); rows in the job's `failedResults` are handed back as rejections
//!   with `sf__Error`'s status code only.
//! - For large objects, `api = "bulk"` runs the same SOQL as a Bulk API 2.0 query job (create,
//!   poll until `JobComplete`, read the CSV results following `Sforce-Locator`).
//! - Auth: the OAuth 2.0 refresh-token grant against `login_url` with the connected app's
//!   client id and secret, or the JWT bearer flow (an RS256 assertion signed with a private key,
//!   `jwt.rs`), all secrets by reference; the token endpoint's `instance_url` is the host
//!   requests go to.
//! - Limits: every answer's `Sforce-Limit-Info: api-usage=N/M` is read, and the run stops
//!   cleanly, keeping its position, when fewer than `api_reserve` requests of the org's daily
//!   allowance are left (other integrations share it); `REQUEST_LIMIT_EXCEEDED` stops it too.
//!   429 and 5xx are retried with backoff.
//!
//! - Data subject requests find a person's records with SOQL and delete them (`rows.rs`).
//!
//! Errors carry Salesforce's `errorCode` only, never its `message` (which can quote values).
//! See docs/connectors/salesforce.md for the keys and the position's format.

mod client;
mod config;
mod jwt;
mod rows;
mod sink;
mod soql;
mod source;
#[cfg(test)]
mod tests;

pub use config::{Api, SalesforceSinkConfig, SalesforceSourceConfig};
pub use sink::SalesforceSink;
pub use source::SalesforceSource;
