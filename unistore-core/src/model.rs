//! The data model: query kinds, table references, run identities, lifecycle enums and control
//! events. Templates live in [`crate::template`], metric snapshots and summaries in
//! [`crate::metrics`].

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};

/// One kind of operation in a workload mix. Written in any case (`point_lookup`,
/// `POINT_LOOKUP`, `point-lookup`) in templates and on the command line; stored upper-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QueryKind {
    /// `SELECT ... WHERE key = ?`.
    PointLookup,
    /// `SELECT ... WHERE key >= ? AND key < ?` (or by time column).
    RangeScan,
    /// `INSERT` of one generated row.
    Insert,
    /// `UPDATE ... SET column = ? WHERE key = ?`.
    Update,
    /// User SQL with `?` parameters.
    CustomSql,
}

impl QueryKind {
    /// Every kind, in display order. `index()` is the position in this array.
    pub const ALL: [QueryKind; 5] = [
        QueryKind::PointLookup,
        QueryKind::RangeScan,
        QueryKind::Insert,
        QueryKind::Update,
        QueryKind::CustomSql,
    ];

    /// Position in [`QueryKind::ALL`], for per-kind arrays on the hot path.
    pub fn index(self) -> usize {
        match self {
            QueryKind::PointLookup => 0,
            QueryKind::RangeScan => 1,
            QueryKind::Insert => 2,
            QueryKind::Update => 3,
            QueryKind::CustomSql => 4,
        }
    }

    /// Stable upper-case name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryKind::PointLookup => "POINT_LOOKUP",
            QueryKind::RangeScan => "RANGE_SCAN",
            QueryKind::Insert => "INSERT",
            QueryKind::Update => "UPDATE",
            QueryKind::CustomSql => "CUSTOM_SQL",
        }
    }

    /// Whether the kind modifies the table (needs explicit permission).
    pub fn is_write(self) -> bool {
        matches!(self, QueryKind::Insert | QueryKind::Update)
    }
}

impl fmt::Display for QueryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for QueryKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let norm = s.trim().to_ascii_uppercase().replace('-', "_");
        QueryKind::ALL.into_iter().find(|k| k.as_str() == norm).ok_or_else(|| {
            Error::invalid(format!(
                "unknown query kind `{s}`: use one of point_lookup, range_scan, insert, update, custom_sql"
            ))
        })
    }
}

impl<'de> Deserialize<'de> for QueryKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The kind of table under test. Each has its own table manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TableType {
    /// Snowflake standard table.
    Standard,
    /// Snowflake hybrid (Unistore) table.
    Hybrid,
    /// Snowflake interactive table.
    Interactive,
    /// A table in a Postgres-family database.
    Postgres,
    /// A table in an SQLite database file.
    Sqlite,
}

impl TableType {
    /// Lower-case name as used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TableType::Standard => "standard",
            TableType::Hybrid => "hybrid",
            TableType::Interactive => "interactive",
            TableType::Postgres => "postgres",
            TableType::Sqlite => "sqlite",
        }
    }

    /// The type to benchmark `table` as, given the type the user declared (template
    /// `table_type`, `--table-type`) and the type the target says the table has. A declared type
    /// must be the actual one: a mismatch is [`ErrorKind::InvalidInput`](crate::ErrorKind)
    /// naming the table, both types and the fix.
    pub fn check_declared(
        declared: Option<TableType>,
        actual: TableType,
        table: impl fmt::Display,
    ) -> Result<TableType> {
        match declared {
            Some(declared) if declared != actual => Err(Error::invalid(format!(
                "table {table} is declared as a {declared} table, but it is a {actual} table: declare \
                 table_type = \"{actual}\" (--table-type {actual} on the command line), or leave the \
                 type out to detect it"
            ))),
            _ => Ok(actual),
        }
    }
}

impl fmt::Display for TableType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TableType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "standard" => Ok(TableType::Standard),
            "hybrid" | "unistore" => Ok(TableType::Hybrid),
            "interactive" => Ok(TableType::Interactive),
            "postgres" | "postgresql" => Ok(TableType::Postgres),
            "sqlite" => Ok(TableType::Sqlite),
            other => Err(Error::invalid(format!(
                "unknown table type `{other}`: use one of standard, hybrid, interactive, postgres, sqlite"
            ))),
        }
    }
}

/// A possibly qualified table name: `[database.][schema.]name`.
///
/// Parts are kept as written (without quotes); adapters quote them as identifiers. Parts may not
/// contain quotes or control characters, so a name can never smuggle SQL into a statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TableRef {
    /// Database (Snowflake) or catalog; `None` means the connection's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Schema; `None` means the connection's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Table name.
    pub name: String,
}

impl TableRef {
    /// Parses `[database.][schema.]name`.
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.trim().split('.').collect();
        let bad = |why: &str| {
            Error::invalid(format!("invalid table name `{s}`: {why}; write it as [database.][schema.]name"))
        };
        for p in &parts {
            if p.is_empty() {
                return Err(bad("a part is empty"));
            }
            if p.chars().any(|c| c == '"' || c == '`' || c == '\'' || c.is_control()) {
                return Err(bad("quotes and control characters are not allowed"));
            }
        }
        let owned = |p: &str| p.to_string();
        match parts.as_slice() {
            [name] => Ok(TableRef { database: None, schema: None, name: owned(name) }),
            [schema, name] => Ok(TableRef { database: None, schema: Some(owned(schema)), name: owned(name) }),
            [db, schema, name] => {
                Ok(TableRef { database: Some(owned(db)), schema: Some(owned(schema)), name: owned(name) })
            }
            _ => Err(bad("too many parts")),
        }
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(db) = &self.database {
            write!(f, "{db}.")?;
        }
        if let Some(schema) = &self.schema {
            write!(f, "{schema}.")?;
        }
        f.write_str(&self.name)
    }
}

impl FromStr for TableRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        TableRef::parse(s)
    }
}

/// Identifier of a run (a parent run, or a worker's child run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct RunId(pub Uuid);

impl RunId {
    /// A fresh random run id.
    pub fn new() -> Self {
        RunId(Uuid::new_v4())
    }
}

impl Default for RunId {
    fn default() -> Self {
        RunId::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for RunId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Uuid::parse_str(s.trim())
            .map(RunId)
            .map_err(|e| Error::invalid(format!("invalid run id `{s}`: {e}; expected a UUID")))
    }
}

/// Which worker of a run this is: index in `0..count`. Value pools and insert keys are sharded by
/// it, so workers do not hit the same keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkerIdentity {
    /// Stable worker id within the run, e.g. `worker-0`.
    pub worker_id: String,
    /// Index of this worker.
    pub index: u32,
    /// Number of workers in the run (at least 1).
    pub count: u32,
}

impl WorkerIdentity {
    /// The only worker of a single-process run.
    pub fn solo() -> Self {
        WorkerIdentity { worker_id: "worker-0".into(), index: 0, count: 1 }
    }
}

/// Lifecycle status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Created, not started.
    Prepared,
    /// Load is running.
    Running,
    /// Stop requested; workers are finishing.
    Stopping,
    /// Finished normally.
    Completed,
    /// Cancel requested; workers are stopping.
    Cancelling,
    /// Cancelled (by a user, a guardrail, or a lost worker); see the reason.
    Cancelled,
    /// Failed with an error; see the reason.
    Failed,
}

impl RunStatus {
    /// Every status.
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Prepared,
        RunStatus::Running,
        RunStatus::Stopping,
        RunStatus::Completed,
        RunStatus::Cancelling,
        RunStatus::Cancelled,
        RunStatus::Failed,
    ];

    /// Stable upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Prepared => "PREPARED",
            RunStatus::Running => "RUNNING",
            RunStatus::Stopping => "STOPPING",
            RunStatus::Completed => "COMPLETED",
            RunStatus::Cancelling => "CANCELLING",
            RunStatus::Cancelled => "CANCELLED",
            RunStatus::Failed => "FAILED",
        }
    }

    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        matches!(self, RunStatus::Completed | RunStatus::Cancelled | RunStatus::Failed)
    }

    /// Whether the lifecycle allows going from `self` to `next`.
    pub fn can_transition_to(self, next: RunStatus) -> bool {
        use RunStatus::*;
        matches!(
            (self, next),
            (Prepared, Running)
                | (Prepared, Cancelling)
                | (Prepared, Cancelled)
                | (Prepared, Failed)
                | (Running, Stopping)
                | (Running, Cancelling)
                | (Running, Failed)
                | (Running, Completed)
                | (Stopping, Completed)
                | (Stopping, Cancelling)
                | (Stopping, Failed)
                | (Cancelling, Cancelled)
                | (Cancelling, Failed)
        )
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let up = s.trim().to_ascii_uppercase();
        RunStatus::ALL
            .into_iter()
            .find(|k| k.as_str() == up)
            .ok_or_else(|| Error::invalid(format!("unknown run status `{s}`")))
    }
}

/// Phase of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunPhase {
    /// Connecting, profiling, sampling.
    Preparing,
    /// Load runs, results excluded from the summary.
    Warmup,
    /// Load runs and is measured.
    Measurement,
    /// Load runs after measurement, not measured.
    Cooldown,
    /// Load stopped, results being written.
    Processing,
}

impl RunPhase {
    /// Every phase, in order.
    pub const ALL: [RunPhase; 5] = [
        RunPhase::Preparing,
        RunPhase::Warmup,
        RunPhase::Measurement,
        RunPhase::Cooldown,
        RunPhase::Processing,
    ];

    /// Stable upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunPhase::Preparing => "PREPARING",
            RunPhase::Warmup => "WARMUP",
            RunPhase::Measurement => "MEASUREMENT",
            RunPhase::Cooldown => "COOLDOWN",
            RunPhase::Processing => "PROCESSING",
        }
    }
}

impl fmt::Display for RunPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunPhase {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let up = s.trim().to_ascii_uppercase();
        RunPhase::ALL
            .into_iter()
            .find(|k| k.as_str() == up)
            .ok_or_else(|| Error::invalid(format!("unknown run phase `{s}`")))
    }
}

/// The row of `RUN_STATUS`: the authoritative state of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunStatusRecord {
    /// The run.
    pub run_id: RunId,
    /// Template name the run was started from.
    pub template_name: String,
    /// Lifecycle status.
    pub status: RunStatus,
    /// Current phase.
    pub phase: RunPhase,
    /// Why the run was cancelled or failed.
    pub reason: Option<String>,
    /// Number of workers expected.
    pub worker_count: u32,
    /// Current target connections (total), so late joiners catch up without replaying events.
    pub target_connections: u32,
    /// Current target QPS (total), if the run is rate-limited.
    pub target_qps: Option<f64>,
    /// Highest control event sequence number issued.
    pub last_event_seq: u64,
    /// When the record was created.
    pub created_at: DateTime<Utc>,
    /// When the record last changed.
    pub updated_at: DateTime<Utc>,
    /// The effective template as JSON (flags and defaults applied): what every worker runs, so
    /// that `unistore-worker join` needs only the control store and the run id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_json: Option<String>,
    /// The results store the workers write their rows to (a URL without secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_url: Option<String>,
    /// The instant the load starts (warmup begins) on every worker, set by `START`. Every
    /// worker derives its phase boundaries from it, so they share them; a worker that joins
    /// late starts in the phase the run is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_start_at: Option<DateTime<Utc>>,
    /// When the controller driving the run last said it was alive. Workers stop on their own
    /// when it is older than their controller timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_beat_at: Option<DateTime<Utc>>,
    /// Row version for compare-and-set, bumped by every write (see
    /// [`crate::control::ControlStore::replace_run`]).
    #[serde(default)]
    pub version: u64,
}

impl RunStatusRecord {
    /// A new `PREPARED` record.
    pub fn prepared(run_id: RunId, template_name: impl Into<String>, worker_count: u32) -> Self {
        // At the precision every store keeps, so the row reads back as written.
        let now = crate::control::now_micros();
        RunStatusRecord {
            run_id,
            template_name: template_name.into(),
            status: RunStatus::Prepared,
            phase: RunPhase::Preparing,
            reason: None,
            worker_count,
            target_connections: 0,
            target_qps: None,
            last_event_seq: 0,
            created_at: now,
            updated_at: now,
            template_json: None,
            results_url: None,
            load_start_at: None,
            controller_beat_at: None,
            version: 0,
        }
    }
}

/// Who a control event is addressed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", content = "id", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventScope {
    /// Every worker of the run.
    Run,
    /// A worker group.
    WorkerGroup(String),
    /// One worker.
    Worker(String),
}

impl EventScope {
    /// Whether a worker with this id (in this group) should apply the event.
    pub fn applies_to(&self, worker_id: &str, group: Option<&str>) -> bool {
        match self {
            EventScope::Run => true,
            EventScope::WorkerGroup(g) => group == Some(g.as_str()),
            EventScope::Worker(w) => w == worker_id,
        }
    }
}

/// What a control event asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ControlEventKind {
    /// Start the load: every worker starts its clock at `load_start_at` (a late worker starts
    /// in the phase the run is in by then).
    Start {
        /// The shared instant the warmup begins.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        load_start_at: Option<DateTime<Utc>>,
    },
    /// Stop the load.
    Stop {
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// End the load now because the run has its answer (a search across workers found its
    /// best step): the workers' rows are completed, not cancelled.
    Finish {
        /// Why.
        reason: String,
    },
    /// Move to a phase.
    SetPhase {
        /// The new phase.
        phase: RunPhase,
    },
    /// Absolute target connections (and optionally QPS).
    SetWorkerTarget {
        /// Target connections for the scope.
        connections: u32,
        /// Target QPS for the scope.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_qps: Option<f64>,
    },
}

impl ControlEventKind {
    /// Stable upper-case name, as in the `EVENT_TYPE` column.
    pub fn as_str(&self) -> &'static str {
        match self {
            ControlEventKind::Start { .. } => "START",
            ControlEventKind::Stop { .. } => "STOP",
            ControlEventKind::Finish { .. } => "FINISH",
            ControlEventKind::SetPhase { .. } => "SET_PHASE",
            ControlEventKind::SetWorkerTarget { .. } => "SET_WORKER_TARGET",
        }
    }
}

/// A row of `RUN_CONTROL_EVENTS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlEvent {
    /// The run.
    pub run_id: RunId,
    /// Per-run monotonic sequence number, starting at 1.
    pub seq: u64,
    /// Addressees.
    pub scope: EventScope,
    /// The request.
    pub kind: ControlEventKind,
    /// When it was appended.
    pub created_at: DateTime<Utc>,
}

/// What a worker of a run is doing, as its heartbeat says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkerState {
    /// Started; profiling the table and opening its connections.
    Connecting,
    /// Connections open and prepared; waiting for the run's start instant.
    Ready,
    /// Load is running.
    Running,
    /// Load stopped; writing its results.
    Stopping,
    /// Its summary is written; the process exits.
    Finished,
    /// It could not run (the target is unreachable, bad input); see `last_error`.
    Failed,
    /// The controller found it silent for longer than the heartbeat timeout.
    Lost,
}

impl WorkerState {
    /// Every state.
    pub const ALL: [WorkerState; 7] = [
        WorkerState::Connecting,
        WorkerState::Ready,
        WorkerState::Running,
        WorkerState::Stopping,
        WorkerState::Finished,
        WorkerState::Failed,
        WorkerState::Lost,
    ];

    /// Stable upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Connecting => "CONNECTING",
            WorkerState::Ready => "READY",
            WorkerState::Running => "RUNNING",
            WorkerState::Stopping => "STOPPING",
            WorkerState::Finished => "FINISHED",
            WorkerState::Failed => "FAILED",
            WorkerState::Lost => "LOST",
        }
    }

    /// Whether the worker is done (it will not beat again).
    pub fn is_final(self) -> bool {
        matches!(self, WorkerState::Finished | WorkerState::Failed | WorkerState::Lost)
    }
}

impl fmt::Display for WorkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorkerState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let up = s.trim().to_ascii_uppercase();
        WorkerState::ALL
            .into_iter()
            .find(|k| k.as_str() == up)
            .ok_or_else(|| Error::invalid(format!("unknown worker state `{s}`")))
    }
}

/// A row of `WORKER_HEARTBEATS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerHeartbeat {
    /// The run.
    pub run_id: RunId,
    /// The worker.
    pub worker_id: String,
    /// What the worker is doing.
    pub state: WorkerState,
    /// Worker's phase.
    pub phase: RunPhase,
    /// Open connections.
    pub connections: u32,
    /// Operations completed so far.
    pub ops: u64,
    /// Errors so far.
    pub errors: u64,
    /// Last error message, if any (free of secrets).
    pub last_error: Option<String>,
    /// Highest control event sequence applied.
    pub last_event_seq: u64,
    /// When the beat was sent.
    pub beat_at: DateTime<Utc>,
    /// Host the worker runs on.
    #[serde(default)]
    pub host: String,
    /// Its process id on that host.
    #[serde(default)]
    pub pid: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn an_absent_or_matching_declared_type_gives_the_actual_type() {
        assert_eq!(
            TableType::check_declared(None, TableType::Hybrid, "db.s.t").ok(),
            Some(TableType::Hybrid)
        );
        assert_eq!(
            TableType::check_declared(Some(TableType::Postgres), TableType::Postgres, "t").ok(),
            Some(TableType::Postgres)
        );
    }

    #[test]
    fn a_declared_type_that_is_not_the_actual_one_names_table_types_and_fix() {
        let table = TableRef::parse("shop.public.orders").expect("valid name");
        let e = TableType::check_declared(Some(TableType::Hybrid), TableType::Standard, &table)
            .expect_err("hybrid declared, standard found");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            e.to_string(),
            "table shop.public.orders is declared as a hybrid table, but it is a standard table: \
             declare table_type = \"standard\" (--table-type standard on the command line), or \
             leave the type out to detect it"
        );
    }
}
