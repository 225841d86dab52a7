//! `FIND_MAX_CONCURRENCY`: a step-load search for the largest sustainable connection count.
//!
//! The search starts at `start_connections` and adds `step_connections` every `step_duration`,
//! judging each step on the interval snapshots that fall inside it (the first one of a step is
//! left out when the step has three or more, so connection set-up does not count against it).
//! It stops when throughput falls more than `qps_drop_pct` below the best step, when p95 grows
//! more than `p95_growth_pct` over the first step, when the error rate passes
//! `max_error_rate`, or after the step at `max_connections`. The best step is the one with the
//! highest throughput among those that broke no latency or error bound.

use std::time::Duration;

use serde::Serialize;

use crate::error::Result;
use crate::metrics::{KindStats, MetricSnapshot, StepResult};
use crate::model::RunPhase;

/// Parameters of the search (from `LoadMode::FindMaxConcurrency`).
#[derive(Debug, Clone)]
pub struct StepSearchParams {
    /// Connections in the first step.
    pub start_connections: u32,
    /// Connections added per step.
    pub step_connections: u32,
    /// Length of a step.
    pub step_duration: Duration,
    /// Upper bound.
    pub max_connections: u32,
    /// Stop when QPS is more than this percentage below the best step.
    pub qps_drop_pct: f64,
    /// Stop when p95 is more than this percentage above the first step's.
    pub p95_growth_pct: f64,
    /// Stop when the error rate exceeds this fraction.
    pub max_error_rate: f64,
}

impl StepSearchParams {
    /// The search a `FIND_MAX_CONCURRENCY` load asks for (`None` for other modes).
    pub fn from_load(load: &crate::template::LoadMode) -> Option<Self> {
        match load {
            crate::template::LoadMode::FindMaxConcurrency {
                start_connections,
                step_connections,
                step_duration,
                max_connections,
                qps_drop_pct,
                p95_growth_pct,
                max_error_rate,
            } => Some(StepSearchParams {
                start_connections: *start_connections,
                step_connections: *step_connections,
                step_duration: *step_duration,
                max_connections: *max_connections,
                qps_drop_pct: *qps_drop_pct,
                p95_growth_pct: *p95_growth_pct,
                max_error_rate: *max_error_rate,
            }),
            _ => None,
        }
    }

    /// Upper bound on the search's length (every step up to `max_connections`).
    pub fn max_duration(&self) -> Duration {
        let steps =
            (self.max_connections.saturating_sub(self.start_connections)) / self.step_connections.max(1) + 1;
        self.step_duration.checked_mul(steps).unwrap_or(Duration::MAX)
    }
}

/// What the runner should do after a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub enum StepDecision {
    /// Keep going.
    Continue,
    /// The step is over: run the next one with this many connections.
    SetConnections(u32),
    /// The search is over, for this reason.
    Stop(String),
}

/// The search state.
#[derive(Debug)]
pub struct StepSearch {
    params: StepSearchParams,
    connections: u32,
    current: Vec<MetricSnapshot>,
    elapsed_in_step: f64,
    steps: Vec<StepResult>,
    healthy: Vec<bool>,
    done: bool,
    /// Why the search ended, once it has.
    stopped: Option<String>,
}

/// Where a search stands, as the live view shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepState {
    /// The step running now (from 1), or the last one once the search has ended.
    pub current_step: usize,
    /// Connections of the current step.
    pub connections: u32,
    /// Seconds of the current step measured so far.
    pub elapsed_in_step_s: f64,
    /// Length of a step, seconds.
    pub step_s: f64,
    /// The search's upper bound.
    pub max_connections: u32,
    /// The steps judged so far.
    pub steps: Vec<JudgedStep>,
    /// Why the search ended (`None` while it goes on).
    pub finished: Option<String>,
}

/// One judged step and its verdict: `BEST` (the best sustainable step so far), `OK` (within the
/// latency and error bounds) or `BREACH` (over a bound).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JudgedStep {
    /// Step number, from 1.
    pub step: usize,
    /// Its figures.
    #[serde(flatten)]
    pub result: StepResult,
    /// `BEST`, `OK` or `BREACH`.
    pub verdict: &'static str,
}

impl StepSearch {
    /// A search at its first step.
    pub fn new(params: StepSearchParams) -> Self {
        StepSearch {
            connections: params.start_connections,
            params,
            current: Vec::new(),
            elapsed_in_step: 0.0,
            steps: Vec::new(),
            healthy: Vec::new(),
            done: false,
            stopped: None,
        }
    }

    /// Feeds one interval snapshot; warmup snapshots are ignored.
    pub fn observe(&mut self, snapshot: &MetricSnapshot) -> Result<StepDecision> {
        if self.done || snapshot.phase != RunPhase::Measurement {
            return Ok(StepDecision::Continue);
        }
        self.elapsed_in_step += snapshot.interval_s;
        self.current.push(snapshot.clone());
        // A little slack for timer jitter: a 5 s step ends with the snapshot near the 5 s mark.
        if self.elapsed_in_step + 0.25 < self.params.step_duration.as_secs_f64() {
            return Ok(StepDecision::Continue);
        }
        let step = self.close_step()?;
        let p = &self.params;
        let first_p95 = self.steps.first().map_or(step.p95_ms, |s| s.p95_ms);
        let best_qps = self.best().map_or(0.0, |b| b.qps);
        let mut reasons = Vec::new();
        if step.error_rate > p.max_error_rate {
            reasons.push(format!(
                "error rate {:.4} at {} connections is above {}",
                step.error_rate, step.connections, p.max_error_rate
            ));
        }
        if !self.steps.is_empty() && step.p95_ms > first_p95 * (1.0 + p.p95_growth_pct / 100.0) {
            reasons.push(format!(
                "p95 {:.3} ms at {} connections is more than {}% above the first step's {:.3} ms",
                step.p95_ms, step.connections, p.p95_growth_pct, first_p95
            ));
        }
        let healthy = reasons.is_empty();
        if best_qps > 0.0 && step.qps < best_qps * (1.0 - p.qps_drop_pct / 100.0) {
            reasons.push(format!(
                "throughput {:.1} ops/s at {} connections is more than {}% below the best {:.1} ops/s",
                step.qps, step.connections, p.qps_drop_pct, best_qps
            ));
        }
        self.steps.push(step);
        self.healthy.push(healthy);
        if let Some(first) = reasons.into_iter().next() {
            self.done = true;
            self.stopped = Some(first.clone());
            return Ok(StepDecision::Stop(first));
        }
        let next = self.connections.saturating_add(p.step_connections);
        if next > p.max_connections {
            self.done = true;
            let reason = format!("reached max_connections ({})", p.max_connections);
            self.stopped = Some(reason.clone());
            return Ok(StepDecision::Stop(reason));
        }
        self.connections = next;
        Ok(StepDecision::SetConnections(next))
    }

    fn close_step(&mut self) -> Result<StepResult> {
        let snapshots = std::mem::take(&mut self.current);
        self.elapsed_in_step = 0.0;
        let used = if snapshots.len() >= 3 { &snapshots[1..] } else { &snapshots[..] };
        let window: f64 = used.iter().map(|s| s.interval_s).sum();
        let parts: Vec<&KindStats> = used.iter().map(|s| &s.total).collect();
        let merged = KindStats::merge_exact(&parts, window)?;
        Ok(StepResult {
            connections: self.connections,
            qps: merged.qps,
            p95_ms: merged.latency_ms.p95,
            p99_ms: merged.latency_ms.p99,
            error_rate: merged.error_rate(),
        })
    }

    /// The steps judged so far.
    pub fn steps(&self) -> &[StepResult] {
        &self.steps
    }

    /// Where the search stands: the current step and the steps judged, each with its verdict.
    pub fn state(&self) -> StepState {
        let best = self
            .steps
            .iter()
            .zip(&self.healthy)
            .enumerate()
            .filter(|(_, (_, ok))| **ok)
            .max_by(|(_, (a, _)), (_, (b, _))| a.qps.total_cmp(&b.qps))
            .map(|(i, _)| i);
        let steps: Vec<JudgedStep> = self
            .steps
            .iter()
            .zip(&self.healthy)
            .enumerate()
            .map(|(i, (s, ok))| JudgedStep {
                step: i + 1,
                result: s.clone(),
                verdict: if Some(i) == best {
                    "BEST"
                } else if *ok {
                    "OK"
                } else {
                    "BREACH"
                },
            })
            .collect();
        StepState {
            current_step: if self.done { self.steps.len().max(1) } else { self.steps.len() + 1 },
            connections: self.connections,
            elapsed_in_step_s: self.elapsed_in_step,
            step_s: self.params.step_duration.as_secs_f64(),
            max_connections: self.params.max_connections,
            steps,
            finished: self.stopped.clone(),
        }
    }

    /// The highest-throughput step that broke no latency or error bound.
    pub fn best(&self) -> Option<&StepResult> {
        self.steps
            .iter()
            .zip(&self.healthy)
            .filter(|(_, ok)| **ok)
            .map(|(s, _)| s)
            .max_by(|a, b| a.qps.total_cmp(&b.qps))
    }
}
