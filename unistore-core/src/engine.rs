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
//! starts later than a threshold are counted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::error::{Error, ErrorKind, Result};
use crate::metrics::{KindRecorder, KindStats, MetricSnapshot, QueryExecution};
use crate::model::{QueryKind, RunId, RunPhase, WorkerIdentity};
use crate::target::{TargetPool, TargetSession};
use crate::workload::WorkloadPlan;

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
        }
    }
}

/// What the engine measured. Turned into a [`crate::metrics::RunSummary`] by
/// [`crate::summary::summarize`].
#[derive(Debug)]
pub struct EngineReport {
    /// Measurement-window recorders per kind.
    pub measured: BTreeMap<QueryKind, KindRecorder>,
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
    /// Sampled executions dropped because the channel was full.
    pub samples_dropped: u64,
    /// First error message per error kind.
    pub error_examples: BTreeMap<ErrorKind, String>,
    /// Why the load stopped early, if it did.
    pub stop_reason: Option<String>,
    /// Connections at the end.
    pub connections: u32,
    /// Target QPS at the end (open loop).
    pub target_qps: Option<f64>,
}

const NEVER: u64 = u64::MAX;
/// How long cancelling in-flight statements, and their return after the cancel, may take.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(2);

struct Schedule {
    next_ns: f64,
    interval_ns: f64,
}

/// State shared by the supervisor and the connection tasks. Hot-path reads are relaxed atomic
/// loads.
struct Shared {
    start: Instant,
    /// The hot path's clock: the CPU's invariant time-stamp counter, calibrated against the
    /// OS clock (about 10 ns a read instead of ~30 ns for `clock_gettime` here). Offsets from
    /// `clock_start` and from `start` describe the same timeline.
    clock: quanta::Clock,
    clock_start: u64,
    warmup_end_ns: AtomicU64,
    measure_end_ns: AtomicU64,
    run_end_ns: AtomicU64,
    stopping: AtomicBool,
    stop_notify: Notify,
    schedule: Option<Mutex<Schedule>>,
    target_qps_bits: AtomicU64,
    late_threshold_ns: u64,
    sample_rate: f64,
    samples_dropped: AtomicU64,
    active_connections: AtomicU32,
    run_id: RunId,
    worker_id: String,
    start_wall: DateTime<Utc>,
}

impl Shared {
    /// Nanoseconds since the load started, on the hot path's clock.
    #[inline]
    fn now_ns(&self) -> u64 {
        self.clock.delta_as_nanos(self.clock_start, self.clock.raw())
    }

    #[inline]
    fn phase_at(&self, offset_ns: u64) -> RunPhase {
        if offset_ns < self.warmup_end_ns.load(Ordering::Relaxed) {
            RunPhase::Warmup
        } else if offset_ns < self.measure_end_ns.load(Ordering::Relaxed) {
            RunPhase::Measurement
        } else {
            RunPhase::Cooldown
        }
    }

    #[inline]
    fn should_stop(&self, offset_ns: u64) -> bool {
        offset_ns >= self.run_end_ns.load(Ordering::Relaxed) || self.stopping.load(Ordering::Relaxed)
    }

    /// Ends the load now: the measurement window closes here if it was still open.
    fn stop_now(&self) {
        let t = self.now_ns();
        self.warmup_end_ns.fetch_min(t, Ordering::Relaxed);
        self.measure_end_ns.fetch_min(t, Ordering::Relaxed);
        self.run_end_ns.fetch_min(t, Ordering::Relaxed);
        self.stopping.store(true, Ordering::Release);
        self.stop_notify.notify_waiters();
    }

    /// Open loop: the next slot of the timetable, as an offset from the load start.
    fn claim_slot(&self) -> Option<u64> {
        let schedule = self.schedule.as_ref()?;
        let mut s = schedule.lock();
        let at = s.next_ns;
        s.next_ns += s.interval_ns;
        Some(at as u64)
    }
}

/// Per-task recorders, locked by the task for each operation (uncontended) and by the
/// collector once per interval (to swap the interval recorders out).
struct TaskRecorder {
    interval: Vec<KindRecorder>,
    measured: Vec<KindRecorder>,
    interval_late_starts: u64,
    measured_late_starts: u64,
    warmup_ops: u64,
    cooldown_ops: u64,
    completed_ops: u64,
    max_lag_ns: u64,
    error_examples: BTreeMap<ErrorKind, String>,
}

impl TaskRecorder {
    fn new(kinds: usize, open_loop: bool) -> Self {
        TaskRecorder {
            interval: (0..kinds).map(|_| KindRecorder::new(open_loop)).collect(),
            measured: (0..kinds).map(|_| KindRecorder::new(open_loop)).collect(),
            interval_late_starts: 0,
            measured_late_starts: 0,
            warmup_ops: 0,
            cooldown_ops: 0,
            completed_ops: 0,
            max_lag_ns: 0,
            error_examples: BTreeMap::new(),
        }
    }
}

struct Outcome<'a> {
    statement: usize,
    phase: RunPhase,
    response_ns: u64,
    service_ns: u64,
    lag_ns: Option<u64>,
    result: &'a Result<u64>,
}

impl TaskRecorder {
    #[inline]
    fn record(&mut self, o: &Outcome<'_>, late_threshold_ns: u64) {
        self.completed_ops += 1;
        let late = o.lag_ns.is_some_and(|l| l > late_threshold_ns);
        if let Some(lag) = o.lag_ns {
            self.max_lag_ns = self.max_lag_ns.max(lag);
        }
        if late {
            self.interval_late_starts += 1;
        }
        record_into(&mut self.interval[o.statement], o);
        match o.phase {
            RunPhase::Measurement => {
                record_into(&mut self.measured[o.statement], o);
                if late {
                    self.measured_late_starts += 1;
                }
            }
            RunPhase::Warmup if o.result.is_ok() => self.warmup_ops += 1,
            RunPhase::Warmup => {}
            _ if o.result.is_ok() => self.cooldown_ops += 1,
            _ => {}
        }
        if let Err(e) = o.result {
            self.error_examples.entry(e.kind()).or_insert_with(|| e.to_string());
        }
    }
}

#[inline]
fn record_into(r: &mut KindRecorder, o: &Outcome<'_>) {
    match o.result {
        Ok(rows) => {
            r.response.record_ns(o.response_ns);
            if let Some(s) = &mut r.service {
                s.record_ns(o.service_ns);
            }
            r.rows += rows;
        }
        Err(e) => r.errors[e.kind().index()] += 1,
    }
}

struct TaskEntry {
    recorder: Arc<Mutex<TaskRecorder>>,
    spare: Vec<KindRecorder>,
    retire: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

enum Command {
    SetConnections(u32),
    SetTargetQps(f64),
}

/// A cheap, cloneable handle to steer a running engine (stop it from a signal handler, change
/// the connection count from an orchestrator).
#[derive(Clone)]
pub struct EngineControl {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    reason: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for EngineControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineControl").field("run_id", &self.shared.run_id).finish()
    }
}

impl EngineControl {
    /// Stops the load now; the measurement window ends here if it was still open. In-flight
    /// operations get the stop deadline to finish.
    pub fn stop(&self, reason: impl Into<String>) {
        let mut r = self.reason.lock();
        if r.is_none() {
            *r = Some(reason.into());
        }
        drop(r);
        self.shared.stop_now();
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

    /// Waits for the load to finish and returns what was measured.
    pub async fn wait(self) -> Result<EngineReport> {
        drop(self.snapshots);
        drop(self.samples);
        self.join.await.map_err(|e| Error::backend(ErrorKind::Other, format!("engine task failed: {e}")))?
    }
}

/// The workload engine.
#[derive(Debug)]
pub struct Engine;

impl Engine {
    /// Opens the initial connections, prepares the statements on each, starts the clock and
    /// the load, and returns a handle. Fails if any initial connection cannot be opened or
    /// prepared (a setup error, reported before anything is measured).
    pub async fn start(
        pool: Arc<dyn TargetPool>,
        plan: Arc<WorkloadPlan>,
        config: EngineConfig,
    ) -> Result<EngineHandle> {
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
        let mut sessions = Vec::with_capacity(config.connections as usize);
        let opening = async {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..config.connections {
                let pool = pool.clone();
                let plan = plan.clone();
                set.spawn(async move { open_session(pool.as_ref(), &plan).await });
            }
            while let Some(r) = set.join_next().await {
                let session =
                    r.map_err(|e| Error::backend(ErrorKind::Other, format!("connect task failed: {e}")))??;
                sessions.push(session);
            }
            Ok::<_, Error>(())
        };
        tokio::time::timeout(config.connect_timeout, opening).await.map_err(|_| {
            Error::backend(
                ErrorKind::Timeout,
                format!(
                    "opening {} connections took longer than {:?}: check that the target is reachable",
                    config.connections, config.connect_timeout
                ),
            )
        })??;

        let clock = quanta::Clock::new();
        let clock_start = clock.raw();
        let start = Instant::now();
        let warmup_end = config.warmup.as_nanos() as u64;
        let measure_end = warmup_end + config.measurement.as_nanos() as u64;
        let run_end = measure_end + config.cooldown.as_nanos() as u64;
        let (sample_tx, sample_rx) = mpsc::channel(8192);
        let (snap_tx, snap_rx) = mpsc::channel(4096);
        let shared = Arc::new(Shared {
            start,
            clock,
            clock_start,
            warmup_end_ns: AtomicU64::new(warmup_end),
            measure_end_ns: AtomicU64::new(measure_end),
            run_end_ns: AtomicU64::new(run_end),
            stopping: AtomicBool::new(false),
            stop_notify: Notify::new(),
            schedule: config.target_qps.map(|q| Mutex::new(Schedule { next_ns: 0.0, interval_ns: 1e9 / q })),
            target_qps_bits: AtomicU64::new(config.target_qps.unwrap_or(0.0).to_bits()),
            late_threshold_ns: config.late_start_threshold.as_nanos() as u64,
            sample_rate: config.sample_rate,
            samples_dropped: AtomicU64::new(0),
            active_connections: AtomicU32::new(0),
            run_id: config.run_id,
            worker_id: config.worker.worker_id.clone(),
            start_wall: Utc::now(),
        });
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let control =
            EngineControl { shared: shared.clone(), commands: cmd_tx, reason: Arc::new(Mutex::new(None)) };
        let supervisor = Supervisor {
            shared: shared.clone(),
            pool,
            plan,
            open_loop: config.target_qps.is_some(),
            seed: config.seed,
            worker_index: config.worker.index,
            tasks: Vec::new(),
            retired_measured: Vec::new(),
            retired_interval: Vec::new(),
            finished_totals: FinishedTotals::default(),
            next_task_index: 0,
            target_connections: config.connections,
            snapshots: snap_tx,
            samples: sample_tx,
            snapshot_seq: 0,
            last_snapshot_at: start,
            config,
            reason: control.reason.clone(),
            announced_phase: None,
        };
        let join = tokio::spawn(supervisor.run(sessions, cmd_rx));
        Ok(EngineHandle { control, snapshots: Some(snap_rx), samples: Some(sample_rx), join })
    }
}

async fn open_session(pool: &dyn TargetPool, plan: &WorkloadPlan) -> Result<Box<dyn TargetSession>> {
    let mut session = pool.connect().await?;
    session.prepare(plan.statements()).await?;
    Ok(session)
}

#[derive(Default)]
struct FinishedTotals {
    warmup_ops: u64,
    cooldown_ops: u64,
    completed_ops: u64,
    measured_late_starts: u64,
    max_lag_ns: u64,
    error_examples: BTreeMap<ErrorKind, String>,
}

struct Supervisor {
    shared: Arc<Shared>,
    pool: Arc<dyn TargetPool>,
    plan: Arc<WorkloadPlan>,
    open_loop: bool,
    seed: u64,
    worker_index: u32,
    tasks: Vec<TaskEntry>,
    retired_measured: Vec<KindRecorder>,
    retired_interval: Vec<KindRecorder>,
    finished_totals: FinishedTotals,
    next_task_index: u32,
    target_connections: u32,
    snapshots: mpsc::Sender<MetricSnapshot>,
    // Each connection task holds a clone; the channel closes (and the sample writer finishes)
    // when the supervisor and every task are gone, whoever still holds an `EngineControl`.
    samples: mpsc::Sender<QueryExecution>,
    snapshot_seq: u64,
    last_snapshot_at: Instant,
    config: EngineConfig,
    reason: Arc<Mutex<Option<String>>>,
    announced_phase: Option<RunPhase>,
}

impl Supervisor {
    async fn run(
        mut self,
        sessions: Vec<Box<dyn TargetSession>>,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) -> Result<EngineReport> {
        let kinds = self.plan.statements().len();
        self.retired_measured = (0..kinds).map(|_| KindRecorder::new(self.open_loop)).collect();
        self.retired_interval = (0..kinds).map(|_| KindRecorder::new(self.open_loop)).collect();
        for session in sessions {
            self.spawn_task(Some(session));
        }
        self.announce_phase();
        let interval = self.config.snapshot_interval;
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::from_std(self.shared.start + interval), interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let run_end = self.shared.run_end_ns.load(Ordering::Relaxed);
            let until_end = if run_end == NEVER {
                Duration::from_secs(3600)
            } else {
                Duration::from_nanos(run_end.saturating_sub(self.shared.now_ns()))
            };
            tokio::select! {
                _ = ticker.tick() => {
                    self.reap_finished();
                    self.emit_snapshot();
                }
                Some(cmd) = commands.recv() => self.apply(cmd),
                _ = tokio::time::sleep(until_end) => {
                    if self.shared.now_ns() >= self.shared.run_end_ns.load(Ordering::Relaxed) {
                        break;
                    }
                }
                _ = tokio::time::sleep(self.until_next_boundary()) => self.announce_phase(),
                _ = self.shared.stop_notify.notified() => {}
            }
            if self.shared.stopping.load(Ordering::Acquire) {
                break;
            }
        }
        // The load is over: no task starts another operation. Wake sleepers and give in-flight
        // operations the deadline to finish.
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.stop_notify.notify_waiters();
        let deadline = Instant::now() + self.config.stop_deadline;
        for t in &mut self.tasks {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = tokio::time::timeout(left, &mut t.handle).await;
        }
        if self.tasks.iter().any(|t| !t.handle.is_finished()) {
            // Past the deadline: cancel what is still running on the server, give the cancelled
            // operations a moment to return (they are counted, as errors), then abandon the rest.
            match tokio::time::timeout(CANCEL_TIMEOUT, self.pool.cancel_in_flight()).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => {
                    tracing::info!("cancelled {n} statements still running at the stop deadline");
                    let grace = Instant::now() + CANCEL_TIMEOUT;
                    for t in &mut self.tasks {
                        let left = grace.saturating_duration_since(Instant::now());
                        let _ = tokio::time::timeout(left, &mut t.handle).await;
                    }
                }
                Ok(Err(e)) => tracing::warn!("cancelling in-flight statements failed: {e}"),
                Err(_) => tracing::warn!("cancelling in-flight statements timed out"),
            }
        }
        let mut abandoned = 0u64;
        for t in &self.tasks {
            if !t.handle.is_finished() {
                t.handle.abort();
                abandoned += 1;
            }
        }
        self.emit_snapshot();
        Ok(self.report(abandoned))
    }

    /// Tells the pool about a phase change (for session tagging), once per change.
    fn announce_phase(&mut self) {
        let phase = self.shared.phase_at(self.shared.now_ns());
        if self.announced_phase != Some(phase) {
            self.announced_phase = Some(phase);
            self.pool.set_phase(phase);
        }
    }

    /// Time until the next phase boundary that is still ahead (an hour if none).
    fn until_next_boundary(&self) -> Duration {
        let now = self.shared.now_ns();
        [&self.shared.warmup_end_ns, &self.shared.measure_end_ns]
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .filter(|b| *b > now && *b != NEVER)
            .min()
            .map_or(Duration::from_secs(3600), |b| Duration::from_nanos(b - now))
    }

    fn apply(&mut self, cmd: Command) {
        match cmd {
            Command::SetConnections(n) => {
                self.target_connections = n;
                let live: Vec<usize> = (0..self.tasks.len())
                    .filter(|i| {
                        !self.tasks[*i].retire.load(Ordering::Relaxed) && !self.tasks[*i].handle.is_finished()
                    })
                    .collect();
                if (n as usize) > live.len() {
                    for _ in live.len()..n as usize {
                        self.spawn_task(None);
                    }
                } else {
                    // Retire the newest tasks first; each finishes its operation in flight.
                    for i in live.iter().skip(n as usize) {
                        self.tasks[*i].retire.store(true, Ordering::Relaxed);
                    }
                }
            }
            Command::SetTargetQps(q) => {
                if let (Some(schedule), true) = (&self.shared.schedule, q.is_finite() && q > 0.0) {
                    let mut s = schedule.lock();
                    // Re-base the timetable at now so the new rate applies from here on,
                    // without a burst to "catch up" at the new rate.
                    let now = self.shared.now_ns() as f64;
                    s.next_ns = s.next_ns.max(now);
                    s.interval_ns = 1e9 / q;
                    self.shared.target_qps_bits.store(q.to_bits(), Ordering::Relaxed);
                }
            }
        }
    }

    fn spawn_task(&mut self, session: Option<Box<dyn TargetSession>>) {
        let index = self.next_task_index;
        self.next_task_index += 1;
        let kinds = self.plan.statements().len();
        let recorder = Arc::new(Mutex::new(TaskRecorder::new(kinds, self.open_loop)));
        let retire = Arc::new(AtomicBool::new(false));
        let rng = SmallRng::seed_from_u64(
            self.seed
                ^ (u64::from(self.worker_index) << 32)
                ^ u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let task = ConnectionTask {
            index,
            shared: self.shared.clone(),
            pool: self.pool.clone(),
            plan: self.plan.clone(),
            recorder: recorder.clone(),
            retire: retire.clone(),
            samples: self.samples.clone(),
            rng,
        };
        let handle = tokio::spawn(task.run(session));
        self.tasks.push(TaskEntry {
            recorder,
            spare: (0..kinds).map(|_| KindRecorder::new(self.open_loop)).collect(),
            retire,
            handle,
        });
    }

    /// Folds tasks that have finished (retired connections) into the supervisor's own
    /// recorders, so memory does not grow with the number of connection changes.
    fn reap_finished(&mut self) {
        let mut i = 0;
        while i < self.tasks.len() {
            if self.tasks[i].handle.is_finished() {
                let t = self.tasks.swap_remove(i);
                let rec = t.recorder.lock();
                for (a, b) in self.retired_measured.iter_mut().zip(&rec.measured) {
                    a.merge(b);
                }
                for (a, b) in self.retired_interval.iter_mut().zip(&rec.interval) {
                    a.merge(b);
                }
                let f = &mut self.finished_totals;
                f.warmup_ops += rec.warmup_ops;
                f.cooldown_ops += rec.cooldown_ops;
                f.completed_ops += rec.completed_ops;
                f.measured_late_starts += rec.measured_late_starts;
                f.max_lag_ns = f.max_lag_ns.max(rec.max_lag_ns);
                for (k, m) in &rec.error_examples {
                    f.error_examples.entry(*k).or_insert_with(|| m.clone());
                }
            } else {
                i += 1;
            }
        }
    }

    fn emit_snapshot(&mut self) {
        let now = Instant::now();
        let kinds = self.plan.statements().len();
        let mut agg: Vec<KindRecorder> = (0..kinds).map(|_| KindRecorder::new(self.open_loop)).collect();
        let mut late = 0;
        for (a, b) in agg.iter_mut().zip(&self.retired_interval) {
            a.merge(b);
        }
        for r in &mut self.retired_interval {
            r.reset();
        }
        for t in &mut self.tasks {
            {
                // Swap under the lock; merge outside it, so the task waits only for a swap.
                let mut rec = t.recorder.lock();
                std::mem::swap(&mut rec.interval, &mut t.spare);
                late += std::mem::take(&mut rec.interval_late_starts);
            }
            for (a, b) in agg.iter_mut().zip(&t.spare) {
                a.merge(b);
            }
            for r in &mut t.spare {
                r.reset();
            }
        }
        let interval_s = now.duration_since(self.last_snapshot_at).as_secs_f64();
        self.last_snapshot_at = now;
        self.snapshot_seq += 1;
        let offset = self.shared.now_ns();
        let snapshot = build_snapshot(&self.plan, &agg, interval_s).map(|(total, by_kind)| MetricSnapshot {
            run_id: self.shared.run_id,
            worker_id: self.shared.worker_id.clone(),
            seq: self.snapshot_seq,
            taken_at: Utc::now(),
            elapsed_s: offset as f64 / 1e9,
            interval_s,
            // The phase the interval mostly belonged to (its midpoint), not the phase at its
            // end: the interval that ends exactly at the end of warmup was warmup.
            phase: self.shared.phase_at(offset.saturating_sub((interval_s * 5e8) as u64)),
            active_connections: self.shared.active_connections.load(Ordering::Relaxed),
            target_connections: self.target_connections,
            target_qps: self
                .shared
                .schedule
                .as_ref()
                .map(|_| f64::from_bits(self.shared.target_qps_bits.load(Ordering::Relaxed))),
            late_starts: late,
            total,
            by_kind,
        });
        match snapshot {
            Ok(s) => {
                let _ = self.snapshots.try_send(s);
            }
            Err(e) => tracing::warn!("cannot build interval snapshot: {e}"),
        }
    }

    fn report(mut self, abandoned: u64) -> EngineReport {
        self.reap_finished();
        let mut measured: BTreeMap<QueryKind, KindRecorder> = BTreeMap::new();
        for (i, r) in self.retired_measured.iter().enumerate() {
            measured.entry(self.plan.kind(i)).or_insert_with(|| KindRecorder::new(self.open_loop)).merge(r);
        }
        let mut totals = std::mem::take(&mut self.finished_totals);
        for t in &self.tasks {
            // Abandoned tasks were aborted; whatever they recorded before is still valid.
            let rec = t.recorder.lock();
            for (i, r) in rec.measured.iter().enumerate() {
                measured
                    .entry(self.plan.kind(i))
                    .or_insert_with(|| KindRecorder::new(self.open_loop))
                    .merge(r);
            }
            totals.warmup_ops += rec.warmup_ops;
            totals.cooldown_ops += rec.cooldown_ops;
            totals.completed_ops += rec.completed_ops;
            totals.measured_late_starts += rec.measured_late_starts;
            totals.max_lag_ns = totals.max_lag_ns.max(rec.max_lag_ns);
            for (k, m) in &rec.error_examples {
                totals.error_examples.entry(*k).or_insert_with(|| m.clone());
            }
        }
        let s = &self.shared;
        let warmup_end = s.warmup_end_ns.load(Ordering::Relaxed);
        let measure_end = s.measure_end_ns.load(Ordering::Relaxed).max(warmup_end);
        let at = |ns: u64| s.start_wall + chrono::Duration::nanoseconds(ns.min(i64::MAX as u64) as i64);
        EngineReport {
            measured,
            started_at: s.start_wall,
            measurement_started_at: at(warmup_end),
            measurement_ended_at: at(measure_end),
            warmup: Duration::from_nanos(warmup_end),
            window: Duration::from_nanos(measure_end - warmup_end),
            warmup_ops: totals.warmup_ops,
            cooldown_ops: totals.cooldown_ops,
            completed_ops: totals.completed_ops,
            abandoned_in_flight: abandoned,
            late_starts: totals.measured_late_starts,
            max_start_lag: Duration::from_nanos(totals.max_lag_ns),
            samples_dropped: s.samples_dropped.load(Ordering::Relaxed),
            error_examples: totals.error_examples,
            stop_reason: self.reason.lock().clone(),
            connections: self.target_connections,
            target_qps: s
                .schedule
                .as_ref()
                .map(|_| f64::from_bits(s.target_qps_bits.load(Ordering::Relaxed))),
        }
    }
}

fn build_snapshot(
    plan: &WorkloadPlan,
    agg: &[KindRecorder],
    interval_s: f64,
) -> Result<(KindStats, BTreeMap<QueryKind, KindStats>)> {
    let mut per_kind: BTreeMap<QueryKind, KindRecorder> = BTreeMap::new();
    for (i, r) in agg.iter().enumerate() {
        per_kind.entry(plan.kind(i)).or_default().merge(r);
    }
    let mut total = KindRecorder::default();
    for r in per_kind.values() {
        total.merge(r);
    }
    let by_kind = per_kind
        .iter()
        .map(|(k, r)| Ok((*k, r.stats(interval_s, true)?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    Ok((total.stats(interval_s, true)?, by_kind))
}

struct ConnectionTask {
    index: u32,
    shared: Arc<Shared>,
    pool: Arc<dyn TargetPool>,
    plan: Arc<WorkloadPlan>,
    recorder: Arc<Mutex<TaskRecorder>>,
    retire: Arc<AtomicBool>,
    samples: mpsc::Sender<QueryExecution>,
    rng: SmallRng,
}

impl ConnectionTask {
    async fn run(mut self, session: Option<Box<dyn TargetSession>>) {
        let mut session = session;
        let mut params = Vec::with_capacity(8);
        let mut backoff = Duration::from_millis(100);
        let mut counted = false;
        // Times on the hot path are nanosecond offsets from the load start: one clock read and
        // one conversion at the start and at the end of each operation, nothing else. The end
        // of the previous operation doubles as "now" for the stop check.
        let mut now = self.shared.now_ns();
        loop {
            if self.shared.should_stop(now) || self.retire.load(Ordering::Relaxed) {
                break;
            }
            let Some(s) = session.as_mut() else {
                // Lost (or never had) a connection: reconnect with capped exponential backoff.
                // Operations are not issued meanwhile, which shows as lower throughput.
                match open_session(self.pool.as_ref(), &self.plan).await {
                    Ok(s) => {
                        session = Some(s);
                        backoff = Duration::from_millis(100);
                    }
                    Err(e) => {
                        tracing::warn!(connection = self.index, "reconnect failed: {e}");
                        self.recorder.lock().error_examples.entry(e.kind()).or_insert_with(|| e.to_string());
                        self.sleep_or_stop(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
                now = self.shared.now_ns();
                continue;
            };
            if !counted {
                self.shared.active_connections.fetch_add(1, Ordering::Relaxed);
                counted = true;
            }
            let intended = match self.shared.claim_slot() {
                Some(at) => {
                    if self.shared.should_stop(at) {
                        break;
                    }
                    if at > self.shared.now_ns()
                        && !self.sleep_until_or_stop(self.shared.start + Duration::from_nanos(at)).await
                    {
                        break;
                    }
                    Some(at)
                }
                None => {
                    // A target that answers without ever waiting (in-process, or data already
                    // buffered) would otherwise never yield, starving the snapshot timer on a
                    // single-threaded runtime. Free while the task's budget lasts.
                    tokio::task::coop::consume_budget().await;
                    None
                }
            };
            let statement = self.plan.pick(&mut self.rng);
            self.plan.generate(statement, &mut self.rng, &mut params);
            let started = self.shared.now_ns();
            let result = s.execute(statement, &params).await;
            let ended = self.shared.now_ns();
            now = ended;
            let lost = matches!(&result, Err(e) if e.kind() == ErrorKind::Connect);
            let from = intended.unwrap_or(started);
            let outcome = Outcome {
                statement,
                phase: self.shared.phase_at(ended),
                response_ns: ended.saturating_sub(from),
                service_ns: ended.saturating_sub(started),
                lag_ns: intended.map(|i| started.saturating_sub(i)),
                result: &result,
            };
            self.recorder.lock().record(&outcome, self.shared.late_threshold_ns);
            if self.shared.sample_rate > 0.0 && self.rng.gen::<f64>() < self.shared.sample_rate {
                self.sample(&outcome, from);
            }
            if lost {
                session = None;
                self.shared.active_connections.fetch_sub(1, Ordering::Relaxed);
                counted = false;
            }
        }
        if counted {
            self.shared.active_connections.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn sample(&self, o: &Outcome<'_>, from_offset_ns: u64) {
        let started_at = self.shared.start_wall
            + chrono::Duration::nanoseconds(from_offset_ns.min(i64::MAX as u64) as i64);
        let row = QueryExecution {
            run_id: self.shared.run_id,
            worker_id: self.shared.worker_id.clone(),
            connection: self.index,
            kind: self.plan.kind(o.statement),
            phase: o.phase,
            started_at,
            response_us: o.response_ns / 1_000,
            service_us: o.service_ns / 1_000,
            rows: *o.result.as_ref().unwrap_or(&0),
            ok: o.result.is_ok(),
            error_kind: o.result.as_ref().err().map(Error::kind),
        };
        if self.samples.try_send(row).is_err() {
            self.shared.samples_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sleeps until `at` unless the load stops first; returns false when stopping.
    async fn sleep_until_or_stop(&self, at: Instant) -> bool {
        let notified = self.shared.stop_notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.shared.stopping.load(Ordering::Acquire) {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => !self.shared.stopping.load(Ordering::Acquire),
            _ = notified => false,
        }
    }

    async fn sleep_or_stop(&self, d: Duration) {
        self.sleep_until_or_stop(Instant::now() + d).await;
    }
}
