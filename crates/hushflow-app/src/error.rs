//! The app layer's error: a kind a front end maps to its own terms (the CLI to an exit code,
//! the HTTP API to a status) and a message for a person. Messages never hold a record value or
//! a secret.

use std::fmt::Display;

/// What sort of failure an [`Error`] is, which a front end maps to an exit code or an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is wrong: a bad argument, a pipeline that does not validate.
    Invalid,
    /// The request names something that does not exist: a run, a task, a pipeline.
    NotFound,
    /// The request was fine, and carrying it out failed.
    Failed,
}

/// Why an action did not do what it was asked: a kind for the front end, a message for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// What sort of failure it is.
    pub kind: ErrorKind,
    /// What went wrong, for a person; never a record value or a secret.
    pub message: String,
}

impl Error {
    /// An [`ErrorKind::Invalid`] error: the request is wrong.
    pub fn invalid(message: impl Display) -> Error {
        Error {
            kind: ErrorKind::Invalid,
            message: message.to_string(),
        }
    }

    /// An [`ErrorKind::NotFound`] error: the request names something that does not exist.
    pub fn not_found(message: impl Display) -> Error {
        Error {
            kind: ErrorKind::NotFound,
            message: message.to_string(),
        }
    }

    /// An [`ErrorKind::Failed`] error: carrying out the request failed.
    pub fn failed(message: impl Display) -> Error {
        Error {
            kind: ErrorKind::Failed,
            message: message.to_string(),
        }
    }
}

/// An action's result, [`Error`] unless said otherwise.
pub type Result<T, E = Error> = std::result::Result<T, E>;
