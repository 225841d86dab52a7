//! An in-process target for engine tests: it counts what it executes, can add latency and can
//! stall. It is the engine's test target, not a stand-in for any database adapter (those are
//! tested against real servers).
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use unistore_core::model::WorkerIdentity;
use unistore_core::table::{ColumnInfo, TableProfile};
use unistore_core::target::{ParamRole, ParamSpec, StatementSpec, TargetCapabilities};
use unistore_core::template::Template;
use unistore_core::{
    ColumnType, QueryKind, Result, RunId, TableRef, TableType, TargetPool, TargetSession, Value, WorkloadPlan,
};

#[derive(Debug, Default)]
pub struct ToyState {
    pub executed: AtomicU64,
    pub sessions: AtomicU64,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    /// Completion instants of every operation, for checks against the engine's windows.
    pub completions: Mutex<Vec<Instant>>,
    /// Arrival instants of every operation (when `keep_completions` is set): when the engine
    /// really started it, as the target saw it.
    pub arrivals: Mutex<Vec<Instant>>,
    pub stall: Mutex<Option<(Instant, Instant)>>,
    /// Phases the engine announced, in order.
    pub phases: Mutex<Vec<unistore_core::RunPhase>>,
    /// Wakes every operation in flight with a cancellation error.
    pub cancel: tokio::sync::Notify,
    /// Whether `cancel_in_flight` is supported (otherwise the default, which cancels nothing).
    pub cancellable: std::sync::atomic::AtomicBool,
    /// The operation with this number panics (a bug in a driver or a generator).
    pub panic_at: AtomicU64,
    /// Whether to note the threads each session was opened and used on (`threads`).
    pub track_threads: std::sync::atomic::AtomicBool,
    /// Per session (in opening order): the thread it was opened on, and every thread that ran
    /// one of its operations.
    pub threads: Mutex<
        std::collections::BTreeMap<
            u64,
            (std::thread::ThreadId, std::collections::HashSet<std::thread::ThreadId>),
        >,
    >,
    /// When each server-side baseline was taken (`begin_server_stats`); `finish_server_stats`
    /// reports the window from the first to then, as PostgreSQL's adapter does.
    pub baselines: Mutex<Vec<chrono::DateTime<chrono::Utc>>>,
}

#[derive(Debug)]
pub struct ToyTarget {
    pub state: Arc<ToyState>,
    pub latency: Duration,
    pub keep_completions: bool,
    /// Operations beyond this many in flight slow every operation down quadratically, like a
    /// server past its capacity.
    pub capacity: Option<usize>,
}

impl ToyTarget {
    pub fn new(latency: Duration) -> Self {
        ToyTarget { state: Arc::new(ToyState::default()), latency, keep_completions: false, capacity: None }
    }
}

#[async_trait]
impl TargetPool for ToyTarget {
    fn kind(&self) -> &'static str {
        "toy"
    }
    fn capabilities(&self) -> TargetCapabilities {
        TargetCapabilities { cancel: false, server_side_prepare: false }
    }
    async fn cancel_in_flight(&self) -> Result<u64> {
        if !self.state.cancellable.load(Ordering::SeqCst) {
            return Ok(0);
        }
        let n = self.state.in_flight.load(Ordering::SeqCst) as u64;
        self.state.cancel.notify_waiters();
        Ok(n)
    }
    fn set_phase(&self, phase: unistore_core::RunPhase) {
        self.state.phases.lock().push(phase);
    }
    async fn begin_server_stats(&self) -> Result<()> {
        self.state.baselines.lock().push(chrono::Utc::now());
        Ok(())
    }
    async fn finish_server_stats(
        &self,
        _since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<serde_json::Value>> {
        let from = self.state.baselines.lock().first().copied();
        Ok(from.map(|from| {
            serde_json::json!({
                "from": from.to_rfc3339(),
                "to": chrono::Utc::now().to_rfc3339(),
                "calls": self.state.executed.load(Ordering::SeqCst),
            })
        }))
    }
    async fn connect(&self) -> Result<Box<dyn TargetSession>> {
        let id = self.state.sessions.fetch_add(1, Ordering::SeqCst);
        if self.state.track_threads.load(Ordering::SeqCst) {
            self.state.threads.lock().insert(id, (std::thread::current().id(), Default::default()));
        }
        Ok(Box::new(ToySession {
            id,
            state: self.state.clone(),
            latency: self.latency,
            keep: self.keep_completions,
            capacity: self.capacity,
        }))
    }
}

struct ToySession {
    id: u64,
    state: Arc<ToyState>,
    latency: Duration,
    keep: bool,
    capacity: Option<usize>,
}

#[async_trait]
impl TargetSession for ToySession {
    async fn prepare(&mut self, _statements: &[StatementSpec]) -> Result<()> {
        Ok(())
    }
    async fn execute(&mut self, _statement: usize, params: &[Value]) -> Result<u64> {
        assert!(!params.is_empty(), "the engine must bind the key parameter");
        if self.state.track_threads.load(Ordering::Relaxed) {
            if let Some((_, used)) = self.state.threads.lock().get_mut(&self.id) {
                used.insert(std::thread::current().id());
            }
        }
        if self.keep {
            self.state.arrivals.lock().push(Instant::now());
        }
        let panic_at = self.state.panic_at.load(Ordering::SeqCst);
        if panic_at > 0 && self.state.executed.load(Ordering::SeqCst) + 1 >= panic_at {
            panic!("boom: injected at operation {panic_at}");
        }
        let now = self.state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.state.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let stall = *self.state.stall.lock();
        if let Some((from, until)) = stall {
            let t = Instant::now();
            if t >= from && t < until {
                tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
            }
        }
        let latency = match self.capacity {
            Some(c) if now > c => self.latency.mul_f64((now as f64 / c as f64).powi(2)),
            _ => self.latency,
        };
        if latency.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::select! {
                _ = tokio::time::sleep(latency) => {}
                _ = self.state.cancel.notified() => {
                    self.state.in_flight.fetch_sub(1, Ordering::SeqCst);
                    return Err(unistore_core::Error::backend(unistore_core::ErrorKind::Timeout, "cancelled"));
                }
            }
        }
        self.state.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.state.executed.fetch_add(1, Ordering::SeqCst);
        if self.keep {
            self.state.completions.lock().push(Instant::now());
        }
        Ok(1)
    }
}

pub fn profile() -> TableProfile {
    TableProfile {
        table: TableRef::parse("toy").expect("valid"),
        table_type: TableType::Sqlite,
        columns: vec![ColumnInfo {
            name: "id".into(),
            column_type: ColumnType::Integer,
            native_type: "INTEGER".into(),
            nullable: false,
            has_default: false,
            max_length: None,
            generated: None,
            indexed: None,
        }],
        primary_key: vec!["id".into()],
        row_estimate: 1000,
        key_range: Some((1, 1000)),
        time_column: None,
        indexes: vec![],
        triggers: Vec::new(),
        foreign_keys: Vec::new(),
    }
}

/// A plan of point lookups over keys 1..=1000.
pub fn point_lookup_plan() -> Arc<WorkloadPlan> {
    let mut mix = BTreeMap::new();
    mix.insert(QueryKind::PointLookup, 100);
    let mut template = Template::new("toy", mix);
    template.values.source = unistore_core::template::KeySource::Range;
    let statements = vec![StatementSpec {
        kind: QueryKind::PointLookup,
        sql: "lookup".into(),
        params: vec![ParamSpec {
            column: "id".into(),
            column_type: ColumnType::Integer,
            role: ParamRole::Key,
        }],
        returning: None,
    }];
    Arc::new(
        WorkloadPlan::build(&template, &profile(), statements, None, RunId::new(), &WorkerIdentity::solo())
            .expect("plan builds"),
    )
}

/// A table manager for [`profile`]'s table, rendering SQLite's dialect: what the runner needs
/// around the toy target.
pub struct ToyTables;

#[async_trait]
impl unistore_core::TableManager for ToyTables {
    fn table_type(&self) -> TableType {
        TableType::Sqlite
    }
    async fn profile(&self, _table: &TableRef) -> Result<TableProfile> {
        Ok(profile())
    }
    async fn sample_values(&self, _p: &TableProfile, _c: &str, limit: usize) -> Result<Vec<Value>> {
        Ok((1..=limit.min(1000) as i64).map(Value::Int).collect())
    }
    fn render(
        &self,
        profile: &TableProfile,
        request: &unistore_core::table::RenderRequest<'_>,
    ) -> Result<StatementSpec> {
        unistore_core::sql::SqlDialect::SQLITE.render(profile, request)
    }
}
