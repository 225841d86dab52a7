//! The charts' per-second series of a run: every worker's snapshot of the same whole second
//! added up, so that a run of several workers draws one line, not one per worker.

use std::collections::BTreeMap;

use serde::Serialize;
use unistore_core::metrics::{KindStats, LatencySummary, MetricSnapshot};
use unistore_core::RunPhase;

/// How the latency percentiles of seconds measured by several workers were obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyMerge {
    /// One worker per second, or their histograms merged: the run's own percentiles.
    Exact,
    /// Some snapshots carry no histogram: each percentile is the largest of the workers'
    /// (an upper bound, labelled as such on the chart).
    WorstWorker,
}

/// One run's series, one entry per whole second since the load started (the end of the
/// snapshot's interval), as the report's script draws them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChartSeries {
    /// Elapsed seconds.
    pub t: Vec<f64>,
    /// Successful operations per second.
    pub ops_per_s: Vec<f64>,
    /// Failed operations per second.
    pub errors_per_s: Vec<f64>,
    /// Response-time percentiles, ms (`None` in a second without a successful operation).
    pub p50: Vec<Option<f64>>,
    /// 95th percentile, ms.
    pub p95: Vec<Option<f64>>,
    /// 99th percentile, ms.
    pub p99: Vec<Option<f64>>,
    /// Connections open at the end of the second, all workers.
    pub connections: Vec<f64>,
    /// Connections asked for, all workers.
    pub target_connections: Vec<f64>,
    /// Open loop: the target rate of the second (`None` in closed loop).
    pub target_qps: Vec<Option<f64>>,
    /// Seconds `(first, last)` of the measurement window: each snapshot covers the second
    /// before its `t`, so the window spans `first - 1 ..= last`.
    pub measurement: Option<(f64, f64)>,
    /// How the percentiles of seconds with several workers were merged.
    pub latency_merge: LatencyMerge,
}

/// One worker's share of one second.
#[derive(Debug, Default)]
struct WorkerSecond {
    ops: u64,
    errors: u64,
    interval_s: f64,
    elapsed_s: f64,
    connections: u32,
    target_connections: u32,
    target_qps: Option<f64>,
}

/// The rate of a count over a snapshot's interval (a count when the interval is unknown).
fn per_second(count: u64, interval_s: f64) -> f64 {
    if interval_s > 0.0 {
        count as f64 / interval_s
    } else {
        count as f64
    }
}

/// The latency of one second from its workers' totals, and whether it is exact.
fn merged_latency(parts: &[&MetricSnapshot]) -> (LatencySummary, bool) {
    if let [only] = parts {
        return (only.total.latency_ms, true);
    }
    let totals: Vec<&KindStats> = parts.iter().map(|p| &p.total).filter(|k| k.ops > 0).collect();
    if let [only] = totals.as_slice() {
        return (only.latency_ms, true);
    }
    if let Ok(merged) = KindStats::merge_exact(&totals, 1.0) {
        return (merged.latency_ms, true);
    }
    let mut worst = LatencySummary::default();
    for k in totals {
        let l = &k.latency_ms;
        worst.p50 = worst.p50.max(l.p50);
        worst.p95 = worst.p95.max(l.p95);
        worst.p99 = worst.p99.max(l.p99);
        worst.max = worst.max.max(l.max);
    }
    (worst, false)
}

/// The per-second series of a run from its snapshots (any order, any number of workers).
pub fn chart_series(snapshots: &[MetricSnapshot]) -> ChartSeries {
    let mut seconds: BTreeMap<u64, Vec<&MetricSnapshot>> = BTreeMap::new();
    for s in snapshots {
        // Snapshots end on whole seconds give or take a few milliseconds of scheduling.
        let second = s.elapsed_s.max(0.0).round() as u64;
        seconds.entry(second).or_default().push(s);
    }
    let mut out = ChartSeries {
        t: Vec::with_capacity(seconds.len()),
        ops_per_s: Vec::with_capacity(seconds.len()),
        errors_per_s: Vec::with_capacity(seconds.len()),
        p50: Vec::with_capacity(seconds.len()),
        p95: Vec::with_capacity(seconds.len()),
        p99: Vec::with_capacity(seconds.len()),
        connections: Vec::with_capacity(seconds.len()),
        target_connections: Vec::with_capacity(seconds.len()),
        target_qps: Vec::with_capacity(seconds.len()),
        measurement: None,
        latency_merge: LatencyMerge::Exact,
    };
    for (second, parts) in &seconds {
        let t = *second as f64;
        let ops: u64 = parts.iter().map(|p| p.total.ops).sum();
        // A worker may have two snapshots in one second (a short last one as the load stops):
        // its counts are added over their intervals together, and its connections are those
        // of its later snapshot; then the workers are added up.
        let mut workers: BTreeMap<&str, WorkerSecond> = BTreeMap::new();
        for p in parts {
            let w = workers.entry(p.worker_id.as_str()).or_default();
            w.ops += p.total.ops;
            w.errors += p.total.errors;
            w.interval_s += p.interval_s;
            if p.elapsed_s >= w.elapsed_s {
                w.elapsed_s = p.elapsed_s;
                w.connections = p.active_connections;
                w.target_connections = p.target_connections;
                w.target_qps = p.target_qps;
            }
        }
        out.t.push(t);
        out.ops_per_s.push(workers.values().map(|w| per_second(w.ops, w.interval_s)).sum());
        out.errors_per_s.push(workers.values().map(|w| per_second(w.errors, w.interval_s)).sum());
        let (latency, exact) = merged_latency(parts);
        if !exact {
            out.latency_merge = LatencyMerge::WorstWorker;
        }
        let percentile = |v: f64| (ops > 0).then_some(v);
        out.p50.push(percentile(latency.p50));
        out.p95.push(percentile(latency.p95));
        out.p99.push(percentile(latency.p99));
        out.connections.push(workers.values().map(|w| f64::from(w.connections)).sum());
        out.target_connections.push(workers.values().map(|w| f64::from(w.target_connections)).sum());
        let rates: Vec<f64> = workers.values().filter_map(|w| w.target_qps).collect();
        out.target_qps.push((!rates.is_empty()).then(|| rates.iter().sum()));
        if parts.iter().any(|p| p.phase == RunPhase::Measurement) {
            out.measurement = Some(match out.measurement {
                None => (t, t),
                Some((first, _)) => (first, t),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use unistore_core::metrics::{KindRecorder, MetricSnapshot};
    use unistore_core::{RunId, RunPhase};

    use super::*;

    fn snapshot(
        worker: &str,
        elapsed_s: f64,
        phase: RunPhase,
        latencies_us: &[u64],
        errors: u64,
    ) -> MetricSnapshot {
        let mut rec = KindRecorder::new(false);
        for us in latencies_us {
            rec.response.record_ns(us * 1_000);
        }
        rec.errors[0] = errors;
        MetricSnapshot {
            run_id: RunId::new(),
            worker_id: worker.into(),
            seq: 1,
            taken_at: chrono::Utc::now(),
            elapsed_s,
            interval_s: 1.0,
            phase,
            active_connections: 2,
            target_connections: 3,
            target_qps: None,
            late_starts: 0,
            backlog: 0,
            total: rec.stats(1.0, true).unwrap(),
            by_kind: Default::default(),
        }
    }

    #[test]
    fn workers_of_the_same_second_are_added_up_and_their_histograms_merged() {
        let fast: Vec<u64> = vec![1_000; 90];
        let slow: Vec<u64> = vec![50_000; 10];
        let snaps = vec![
            snapshot("w1", 1.002, RunPhase::Warmup, &fast, 0),
            snapshot("w2", 0.998, RunPhase::Warmup, &slow, 1),
            snapshot("w1", 2.001, RunPhase::Measurement, &fast, 0),
            snapshot("w2", 2.003, RunPhase::Measurement, &slow, 2),
            snapshot("w1", 3.0, RunPhase::Measurement, &[], 4),
        ];
        // The short last snapshot of a stopping worker lands in the same second.
        let mut last = snapshot("w1", 3.004, RunPhase::Cooldown, &[], 0);
        last.interval_s = 0.004;
        last.active_connections = 0;
        let snaps: Vec<MetricSnapshot> = snaps.into_iter().chain([last]).collect();
        let s = chart_series(&snaps);
        assert_eq!(s.t, vec![1.0, 2.0, 3.0]);
        assert_eq!(s.ops_per_s, vec![100.0, 100.0, 0.0]);
        assert_eq!(s.errors_per_s[..2], [1.0, 2.0]);
        assert!((s.errors_per_s[2] - 4.0 / 1.004).abs() < 1e-9, "over both intervals: {:?}", s.errors_per_s);
        assert_eq!(s.connections, vec![4.0, 4.0, 0.0], "the later snapshot's, not a sum");
        assert_eq!(s.target_connections, vec![6.0, 6.0, 3.0]);
        assert_eq!(s.measurement, Some((2.0, 3.0)));
        assert_eq!(s.latency_merge, LatencyMerge::Exact);
        // 90 % of the merged second took 1 ms: its median is the fast worker's, its p95 the
        // slow worker's (neither worker's own p95 alone says that of the run).
        let p50 = s.p50[1].unwrap();
        let p95 = s.p95[1].unwrap();
        assert!((p50 - 1.0).abs() < 0.01, "{p50}");
        assert!((p95 - 50.0).abs() < 0.1, "{p95}");
        assert_eq!(s.p99[2], None, "a second without a success has no percentile");
    }

    #[test]
    fn without_histograms_the_worst_worker_is_taken_and_said_so() {
        let mut a = snapshot("w1", 1.0, RunPhase::Measurement, &[1_000; 10], 0);
        let mut b = snapshot("w2", 1.0, RunPhase::Measurement, &[8_000; 10], 0);
        a.total.histogram = None;
        b.total.histogram = None;
        let s = chart_series(&[a, b]);
        assert_eq!(s.latency_merge, LatencyMerge::WorstWorker);
        assert!((s.p50[0].unwrap() - 8.0).abs() < 0.01);
    }
}
