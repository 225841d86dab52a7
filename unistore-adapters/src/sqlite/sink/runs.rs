//! Listing runs (all rows, or a filtered page of the runs' own rows) and deleting a run.

use std::str::FromStr;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection, Row};
use unistore_core::sink::RunListEntry;
use unistore_core::{Result, RunFilter, RunId, RunPage, TableType};

use super::{in_transaction, parse_run_id, SqliteResultsStore};
use crate::run_filter::{filter_sql, page_sql, FilterDialect, FilterValue};
use crate::sqlite::{format_stored_time, from_sql_int, map_error, parse_stored_time};

/// The columns of a listed row, in the order [`entry_from_row`] reads them.
pub(super) const LISTED_COLUMNS: &str = "RUN_ID, WORKER_ID, TEMPLATE_NAME, TABLE_NAME, STATUS, STARTED_AT, \
     OPS, QPS, TABLE_TYPE, TEMPLATE_ID, ERRORS, P95_MS";

type RawEntry = (String, String, String, String, String, String, i64, f64, String, Option<String>, i64, f64);

fn raw_entry(r: &Row<'_>) -> rusqlite::Result<RawEntry> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
    ))
}

fn entry(raw: RawEntry) -> Result<RunListEntry> {
    let (run, worker, template, table, status, started, ops, qps, table_type, template_id, errors, p95) = raw;
    Ok(RunListEntry {
        run_id: parse_run_id(&run)?,
        worker_id: (!worker.is_empty()).then_some(worker),
        template_name: template,
        table,
        status,
        started_at: parse_stored_time(&started, "STARTED_AT")?,
        ops: from_sql_int(ops),
        qps,
        table_type: TableType::from_str(&table_type).ok(),
        template_id,
        errors: Some(from_sql_int(errors)),
        p95_ms: Some(p95),
    })
}

/// Rows of `sql` (selecting [`LISTED_COLUMNS`]) as listing entries.
pub(super) fn listed(
    conn: &Connection,
    sql: &str,
    values: &[SqlValue],
    context: &str,
) -> Result<Vec<RunListEntry>> {
    let mut stmt = conn.prepare(sql).map_err(|e| map_error(e, context))?;
    let rows = stmt
        .query_map(params_from_iter(values.iter()), raw_entry)
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| map_error(e, context))?;
    rows.into_iter().map(entry).collect()
}

/// The tables that hold rows of a run, the run's own table last: a delete cut short (it is one
/// transaction, but a store made by hand may differ) leaves the run listed, to be deleted again.
const RUN_TABLES: [&str; 3] = ["WORKER_METRICS_SNAPSHOTS", "QUERY_EXECUTIONS", "TEST_RESULTS"];

impl SqliteResultsStore {
    pub(super) async fn list_page(&self, filter: &RunFilter) -> Result<RunPage> {
        let sql = filter_sql(filter, FilterDialect::Sqlite);
        let values: Vec<SqlValue> = sql
            .values
            .into_iter()
            .map(|v| match v {
                FilterValue::Text(t) => SqlValue::Text(t),
                // Stored times are fixed-width RFC 3339 text, so text order is time order.
                FilterValue::Time(t) => SqlValue::Text(format_stored_time(&t)),
            })
            .collect();
        let where_clause = sql.where_clause;
        let page = page_sql(filter);
        self.store
            .with_conn("runs_page", move |conn| {
                let context = "listing a page of runs";
                let total: i64 = conn
                    .query_row(
                        &format!("SELECT COUNT(*) FROM TEST_RESULTS {where_clause}"),
                        params_from_iter(values.iter()),
                        |r| r.get(0),
                    )
                    .map_err(|e| map_error(e, context))?;
                let runs = listed(
                    conn,
                    &format!(
                        "SELECT {LISTED_COLUMNS} FROM TEST_RESULTS {where_clause} \
                         ORDER BY STARTED_AT DESC, RUN_ID {page}"
                    ),
                    &values,
                    context,
                )?;
                Ok(RunPage { runs, total: from_sql_int(total) })
            })
            .await
    }

    pub(super) async fn delete_run_rows(&self, run_id: RunId) -> Result<bool> {
        let id = run_id.to_string();
        self.store
            .with_conn("delete_run", move |conn| {
                in_transaction(conn, "deleting a run", |tx| {
                    let mut deleted = 0;
                    for table in RUN_TABLES {
                        deleted += tx.execute(&format!("DELETE FROM {table} WHERE RUN_ID = ?1"), [&id])?;
                    }
                    Ok(deleted > 0)
                })
            })
            .await
    }
}
