//! Errors: [`ServerError`] for starting the controller, [`ApiError`] for what a handler answers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// Why the controller cannot start serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A limit is zero or beyond its ceiling.
    #[error("invalid {name}: {message}")]
    InvalidLimit {
        /// The limit and its flag.
        name: &'static str,
        /// What is wrong and what to give instead.
        message: String,
    },
    /// The listen address does not resolve.
    #[error("cannot resolve the listen address {addr}: {source}; give host:port, e.g. 127.0.0.1:8080")]
    Resolve {
        /// The address as given.
        addr: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// Binding or listening failed.
    #[error(
        "cannot listen on {addr}: {source} (is another process using the port? port 0 picks a free one)"
    )]
    Bind {
        /// The address as given.
        addr: String,
        /// The socket error.
        source: std::io::Error,
    },
}

/// Classification of an [`ApiError`], serialized as `error.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ApiErrorKind {
    /// The request is malformed or names something invalid (a bad template, a bad id).
    BadRequest,
    /// What the request names does not exist.
    NotFound,
    /// The request conflicts with the current state (starting a run twice, stopping a
    /// finished run).
    Conflict,
    /// The request was not answered within the request timeout.
    Timeout,
    /// A dependency (the results store) did not answer.
    Unavailable,
    /// A bug: a handler panicked.
    Internal,
    /// The request carries no token, or a wrong one (`UNISTORE_TOKEN`).
    Unauthorized,
    /// The request came from another origin or named a host this controller does not serve.
    Forbidden,
}

/// A handler's error: the status code and `{ "error": { "kind": ..., "message": ... } }`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Classification.
    pub kind: ApiErrorKind,
    /// What went wrong, for a person. Never holds a secret.
    pub message: String,
    /// The database driver's own code when the error came from one (a SQLSTATE, a Snowflake
    /// error code), sent as `error.code`.
    pub code: Option<String>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, kind: ApiErrorKind, message: impl Into<String>) -> Self {
        Self { status, kind, message: message.into(), code: None }
    }
}

/// The body of every error response: `{"error": {"kind", "message", "code"?}}`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ApiError)]
pub(crate) struct ErrorBody<'a> {
    /// What went wrong.
    error: ErrorDetail<'a>,
}

/// An error's classification, message and, from a database, the driver's code.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ApiErrorDetail)]
pub(crate) struct ErrorDetail<'a> {
    /// Classification, for a program.
    kind: ApiErrorKind,
    /// What went wrong and what to do, for a person. Never holds a secret.
    message: &'a str,
    /// The database driver's own code (a SQLSTATE, a Snowflake error code), when the error came
    /// from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail { kind: self.kind, message: &self.message, code: self.code.as_deref() },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<unistore_core::Error> for ApiError {
    fn from(e: unistore_core::Error) -> Self {
        use unistore_core::ErrorKind as K;
        let (status, kind) = match e.kind() {
            K::NotFound => (StatusCode::NOT_FOUND, ApiErrorKind::NotFound),
            K::Conflict | K::Constraint => (StatusCode::CONFLICT, ApiErrorKind::Conflict),
            K::InvalidInput | K::Unsupported => (StatusCode::BAD_REQUEST, ApiErrorKind::BadRequest),
            K::Connect | K::Timeout | K::Throttled => {
                (StatusCode::SERVICE_UNAVAILABLE, ApiErrorKind::Unavailable)
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, ApiErrorKind::Internal),
        };
        let code = e.code().map(str::to_string);
        ApiError { code, ..ApiError::new(status, kind, e.to_string()) }
    }
}
