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
/// outside the lock ([`MeasuredTotals`]). A second histogram per operation for the totals cost
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

/// The collector's side of one task: the spare interval recorders it swaps in, and the task's
/// measurement-window totals of the intervals swapped out so far.
pub(super) struct MeasuredTotals {
    spare_other: Vec<KindRecorder>,
    spare_measured: Vec<KindRecorder>,
    /// Measurement-window operations of the intervals swapped out so far, per statement.
    measured: Vec<KindRecorder>,
}

impl MeasuredTotals {
    pub(super) fn new(kinds: usize, open_loop: bool) -> Self {
        MeasuredTotals {
            spare_other: recorders(kinds, open_loop),
            spare_measured: recorders(kinds, open_loop),
            measured: recorders(kinds, open_loop),
        }
    }

    /// Swaps the task's interval recorders out (the caller holds the task's lock only for
    /// this) and returns the late starts of the interval.
    pub(super) fn swap_interval(&mut self, rec: &mut TaskRecorder) -> u64 {
        std::mem::swap(&mut rec.interval_other, &mut self.spare_other);
        std::mem::swap(&mut rec.interval_measured, &mut self.spare_measured);
        std::mem::take(&mut rec.interval_late_starts)
    }

    /// After [`swap_interval`](Self::swap_interval), outside the lock: adds the swapped-out
    /// interval to `interval` and its measured half to the totals, then empties the spares.
    pub(super) fn fold_interval(&mut self, interval: &mut [KindRecorder]) {
        merge_all(interval, &self.spare_other);
        merge_all(interval, &self.spare_measured);
        merge_all(&mut self.measured, &self.spare_measured);
        reset_all(&mut self.spare_other);
        reset_all(&mut self.spare_measured);
    }

    /// Adds the task's measurement-window operations (the totals plus the interval not yet
    /// swapped out) to `into`.
    pub(super) fn add_measured(&self, rec: &TaskRecorder, into: &mut [KindRecorder]) {
        merge_all(into, &self.measured);
        merge_all(into, &rec.interval_measured);
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
