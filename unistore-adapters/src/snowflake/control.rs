//! The control store on Snowflake hybrid tables: `RUN_STATUS`, `RUN_CONTROL_EVENTS`,
//! `WORKER_HEARTBEATS` (DDL in `sql/schema/snowflake/control.sql`).
//!
//! Only rows here: the rules are `unistore_core::control`. `replace_run` is a single-row
//! compare-and-set (`UPDATE ... WHERE RUN_ID = ? AND VERSION = ?`) checked by its affected-row
//! count, so correctness comes from the database's row-level atomicity and enforced primary
//! keys, and controllers and workers on other hosts can share a run.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use unistore_core::model::{ControlEvent, RunStatus, RunStatusRecord, WorkerHeartbeat, WorkerState};
use unistore_core::{ControlStore, ErrorKind, Result, RunId, Value};

use super::pool::{Connector, SessionPool};
use super::tables::ident;
use super::{from_json, to_json, Row, SnowflakeConfig, STORE_SESSIONS};
use crate::control_rows::{parse_scope, scope_columns, stored_results_url};

const STATUS_COLUMNS: &str = "RUN_ID, TEMPLATE_NAME, STATUS, PHASE, REASON, WORKER_COUNT, \
     TARGET_CONNECTIONS, TARGET_QPS, LAST_EVENT_SEQ, CREATED_AT, UPDATED_AT, TEMPLATE_JSON, \
     RESULTS_URL, LOAD_START_AT, CONTROLLER_BEAT_AT, VERSION";

const EVENT_COLUMNS: &str = "RUN_ID, SEQ, SCOPE, SCOPE_ID, EVENT_TYPE, EVENT_JSON, CREATED_AT";

const HEARTBEAT_COLUMNS: &str = "RUN_ID, WORKER_ID, STATE, PHASE, CONNECTIONS, OPS, ERRORS, LAST_ERROR, \
     LAST_EVENT_SEQ, BEAT_AT, HOST, PID";

/// [`ControlStore`] on Snowflake hybrid tables.
pub struct SnowflakeHybridControlStore {
    pool: Arc<SessionPool>,
    prefix: String,
}

impl std::fmt::Debug for SnowflakeHybridControlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnowflakeHybridControlStore").field("location", &self.prefix).finish()
    }
}

fn id(run_id: RunId) -> Value {
    Value::text(run_id.to_string())
}

/// Timestamps are kept at microseconds, what every Snowflake timestamp column keeps at least.
fn ts(t: DateTime<Utc>) -> Value {
    Value::Timestamp(t.timestamp_micros())
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Value {
    t.map(ts).unwrap_or(Value::Null)
}

fn int(n: u64) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn opt_text(v: Option<&str>) -> Value {
    v.map(Value::text).unwrap_or(Value::Null)
}

impl Row<'_> {
    fn opt_time(&self, i: usize) -> Result<Option<DateTime<Utc>>> {
        if self.cell(i)?.is_null() {
            return Ok(None);
        }
        self.time(i).map(Some)
    }
}

impl SnowflakeHybridControlStore {
    /// A store for the URL's database and schema (default `UNISTORE_BENCHMARK.TEST_RESULTS`).
    /// Missing tables or columns are an error naming `sql/schema/snowflake/control.sql` and the
    /// setup command.
    pub async fn open(url: &str) -> Result<Self> {
        let config = SnowflakeConfig::from_url(url)?;
        let (database, schema) = config.results_location();
        let prefix = format!("{}.{}", ident(&database), ident(&schema));
        let connector = Connector::new(config.with_location(&database, &schema));
        let store = SnowflakeHybridControlStore {
            pool: Arc::new(SessionPool::new(connector, "unistore:control", STORE_SESSIONS)),
            prefix,
        };
        store.require_tables().await?;
        Ok(store)
    }

    fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    /// Reads no rows but names every column, so that a missing table or a table made by an
    /// older version (lacking columns) is found when the store opens, not mid-run.
    async fn require_tables(&self) -> Result<()> {
        for (table, columns) in [
            ("RUN_STATUS", STATUS_COLUMNS),
            ("RUN_CONTROL_EVENTS", EVENT_COLUMNS),
            ("WORKER_HEARTBEATS", HEARTBEAT_COLUMNS),
        ] {
            let sql = format!("SELECT {columns} FROM {} WHERE 1 = 0", self.table(table));
            match self.pool.rows(&sql, &[]).await {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    let message = format!(
                        "the control table {} is missing or was made by an older version ({e}): \
                         apply sql/schema/snowflake/control.sql: run `unistore-worker setup \
                         --results URL` (applying the file again only adds what is missing)",
                        self.table(table)
                    );
                    return Err(e.with_message(message));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
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
        template_json: row.opt_text(11)?,
        results_url: row.opt_text(12)?,
        load_start_at: row.opt_time(13)?,
        controller_beat_at: row.opt_time(14)?,
        version: row.u64(15)?,
    })
}

/// The columns of a run after RUN_ID, in [`STATUS_COLUMNS`] order.
fn status_values(r: &RunStatusRecord) -> Vec<Value> {
    vec![
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
        opt_text(r.template_json.as_deref()),
        opt_text(stored_results_url(r.results_url.as_deref()).as_deref()),
        opt_ts(r.load_start_at),
        opt_ts(r.controller_beat_at),
        int(r.version),
    ]
}

#[async_trait]
impl ControlStore for SnowflakeHybridControlStore {
    async fn create_run(&self, r: &RunStatusRecord) -> Result<()> {
        let mut params = vec![id(r.run_id)];
        params.extend(status_values(r));
        let marks = vec!["?"; params.len()].join(", ");
        let sql = format!("INSERT INTO {} ({STATUS_COLUMNS}) VALUES ({marks})", self.table("RUN_STATUS"));
        self.pool.execute(&sql, &params).await.map(|_| ()).map_err(|e| {
            if e.kind() == ErrorKind::Constraint {
                let message = format!("run {} exists already: {e}", r.run_id);
                e.with_message(message)
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

    async fn runs(&self, statuses: &[RunStatus], limit: usize) -> Result<Vec<RunStatusRecord>> {
        let filter = if statuses.is_empty() {
            String::new()
        } else {
            format!("WHERE STATUS IN ({})", vec!["?"; statuses.len()].join(", "))
        };
        let sql = format!(
            "SELECT {STATUS_COLUMNS} FROM {} {filter} ORDER BY CREATED_AT DESC, RUN_ID DESC LIMIT ?",
            self.table("RUN_STATUS")
        );
        let mut params: Vec<Value> = statuses.iter().map(|s| Value::text(s.as_str())).collect();
        params.push(int(u64::try_from(limit).unwrap_or(u64::MAX)));
        let rows = self.pool.rows(&sql, &params).await?;
        rows.iter().map(|r| record(&Row(r))).collect()
    }

    async fn replace_run(&self, r: &RunStatusRecord, expected_version: u64) -> Result<bool> {
        let assignments =
            STATUS_COLUMNS.split(',').map(str::trim).skip(1).map(|c| format!("{c} = ?")).collect::<Vec<_>>();
        let sql = format!(
            "UPDATE {} SET {} WHERE RUN_ID = ? AND VERSION = ?",
            self.table("RUN_STATUS"),
            assignments.join(", ")
        );
        let mut params = status_values(r);
        params.push(id(r.run_id));
        params.push(int(expected_version));
        match self.pool.execute(&sql, &params).await {
            Ok(n) => Ok(n > 0),
            // A row lock held by another writer: that writer is changing the row, so this
            // compare-and-set lost the race (the caller re-reads and tries again).
            Err(e) if e.kind() == ErrorKind::Conflict => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn insert_event(&self, event: &ControlEvent) -> Result<()> {
        let (scope, scope_id) = scope_columns(&event.scope);
        let sql = format!(
            "INSERT INTO {} ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            self.table("RUN_CONTROL_EVENTS")
        );
        let params = [
            id(event.run_id),
            int(event.seq),
            Value::text(scope),
            opt_text(scope_id),
            Value::text(event.kind.as_str()),
            Value::text(to_json(&event.kind, "the control event")?),
            ts(event.created_at),
        ];
        self.pool.execute(&sql, &params).await.map(|_| ()).map_err(|e| {
            if e.kind() == ErrorKind::Constraint {
                let message = format!("run {} has an event {} already: {e}", event.run_id, event.seq);
                e.with_message(message)
            } else {
                e
            }
        })
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
            Value::text(b.state.as_str()),
            Value::text(b.phase.as_str()),
            Value::Int(i64::from(b.connections)),
            int(b.ops),
            int(b.errors),
            opt_text(b.last_error.as_deref()),
            int(b.last_event_seq),
            ts(b.beat_at),
            Value::text(&b.host),
            Value::Int(i64::from(b.pid)),
        ];
        let key = [id(b.run_id), Value::text(&b.worker_id)];
        let update = format!(
            "UPDATE {t} SET STATE = ?, PHASE = ?, CONNECTIONS = ?, OPS = ?, ERRORS = ?, LAST_ERROR = ?, \
             LAST_EVENT_SEQ = ?, BEAT_AT = ?, HOST = ?, PID = ? WHERE RUN_ID = ? AND WORKER_ID = ?"
        );
        let update_params: Vec<Value> = values.iter().cloned().chain(key.iter().cloned()).collect();
        if self.pool.execute(&update, &update_params).await? > 0 {
            return Ok(());
        }
        let insert =
            format!("INSERT INTO {t} ({HEARTBEAT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
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
            "SELECT {HEARTBEAT_COLUMNS} FROM {} WHERE RUN_ID = ? ORDER BY WORKER_ID",
            self.table("WORKER_HEARTBEATS")
        );
        let rows = self.pool.rows(&sql, &[id(run_id)]).await?;
        rows.iter()
            .map(|r| {
                let r = Row(r);
                Ok(WorkerHeartbeat {
                    run_id: r.run_id(0)?,
                    worker_id: r.text(1)?,
                    state: r.text(2)?.parse::<WorkerState>()?,
                    phase: r.text(3)?.parse()?,
                    connections: u32::try_from(r.u64(4)?).unwrap_or(u32::MAX),
                    ops: r.u64(5)?,
                    errors: r.u64(6)?,
                    last_error: r.opt_text(7)?,
                    last_event_seq: r.u64(8)?,
                    beat_at: r.time(9)?,
                    // Rows of an older version have none (see control.sql).
                    host: r.opt_text(10)?.unwrap_or_default(),
                    pid: r.opt_i64(11)?.and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
                })
            })
            .collect()
    }
}
