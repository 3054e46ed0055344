//! What goes wrong: starting the server ([`ServeError`]), and answering a request
//! ([`ApiError`]: a status and a message for a person, never a secret or a record value).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why the server did not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The options are refused (a non-loopback address without TLS, unreadable PEM files).
    #[error("{0}")]
    Invalid(String),
    /// Binding, serving or the runtime failed.
    #[error("{0}")]
    Failed(String),
}

/// A request's failure, as the API answers it: `{"error": "…"}` with its status.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person; never a secret or a record value.
    pub error: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "sign in, or send an API token as `Authorization: Bearer TOKEN`",
        )
    }

    pub fn forbidden(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            format!("Your role does not allow {what}."),
        )
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

/// The app layer's kinds as statuses: a bad request 400, a missing thing 404, a failure 500.
impl From<hushflow_app::Error> for ApiError {
    fn from(e: hushflow_app::Error) -> ApiError {
        let status = match e.kind {
            hushflow_app::ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            hushflow_app::ErrorKind::NotFound => StatusCode::NOT_FOUND,
            hushflow_app::ErrorKind::Failed => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, "request failed: {}", self.message);
        }
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}
