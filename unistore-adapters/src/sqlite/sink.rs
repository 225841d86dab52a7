//! The results store in an SQLite file the tool owns.

use std::str::FromStr;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use unistore_core::sink::RunListEntry;
use unistore_core::{
    Error, ErrorKind, MetricSnapshot, QueryExecution, QueryKind, Result, ResultsReader, ResultsSink, RunId,
    RunPhase, RunSummary, StoredTemplate, Template,
};

use super::config::SqliteConfig;
use super::{
    format_stored_time, from_json, from_sql_int, map_error, parse_stored_time, to_json, to_sql_int,
    StoreConnection,
};

/// DDL of the results tables, applied when the store is opened.
pub const RESULTS_SCHEMA: &str = include_str!("../../../sql/schema/sqlite/results.sql");

/// Results (templates, summaries, snapshots, sampled executions) in an SQLite file: both the
/// write side ([`ResultsSink`]) and the read side ([`ResultsReader`]).
#[derive(Debug, Clone)]
pub struct SqliteResultsStore {
    store: StoreConnection,
}

impl SqliteResultsStore {
    /// Opens the store, creating the file, its directory and the tables if needed.
    pub async fn open(config: &SqliteConfig) -> Result<Self> {
        Ok(SqliteResultsStore { store: StoreConnection::open(config, RESULTS_SCHEMA, "results").await? })
    }

    /// The store's file.
    pub fn path(&self) -> &std::path::Path {
        self.store.path()
    }
}

fn worker_key(worker_id: Option<&str>) -> String {
    worker_id.unwrap_or("").to_string()
}

/// Runs `f` inside one transaction: a batch is written whole or not at all. The transaction
/// takes the write lock up front, so a concurrent writer on the same file (the control store,
/// another process) makes it wait for the busy timeout instead of failing on a lock upgrade.
fn in_transaction<F>(conn: &mut Connection, what: &str, f: F) -> Result<()>
where
    F: FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
{
    let tx =
        conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| map_error(&e, what))?;
    f(&tx).map_err(|e| map_error(&e, what))?;
    tx.commit().map_err(|e| map_error(&e, what))
}

#[async_trait]
impl ResultsSink for SqliteResultsStore {
    async fn save_template(&self, template: &StoredTemplate) -> Result<()> {
        let id = template.template_id.clone();
        let name = template.template.name.clone();
        let json = to_json(&template.template, "the template")?;
        let updated_at = format_stored_time(&template.updated_at);
        self.store
            .with_conn("save_template", move |conn| {
                conn.execute(
                    "INSERT INTO TEST_TEMPLATES (TEMPLATE_ID, NAME, TEMPLATE_JSON, UPDATED_AT) \
                 VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (TEMPLATE_ID) DO UPDATE SET NAME = excluded.NAME, \
                 TEMPLATE_JSON = excluded.TEMPLATE_JSON, UPDATED_AT = excluded.UPDATED_AT",
                    params![id, name, json, updated_at],
                )
                .map_err(|e| map_error(&e, "saving a template"))?;
                Ok(())
            })
            .await
    }

    async fn write_snapshots(&self, snapshots: &[MetricSnapshot]) -> Result<()> {
        if snapshots.is_empty() {
            return Ok(());
        }
        let rows = snapshots
            .iter()
            .map(|s| Ok((s.clone(), to_json(s, "a metric snapshot")?)))
            .collect::<Result<Vec<_>>>()?;
        self.store
            .with_conn("write_snapshots", move |conn| {
                in_transaction(conn, "writing metric snapshots", |tx| {
                    // A retried batch replaces the rows it wrote before instead of failing.
                    let mut stmt = tx.prepare_cached(
                        "INSERT OR REPLACE INTO WORKER_METRICS_SNAPSHOTS (RUN_ID, WORKER_ID, SEQ, \
                     TAKEN_AT, ELAPSED_S, PHASE, OPS, ERRORS, QPS, P50_MS, P95_MS, P99_MS, \
                     SNAPSHOT_JSON) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    )?;
                    for (s, json) in &rows {
                        stmt.execute(params![
                            s.run_id.to_string(),
                            s.worker_id,
                            to_sql_int(s.seq),
                            format_stored_time(&s.taken_at),
                            s.elapsed_s,
                            s.phase.as_str(),
                            to_sql_int(s.total.ops),
                            to_sql_int(s.total.errors),
                            s.total.qps,
                            s.total.latency_ms.p50,
                            s.total.latency_ms.p95,
                            s.total.latency_ms.p99,
                            json,
                        ])?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn write_query_executions(&self, rows: &[QueryExecution]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows = rows.to_vec();
        self.store
            .with_conn("write_query_executions", move |conn| {
                in_transaction(conn, "writing query executions", |tx| {
                    let mut stmt = tx.prepare_cached(
                        "INSERT INTO QUERY_EXECUTIONS (RUN_ID, WORKER_ID, CONNECTION, KIND, PHASE, \
                     STARTED_AT, RESPONSE_US, SERVICE_US, ROWS, OK, ERROR_KIND) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    )?;
                    for r in &rows {
                        stmt.execute(params![
                            r.run_id.to_string(),
                            r.worker_id,
                            r.connection,
                            r.kind.as_str(),
                            r.phase.as_str(),
                            format_stored_time(&r.started_at),
                            to_sql_int(r.response_us),
                            to_sql_int(r.service_us),
                            to_sql_int(r.rows),
                            r.ok,
                            r.error_kind.map(|k| k.as_str()),
                        ])?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn write_summary(&self, summary: &RunSummary) -> Result<()> {
        let json = to_json(summary, "the run summary")?;
        let s = summary.clone();
        self.store
            .with_conn("write_summary", move |conn| {
                in_transaction(conn, "writing a run summary", |tx| {
                    tx.execute(
                        "INSERT OR REPLACE INTO TEST_RESULTS (RUN_ID, WORKER_ID, TEMPLATE_NAME, \
                     TARGET_KIND, TABLE_NAME, TABLE_TYPE, MODE, STATUS, STARTED_AT, DURATION_S, \
                     OPS, ERRORS, QPS, P50_MS, P95_MS, P99_MS, SUMMARY_JSON) VALUES (?1, ?2, ?3, \
                     ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                        params![
                            s.run_id.to_string(),
                            worker_key(s.worker_id.as_deref()),
                            s.template,
                            s.target_kind,
                            s.table,
                            s.table_type.as_str(),
                            s.mode,
                            s.status.as_str(),
                            format_stored_time(&s.started_at),
                            s.duration_s,
                            to_sql_int(s.total.ops),
                            to_sql_int(s.total.errors),
                            s.total.qps,
                            s.total.latency_ms.p50,
                            s.total.latency_ms.p95,
                            s.total.latency_ms.p99,
                            json,
                        ],
                    )?;
                    Ok(())
                })
            })
            .await
    }
}

fn template_from_row(row: &Row<'_>) -> rusqlite::Result<(String, String, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

fn stored_template(id: String, json: String, updated_at: String) -> Result<StoredTemplate> {
    let template: Template = from_json(&json, "TEMPLATE_JSON")?;
    Ok(StoredTemplate {
        template_id: id,
        template,
        updated_at: parse_stored_time(&updated_at, "UPDATED_AT")?,
    })
}

fn parse_run_id(s: &str) -> Result<RunId> {
    RunId::from_str(s)
        .map_err(|e| Error::backend(ErrorKind::Other, format!("stored RUN_ID is not a run id: {e}")))
}

#[async_trait]
impl ResultsReader for SqliteResultsStore {
    async fn template(&self, template_id: &str) -> Result<Option<StoredTemplate>> {
        let id = template_id.to_string();
        self.store
            .with_conn("template", move |conn| {
                let row = conn
                    .query_row(
                        "SELECT TEMPLATE_ID, TEMPLATE_JSON, UPDATED_AT FROM TEST_TEMPLATES \
                     WHERE TEMPLATE_ID = ?1",
                        [&id],
                        template_from_row,
                    )
                    .optional()
                    .map_err(|e| map_error(&e, "reading a template"))?;
                row.map(|(id, json, at)| stored_template(id, json, at)).transpose()
            })
            .await
    }

    async fn templates(&self) -> Result<Vec<StoredTemplate>> {
        self.store
            .with_conn("templates", move |conn| {
                let context = "listing templates";
                let mut stmt = conn
                    .prepare(
                        "SELECT TEMPLATE_ID, TEMPLATE_JSON, UPDATED_AT FROM TEST_TEMPLATES \
                     ORDER BY UPDATED_AT DESC, TEMPLATE_ID",
                    )
                    .map_err(|e| map_error(&e, context))?;
                let rows = stmt
                    .query_map([], template_from_row)
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(|e| map_error(&e, context))?;
                rows.into_iter().map(|(id, json, at)| stored_template(id, json, at)).collect()
            })
            .await
    }

    async fn delete_template(&self, template_id: &str) -> Result<bool> {
        let id = template_id.to_string();
        self.store
            .with_conn("delete_template", move |conn| {
                let n = conn
                    .execute("DELETE FROM TEST_TEMPLATES WHERE TEMPLATE_ID = ?1", [&id])
                    .map_err(|e| map_error(&e, "deleting a template"))?;
                Ok(n > 0)
            })
            .await
    }

    async fn runs(&self, limit: usize) -> Result<Vec<RunListEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.store
            .with_conn("runs", move |conn| {
                let context = "listing runs";
                // Newest first; within a run, the run's own row ('' sorts first) before its workers.
                let mut stmt = conn
                    .prepare(
                        "SELECT RUN_ID, WORKER_ID, TEMPLATE_NAME, TABLE_NAME, STATUS, STARTED_AT, OPS, \
                     QPS FROM TEST_RESULTS ORDER BY STARTED_AT DESC, RUN_ID, WORKER_ID LIMIT ?1",
                    )
                    .map_err(|e| map_error(&e, context))?;
                let rows = stmt
                    .query_map([limit], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, i64>(6)?,
                            r.get::<_, f64>(7)?,
                        ))
                    })
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(|e| map_error(&e, context))?;
                rows.into_iter()
                    .map(|(run, worker, template, table, status, started, ops, qps)| {
                        Ok(RunListEntry {
                            run_id: parse_run_id(&run)?,
                            worker_id: (!worker.is_empty()).then_some(worker),
                            template_name: template,
                            table,
                            status,
                            started_at: parse_stored_time(&started, "STARTED_AT")?,
                            ops: from_sql_int(ops),
                            qps,
                        })
                    })
                    .collect()
            })
            .await
    }

    async fn summary(&self, run_id: RunId, worker_id: Option<&str>) -> Result<Option<RunSummary>> {
        let worker = worker_key(worker_id);
        self.store
            .with_conn("summary", move |conn| {
                let json: Option<String> = conn
                    .query_row(
                        "SELECT SUMMARY_JSON FROM TEST_RESULTS WHERE RUN_ID = ?1 AND WORKER_ID = ?2",
                        [run_id.to_string(), worker],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(|e| map_error(&e, "reading a run summary"))?;
                json.map(|j| from_json(&j, "SUMMARY_JSON")).transpose()
            })
            .await
    }

    async fn snapshots(&self, run_id: RunId) -> Result<Vec<MetricSnapshot>> {
        self.store
            .with_conn("snapshots", move |conn| {
                let context = "reading metric snapshots";
                let mut stmt = conn
                    .prepare(
                        "SELECT SNAPSHOT_JSON FROM WORKER_METRICS_SNAPSHOTS WHERE RUN_ID = ?1 \
                     ORDER BY TAKEN_AT, WORKER_ID, SEQ",
                    )
                    .map_err(|e| map_error(&e, context))?;
                let rows = stmt
                    .query_map([run_id.to_string()], |r| r.get::<_, String>(0))
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(|e| map_error(&e, context))?;
                rows.iter().map(|j| from_json(j, "SNAPSHOT_JSON")).collect()
            })
            .await
    }

    async fn query_executions(&self, run_id: RunId, limit: usize) -> Result<Vec<QueryExecution>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.store
            .with_conn("query_executions", move |conn| {
                let context = "reading query executions";
                let mut stmt = conn
                    .prepare(
                        "SELECT RUN_ID, WORKER_ID, CONNECTION, KIND, PHASE, STARTED_AT, RESPONSE_US, \
                     SERVICE_US, ROWS, OK, ERROR_KIND FROM QUERY_EXECUTIONS WHERE RUN_ID = ?1 \
                     ORDER BY STARTED_AT, rowid LIMIT ?2",
                    )
                    .map_err(|e| map_error(&e, context))?;
                type RawExecution =
                    (String, String, u32, String, String, String, i64, i64, i64, bool, Option<String>);
                let rows: Vec<RawExecution> = stmt
                    .query_map(params![run_id.to_string(), limit], |r| TryFrom::try_from(r))
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(|e| map_error(&e, context))?;
                rows.into_iter()
                    .map(|(run, worker, connection, kind, phase, started, resp, svc, n, ok, err)| {
                        Ok(QueryExecution {
                            run_id: parse_run_id(&run)?,
                            worker_id: worker,
                            connection,
                            kind: QueryKind::from_str(&kind)?,
                            phase: RunPhase::from_str(&phase)?,
                            started_at: parse_stored_time(&started, "STARTED_AT")?,
                            response_us: from_sql_int(resp),
                            service_us: from_sql_int(svc),
                            rows: from_sql_int(n),
                            ok,
                            error_kind: err.as_deref().map(parse_error_kind).transpose()?,
                        })
                    })
                    .collect()
            })
            .await
    }
}

fn parse_error_kind(s: &str) -> Result<ErrorKind> {
    ErrorKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
        Error::backend(ErrorKind::Other, format!("stored ERROR_KIND `{s}` is not an error kind"))
    })
}
