//! SQLite: the embedded default for results and control, and a target for demo and local runs.
//!
//! - [`SqliteTargetPool`] and [`SqliteTableManager`] benchmark a table in an existing SQLite file.
//!   The user's file is opened read-write but never created, and no persistent setting of it
//!   (journal mode, page size, ...) is changed.
//! - [`SqliteResultsStore`] and [`SqliteControlStore`] keep the tool's own results and control
//!   tables in a file the tool owns (created on first use, schema from `sql/schema/sqlite/`).
//! - [`SqliteCatalog`] lists the schemas and tables of a file, for a table picker.
//! - [`demo`] creates the demo database, the only table the tool ever creates.
//!
//! rusqlite is blocking, so every call runs on tokio's blocking pool: the async runtime threads
//! that drive the load never wait on SQLite.

mod catalog;
pub mod config;
mod control;
pub mod demo;
mod pool;
mod sink;
mod tables;

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::ErrorCode;
use unistore_core::{Catalog, ControlStore, Error, ErrorKind, Result, TableType};

use crate::registry::{OpenedTarget, ResultsStore, TargetOptions};

pub use catalog::SqliteCatalog;
pub use config::SqliteConfig;
pub use control::SqliteControlStore;
pub use pool::{SqliteTargetPool, SqliteTargetSession};
pub use sink::SqliteResultsStore;
pub use tables::SqliteTableManager;

/// How long a connection waits for a lock held by another connection before it reports
/// `BUSY` (mapped to [`ErrorKind::Conflict`]).
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens an SQLite target: a pool of sessions on the file and the table manager for it.
///
/// The file must exist: a missing file is `ErrorKind::NotFound` (the tool never creates a user's
/// database). A declared table type other than `sqlite` is `ErrorKind::InvalidInput`.
pub async fn open_target(url: &str, options: &TargetOptions) -> Result<OpenedTarget> {
    TableType::check_declared(options.declared_type, TableType::Sqlite, &options.table)?;
    let config = SqliteConfig::from_url(url)?;
    let manager = SqliteTableManager::open(&config).await?;
    let pool = SqliteTargetPool::new(config).with_statement_timeout(options.statement_timeout);
    Ok(OpenedTarget { kind: "sqlite", pool: Arc::new(pool), manager: Arc::new(manager) })
}

/// Opens the catalog of an SQLite file (which must exist: a missing file is `NotFound`).
pub async fn open_catalog(url: &str) -> Result<Arc<dyn Catalog>> {
    let config = SqliteConfig::from_url(url)?;
    Ok(Arc::new(SqliteCatalog::open(&config).await?))
}

/// Opens the database file read-only (it must exist) and returns `SQLite <version>`.
pub async fn ping(url: &str) -> Result<String> {
    let config = SqliteConfig::from_url(url)?;
    let path = config.path().to_path_buf();
    run_blocking("a connection test", move || {
        if !path.is_file() {
            return Err(Error::backend(
                ErrorKind::NotFound,
                format!("no SQLite database at {}: check the path", path.display()),
            ));
        }
        let conn = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| map_error(e, &format!("opening {}", path.display())))?;
        let version: String = conn
            .query_row("SELECT sqlite_version()", [], |row| row.get(0))
            .map_err(|e| map_error(e, &format!("querying {}", path.display())))?;
        Ok(format!("SQLite {version}"))
    })
    .await
}

/// Opens (and creates, with its schema, if needed) an SQLite results store.
pub async fn open_results(url: &str) -> Result<ResultsStore> {
    let config = SqliteConfig::from_url(url)?;
    let store = Arc::new(SqliteResultsStore::open(&config).await?);
    Ok(ResultsStore { sink: store.clone(), reader: store })
}

/// Opens (and creates, with its schema, if needed) an SQLite control store.
pub async fn open_control(url: &str) -> Result<Arc<dyn ControlStore>> {
    let config = SqliteConfig::from_url(url)?;
    Ok(Arc::new(SqliteControlStore::open(&config).await?))
}

/// Runs blocking SQLite work on tokio's blocking pool.
pub(crate) async fn run_blocking<T, F>(what: &'static str, f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        Error::backend(ErrorKind::Other, format!("SQLite task for {what} did not finish: {e}"))
    })?
}

/// Opens (creating it and its directory if needed) one of the tool's own store files and applies
/// `schema` (idempotent `CREATE ... IF NOT EXISTS` statements).
///
/// Unlike a user's database, this file belongs to the tool, so it is put in WAL mode: readers (the
/// UI) then never block the writer (a running benchmark), and the reverse.
pub(crate) fn open_store_database(
    path: &std::path::Path,
    schema: &str,
    what: &str,
) -> Result<rusqlite::Connection> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::PermissionDenied {
                ErrorKind::Permission
            } else {
                ErrorKind::Connect
            };
            Error::backend(
                kind,
                format!(
                    "cannot create the directory {} for the {what} store: {e}; choose another \
                     location (UNISTORE_DATA_DIR or the store URL)",
                    parent.display()
                ),
            )
        })?;
    }
    let context = format!("opening the {what} store {}", path.display());
    let conn = rusqlite::Connection::open(path).map_err(|e| map_error(e, &context))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| map_error(e, &context))?;
    let mode: String =
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(|e| map_error(e, &context))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::debug!(path = %path.display(), mode, "the store file stays in its journal mode");
    }
    // WAL with NORMAL sync is durable across application crashes, which is what a results file
    // needs; only a power loss can drop the last transactions.
    conn.execute_batch("PRAGMA synchronous = NORMAL").map_err(|e| map_error(e, &context))?;
    conn.execute_batch(schema)
        .map_err(|e| map_error(e, &format!("creating the {what} tables in {}", path.display())))?;
    Ok(conn)
}

/// Maps a rusqlite error into the core error, classified by SQLite's result code, with a message
/// that names the problem and, where there is one, the fix. `context` says what was being done.
/// The rusqlite error is kept as the source (SQLite's words and the SQL text; no secret).
pub(crate) fn map_error(e: rusqlite::Error, context: &str) -> Error {
    let (code, extended, detail) = match &e {
        rusqlite::Error::SqliteFailure(err, msg) => {
            (Some(err.code), Some(err.extended_code), msg.clone().unwrap_or_else(|| err.to_string()))
        }
        rusqlite::Error::SqlInputError { error, msg, .. } => {
            (Some(error.code), Some(error.extended_code), msg.clone())
        }
        other => (None, None, other.to_string()),
    };
    let lower = detail.to_ascii_lowercase();
    let (kind, hint) = match code {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => (
            ErrorKind::Conflict,
            "another connection holds a lock on the database; retry, or lower the number of \
             writing connections",
        ),
        Some(ErrorCode::ConstraintViolation) => {
            (ErrorKind::Constraint, "a constraint (primary key, unique, not null, check) rejected the row")
        }
        Some(ErrorCode::NotADatabase) => {
            (ErrorKind::Connect, "the file is not an SQLite database: check the path in the sqlite:// URL")
        }
        Some(ErrorCode::CannotOpen) => (
            ErrorKind::Connect,
            "the database file cannot be opened: check that it exists and that its directory is \
             readable and writable",
        ),
        Some(
            ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::AuthorizationForStatementDenied,
        ) => (
            ErrorKind::Permission,
            "the database (or its directory) is not writable by this user: fix the file \
             permissions, or run read-only query kinds only",
        ),
        // SQLITE_ERROR is every SQL error: only its text tells a missing table from bad syntax.
        Some(ErrorCode::Unknown)
            if lower.contains("no such table")
                || lower.contains("no such column")
                || lower.contains("unknown database") =>
        {
            (ErrorKind::NotFound, "check the table and column names")
        }
        Some(ErrorCode::Unknown)
            if lower.contains("syntax error")
                || lower.contains("incomplete input")
                || lower.contains("unrecognized token") =>
        {
            (ErrorKind::Syntax, "check the SQL text (custom SQL uses `?` placeholders)")
        }
        _ => (ErrorKind::Other, ""),
    };
    let message = if hint.is_empty() {
        format!("SQLite error while {context}: {detail}")
    } else {
        format!("SQLite error while {context}: {detail} ({hint})")
    };
    let error = Error::backend(kind, message);
    let error = match extended {
        Some(code) => error.with_code(code.to_string()),
        None => error,
    };
    error.with_source(e)
}

/// Timestamps in the tool's own tables: RFC 3339 UTC with nanoseconds, fixed width, so that text
/// order is time order and values round-trip exactly.
pub(crate) fn format_stored_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Parses a timestamp written by [`format_stored_time`].
pub(crate) fn parse_stored_time(s: &str, column: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|e| {
        Error::backend(
            ErrorKind::Other,
            format!("stored {column} value `{s}` is not an RFC 3339 timestamp: {e}"),
        )
    })
}

/// Counters are `u64` in the model and `INTEGER` (i64) in SQLite; values beyond `i64::MAX`
/// saturate instead of wrapping negative.
pub(crate) fn to_sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Reads back a counter written by [`to_sql_int`].
pub(crate) fn from_sql_int(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// JSON columns are written by this tool; a value that does not parse means a newer or damaged
/// store.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        Error::backend(
            ErrorKind::Other,
            format!(
                "stored {column} cannot be read ({e}): the results file may have been written by \
                 another version of the tool"
            ),
        )
    })
}

/// Serializes a value for a JSON column.
pub(crate) fn to_json<T: serde::Serialize>(value: &T, what: &str) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::backend(ErrorKind::Other, format!("cannot serialize {what}: {e}")))
}

/// One connection to one of the tool's own store files (results or control), shared by the
/// store's calls, which run on the blocking pool one at a time.
#[derive(Debug, Clone)]
pub(crate) struct StoreConnection {
    config: config::SqliteConfig,
    conn: Arc<std::sync::Mutex<rusqlite::Connection>>,
}

impl StoreConnection {
    /// Opens the file (creating it, its directory and the tables of `schema` if needed).
    pub(crate) async fn open(
        config: &config::SqliteConfig,
        schema: &'static str,
        what: &'static str,
    ) -> Result<Self> {
        let path = config.path.clone();
        let conn = run_blocking("open store", move || open_store_database(&path, schema, what)).await?;
        Ok(StoreConnection { config: config.clone(), conn: Arc::new(std::sync::Mutex::new(conn)) })
    }

    /// The store's file.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.config.path
    }

    /// Runs `f` with the connection on the blocking pool.
    pub(crate) async fn with_conn<T, F>(&self, what: &'static str, f: F) -> Result<T>
    where
        F: FnOnce(&mut rusqlite::Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let conn = self.conn.clone();
        run_blocking(what, move || {
            let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
    }
}
