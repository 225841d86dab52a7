//! The Postgres family: PostgreSQL and servers that speak its protocol (Aurora, AlloyDB, Neon,
//! CockroachDB, YugabyteDB), on `tokio-postgres`.
//!
//! - [`PostgresConfig`]: the URL as libpq reads it, with libpq's environment (`PGHOST`,
//!   `PGPORT`, `PGUSER`, `PGDATABASE`, `PGPASSWORD`, `PGPASSFILE` / `~/.pgpass`, `PGSSLMODE`,
//!   `PGSSLROOTCERT`) filling what the URL leaves out.
//! - TLS: `sslmode` as in libpq ([`SslMode`]): `disable` and `allow` connect in plain,
//!   `prefer` (the default) uses TLS when the server offers it and plain otherwise, `require`
//!   encrypts without verifying the certificate (unless a root certificate is configured, as in
//!   libpq), `verify-ca` verifies the chain up to `sslrootcert` (or the bundled public roots),
//!   `verify-full` also the host name.
//! - Timeouts: opening a connection (TCP, TLS, login, session set-up; and preparing a
//!   session's statements) has a deadline, `connect_timeout=` in the URL or the caller's
//!   default (10 s); a stall fails with `ErrorKind::Timeout` naming the host and the phase. The
//!   load's statement timeout is the session's server-side `statement_timeout`.
//! - [`PostgresTargetPool`]: one dedicated connection per benchmark connection, statements
//!   prepared once per connection, parameters bound in the column's own binary format. A
//!   session's plain executes bypass the driver: the session writes the prepared statement's
//!   Bind/Execute/Sync and reads the answer itself, on the connection it shares with
//!   `tokio-postgres` (login, prepare and `RETURNING` stay with the driver), over TLS or plain
//!   TCP. Sessions over a Unix socket, to several hosts, with `hostaddr=` or
//!   `target_session_attrs=read-write` keep the driver's path.
//! - [`PostgresTableManager`]: profiles a table from `pg_catalog` (generated keys, indexed
//!   columns, triggers, foreign keys), with every catalog query bounded in time; issues no DDL.
//! - [`PostgresResultsStore`] and [`PostgresControlStore`]: results and control tables from
//!   `sql/schema/postgres/`, applied by the operator with [`apply_schema`].
//! - [`PostgresCatalog`]: lists databases, schemas and tables (with row estimates and primary
//!   keys) from the system catalogs, for a table picker.
//! - [`stats`]: `pg_stat_statements` snapshots around the measurement phase.
//!
//! ```no_run
//! # async fn demo() -> unistore_core::Result<()> {
//! use unistore_adapters::postgres;
//! postgres::apply_schema("postgres://postgres@127.0.0.1:5432/test?schema=unistore").await?;
//! let results = postgres::PostgresResultsStore::open("postgres://postgres@127.0.0.1:5432/test").await?;
//! # drop(results);
//! # Ok(())
//! # }
//! ```

mod catalog;
mod config;
mod connect;
mod control;
mod lean;
mod owned;
mod pgpass;
mod pool;
mod sink;
pub mod stats;
mod tables;
mod tls;

use std::io;
use std::sync::Arc;

use tokio_postgres::error::SqlState;
use unistore_core::{Catalog, ControlStore, Error, ErrorKind, Result};

pub use catalog::PostgresCatalog;
pub use config::{PasswordSource, PostgresConfig, DEFAULT_STORE_SCHEMA};
pub use control::PostgresControlStore;
pub use pool::{application_name, PgParam, PostgresSession, PostgresTargetPool};
pub use sink::PostgresResultsStore;
pub use stats::{
    pg_stat_statements_snapshot, server_stats_since, server_stats_snapshot, statement_stats_delta,
    ServerStats, ServerStatsBaseline, StatementStat,
};
pub use tables::{PostgresTableManager, DEFAULT_CATALOG_TIMEOUT};
pub use tls::SslMode;

use crate::registry::{OpenedTarget, ResultsStore, TargetOptions};

/// DDL of the results tables (`TEST_TEMPLATES`, `TEST_RESULTS`, `WORKER_METRICS_SNAPSHOTS`,
/// `QUERY_EXECUTIONS`).
pub const RESULTS_SCHEMA_SQL: &str = include_str!("../../../sql/schema/postgres/results.sql");
/// DDL of the control tables (`RUN_STATUS`, `RUN_CONTROL_EVENTS`, `WORKER_HEARTBEATS`).
pub const CONTROL_SCHEMA_SQL: &str = include_str!("../../../sql/schema/postgres/control.sql");

/// Opens a target: a pool of dedicated sessions and the table manager.
pub async fn open_target(url: &str, options: &TargetOptions) -> Result<OpenedTarget> {
    // A `connect_timeout` in the URL wins over the option's value.
    let config = PostgresConfig::from_url(url)?.with_default_connect_timeout(options.connect_timeout);
    let pool = PostgresTargetPool::new(config.clone(), options.run_id)
        .with_statement_timeout(options.statement_timeout);
    let manager = PostgresTableManager::connect(&config, options.declared_type).await?;
    Ok(OpenedTarget { kind: "postgres", pool: Arc::new(pool), manager: Arc::new(manager) })
}

/// Opens the catalog of the URL's server (connects to the URL's database).
pub async fn open_catalog(url: &str) -> Result<Arc<dyn Catalog>> {
    Ok(Arc::new(PostgresCatalog::connect(PostgresConfig::from_url(url)?).await?))
}

/// Connects (within the default connect timeout, unless the URL sets one) and returns
/// `PostgreSQL <server_version>`.
pub async fn ping(url: &str) -> Result<String> {
    let config = PostgresConfig::from_url(url)?.with_default_connect_timeout(crate::DEFAULT_CONNECT_TIMEOUT);
    let client = config.connect("unistore-connection-test").await?;
    let row = client
        .query_one("SHOW server_version", &[])
        .await
        .map_err(|e| map_error(e, &format!("querying {}", config.redacted_url())))?;
    let version: String = row
        .try_get(0)
        .map_err(|e| map_error(e, &format!("reading the version of {}", config.redacted_url())))?;
    Ok(format!("PostgreSQL {version}"))
}

/// Opens the results store (tables must exist: see [`apply_schema`]).
pub async fn open_results(url: &str) -> Result<ResultsStore> {
    let store = Arc::new(PostgresResultsStore::open(url).await?);
    Ok(ResultsStore { sink: store.clone(), reader: store })
}

/// Opens the control store (tables must exist: see [`apply_schema`]).
pub async fn open_control(url: &str) -> Result<Arc<dyn ControlStore>> {
    Ok(Arc::new(PostgresControlStore::open(url).await?))
}

/// Creates the schema named by `?schema=` (default `unistore`) and the results and control
/// tables in it, from `sql/schema/postgres/{results,control}.sql`. Idempotent. For a `setup`
/// command and for tests: stores never create tables implicitly.
pub async fn apply_schema(url: &str) -> Result<()> {
    let config = PostgresConfig::from_url(url)?;
    let client = config.connect("unistore-setup").await?;
    let schema = quote_ident(config.store_schema());
    let context = |file: &str| format!("applying sql/schema/postgres/{file} to {}", config.redacted_url());
    client
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}"))
        .await
        .map_err(|e| map_error(e, &context("(schema)")))?;
    client.batch_execute(RESULTS_SCHEMA_SQL).await.map_err(|e| map_error(e, &context("results.sql")))?;
    client.batch_execute(CONTROL_SCHEMA_SQL).await.map_err(|e| map_error(e, &context("control.sql")))?;
    Ok(())
}

/// Quotes an identifier with double quotes.
pub(crate) fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Checks that `tables` exist in the store schema; a missing one is a clear error naming the
/// file to apply.
pub(crate) async fn require_tables(
    client: &tokio_postgres::Client,
    config: &PostgresConfig,
    tables: &[&str],
    file: &str,
) -> Result<()> {
    let names: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = ANY($2)",
            &[&config.store_schema(), &names],
        )
        .await
        .map_err(|e| map_error(e, "checking the store tables"))?;
    let found: Vec<String> = rows.iter().filter_map(|r| r.try_get::<_, String>(0).ok()).collect();
    let missing: Vec<&str> = tables.iter().copied().filter(|t| !found.iter().any(|f| f == t)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::backend(
        ErrorKind::NotFound,
        format!(
            "table(s) {} missing in schema `{}` of {}: apply sql/schema/postgres/{file} first: \
             run `unistore-worker setup --results URL` (or: PGOPTIONS='-c search_path={}' psql URL \
             -f sql/schema/postgres/{file}, after CREATE SCHEMA {})",
            missing.join(", "),
            config.store_schema(),
            config.redacted_url(),
            config.store_schema(),
            quote_ident(config.store_schema()),
        ),
    ))
}

/// Classifies a SQLSTATE code.
pub fn sqlstate_kind(code: &str) -> ErrorKind {
    match code {
        "40001" | "40P01" | "55P03" => ErrorKind::Conflict,
        "57014" => ErrorKind::Timeout,
        "42501" => ErrorKind::Permission,
        "42P01" | "3F000" | "42703" | "42883" | "42704" | "3D000" => ErrorKind::NotFound,
        "42601" => ErrorKind::Syntax,
        // Administrator or crash shutdown: the connection is gone.
        "57P01" | "57P02" | "57P03" => ErrorKind::Connect,
        c if c.starts_with("23") => ErrorKind::Constraint,
        c if c.starts_with("08") => ErrorKind::Connect,
        c if c.starts_with("28") => ErrorKind::Permission,
        c if c.starts_with("53") => ErrorKind::Throttled,
        c if c.starts_with("42") => ErrorKind::Syntax,
        c if c.starts_with("22") => ErrorKind::InvalidInput,
        _ => ErrorKind::Other,
    }
}

/// Maps a driver error to the core error, with `context` (free of secrets) in front. The driver's
/// error is kept as the source: its `Display` chain carries the server's words and I/O errors,
/// never the connection string.
pub(crate) fn map_error(e: tokio_postgres::Error, context: &str) -> Error {
    if let Some(db) = e.as_db_error() {
        let fields = ServerFields {
            code: db.code().code(),
            message: db.message(),
            detail: db.detail(),
            hint: db.hint(),
        };
        return map_server_error(&fields, context).with_source(e);
    }
    let text = e.to_string();
    let io_kind = io_error_kind(&e);
    // The protocol parser's own kinds: a malformed message, not a failed socket.
    let socket_failed =
        io_kind.is_some_and(|k| !matches!(k, io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData));
    if e.is_closed() || socket_failed {
        return connection_lost(context, &text).with_source(e);
    }
    // The driver's error kind is private and a parameter's or column's codec error can be of any
    // type: the driver's fixed wording is the only marker.
    if text.starts_with("error serializing parameter") || text.starts_with("error deserializing") {
        let cause = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default();
        return Error::backend(ErrorKind::InvalidInput, format!("{context}: {text}: {cause}")).with_source(e);
    }
    if has_cause::<tokio::time::error::Elapsed>(&e) {
        return Error::backend(ErrorKind::Timeout, format!("{context}: {text}")).with_source(e);
    }
    Error::backend(ErrorKind::Other, format!("{context}: {text}")).with_source(e)
}

/// The parts of a server's ErrorResponse that the mapping reads, wherever it was parsed (the
/// driver's `DbError`, or the session's own hot path).
pub(crate) struct ServerFields<'a> {
    pub(crate) code: &'a str,
    pub(crate) message: &'a str,
    pub(crate) detail: Option<&'a str>,
    pub(crate) hint: Option<&'a str>,
}

/// Maps a server's error to the core error, with `context` in front (no source attached).
pub(crate) fn map_server_error(db: &ServerFields<'_>, context: &str) -> Error {
    let code = db.code;
    let mut message = format!("{context}: {} (SQLSTATE {code})", db.message);
    // 57014 is also a cancel; the server's message is the only thing that says which.
    if code == SqlState::QUERY_CANCELED.code() && db.message.contains("statement timeout") {
        message.push_str(
            "; the statement ran longer than the session's statement_timeout and the server cancelled it",
        );
    }
    if let Some(detail) = db.detail {
        message.push_str(&format!("; {detail}"));
    }
    if let Some(hint) = db.hint {
        message.push_str(&format!("; hint: {hint}"));
    }
    Error::backend(sqlstate_kind(code), message).with_code(code)
}

/// A connection that failed or was closed, in the words `map_error` uses for the driver's
/// closed connection (`text`: what the driver or the socket said).
pub(crate) fn connection_lost(context: &str, text: &str) -> Error {
    Error::backend(ErrorKind::Connect, format!("{context}: connection lost ({text})"))
}

/// An error and the errors under it, outermost first. An `std::io::Error` that wraps another
/// error hides it from `source()` (which skips to the wrapped error's own source), so the walk
/// looks inside it: that is where rustls's error sits under a failed handshake.
pub(crate) fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    let mut next = Some(error);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            Some(wrapped) => Some(wrapped as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
        Some(current)
    })
}

/// The first error of type `T` under `error` (itself included).
pub(crate) fn find_cause<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    causes(error).find_map(|cause| cause.downcast_ref::<T>())
}

fn has_cause<T: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    find_cause::<T>(error).is_some()
}

/// The kind of the first I/O error under `error`: what the socket said.
pub(crate) fn io_error_kind(error: &(dyn std::error::Error + 'static)) -> Option<io::ErrorKind> {
    find_cause::<io::Error>(error).map(io::Error::kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_core_kinds() {
        assert_eq!(sqlstate_kind("40001"), ErrorKind::Conflict);
        assert_eq!(sqlstate_kind("40P01"), ErrorKind::Conflict);
        assert_eq!(sqlstate_kind("23505"), ErrorKind::Constraint);
        assert_eq!(sqlstate_kind("23502"), ErrorKind::Constraint);
        assert_eq!(sqlstate_kind("08006"), ErrorKind::Connect);
        assert_eq!(sqlstate_kind("57P01"), ErrorKind::Connect);
        assert_eq!(sqlstate_kind("57014"), ErrorKind::Timeout);
        assert_eq!(sqlstate_kind("42501"), ErrorKind::Permission);
        assert_eq!(sqlstate_kind("28P01"), ErrorKind::Permission);
        assert_eq!(sqlstate_kind("42P01"), ErrorKind::NotFound);
        assert_eq!(sqlstate_kind("3F000"), ErrorKind::NotFound);
        assert_eq!(sqlstate_kind("42703"), ErrorKind::NotFound);
        assert_eq!(sqlstate_kind("42601"), ErrorKind::Syntax);
        assert_eq!(sqlstate_kind("53300"), ErrorKind::Throttled);
        assert_eq!(sqlstate_kind("XX000"), ErrorKind::Other);
    }
}
