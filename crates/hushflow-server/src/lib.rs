//! `hushflow serve`: the HTTP side of hushflow. One job: answer HTTP requests from people
//! (the server-rendered dashboard) and programs (the JSON API under `/api/v1`, described by an
//! OpenAPI 3.1 document generated from this code), each only with what its role allows.
//!
//! - [`routes`]: the one table of routes and the permission each needs; the router, the
//!   permission check and the OpenAPI test all read it.
//! - [`access`]: the seam to the app layer's access control (users, tokens, sessions, roles).
//! - `api` and `dashboard`: the handlers; `templates` and `static` hold the pages.
//! - [`ServeOptions`]: where to listen, TLS from PEM files, and the refusal to serve a
//!   non-loopback address in plain HTTP unless asked to.
//!
//! Every handler goes through `hushflow-app`'s actions and answers with its view types; none
//! reaches the state directory, the metadata store or the data plane directly. The actions are
//! blocking (SQLite, PostgreSQL's blocking client, files), so they run on tokio's blocking
//! pool. State is explicit ([`AppState`] in the router), never global.

pub mod access;
mod api;
mod auth;
mod dashboard;
mod error;
mod headers;
pub mod openapi;
mod options;
pub mod routes;
mod server;
mod state;
mod templates;
mod tls;

pub use error::ServeError;
pub use options::{ServeOptions, TlsFiles};
pub use server::{Running, serve, start};
pub use state::AppState;
