//! The app layer's error: a kind a front end maps to its own terms (the CLI to an exit code,
//! the HTTP API to a status) and a message for a person. Messages never hold a record value or
//! a secret.

use std::fmt::Display;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is wrong: a bad argument, a pipeline that does not validate.
    Invalid,
    /// The request names something that does not exist: a run, a task, a pipeline.
    NotFound,
    /// The request was fine, and carrying it out failed.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn invalid(message: impl Display) -> Error {
        Error {
            kind: ErrorKind::Invalid,
            message: message.to_string(),
        }
    }

    pub fn not_found(message: impl Display) -> Error {
        Error {
            kind: ErrorKind::NotFound,
            message: message.to_string(),
        }
    }

    pub fn failed(message: impl Display) -> Error {
        Error {
            kind: ErrorKind::Failed,
            message: message.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
