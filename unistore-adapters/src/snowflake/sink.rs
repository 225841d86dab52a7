//! The results store in Snowflake: templates, run summaries, metric snapshots and sampled query
//! executions, in `UNISTORE_BENCHMARK.TEST_RESULTS` (database and schema from the URL).

mod runs;
mod versions;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use unistore_core::metrics::{MetricSnapshot, QueryExecution, RunSummary};
use unistore_core::sink::{
    ResultsReader, ResultsSink, RunListEntry, RunRecord, StoredTemplate, STALE_RUN_REASON,
};
use unistore_core::{ErrorKind, Result, RunFilter, RunId, RunPage, RunStatus, TableType, Value, Verdict};

use super::pool::{Connector, SessionPool};
use super::tables::ident;
use super::{from_json, stored_time, to_json, Row, SnowflakeConfig, STORE_SESSIONS};

/// Rows per multi-row INSERT: few round trips, and well below Snowflake's bind limits.
const INSERT_BATCH: usize = 100;

/// [`ResultsSink`] and [`ResultsReader`] on Snowflake standard tables.
pub struct SnowflakeResultsStore {
    pool: Arc<SessionPool>,
    prefix: String,
}

impl std::fmt::Debug for SnowflakeResultsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnowflakeResultsStore").field("location", &self.prefix).finish()
    }
}

impl SnowflakeResultsStore {
    /// A store for the URL's database and schema (default `UNISTORE_BENCHMARK.TEST_RESULTS`).
    pub fn open(url: &str) -> Result<Self> {
        let config = SnowflakeConfig::from_url(url)?;
        let (database, schema) = config.results_location();
        let prefix = format!("{}.{}", ident(&database), ident(&schema));
        let connector = Connector::new(config.with_location(&database, &schema));
        Ok(SnowflakeResultsStore {
            pool: Arc::new(SessionPool::new(connector, "unistore:results", STORE_SESSIONS)),
            prefix,
        })
    }

    fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    /// Inserts rows of `columns` values each, `INSERT_BATCH` rows per statement.
    async fn insert_rows(&self, table: &str, columns: &[&str], rows: Vec<Vec<Value>>) -> Result<()> {
        let one = format!("({})", vec!["?"; columns.len()].join(", "));
        for chunk in rows.chunks(INSERT_BATCH) {
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {}",
                self.table(table),
                columns.join(", "),
                vec![one.as_str(); chunk.len()].join(", ")
            );
            let params: Vec<Value> = chunk.iter().flatten().cloned().collect();
            self.pool.execute(&sql, &params).await?;
        }
        Ok(())
    }

    /// `UPDATE` by key, else `INSERT` (and `UPDATE` again if a concurrent writer inserted first).
    async fn upsert(
        &self,
        update: &str,
        update_params: &[Value],
        insert: &str,
        insert_params: &[Value],
    ) -> Result<()> {
        if self.pool.execute(update, update_params).await? > 0 {
            return Ok(());
        }
        match self.pool.execute(insert, insert_params).await {
            Err(e) if e.kind() == ErrorKind::Constraint => {
                self.pool.execute(update, update_params).await.map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> Value {
    Value::Timestamp(stored_time(t).timestamp_micros())
}

fn int(n: u64) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

#[async_trait]
impl ResultsSink for SnowflakeResultsStore {
    async fn save_template_version(&self, template: &StoredTemplate) -> Result<Option<u32>> {
        self.save_version(template).await.map(Some)
    }

    async fn write_snapshots(&self, snapshots: &[MetricSnapshot]) -> Result<()> {
        // Primary keys of standard tables are not enforced: delete what a retried batch may
        // have written before, so a replay never duplicates a snapshot.
        for chunk in snapshots.chunks(INSERT_BATCH) {
            let keys = vec!["(?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "DELETE FROM {} WHERE (RUN_ID, WORKER_ID, SEQ) IN ({keys})",
                self.table("WORKER_METRICS_SNAPSHOTS")
            );
            let params: Vec<Value> = chunk
                .iter()
                .flat_map(|s| [Value::text(s.run_id.to_string()), Value::text(&s.worker_id), int(s.seq)])
                .collect();
            self.pool.execute(&sql, &params).await?;
        }
        let rows = snapshots
            .iter()
            .map(|s| {
                Ok(vec![
                    Value::text(s.run_id.to_string()),
                    Value::text(&s.worker_id),
                    int(s.seq),
                    ts(s.taken_at),
                    Value::Float(s.elapsed_s),
                    Value::text(s.phase.as_str()),
                    int(s.total.ops),
                    int(s.total.errors),
                    Value::Float(s.total.qps),
                    Value::Float(s.total.latency_ms.p50),
                    Value::Float(s.total.latency_ms.p95),
                    Value::Float(s.total.latency_ms.p99),
                    Value::text(to_json(s, "a metric snapshot")?),
                ])
            })
            .collect::<Result<Vec<_>>>()?;
        self.insert_rows(
            "WORKER_METRICS_SNAPSHOTS",
            &[
                "RUN_ID",
                "WORKER_ID",
                "SEQ",
                "TAKEN_AT",
                "ELAPSED_S",
                "PHASE",
                "OPS",
                "ERRORS",
                "QPS",
                "P50_MS",
                "P95_MS",
                "P99_MS",
                "SNAPSHOT_JSON",
            ],
            rows,
        )
        .await
    }

    async fn write_query_executions(&self, rows: &[QueryExecution]) -> Result<()> {
        let rows = rows
            .iter()
            .map(|q| {
                vec![
                    Value::text(q.run_id.to_string()),
                    Value::text(&q.worker_id),
                    Value::Int(i64::from(q.connection)),
                    Value::text(q.kind.as_str()),
                    Value::text(q.phase.as_str()),
                    ts(q.started_at),
                    int(q.response_us),
                    int(q.service_us),
                    int(q.rows),
                    Value::Bool(q.ok),
                    q.error_kind.map(|k| Value::text(k.as_str())).unwrap_or(Value::Null),
                ]
            })
            .collect();
        self.insert_rows(
            "QUERY_EXECUTIONS",
            &[
                "RUN_ID",
                "WORKER_ID",
                "CONNECTION_ID",
                "KIND",
                "PHASE",
                "STARTED_AT",
                "RESPONSE_US",
                "SERVICE_US",
                "ROWS_READ",
                "OK",
                "ERROR_KIND",
            ],
            rows,
        )
        .await
    }

    async fn begin_run(&self, run: &RunRecord) -> Result<()> {
        let summary = RunSummary::running(run);
        let t = self.table("TEST_RESULTS");
        let columns = [
            "RUN_ID",
            "WORKER_ID",
            "TEMPLATE_NAME",
            "TARGET_KIND",
            "TABLE_NAME",
            "TABLE_TYPE",
            "MODE",
            "STATUS",
            "STARTED_AT",
            "DURATION_S",
            "OPS",
            "ERRORS",
            "QPS",
            "P50_MS",
            "P95_MS",
            "P99_MS",
            "SUMMARY_JSON",
            "TEMPLATE_ID",
            "TEMPLATE_JSON",
            "TARGET",
            "PLANNED_END_AT",
            "VERDICT",
            "TARGET_QPS",
            "TEMPLATE_VERSION",
        ];
        let key = [Value::text(run.run_id.to_string()), Value::text(run.worker_id.as_deref().unwrap_or(""))];
        let mut params: Vec<Value> = key.to_vec();
        params.extend([
            Value::text(&summary.template),
            Value::text(&run.target_kind),
            Value::text(&run.table),
            Value::text(run.table_type.as_str()),
            Value::text(&summary.mode),
            Value::text(summary.status.as_str()),
            ts(run.started_at),
            Value::Float(0.0),
            Value::Int(0),
            Value::Int(0),
            Value::Float(0.0),
            Value::Float(0.0),
            Value::Float(0.0),
            Value::Float(0.0),
            Value::text(to_json(&summary, "the run summary")?),
            Value::text(&run.template_id),
            Value::text(to_json(&run.template, "the template")?),
            Value::text(&run.target),
            ts(run.planned_end_at),
            Value::text(summary.verdict().as_str()),
            summary.target_qps.map_or(Value::Null, Value::Float),
            run.template_version.map_or(Value::Null, |v| Value::Int(i64::from(v))),
        ]);
        params.extend(key);
        // Insert only if absent (primary keys are not enforced on standard tables).
        let sql = format!(
            "INSERT INTO {t} ({}) SELECT {} WHERE NOT EXISTS (SELECT 1 FROM {t} WHERE RUN_ID = ? AND WORKER_ID = ?)",
            columns.join(", "),
            vec!["?"; columns.len()].join(", ")
        );
        self.pool.execute(&sql, &params).await.map(|_| ())
    }

    async fn write_summary(&self, summary: &RunSummary) -> Result<()> {
        let json = to_json(summary, "the run summary")?;
        let key = [
            Value::text(summary.run_id.to_string()),
            Value::text(summary.worker_id.as_deref().unwrap_or("")),
        ];
        let opt_bool = |b: Option<bool>| b.map_or(Value::Null, Value::Bool);
        let values = vec![
            Value::text(&summary.template),
            Value::text(&summary.target_kind),
            Value::text(&summary.table),
            Value::text(summary.table_type.as_str()),
            Value::text(&summary.mode),
            Value::text(summary.status.as_str()),
            ts(summary.started_at),
            Value::Float(summary.duration_s),
            int(summary.total.ops),
            int(summary.total.errors),
            Value::Float(summary.total.qps),
            Value::Float(summary.total.latency_ms.p50),
            Value::Float(summary.total.latency_ms.p95),
            Value::Float(summary.total.latency_ms.p99),
            Value::text(json),
            ts(summary.measurement_ended_at),
            summary.reason.as_deref().map_or(Value::Null, Value::text),
            Value::text(summary.verdict().as_str()),
            Value::Bool(summary.slo.passed),
            Value::text(to_json(&summary.slo.violations, "the SLO violations")?),
            summary.target_qps.map_or(Value::Null, Value::Float),
            opt_bool(summary.target_reached),
            summary.server_stats.as_ref().map_or(Value::Null, |v| Value::text(v.to_string())),
        ];
        let columns = [
            "TEMPLATE_NAME",
            "TARGET_KIND",
            "TABLE_NAME",
            "TABLE_TYPE",
            "MODE",
            "STATUS",
            "STARTED_AT",
            "DURATION_S",
            "OPS",
            "ERRORS",
            "QPS",
            "P50_MS",
            "P95_MS",
            "P99_MS",
            "SUMMARY_JSON",
            "ENDED_AT",
            "REASON",
            "VERDICT",
            "SLO_PASSED",
            "SLO_VIOLATIONS",
            "TARGET_QPS",
            "TARGET_REACHED",
            "SERVER_STATS",
        ];
        let t = self.table("TEST_RESULTS");
        let set: Vec<String> = columns.iter().map(|c| format!("{c} = ?")).collect();
        let update = format!("UPDATE {t} SET {} WHERE RUN_ID = ? AND WORKER_ID = ?", set.join(", "));
        let insert = format!(
            "INSERT INTO {t} (RUN_ID, WORKER_ID, {}) VALUES ({})",
            columns.join(", "),
            vec!["?"; columns.len() + 2].join(", ")
        );
        let update_params: Vec<Value> = values.iter().cloned().chain(key.iter().cloned()).collect();
        let insert_params: Vec<Value> = key.iter().cloned().chain(values).collect();
        self.upsert(&update, &update_params, &insert, &insert_params).await
    }

    async fn fail_stale_runs(&self, now: DateTime<Utc>, grace: std::time::Duration) -> Result<Vec<RunId>> {
        let cutoff = now - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        let results = self.table("TEST_RESULTS");
        // Find the candidates first (a join, which every Snowflake edition and the emulator
        // run), then update them by key, still requiring RUNNING so a run that finished in
        // between keeps its summary.
        let find = format!(
            "SELECT r.RUN_ID FROM {results} r LEFT JOIN (SELECT RUN_ID, MAX(TAKEN_AT) AS LAST_AT FROM {} \
             GROUP BY RUN_ID) s ON s.RUN_ID = r.RUN_ID WHERE r.STATUS = 'RUNNING' AND r.PLANNED_END_AT < ? \
             AND COALESCE(s.LAST_AT, r.STARTED_AT) < ?",
            self.table("WORKER_METRICS_SNAPSHOTS")
        );
        let rows = self.pool.rows(&find, &[ts(cutoff), ts(cutoff)]).await?;
        let mut runs = rows.iter().map(|r| Row(r).run_id(0)).collect::<Result<Vec<_>>>()?;
        runs.sort();
        runs.dedup();
        for run in &runs {
            let sql = format!(
                "UPDATE {results} SET STATUS = 'FAILED', VERDICT = 'FAILED', REASON = ?, ENDED_AT = ? \
                 WHERE RUN_ID = ? AND STATUS = 'RUNNING'"
            );
            self.pool
                .execute(&sql, &[Value::text(STALE_RUN_REASON), ts(now), Value::text(run.to_string())])
                .await?;
        }
        Ok(runs)
    }
}

/// A template row: id, JSON, time, version (in that order in every query).
fn stored_template(row: &Row<'_>) -> Result<StoredTemplate> {
    Ok(StoredTemplate {
        template_id: row.text(0)?,
        template: from_json(&row.text(1)?, "TEMPLATE_JSON")?,
        version: u32::try_from(row.u64(3)?).unwrap_or(u32::MAX),
        updated_at: row.time(2)?,
    })
}

/// Rows whose `key` repeats the previous row's are left out: first savers of identical content
/// may both have kept their row (see the `versions` module).
fn once_each<K: PartialEq>(
    rows: Vec<StoredTemplate>,
    key: impl Fn(&StoredTemplate) -> K,
) -> Vec<StoredTemplate> {
    let mut kept: Vec<StoredTemplate> = Vec::with_capacity(rows.len());
    for row in rows {
        if kept.iter().all(|k| key(k) != key(&row)) {
            kept.push(row);
        }
    }
    kept
}

#[async_trait]
impl ResultsReader for SnowflakeResultsStore {
    async fn template(&self, template_id: &str) -> Result<Option<StoredTemplate>> {
        let sql = format!(
            "SELECT TEMPLATE_ID, TEMPLATE_JSON, UPDATED_AT, VERSION FROM {} WHERE TEMPLATE_ID = ? \
             ORDER BY VERSION DESC LIMIT 1",
            self.table("TEST_TEMPLATES")
        );
        let rows = self.pool.rows(&sql, &[Value::text(template_id)]).await?;
        rows.first().map(|r| stored_template(&Row(r))).transpose()
    }

    async fn template_versions(&self, template_id: &str) -> Result<Vec<StoredTemplate>> {
        let sql = format!(
            "SELECT TEMPLATE_ID, TEMPLATE_JSON, CREATED_AT, VERSION FROM {} WHERE TEMPLATE_ID = ? \
             ORDER BY VERSION, CREATED_AT",
            self.table("TEST_TEMPLATE_VERSIONS")
        );
        let rows = self.pool.rows(&sql, &[Value::text(template_id)]).await?;
        let rows = rows.iter().map(|r| stored_template(&Row(r))).collect::<Result<Vec<_>>>()?;
        Ok(once_each(rows, |t| t.version))
    }

    async fn templates(&self) -> Result<Vec<StoredTemplate>> {
        let sql = format!(
            "SELECT TEMPLATE_ID, TEMPLATE_JSON, UPDATED_AT, VERSION FROM {} \
             ORDER BY UPDATED_AT DESC, TEMPLATE_ID, VERSION DESC",
            self.table("TEST_TEMPLATES")
        );
        let rows = self.pool.rows(&sql, &[]).await?;
        let rows = rows.iter().map(|r| stored_template(&Row(r))).collect::<Result<Vec<_>>>()?;
        Ok(once_each(rows, |t| t.template_id.clone()))
    }

    async fn delete_template(&self, template_id: &str) -> Result<bool> {
        let mut deleted = 0;
        // History first: a delete cut short leaves the current row, so the id stays listed and
        // can be deleted again.
        for table in ["TEST_TEMPLATE_VERSIONS", "TEST_TEMPLATES"] {
            let sql = format!("DELETE FROM {} WHERE TEMPLATE_ID = ?", self.table(table));
            deleted += self.pool.execute(&sql, &[Value::text(template_id)]).await?;
        }
        Ok(deleted > 0)
    }

    async fn run_record(&self, run_id: RunId, worker_id: Option<&str>) -> Result<Option<RunRecord>> {
        let sql = format!(
            "SELECT TEMPLATE_ID, TEMPLATE_VERSION, TEMPLATE_JSON, TARGET, TARGET_KIND, TABLE_NAME, TABLE_TYPE, \
             SUMMARY_JSON, STARTED_AT, PLANNED_END_AT FROM {} WHERE RUN_ID = ? AND WORKER_ID = ?",
            self.table("TEST_RESULTS")
        );
        let rows = self
            .pool
            .rows(&sql, &[Value::text(run_id.to_string()), Value::text(worker_id.unwrap_or(""))])
            .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let r = Row(r);
        let (Some(template_id), Some(template), Some(target)) =
            (r.opt_text(0)?, r.opt_text(2)?, r.opt_text(3)?)
        else {
            // A row written only by a summary: nothing says how the run was begun.
            return Ok(None);
        };
        let summary: RunSummary = from_json(&r.text(7)?, "SUMMARY_JSON")?;
        Ok(Some(RunRecord {
            run_id,
            worker_id: worker_id.map(str::to_string),
            template_id,
            template_version: r.opt_i64(1)?.map(|v| u32::try_from(v).unwrap_or(u32::MAX)),
            template: from_json(&template, "TEMPLATE_JSON")?,
            target,
            target_kind: r.text(4)?,
            table: r.text(5)?,
            table_type: r.text(6)?.parse::<TableType>()?,
            seed: summary.seed,
            started_at: r.time(8)?,
            planned_end_at: r.time(9)?,
        }))
    }

    async fn runs(&self, limit: usize) -> Result<Vec<RunListEntry>> {
        let sql = format!(
            "SELECT {} FROM {} ORDER BY STARTED_AT DESC, RUN_ID, WORKER_ID LIMIT {}",
            runs::LISTED_COLUMNS,
            self.table("TEST_RESULTS"),
            limit.max(1)
        );
        let rows = self.pool.rows(&sql, &[]).await?;
        rows.iter().map(runs::entry).collect()
    }

    async fn runs_page(&self, filter: &RunFilter) -> Result<RunPage> {
        self.list_page(filter).await
    }

    async fn delete_run(&self, run_id: RunId) -> Result<bool> {
        self.delete_run_rows(run_id).await
    }

    async fn summary(&self, run_id: RunId, worker_id: Option<&str>) -> Result<Option<RunSummary>> {
        let sql = format!(
            "SELECT SUMMARY_JSON, STATUS, REASON, VERDICT FROM {} WHERE RUN_ID = ? AND WORKER_ID = ?",
            self.table("TEST_RESULTS")
        );
        let rows = self
            .pool
            .rows(&sql, &[Value::text(run_id.to_string()), Value::text(worker_id.unwrap_or(""))])
            .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let r = Row(r);
        let mut summary: RunSummary = from_json(&r.text(0)?, "SUMMARY_JSON")?;
        // The columns are authoritative: a run marked FAILED after it was abandoned keeps its
        // RUNNING summary document.
        let status: RunStatus = r.text(1)?.parse()?;
        if status != summary.status {
            summary.status = status;
            summary.reason = r.opt_text(2)?.or(summary.reason);
            if let Some(v) = r.opt_text(3)? {
                summary.verdict = Some(v.parse::<Verdict>()?);
            }
        }
        Ok(Some(summary))
    }

    async fn snapshots(&self, run_id: RunId) -> Result<Vec<MetricSnapshot>> {
        let sql = format!(
            "SELECT SNAPSHOT_JSON FROM {} WHERE RUN_ID = ? ORDER BY TAKEN_AT, WORKER_ID, SEQ",
            self.table("WORKER_METRICS_SNAPSHOTS")
        );
        let rows = self.pool.rows(&sql, &[Value::text(run_id.to_string())]).await?;
        rows.iter().map(|r| from_json(&Row(r).text(0)?, "SNAPSHOT_JSON")).collect()
    }

    async fn query_executions(&self, run_id: RunId, limit: usize) -> Result<Vec<QueryExecution>> {
        let sql = format!(
            "SELECT RUN_ID, WORKER_ID, CONNECTION_ID, KIND, PHASE, STARTED_AT, RESPONSE_US, SERVICE_US, ROWS_READ, \
             OK, ERROR_KIND FROM {} WHERE RUN_ID = ? ORDER BY STARTED_AT, WORKER_ID, CONNECTION_ID LIMIT {}",
            self.table("QUERY_EXECUTIONS"),
            limit.max(1)
        );
        let rows = self.pool.rows(&sql, &[Value::text(run_id.to_string())]).await?;
        rows.iter()
            .map(|r| {
                let r = Row(r);
                Ok(QueryExecution {
                    run_id: r.run_id(0)?,
                    worker_id: r.text(1)?,
                    connection: u32::try_from(r.u64(2)?).unwrap_or(u32::MAX),
                    kind: r.text(3)?.parse()?,
                    phase: r.text(4)?.parse()?,
                    started_at: r.time(5)?,
                    response_us: r.u64(6)?,
                    service_us: r.u64(7)?,
                    rows: r.u64(8)?,
                    ok: r.opt_i64(9)? == Some(1),
                    error_kind: r.opt_text(10)?.map(|k| parse_error_kind(&k)),
                })
            })
            .collect()
    }
}

fn parse_error_kind(s: &str) -> ErrorKind {
    ErrorKind::ALL.into_iter().find(|k| k.as_str() == s).unwrap_or(ErrorKind::Other)
}
