//! The workload engine: connection tasks, closed and open loop, phases, interval snapshots.
//!
//! Timing model. Every operation is classified by the instant it *completed*, against phase
//! boundaries that are offsets from the load start held in atomics. That makes the measurement
//! window exact (`[warmup_end, measurement_end)`, to the clock read), instead of depending on
//! when a task noticed a phase change, and lets a stop or an external phase change move a
//! boundary at run time.
//!
//! Open loop. Operations are scheduled on one shared timetable at `1 / qps` spacing. A task
//! claims the next slot, sleeps until its intended start and records the response time from
//! the intended start, not from when it managed to start: if the target stalls, the operations
//! that should have been issued during the stall show the stall in their response time
//! (no coordinated omission). The service time (from the actual start) is recorded too, and
//! starts later than a threshold are counted. Because any lag of the tool's own is charged to
//! the target this way, the sleep to a slot is not tokio's (a 1 ms wheel that wakes up to a
//! millisecond late) but the engine's pacer: one thread that wakes each task at its slot to
//! within microseconds (see `pacer.rs` for the design and its CPU cost).

mod pacer;
mod recorder;
mod supervisor;
mod task;
mod threads;
mod timeline;

pub use threads::ClientThreads;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::error::{Error, ErrorKind, Result};
use crate::metrics::{KindRecorder, MetricSnapshot, QueryExecution};
use crate::model::{QueryKind, RunId, WorkerIdentity};
use crate::target::{TargetPool, TargetSession};
use crate::workload::WorkloadPlan;

use recorder::{recorders, Spares};
use supervisor::{FinishedTotals, Supervisor};
use timeline::{Schedule, Shared};

/// Nanoseconds from `start` to now on the OS's monotonic clock: the one clock read the engine
/// takes at each end of an operation (and the pacer at each wake-up), saturating at
/// `u64::MAX` (584 years). Public so that the engine benchmark times exactly this read.
#[inline]
pub fn nanos_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Engine settings for one worker.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The run.
    pub run_id: RunId,
    /// This worker.
    pub worker: WorkerIdentity,
    /// Connections at the start.
    pub connections: u32,
    /// `Some(rate)`: open loop at this many operations per second; `None`: closed loop.
    pub target_qps: Option<f64>,
    /// Warmup length (results excluded from the summary).
    pub warmup: Duration,
    /// Measurement window length.
    pub measurement: Duration,
    /// Cooldown length after the measurement window.
    pub cooldown: Duration,
    /// How long in-flight operations may take to finish after the load stops before they are
    /// abandoned.
    pub stop_deadline: Duration,
    /// Open loop: a start later than this after the intended start counts as late.
    pub late_start_threshold: Duration,
    /// Fraction of operations sent to the sampled-executions channel.
    pub sample_rate: f64,
    /// Seed of the per-connection random generators.
    pub seed: u64,
    /// Snapshot interval (one second by default).
    pub snapshot_interval: Duration,
    /// How long opening the initial connections may take.
    pub connect_timeout: Duration,
    /// Send every operation to the operation log ([`EngineHandle::take_operation_log`]), as
    /// `pgbench -l` does. Unlike samples, the log never drops an entry: when its reader falls
    /// behind, the load waits.
    pub log_operations: bool,
    /// Client threads for the connections (`None`: the connection tasks run on the caller's
    /// runtime, whatever it is). See [`ClientThreads`].
    pub client_threads: Option<ClientThreads>,
}

impl EngineConfig {
    /// Defaults for a closed-loop run of `connections` connections.
    pub fn new(run_id: RunId, connections: u32, measurement: Duration) -> Self {
        EngineConfig {
            run_id,
            worker: WorkerIdentity::solo(),
            connections,
            target_qps: None,
            warmup: Duration::ZERO,
            measurement,
            cooldown: Duration::ZERO,
            stop_deadline: Duration::from_secs(5),
            late_start_threshold: Duration::from_millis(5),
            sample_rate: 0.0,
            seed: 0,
            snapshot_interval: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(60),
            log_operations: false,
            client_threads: None,
        }
    }
}

/// What the engine measured. Turned into a [`crate::metrics::RunSummary`] by
/// [`crate::summary::summarize`].
#[derive(Debug)]
pub struct EngineReport {
    /// Measurement-window recorders per kind.
    pub measured: BTreeMap<QueryKind, KindRecorder>,
    /// Measurement-window recorders of named custom statements, as `CUSTOM_SQL:name`.
    pub measured_by_label: BTreeMap<String, KindRecorder>,
    /// Wall-clock start of the load.
    pub started_at: DateTime<Utc>,
    /// Wall-clock start of the measurement window.
    pub measurement_started_at: DateTime<Utc>,
    /// Wall-clock end of the measurement window.
    pub measurement_ended_at: DateTime<Utc>,
    /// Warmup actually run.
    pub warmup: Duration,
    /// Measurement window actually measured.
    pub window: Duration,
    /// Successful operations during warmup.
    pub warmup_ops: u64,
    /// Successful operations after the measurement window.
    pub cooldown_ops: u64,
    /// Every completed operation, successful or not, in every phase.
    pub completed_ops: u64,
    /// Operations abandoned at the stop deadline.
    pub abandoned_in_flight: u64,
    /// Late starts in the measurement window (open loop).
    pub late_starts: u64,
    /// Largest start lag seen (open loop).
    pub max_start_lag: Duration,
    /// Open loop: operations due in the measurement window that had not started when it
    /// ended (the client could not keep up with the target rate).
    pub unissued_ops: u64,
    /// Sampled executions dropped because the channel was full.
    pub samples_dropped: u64,
    /// First error message per error kind.
    pub error_examples: BTreeMap<ErrorKind, String>,
    /// Why the load stopped early, if it did.
    pub stop_reason: Option<StopReason>,
    /// Connections at the end.
    pub connections: u32,
    /// Target QPS at the end (open loop).
    pub target_qps: Option<f64>,
    /// Threads that ran the connections: the client threads, or else the runtime's workers.
    pub client_threads: u32,
}

/// Why a load stopped before its planned end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Somebody asked: Ctrl-C, SIGTERM, an API call, a control event. The run is cancelled.
    Requested(String),
    /// A step search found its answer and ended the load. The run completed.
    SearchFinished(String),
    /// Something broke that makes the measurements untrustworthy (a connection task
    /// panicked, a guardrail tripped). The run failed.
    Failed(String),
}

impl StopReason {
    /// The human-readable reason.
    pub fn message(&self) -> &str {
        match self {
            StopReason::Requested(m) | StopReason::SearchFinished(m) | StopReason::Failed(m) => m,
        }
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl From<&str> for StopReason {
    fn from(s: &str) -> Self {
        StopReason::Requested(s.to_string())
    }
}

impl From<String> for StopReason {
    fn from(s: String) -> Self {
        StopReason::Requested(s)
    }
}

/// Records why the load stops: the first reason wins, except that a failure replaces a
/// request (a run that broke while stopping still broke).
pub(super) fn record_stop_reason(slot: &Mutex<Option<StopReason>>, reason: StopReason) {
    let mut r = slot.lock();
    let replace = match (&*r, &reason) {
        (None, _) => true,
        (Some(StopReason::Failed(_)), _) => false,
        (Some(_), StopReason::Failed(_)) => true,
        _ => false,
    };
    if replace {
        *r = Some(reason);
    }
}

pub(super) enum Command {
    SetConnections(u32),
    SetTargetQps(f64),
}

/// A cheap, cloneable handle to steer a running engine (stop it from a signal handler, change
/// the connection count from an orchestrator).
#[derive(Clone)]
pub struct EngineControl {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    reason: Arc<Mutex<Option<StopReason>>>,
}

impl std::fmt::Debug for EngineControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineControl").field("run_id", &self.shared.run_id).finish()
    }
}

impl EngineControl {
    /// Stops the load now; the measurement window ends here if it was still open. In-flight
    /// operations get the stop deadline to finish. A plain string is a [`StopReason::Requested`].
    pub fn stop(&self, reason: impl Into<StopReason>) {
        record_stop_reason(&self.reason, reason.into());
        self.shared.stop_now();
    }

    /// Stops the load and does not wait for operations in flight: statements still running are
    /// cancelled on the server at once, then abandoned (a second Ctrl-C). The reason given to an
    /// earlier [`EngineControl::stop`] is kept.
    pub fn force_stop(&self, reason: impl Into<StopReason>) {
        record_stop_reason(&self.reason, reason.into());
        self.shared.forced.store(true, Ordering::Release);
        self.shared.stop_now();
        self.shared.forced_notify.notify_waiters();
    }

    /// Whether the load has been told to stop (or has reached its end).
    pub fn is_stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::Acquire)
    }

    /// Changes the number of connections while running.
    pub fn set_connections(&self, connections: u32) {
        let _ = self.commands.send(Command::SetConnections(connections));
    }

    /// Changes the open-loop target rate while running (ignored in closed loop).
    pub fn set_target_qps(&self, qps: f64) {
        let _ = self.commands.send(Command::SetTargetQps(qps));
    }

    /// Connections currently open.
    pub fn active_connections(&self) -> u32 {
        self.shared.active_connections.load(Ordering::Relaxed)
    }

    /// Seconds since the load started.
    pub fn elapsed(&self) -> Duration {
        self.shared.start.elapsed()
    }
}

/// A running engine.
#[derive(Debug)]
pub struct EngineHandle {
    control: EngineControl,
    snapshots: Option<mpsc::Receiver<MetricSnapshot>>,
    samples: Option<mpsc::Receiver<QueryExecution>>,
    operations: Option<mpsc::Receiver<QueryExecution>>,
    join: JoinHandle<Result<EngineReport>>,
}

impl EngineHandle {
    /// The control handle.
    pub fn control(&self) -> EngineControl {
        self.control.clone()
    }

    /// The interval snapshots (take once). Snapshots are dropped if nobody reads them.
    pub fn take_snapshots(&mut self) -> Option<mpsc::Receiver<MetricSnapshot>> {
        self.snapshots.take()
    }

    /// The sampled executions (take once). When the channel is full, samples are dropped and
    /// counted; the load never waits for persistence.
    pub fn take_samples(&mut self) -> Option<mpsc::Receiver<QueryExecution>> {
        self.samples.take()
    }

    /// Every operation, when [`EngineConfig::log_operations`] is set (take once, and read it:
    /// the load waits for the reader).
    pub fn take_operation_log(&mut self) -> Option<mpsc::Receiver<QueryExecution>> {
        self.operations.take()
    }

    /// Waits for the load to finish and returns what was measured.
    pub async fn wait(self) -> Result<EngineReport> {
        drop(self.snapshots);
        drop(self.samples);
        drop(self.operations);
        self.join.await.map_err(|e| Error::backend(ErrorKind::Other, format!("engine task failed: {e}")))?
    }
}

/// The workload engine.
#[derive(Debug)]
pub struct Engine;

impl Engine {
    /// Opens the initial connections, prepares the statements on each, starts the clock and
    /// the load, and returns a handle: [`Engine::connect`] then [`ConnectedEngine::start`].
    pub async fn start(
        pool: Arc<dyn TargetPool>,
        plan: Arc<WorkloadPlan>,
        config: EngineConfig,
    ) -> Result<EngineHandle> {
        Ok(Engine::connect(pool, plan, config).await?.start())
    }

    /// Opens the initial connections and prepares the statements on each, without starting
    /// the clock. Fails if any initial connection cannot be opened or prepared (a setup error,
    /// reported before anything is measured or written).
    pub async fn connect(
        pool: Arc<dyn TargetPool>,
        plan: Arc<WorkloadPlan>,
        config: EngineConfig,
    ) -> Result<ConnectedEngine> {
        if config.connections == 0 {
            return Err(Error::invalid("connections is 0: use at least 1 connection"));
        }
        if let Some(q) = config.target_qps {
            if !(q.is_finite() && q > 0.0) {
                return Err(Error::invalid(format!("target QPS {q} is not a positive number")));
            }
        }
        // Open and prepare all initial sessions before the clock starts, so that connection
        // set-up is never measured as load.
        // Each session is opened on the thread of the connection task that will use it (its
        // socket belongs to that thread's runtime), and kept in connection order.
        let mut sessions: Vec<Option<Box<dyn TargetSession>>> = Vec::new();
        sessions.resize_with(config.connections as usize, || None);
        let opening = async {
            let mut set = tokio::task::JoinSet::new();
            for index in 0..config.connections {
                let pool = pool.clone();
                let plan = plan.clone();
                let open = async move { (index, open_session(pool.as_ref(), &plan).await) };
                set.spawn_on(open, &threads::runtime_of(config.client_threads.as_ref(), index));
            }
            while let Some(r) = set.join_next().await {
                let (index, session) =
                    r.map_err(|e| Error::backend(ErrorKind::Other, format!("connect task failed: {e}")))?;
                sessions[index as usize] = Some(session?);
            }
            Ok::<_, Error>(())
        };
        tokio::time::timeout(config.connect_timeout, opening).await.map_err(|_| {
            Error::backend(
                ErrorKind::Timeout,
                format!(
                    "opening {} connections took longer than {}: check that the target is reachable",
                    config.connections,
                    humantime::format_duration(config.connect_timeout)
                ),
            )
        })??;
        let sessions = sessions.into_iter().flatten().collect();
        Ok(ConnectedEngine { pool, plan, config, sessions })
    }
}

/// An engine whose sessions are open and prepared; the clock has not started.
pub struct ConnectedEngine {
    pool: Arc<dyn TargetPool>,
    plan: Arc<WorkloadPlan>,
    config: EngineConfig,
    sessions: Vec<Box<dyn TargetSession>>,
}

impl std::fmt::Debug for ConnectedEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectedEngine").field("sessions", &self.sessions.len()).finish()
    }
}

impl ConnectedEngine {
    /// Sessions open and ready.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Starts the clock and the load now.
    pub fn start(self) -> EngineHandle {
        self.start_behind(Duration::ZERO)
    }

    /// Starts the load at a run's shared start instant, so that the workers of a run share its
    /// phase boundaries: waits until `load_start_at` if it is ahead; if it has passed (a worker
    /// that joins late), starts now in the phase the run is in, with every boundary as far
    /// ahead as it is for the others (a worker joining after the warmup starts measuring at
    /// once; one joining after the measurement ends at once).
    pub async fn start_at(self, load_start_at: DateTime<Utc>) -> EngineHandle {
        let ahead = load_start_at - Utc::now();
        match ahead.to_std() {
            Ok(wait) => {
                tokio::time::sleep(wait).await;
                self.start()
            }
            Err(_) => self.start_behind((-ahead).to_std().unwrap_or(Duration::ZERO)),
        }
    }

    /// Starts now, as if the load had started `behind` ago.
    fn start_behind(self, behind: Duration) -> EngineHandle {
        let ConnectedEngine { pool, plan, config, sessions } = self;
        let start = Instant::now();
        // Saturating: validated templates keep these far below u64 nanoseconds (584 years).
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let behind = ns(behind);
        let warmup_end = ns(config.warmup);
        let measure_end = warmup_end.saturating_add(ns(config.measurement));
        let run_end = measure_end.saturating_add(ns(config.cooldown));
        let (warmup_end, measure_end, run_end) = (
            warmup_end.saturating_sub(behind),
            measure_end.saturating_sub(behind),
            run_end.saturating_sub(behind),
        );
        let (sample_tx, sample_rx) = mpsc::channel(8192);
        let (snap_tx, snap_rx) = mpsc::channel(4096);
        let (op_tx, op_rx) = if config.log_operations {
            let (tx, rx) = mpsc::channel(16_384);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let shared = Arc::new(Shared {
            start,
            pacer: config.target_qps.and_then(|_| pacer::Pacer::start(start)),
            warmup_end_ns: AtomicU64::new(warmup_end),
            measure_end_ns: AtomicU64::new(measure_end),
            run_end_ns: AtomicU64::new(run_end),
            stopping: AtomicBool::new(false),
            stop_notify: Notify::new(),
            forced: AtomicBool::new(false),
            forced_notify: Notify::new(),
            schedule: config.target_qps.map(|q| Mutex::new(Schedule { next_ns: 0.0, interval_ns: 1e9 / q })),
            target_qps_bits: AtomicU64::new(config.target_qps.unwrap_or(0.0).to_bits()),
            late_threshold_ns: ns(config.late_start_threshold),
            sample_rate: config.sample_rate,
            samples_dropped: AtomicU64::new(0),
            active_connections: AtomicU32::new(0),
            run_id: config.run_id,
            worker_id: config.worker.worker_id.clone(),
            start_wall: Utc::now(),
        });
        let (kinds, open_loop) = (plan.statements().len(), config.target_qps.is_some());
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let control =
            EngineControl { shared: shared.clone(), commands: cmd_tx, reason: Arc::new(Mutex::new(None)) };
        let supervisor = Supervisor {
            shared: shared.clone(),
            pool,
            plan,
            open_loop,
            seed: config.seed,
            worker_index: config.worker.index,
            tasks: Vec::new(),
            retired_measured: recorders(kinds, open_loop),
            retired_interval: recorders(kinds, open_loop),
            retired_late_starts: 0,
            spares: Spares::new(kinds, open_loop),
            finished_totals: FinishedTotals::default(),
            next_task_index: 0,
            target_connections: config.connections,
            snapshots: snap_tx,
            samples: sample_tx,
            operations: op_tx,
            snapshot_seq: 0,
            last_snapshot_at: start,
            config,
            reason: control.reason.clone(),
            announced_phase: None,
            unissued_at_window_end: None,
        };
        let join = tokio::spawn(supervisor.run(sessions, cmd_rx));
        EngineHandle { control, snapshots: Some(snap_rx), samples: Some(sample_rx), operations: op_rx, join }
    }
}

pub(super) async fn open_session(
    pool: &dyn TargetPool,
    plan: &WorkloadPlan,
) -> Result<Box<dyn TargetSession>> {
    let mut session = pool.connect().await?;
    session.prepare(plan.statements()).await?;
    Ok(session)
}
