//! Snowflake: standard, hybrid and interactive tables as targets; results and a hybrid-table
//! control store.
//!
//! - [`SnowflakeTargetPool`]: one Snowflake session per benchmark connection, logins bounded by
//!   `login_parallelism`, `QUERY_TAG = unistore:run=<id>:phase=<phase>`, bound parameters.
//! - [`SnowflakeStandardTableManager`], [`SnowflakeHybridTableManager`],
//!   [`SnowflakeInteractiveTableManager`]: read-only verification, profiling and sampling.
//! - [`SnowflakeResultsStore`] and [`SnowflakeHybridControlStore`]: the tool's tables in
//!   `UNISTORE_BENCHMARK.TEST_RESULTS` (configurable), DDL in `sql/schema/snowflake/`.
//! - [`SnowflakeAccountCatalog`]: databases, schemas and tables (type, rows, key) for a table
//!   picker, read from `SHOW` statements.
//! - [`history`]: server-side figures from `QUERY_HISTORY` / `AGGREGATE_QUERY_HISTORY`.
//!
//! The client is `snowflake-connector-rs`: it binds parameters (hybrid tables reuse plans for
//! bound statements; literal SQL would be compiled on every call), takes a custom base URL
//! (PrivateLink, and the emulator in tests), cancels queries and supports key-pair auth. It stays
//! behind this module so another client could replace it. Its API requests go through our own
//! HTTP client ([`ConnectionFigures`] says how it used the network): kept-alive connections
//! shared by a target's sessions, explicit timeouts, one counted retry when the server closed a
//! kept-alive connection (a small patch of the crate, `patches/snowflake-connector-rs/`, makes
//! that possible).
//!
//! Timeouts: a login as a whole is bounded by the connect timeout, a benchmark statement by the
//! statement timeout (sent as `STATEMENT_TIMEOUT_IN_SECONDS`, so the server cancels it), the
//! tool's own statements (profiling, sampling, stores) by `query_timeout_s`; see
//! [`config`] for the URL parameters.

mod catalog;
pub mod config;
mod control;
pub mod history;
mod http;
mod pool;
mod sink;
mod tables;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use snowflake_connector_rs::{CellValue, DynamicRow};
use unistore_core::{Catalog, ControlStore, Error, ErrorKind, Result, RunId, TableType};

use crate::registry::{OpenedTarget, ResultsStore, TargetOptions};

pub use catalog::SnowflakeAccountCatalog;
pub use config::SnowflakeConfig;
pub use control::SnowflakeHybridControlStore;
pub use http::ConnectionFigures;
pub use pool::{query_tag, SnowflakeTargetPool, SnowflakeTargetSession};
pub use sink::SnowflakeResultsStore;
pub use tables::{
    SnowflakeHybridTableManager, SnowflakeInteractiveTableManager, SnowflakeStandardTableManager,
};

use pool::{Connector, SessionPool};
use tables::{ident, SnowflakeCatalog};

/// The DDL of the results tables (standard tables).
pub const RESULTS_SCHEMA_SQL: &str = include_str!("../../../sql/schema/snowflake/results.sql");
/// The DDL of the control tables (hybrid tables).
pub const CONTROL_SCHEMA_SQL: &str = include_str!("../../../sql/schema/snowflake/control.sql");

/// Sessions the table managers and stores keep for their own statements.
const STORE_SESSIONS: usize = 4;

/// Opens a Snowflake target: the pool and the manager for the table's real type. A declared
/// type that does not match the table is `ErrorKind::InvalidInput`.
pub async fn open_target(url: &str, options: &TargetOptions) -> Result<OpenedTarget> {
    let config = SnowflakeConfig::from_url(url)?
        .with_target_timeouts(options.connect_timeout, options.statement_timeout);
    let connector = Connector::new(config);
    let pool = SnowflakeTargetPool::with_connector(connector.clone(), options.run_id);
    let tag = format!("unistore:run={}:phase=PREPARING", options.run_id);
    let catalog = SnowflakeCatalog::new(Arc::new(SessionPool::new(connector, tag, 2)));
    let actual = catalog.detect_type(&options.table).await?;
    let table_type = TableType::check_declared(options.declared_type, actual, &options.table)?;
    let manager: Arc<dyn unistore_core::TableManager> = match table_type {
        TableType::Standard => Arc::new(SnowflakeStandardTableManager::new(catalog)),
        TableType::Hybrid => Arc::new(SnowflakeHybridTableManager::new(catalog)),
        TableType::Interactive => Arc::new(SnowflakeInteractiveTableManager::new(catalog)),
        other => {
            return Err(Error::invalid(format!(
                "a snowflake:// target holds standard, hybrid or interactive tables, not {other} tables"
            )))
        }
    };
    Ok(OpenedTarget { kind: "snowflake", pool: Arc::new(pool), manager })
}

/// Opens the catalog of the URL's account (databases, schemas and tables the role sees). Logs in
/// now, so that a wrong account or credential fails here rather than at the first listing.
pub async fn open_catalog(url: &str) -> Result<Arc<dyn Catalog>> {
    let catalog = SnowflakeAccountCatalog::new(SnowflakeConfig::from_url(url)?);
    catalog.check_login().await?;
    Ok(Arc::new(catalog))
}

/// Table managers for a target URL, one per Snowflake table type.
pub fn table_managers(
    url: &str,
) -> Result<(SnowflakeStandardTableManager, SnowflakeHybridTableManager, SnowflakeInteractiveTableManager)> {
    let config = SnowflakeConfig::from_url(url)?;
    let catalog = SnowflakeCatalog::new(Arc::new(SessionPool::new(
        Connector::new(config),
        "unistore:table-manager",
        STORE_SESSIONS,
    )));
    Ok((
        SnowflakeStandardTableManager::new(catalog.clone()),
        SnowflakeHybridTableManager::new(catalog.clone()),
        SnowflakeInteractiveTableManager::new(catalog),
    ))
}

/// Opens the results store in the URL's database and schema (default
/// `UNISTORE_BENCHMARK.TEST_RESULTS`). The tables must exist ([`apply_schema`]).
pub async fn open_results(url: &str) -> Result<ResultsStore> {
    let store = Arc::new(SnowflakeResultsStore::open(url)?);
    Ok(ResultsStore { sink: store.clone(), reader: store })
}

/// Opens the hybrid-table control store in the URL's database and schema.
pub async fn open_control(url: &str) -> Result<Arc<dyn ControlStore>> {
    Ok(Arc::new(SnowflakeHybridControlStore::open(url).await?))
}

/// Creates the results and control tables (`sql/schema/snowflake/`) in the URL's database and
/// schema, creating those too. For setup and tests: the tool itself never runs DDL.
pub async fn apply_schema(url: &str) -> Result<()> {
    let config = SnowflakeConfig::from_url(url)?;
    let (database, schema) = config.results_location();
    let pool = SessionPool::new(Connector::new(config), "unistore:apply-schema", 1);
    let session = pool.acquire().await?;
    let mut statements = vec![
        format!("CREATE DATABASE IF NOT EXISTS {}", ident(&database)),
        format!("CREATE SCHEMA IF NOT EXISTS {}.{}", ident(&database), ident(&schema)),
        format!("USE SCHEMA {}.{}", ident(&database), ident(&schema)),
    ];
    statements.extend(sql_statements(RESULTS_SCHEMA_SQL));
    statements.extend(sql_statements(CONTROL_SCHEMA_SQL));
    for sql in statements {
        pool::execute_counting(&session, &sql, &[]).await.map_err(|e| {
            let message = format!("applying the Snowflake schema failed at `{sql}`: {e}");
            e.with_message(message)
        })?;
    }
    Ok(())
}

/// Runs statements one after another on one session, in the URL's database and schema. For
/// setup scripts and test fixtures: the tool never calls it on a benchmark target.
pub async fn execute_statements(url: &str, statements: &[String]) -> Result<()> {
    let config = SnowflakeConfig::from_url(url)?;
    let pool = SessionPool::new(Connector::new(config), "unistore:setup", 1);
    let session = pool.acquire().await?;
    for sql in statements {
        pool::execute_counting(&session, sql, &[]).await?;
    }
    Ok(())
}

/// Logs in, runs `SELECT CURRENT_VERSION()` and returns `Snowflake <version>`.
pub async fn ping(url: &str) -> Result<String> {
    let rows = query_text(url, "SELECT CURRENT_VERSION()").await?;
    let version = rows.into_iter().next().and_then(|r| r.into_iter().next().flatten()).unwrap_or_default();
    Ok(format!("Snowflake {version}").trim_end().to_string())
}

/// Runs a query and returns its rows as text (`None` for NULL), for checks by hand and tests.
pub async fn query_text(url: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
    let config = SnowflakeConfig::from_url(url)?;
    let pool = SessionPool::new(Connector::new(config), "unistore:check", 1);
    let rows = pool.rows(sql, &[]).await?;
    Ok(rows.iter().map(|r| r.values().iter().map(pool::cell_text).collect()).collect())
}

/// The statements of a DDL file: comments removed, split at `;`.
pub fn sql_statements(text: &str) -> Vec<String> {
    let without_comments: String = text
        .lines()
        .map(|l| match l.find("--") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    without_comments.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Typed access to the cells of a result row, with errors that name the column.
pub(crate) struct Row<'a>(pub(crate) &'a DynamicRow);

impl Row<'_> {
    fn cell(&self, i: usize) -> Result<&CellValue> {
        self.0.value_at(i).map_err(|e| Error::backend(ErrorKind::Other, format!("result column {i}: {e}")))
    }

    pub(crate) fn opt_text(&self, i: usize) -> Result<Option<String>> {
        Ok(pool::cell_text(self.cell(i)?))
    }

    pub(crate) fn text(&self, i: usize) -> Result<String> {
        self.opt_text(i)?
            .ok_or_else(|| Error::backend(ErrorKind::Other, format!("result column {i} is NULL")))
    }

    pub(crate) fn opt_i64(&self, i: usize) -> Result<Option<i64>> {
        let c = self.cell(i)?;
        if c.is_null() {
            return Ok(None);
        }
        pool::cell_i64(c).map(Some).ok_or_else(|| {
            Error::backend(ErrorKind::Other, format!("result column {i} is not an integer: {c:?}"))
        })
    }

    pub(crate) fn u64(&self, i: usize) -> Result<u64> {
        let v = self
            .opt_i64(i)?
            .ok_or_else(|| Error::backend(ErrorKind::Other, format!("result column {i} is NULL")))?;
        u64::try_from(v)
            .map_err(|_| Error::backend(ErrorKind::Other, format!("result column {i} is negative: {v}")))
    }

    pub(crate) fn opt_f64(&self, i: usize) -> Result<Option<f64>> {
        match self.cell(i)? {
            CellValue::Null => Ok(None),
            CellValue::Float(f) => Ok(Some(*f)),
            CellValue::Integer(n) => Ok(Some(*n as f64)),
            CellValue::Decimal(d) => d.raw().parse().map(Some).map_err(|_| {
                Error::backend(ErrorKind::Other, format!("result column {i} is not a number: {}", d.raw()))
            }),
            other => {
                Err(Error::backend(ErrorKind::Other, format!("result column {i} is not a number: {other:?}")))
            }
        }
    }

    pub(crate) fn time(&self, i: usize) -> Result<DateTime<Utc>> {
        match self.cell(i)? {
            CellValue::TimestampNtz(t) => Ok(t.and_utc()),
            CellValue::TimestampLtz(t) => Ok(*t),
            CellValue::TimestampTz(t) => Ok(t.with_timezone(&Utc)),
            other => Err(Error::backend(
                ErrorKind::Other,
                format!("result column {i} is not a timestamp: {other:?}"),
            )),
        }
    }

    pub(crate) fn run_id(&self, i: usize) -> Result<RunId> {
        self.text(i)?.parse()
    }
}

/// A timestamp as stored: microsecond precision (what every Snowflake timestamp column keeps
/// at least, and what the emulator keeps at most), so values read back equal values written.
pub(crate) fn stored_time(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// Serializes a value for a *_JSON column.
pub(crate) fn to_json<T: serde::Serialize>(value: &T, what: &str) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::backend(ErrorKind::Other, format!("cannot serialize {what}: {e}")))
}

/// Parses a *_JSON column.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| Error::backend(ErrorKind::Other, format!("{what} is not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_files_split_into_statements() {
        let results = sql_statements(RESULTS_SCHEMA_SQL);
        let creates = results.iter().filter(|s| s.starts_with("CREATE TABLE IF NOT EXISTS")).count();
        assert_eq!(creates, 5, "{results:?}");
        // The rest bring older stores up to date, idempotently.
        assert!(
            results.iter().all(|s| ["CREATE TABLE IF NOT EXISTS", "ALTER TABLE", "UPDATE ", "INSERT INTO"]
                .iter()
                .any(|p| s.starts_with(p))),
            "{results:?}"
        );
        let control = sql_statements(CONTROL_SCHEMA_SQL);
        let creates = control.iter().filter(|s| s.starts_with("CREATE HYBRID TABLE IF NOT EXISTS")).count();
        assert_eq!(creates, 3, "{control:?}");
        // The rest bring older stores up to date, idempotently.
        assert!(
            control.iter().all(|s| ["CREATE HYBRID TABLE IF NOT EXISTS", "ALTER TABLE", "UPDATE "]
                .iter()
                .any(|p| s.starts_with(p))),
            "{control:?}"
        );
        assert!(
            control
                .iter()
                .filter(|s| s.starts_with("ALTER TABLE"))
                .all(|s| s.contains(" IF NOT EXISTS ") || s.contains(" IF EXISTS ")),
            "every ALTER can run again: {control:?}"
        );
    }
}
