//! The shared timeline: phase boundaries as offsets from the load start, the open-loop
//! timetable, and the stop signal.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::model::{RunId, RunPhase};

use super::pacer::Pacer;

pub(super) const NEVER: u64 = u64::MAX;
/// How long cancelling in-flight statements, and their return after the cancel, may take.
pub(super) const CANCEL_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) struct Schedule {
    pub(super) next_ns: f64,
    pub(super) interval_ns: f64,
}

/// State shared by the supervisor and the connection tasks. Hot-path reads are relaxed atomic
/// loads.
pub(super) struct Shared {
    /// The load start on the OS's monotonic clock, the one clock of the whole timeline: the
    /// pacer wakes tasks by it and the tasks time their operations by it. (A calibrated
    /// time-stamp counter was tried for the hot path: it drifts from the OS clock by a few
    /// parts in ten thousand, so after seconds the pacer's slots and the tasks' clock disagreed
    /// by more than the lag being measured, and operations seemed to start before their slot.)
    pub(super) start: Instant,
    pub(super) warmup_end_ns: AtomicU64,
    pub(super) measure_end_ns: AtomicU64,
    pub(super) run_end_ns: AtomicU64,
    pub(super) stopping: AtomicBool,
    pub(super) stop_notify: Notify,
    /// A forced stop: in-flight operations get no deadline.
    pub(super) forced: AtomicBool,
    pub(super) forced_notify: Notify,
    pub(super) schedule: Option<Mutex<Schedule>>,
    /// Open loop: wakes each connection task precisely at its slot (tokio's timer would wake
    /// it up to a millisecond late, and that lag would count as response time).
    pub(super) pacer: Option<Pacer>,
    pub(super) target_qps_bits: AtomicU64,
    pub(super) late_threshold_ns: u64,
    pub(super) sample_rate: f64,
    pub(super) samples_dropped: AtomicU64,
    pub(super) active_connections: AtomicU32,
    pub(super) run_id: RunId,
    pub(super) worker_id: String,
    pub(super) start_wall: DateTime<Utc>,
}

impl Shared {
    /// Nanoseconds since the load started.
    #[inline]
    pub(super) fn now_ns(&self) -> u64 {
        super::nanos_since(self.start)
    }

    #[inline]
    pub(super) fn phase_at(&self, offset_ns: u64) -> RunPhase {
        if offset_ns < self.warmup_end_ns.load(Ordering::Relaxed) {
            RunPhase::Warmup
        } else if offset_ns < self.measure_end_ns.load(Ordering::Relaxed) {
            RunPhase::Measurement
        } else {
            RunPhase::Cooldown
        }
    }

    #[inline]
    pub(super) fn should_stop(&self, offset_ns: u64) -> bool {
        offset_ns >= self.run_end_ns.load(Ordering::Relaxed) || self.stopping.load(Ordering::Relaxed)
    }

    /// Ends the load now: the measurement window closes here if it was still open.
    pub(super) fn stop_now(&self) {
        let t = self.now_ns();
        self.warmup_end_ns.fetch_min(t, Ordering::Relaxed);
        self.measure_end_ns.fetch_min(t, Ordering::Relaxed);
        self.run_end_ns.fetch_min(t, Ordering::Relaxed);
        self.stopping.store(true, Ordering::Release);
        self.stop_notify.notify_waiters();
    }

    /// Open loop: operations due by `at_ns` (an offset from the load start) that no
    /// connection has started yet. 0 in closed loop.
    pub(super) fn backlog_at(&self, at_ns: u64) -> u64 {
        let Some(schedule) = self.schedule.as_ref() else {
            return 0;
        };
        let s = schedule.lock();
        let at = at_ns as f64;
        if s.next_ns > at || s.interval_ns <= 0.0 {
            return 0;
        }
        ((at - s.next_ns) / s.interval_ns) as u64 + 1
    }

    /// Open loop: the next slot of the timetable, as an offset from the load start.
    pub(super) fn claim_slot(&self) -> Option<u64> {
        let schedule = self.schedule.as_ref()?;
        let mut s = schedule.lock();
        let at = s.next_ns;
        s.next_ns += s.interval_ns;
        Some(at as u64)
    }
}
