//! Server-side figures of a run, read after it from Snowflake's own history by query tag.
//!
//! - `INFORMATION_SCHEMA.QUERY_HISTORY` (table function, no latency) per query tag: statement
//!   counts, failures and elapsed times. Hybrid-table statements that ran under a second are
//!   *not* kept there individually, so these are not per-query server latencies for hybrid
//!   tables.
//! - `SNOWFLAKE.ACCOUNT_USAGE.AGGREGATE_QUERY_HISTORY`: per-minute aggregates of repeated
//!   statements (the view for hybrid-table workloads), with throttled request counts. It lags by
//!   up to a few hours and needs access to the SNOWFLAKE database.
//!
//! Everything here degrades: a view that is missing (the emulator has neither), not yet
//! populated or not granted becomes a note in [`ServerHistory::notes`], never an error.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use unistore_core::{Result, RunId, Value};

use super::http::ConnectionFigures;
use super::pool::{Connector, SessionPool};
use super::tables::ident;
use super::{Row, SnowflakeConfig};

/// Statement counts of one query tag (`unistore:run=<id>:phase=<phase>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagFigures {
    /// The query tag.
    pub query_tag: String,
    /// Statements recorded.
    pub queries: u64,
    /// Statements that did not succeed.
    pub failed: u64,
    /// Mean total elapsed time, ms.
    pub avg_elapsed_ms: Option<f64>,
    /// Largest total elapsed time, ms.
    pub max_elapsed_ms: Option<f64>,
    /// Time queued because the warehouse was overloaded, ms, summed.
    pub queued_overload_ms: Option<f64>,
}

/// One minute of one repeated statement from `AGGREGATE_QUERY_HISTORY`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateInterval {
    /// Start of the minute.
    pub interval_start: String,
    /// The query tag.
    pub query_tag: String,
    /// Statement type (SELECT, INSERT, ...).
    pub query_type: String,
    /// Executions in the minute.
    pub calls: u64,
    /// Median elapsed time, ms.
    pub median_ms: Option<f64>,
    /// 99th percentile elapsed time, ms.
    pub p99_ms: Option<f64>,
    /// Hybrid-table requests throttled in the minute.
    pub throttled: Option<u64>,
}

/// What the server recorded about a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerHistory {
    /// The run.
    pub run_id: Option<RunId>,
    /// From `QUERY_HISTORY`, per query tag.
    pub query_history: Vec<TagFigures>,
    /// From `AGGREGATE_QUERY_HISTORY`, per minute and statement.
    pub aggregate: Vec<AggregateInterval>,
    /// Why a source is missing or partial.
    pub notes: Vec<String>,
    /// The client's own figures: connections opened, requests, retries after the server
    /// closed a kept-alive connection (absent in figures stored before they were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ConnectionFigures>,
}

impl ServerHistory {
    /// Whether any server-side figure was found.
    pub fn is_empty(&self) -> bool {
        self.query_history.is_empty() && self.aggregate.is_empty()
    }
}

fn literal_time(t: DateTime<Utc>) -> String {
    format!("'{}'::TIMESTAMP_LTZ", t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Reads the server-side figures of `run_id` (statements since `since`) from the target
/// account. Never fails: unavailable sources become notes.
pub async fn collect(url: &str, run_id: RunId, since: DateTime<Utc>) -> ServerHistory {
    match SnowflakeConfig::from_url(url) {
        Ok(config) => collect_with_config(config, run_id, since).await,
        Err(e) => ServerHistory {
            run_id: Some(run_id),
            notes: vec![format!("no server-side figures: {e}")],
            ..ServerHistory::default()
        },
    }
}

/// [`collect`] with an already parsed configuration (the target pool's own).
pub async fn collect_with_config(
    config: SnowflakeConfig,
    run_id: RunId,
    since: DateTime<Utc>,
) -> ServerHistory {
    let mut history = ServerHistory { run_id: Some(run_id), ..ServerHistory::default() };
    let database = config.database.clone();
    let pool = SessionPool::new(Connector::new(config), format!("unistore:run={run_id}:phase=PROCESSING"), 1);
    let pattern = format!("unistore:run={run_id}:%");

    let function = match &database {
        Some(db) => format!("{}.INFORMATION_SCHEMA.QUERY_HISTORY", ident(db)),
        None => "INFORMATION_SCHEMA.QUERY_HISTORY".to_string(),
    };
    let sql = format!(
        "SELECT QUERY_TAG, COUNT(*), COUNT_IF(EXECUTION_STATUS <> 'SUCCESS'), AVG(TOTAL_ELAPSED_TIME), \
         MAX(TOTAL_ELAPSED_TIME), SUM(QUEUED_OVERLOAD_TIME) \
         FROM TABLE({function}(END_TIME_RANGE_START => {}, RESULT_LIMIT => 10000)) \
         WHERE QUERY_TAG LIKE ? GROUP BY QUERY_TAG ORDER BY QUERY_TAG",
        literal_time(since)
    );
    match pool.rows(&sql, &[Value::text(&pattern)]).await.and_then(|rows| {
        rows.iter()
            .map(|r| {
                let r = Row(r);
                Ok(TagFigures {
                    query_tag: r.text(0)?,
                    queries: r.u64(1)?,
                    failed: r.u64(2)?,
                    avg_elapsed_ms: r.opt_f64(3)?,
                    max_elapsed_ms: r.opt_f64(4)?,
                    queued_overload_ms: r.opt_f64(5)?,
                })
            })
            .collect::<Result<Vec<_>>>()
    }) {
        Ok(figures) => {
            if figures.is_empty() {
                history.notes.push(
                    "QUERY_HISTORY has no statements with this run's query tag (hybrid-table statements \
                     under 1 s are not kept individually)"
                        .into(),
                );
            }
            history.query_history = figures;
        }
        Err(e) => history.notes.push(format!("QUERY_HISTORY is not available: {e}")),
    }

    let sql = format!(
        "SELECT TO_VARCHAR(INTERVAL_START_TIME), QUERY_TAG, QUERY_TYPE, CALLS, \
         TOTAL_ELAPSED_TIME:median::FLOAT, TOTAL_ELAPSED_TIME:p99::FLOAT, HYBRID_TABLE_REQUESTS_THROTTLED_COUNT \
         FROM SNOWFLAKE.ACCOUNT_USAGE.AGGREGATE_QUERY_HISTORY \
         WHERE QUERY_TAG LIKE ? AND INTERVAL_START_TIME >= {} ORDER BY INTERVAL_START_TIME, QUERY_TYPE",
        literal_time(since)
    );
    match pool.rows(&sql, &[Value::text(&pattern)]).await.and_then(|rows| {
        rows.iter()
            .map(|r| {
                let r = Row(r);
                Ok(AggregateInterval {
                    interval_start: r.text(0)?,
                    query_tag: r.text(1)?,
                    query_type: r.opt_text(2)?.unwrap_or_default(),
                    calls: r.u64(3)?,
                    median_ms: r.opt_f64(4)?,
                    p99_ms: r.opt_f64(5)?,
                    throttled: r.opt_i64(6)?.map(|n| n.max(0) as u64),
                })
            })
            .collect::<Result<Vec<_>>>()
    }) {
        Ok(intervals) => {
            if intervals.is_empty() {
                history.notes.push(
                    "AGGREGATE_QUERY_HISTORY has no rows for this run yet (the view lags by up to a few hours)"
                        .into(),
                );
            }
            history.aggregate = intervals;
        }
        Err(e) => history.notes.push(format!("AGGREGATE_QUERY_HISTORY is not available: {e}")),
    }
    history
}
