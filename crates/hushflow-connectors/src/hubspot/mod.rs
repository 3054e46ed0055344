//! HubSpot CRM contacts (API v3), over the shared REST layer ([`crate::http`]).
//!
//! - The source reads contacts with `GET /crm/v3/objects/contacts` paging on `after` (a full
//!   load), or, with `incremental = true`, only those modified since the last run with
//!   `POST /crm/v3/objects/contacts/search`: `lastmodifieddate` from the saved position up to
//!   the sync start, sorted by `hs_object_id`, and, because search stops at 10,000 results a
//!   query, restarted with `hs_object_id` greater than the last one seen when `after` nears
//!   that cap (so any number of contacts sharing one timestamp are read once each). Only the
//!   properties the policy reads are requested.
//! - The sink upserts with `POST /crm/v3/objects/contacts/batch/upsert` on `id_property`, 100
//!   contacts a request; contacts HubSpot refuses one by one (a 207 answer's `errors`) are
//!   quarantined with the reason's category, never HubSpot's message (which quotes values).
//! - Auth: a private-app token, or an OAuth refresh token with the app's client id and secret,
//!   all by secret reference. Rate limits: a client-side limiter (HubSpot's documented 100
//!   requests per 10 s, search 5 a second), `X-HubSpot-RateLimit-*` headers pause it, a 429 is
//!   retried after its `Retry-After`, and a 429 of the `DAILY` policy stops the run at once,
//!   its position kept for the next run.
//!
//! - Data subject requests find a person's contacts with the search API and erase them with
//!   the GDPR delete (`rows.rs`).
//!
//! See docs/connectors/hubspot.md for the keys and the position's format.

mod client;
mod config;
mod rows;
mod sink;
mod source;
#[cfg(test)]
mod tests;

pub use config::{HubSpotSinkConfig, HubSpotSourceConfig};
pub use sink::HubSpotSink;
pub use source::HubSpotSource;
