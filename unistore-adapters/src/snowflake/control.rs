//! The control store on Snowflake hybrid tables: `RUN_STATUS`, `RUN_CONTROL_EVENTS`,
//! `WORKER_HEARTBEATS` (DDL in `sql/schema/snowflake/control.sql`).
//!
//! Every state change is a single-row compare-and-set (`UPDATE ... WHERE RUN_ID = ? AND
//! STATUS = ?`, `... AND LAST_EVENT_SEQ = ?`) checked by its affected-row count, so correctness
//! comes from the database's row-level atomicity and enforced primary keys, and controllers and
//! workers on other hosts can share a run. Within one process, appends are additionally queued
//! behind a lock so that this process's own appenders do not burn round trips losing races to
//! each other.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use unistore_core::model::{
    ControlEvent, ControlEventKind, EventScope, RunPhase, RunStatus, RunStatusRecord, WorkerHeartbeat,
};
use unistore_core::{ControlStore, Error, ErrorKind, Result, RunId, Value};

use super::pool::{Connector, SessionPool};
use super::tables::ident;
use super::{from_json, stored_time, to_json, Row, SnowflakeConfig, STORE_SESSIONS};

/// Compare-and-set attempts before giving up with `ErrorKind::Conflict`.
const CAS_ATTEMPTS: u32 = 50;

const STATUS_COLUMNS: &str =
    "RUN_ID, TEMPLATE_NAME, STATUS, PHASE, REASON, WORKER_COUNT, TARGET_CONNECTIONS, \
                              TARGET_QPS, LAST_EVENT_SEQ, CREATED_AT, UPDATED_AT";

/// [`ControlStore`] on Snowflake hybrid tables.
pub struct SnowflakeHybridControlStore {
    pool: Arc<SessionPool>,
    prefix: String,
    /// Last sequence number seen per run; also serializes this process's appends.
    appends: tokio::sync::Mutex<HashMap<RunId, u64>>,
}

impl std::fmt::Debug for SnowflakeHybridControlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnowflakeHybridControlStore").field("location", &self.prefix).finish()
    }
}

fn id(run_id: RunId) -> Value {
    Value::text(run_id.to_string())
}

fn now() -> chrono::DateTime<Utc> {
    stored_time(Utc::now())
}

fn ts(t: chrono::DateTime<Utc>) -> Value {
    Value::Timestamp(stored_time(t).timestamp_micros())
}

fn int(n: u64) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn opt_text(v: Option<&str>) -> Value {
    v.map(Value::text).unwrap_or(Value::Null)
}

fn scope_columns(scope: &EventScope) -> (&'static str, Option<&str>) {
    match scope {
        EventScope::Run => ("RUN", None),
        EventScope::WorkerGroup(g) => ("WORKER_GROUP", Some(g.as_str())),
        EventScope::Worker(w) => ("WORKER", Some(w.as_str())),
    }
}

fn parse_scope(scope: &str, scope_id: Option<String>) -> Result<EventScope> {
    let missing = || Error::backend(ErrorKind::Other, format!("control event scope {scope} has no SCOPE_ID"));
    match scope {
        "RUN" => Ok(EventScope::Run),
        "WORKER_GROUP" => Ok(EventScope::WorkerGroup(scope_id.ok_or_else(missing)?)),
        "WORKER" => Ok(EventScope::Worker(scope_id.ok_or_else(missing)?)),
        other => Err(Error::backend(ErrorKind::Other, format!("unknown control event scope `{other}`"))),
    }
}

async fn backoff(attempt: u32) {
    let jitter = u64::from(Utc::now().timestamp_subsec_micros() % 5);
    tokio::time::sleep(Duration::from_millis(u64::from(attempt.min(10)) * 2 + jitter)).await;
}

impl SnowflakeHybridControlStore {
    /// A store for the URL's database and schema (default `UNISTORE_BENCHMARK.TEST_RESULTS`).
    pub fn open(url: &str) -> Result<Self> {
        let config = SnowflakeConfig::from_url(url)?;
        let (database, schema) = config.results_location();
        let prefix = format!("{}.{}", ident(&database), ident(&schema));
        let connector = Connector::new(config.with_location(&database, &schema));
        Ok(SnowflakeHybridControlStore {
            pool: Arc::new(SessionPool::new(connector, "unistore:control", STORE_SESSIONS)),
            prefix,
            appends: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    async fn last_seq(&self, run_id: RunId) -> Result<u64> {
        let sql = format!("SELECT LAST_EVENT_SEQ FROM {} WHERE RUN_ID = ?", self.table("RUN_STATUS"));
        let rows = self.pool.rows(&sql, &[id(run_id)]).await?;
        match rows.first() {
            Some(r) => Row(r).u64(0),
            None => Err(not_found(run_id)),
        }
    }

    /// Runs a compare-and-set `UPDATE`; a lock conflict counts as a lost race.
    async fn compare_and_set(&self, sql: &str, params: &[Value]) -> Result<bool> {
        match self.pool.execute(sql, params).await {
            Ok(n) => Ok(n > 0),
            Err(e) if e.kind() == ErrorKind::Conflict => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn not_found(run_id: RunId) -> Error {
    Error::backend(ErrorKind::NotFound, format!("run {run_id} does not exist in RUN_STATUS"))
}

fn record(row: &Row<'_>) -> Result<RunStatusRecord> {
    Ok(RunStatusRecord {
        run_id: row.run_id(0)?,
        template_name: row.text(1)?,
        status: row.text(2)?.parse()?,
        phase: row.text(3)?.parse()?,
        reason: row.opt_text(4)?,
        worker_count: u32::try_from(row.u64(5)?).unwrap_or(u32::MAX),
        target_connections: u32::try_from(row.u64(6)?).unwrap_or(u32::MAX),
        target_qps: row.opt_f64(7)?,
        last_event_seq: row.u64(8)?,
        created_at: row.time(9)?,
        updated_at: row.time(10)?,
    })
}

#[async_trait]
impl ControlStore for SnowflakeHybridControlStore {
    async fn create_run(&self, r: &RunStatusRecord) -> Result<()> {
        let sql = format!(
            "INSERT INTO {} ({STATUS_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self.table("RUN_STATUS")
        );
        let params = [
            id(r.run_id),
            Value::text(&r.template_name),
            Value::text(r.status.as_str()),
            Value::text(r.phase.as_str()),
            opt_text(r.reason.as_deref()),
            Value::Int(i64::from(r.worker_count)),
            Value::Int(i64::from(r.target_connections)),
            r.target_qps.map(Value::Float).unwrap_or(Value::Null),
            int(r.last_event_seq),
            ts(r.created_at),
            ts(r.updated_at),
        ];
        self.pool.execute(&sql, &params).await.map(|_| ()).map_err(|e| {
            if e.kind() == ErrorKind::Constraint {
                Error::backend(ErrorKind::Constraint, format!("run {} exists already: {e}", r.run_id))
            } else {
                e
            }
        })
    }

    async fn run(&self, run_id: RunId) -> Result<Option<RunStatusRecord>> {
        let sql = format!("SELECT {STATUS_COLUMNS} FROM {} WHERE RUN_ID = ?", self.table("RUN_STATUS"));
        let rows = self.pool.rows(&sql, &[id(run_id)]).await?;
        rows.first().map(|r| record(&Row(r))).transpose()
    }

    async fn transition(
        &self,
        run_id: RunId,
        to: RunStatus,
        reason: Option<&str>,
    ) -> Result<RunStatusRecord> {
        let t = self.table("RUN_STATUS");
        for attempt in 0..CAS_ATTEMPTS {
            let mut current = self.run(run_id).await?.ok_or_else(|| not_found(run_id))?;
            if !current.status.can_transition_to(to) {
                return Err(Error::backend(
                    ErrorKind::Conflict,
                    format!("run {run_id} cannot go from {} to {to}", current.status),
                ));
            }
            let updated_at = now();
            let (sql, params) = match reason {
                Some(reason) => (
                    format!("UPDATE {t} SET STATUS = ?, REASON = ?, UPDATED_AT = ? WHERE RUN_ID = ? AND STATUS = ?"),
                    vec![
                        Value::text(to.as_str()),
                        Value::text(reason),
                        ts(updated_at),
                        id(run_id),
                        Value::text(current.status.as_str()),
                    ],
                ),
                None => (
                    format!("UPDATE {t} SET STATUS = ?, UPDATED_AT = ? WHERE RUN_ID = ? AND STATUS = ?"),
                    vec![Value::text(to.as_str()), ts(updated_at), id(run_id), Value::text(current.status.as_str())],
                ),
            };
            if self.compare_and_set(&sql, &params).await? {
                current.status = to;
                current.updated_at = updated_at;
                if let Some(r) = reason {
                    current.reason = Some(r.to_string());
                }
                return Ok(current);
            }
            backoff(attempt).await;
        }
        Err(Error::backend(ErrorKind::Conflict, format!("run {run_id}: too many concurrent status changes")))
    }

    async fn set_phase(&self, run_id: RunId, phase: RunPhase) -> Result<()> {
        let sql =
            format!("UPDATE {} SET PHASE = ?, UPDATED_AT = ? WHERE RUN_ID = ?", self.table("RUN_STATUS"));
        let n = self.pool.execute(&sql, &[Value::text(phase.as_str()), ts(now()), id(run_id)]).await?;
        if n == 0 {
            return Err(not_found(run_id));
        }
        Ok(())
    }

    async fn append_event(
        &self,
        run_id: RunId,
        scope: EventScope,
        kind: ControlEventKind,
    ) -> Result<ControlEvent> {
        let mut cache = self.appends.lock().await;
        let status = self.table("RUN_STATUS");
        let targets = match (&scope, &kind) {
            (EventScope::Run, ControlEventKind::SetWorkerTarget { connections, target_qps }) => {
                Some((*connections, *target_qps))
            }
            _ => None,
        };
        let mut last = match cache.get(&run_id) {
            Some(seq) => *seq,
            None => self.last_seq(run_id).await?,
        };
        for attempt in 0..CAS_ATTEMPTS {
            let next = last + 1;
            let created_at = now();
            let (sql, params) = match targets {
                Some((connections, qps)) => (
                    format!(
                        "UPDATE {status} SET LAST_EVENT_SEQ = ?, TARGET_CONNECTIONS = ?, TARGET_QPS = ?, UPDATED_AT = ? \
                         WHERE RUN_ID = ? AND LAST_EVENT_SEQ = ?"
                    ),
                    vec![
                        int(next),
                        Value::Int(i64::from(connections)),
                        qps.map(Value::Float).unwrap_or(Value::Null),
                        ts(created_at),
                        id(run_id),
                        int(last),
                    ],
                ),
                None => (
                    format!("UPDATE {status} SET LAST_EVENT_SEQ = ?, UPDATED_AT = ? WHERE RUN_ID = ? AND LAST_EVENT_SEQ = ?"),
                    vec![int(next), ts(created_at), id(run_id), int(last)],
                ),
            };
            if self.compare_and_set(&sql, &params).await? {
                // The sequence number is ours: no other appender can insert it.
                let (scope_name, scope_id) = scope_columns(&scope);
                let insert = format!(
                    "INSERT INTO {} (RUN_ID, SEQ, SCOPE, SCOPE_ID, EVENT_TYPE, EVENT_JSON, CREATED_AT) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                    self.table("RUN_CONTROL_EVENTS")
                );
                let params = [
                    id(run_id),
                    int(next),
                    Value::text(scope_name),
                    opt_text(scope_id),
                    Value::text(kind.as_str()),
                    Value::text(to_json(&kind, "the control event")?),
                    ts(created_at),
                ];
                self.pool.execute(&insert, &params).await?;
                cache.insert(run_id, next);
                return Ok(ControlEvent { run_id, seq: next, scope, kind, created_at });
            }
            // Lost a race (another process appended) or the cache was stale: re-read.
            last = self.last_seq(run_id).await?;
            if attempt > 0 {
                backoff(attempt).await;
            }
        }
        cache.remove(&run_id);
        Err(Error::backend(ErrorKind::Conflict, format!("run {run_id}: too many concurrent control events")))
    }

    async fn events_since(&self, run_id: RunId, after_seq: u64) -> Result<Vec<ControlEvent>> {
        let sql = format!(
            "SELECT RUN_ID, SEQ, SCOPE, SCOPE_ID, EVENT_JSON, CREATED_AT FROM {} \
             WHERE RUN_ID = ? AND SEQ > ? ORDER BY SEQ",
            self.table("RUN_CONTROL_EVENTS")
        );
        let rows = self.pool.rows(&sql, &[id(run_id), int(after_seq)]).await?;
        rows.iter()
            .map(|r| {
                let r = Row(r);
                Ok(ControlEvent {
                    run_id: r.run_id(0)?,
                    seq: r.u64(1)?,
                    scope: parse_scope(&r.text(2)?, r.opt_text(3)?)?,
                    kind: from_json(&r.text(4)?, "EVENT_JSON")?,
                    created_at: r.time(5)?,
                })
            })
            .collect()
    }

    async fn heartbeat(&self, b: &WorkerHeartbeat) -> Result<()> {
        let t = self.table("WORKER_HEARTBEATS");
        let values = [
            Value::text(b.status.as_str()),
            Value::text(b.phase.as_str()),
            Value::Int(i64::from(b.connections)),
            int(b.ops),
            int(b.errors),
            opt_text(b.last_error.as_deref()),
            int(b.last_event_seq),
            ts(b.beat_at),
        ];
        let key = [id(b.run_id), Value::text(&b.worker_id)];
        let update = format!(
            "UPDATE {t} SET STATUS = ?, PHASE = ?, CONNECTIONS = ?, OPS = ?, ERRORS = ?, LAST_ERROR = ?, \
             LAST_EVENT_SEQ = ?, BEAT_AT = ? WHERE RUN_ID = ? AND WORKER_ID = ?"
        );
        let update_params: Vec<Value> = values.iter().cloned().chain(key.iter().cloned()).collect();
        if self.pool.execute(&update, &update_params).await? > 0 {
            return Ok(());
        }
        let insert = format!(
            "INSERT INTO {t} (RUN_ID, WORKER_ID, STATUS, PHASE, CONNECTIONS, OPS, ERRORS, LAST_ERROR, \
             LAST_EVENT_SEQ, BEAT_AT) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        let insert_params: Vec<Value> = key.iter().cloned().chain(values.iter().cloned()).collect();
        match self.pool.execute(&insert, &insert_params).await {
            // The worker's first beat raced another writer of the same row: update it.
            Err(e) if e.kind() == ErrorKind::Constraint => {
                self.pool.execute(&update, &update_params).await.map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }

    async fn heartbeats(&self, run_id: RunId) -> Result<Vec<WorkerHeartbeat>> {
        let sql = format!(
            "SELECT RUN_ID, WORKER_ID, STATUS, PHASE, CONNECTIONS, OPS, ERRORS, LAST_ERROR, LAST_EVENT_SEQ, BEAT_AT \
             FROM {} WHERE RUN_ID = ? ORDER BY WORKER_ID",
            self.table("WORKER_HEARTBEATS")
        );
        let rows = self.pool.rows(&sql, &[id(run_id)]).await?;
        rows.iter()
            .map(|r| {
                let r = Row(r);
                Ok(WorkerHeartbeat {
                    run_id: r.run_id(0)?,
                    worker_id: r.text(1)?,
                    status: r.text(2)?.parse()?,
                    phase: r.text(3)?.parse()?,
                    connections: u32::try_from(r.u64(4)?).unwrap_or(u32::MAX),
                    ops: r.u64(5)?,
                    errors: r.u64(6)?,
                    last_error: r.opt_text(7)?,
                    last_event_seq: r.u64(8)?,
                    beat_at: r.time(9)?,
                })
            })
            .collect()
    }
}
