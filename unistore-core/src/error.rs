//! The core error type and its classification.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Coarse classification of a failure. Workload errors are counted per kind in the metrics,
/// and the kind decides whether a failure is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ErrorKind {
    /// Could not reach or lost the connection to a server.
    Connect,
    /// A statement or connection attempt took too long.
    Timeout,
    /// Constraint violation: unique key, foreign key, not null, check.
    Constraint,
    /// Serialization failure, deadlock or lock conflict: the transaction lost a race.
    Conflict,
    /// Malformed SQL or a statement the backend does not understand.
    Syntax,
    /// Authentication or authorization failure.
    Permission,
    /// The backend asked the client to slow down.
    Throttled,
    /// A table, schema or column that does not exist.
    NotFound,
    /// The caller asked for something invalid (bad template, bad flag value).
    InvalidInput,
    /// The backend does not support the requested operation.
    Unsupported,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Every kind, in display order.
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Constraint,
        ErrorKind::Conflict,
        ErrorKind::Syntax,
        ErrorKind::Permission,
        ErrorKind::Throttled,
        ErrorKind::NotFound,
        ErrorKind::InvalidInput,
        ErrorKind::Unsupported,
        ErrorKind::Other,
    ];

    /// Stable upper-case name, as stored in the results schema.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "CONNECT",
            ErrorKind::Timeout => "TIMEOUT",
            ErrorKind::Constraint => "CONSTRAINT",
            ErrorKind::Conflict => "CONFLICT",
            ErrorKind::Syntax => "SYNTAX",
            ErrorKind::Permission => "PERMISSION",
            ErrorKind::Throttled => "THROTTLED",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::InvalidInput => "INVALID_INPUT",
            ErrorKind::Unsupported => "UNSUPPORTED",
            ErrorKind::Other => "OTHER",
        }
    }

    /// Index into [`ErrorKind::ALL`], used for per-kind counters without a map.
    pub fn index(self) -> usize {
        ErrorKind::ALL.iter().position(|k| *k == self).unwrap_or(ErrorKind::ALL.len() - 1)
    }

    /// Whether an operation that failed this way may succeed when tried again.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Conflict | ErrorKind::Throttled)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A driver's own error, kept as the [`source`](std::error::Error::source) of a backend error.
pub type DriverError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error type of `unistore-core` and of every adapter.
///
/// Messages are written for the person running the benchmark: they name the problem and, where
/// there is one, the fix. They never contain secrets; adapters redact connection strings before
/// they build an error, and attach as source only driver errors whose text carries no secret.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Invalid configuration, template or flag value.
    #[error("{0}")]
    InvalidInput(String),
    /// Reading a template or data file failed.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A template file could not be parsed.
    #[error("template {path} is malformed: {message}")]
    ParseTemplate {
        /// The template file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// The backend does not support an operation.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A failure reported by a backend (target database, results store or control store).
    #[error("{message}")]
    Backend {
        /// Classification of the failure.
        kind: ErrorKind,
        /// Human-readable message, free of secrets.
        message: String,
        /// The driver's own code, kept as the driver gave it (a PostgreSQL SQLSTATE such as
        /// `42P01`, a Snowflake error code such as `002003`, an SQLite extended result code such
        /// as `1555`), so that callers can map it without reading the message.
        code: Option<String>,
        /// The driver's own error, so that a caller can downcast it (`tokio_postgres::Error`,
        /// `rusqlite::Error`, ...) for what the kind and the code do not say.
        #[source]
        source: Option<DriverError>,
    },
}

/// Written by hand so that a driver's error shows as its `Display` chain, never as its `Debug`
/// form: a driver's `Debug` is not written for users and might, in some future version, print
/// fields (a request URL, a configuration) its `Display` leaves out.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidInput(message) => f.debug_tuple("InvalidInput").field(message).finish(),
            Error::ReadFile { path, source } => {
                f.debug_struct("ReadFile").field("path", path).field("source", source).finish()
            }
            Error::ParseTemplate { path, message } => {
                f.debug_struct("ParseTemplate").field("path", path).field("message", message).finish()
            }
            Error::Unsupported(message) => f.debug_tuple("Unsupported").field(message).finish(),
            Error::Backend { kind, message, code, source } => f
                .debug_struct("Backend")
                .field("kind", kind)
                .field("message", message)
                .field("code", code)
                .field("source", &source.as_deref().map(|e| display_chain(e)))
                .finish(),
        }
    }
}

/// An error and its sources, each by its `Display`, joined with `: `.
fn display_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

impl Error {
    /// An invalid-input error with the given message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }

    /// A backend error of the given kind.
    pub fn backend(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error::Backend { kind, message: message.into(), code: None, source: None }
    }

    /// The same error with the driver's own code attached (see [`Error::code`]). Only backend
    /// errors carry a code; any other error is returned unchanged.
    pub fn with_code(mut self, driver_code: impl Into<String>) -> Self {
        if let Error::Backend { code, .. } = &mut self {
            *code = Some(driver_code.into());
        }
        self
    }

    /// The same error with the driver's own error kept as its
    /// [`source`](std::error::Error::source), for callers that downcast it. The caller vouches
    /// that the driver error's `Display` chain holds no secret (see the type's documentation).
    /// Only backend errors carry a driver error; any other error is returned unchanged.
    pub fn with_source(mut self, driver_error: impl Into<DriverError>) -> Self {
        if let Error::Backend { source, .. } = &mut self {
            *source = Some(driver_error.into());
        }
        self
    }

    /// The same failure told in other words, for a caller that knows more than the adapter (which
    /// run already exists, which setting to raise): the kind, the driver's code and the driver's
    /// error are kept. An error that is not a backend error becomes one of its own kind.
    pub fn with_message(self, message: impl Into<String>) -> Self {
        match self {
            Error::Backend { kind, code, source, .. } => {
                Error::Backend { kind, message: message.into(), code, source }
            }
            other => Error::backend(other.kind(), message),
        }
    }

    /// The driver's own code, when the error came from a database driver that gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Backend { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// Classifies the error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidInput(_) | Error::ParseTemplate { .. } => ErrorKind::InvalidInput,
            Error::ReadFile { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                std::io::ErrorKind::PermissionDenied => ErrorKind::Permission,
                _ => ErrorKind::Other,
            },
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::Backend { kind, .. } => *kind,
        }
    }

    /// Whether the failed operation may succeed when tried again.
    pub fn is_transient(&self) -> bool {
        self.kind().is_transient()
    }
}

/// Result alias used throughout the project.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// A driver error with a cause of its own, as drivers have (an I/O error under a protocol
    /// error).
    #[derive(Debug, thiserror::Error)]
    #[error("driver failed")]
    struct DriverFailure {
        #[source]
        cause: std::io::Error,
    }

    fn failure() -> DriverFailure {
        DriverFailure { cause: std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer") }
    }

    #[test]
    fn errors_cross_threads() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Error>();
    }

    #[test]
    fn the_driver_error_is_the_source_and_downcasts() {
        let e = Error::backend(ErrorKind::Connect, "lost the connection")
            .with_code("08006")
            .with_source(failure());
        assert_eq!(e.kind(), ErrorKind::Connect);
        assert_eq!(e.code(), Some("08006"));
        assert_eq!(e.to_string(), "lost the connection");
        let source = e.source().expect("a source");
        let driver = source.downcast_ref::<DriverFailure>().expect("the driver's own type");
        assert_eq!(driver.cause.kind(), std::io::ErrorKind::ConnectionReset);
        // The chain continues below the driver's error.
        let below = source.source().expect("the driver's cause");
        assert!(below.downcast_ref::<std::io::Error>().is_some());
    }

    #[test]
    fn code_and_source_are_kept_in_either_order() {
        let e = Error::backend(ErrorKind::Other, "x").with_source(failure()).with_code("XX000");
        assert_eq!(e.code(), Some("XX000"));
        assert!(e.source().and_then(|s| s.downcast_ref::<DriverFailure>()).is_some());
    }

    #[test]
    fn a_reworded_error_keeps_kind_code_and_source() {
        let e = Error::backend(ErrorKind::Constraint, "duplicate key")
            .with_code("23505")
            .with_source(failure())
            .with_message("run 7 exists already");
        assert_eq!(e.to_string(), "run 7 exists already");
        assert_eq!((e.kind(), e.code()), (ErrorKind::Constraint, Some("23505")));
        assert!(e.source().and_then(|s| s.downcast_ref::<DriverFailure>()).is_some());
        let e = Error::invalid("bad").with_message("worse");
        assert_eq!((e.kind(), e.to_string().as_str()), (ErrorKind::InvalidInput, "worse"));
    }

    #[test]
    fn errors_without_a_driver_error_have_no_source() {
        assert!(Error::backend(ErrorKind::Other, "x").source().is_none());
        // Only backend errors carry a driver error.
        let e = Error::invalid("bad flag").with_source(failure());
        assert!(e.source().is_none());
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn debug_shows_the_source_by_its_display_chain() {
        #[derive(thiserror::Error)]
        #[error("request failed")]
        struct Chatty;
        impl fmt::Debug for Chatty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("Chatty { url: \"https://user:hunter2@example.invalid\" }")
            }
        }
        let e = Error::backend(ErrorKind::Connect, "cannot connect").with_source(Chatty);
        let debug = format!("{e:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("request failed") && debug.contains("cannot connect"), "{debug}");
        let debug = format!("{:?}", Error::backend(ErrorKind::Connect, "x").with_source(failure()));
        assert!(debug.contains("driver failed: reset by peer"), "{debug}");
    }
}
