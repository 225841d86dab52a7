//! What a connection task records per operation, into recorders of its own.

use std::collections::BTreeMap;

use crate::error::{ErrorKind, Result};
use crate::metrics::KindRecorder;
use crate::model::RunPhase;

/// Per-task recorders, locked by the task for each operation (uncontended) and by the
/// collector once per interval (to swap the interval recorders out).
///
/// Each operation goes into exactly one histogram: this interval's, split by whether it
/// completed inside the measurement window. The collector shows both halves in the interval's
/// snapshot and adds the measured half to the task's measurement totals, which it keeps
/// outside the lock (see [`Spares`]). A second histogram per operation for the totals cost
/// a second cache miss per operation on a host where the database's work evicts the client's
/// cache lines between operations (8 % of the client's user-space CPU against PostgreSQL).
pub(super) struct TaskRecorder {
    /// This interval's operations outside the measurement window (warmup, cooldown), per
    /// statement.
    pub(super) interval_other: Vec<KindRecorder>,
    /// This interval's operations inside the measurement window, per statement.
    pub(super) interval_measured: Vec<KindRecorder>,
    pub(super) interval_late_starts: u64,
    pub(super) measured_late_starts: u64,
    pub(super) warmup_ops: u64,
    pub(super) cooldown_ops: u64,
    pub(super) completed_ops: u64,
    pub(super) max_lag_ns: u64,
    pub(super) error_examples: BTreeMap<ErrorKind, String>,
}

impl TaskRecorder {
    pub(super) fn new(kinds: usize, open_loop: bool) -> Self {
        TaskRecorder {
            interval_other: recorders(kinds, open_loop),
            interval_measured: recorders(kinds, open_loop),
            interval_late_starts: 0,
            measured_late_starts: 0,
            warmup_ops: 0,
            cooldown_ops: 0,
            completed_ops: 0,
            max_lag_ns: 0,
            error_examples: BTreeMap::new(),
        }
    }

    /// Adds the task's measurement-window operations to `into`: `swapped`, the totals of the
    /// intervals swapped out so far, and the interval not yet swapped out.
    pub(super) fn add_measured(&self, swapped: &[KindRecorder], into: &mut [KindRecorder]) {
        merge_all(into, swapped);
        merge_all(into, &self.interval_measured);
    }
}

/// One empty recorder per statement.
pub(super) fn recorders(kinds: usize, open_loop: bool) -> Vec<KindRecorder> {
    (0..kinds).map(|_| KindRecorder::new(open_loop)).collect()
}

/// Adds `from` into `into`, statement by statement, skipping empty recorders (most intervals
/// leave one of a task's two halves empty).
pub(super) fn merge_all(into: &mut [KindRecorder], from: &[KindRecorder]) {
    for (a, b) in into.iter_mut().zip(from) {
        if !b.is_empty() {
            a.merge(b);
        }
    }
}

/// Clears every recorder that holds something, keeping allocations.
pub(super) fn reset_all(recorders: &mut [KindRecorder]) {
    for r in recorders.iter_mut().filter(|r| !r.is_empty()) {
        r.reset();
    }
}

/// The collector's spare interval recorders. Each interval it swaps them into every task in
/// turn for the two halves the task filled, folds those, clears them and swaps them into the
/// next task: recorders circulate, so the collector keeps one set in all, not one per task.
pub(super) struct Spares {
    other: Vec<KindRecorder>,
    measured: Vec<KindRecorder>,
}

impl Spares {
    pub(super) fn new(kinds: usize, open_loop: bool) -> Self {
        Spares { other: recorders(kinds, open_loop), measured: recorders(kinds, open_loop) }
    }

    /// Swaps the task's interval recorders out (the caller holds the task's lock only for
    /// this) and returns the late starts of the interval.
    pub(super) fn swap_interval(&mut self, rec: &mut TaskRecorder) -> u64 {
        std::mem::swap(&mut rec.interval_other, &mut self.other);
        std::mem::swap(&mut rec.interval_measured, &mut self.measured);
        std::mem::take(&mut rec.interval_late_starts)
    }

    /// After [`swap_interval`](Self::swap_interval), outside the lock: adds the swapped-out
    /// interval to `interval` and its measured half to the task's totals `task_measured`, then
    /// empties the spares.
    pub(super) fn fold_interval(
        &mut self,
        interval: &mut [KindRecorder],
        task_measured: &mut [KindRecorder],
    ) {
        merge_all(interval, &self.other);
        merge_all(interval, &self.measured);
        merge_all(task_measured, &self.measured);
        reset_all(&mut self.other);
        reset_all(&mut self.measured);
    }
}

pub(super) struct Outcome<'a> {
    pub(super) statement: usize,
    pub(super) phase: RunPhase,
    pub(super) response_ns: u64,
    pub(super) service_ns: u64,
    pub(super) lag_ns: Option<u64>,
    pub(super) result: &'a Result<u64>,
}

impl TaskRecorder {
    #[inline]
    pub(super) fn record(&mut self, o: &Outcome<'_>, late_threshold_ns: u64) {
        self.completed_ops += 1;
        let late = o.lag_ns.is_some_and(|l| l > late_threshold_ns);
        if let Some(lag) = o.lag_ns {
            self.max_lag_ns = self.max_lag_ns.max(lag);
        }
        if late {
            self.interval_late_starts += 1;
        }
        match o.phase {
            RunPhase::Measurement => {
                record_into(&mut self.interval_measured[o.statement], o);
                if late {
                    self.measured_late_starts += 1;
                }
            }
            phase => {
                record_into(&mut self.interval_other[o.statement], o);
                match (phase, o.result.is_ok()) {
                    (RunPhase::Warmup, true) => self.warmup_ops += 1,
                    (_, true) => self.cooldown_ops += 1,
                    _ => {}
                }
            }
        }
        if let Err(e) = o.result {
            self.error_examples.entry(e.kind()).or_insert_with(|| e.to_string());
        }
    }
}

#[inline]
pub(super) fn record_into(r: &mut KindRecorder, o: &Outcome<'_>) {
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
