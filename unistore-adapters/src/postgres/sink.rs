//! Results store on PostgreSQL: templates, run summaries, metric snapshots and sampled query
//! executions, in the tables of `sql/schema/postgres/results.sql`.
//!
//! Bulk writes: snapshots go in as one `INSERT ... SELECT FROM unnest($1, $2, ...)` per batch
//! (one round trip, idempotent on the primary key); query executions, the largest volume, go
//! through binary `COPY ... FROM STDIN`.

mod runs;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{Json, ToSql, Type};
use unistore_core::metrics::{MetricSnapshot, QueryExecution, RunSummary};
use unistore_core::sink::{RunListEntry, STALE_RUN_REASON};
use unistore_core::{
    Error, ErrorKind, Result, ResultsReader, ResultsSink, RunFilter, RunId, RunPage, RunRecord, RunStatus,
    StoredTemplate, Template, Verdict,
};
use uuid::Uuid;

use super::config::PostgresConfig;
use super::pool::StorePool;
use super::stats::ServerStats;
use super::{map_error, quote_ident, require_tables};

const TABLES: [&str; 4] = ["test_templates", "test_results", "worker_metrics_snapshots", "query_executions"];

/// The results store (write and read side) on PostgreSQL.
#[derive(Debug)]
pub struct PostgresResultsStore {
    pool: StorePool,
    /// Quoted schema with a trailing dot, e.g. `"unistore".`.
    prefix: String,
}

impl PostgresResultsStore {
    /// Opens the store at `url` (tables in `?schema=`, default `unistore`). Missing tables are
    /// an error naming `sql/schema/postgres/results.sql`.
    pub async fn open(url: &str) -> Result<Self> {
        let config = PostgresConfig::from_url(url)?;
        let (pool, first) = StorePool::open(config, "unistore-results", 4).await?;
        require_tables(&first, pool.config(), &TABLES, "results.sql").await?;
        require_columns(&first, pool.config()).await?;
        let prefix = format!("{}.", quote_ident(pool.config().store_schema()));
        Ok(PostgresResultsStore { pool, prefix })
    }

    fn table(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn ctx(&self, what: &str) -> String {
        format!("{what} in the results store {}", self.pool.config().redacted_url())
    }

    /// The server-side statistics stored with a run, if any.
    pub async fn server_stats(&self, run_id: RunId, worker_id: Option<&str>) -> Result<Option<ServerStats>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT server_stats FROM {} WHERE run_id = $1 AND worker_id = $2",
                    self.table("test_results")
                ),
                &[&run_id.0, &worker_id.unwrap_or("")],
            )
            .await
            .map_err(|e| map_error(e, &self.ctx("reading server statistics")))?;
        match row {
            None => Ok(None),
            Some(r) => {
                let v: Option<Json<ServerStats>> =
                    r.try_get(0).map_err(|e| map_error(e, &self.ctx("decoding server statistics")))?;
                Ok(v.map(|j| j.0))
            }
        }
    }
}

/// Columns (and a table) that newer versions added, as `table.column`.
const ADDED_COLUMNS: [&str; 13] = [
    "test_results.template_id",
    "test_results.template",
    "test_results.target",
    "test_results.planned_end_at",
    "test_results.ended_at",
    "test_results.reason",
    "test_results.verdict",
    "test_results.slo_violations",
    "test_results.target_qps",
    "test_results.target_reached",
    "test_results.template_version",
    "test_templates.version",
    "test_template_versions.template",
];

/// A store made by an older version lacks the newer columns: say which, and how to add them.
async fn require_columns(client: &tokio_postgres::Client, config: &PostgresConfig) -> Result<()> {
    let rows = client
        .query(
            "SELECT table_name::text || '.' || column_name::text FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name IN ('test_results', 'test_templates', \
             'test_template_versions')",
            &[&config.store_schema()],
        )
        .await
        .map_err(|e| map_error(e, "checking the results store's columns"))?;
    let found: Vec<String> = rows.iter().filter_map(|r| r.try_get::<_, String>(0).ok()).collect();
    let missing: Vec<&str> = ADDED_COLUMNS.into_iter().filter(|c| !found.iter().any(|f| f == c)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::backend(
        ErrorKind::NotFound,
        format!(
            "the results tables in schema `{}` of {} were made by an older version and lack {}: \
             run `unistore-worker setup --results URL` (or sql/schema/postgres/results.sql again; \
             it only adds what is missing)",
            config.store_schema(),
            config.redacted_url(),
            missing.join(", ")
        ),
    ))
}

/// Versions are small positive integers the store assigns itself.
fn version_of(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn decode<T>(r: std::result::Result<T, tokio_postgres::Error>, what: &str) -> Result<T> {
    r.map_err(|e| {
        Error::backend(ErrorKind::Other, format!("cannot decode {what} from the results store: {e}"))
    })
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A template row: id, template, time, version (in that order in every query).
fn template_from_row(r: &tokio_postgres::Row) -> Result<StoredTemplate> {
    let template_id: String = decode(r.try_get(0), "template_id")?;
    let template: Json<Template> = decode(r.try_get(1), "template")?;
    let updated_at: DateTime<Utc> = decode(r.try_get(2), "the template's time")?;
    let version: i32 = decode(r.try_get(3), "version")?;
    Ok(StoredTemplate { template_id, template: template.0, version: version_of(version), updated_at })
}

impl PostgresResultsStore {
    /// [`ResultsSink::save_template_version`] in one transaction that first takes the id's row
    /// lock: savers of one id take their turns, each comparing with the version before it. A new
    /// id has no row to lock yet, so one is inserted (version 0, visible to nobody else until
    /// commit); a concurrent saver's insert waits on the primary key for this transaction, then
    /// finds the committed row and locks it. Every saver takes that one lock before touching
    /// `test_template_versions`, so savers cannot deadlock.
    async fn save_template_locked(
        &self,
        client: &mut tokio_postgres::Client,
        t: &StoredTemplate,
    ) -> Result<u32> {
        let ctx = self.ctx("saving a template version");
        let templates = self.table("test_templates");
        let tx = client.transaction().await.map_err(|e| map_error(e, &ctx))?;
        tx.execute(
            &format!(
                "INSERT INTO {templates} (template_id, name, template, updated_at, version) \
                 VALUES ($1, $2, $3, $4, 0) ON CONFLICT (template_id) DO NOTHING"
            ),
            &[&t.template_id, &t.template.name, &Json(&t.template), &t.updated_at],
        )
        .await
        .map_err(|e| map_error(e, &ctx))?;
        let current = tx
            .query_one(
                &format!("SELECT version, template = $2 FROM {templates} WHERE template_id = $1 FOR UPDATE"),
                &[&t.template_id, &Json(&t.template)],
            )
            .await
            .map_err(|e| map_error(e, &ctx))?;
        let latest: i32 = decode(current.try_get(0), "version")?;
        if latest > 0 && decode::<bool>(current.try_get(1), "a template comparison")? {
            tx.commit().await.map_err(|e| map_error(e, &ctx))?;
            return Ok(version_of(latest));
        }
        let row = tx
            .query_one(
                &format!(
                    "SELECT COALESCE(max(version), 0) FROM {} WHERE template_id = $1",
                    self.table("test_template_versions")
                ),
                &[&t.template_id],
            )
            .await
            .map_err(|e| map_error(e, &ctx))?;
        let next = latest.max(decode(row.try_get(0), "version")?).saturating_add(1);
        tx.execute(
            &format!(
                "INSERT INTO {} (template_id, version, name, template, created_at) VALUES ($1, $2, $3, $4, $5)",
                self.table("test_template_versions")
            ),
            &[&t.template_id, &next, &t.template.name, &Json(&t.template), &t.updated_at],
        )
        .await
        .map_err(|e| map_error(e, &ctx))?;
        tx.execute(
            &format!(
                "UPDATE {templates} SET name = $2, template = $3, updated_at = $4, version = $5 \
                 WHERE template_id = $1"
            ),
            &[&t.template_id, &t.template.name, &Json(&t.template), &t.updated_at, &next],
        )
        .await
        .map_err(|e| map_error(e, &ctx))?;
        tx.commit().await.map_err(|e| map_error(e, &ctx))?;
        Ok(version_of(next))
    }
}

#[async_trait]
impl ResultsSink for PostgresResultsStore {
    async fn save_template_version(&self, template: &StoredTemplate) -> Result<Option<u32>> {
        let mut client = self.pool.get().await?;
        self.save_template_locked(&mut client, template).await.map(Some)
    }

    async fn write_snapshots(&self, snapshots: &[MetricSnapshot]) -> Result<()> {
        if snapshots.is_empty() {
            return Ok(());
        }
        let n = snapshots.len();
        let (mut run, mut worker, mut seq, mut taken, mut elapsed, mut phase) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut conns, mut ops, mut errors, mut qps, mut p95, mut doc) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for s in snapshots {
            run.push(s.run_id.0);
            worker.push(s.worker_id.as_str());
            seq.push(i64_of(s.seq));
            taken.push(s.taken_at);
            elapsed.push(s.elapsed_s);
            phase.push(s.phase.as_str());
            conns.push(i32::try_from(s.active_connections).unwrap_or(i32::MAX));
            ops.push(i64_of(s.total.ops));
            errors.push(i64_of(s.total.errors));
            qps.push(s.total.qps);
            p95.push(s.total.latency_ms.p95);
            doc.push(Json(s));
        }
        let client = self.pool.get().await?;
        client
            .execute(
                &format!(
                    "INSERT INTO {} (run_id, worker_id, seq, taken_at, elapsed_s, phase, active_connections, \
                     ops, errors, qps, p95_ms, snapshot) \
                     SELECT * FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::timestamptz[], $5::float8[], \
                     $6::text[], $7::int4[], $8::int8[], $9::int8[], $10::float8[], $11::float8[], $12::jsonb[]) \
                     ON CONFLICT (run_id, worker_id, seq) DO NOTHING",
                    self.table("worker_metrics_snapshots")
                ),
                &[&run, &worker, &seq, &taken, &elapsed, &phase, &conns, &ops, &errors, &qps, &p95, &doc],
            )
            .await
            .map_err(|e| map_error(e, &self.ctx("writing metric snapshots")))?;
        Ok(())
    }

    async fn write_query_executions(&self, rows: &[QueryExecution]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let client = self.pool.get().await?;
        let ctx = self.ctx("writing query executions");
        let sink = client
            .copy_in(&format!(
                "COPY {} (run_id, worker_id, connection_no, query_kind, phase, started_at, response_us, \
                 service_us, row_count, ok, error_kind) FROM STDIN (FORMAT binary)",
                self.table("query_executions")
            ))
            .await
            .map_err(|e| map_error(e, &ctx))?;
        let types = [
            Type::UUID,
            Type::TEXT,
            Type::INT4,
            Type::TEXT,
            Type::TEXT,
            Type::TIMESTAMPTZ,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::BOOL,
            Type::TEXT,
        ];
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        for r in rows {
            let connection = i32::try_from(r.connection).unwrap_or(i32::MAX);
            let (response, service, count) = (i64_of(r.response_us), i64_of(r.service_us), i64_of(r.rows));
            let error_kind = r.error_kind.map(|k| k.as_str());
            let values: [&(dyn ToSql + Sync); 11] = [
                &r.run_id.0,
                &r.worker_id,
                &connection,
                &r.kind.as_str(),
                &r.phase.as_str(),
                &r.started_at,
                &response,
                &service,
                &count,
                &r.ok,
                &error_kind,
            ];
            writer.as_mut().write(&values).await.map_err(|e| map_error(e, &ctx))?;
        }
        writer.finish().await.map_err(|e| map_error(e, &ctx))?;
        Ok(())
    }

    async fn begin_run(&self, run: &RunRecord) -> Result<()> {
        let summary = RunSummary::running(run);
        let client = self.pool.get().await?;
        let connections = i32::try_from(summary.connections).unwrap_or(i32::MAX);
        client
            .execute(
                &format!(
                    "INSERT INTO {} (run_id, worker_id, template_name, target_kind, table_name, table_type, \
                     load_mode, status, connections, started_at, measurement_started_at, measurement_ended_at, \
                     duration_s, ops, errors, qps, p50_ms, p95_ms, p99_ms, slo_passed, summary, written_at, \
                     template_id, template, target, planned_end_at, verdict, target_qps, template_version) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $10, 0, 0, 0, 0, 0, 0, 0, false, $11, \
                     now(), $12, $13, $14, $15, $16, $17, $18) ON CONFLICT (run_id, worker_id) DO NOTHING",
                    self.table("test_results")
                ),
                &[
                    &run.run_id.0,
                    &run.worker_id.as_deref().unwrap_or(""),
                    &summary.template,
                    &run.target_kind,
                    &run.table,
                    &run.table_type.as_str(),
                    &summary.mode,
                    &summary.status.as_str(),
                    &connections,
                    &run.started_at,
                    &Json(&summary),
                    &run.template_id,
                    &Json(&run.template),
                    &run.target,
                    &run.planned_end_at,
                    &summary.verdict().as_str(),
                    &summary.target_qps,
                    &run.template_version.map(|v| i32::try_from(v).unwrap_or(i32::MAX)),
                ],
            )
            .await
            .map_err(|e| map_error(e, &self.ctx("writing the run's row")))?;
        Ok(())
    }

    async fn write_summary(&self, summary: &RunSummary) -> Result<()> {
        let client = self.pool.get().await?;
        let t = &summary.total;
        let connections = i32::try_from(summary.connections).unwrap_or(i32::MAX);
        client
            .execute(
                &format!(
                    "INSERT INTO {} (run_id, worker_id, template_name, target_kind, table_name, table_type, \
                     load_mode, status, connections, started_at, measurement_started_at, measurement_ended_at, \
                     duration_s, ops, errors, qps, p50_ms, p95_ms, p99_ms, slo_passed, summary, written_at, \
                     server_stats, ended_at, reason, verdict, slo_violations, target_qps, target_reached) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
                     $19, $20, $21, now(), $22, $12, $23, $24, $25, $26, $27) \
                     ON CONFLICT (run_id, worker_id) DO UPDATE SET template_name = EXCLUDED.template_name, \
                     target_kind = EXCLUDED.target_kind, table_name = EXCLUDED.table_name, \
                     table_type = EXCLUDED.table_type, load_mode = EXCLUDED.load_mode, status = EXCLUDED.status, \
                     connections = EXCLUDED.connections, started_at = EXCLUDED.started_at, \
                     measurement_started_at = EXCLUDED.measurement_started_at, \
                     measurement_ended_at = EXCLUDED.measurement_ended_at, duration_s = EXCLUDED.duration_s, \
                     ops = EXCLUDED.ops, errors = EXCLUDED.errors, qps = EXCLUDED.qps, p50_ms = EXCLUDED.p50_ms, \
                     p95_ms = EXCLUDED.p95_ms, p99_ms = EXCLUDED.p99_ms, slo_passed = EXCLUDED.slo_passed, \
                     summary = EXCLUDED.summary, written_at = now(), server_stats = EXCLUDED.server_stats, \
                     ended_at = EXCLUDED.ended_at, reason = EXCLUDED.reason, verdict = EXCLUDED.verdict, \
                     slo_violations = EXCLUDED.slo_violations, target_qps = EXCLUDED.target_qps, \
                     target_reached = EXCLUDED.target_reached",
                    self.table("test_results")
                ),
                &[
                    &summary.run_id.0,
                    &summary.worker_id.as_deref().unwrap_or(""),
                    &summary.template,
                    &summary.target_kind,
                    &summary.table,
                    &summary.table_type.as_str(),
                    &summary.mode,
                    &summary.status.as_str(),
                    &connections,
                    &summary.started_at,
                    &summary.measurement_started_at,
                    &summary.measurement_ended_at,
                    &summary.duration_s,
                    &i64_of(t.ops),
                    &i64_of(t.errors),
                    &t.qps,
                    &t.latency_ms.p50,
                    &t.latency_ms.p95,
                    &t.latency_ms.p99,
                    &summary.slo.passed,
                    &Json(summary),
                    &summary.server_stats.as_ref().map(Json),
                    &summary.reason,
                    &summary.verdict().as_str(),
                    &Json(&summary.slo.violations),
                    &summary.target_qps,
                    &summary.target_reached,
                ],
            )
            .await
            .map_err(|e| map_error(e, &self.ctx("writing a run summary")))?;
        Ok(())
    }

    async fn fail_stale_runs(&self, now: DateTime<Utc>, grace: std::time::Duration) -> Result<Vec<RunId>> {
        let cutoff = now - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "UPDATE {results} r SET status = 'FAILED', verdict = 'FAILED', reason = $1, ended_at = $2 \
                     WHERE r.status = 'RUNNING' AND r.planned_end_at < $3 \
                     AND COALESCE((SELECT max(s.taken_at) FROM {snapshots} s WHERE s.run_id = r.run_id), \
                     r.started_at) < $3 RETURNING r.run_id",
                    results = self.table("test_results"),
                    snapshots = self.table("worker_metrics_snapshots"),
                ),
                &[&STALE_RUN_REASON, &now, &cutoff],
            )
            .await
            .map_err(|e| map_error(e, &self.ctx("marking abandoned runs as failed")))?;
        let mut runs = rows
            .iter()
            .map(|r| decode::<Uuid>(r.try_get(0), "run_id").map(RunId))
            .collect::<Result<Vec<_>>>()?;
        runs.sort();
        runs.dedup();
        Ok(runs)
    }
}

#[async_trait]
impl ResultsReader for PostgresResultsStore {
    async fn template(&self, template_id: &str) -> Result<Option<StoredTemplate>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT template_id, template, updated_at, version FROM {} WHERE template_id = $1",
                    self.table("test_templates")
                ),
                &[&template_id],
            )
            .await
            .map_err(|e| map_error(e, &self.ctx("reading a template")))?;
        row.as_ref().map(template_from_row).transpose()
    }

    async fn template_versions(&self, template_id: &str) -> Result<Vec<StoredTemplate>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT template_id, template, created_at, version FROM {} WHERE template_id = $1 \
                     ORDER BY version",
                    self.table("test_template_versions")
                ),
                &[&template_id],
            )
            .await
            .map_err(|e| map_error(e, &self.ctx("reading the versions of a template")))?;
        rows.iter().map(template_from_row).collect()
    }

    async fn templates(&self) -> Result<Vec<StoredTemplate>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT template_id, template, updated_at, version FROM {} \
                     ORDER BY updated_at DESC, template_id",
                    self.table("test_templates")
                ),
                &[],
            )
            .await
            .map_err(|e| map_error(e, &self.ctx("listing templates")))?;
        rows.iter().map(template_from_row).collect()
    }

    async fn delete_template(&self, template_id: &str) -> Result<bool> {
        let mut client = self.pool.get().await?;
        let ctx = self.ctx("deleting a template");
        let tx = client.transaction().await.map_err(|e| map_error(e, &ctx))?;
        let mut deleted = 0;
        for table in ["test_templates", "test_template_versions"] {
            deleted += tx
                .execute(
                    &format!("DELETE FROM {} WHERE template_id = $1", self.table(table)),
                    &[&template_id],
                )
                .await
                .map_err(|e| map_error(e, &ctx))?;
        }
        tx.commit().await.map_err(|e| map_error(e, &ctx))?;
        Ok(deleted > 0)
    }

    async fn run_record(&self, run_id: RunId, worker_id: Option<&str>) -> Result<Option<RunRecord>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT template_id, template_version, template, target, target_kind, table_name, table_type, \
                     summary, started_at, planned_end_at FROM {} WHERE run_id = $1 AND worker_id = $2",
                    self.table("test_results")
                ),
                &[&run_id.0, &worker_id.unwrap_or("")],
            )
            .await
            .map_err(|e| map_error(e, &self.ctx("reading a run's row")))?;
        let Some(r) = row else {
            return Ok(None);
        };
        let template_id: Option<String> = decode(r.try_get(0), "template_id")?;
        let template: Option<Json<Template>> = decode(r.try_get(2), "template")?;
        let target: Option<String> = decode(r.try_get(3), "target")?;
        let planned_end_at: Option<DateTime<Utc>> = decode(r.try_get(9), "planned_end_at")?;
        let (Some(template_id), Some(template), Some(target), Some(planned_end_at)) =
            (template_id, template, target, planned_end_at)
        else {
            // A row written only by a summary: nothing says how the run was begun.
            return Ok(None);
        };
        let table_type: String = decode(r.try_get(6), "table_type")?;
        let summary: Json<RunSummary> = decode(r.try_get(7), "summary")?;
        Ok(Some(RunRecord {
            run_id,
            worker_id: worker_id.map(str::to_string),
            template_id,
            template_version: decode::<Option<i32>>(r.try_get(1), "template_version")?.map(version_of),
            template: template.0,
            target,
            target_kind: decode(r.try_get(4), "target_kind")?,
            table: decode(r.try_get(5), "table_name")?,
            table_type: table_type.parse()?,
            seed: summary.0.seed,
            started_at: decode(r.try_get(8), "started_at")?,
            planned_end_at,
        }))
    }

    async fn runs(&self, limit: usize) -> Result<Vec<RunListEntry>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM {} ORDER BY started_at DESC, run_id, worker_id LIMIT $1",
                    runs::LISTED_COLUMNS,
                    self.table("test_results")
                ),
                &[&i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .await
            .map_err(|e| map_error(e, &self.ctx("listing runs")))?;
        rows.iter().map(runs::entry).collect()
    }

    async fn runs_page(&self, filter: &RunFilter) -> Result<RunPage> {
        self.list_page(filter).await
    }

    async fn delete_run(&self, run_id: RunId) -> Result<bool> {
        self.delete_run_rows(run_id).await
    }

    async fn summary(&self, run_id: RunId, worker_id: Option<&str>) -> Result<Option<RunSummary>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT summary, status, reason, verdict FROM {} WHERE run_id = $1 AND worker_id = $2",
                    self.table("test_results")
                ),
                &[&run_id.0, &worker_id.unwrap_or("")],
            )
            .await
            .map_err(|e| map_error(e, &self.ctx("reading a run summary")))?;
        let Some(r) = row else {
            return Ok(None);
        };
        let mut summary = decode::<Json<RunSummary>>(r.try_get(0), "summary")?.0;
        // The columns are authoritative: a run marked FAILED after it was abandoned keeps its
        // RUNNING summary document.
        let status: RunStatus = decode::<String>(r.try_get(1), "status")?.parse()?;
        if status != summary.status {
            summary.status = status;
            summary.reason = decode::<Option<String>>(r.try_get(2), "reason")?.or(summary.reason);
            if let Some(v) = decode::<Option<String>>(r.try_get(3), "verdict")? {
                summary.verdict = Some(v.parse::<Verdict>()?);
            }
        }
        Ok(Some(summary))
    }

    async fn snapshots(&self, run_id: RunId) -> Result<Vec<MetricSnapshot>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT snapshot FROM {} WHERE run_id = $1 ORDER BY taken_at, worker_id, seq",
                    self.table("worker_metrics_snapshots")
                ),
                &[&run_id.0],
            )
            .await
            .map_err(|e| map_error(e, &self.ctx("reading snapshots")))?;
        rows.iter().map(|r| decode::<Json<MetricSnapshot>>(r.try_get(0), "snapshot").map(|j| j.0)).collect()
    }

    async fn query_executions(&self, run_id: RunId, limit: usize) -> Result<Vec<QueryExecution>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT run_id, worker_id, connection_no, query_kind, phase, started_at, response_us, service_us, \
                     row_count, ok, error_kind FROM {} WHERE run_id = $1 ORDER BY started_at, execution_id LIMIT $2",
                    self.table("query_executions")
                ),
                &[&run_id.0, &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .await
            .map_err(|e| map_error(e, &self.ctx("reading query executions")))?;
        rows.iter()
            .map(|r| {
                let kind: String = decode(r.try_get(3), "query_kind")?;
                let phase: String = decode(r.try_get(4), "phase")?;
                let error_kind: Option<String> = decode(r.try_get(10), "error_kind")?;
                Ok(QueryExecution {
                    run_id: RunId(decode::<Uuid>(r.try_get(0), "run_id")?),
                    worker_id: decode(r.try_get(1), "worker_id")?,
                    connection: u32::try_from(decode::<i32>(r.try_get(2), "connection_no")?).unwrap_or(0),
                    kind: kind.parse()?,
                    phase: phase.parse()?,
                    started_at: decode(r.try_get(5), "started_at")?,
                    response_us: u64_of(decode(r.try_get(6), "response_us")?),
                    service_us: u64_of(decode(r.try_get(7), "service_us")?),
                    rows: u64_of(decode(r.try_get(8), "row_count")?),
                    ok: decode(r.try_get(9), "ok")?,
                    error_kind: error_kind.as_deref().map(parse_error_kind).transpose()?,
                })
            })
            .collect()
    }
}

fn parse_error_kind(s: &str) -> Result<ErrorKind> {
    ErrorKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
        Error::backend(ErrorKind::Other, format!("unknown error kind `{s}` in the results store"))
    })
}
