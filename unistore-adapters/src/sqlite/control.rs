//! The control store (run status, control events, heartbeats) in an SQLite file the tool owns.
//!
//! Correctness comes from the database, not from the mutex around the connection: every
//! read-check-write runs in a `BEGIN IMMEDIATE` transaction, which takes the file's write lock
//! before reading, so several processes sharing the file serialize on it and never lose an
//! update or hand out a sequence number twice.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::Utc;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use unistore_core::model::{ControlEvent, ControlEventKind, EventScope, RunStatusRecord, WorkerHeartbeat};
use unistore_core::{ControlStore, Error, ErrorKind, Result, RunId, RunPhase, RunStatus};

use super::config::SqliteConfig;
use super::{
    format_stored_time, from_json, from_sql_int, map_error, parse_stored_time, to_json, to_sql_int,
    StoreConnection,
};

/// DDL of the control tables, applied when the store is opened.
pub const CONTROL_SCHEMA: &str = include_str!("../../../sql/schema/sqlite/control.sql");

/// The control plane in an SQLite file (by default the same file as the results).
#[derive(Debug, Clone)]
pub struct SqliteControlStore {
    store: StoreConnection,
}

impl SqliteControlStore {
    /// Opens the store with a connection of its own, creating the file, its directory and the
    /// tables if needed.
    pub async fn open(config: &SqliteConfig) -> Result<Self> {
        Ok(SqliteControlStore { store: StoreConnection::open(config, CONTROL_SCHEMA, "control").await? })
    }

    /// The store's file.
    pub fn path(&self) -> &std::path::Path {
        self.store.path()
    }
}

const RUN_COLUMNS: &str = "RUN_ID, TEMPLATE_NAME, STATUS, PHASE, REASON, WORKER_COUNT, \
     TARGET_CONNECTIONS, TARGET_QPS, LAST_EVENT_SEQ, CREATED_AT, UPDATED_AT";

type RawRun = (String, String, String, String, Option<String>, u32, u32, Option<f64>, i64, String, String);

fn raw_run(r: &Row<'_>) -> rusqlite::Result<RawRun> {
    TryFrom::try_from(r)
}

fn corrupt(column: &str, e: Error) -> Error {
    Error::backend(ErrorKind::Other, format!("stored {column} cannot be read: {e}"))
}

fn run_record(raw: RawRun) -> Result<RunStatusRecord> {
    let (run, template, status, phase, reason, workers, conns, qps, seq, created, updated) = raw;
    Ok(RunStatusRecord {
        run_id: RunId::from_str(&run).map_err(|e| corrupt("RUN_ID", e))?,
        template_name: template,
        status: RunStatus::from_str(&status).map_err(|e| corrupt("STATUS", e))?,
        phase: RunPhase::from_str(&phase).map_err(|e| corrupt("PHASE", e))?,
        reason,
        worker_count: workers,
        target_connections: conns,
        target_qps: qps,
        last_event_seq: from_sql_int(seq),
        created_at: parse_stored_time(&created, "CREATED_AT")?,
        updated_at: parse_stored_time(&updated, "UPDATED_AT")?,
    })
}

fn read_run(conn: &Connection, run_id: RunId) -> Result<Option<RunStatusRecord>> {
    let raw = conn
        .query_row(
            &format!("SELECT {RUN_COLUMNS} FROM RUN_STATUS WHERE RUN_ID = ?1"),
            [run_id.to_string()],
            raw_run,
        )
        .optional()
        .map_err(|e| map_error(&e, "reading a run status"))?;
    raw.map(run_record).transpose()
}

fn missing_run(run_id: RunId) -> Error {
    Error::backend(
        ErrorKind::NotFound,
        format!("run {run_id} does not exist in the control store: check the run id"),
    )
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction and commits if it succeeds (dropping the
/// transaction rolls back otherwise).
fn immediate<T, F>(conn: &mut Connection, what: &str, f: F) -> Result<T>
where
    F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
{
    let tx =
        conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| map_error(&e, what))?;
    let out = f(&tx)?;
    tx.commit().map_err(|e| map_error(&e, what))?;
    Ok(out)
}

#[async_trait]
impl ControlStore for SqliteControlStore {
    async fn create_run(&self, record: &RunStatusRecord) -> Result<()> {
        let r = record.clone();
        self.store
            .with_conn("create_run", move |conn| {
                let inserted = conn.execute(
                    &format!(
                        "INSERT INTO RUN_STATUS ({RUN_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                    ),
                    params![
                        r.run_id.to_string(),
                        r.template_name,
                        r.status.as_str(),
                        r.phase.as_str(),
                        r.reason,
                        r.worker_count,
                        r.target_connections,
                        r.target_qps,
                        to_sql_int(r.last_event_seq),
                        format_stored_time(&r.created_at),
                        format_stored_time(&r.updated_at),
                    ],
                );
                match inserted {
                    Ok(_) => Ok(()),
                    Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
                        Err(Error::backend(
                            ErrorKind::Constraint,
                            format!("run {} exists already: use a new run id", r.run_id),
                        ))
                    }
                    Err(e) => Err(map_error(&e, "creating a run")),
                }
            })
            .await
    }

    async fn run(&self, run_id: RunId) -> Result<Option<RunStatusRecord>> {
        self.store.with_conn("run", move |conn| read_run(conn, run_id)).await
    }

    async fn transition(
        &self,
        run_id: RunId,
        to: RunStatus,
        reason: Option<&str>,
    ) -> Result<RunStatusRecord> {
        let reason = reason.map(str::to_string);
        self.store
            .with_conn("transition", move |conn| {
                immediate(conn, "changing a run status", |tx| {
                    let current = read_run(tx, run_id)?.ok_or_else(|| missing_run(run_id))?;
                    if !current.status.can_transition_to(to) {
                        return Err(Error::backend(
                            ErrorKind::Conflict,
                            format!(
                                "run {run_id} is {} and cannot move to {to}: the run's lifecycle \
                             does not allow it",
                                current.status
                            ),
                        ));
                    }
                    tx.execute(
                        "UPDATE RUN_STATUS SET STATUS = ?2, REASON = coalesce(?3, REASON), \
                     UPDATED_AT = ?4 WHERE RUN_ID = ?1",
                        params![run_id.to_string(), to.as_str(), reason, format_stored_time(&Utc::now())],
                    )
                    .map_err(|e| map_error(&e, "changing a run status"))?;
                    read_run(tx, run_id)?.ok_or_else(|| missing_run(run_id))
                })
            })
            .await
    }

    async fn set_phase(&self, run_id: RunId, phase: RunPhase) -> Result<()> {
        self.store
            .with_conn("set_phase", move |conn| {
                let n = conn
                    .execute(
                        "UPDATE RUN_STATUS SET PHASE = ?2, UPDATED_AT = ?3 WHERE RUN_ID = ?1",
                        params![run_id.to_string(), phase.as_str(), format_stored_time(&Utc::now())],
                    )
                    .map_err(|e| map_error(&e, "setting a run phase"))?;
                if n == 0 {
                    return Err(missing_run(run_id));
                }
                Ok(())
            })
            .await
    }

    async fn append_event(
        &self,
        run_id: RunId,
        scope: EventScope,
        kind: ControlEventKind,
    ) -> Result<ControlEvent> {
        let scope_json = to_json(&scope, "the event scope")?;
        let event_json = to_json(&kind, "the control event")?;
        self.store
            .with_conn("append_event", move |conn| {
                immediate(conn, "appending a control event", |tx| {
                    let last: i64 = tx
                        .query_row(
                            "SELECT LAST_EVENT_SEQ FROM RUN_STATUS WHERE RUN_ID = ?1",
                            [run_id.to_string()],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(|e| map_error(&e, "appending a control event"))?
                        .ok_or_else(|| missing_run(run_id))?;
                    // Events could in principle outlive a reset counter; the larger of both keeps
                    // the sequence strictly increasing either way.
                    let last_event: Option<i64> = tx
                        .query_row(
                            "SELECT max(SEQ) FROM RUN_CONTROL_EVENTS WHERE RUN_ID = ?1",
                            [run_id.to_string()],
                            |r| r.get(0),
                        )
                        .map_err(|e| map_error(&e, "appending a control event"))?;
                    let seq = last.max(last_event.unwrap_or(0)) + 1;
                    let now = Utc::now();
                    let created = format_stored_time(&now);
                    tx.execute(
                        "INSERT INTO RUN_CONTROL_EVENTS (RUN_ID, SEQ, SCOPE_JSON, EVENT_JSON, \
                     EVENT_TYPE, CREATED_AT) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![run_id.to_string(), seq, scope_json, event_json, kind.as_str(), created],
                    )
                    .map_err(|e| map_error(&e, "appending a control event"))?;
                    match (&scope, &kind) {
                        (EventScope::Run, ControlEventKind::SetWorkerTarget { connections, target_qps }) => {
                            tx.execute(
                                "UPDATE RUN_STATUS SET LAST_EVENT_SEQ = ?2, TARGET_CONNECTIONS = ?3, \
                             TARGET_QPS = ?4, UPDATED_AT = ?5 WHERE RUN_ID = ?1",
                                params![run_id.to_string(), seq, connections, target_qps, created],
                            )
                        }
                        _ => tx.execute(
                            "UPDATE RUN_STATUS SET LAST_EVENT_SEQ = ?2, UPDATED_AT = ?3 \
                         WHERE RUN_ID = ?1",
                            params![run_id.to_string(), seq, created],
                        ),
                    }
                    .map_err(|e| map_error(&e, "appending a control event"))?;
                    Ok(ControlEvent { run_id, seq: from_sql_int(seq), scope, kind, created_at: now })
                })
            })
            .await
    }

    async fn events_since(&self, run_id: RunId, after_seq: u64) -> Result<Vec<ControlEvent>> {
        self.store
            .with_conn("events_since", move |conn| {
                let context = "reading control events";
                let mut stmt = conn
                    .prepare(
                        "SELECT SEQ, SCOPE_JSON, EVENT_JSON, CREATED_AT FROM RUN_CONTROL_EVENTS \
                     WHERE RUN_ID = ?1 AND SEQ > ?2 ORDER BY SEQ",
                    )
                    .map_err(|e| map_error(&e, context))?;
                let rows = stmt
                    .query_map(params![run_id.to_string(), to_sql_int(after_seq)], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    })
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(|e| map_error(&e, context))?;
                rows.into_iter()
                    .map(|(seq, scope, event, created)| {
                        Ok(ControlEvent {
                            run_id,
                            seq: from_sql_int(seq),
                            scope: from_json(&scope, "SCOPE_JSON")?,
                            kind: from_json(&event, "EVENT_JSON")?,
                            created_at: parse_stored_time(&created, "CREATED_AT")?,
                        })
                    })
                    .collect()
            })
            .await
    }

    async fn heartbeat(&self, beat: &WorkerHeartbeat) -> Result<()> {
        let b = beat.clone();
        self.store
            .with_conn("heartbeat", move |conn| {
                conn.execute(
                    "INSERT OR REPLACE INTO WORKER_HEARTBEATS (RUN_ID, WORKER_ID, STATUS, PHASE, \
                 CONNECTIONS, OPS, ERRORS, LAST_ERROR, LAST_EVENT_SEQ, BEAT_AT) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        b.run_id.to_string(),
                        b.worker_id,
                        b.status.as_str(),
                        b.phase.as_str(),
                        b.connections,
                        to_sql_int(b.ops),
                        to_sql_int(b.errors),
                        b.last_error,
                        to_sql_int(b.last_event_seq),
                        format_stored_time(&b.beat_at),
                    ],
                )
                .map_err(|e| map_error(&e, "writing a heartbeat"))?;
                Ok(())
            })
            .await
    }

    async fn heartbeats(&self, run_id: RunId) -> Result<Vec<WorkerHeartbeat>> {
        self.store
            .with_conn("heartbeats", move |conn| {
                let context = "reading heartbeats";
                let mut stmt = conn
                    .prepare(
                        "SELECT WORKER_ID, STATUS, PHASE, CONNECTIONS, OPS, ERRORS, LAST_ERROR, \
                     LAST_EVENT_SEQ, BEAT_AT FROM WORKER_HEARTBEATS WHERE RUN_ID = ?1 \
                     ORDER BY WORKER_ID",
                    )
                    .map_err(|e| map_error(&e, context))?;
                type RawBeat = (String, String, String, u32, i64, i64, Option<String>, i64, String);
                let rows: Vec<RawBeat> = stmt
                    .query_map([run_id.to_string()], |r| TryFrom::try_from(r))
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(|e| map_error(&e, context))?;
                rows.into_iter()
                    .map(|(worker, status, phase, conns, ops, errors, last_error, seq, at)| {
                        Ok(WorkerHeartbeat {
                            run_id,
                            worker_id: worker,
                            status: RunStatus::from_str(&status).map_err(|e| corrupt("STATUS", e))?,
                            phase: RunPhase::from_str(&phase).map_err(|e| corrupt("PHASE", e))?,
                            connections: conns,
                            ops: from_sql_int(ops),
                            errors: from_sql_int(errors),
                            last_error,
                            last_event_seq: from_sql_int(seq),
                            beat_at: parse_stored_time(&at, "BEAT_AT")?,
                        })
                    })
                    .collect()
            })
            .await
    }
}
