//! Control store on PostgreSQL: run status, append-only control events, worker heartbeats, in
//! the tables of `sql/schema/postgres/control.sql`.
//!
//! Every read-modify-write runs in a transaction that first locks the run's `run_status` row
//! (`SELECT ... FOR UPDATE`). Writers in this process use separate connections, so they meet
//! in that lock exactly as workers on other hosts do: no update is lost and no sequence number
//! is issued twice, whoever the writers are.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::types::Json;
use tokio_postgres::Row;
use unistore_core::model::{ControlEvent, ControlEventKind, EventScope, RunStatusRecord, WorkerHeartbeat};
use unistore_core::{ControlStore, Error, ErrorKind, Result, RunId, RunPhase, RunStatus};
use uuid::Uuid;

use super::config::PostgresConfig;
use super::pool::StorePool;
use super::{map_error, quote_ident, require_tables};

const TABLES: [&str; 3] = ["run_status", "run_control_events", "worker_heartbeats"];

const STATUS_COLUMNS: &str =
    "run_id, template_name, status, phase, reason, worker_count, target_connections, \
                              target_qps, last_event_seq, created_at, updated_at";

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

/// Now, at the microsecond precision of `timestamptz`, so what `append_event` returns equals
/// what `events_since` reads back.
fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
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
    })
}

fn scope_parts(scope: &EventScope) -> (&'static str, Option<&str>) {
    match scope {
        EventScope::Run => ("RUN", None),
        EventScope::WorkerGroup(g) => ("WORKER_GROUP", Some(g.as_str())),
        EventScope::Worker(w) => ("WORKER", Some(w.as_str())),
    }
}

fn event_from_row(r: &Row) -> Result<ControlEvent> {
    let scope: String = decode(r.try_get(2), "scope")?;
    let scope_id: Option<String> = decode(r.try_get(3), "scope_id")?;
    let scope = match (scope.as_str(), scope_id) {
        ("RUN", _) => EventScope::Run,
        ("WORKER_GROUP", Some(g)) => EventScope::WorkerGroup(g),
        ("WORKER", Some(w)) => EventScope::Worker(w),
        (other, _) => {
            return Err(Error::backend(
                ErrorKind::Other,
                format!("invalid event scope `{other}` in the control store"),
            ))
        }
    };
    let kind: Json<ControlEventKind> = decode(r.try_get(4), "payload")?;
    Ok(ControlEvent {
        run_id: RunId(decode::<Uuid>(r.try_get(0), "run_id")?),
        seq: u64_of(decode(r.try_get(1), "seq")?),
        scope,
        kind: kind.0,
        created_at: decode(r.try_get(5), "created_at")?,
    })
}

fn heartbeat_from_row(r: &Row) -> Result<WorkerHeartbeat> {
    let status: String = decode(r.try_get(2), "status")?;
    let phase: String = decode(r.try_get(3), "phase")?;
    Ok(WorkerHeartbeat {
        run_id: RunId(decode::<Uuid>(r.try_get(0), "run_id")?),
        worker_id: decode(r.try_get(1), "worker_id")?,
        status: status.parse()?,
        phase: phase.parse()?,
        connections: u32_of(decode(r.try_get(4), "connections")?),
        ops: u64_of(decode(r.try_get(5), "ops")?),
        errors: u64_of(decode(r.try_get(6), "errors")?),
        last_error: decode(r.try_get(7), "last_error")?,
        last_event_seq: u64_of(decode(r.try_get(8), "last_event_seq")?),
        beat_at: decode(r.try_get(9), "beat_at")?,
    })
}

impl PostgresControlStore {
    /// Opens the store at `url` (tables in `?schema=`, default `unistore`). Missing tables are
    /// an error naming `sql/schema/postgres/control.sql`.
    pub async fn open(url: &str) -> Result<Self> {
        let config = PostgresConfig::parse(url)?;
        let (pool, first) = StorePool::open(config, "unistore-control", 8).await?;
        require_tables(&first, pool.config(), &TABLES, "control.sql").await?;
        let prefix = format!("{}.", quote_ident(pool.config().store_schema()));
        Ok(PostgresControlStore { pool, prefix })
    }

    fn table(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn ctx(&self, what: &str) -> String {
        format!("{what} in the control store {}", self.pool.config().redacted_url())
    }

    fn missing(run_id: RunId) -> Error {
        Error::backend(ErrorKind::NotFound, format!("run {run_id} does not exist in the control store"))
    }
}

#[async_trait]
impl ControlStore for PostgresControlStore {
    async fn create_run(&self, record: &RunStatusRecord) -> Result<()> {
        let client = self.pool.get().await?;
        let r = client
            .execute(
                &format!(
                    "INSERT INTO {} ({STATUS_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    self.table("run_status")
                ),
                &[
                    &record.run_id.0,
                    &record.template_name,
                    &record.status.as_str(),
                    &record.phase.as_str(),
                    &record.reason,
                    &i32_of(record.worker_count),
                    &i32_of(record.target_connections),
                    &record.target_qps,
                    &i64_of(record.last_event_seq),
                    &record.created_at,
                    &record.updated_at,
                ],
            )
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = map_error(&e, &self.ctx("creating a run"));
                if err.kind() == ErrorKind::Constraint {
                    return Err(Error::backend(
                        ErrorKind::Constraint,
                        format!("run {} exists already in the control store", record.run_id),
                    ));
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
            .map_err(|e| map_error(&e, &self.ctx("reading a run")))?;
        row.as_ref().map(status_from_row).transpose()
    }

    async fn transition(
        &self,
        run_id: RunId,
        to: RunStatus,
        reason: Option<&str>,
    ) -> Result<RunStatusRecord> {
        let mut client = self.pool.get().await?;
        let ctx = self.ctx("changing a run's status");
        let tx = client.transaction().await.map_err(|e| map_error(&e, &ctx))?;
        let row = tx
            .query_opt(
                &format!("SELECT status FROM {} WHERE run_id = $1 FOR UPDATE", self.table("run_status")),
                &[&run_id.0],
            )
            .await
            .map_err(|e| map_error(&e, &ctx))?
            .ok_or_else(|| Self::missing(run_id))?;
        let from: RunStatus = decode::<String>(row.try_get(0), "status")?.parse()?;
        if !from.can_transition_to(to) {
            // Dropping the transaction rolls it back and releases the lock.
            return Err(Error::backend(
                ErrorKind::Conflict,
                format!("run {run_id} cannot go from {from} to {to}"),
            ));
        }
        let updated = tx
            .query_one(
                &format!(
                    "UPDATE {} SET status = $2, reason = COALESCE($3, reason), updated_at = $4 WHERE run_id = $1 \
                     RETURNING {STATUS_COLUMNS}",
                    self.table("run_status")
                ),
                &[&run_id.0, &to.as_str(), &reason, &now_micros()],
            )
            .await
            .map_err(|e| map_error(&e, &ctx))?;
        let record = status_from_row(&updated)?;
        tx.commit().await.map_err(|e| map_error(&e, &ctx))?;
        Ok(record)
    }

    async fn set_phase(&self, run_id: RunId, phase: RunPhase) -> Result<()> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                &format!(
                    "UPDATE {} SET phase = $2, updated_at = $3 WHERE run_id = $1",
                    self.table("run_status")
                ),
                &[&run_id.0, &phase.as_str(), &now_micros()],
            )
            .await
            .map_err(|e| map_error(&e, &self.ctx("setting a run's phase")))?;
        if n == 0 {
            return Err(Self::missing(run_id));
        }
        Ok(())
    }

    async fn append_event(
        &self,
        run_id: RunId,
        scope: EventScope,
        kind: ControlEventKind,
    ) -> Result<ControlEvent> {
        let mut client = self.pool.get().await?;
        let ctx = self.ctx("appending a control event");
        let tx = client.transaction().await.map_err(|e| map_error(&e, &ctx))?;
        // The row lock serializes appends of one run across every connection and host.
        let row = tx
            .query_opt(
                &format!(
                    "SELECT last_event_seq FROM {} WHERE run_id = $1 FOR UPDATE",
                    self.table("run_status")
                ),
                &[&run_id.0],
            )
            .await
            .map_err(|e| map_error(&e, &ctx))?
            .ok_or_else(|| Self::missing(run_id))?;
        let seq = decode::<i64>(row.try_get(0), "last_event_seq")? + 1;
        let created_at = now_micros();
        let (scope_name, scope_id) = scope_parts(&scope);
        tx.execute(
            &format!(
                "INSERT INTO {} (run_id, seq, scope, scope_id, event_type, payload, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                self.table("run_control_events")
            ),
            &[&run_id.0, &seq, &scope_name, &scope_id, &kind.as_str(), &Json(&kind), &created_at],
        )
        .await
        .map_err(|e| map_error(&e, &ctx))?;
        match (&scope, &kind) {
            (EventScope::Run, ControlEventKind::SetWorkerTarget { connections, target_qps }) => {
                tx.execute(
                    &format!(
                        "UPDATE {} SET last_event_seq = $2, target_connections = $3, target_qps = $4, updated_at = $5 \
                         WHERE run_id = $1",
                        self.table("run_status")
                    ),
                    &[&run_id.0, &seq, &i32_of(*connections), target_qps, &created_at],
                )
                .await
            }
            _ => {
                tx.execute(
                    &format!("UPDATE {} SET last_event_seq = $2, updated_at = $3 WHERE run_id = $1", self.table("run_status")),
                    &[&run_id.0, &seq, &created_at],
                )
                .await
            }
        }
        .map_err(|e| map_error(&e, &ctx))?;
        tx.commit().await.map_err(|e| map_error(&e, &ctx))?;
        Ok(ControlEvent { run_id, seq: u64_of(seq), scope, kind, created_at })
    }

    async fn events_since(&self, run_id: RunId, after_seq: u64) -> Result<Vec<ControlEvent>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT run_id, seq, scope, scope_id, payload, created_at FROM {} \
                     WHERE run_id = $1 AND seq > $2 ORDER BY seq",
                    self.table("run_control_events")
                ),
                &[&run_id.0, &i64_of(after_seq)],
            )
            .await
            .map_err(|e| map_error(&e, &self.ctx("reading control events")))?;
        rows.iter().map(event_from_row).collect()
    }

    async fn heartbeat(&self, beat: &WorkerHeartbeat) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(
                &format!(
                    "INSERT INTO {} (run_id, worker_id, status, phase, connections, ops, errors, last_error, \
                     last_event_seq, beat_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (run_id, worker_id) DO UPDATE SET status = EXCLUDED.status, phase = EXCLUDED.phase, \
                     connections = EXCLUDED.connections, ops = EXCLUDED.ops, errors = EXCLUDED.errors, \
                     last_error = EXCLUDED.last_error, last_event_seq = EXCLUDED.last_event_seq, \
                     beat_at = EXCLUDED.beat_at",
                    self.table("worker_heartbeats")
                ),
                &[
                    &beat.run_id.0,
                    &beat.worker_id,
                    &beat.status.as_str(),
                    &beat.phase.as_str(),
                    &i32_of(beat.connections),
                    &i64_of(beat.ops),
                    &i64_of(beat.errors),
                    &beat.last_error,
                    &i64_of(beat.last_event_seq),
                    &beat.beat_at,
                ],
            )
            .await
            .map_err(|e| map_error(&e, &self.ctx("writing a heartbeat")))?;
        Ok(())
    }

    async fn heartbeats(&self, run_id: RunId) -> Result<Vec<WorkerHeartbeat>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT run_id, worker_id, status, phase, connections, ops, errors, last_error, last_event_seq, \
                     beat_at FROM {} WHERE run_id = $1 ORDER BY worker_id",
                    self.table("worker_heartbeats")
                ),
                &[&run_id.0],
            )
            .await
            .map_err(|e| map_error(&e, &self.ctx("reading heartbeats")))?;
        rows.iter().map(heartbeat_from_row).collect()
    }
}
