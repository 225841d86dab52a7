//! The core error type and its classification.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Coarse classification of a failure. Workload errors are counted per kind in the metrics,
/// and the kind decides whether a failure is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

/// The error type of `unistore-core` and of every adapter.
///
/// Messages are written for the person running the benchmark: they name the problem and, where
/// there is one, the fix. They never contain secrets; adapters redact connection strings before
/// they build an error.
#[derive(Debug, thiserror::Error)]
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
    },
}

impl Error {
    /// An invalid-input error with the given message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }

    /// A backend error of the given kind.
    pub fn backend(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error::Backend { kind, message: message.into(), code: None }
    }

    /// The same error with the driver's own code attached (see [`Error::code`]).
    pub fn with_code(self, driver_code: impl Into<String>) -> Self {
        match self {
            Error::Backend { kind, message, .. } => {
                Error::Backend { kind, message, code: Some(driver_code.into()) }
            }
            other => other,
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
