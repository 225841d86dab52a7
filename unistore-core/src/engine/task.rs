//! One connection task: the hot path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::Rng;
use tokio::sync::mpsc;

use crate::error::{Error, ErrorKind};
use crate::metrics::QueryExecution;
use crate::target::{TargetPool, TargetSession};
use crate::workload::{WorkloadPlan, YieldsKey};

use super::open_session;
use super::recorder::{Outcome, TaskRecorder};
use super::timeline::Shared;

pub(super) struct ConnectionTask {
    pub(super) index: u32,
    pub(super) shared: Arc<Shared>,
    pub(super) pool: Arc<dyn TargetPool>,
    pub(super) plan: Arc<WorkloadPlan>,
    pub(super) recorder: Arc<Mutex<TaskRecorder>>,
    pub(super) retire: Arc<AtomicBool>,
    pub(super) samples: mpsc::Sender<QueryExecution>,
    pub(super) operations: Option<mpsc::Sender<QueryExecution>>,
    pub(super) rng: SmallRng,
}

impl ConnectionTask {
    pub(super) async fn run(mut self, session: Option<Box<dyn TargetSession>>) {
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
                    if at > self.shared.now_ns() && !self.sleep_until_slot_or_stop(at).await {
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
            let yields = self.plan.yields_key(statement);
            let (result, returned) = if yields == YieldsKey::Returned {
                match s.execute_returning(statement, &params).await {
                    Ok((n, key)) => (Ok(n), key),
                    Err(e) => (Err(e), None),
                }
            } else {
                (s.execute(statement, &params).await, None)
            };
            let ended = self.shared.now_ns();
            // Read-your-writes: the new row's key joins the keys lookups draw from.
            match (yields, &result) {
                (YieldsKey::Returned, Ok(_)) => {
                    if let Some(key) = returned {
                        self.plan.remember_key(key);
                    }
                }
                (YieldsKey::Param(i), Ok(_)) => self.plan.remember_key(params[i].clone()),
                _ => {}
            }
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
                let row = self.execution(&outcome, from);
                if self.samples.try_send(row).is_err() {
                    self.shared.samples_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            if let Some(log) = &self.operations {
                let row = self.execution(&outcome, from);
                // The log is complete or it is useless: wait for its writer rather than drop.
                let _ = log.send(row).await;
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

    pub(super) fn execution(&self, o: &Outcome<'_>, from_offset_ns: u64) -> QueryExecution {
        let started_at = self.shared.start_wall
            + chrono::Duration::nanoseconds(from_offset_ns.min(i64::MAX as u64) as i64);
        QueryExecution {
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
        }
    }

    /// Sleeps until `at` unless the load stops first; returns false when stopping.
    pub(super) async fn sleep_until_or_stop(&self, at: Instant) -> bool {
        self.wait_or_stop(tokio::time::sleep_until(tokio::time::Instant::from_std(at))).await
    }

    /// Waits for `wake` unless the load stops first; returns false when stopping.
    async fn wait_or_stop(&self, wake: impl std::future::Future<Output = ()>) -> bool {
        let notified = self.shared.stop_notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.shared.stopping.load(Ordering::Acquire) {
            return false;
        }
        tokio::select! {
            _ = wake => !self.shared.stopping.load(Ordering::Acquire),
            _ = notified => false,
        }
    }

    /// Open loop: sleeps until the slot at `at_ns` (an offset from the load start) unless the
    /// load stops first; returns false when stopping. The pacer wakes the task at the slot
    /// itself, where tokio's timer would add up to a millisecond that counts as response time.
    async fn sleep_until_slot_or_stop(&self, at_ns: u64) -> bool {
        let Some(pacer) = &self.shared.pacer else {
            return self.sleep_until_or_stop(self.shared.start + Duration::from_nanos(at_ns)).await;
        };
        self.wait_or_stop(pacer.sleep_until(at_ns)).await
    }

    pub(super) async fn sleep_or_stop(&self, d: Duration) {
        self.sleep_until_or_stop(Instant::now() + d).await;
    }
}
