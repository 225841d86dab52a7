//! The supervisor: spawns and retires connection tasks, takes interval snapshots, applies
//! commands, and ends the load (deadline, cancel, abandon).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::{ErrorKind, Result};
use crate::metrics::{KindRecorder, KindStats, MetricSnapshot, QueryExecution};
use crate::model::{QueryKind, RunPhase};
use crate::target::{TargetPool, TargetSession};
use crate::workload::WorkloadPlan;

use super::recorder::{merge_all, recorders, reset_all, Spares, TaskRecorder};
use super::task::ConnectionTask;
use super::timeline::{Shared, CANCEL_TIMEOUT, NEVER};
use super::{record_stop_reason, Command, EngineConfig, EngineReport, StopReason};
use std::future::Future as _;

pub(super) struct TaskEntry {
    pub(super) index: u32,
    /// The handle's result has been taken (a finished handle must not be polled again), or
    /// there is none to take: the engine aborted the task itself, so its cancellation is no
    /// failure.
    pub(super) joined: bool,
    pub(super) recorder: Arc<Mutex<TaskRecorder>>,
    /// The measurement-window operations of the intervals swapped out of the task so far.
    pub(super) measured: Vec<KindRecorder>,
    pub(super) retire: Arc<AtomicBool>,
    pub(super) handle: JoinHandle<()>,
}

#[derive(Default)]
pub(super) struct FinishedTotals {
    pub(super) warmup_ops: u64,
    pub(super) cooldown_ops: u64,
    pub(super) completed_ops: u64,
    pub(super) measured_late_starts: u64,
    pub(super) max_lag_ns: u64,
    pub(super) error_examples: BTreeMap<ErrorKind, String>,
}

pub(super) struct Supervisor {
    pub(super) shared: Arc<Shared>,
    pub(super) pool: Arc<dyn TargetPool>,
    pub(super) plan: Arc<WorkloadPlan>,
    pub(super) open_loop: bool,
    pub(super) seed: u64,
    pub(super) worker_index: u32,
    pub(super) tasks: Vec<TaskEntry>,
    pub(super) retired_measured: Vec<KindRecorder>,
    pub(super) retired_interval: Vec<KindRecorder>,
    /// Late starts of retired tasks' last interval, for the next snapshot.
    pub(super) retired_late_starts: u64,
    pub(super) spares: Spares,
    pub(super) finished_totals: FinishedTotals,
    pub(super) next_task_index: u32,
    pub(super) target_connections: u32,
    pub(super) snapshots: mpsc::Sender<MetricSnapshot>,
    // Each connection task holds a clone; the channel closes (and the sample writer finishes)
    // when the supervisor and every task are gone, whoever still holds an `EngineControl`.
    pub(super) samples: mpsc::Sender<QueryExecution>,
    pub(super) operations: Option<mpsc::Sender<QueryExecution>>,
    pub(super) snapshot_seq: u64,
    pub(super) last_snapshot_at: Instant,
    pub(super) config: EngineConfig,
    pub(super) reason: Arc<Mutex<Option<StopReason>>>,
    pub(super) announced_phase: Option<RunPhase>,
    /// Open loop: the backlog when the measurement window closed, taken once.
    pub(super) unissued_at_window_end: Option<u64>,
}

impl FinishedTotals {
    /// Adds what one task counted.
    fn add(&mut self, rec: &TaskRecorder) {
        self.warmup_ops += rec.warmup_ops;
        self.cooldown_ops += rec.cooldown_ops;
        self.completed_ops += rec.completed_ops;
        self.measured_late_starts += rec.measured_late_starts;
        self.max_lag_ns = self.max_lag_ns.max(rec.max_lag_ns);
        for (k, m) in &rec.error_examples {
            self.error_examples.entry(*k).or_insert_with(|| m.clone());
        }
    }
}

impl Supervisor {
    pub(super) async fn run(
        mut self,
        sessions: Vec<Box<dyn TargetSession>>,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) -> Result<EngineReport> {
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
        self.note_window_end();
        // The load is over: no task starts another operation. Wake sleepers and give in-flight
        // operations the deadline to finish (none when the stop is forced).
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.stop_notify.notify_waiters();
        self.wait_for_tasks(Instant::now() + self.config.stop_deadline).await;
        if self.tasks.iter().any(|t| !t.handle.is_finished()) {
            // Past the deadline: cancel what is still running on the server, give the cancelled
            // operations a moment to return (they are counted, as errors), then abandon the rest.
            match tokio::time::timeout(CANCEL_TIMEOUT, self.pool.cancel_in_flight()).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => {
                    tracing::info!("cancelled {n} statements still running at the stop deadline");
                    self.wait_for_tasks(Instant::now() + CANCEL_TIMEOUT).await;
                }
                Ok(Err(e)) => tracing::warn!("cancelling in-flight statements failed: {e}"),
                Err(_) => tracing::warn!("cancelling in-flight statements timed out"),
            }
        }
        let mut abandoned = 0u64;
        for t in &mut self.tasks {
            if !t.handle.is_finished() {
                t.handle.abort();
                // Its result is "cancelled", by us: reaping it must not fail the run.
                t.joined = true;
                abandoned += 1;
            }
        }
        // Nothing waits for a slot any more; an `EngineControl` may keep `Shared` alive for
        // long, so the pacer's thread ends here rather than when `Shared` is dropped.
        if let Some(pacer) = &self.shared.pacer {
            pacer.shutdown();
        }
        self.emit_snapshot();
        Ok(self.report(abandoned))
    }

    /// Waits until every task has finished or `deadline` has passed; a forced stop ends the
    /// wait at once. A task that panicked fails the run.
    async fn wait_for_tasks(&mut self, deadline: Instant) {
        for i in 0..self.tasks.len() {
            if self.shared.forced.load(Ordering::Acquire) {
                return;
            }
            if self.tasks[i].joined {
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let forced = self.shared.forced_notify.notified();
            let outcome = tokio::select! {
                r = tokio::time::timeout(left, &mut self.tasks[i].handle) => r.ok(),
                _ = forced => None,
            };
            if let Some(result) = outcome {
                self.tasks[i].joined = true;
                if let Err(e) = result {
                    self.task_failed(i, e);
                }
            }
        }
    }

    /// A connection task ended with a panic (or was cancelled by the runtime): what it
    /// measured can no longer be trusted to be complete, so the run fails with the message.
    fn task_failed(&self, i: usize, e: tokio::task::JoinError) {
        let index = self.tasks[i].index;
        let message = if e.is_panic() {
            let payload = e.into_panic();
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            format!("connection task {index} panicked: {text}")
        } else {
            format!("connection task {index} was cancelled by the runtime")
        };
        tracing::error!("{message}");
        record_stop_reason(&self.reason, StopReason::Failed(message));
        self.shared.stop_now();
    }

    /// Tells the pool about a phase change (for session tagging), once per change.
    pub(super) fn announce_phase(&mut self) {
        self.note_window_end();
        let phase = self.shared.phase_at(self.shared.now_ns());
        if self.announced_phase != Some(phase) {
            self.announced_phase = Some(phase);
            self.pool.set_phase(phase);
        }
    }

    /// Once the measurement window has closed, records the open-loop backlog at its end: the
    /// operations that were due inside the window but never started in it.
    fn note_window_end(&mut self) {
        if self.unissued_at_window_end.is_some() {
            return;
        }
        let end = self.shared.measure_end_ns.load(Ordering::Relaxed);
        if self.shared.now_ns() >= end {
            self.unissued_at_window_end = Some(self.shared.backlog_at(end));
        }
    }

    /// Time until the next phase boundary that is still ahead (an hour if none).
    pub(super) fn until_next_boundary(&self) -> Duration {
        let now = self.shared.now_ns();
        [&self.shared.warmup_end_ns, &self.shared.measure_end_ns]
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .filter(|b| *b > now && *b != NEVER)
            .min()
            .map_or(Duration::from_secs(3600), |b| Duration::from_nanos(b - now))
    }

    pub(super) fn apply(&mut self, cmd: Command) {
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

    pub(super) fn spawn_task(&mut self, session: Option<Box<dyn TargetSession>>) {
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
            operations: self.operations.clone(),
            rng,
        };
        // Task `index` runs on client thread `index mod N`, where its initial session was opened.
        let handle =
            super::threads::runtime_of(self.config.client_threads.as_ref(), index).spawn(task.run(session));
        self.tasks.push(TaskEntry {
            index,
            joined: false,
            recorder,
            measured: recorders(kinds, self.open_loop),
            retire,
            handle,
        });
    }

    /// Folds tasks that have finished (retired connections) into the supervisor's own
    /// recorders, so memory does not grow with the number of connection changes.
    pub(super) fn reap_finished(&mut self) {
        let mut i = 0;
        while i < self.tasks.len() {
            if self.tasks[i].handle.is_finished() {
                // Finished, so polling once returns its result without waiting.
                if !self.tasks[i].joined {
                    self.tasks[i].joined = true;
                    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                    if let std::task::Poll::Ready(Err(e)) =
                        std::pin::Pin::new(&mut self.tasks[i].handle).poll(&mut cx)
                    {
                        self.task_failed(i, e);
                    }
                }
                let t = self.tasks.swap_remove(i);
                let rec = t.recorder.lock();
                rec.add_measured(&t.measured, &mut self.retired_measured);
                merge_all(&mut self.retired_interval, &rec.interval_other);
                merge_all(&mut self.retired_interval, &rec.interval_measured);
                self.retired_late_starts += rec.interval_late_starts;
                self.finished_totals.add(&rec);
            } else {
                i += 1;
            }
        }
    }

    pub(super) fn emit_snapshot(&mut self) {
        let now = Instant::now();
        let kinds = self.plan.statements().len();
        let mut agg = recorders(kinds, self.open_loop);
        let mut late = std::mem::take(&mut self.retired_late_starts);
        merge_all(&mut agg, &self.retired_interval);
        reset_all(&mut self.retired_interval);
        for t in &mut self.tasks {
            // Swap under the lock; merge outside it, so the task waits only for a swap.
            late += self.spares.swap_interval(&mut t.recorder.lock());
            self.spares.fold_interval(&mut agg, &mut t.measured);
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
            backlog: self.shared.backlog_at(offset),
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

    pub(super) fn report(mut self, abandoned: u64) -> EngineReport {
        self.reap_finished();
        // Per statement first, then folded by kind (and by name for named custom statements).
        let mut by_statement: Vec<KindRecorder> = self.retired_measured.clone();
        let mut totals = std::mem::take(&mut self.finished_totals);
        for t in &self.tasks {
            // Abandoned tasks were aborted; whatever they recorded before is still valid.
            let rec = t.recorder.lock();
            rec.add_measured(&t.measured, &mut by_statement);
            totals.add(&rec);
        }
        let mut measured: BTreeMap<QueryKind, KindRecorder> = BTreeMap::new();
        let mut measured_by_label: BTreeMap<String, KindRecorder> = BTreeMap::new();
        for (i, r) in by_statement.iter().enumerate() {
            measured.entry(self.plan.kind(i)).or_insert_with(|| KindRecorder::new(self.open_loop)).merge(r);
            if let Some(label) = self.plan.label(i) {
                measured_by_label
                    .entry(format!("{}:{label}", self.plan.kind(i)))
                    .or_insert_with(|| KindRecorder::new(self.open_loop))
                    .merge(r);
            }
        }
        let s = &self.shared;
        let warmup_end = s.warmup_end_ns.load(Ordering::Relaxed);
        let measure_end = s.measure_end_ns.load(Ordering::Relaxed).max(warmup_end);
        let at = |ns: u64| s.start_wall + chrono::Duration::nanoseconds(ns.min(i64::MAX as u64) as i64);
        EngineReport {
            measured,
            measured_by_label,
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
            unissued_ops: self.unissued_at_window_end.unwrap_or(0),
            samples_dropped: s.samples_dropped.load(Ordering::Relaxed),
            error_examples: totals.error_examples,
            stop_reason: self.reason.lock().clone(),
            connections: self.target_connections,
            target_qps: s
                .schedule
                .as_ref()
                .map(|_| f64::from_bits(s.target_qps_bits.load(Ordering::Relaxed))),
            client_threads: match &self.config.client_threads {
                Some(threads) => u32::try_from(threads.len()).unwrap_or(u32::MAX),
                None => tokio::runtime::Handle::try_current()
                    .map_or(1, |h| u32::try_from(h.metrics().num_workers()).unwrap_or(u32::MAX)),
            },
        }
    }
}

pub(super) fn build_snapshot(
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
