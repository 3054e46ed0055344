//! Identity and access: who may do what, over the HTTP API and the dashboard.
//!
//! - [`Role`]s as Airflow users know them (Viewer ⊂ User ⊂ Op ⊂ Admin) and the
//!   [`Permission`]s they hold: one matrix, [`Role::lowest_with`], printed in `docs/access.md`.
//! - [`Grant`]s: an extra permission (everywhere or on one pipeline), or a limit of a user's
//!   role to some pipelines.
//! - [`Principal`]: a signed-in user or a token holder; [`Principal::may`] answers every check.
//! - [`AccessError`]: why a check or an identity action failed, naming no secret.

mod error;
mod matrix;
mod permission;
mod principal;
mod role;

pub use error::AccessError;
pub use matrix::matrix_markdown;
pub use permission::{Permission, UnknownPermission};
pub use principal::{Grant, Principal};
pub use role::{Role, UnknownRole};

#[cfg(test)]
mod tests;
