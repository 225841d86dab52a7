//! What a connection task records per operation, into recorders of its own.

use std::collections::BTreeMap;

use crate::error::{ErrorKind, Result};
use crate::metrics::KindRecorder;
use crate::model::RunPhase;

/// Per-task recorders, locked by the task for each operation (uncontended) and by the
/// collector once per interval (to swap the interval recorders out).
pub(super) struct TaskRecorder {
    pub(super) interval: Vec<KindRecorder>,
    pub(super) measured: Vec<KindRecorder>,
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
