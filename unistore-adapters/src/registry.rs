//! From a URL to a backend. Adding a backend = one module, one feature, one arm here.

use std::sync::Arc;
use std::time::Duration;

use unistore_core::{
    Catalog, ControlStore, Error, Result, ResultsReader, ResultsSink, RunId, TableManager, TableRef,
    TableType, TargetPool,
};

use crate::redact_url;

/// What opening a target needs besides its URL.
#[derive(Debug, Clone)]
pub struct TargetOptions {
    /// The run; backends tag sessions with it (`application_name`, `QUERY_TAG`).
    pub run_id: RunId,
    /// The table under test (Snowflake resolves the table type from it).
    pub table: TableRef,
    /// The declared table type, if any. A declared type that does not match the real table is
    /// an error (raised by the table manager's `profile`).
    pub declared_type: Option<TableType>,
    /// How long opening one session may take, all of it: TCP connect, TLS, authentication
    /// and session set-up. A server that accepts connections but never answers fails with a
    /// `Timeout` error naming the host instead of hanging.
    pub connect_timeout: Duration,
    /// Longest a single statement of the load may run before the server cancels it (counted
    /// as a `Timeout` error). `None`: no limit beyond the server's own.
    pub statement_timeout: Option<Duration>,
}

/// Default for [`TargetOptions::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl TargetOptions {
    /// Options with the default timeouts.
    pub fn new(run_id: RunId, table: TableRef, declared_type: Option<TableType>) -> Self {
        TargetOptions {
            run_id,
            table,
            declared_type,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            statement_timeout: None,
        }
    }
}

/// An opened target: a pool of sessions and the table manager for the table's type.
#[derive(Clone)]
pub struct OpenedTarget {
    /// Backend name (`sqlite`, `postgres`, `snowflake`).
    pub kind: &'static str,
    /// Sessions to the database under test.
    pub pool: Arc<dyn TargetPool>,
    /// The manager for the table's type.
    pub manager: Arc<dyn TableManager>,
}

impl std::fmt::Debug for OpenedTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedTarget")
            .field("kind", &self.kind)
            .field("table_type", &self.manager.table_type())
            .finish()
    }
}

/// A results store: the write side and the read side.
#[derive(Clone)]
pub struct ResultsStore {
    /// Write side.
    pub sink: Arc<dyn ResultsSink>,
    /// Read side.
    pub reader: Arc<dyn ResultsReader>,
}

impl std::fmt::Debug for ResultsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResultsStore")
    }
}

fn scheme(url: &str) -> Result<&str> {
    if let Some(id) = url.strip_prefix("connection:") {
        return Err(Error::invalid(format!(
            "`connection:{id}` names a connection stored in unistore-server, which resolves it when it \
             starts a run; here give the database URL itself (--target postgres://user@host/db)"
        )));
    }
    url.split_once("://").map(|(s, _)| s).ok_or_else(|| {
        Error::invalid(format!(
            "`{}` is not a URL: use sqlite:///path/file.db, postgres://user@host/db or snowflake://...",
            redact_url(url)
        ))
    })
}

fn unsupported(kind: &str, scheme: &str) -> Error {
    Error::invalid(format!(
        "no {kind} backend for `{scheme}://` in this build: supported are {}",
        supported_schemes().join(", ")
    ))
}

/// URL schemes compiled into this build.
#[allow(clippy::vec_init_then_push)] // each push is behind its own feature
pub fn supported_schemes() -> Vec<&'static str> {
    let mut v = Vec::new();
    #[cfg(feature = "sqlite")]
    v.push("sqlite://");
    #[cfg(feature = "snowflake")]
    v.push("snowflake://");
    #[cfg(feature = "postgres")]
    v.extend(["postgres://", "postgresql://"]);
    v
}

/// Opens the database under test.
pub async fn open_target(url: &str, options: &TargetOptions) -> Result<OpenedTarget> {
    match scheme(url)? {
        #[cfg(feature = "sqlite")]
        "sqlite" => crate::sqlite::open_target(url, options).await,
        #[cfg(feature = "snowflake")]
        "snowflake" => crate::snowflake::open_target(url, options).await,
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => crate::postgres::open_target(url, options).await,
        other => Err(unsupported("target", other)),
    }
}

/// Opens the catalog of a target, to list its databases, schemas and tables. The URL is the
/// target's (a password in it is accepted, as [`open_target`] accepts it); nothing is listed
/// until a method is called, but the connection settings are checked here.
pub async fn open_catalog(url: &str) -> Result<Arc<dyn Catalog>> {
    match scheme(url)? {
        #[cfg(feature = "sqlite")]
        "sqlite" => crate::sqlite::open_catalog(url).await,
        #[cfg(feature = "snowflake")]
        "snowflake" => crate::snowflake::open_catalog(url).await,
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => crate::postgres::open_catalog(url).await,
        other => Err(unsupported("catalog", other)),
    }
}

/// Opens a results store.
pub async fn open_results(url: &str) -> Result<ResultsStore> {
    match scheme(url)? {
        #[cfg(feature = "sqlite")]
        "sqlite" => crate::sqlite::open_results(url).await,
        #[cfg(feature = "snowflake")]
        "snowflake" => crate::snowflake::open_results(url).await,
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => crate::postgres::open_results(url).await,
        other => Err(unsupported("results", other)),
    }
}

/// Opens a control store.
pub async fn open_control(url: &str) -> Result<Arc<dyn ControlStore>> {
    match scheme(url)? {
        #[cfg(feature = "sqlite")]
        "sqlite" => crate::sqlite::open_control(url).await,
        #[cfg(feature = "snowflake")]
        "snowflake" => crate::snowflake::open_control(url).await,
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => crate::postgres::open_control(url).await,
        other => Err(unsupported("control", other)),
    }
}

/// Creates the results and control tables of a store from `sql/schema/BACKEND/` (what an
/// operator would run by hand). Idempotent. The embedded SQLite store creates its tables when
/// opened, so for `sqlite://` this just opens it.
pub async fn apply_schema(url: &str) -> Result<()> {
    match scheme(url)? {
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            open_results(url).await?;
            open_control(url).await.map(|_| ())
        }
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => crate::postgres::apply_schema(url).await,
        #[cfg(feature = "snowflake")]
        "snowflake" => crate::snowflake::apply_schema(url).await,
        other => Err(unsupported("results", other)),
    }
}

/// Connects to a database and runs a trivial query; returns the server's version (for a
/// connection test). Fails with the backend's classified error (`Connect`, `Permission`,
/// `Timeout`, ...), whose message never holds the password.
pub async fn ping(url: &str) -> Result<String> {
    match scheme(url)? {
        #[cfg(feature = "sqlite")]
        "sqlite" => crate::sqlite::ping(url).await,
        #[cfg(feature = "snowflake")]
        "snowflake" => crate::snowflake::ping(url).await,
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => crate::postgres::ping(url).await,
        other => Err(unsupported("target", other)),
    }
}
