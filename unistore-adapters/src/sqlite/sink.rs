//! The results store in an SQLite file the tool owns.

mod runs;

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use unistore_core::sink::{same_template_json, RunListEntry, STALE_RUN_REASON};
use unistore_core::{
    Error, ErrorKind, MetricSnapshot, QueryExecution, QueryKind, Result, ResultsReader, ResultsSink,
    RunFilter, RunId, RunPage, RunPhase, RunRecord, RunStatus, RunSummary, StoredTemplate, TableType,
    Template, Verdict,
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
    /// Opens the store, creating the file, its directory and the tables if needed, and adding
    /// the columns of newer versions to a store made by an older one.
    pub async fn open(config: &SqliteConfig) -> Result<Self> {
        let store = StoreConnection::open(config, RESULTS_SCHEMA, "results").await?;
        store.with_conn("migrate", migrate).await?;
        Ok(SqliteResultsStore { store })
    }

    /// The store's file.
    pub fn path(&self) -> &std::path::Path {
        self.store.path()
    }
}

/// Columns added to `TEST_RESULTS` after its first release, with their types.
const ADDED_RESULT_COLUMNS: [(&str, &str); 13] = [
    ("TEMPLATE_ID", "TEXT"),
    ("TEMPLATE_JSON", "TEXT"),
    ("TARGET", "TEXT"),
    ("PLANNED_END_AT", "TEXT"),
    ("ENDED_AT", "TEXT"),
    ("REASON", "TEXT"),
    ("VERDICT", "TEXT"),
    ("SLO_PASSED", "INTEGER"),
    ("SLO_VIOLATIONS", "TEXT"),
    ("TARGET_QPS", "REAL"),
    ("TARGET_REACHED", "INTEGER"),
    ("SERVER_STATS", "TEXT"),
    ("TEMPLATE_VERSION", "INTEGER"),
];

/// The tool owns this file, so it brings an older store's tables up to date itself, in one
/// transaction (another process opening the same file at once waits, then finds it done).
fn migrate(conn: &mut Connection) -> Result<()> {
    in_transaction(conn, "bringing the results tables up to date", |tx| {
        let columns = |table: &str| -> rusqlite::Result<Vec<String>> {
            tx.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        };
        let has = |columns: &[String], column: &str| columns.iter().any(|c| c.eq_ignore_ascii_case(column));
        let existing = columns("TEST_RESULTS")?;
        for (column, ty) in ADDED_RESULT_COLUMNS {
            if !has(&existing, column) {
                tx.execute_batch(&format!("ALTER TABLE TEST_RESULTS ADD COLUMN {column} {ty}"))?;
            }
        }
        if !has(&columns("TEST_TEMPLATES")?, "VERSION") {
            // Templates saved before versions existed become version 1 of their id.
            tx.execute_batch(
                "ALTER TABLE TEST_TEMPLATES ADD COLUMN VERSION INTEGER NOT NULL DEFAULT 1; \
                 INSERT OR IGNORE INTO TEST_TEMPLATE_VERSIONS (TEMPLATE_ID, VERSION, NAME, TEMPLATE_JSON, \
                 CREATED_AT) SELECT TEMPLATE_ID, VERSION, NAME, TEMPLATE_JSON, UPDATED_AT FROM TEST_TEMPLATES;",
            )?;
        }
        Ok(())
    })
}

/// Versions are small positive integers the store assigns itself.
fn version_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Saves a template version inside one write transaction (see
/// [`ResultsSink::save_template_version`]): the write lock taken up front makes concurrent
/// savers, in this process or another, take their turns, so each sees the version before it.
fn save_version(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    name: &str,
    json: &str,
    at: &str,
) -> rusqlite::Result<u32> {
    let current: Option<(i64, String)> = tx
        .query_row("SELECT VERSION, TEMPLATE_JSON FROM TEST_TEMPLATES WHERE TEMPLATE_ID = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    if let Some((version, stored)) = &current {
        if same_template_json(stored, json) {
            return Ok(version_of(*version));
        }
    }
    let latest: i64 = tx.query_row(
        "SELECT COALESCE(MAX(VERSION), 0) FROM TEST_TEMPLATE_VERSIONS WHERE TEMPLATE_ID = ?1",
        [id],
        |r| r.get(0),
    )?;
    let next = latest.max(current.map_or(0, |(v, _)| v)) + 1;
    tx.execute(
        "INSERT INTO TEST_TEMPLATE_VERSIONS (TEMPLATE_ID, VERSION, NAME, TEMPLATE_JSON, CREATED_AT) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, next, name, json, at],
    )?;
    tx.execute(
        "INSERT INTO TEST_TEMPLATES (TEMPLATE_ID, NAME, TEMPLATE_JSON, UPDATED_AT, VERSION) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (TEMPLATE_ID) DO UPDATE SET NAME = excluded.NAME, \
         TEMPLATE_JSON = excluded.TEMPLATE_JSON, UPDATED_AT = excluded.UPDATED_AT, VERSION = excluded.VERSION",
        params![id, name, json, at, next],
    )?;
    Ok(version_of(next))
}

fn worker_key(worker_id: Option<&str>) -> String {
    worker_id.unwrap_or("").to_string()
}

/// Runs `f` inside one transaction: a batch is written whole or not at all. The transaction
/// takes the write lock up front, so a concurrent writer on the same file (the control store,
/// another process) makes it wait for the busy timeout instead of failing on a lock upgrade.
fn in_transaction<T, F>(conn: &mut Connection, what: &str, f: F) -> Result<T>
where
    F: FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
{
    let tx =
        conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| map_error(e, what))?;
    let value = f(&tx).map_err(|e| map_error(e, what))?;
    tx.commit().map_err(|e| map_error(e, what))?;
    Ok(value)
}

#[async_trait]
impl ResultsSink for SqliteResultsStore {
    async fn save_template_version(&self, template: &StoredTemplate) -> Result<Option<u32>> {
        let id = template.template_id.clone();
        let name = template.template.name.clone();
        let json = to_json(&template.template, "the template")?;
        let updated_at = format_stored_time(&template.updated_at);
        self.store
            .with_conn("save_template", move |conn| {
                in_transaction(conn, "saving a template version", |tx| {
                    save_version(tx, &id, &name, &json, &updated_at)
                })
                .map(Some)
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

    async fn begin_run(&self, run: &RunRecord) -> Result<()> {
        let summary = RunSummary::running(run);
        let json = to_json(&summary, "the run summary")?;
        let template = to_json(&run.template, "the template")?;
        let r = run.clone();
        self.store
            .with_conn("begin_run", move |conn| {
                conn.execute(
                    "INSERT INTO TEST_RESULTS (RUN_ID, WORKER_ID, TEMPLATE_NAME, TARGET_KIND, TABLE_NAME, \
                     TABLE_TYPE, MODE, STATUS, STARTED_AT, DURATION_S, OPS, ERRORS, QPS, P50_MS, P95_MS, \
                     P99_MS, SUMMARY_JSON, TEMPLATE_ID, TEMPLATE_JSON, TARGET, PLANNED_END_AT, VERDICT, \
                     TARGET_QPS, TEMPLATE_VERSION) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, 0, 0, 0, \
                     0, 0, 0, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) ON CONFLICT (RUN_ID, WORKER_ID) DO NOTHING",
                    params![
                        r.run_id.to_string(),
                        worker_key(r.worker_id.as_deref()),
                        summary.template,
                        r.target_kind,
                        r.table,
                        r.table_type.as_str(),
                        summary.mode,
                        summary.status.as_str(),
                        format_stored_time(&r.started_at),
                        json,
                        r.template_id,
                        template,
                        r.target,
                        format_stored_time(&r.planned_end_at),
                        summary.verdict().as_str(),
                        summary.target_qps,
                        r.template_version,
                    ],
                )
                .map_err(|e| map_error(e, "writing the run's row"))?;
                Ok(())
            })
            .await
    }

    async fn write_summary(&self, summary: &RunSummary) -> Result<()> {
        let json = to_json(summary, "the run summary")?;
        let violations = to_json(&summary.slo.violations, "the SLO violations")?;
        let server_stats = summary.server_stats.as_ref().map(|v| v.to_string());
        let s = summary.clone();
        self.store
            .with_conn("write_summary", move |conn| {
                in_transaction(conn, "writing a run summary", |tx| {
                    // Completes the row begin_run wrote (its template, target and planned end
                    // stay), or creates it.
                    tx.execute(
                        "INSERT INTO TEST_RESULTS (RUN_ID, WORKER_ID, TEMPLATE_NAME, \
                     TARGET_KIND, TABLE_NAME, TABLE_TYPE, MODE, STATUS, STARTED_AT, DURATION_S, \
                     OPS, ERRORS, QPS, P50_MS, P95_MS, P99_MS, SUMMARY_JSON, ENDED_AT, REASON, VERDICT, \
                     SLO_PASSED, SLO_VIOLATIONS, TARGET_QPS, TARGET_REACHED, SERVER_STATS) VALUES (?1, ?2, \
                     ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, \
                     ?21, ?22, ?23, ?24, ?25) ON CONFLICT (RUN_ID, WORKER_ID) DO UPDATE SET \
                     TEMPLATE_NAME = excluded.TEMPLATE_NAME, TARGET_KIND = excluded.TARGET_KIND, \
                     TABLE_NAME = excluded.TABLE_NAME, TABLE_TYPE = excluded.TABLE_TYPE, MODE = excluded.MODE, \
                     STATUS = excluded.STATUS, STARTED_AT = excluded.STARTED_AT, DURATION_S = excluded.DURATION_S, \
                     OPS = excluded.OPS, ERRORS = excluded.ERRORS, QPS = excluded.QPS, P50_MS = excluded.P50_MS, \
                     P95_MS = excluded.P95_MS, P99_MS = excluded.P99_MS, SUMMARY_JSON = excluded.SUMMARY_JSON, \
                     ENDED_AT = excluded.ENDED_AT, REASON = excluded.REASON, VERDICT = excluded.VERDICT, \
                     SLO_PASSED = excluded.SLO_PASSED, SLO_VIOLATIONS = excluded.SLO_VIOLATIONS, \
                     TARGET_QPS = excluded.TARGET_QPS, TARGET_REACHED = excluded.TARGET_REACHED, \
                     SERVER_STATS = excluded.SERVER_STATS",
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
                            format_stored_time(&s.measurement_ended_at),
                            s.reason,
                            s.verdict().as_str(),
                            s.slo.passed,
                            violations,
                            s.target_qps,
                            s.target_reached,
                            server_stats,
                        ],
                    )?;
                    Ok(())
                })
            })
            .await
    }

    async fn fail_stale_runs(&self, now: DateTime<Utc>, grace: std::time::Duration) -> Result<Vec<RunId>> {
        let cutoff = now - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        let cutoff = format_stored_time(&cutoff);
        let now = format_stored_time(&now);
        let ids: Vec<String> = self
            .store
            .with_conn("fail_stale_runs", move |conn| {
                let context = "marking abandoned runs as failed";
                let mut stmt = conn
                    .prepare(
                        "UPDATE TEST_RESULTS SET STATUS = 'FAILED', VERDICT = 'FAILED', REASON = ?1, \
                         ENDED_AT = ?2 WHERE STATUS = 'RUNNING' AND PLANNED_END_AT IS NOT NULL \
                         AND PLANNED_END_AT < ?3 AND COALESCE((SELECT MAX(s.TAKEN_AT) FROM \
                         WORKER_METRICS_SNAPSHOTS s WHERE s.RUN_ID = TEST_RESULTS.RUN_ID), STARTED_AT) < ?3 \
                         RETURNING RUN_ID",
                    )
                    .map_err(|e| map_error(e, context))?;
                let rows = stmt
                    .query_map(params![STALE_RUN_REASON, now, cutoff], |r| r.get(0))
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
                    .map_err(|e| map_error(e, context))?;
                Ok(rows)
            })
            .await?;
        let mut runs: Vec<RunId> = ids.iter().map(|s| parse_run_id(s)).collect::<Result<_>>()?;
        runs.sort();
        runs.dedup();
        Ok(runs)
    }
}

type RawTemplate = (String, String, String, i64);

/// A template row: id, JSON, time, version (in that order in every query).
fn template_from_row(row: &Row<'_>) -> rusqlite::Result<RawTemplate> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn stored_template((id, json, at, version): RawTemplate) -> Result<StoredTemplate> {
    let template: Template = from_json(&json, "TEMPLATE_JSON")?;
    Ok(StoredTemplate {
        template_id: id,
        template,
        version: version_of(version),
        updated_at: parse_stored_time(&at, "the template's time")?,
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
                        "SELECT TEMPLATE_ID, TEMPLATE_JSON, UPDATED_AT, VERSION FROM TEST_TEMPLATES \
                     WHERE TEMPLATE_ID = ?1",
                        [&id],
                        template_from_row,
                    )
                    .optional()
                    .map_err(|e| map_error(e, "reading a template"))?;
                row.map(stored_template).transpose()
            })
            .await
    }

    async fn template_versions(&self, template_id: &str) -> Result<Vec<StoredTemplate>> {
        let id = template_id.to_string();
        self.store
            .with_conn("template_versions", move |conn| {
                let context = "reading the versions of a template";
                let mut stmt = conn
                    .prepare(
                        "SELECT TEMPLATE_ID, TEMPLATE_JSON, CREATED_AT, VERSION FROM TEST_TEMPLATE_VERSIONS \
                         WHERE TEMPLATE_ID = ?1 ORDER BY VERSION",
                    )
                    .map_err(|e| map_error(e, context))?;
                let rows = stmt
                    .query_map([&id], template_from_row)
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(|e| map_error(e, context))?;
                rows.into_iter().map(stored_template).collect()
            })
            .await
    }

    async fn templates(&self) -> Result<Vec<StoredTemplate>> {
        self.store
            .with_conn("templates", move |conn| {
                let context = "listing templates";
                let mut stmt = conn
                    .prepare(
                        "SELECT TEMPLATE_ID, TEMPLATE_JSON, UPDATED_AT, VERSION FROM TEST_TEMPLATES \
                     ORDER BY UPDATED_AT DESC, TEMPLATE_ID",
                    )
                    .map_err(|e| map_error(e, context))?;
                let rows = stmt
                    .query_map([], template_from_row)
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(|e| map_error(e, context))?;
                rows.into_iter().map(stored_template).collect()
            })
            .await
    }

    async fn delete_template(&self, template_id: &str) -> Result<bool> {
        let id = template_id.to_string();
        self.store
            .with_conn("delete_template", move |conn| {
                in_transaction(conn, "deleting a template", |tx| {
                    let versions =
                        tx.execute("DELETE FROM TEST_TEMPLATE_VERSIONS WHERE TEMPLATE_ID = ?1", [&id])?;
                    let current = tx.execute("DELETE FROM TEST_TEMPLATES WHERE TEMPLATE_ID = ?1", [&id])?;
                    Ok(versions + current > 0)
                })
            })
            .await
    }

    async fn run_record(&self, run_id: RunId, worker_id: Option<&str>) -> Result<Option<RunRecord>> {
        let worker = worker_key(worker_id);
        self.store
            .with_conn("run_record", move |conn| {
                type RawRecord = (
                    String,
                    Option<String>,
                    Option<i64>,
                    Option<String>,
                    Option<String>,
                    String,
                    String,
                    String,
                    String,
                    String,
                    Option<String>,
                );
                let row: Option<RawRecord> = conn
                    .query_row(
                        "SELECT WORKER_ID, TEMPLATE_ID, TEMPLATE_VERSION, TEMPLATE_JSON, TARGET, TARGET_KIND, \
                         TABLE_NAME, TABLE_TYPE, SUMMARY_JSON, STARTED_AT, PLANNED_END_AT FROM TEST_RESULTS \
                         WHERE RUN_ID = ?1 AND WORKER_ID = ?2",
                        [run_id.to_string(), worker],
                        |r| TryFrom::try_from(r),
                    )
                    .optional()
                    .map_err(|e| map_error(e, "reading a run's row"))?;
                let Some((worker, Some(template_id), version, Some(template), Some(target), kind, table, table_type, summary, started, Some(planned))) = row
                else {
                    // No row, or one written only by a summary: nothing says how it was begun.
                    return Ok(None);
                };
                let summary: RunSummary = from_json(&summary, "SUMMARY_JSON")?;
                Ok(Some(RunRecord {
                    run_id,
                    worker_id: (!worker.is_empty()).then_some(worker),
                    template_id,
                    template_version: version.map(version_of),
                    template: from_json(&template, "TEMPLATE_JSON")?,
                    target,
                    target_kind: kind,
                    table,
                    table_type: TableType::from_str(&table_type)?,
                    seed: summary.seed,
                    started_at: parse_stored_time(&started, "STARTED_AT")?,
                    planned_end_at: parse_stored_time(&planned, "PLANNED_END_AT")?,
                }))
            })
            .await
    }

    async fn runs(&self, limit: usize) -> Result<Vec<RunListEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.store
            .with_conn("runs", move |conn| {
                // Newest first; within a run, the run's own row ('' sorts first) before its workers.
                runs::listed(
                    conn,
                    &format!(
                        "SELECT {} FROM TEST_RESULTS ORDER BY STARTED_AT DESC, RUN_ID, WORKER_ID LIMIT ?1",
                        runs::LISTED_COLUMNS
                    ),
                    &[rusqlite::types::Value::Integer(limit)],
                    "listing runs",
                )
            })
            .await
    }

    async fn runs_page(&self, filter: &RunFilter) -> Result<RunPage> {
        self.list_page(filter).await
    }

    async fn delete_run(&self, run_id: RunId) -> Result<bool> {
        self.delete_run_rows(run_id).await
    }

    async fn summary(&self, run_id: RunId, worker_id: Option<&str>) -> Result<Option<RunSummary>> {
        let worker = worker_key(worker_id);
        self.store
            .with_conn("summary", move |conn| {
                let row: Option<(String, String, Option<String>, Option<String>)> = conn
                    .query_row(
                        "SELECT SUMMARY_JSON, STATUS, REASON, VERDICT FROM TEST_RESULTS \
                         WHERE RUN_ID = ?1 AND WORKER_ID = ?2",
                        [run_id.to_string(), worker],
                        |r| TryFrom::try_from(r),
                    )
                    .optional()
                    .map_err(|e| map_error(e, "reading a run summary"))?;
                let Some((json, status, reason, verdict)) = row else {
                    return Ok(None);
                };
                let summary: RunSummary = from_json(&json, "SUMMARY_JSON")?;
                overlay_status(summary, &status, reason, verdict.as_deref()).map(Some)
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
                    .map_err(|e| map_error(e, context))?;
                let rows = stmt
                    .query_map([run_id.to_string()], |r| r.get::<_, String>(0))
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(|e| map_error(e, context))?;
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
                    .map_err(|e| map_error(e, context))?;
                type RawExecution =
                    (String, String, u32, String, String, String, i64, i64, i64, bool, Option<String>);
                let rows: Vec<RawExecution> = stmt
                    .query_map(params![run_id.to_string(), limit], |r| TryFrom::try_from(r))
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(|e| map_error(e, context))?;
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

/// The row's STATUS, REASON and VERDICT columns are authoritative (a run marked FAILED after
/// it was abandoned keeps its RUNNING summary document).
fn overlay_status(
    mut summary: RunSummary,
    status: &str,
    reason: Option<String>,
    verdict: Option<&str>,
) -> Result<RunSummary> {
    let status = RunStatus::from_str(status)?;
    if status != summary.status {
        summary.status = status;
        summary.reason = reason.or(summary.reason);
        if let Some(v) = verdict {
            summary.verdict = Some(Verdict::from_str(v)?);
        }
    }
    Ok(summary)
}

fn parse_error_kind(s: &str) -> Result<ErrorKind> {
    ErrorKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
        Error::backend(ErrorKind::Other, format!("stored ERROR_KIND `{s}` is not an error kind"))
    })
}
