//! Control store on PostgreSQL: run status, append-only control events, worker heartbeats, in
//! the tables of `sql/schema/postgres/control.sql`.
//!
//! Only rows here: the rules are `unistore_core::control`. `replace_run` is one `UPDATE ...
//! WHERE run_id = $1 AND version = $2`: under READ COMMITTED a concurrent writer of the same row
//! waits for the first one's commit and then finds the version changed, so exactly one of them
//! replaces the row, on any connection or host.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::Row;
use unistore_core::model::{ControlEvent, ControlEventKind, RunStatusRecord, WorkerHeartbeat};
use unistore_core::{ControlStore, Error, ErrorKind, Result, RunId, RunStatus};
use uuid::Uuid;

use super::config::PostgresConfig;
use super::pool::StorePool;
use super::{map_error, quote_ident, require_tables};
use crate::control_rows::{parse_scope, scope_columns, stored_results_url};

const TABLES: [&str; 3] = ["run_status", "run_control_events", "worker_heartbeats"];

/// Every column the store reads or writes, as `table.column`: tables made by an older version
/// lack some until `control.sql` is applied again.
const REQUIRED_COLUMNS: [&str; 10] = [
    "run_status.template_json",
    "run_status.results_url",
    "run_status.load_start_at",
    "run_status.controller_beat_at",
    "run_status.version",
    "run_control_events.scope_id",
    "run_control_events.event_json",
    "worker_heartbeats.state",
    "worker_heartbeats.host",
    "worker_heartbeats.pid",
];

const STATUS_COLUMNS: &str = "run_id, template_name, status, phase, reason, worker_count, \
     target_connections, target_qps, last_event_seq, created_at, updated_at, template_json, \
     results_url, load_start_at, controller_beat_at, version";

/// The control store on PostgreSQL.
#[derive(Debug)]
pub struct PostgresControlStore {
    pool: StorePool,
    prefix: String,
}

fn decode<T>(r: std::result::Result<T, tokio_postgres::Error>, what: &str) -> Result<T> {
    r.map_err(|e| {
        Error::backend(ErrorKind::Other, format!("cannot decode {what} from the control store: {e}"))
    })
}

fn u32_of(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i32_of(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn status_from_row(r: &Row) -> Result<RunStatusRecord> {
    let status: String = decode(r.try_get(2), "status")?;
    let phase: String = decode(r.try_get(3), "phase")?;
    Ok(RunStatusRecord {
        run_id: RunId(decode::<Uuid>(r.try_get(0), "run_id")?),
        template_name: decode(r.try_get(1), "template_name")?,
        status: status.parse()?,
        phase: phase.parse()?,
        reason: decode(r.try_get(4), "reason")?,
        worker_count: u32_of(decode(r.try_get(5), "worker_count")?),
        target_connections: u32_of(decode(r.try_get(6), "target_connections")?),
        target_qps: decode(r.try_get(7), "target_qps")?,
        last_event_seq: u64_of(decode(r.try_get(8), "last_event_seq")?),
        created_at: decode(r.try_get(9), "created_at")?,
        updated_at: decode(r.try_get(10), "updated_at")?,
        template_json: decode(r.try_get(11), "template_json")?,
        results_url: decode(r.try_get(12), "results_url")?,
        load_start_at: decode(r.try_get(13), "load_start_at")?,
        controller_beat_at: decode(r.try_get(14), "controller_beat_at")?,
        version: u64_of(decode(r.try_get(15), "version")?),
    })
}

/// The columns of a run after `run_id`, in [`STATUS_COLUMNS`] order, typed as the table.
struct StatusValues {
    template_name: String,
    status: &'static str,
    phase: &'static str,
    reason: Option<String>,
    worker_count: i32,
    target_connections: i32,
    target_qps: Option<f64>,
    last_event_seq: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    template_json: Option<String>,
    results_url: Option<String>,
    load_start_at: Option<DateTime<Utc>>,
    controller_beat_at: Option<DateTime<Utc>>,
    version: i64,
}

impl StatusValues {
    fn of(r: &RunStatusRecord) -> Self {
        StatusValues {
            template_name: r.template_name.clone(),
            status: r.status.as_str(),
            phase: r.phase.as_str(),
            reason: r.reason.clone(),
            worker_count: i32_of(r.worker_count),
            target_connections: i32_of(r.target_connections),
            target_qps: r.target_qps,
            last_event_seq: i64_of(r.last_event_seq),
            created_at: r.created_at,
            updated_at: r.updated_at,
            template_json: r.template_json.clone(),
            results_url: stored_results_url(r.results_url.as_deref()),
            load_start_at: r.load_start_at,
            controller_beat_at: r.controller_beat_at,
            version: i64_of(r.version),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 15] {
        [
            &self.template_name,
            &self.status,
            &self.phase,
            &self.reason,
            &self.worker_count,
            &self.target_connections,
            &self.target_qps,
            &self.last_event_seq,
            &self.created_at,
            &self.updated_at,
            &self.template_json,
            &self.results_url,
            &self.load_start_at,
            &self.controller_beat_at,
            &self.version,
        ]
    }
}

fn event_from_row(r: &Row) -> Result<ControlEvent> {
    let scope: String = decode(r.try_get(2), "scope")?;
    let scope_id: Option<String> = decode(r.try_get(3), "scope_id")?;
    let kind: Json<ControlEventKind> = decode(r.try_get(4), "event_json")?;
    Ok(ControlEvent {
        run_id: RunId(decode::<Uuid>(r.try_get(0), "run_id")?),
        seq: u64_of(decode(r.try_get(1), "seq")?),
        scope: parse_scope(&scope, scope_id)?,
        kind: kind.0,
        created_at: decode(r.try_get(5), "created_at")?,
    })
}

fn heartbeat_from_row(r: &Row) -> Result<WorkerHeartbeat> {
    let state: String = decode(r.try_get(2), "state")?;
    let phase: String = decode(r.try_get(3), "phase")?;
    Ok(WorkerHeartbeat {
        run_id: RunId(decode::<Uuid>(r.try_get(0), "run_id")?),
        worker_id: decode(r.try_get(1), "worker_id")?,
        state: state.parse()?,
        phase: phase.parse()?,
        connections: u32_of(decode(r.try_get(4), "connections")?),
        ops: u64_of(decode(r.try_get(5), "ops")?),
        errors: u64_of(decode(r.try_get(6), "errors")?),
        last_error: decode(r.try_get(7), "last_error")?,
        last_event_seq: u64_of(decode(r.try_get(8), "last_event_seq")?),
        beat_at: decode(r.try_get(9), "beat_at")?,
        host: decode(r.try_get(10), "host")?,
        pid: u32::try_from(decode::<i64>(r.try_get(11), "pid")?).unwrap_or(0),
    })
}

/// Tables made by an older version lack columns: say which, and how to add them.
async fn require_columns(client: &tokio_postgres::Client, config: &PostgresConfig) -> Result<()> {
    let rows = client
        .query(
            "SELECT table_name::text || '.' || column_name::text FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name IN ('run_status', 'run_control_events', \
             'worker_heartbeats')",
            &[&config.store_schema()],
        )
        .await
        .map_err(|e| map_error(e, "checking the control store's columns"))?;
    let found: Vec<String> = rows.iter().filter_map(|r| r.try_get::<_, String>(0).ok()).collect();
    let missing: Vec<&str> = REQUIRED_COLUMNS.into_iter().filter(|c| !found.iter().any(|f| f == c)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::backend(
        ErrorKind::NotFound,
        format!(
            "the control tables in schema `{}` of {} were made by an older version and lack {}: \
             run `unistore-worker setup --results URL` (or sql/schema/postgres/control.sql again; \
             it only adds what is missing)",
            config.store_schema(),
            config.redacted_url(),
            missing.join(", ")
        ),
    ))
}

impl PostgresControlStore {
    /// Opens the store at `url` (tables in `?schema=`, default `unistore`). Missing tables or
    /// columns are an error naming `sql/schema/postgres/control.sql` and the setup command.
    pub async fn open(url: &str) -> Result<Self> {
        let config = PostgresConfig::from_url(url)?;
        let (pool, first) = StorePool::open(config, "unistore-control", 8).await?;
        require_tables(&first, pool.config(), &TABLES, "control.sql").await?;
        require_columns(&first, pool.config()).await?;
        let prefix = format!("{}.", quote_ident(pool.config().store_schema()));
        Ok(PostgresControlStore { pool, prefix })
    }

    fn table(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn ctx(&self, what: &str) -> String {
        format!("{what} in the control store {}", self.pool.config().redacted_url())
    }
}

#[async_trait]
impl ControlStore for PostgresControlStore {
    async fn create_run(&self, record: &RunStatusRecord) -> Result<()> {
        let client = self.pool.get().await?;
        let values = StatusValues::of(record);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&record.run_id.0];
        params.extend(values.params());
        let placeholders = (1..=params.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
        let r = client
            .execute(
                &format!(
                    "INSERT INTO {} ({STATUS_COLUMNS}) VALUES ({placeholders})",
                    self.table("run_status")
                ),
                &params,
            )
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = map_error(e, &self.ctx("creating a run"));
                if err.kind() == ErrorKind::Constraint {
                    return Err(err
                        .with_message(format!("run {} exists already in the control store", record.run_id)));
                }
                Err(err)
            }
        }
    }

    async fn run(&self, run_id: RunId) -> Result<Option<RunStatusRecord>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!("SELECT {STATUS_COLUMNS} FROM {} WHERE run_id = $1", self.table("run_status")),
                &[&run_id.0],
            )
            .await
            .map_err(|e| map_error(e, &self.ctx("reading a run")))?;
        row.as_ref().map(status_from_row).transpose()
    }

    async fn runs(&self, statuses: &[RunStatus], limit: usize) -> Result<Vec<RunStatusRecord>> {
        let client = self.pool.get().await?;
        let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &format!(
                    "SELECT {STATUS_COLUMNS} FROM {} WHERE cardinality($1::text[]) = 0 OR status = ANY($1) \
                     ORDER BY created_at DESC, run_id DESC LIMIT $2",
                    self.table("run_status")
                ),
                &[&names, &limit],
            )
            .await
            .map_err(|e| map_error(e, &self.ctx("listing runs")))?;
        rows.iter().map(status_from_row).collect()
    }

    async fn replace_run(&self, record: &RunStatusRecord, expected_version: u64) -> Result<bool> {
        let client = self.pool.get().await?;
        let values = StatusValues::of(record);
        let mut params: Vec<&(dyn ToSql + Sync)> = values.params().to_vec();
        let expected = i64_of(expected_version);
        params.push(&record.run_id.0);
        params.push(&expected);
        let assignments = STATUS_COLUMNS
            .split(',')
            .map(str::trim)
            .skip(1)
            .enumerate()
            .map(|(i, c)| format!("{c} = ${}", i + 1))
            .collect::<Vec<_>>()
            .join(", ");
        let n = params.len();
        let changed = client
            .execute(
                &format!(
                    "UPDATE {} SET {assignments} WHERE run_id = ${} AND version = ${n}",
                    self.table("run_status"),
                    n - 1
                ),
                &params,
            )
            .await
            .map_err(|e| map_error(e, &self.ctx("replacing a run's row")))?;
        Ok(changed > 0)
    }

    async fn insert_event(&self, event: &ControlEvent) -> Result<()> {
        let client = self.pool.get().await?;
        let (scope, scope_id) = scope_columns(&event.scope);
        let r = client
            .execute(
                &format!(
                    "INSERT INTO {} (run_id, seq, scope, scope_id, event_type, event_json, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    self.table("run_control_events")
                ),
                &[
                    &event.run_id.0,
                    &i64_of(event.seq),
                    &scope,
                    &scope_id,
                    &event.kind.as_str(),
                    &Json(&event.kind),
                    &event.created_at,
                ],
            )
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = map_error(e, &self.ctx("inserting a control event"));
                if err.kind() == ErrorKind::Constraint {
                    let message = format!("run {} has an event {} already: {err}", event.run_id, event.seq);
                    return Err(err.with_message(message));
                }
                Err(err)
            }
        }
    }

    async fn events_since(&self, run_id: RunId, after_seq: u64) -> Result<Vec<ControlEvent>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT run_id, seq, scope, scope_id, event_json, created_at FROM {} \
                     WHERE run_id = $1 AND seq > $2 ORDER BY seq",
                    self.table("run_control_events")
                ),
                &[&run_id.0, &i64_of(after_seq)],
            )
            .await
            .map_err(|e| map_error(e, &self.ctx("reading control events")))?;
        rows.iter().map(event_from_row).collect()
    }

    async fn heartbeat(&self, beat: &WorkerHeartbeat) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(
                &format!(
                    "INSERT INTO {} (run_id, worker_id, state, phase, connections, ops, errors, last_error, \
                     last_event_seq, beat_at, host, pid) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (run_id, worker_id) DO UPDATE SET state = EXCLUDED.state, phase = EXCLUDED.phase, \
                     connections = EXCLUDED.connections, ops = EXCLUDED.ops, errors = EXCLUDED.errors, \
                     last_error = EXCLUDED.last_error, last_event_seq = EXCLUDED.last_event_seq, \
                     beat_at = EXCLUDED.beat_at, host = EXCLUDED.host, pid = EXCLUDED.pid",
                    self.table("worker_heartbeats")
                ),
                &[
                    &beat.run_id.0,
                    &beat.worker_id,
                    &beat.state.as_str(),
                    &beat.phase.as_str(),
                    &i32_of(beat.connections),
                    &i64_of(beat.ops),
                    &i64_of(beat.errors),
                    &beat.last_error,
                    &i64_of(beat.last_event_seq),
                    &beat.beat_at,
                    &beat.host,
                    &i64::from(beat.pid),
                ],
            )
            .await
            .map_err(|e| map_error(e, &self.ctx("writing a heartbeat")))?;
        Ok(())
    }

    async fn heartbeats(&self, run_id: RunId) -> Result<Vec<WorkerHeartbeat>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT run_id, worker_id, state, phase, connections, ops, errors, last_error, last_event_seq, \
                     beat_at, host, pid FROM {} WHERE run_id = $1 ORDER BY worker_id",
                    self.table("worker_heartbeats")
                ),
                &[&run_id.0],
            )
            .await
            .map_err(|e| map_error(e, &self.ctx("reading heartbeats")))?;
        rows.iter().map(heartbeat_from_row).collect()
    }
}
