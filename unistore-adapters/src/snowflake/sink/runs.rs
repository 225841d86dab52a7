//! Listing runs (all rows, or a filtered page of the runs' own rows) and deleting a run.

use std::str::FromStr;

use snowflake_connector_rs::DynamicRow;
use unistore_core::sink::RunListEntry;
use unistore_core::{Result, RunFilter, RunId, RunPage, TableType, Value};

use super::{ts, SnowflakeResultsStore};
use crate::run_filter::{filter_sql, page_sql, FilterDialect, FilterValue};
use crate::snowflake::pool::{execute_counting, query_rows};
use crate::snowflake::Row;

/// The columns of a listed row, in the order [`entry`] reads them.
pub(super) const LISTED_COLUMNS: &str =
    "RUN_ID, WORKER_ID, TEMPLATE_NAME, TABLE_NAME, STATUS, STARTED_AT, OPS, \
     QPS, TABLE_TYPE, TEMPLATE_ID, ERRORS, P95_MS";

/// A row selecting [`LISTED_COLUMNS`] as a listing entry.
pub(super) fn entry(r: &DynamicRow) -> Result<RunListEntry> {
    let r = Row(r);
    Ok(RunListEntry {
        run_id: r.run_id(0)?,
        worker_id: r.opt_text(1)?.filter(|w| !w.is_empty()),
        template_name: r.text(2)?,
        table: r.text(3)?,
        status: r.text(4)?,
        started_at: r.time(5)?,
        ops: r.u64(6)?,
        qps: r.opt_f64(7)?.unwrap_or(0.0),
        table_type: r.opt_text(8)?.and_then(|t| TableType::from_str(&t).ok()),
        template_id: r.opt_text(9)?,
        errors: r.opt_i64(10)?.map(|n| u64::try_from(n).unwrap_or(0)),
        p95_ms: r.opt_f64(11)?,
    })
}

/// The tables that hold rows of a run, the run's own table last: if the delete is cut short
/// (a lost session before the commit), the run stays listed and can be deleted again.
const RUN_TABLES: [&str; 3] = ["WORKER_METRICS_SNAPSHOTS", "QUERY_EXECUTIONS", "TEST_RESULTS"];

impl SnowflakeResultsStore {
    pub(super) async fn list_page(&self, filter: &RunFilter) -> Result<RunPage> {
        let sql = filter_sql(filter, FilterDialect::Snowflake);
        let params: Vec<Value> = sql
            .values
            .into_iter()
            .map(|v| match v {
                FilterValue::Text(t) => Value::text(t),
                FilterValue::Time(t) => ts(t),
            })
            .collect();
        let table = self.table("TEST_RESULTS");
        let where_clause = &sql.where_clause;
        let counted =
            self.pool.rows(&format!("SELECT COUNT(*) FROM {table} {where_clause}"), &params).await?;
        let total = match counted.first() {
            Some(r) => Row(r).u64(0)?,
            None => 0,
        };
        let rows = self
            .pool
            .rows(
                &format!(
                    "SELECT {LISTED_COLUMNS} FROM {table} {where_clause} ORDER BY STARTED_AT DESC, RUN_ID {}",
                    page_sql(filter)
                ),
                &params,
            )
            .await?;
        Ok(RunPage { runs: rows.iter().map(entry).collect::<Result<_>>()?, total })
    }

    /// One transaction on one session: `BEGIN`, a `DELETE` per table, `COMMIT`.
    pub(super) async fn delete_run_rows(&self, run_id: RunId) -> Result<bool> {
        let session = self.pool.acquire().await?;
        let id = [Value::text(run_id.to_string())];
        execute_counting(&session, "BEGIN TRANSACTION", &[]).await?;
        let mut deleted = 0;
        for table in RUN_TABLES {
            let sql = format!("DELETE FROM {} WHERE RUN_ID = ?", self.table(table));
            match execute_counting(&session, &sql, &id).await {
                Ok(n) => deleted += n,
                Err(e) => {
                    if let Err(rollback) = query_rows(&session, "ROLLBACK", &[]).await {
                        tracing::debug!(
                            "ROLLBACK after a failed delete of run {run_id} failed too: {rollback}"
                        );
                        session.discard();
                    }
                    return Err(e);
                }
            }
        }
        execute_counting(&session, "COMMIT", &[]).await?;
        Ok(deleted > 0)
    }
}
