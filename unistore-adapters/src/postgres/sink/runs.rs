//! Listing runs (all rows, or a filtered page of the runs' own rows) and deleting a run.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use unistore_core::sink::RunListEntry;
use unistore_core::{Result, RunFilter, RunId, RunPage, TableType};
use uuid::Uuid;

use super::{decode, u64_of, PostgresResultsStore};
use crate::postgres::map_error;
use crate::run_filter::{filter_sql, page_sql, FilterDialect, FilterValue};

/// The columns of a listed row, in the order [`entry`] reads them.
pub(super) const LISTED_COLUMNS: &str =
    "run_id, worker_id, template_name, table_name, status, started_at, ops, \
     qps, table_type, template_id, errors, p95_ms";

/// A row selecting [`LISTED_COLUMNS`] as a listing entry.
pub(super) fn entry(r: &tokio_postgres::Row) -> Result<RunListEntry> {
    let worker: String = decode(r.try_get(1), "worker_id")?;
    let table_type: String = decode(r.try_get(8), "table_type")?;
    Ok(RunListEntry {
        run_id: RunId(decode::<Uuid>(r.try_get(0), "run_id")?),
        worker_id: (!worker.is_empty()).then_some(worker),
        template_name: decode(r.try_get(2), "template_name")?,
        table: decode(r.try_get(3), "table_name")?,
        status: decode(r.try_get(4), "status")?,
        started_at: decode(r.try_get(5), "started_at")?,
        ops: u64_of(decode(r.try_get(6), "ops")?),
        qps: decode(r.try_get(7), "qps")?,
        table_type: TableType::from_str(&table_type).ok(),
        template_id: decode(r.try_get(9), "template_id")?,
        errors: Some(u64_of(decode(r.try_get(10), "errors")?)),
        p95_ms: Some(decode(r.try_get(11), "p95_ms")?),
    })
}

/// The tables that hold rows of a run, the run's own table last (see `delete_run`).
const RUN_TABLES: [&str; 3] = ["worker_metrics_snapshots", "query_executions", "test_results"];

/// A filter's value as a parameter of its own type.
enum Param {
    Text(String),
    Time(DateTime<Utc>),
}

impl Param {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::Text(t) => t,
            Param::Time(t) => t,
        }
    }
}

impl PostgresResultsStore {
    pub(super) async fn list_page(&self, filter: &RunFilter) -> Result<RunPage> {
        let sql = filter_sql(filter, FilterDialect::Postgres);
        let params: Vec<Param> = sql
            .values
            .into_iter()
            .map(|v| match v {
                FilterValue::Text(t) => Param::Text(t),
                FilterValue::Time(t) => Param::Time(t),
            })
            .collect();
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(Param::as_sql).collect();
        let table = self.table("test_results");
        let where_clause = &sql.where_clause;
        let ctx = self.ctx("listing a page of runs");
        let mut client = self.pool.get().await?;
        // One snapshot for the count and the page, so that the total fits the page.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| map_error(e, &ctx))?;
        let total: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {table} {where_clause}"), &params)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| map_error(e, &ctx))?;
        let rows = tx
            .query(
                &format!(
                    "SELECT {LISTED_COLUMNS} FROM {table} {where_clause} ORDER BY started_at DESC, run_id {}",
                    page_sql(filter)
                ),
                &params,
            )
            .await
            .map_err(|e| map_error(e, &ctx))?;
        tx.commit().await.map_err(|e| map_error(e, &ctx))?;
        Ok(RunPage { runs: rows.iter().map(entry).collect::<Result<_>>()?, total: u64_of(total) })
    }

    pub(super) async fn delete_run_rows(&self, run_id: RunId) -> Result<bool> {
        let ctx = self.ctx(&format!("deleting run {run_id}"));
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await.map_err(|e| map_error(e, &ctx))?;
        let mut deleted = 0;
        for table in RUN_TABLES {
            deleted += tx
                .execute(&format!("DELETE FROM {} WHERE run_id = $1", self.table(table)), &[&run_id.0])
                .await
                .map_err(|e| map_error(e, &ctx))?;
        }
        tx.commit().await.map_err(|e| map_error(e, &ctx))?;
        Ok(deleted > 0)
    }
}
