//! The control store (run status, control events, heartbeats) in an SQLite file the tool owns.
//!
//! Only rows here: the rules are `unistore_core::control`. Correctness comes from the database,
//! not from the mutex around the connection: `replace_run` is one `UPDATE ... WHERE RUN_ID = ?
//! AND VERSION = ?`, which SQLite runs under the file's write lock, and (RUN_ID, SEQ) is the
//! events' primary key, so several processes sharing the file never lose an update or insert a
//! sequence number twice.

use std::str::FromStr;

use async_trait::async_trait;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, TransactionBehavior};
use unistore_core::model::{ControlEvent, RunStatusRecord, WorkerHeartbeat, WorkerState};
use unistore_core::{ControlStore, Error, ErrorKind, Result, RunId, RunPhase, RunStatus};

use super::config::SqliteConfig;
use super::{
    format_stored_time, from_json, from_sql_int, map_error, parse_stored_time, to_json, to_sql_int,
    StoreConnection,
};
use crate::control_rows::{parse_scope, scope_columns, stored_results_url};

/// DDL of the control tables, applied when the store is opened.
pub const CONTROL_SCHEMA: &str = include_str!("../../../sql/schema/sqlite/control.sql");

/// The control plane in an SQLite file (by default the same file as the results).
#[derive(Debug, Clone)]
pub struct SqliteControlStore {
    store: StoreConnection,
}

impl SqliteControlStore {
    /// Opens the store with a connection of its own, creating the file, its directory and the
    /// tables if needed, and bringing tables made by an older version up to date.
    pub async fn open(config: &SqliteConfig) -> Result<Self> {
        let store = StoreConnection::open(config, CONTROL_SCHEMA, "control").await?;
        store.with_conn("migrate control tables", migrate).await?;
        Ok(SqliteControlStore { store })
    }

    /// The store's file.
    pub fn path(&self) -> &std::path::Path {
        self.store.path()
    }
}

/// Columns RUN_STATUS gained after its first version, with their definitions.
const ADDED_RUN_COLUMNS: [(&str, &str); 5] = [
    ("TEMPLATE_JSON", "TEXT"),
    ("RESULTS_URL", "TEXT"),
    ("LOAD_START_AT", "TEXT"),
    ("CONTROLLER_BEAT_AT", "TEXT"),
    ("VERSION", "INTEGER NOT NULL DEFAULT 0"),
];

fn columns(tx: &Connection, table: &str) -> Result<Vec<String>> {
    let context = format!("reading the columns of {table}");
    let mut stmt = tx.prepare(&format!("PRAGMA table_info({table})")).map_err(|e| map_error(e, &context))?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(1))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| map_error(e, &context))?;
    Ok(names.into_iter().map(|n| n.to_ascii_uppercase()).collect())
}

/// Brings a file made by an older version up to date, in one `BEGIN IMMEDIATE` transaction so
/// that processes opening the file together migrate it once. RUN_STATUS keeps its rows and
/// gains the columns it lacks. The old RUN_CONTROL_EVENTS (a SCOPE_JSON column) and
/// WORKER_HEARTBEATS (a run STATUS instead of a worker STATE) are recreated empty: nothing read
/// them while a run was going before the control plane used them, so no run depends on them.
fn migrate(conn: &mut Connection) -> Result<()> {
    let context = "bringing the control tables up to date";
    let tx =
        conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| map_error(e, context))?;
    let run_columns = columns(&tx, "RUN_STATUS")?;
    for (name, definition) in ADDED_RUN_COLUMNS {
        if !run_columns.iter().any(|c| c == name) {
            tx.execute_batch(&format!("ALTER TABLE RUN_STATUS ADD COLUMN {name} {definition}"))
                .map_err(|e| map_error(e, context))?;
        }
    }
    let recreate = [
        ("RUN_CONTROL_EVENTS", ["SCOPE", "SCOPE_ID", "EVENT_JSON"]),
        ("WORKER_HEARTBEATS", ["STATE", "HOST", "PID"]),
    ];
    let mut recreated = false;
    for (table, required) in recreate {
        let have = columns(&tx, table)?;
        if required.iter().any(|c| !have.iter().any(|h| h == c)) {
            tracing::info!(table, "recreating an old-shaped control table (it held no run state)");
            tx.execute_batch(&format!("DROP TABLE {table}")).map_err(|e| map_error(e, context))?;
            recreated = true;
        }
    }
    if recreated {
        tx.execute_batch(CONTROL_SCHEMA).map_err(|e| map_error(e, context))?;
    }
    tx.commit().map_err(|e| map_error(e, context))
}

const RUN_COLUMNS: &str = "RUN_ID, TEMPLATE_NAME, STATUS, PHASE, REASON, WORKER_COUNT, \
     TARGET_CONNECTIONS, TARGET_QPS, LAST_EVENT_SEQ, CREATED_AT, UPDATED_AT, TEMPLATE_JSON, \
     RESULTS_URL, LOAD_START_AT, CONTROLLER_BEAT_AT, VERSION";

/// A RUN_STATUS row as SQLite returns it, in [`RUN_COLUMNS`] order.
struct RawRun {
    run_id: String,
    template_name: String,
    status: String,
    phase: String,
    reason: Option<String>,
    worker_count: u32,
    target_connections: u32,
    target_qps: Option<f64>,
    last_event_seq: i64,
    created_at: String,
    updated_at: String,
    template_json: Option<String>,
    results_url: Option<String>,
    load_start_at: Option<String>,
    controller_beat_at: Option<String>,
    version: i64,
}

fn raw_run(r: &Row<'_>) -> rusqlite::Result<RawRun> {
    Ok(RawRun {
        run_id: r.get(0)?,
        template_name: r.get(1)?,
        status: r.get(2)?,
        phase: r.get(3)?,
        reason: r.get(4)?,
        worker_count: r.get(5)?,
        target_connections: r.get(6)?,
        target_qps: r.get(7)?,
        last_event_seq: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
        template_json: r.get(11)?,
        results_url: r.get(12)?,
        load_start_at: r.get(13)?,
        controller_beat_at: r.get(14)?,
        version: r.get(15)?,
    })
}

fn corrupt(column: &str, e: Error) -> Error {
    Error::backend(ErrorKind::Other, format!("stored {column} cannot be read: {e}"))
}

fn optional_time(value: Option<String>, column: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    value.map(|v| parse_stored_time(&v, column)).transpose()
}

fn run_record(raw: RawRun) -> Result<RunStatusRecord> {
    Ok(RunStatusRecord {
        run_id: RunId::from_str(&raw.run_id).map_err(|e| corrupt("RUN_ID", e))?,
        template_name: raw.template_name,
        status: RunStatus::from_str(&raw.status).map_err(|e| corrupt("STATUS", e))?,
        phase: RunPhase::from_str(&raw.phase).map_err(|e| corrupt("PHASE", e))?,
        reason: raw.reason,
        worker_count: raw.worker_count,
        target_connections: raw.target_connections,
        target_qps: raw.target_qps,
        last_event_seq: from_sql_int(raw.last_event_seq),
        created_at: parse_stored_time(&raw.created_at, "CREATED_AT")?,
        updated_at: parse_stored_time(&raw.updated_at, "UPDATED_AT")?,
        template_json: raw.template_json,
        results_url: raw.results_url,
        load_start_at: optional_time(raw.load_start_at, "LOAD_START_AT")?,
        controller_beat_at: optional_time(raw.controller_beat_at, "CONTROLLER_BEAT_AT")?,
        version: from_sql_int(raw.version),
    })
}

/// The columns of a run after RUN_ID, in [`RUN_COLUMNS`] order, as SQLite values.
fn run_values(r: &RunStatusRecord) -> Vec<rusqlite::types::Value> {
    use rusqlite::types::Value as V;
    let text = |s: &str| V::Text(s.to_string());
    let opt_text = |s: Option<String>| s.map(V::Text).unwrap_or(V::Null);
    let opt_time = |t: &Option<chrono::DateTime<chrono::Utc>>| opt_text(t.as_ref().map(format_stored_time));
    vec![
        text(&r.template_name),
        text(r.status.as_str()),
        text(r.phase.as_str()),
        opt_text(r.reason.clone()),
        V::Integer(i64::from(r.worker_count)),
        V::Integer(i64::from(r.target_connections)),
        r.target_qps.map(V::Real).unwrap_or(V::Null),
        V::Integer(to_sql_int(r.last_event_seq)),
        V::Text(format_stored_time(&r.created_at)),
        V::Text(format_stored_time(&r.updated_at)),
        opt_text(r.template_json.clone()),
        opt_text(stored_results_url(r.results_url.as_deref())),
        opt_time(&r.load_start_at),
        opt_time(&r.controller_beat_at),
        V::Integer(to_sql_int(r.version)),
    ]
}

#[async_trait]
impl ControlStore for SqliteControlStore {
    async fn create_run(&self, record: &RunStatusRecord) -> Result<()> {
        let run_id = record.run_id;
        let mut values = vec![rusqlite::types::Value::Text(run_id.to_string())];
        values.extend(run_values(record));
        self.store
            .with_conn("create_run", move |conn| {
                let placeholders = (1..=values.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
                let inserted = conn.execute(
                    &format!("INSERT INTO RUN_STATUS ({RUN_COLUMNS}) VALUES ({placeholders})"),
                    params_from_iter(values),
                );
                match inserted {
                    Ok(_) => Ok(()),
                    Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
                        Err(map_error(e, "creating a run")
                            .with_message(format!("run {run_id} exists already: use a new run id")))
                    }
                    Err(e) => Err(map_error(e, "creating a run")),
                }
            })
            .await
    }

    async fn run(&self, run_id: RunId) -> Result<Option<RunStatusRecord>> {
        self.store
            .with_conn("run", move |conn| {
                let raw = conn
                    .query_row(
                        &format!("SELECT {RUN_COLUMNS} FROM RUN_STATUS WHERE RUN_ID = ?1"),
                        [run_id.to_string()],
                        raw_run,
                    )
                    .optional()
                    .map_err(|e| map_error(e, "reading a run status"))?;
                raw.map(run_record).transpose()
            })
            .await
    }

    async fn runs(&self, statuses: &[RunStatus], limit: usize) -> Result<Vec<RunStatusRecord>> {
        let statuses: Vec<String> = statuses.iter().map(|s| s.as_str().to_string()).collect();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.store
            .with_conn("runs", move |conn| {
                let context = "listing runs";
                let filter = if statuses.is_empty() {
                    String::new()
                } else {
                    let marks = (2..statuses.len() + 2).map(|i| format!("?{i}")).collect::<Vec<_>>();
                    format!("WHERE STATUS IN ({})", marks.join(", "))
                };
                let mut stmt = conn
                    .prepare(&format!(
                        "SELECT {RUN_COLUMNS} FROM RUN_STATUS {filter} \
                         ORDER BY CREATED_AT DESC, RUN_ID DESC LIMIT ?1"
                    ))
                    .map_err(|e| map_error(e, context))?;
                let mut values = vec![rusqlite::types::Value::Integer(limit)];
                values.extend(statuses.into_iter().map(rusqlite::types::Value::Text));
                let rows = stmt
                    .query_map(params_from_iter(values), raw_run)
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(|e| map_error(e, context))?;
                rows.into_iter().map(run_record).collect()
            })
            .await
    }

    async fn replace_run(&self, record: &RunStatusRecord, expected_version: u64) -> Result<bool> {
        let mut values = run_values(record);
        values.push(rusqlite::types::Value::Text(record.run_id.to_string()));
        values.push(rusqlite::types::Value::Integer(to_sql_int(expected_version)));
        self.store
            .with_conn("replace_run", move |conn| {
                let assignments = RUN_COLUMNS
                    .split(',')
                    .map(str::trim)
                    .skip(1)
                    .enumerate()
                    .map(|(i, c)| format!("{c} = ?{}", i + 1))
                    .collect::<Vec<_>>()
                    .join(", ");
                let n = values.len();
                let changed = conn
                    .execute(
                        &format!(
                            "UPDATE RUN_STATUS SET {assignments} WHERE RUN_ID = ?{} AND VERSION = ?{n}",
                            n - 1
                        ),
                        params_from_iter(values),
                    )
                    .map_err(|e| map_error(e, "replacing a run status"))?;
                Ok(changed > 0)
            })
            .await
    }

    async fn insert_event(&self, event: &ControlEvent) -> Result<()> {
        let event_json = to_json(&event.kind, "the control event")?;
        let e = event.clone();
        self.store
            .with_conn("insert_event", move |conn| {
                let (scope, scope_id) = scope_columns(&e.scope);
                let inserted = conn.execute(
                    "INSERT INTO RUN_CONTROL_EVENTS (RUN_ID, SEQ, SCOPE, SCOPE_ID, EVENT_TYPE, \
                     EVENT_JSON, CREATED_AT) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        e.run_id.to_string(),
                        to_sql_int(e.seq),
                        scope,
                        scope_id,
                        e.kind.as_str(),
                        event_json,
                        format_stored_time(&e.created_at),
                    ],
                );
                match inserted {
                    Ok(_) => Ok(()),
                    Err(err) if err.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
                        Err(map_error(err, "inserting a control event")
                            .with_message(format!("run {} has an event {} already", e.run_id, e.seq)))
                    }
                    Err(err) => Err(map_error(err, "inserting a control event")),
                }
            })
            .await
    }

    async fn events_since(&self, run_id: RunId, after_seq: u64) -> Result<Vec<ControlEvent>> {
        self.store
            .with_conn("events_since", move |conn| {
                let context = "reading control events";
                let mut stmt = conn
                    .prepare(
                        "SELECT SEQ, SCOPE, SCOPE_ID, EVENT_JSON, CREATED_AT FROM RUN_CONTROL_EVENTS \
                         WHERE RUN_ID = ?1 AND SEQ > ?2 ORDER BY SEQ",
                    )
                    .map_err(|e| map_error(e, context))?;
                type RawEvent = (i64, String, Option<String>, String, String);
                let rows: Vec<RawEvent> = stmt
                    .query_map(params![run_id.to_string(), to_sql_int(after_seq)], |r| TryFrom::try_from(r))
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(|e| map_error(e, context))?;
                rows.into_iter()
                    .map(|(seq, scope, scope_id, event, created)| {
                        Ok(ControlEvent {
                            run_id,
                            seq: from_sql_int(seq),
                            scope: parse_scope(&scope, scope_id)?,
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
                    "INSERT OR REPLACE INTO WORKER_HEARTBEATS (RUN_ID, WORKER_ID, STATE, PHASE, \
                     CONNECTIONS, OPS, ERRORS, LAST_ERROR, LAST_EVENT_SEQ, BEAT_AT, HOST, PID) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    params![
                        b.run_id.to_string(),
                        b.worker_id,
                        b.state.as_str(),
                        b.phase.as_str(),
                        b.connections,
                        to_sql_int(b.ops),
                        to_sql_int(b.errors),
                        b.last_error,
                        to_sql_int(b.last_event_seq),
                        format_stored_time(&b.beat_at),
                        b.host,
                        b.pid,
                    ],
                )
                .map_err(|e| map_error(e, "writing a heartbeat"))?;
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
                        "SELECT WORKER_ID, STATE, PHASE, CONNECTIONS, OPS, ERRORS, LAST_ERROR, \
                         LAST_EVENT_SEQ, BEAT_AT, HOST, PID FROM WORKER_HEARTBEATS WHERE RUN_ID = ?1 \
                         ORDER BY WORKER_ID",
                    )
                    .map_err(|e| map_error(e, context))?;
                type RawBeat =
                    (String, String, String, u32, i64, i64, Option<String>, i64, String, String, u32);
                let rows: Vec<RawBeat> = stmt
                    .query_map([run_id.to_string()], |r| TryFrom::try_from(r))
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(|e| map_error(e, context))?;
                rows.into_iter()
                    .map(|(worker, state, phase, conns, ops, errors, last_error, seq, at, host, pid)| {
                        Ok(WorkerHeartbeat {
                            run_id,
                            worker_id: worker,
                            state: WorkerState::from_str(&state).map_err(|e| corrupt("STATE", e))?,
                            phase: RunPhase::from_str(&phase).map_err(|e| corrupt("PHASE", e))?,
                            connections: conns,
                            ops: from_sql_int(ops),
                            errors: from_sql_int(errors),
                            last_error,
                            last_event_seq: from_sql_int(seq),
                            beat_at: parse_stored_time(&at, "BEAT_AT")?,
                            host,
                            pid,
                        })
                    })
                    .collect()
            })
            .await
    }
}
