//! The HTTP layer every REST connector (HubSpot, and Salesforce next) is built on, so that each
//! connector's `client.rs` holds only its API:
//!
//! - [`HttpClient`]: blocking `ureq` over rustls with the ring provider (no OpenSSL, no
//!   aws-lc), HTTPS with full verification (plain HTTP only to a loopback address, for tests
//!   and local fakes), a timeout on every request, no redirects (a redirect could carry a token
//!   elsewhere), bounded response bodies.
//! - [`retry`]: exponential backoff with full jitter on 429 and 5xx and on transport errors,
//!   honouring `Retry-After`; a connector's classifier decides what else is retried and what
//!   stops the run at once (HubSpot's daily limit).
//! - [`RateLimiter`]: a client-side token bucket sized per connector, which a connector can also
//!   pause from the server's own rate-limit headers.
//! - [`TokenSource`]: a static bearer token, or the OAuth 2.0 refresh-token grant (or the JWT
//!   bearer grant, RFC 7523) refreshed ahead
//!   of `expires_in` and again after a 401. Every token it holds is registered with the
//!   redactor, and `Authorization` headers are marked sensitive; no request header or body is
//!   ever logged by this module.
//!
//! The secret stores' client (`hushflow-secret-stores`' `http.rs`) shares the same choices
//! (ureq, ring, loopback-only HTTP, no redirects); it stays there for now so that crate does not
//! depend on the connectors.

mod client;
mod rate_limit;
pub mod retry;
mod token;
mod url;

pub use client::{Body, ClientOptions, HttpClient, Response, Verdict};
pub use rate_limit::RateLimiter;
pub use token::{MakeAssertion, OAuthRefresh, TokenSource, check_token};
pub use url::{check_url, is_loopback_url};
