//! The per-second series of a run's measurement window, read from its snapshots.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::metrics::{decode_histogram, KindStats, LatencySummary, MetricSnapshot};
use crate::model::{QueryKind, RunPhase};

use super::{RunData, SecondSeries};

/// The whole second a snapshot belongs to: that of the midpoint of its interval, so that
/// timer jitter (an interval ending at 11.001 s or at 10.999 s) never moves a snapshot into
/// the neighbouring second, where it would leave a gap and a double second.
fn second_of(s: &MetricSnapshot) -> u64 {
    let mid = s.elapsed_s - s.interval_s.max(0.0) / 2.0;
    if mid.is_finite() && mid > 0.0 {
        mid.floor() as u64
    } else {
        0
    }
}

/// The measurement snapshots of a run, grouped by second.
fn measured_by_second(run: &RunData) -> BTreeMap<u64, Vec<&MetricSnapshot>> {
    let mut seconds: BTreeMap<u64, Vec<&MetricSnapshot>> = BTreeMap::new();
    for s in run.snapshots.iter().filter(|s| s.phase == RunPhase::Measurement) {
        seconds.entry(second_of(s)).or_default().push(s);
    }
    seconds
}

/// Operations per second of a set of snapshots of the same second: each snapshot's count
/// over its own interval, added up over the workers. A short last interval (the window ended
/// 0.3 s into it) then counts as a rate, not as a second with a third of the operations.
fn rate_of<'a>(parts: impl IntoIterator<Item = (&'a KindStats, f64)>) -> f64 {
    parts
        .into_iter()
        .map(|(k, interval_s)| if interval_s > 0.0 { k.ops as f64 / interval_s } else { k.ops as f64 })
        .sum()
}

/// Merges the statistics of one second: exactly (histograms merged) when every part carries
/// its histogram; otherwise counts, sums and the maximum are added and the percentiles are
/// left unknown (0), as snapshots without histograms cannot give them.
fn merge_second(parts: &[(&KindStats, f64)]) -> Result<KindStats> {
    let window_s = parts.iter().map(|(_, w)| *w).fold(0.0, f64::max);
    let mut merged = match parts {
        [(one, _)] => (*one).clone(),
        _ if parts.iter().all(|(k, _)| k.histogram.is_some()) => {
            let stats: Vec<&KindStats> = parts.iter().map(|(k, _)| *k).collect();
            KindStats::merge_exact(&stats, window_s)?
        }
        _ => {
            let mut acc = KindStats::default();
            for (k, _) in parts {
                acc.ops += k.ops;
                acc.errors += k.errors;
                acc.rows += k.rows;
                acc.sum_ns = acc.sum_ns.saturating_add(k.sum_ns);
                acc.max_ns = acc.max_ns.max(k.max_ns);
                for (kind, n) in &k.errors_by_kind {
                    *acc.errors_by_kind.entry(*kind).or_default() += n;
                }
            }
            acc.latency_ms = LatencySummary {
                max: acc.max_ns as f64 / 1e6,
                mean: if acc.ops > 0 { acc.sum_ns as f64 / acc.ops as f64 / 1e6 } else { 0.0 },
                ..LatencySummary::default()
            };
            acc
        }
    };
    merged.qps = rate_of(parts.iter().copied());
    Ok(merged)
}

/// The per-second series of a run's measurement window (all kinds together): the
/// snapshots whose phase is MEASUREMENT, grouped by the whole second of the midpoint of their
/// interval (seconds since the load started), the workers' snapshots of a second merged
/// exactly (counts added, histograms merged). `qps` of each second is the sum of each
/// snapshot's operations over its own interval.
pub fn measured_seconds(run: &RunData) -> Result<SecondSeries> {
    measured_by_second(run)
        .into_iter()
        .map(|(second, snaps)| {
            let parts: Vec<(&KindStats, f64)> = snaps.iter().map(|s| (&s.total, s.interval_s)).collect();
            Ok((second, merge_second(&parts)?))
        })
        .collect()
}

/// [`measured_seconds`] for each query kind. Every kind's series has the same seconds as the
/// total's: a second in which a kind did nothing is an empty [`KindStats`], not a gap.
pub fn measured_seconds_by_kind(run: &RunData) -> Result<BTreeMap<QueryKind, SecondSeries>> {
    let by_second = measured_by_second(run);
    let kinds: std::collections::BTreeSet<QueryKind> =
        by_second.values().flatten().flat_map(|s| s.by_kind.keys().copied()).collect();
    let mut out = BTreeMap::new();
    for kind in kinds {
        let mut series = SecondSeries::new();
        for (second, snaps) in &by_second {
            let parts: Vec<(&KindStats, f64)> =
                snaps.iter().filter_map(|s| s.by_kind.get(&kind).map(|k| (k, s.interval_s))).collect();
            let stats = if parts.is_empty() { KindStats::default() } else { merge_second(&parts)? };
            series.insert(*second, stats);
        }
        out.insert(kind, series);
    }
    Ok(out)
}

/// One second of a run in any phase, the workers' snapshots of that second merged: what a
/// chart of the whole run (warmup and cooldown included) draws.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SecondPoint {
    /// Whole seconds since the load started (as in [`measured_seconds`]).
    pub second: u64,
    /// The phase of the latest snapshot of the second: at a phase change the workers may
    /// disagree for one second, and the later one is where the run is going.
    pub phase: RunPhase,
    /// All kinds together, merged as in [`measured_seconds`].
    pub stats: KindStats,
    /// Connections open at the end of the second, over all workers.
    pub active_connections: u32,
    /// Connections asked for, over all workers.
    pub target_connections: u32,
}

/// The per-second series of a run over every phase, in time order. Grouping and merging are
/// those of [`measured_seconds`]; only the phase filter is gone.
pub fn all_seconds(run: &RunData) -> Result<Vec<SecondPoint>> {
    let mut seconds: BTreeMap<u64, Vec<&MetricSnapshot>> = BTreeMap::new();
    for s in &run.snapshots {
        seconds.entry(second_of(s)).or_default().push(s);
    }
    seconds
        .into_iter()
        .map(|(second, snaps)| {
            let parts: Vec<(&KindStats, f64)> = snaps.iter().map(|s| (&s.total, s.interval_s)).collect();
            let latest = snaps.iter().max_by(|a, b| a.elapsed_s.total_cmp(&b.elapsed_s));
            Ok(SecondPoint {
                second,
                phase: latest.map_or(RunPhase::Measurement, |s| s.phase),
                stats: merge_second(&parts)?,
                active_connections: snaps.iter().map(|s| s.active_connections).sum(),
                target_connections: snaps.iter().map(|s| s.target_connections).sum(),
            })
        })
        .collect()
}

/// What the comparison needs of one second of one series (a kind, or all kinds).
#[derive(Debug, Clone, Default)]
pub(super) struct SecondFigures {
    /// Successful operations per second.
    pub rate: f64,
    /// Successful operations.
    pub ops: u64,
    /// Failed operations.
    pub errors: u64,
    /// Mean response time, ns (`None` without operations).
    pub mean_ns: Option<f64>,
    /// Response times recorded in the second: (microseconds, count), from the histograms.
    pub latencies: Vec<(u64, u64)>,
}

/// The series of one run the comparison reads: all kinds, then each kind, second by second
/// (the same seconds in each). Histograms are decoded straight into value counts: a
/// comparison needs no merged, re-encoded histogram per second.
pub(super) fn figures(run: &RunData) -> Result<BTreeMap<Option<QueryKind>, Vec<SecondFigures>>> {
    let by_second = measured_by_second(run);
    let mut keys: Vec<Option<QueryKind>> = vec![None];
    let kinds: std::collections::BTreeSet<QueryKind> =
        by_second.values().flatten().flat_map(|s| s.by_kind.keys().copied()).collect();
    keys.extend(kinds.into_iter().map(Some));
    let mut out = BTreeMap::new();
    for key in keys {
        let mut series = Vec::with_capacity(by_second.len());
        for snaps in by_second.values() {
            let parts: Vec<(&KindStats, f64)> = snaps
                .iter()
                .filter_map(|s| match key {
                    None => Some((&s.total, s.interval_s)),
                    Some(kind) => s.by_kind.get(&kind).map(|k| (k, s.interval_s)),
                })
                .collect();
            let mut f = SecondFigures { rate: rate_of(parts.iter().copied()), ..SecondFigures::default() };
            let mut sum_ns = 0.0;
            for (k, _) in &parts {
                f.ops += k.ops;
                f.errors += k.errors;
                sum_ns += k.sum_ns as f64;
                if let Some(encoded) = &k.histogram {
                    let h = decode_histogram(encoded)?;
                    f.latencies.extend(
                        h.iter_recorded()
                            .map(|v| (h.median_equivalent(v.value_iterated_to()), v.count_at_value())),
                    );
                }
            }
            f.mean_ns = (f.ops > 0).then(|| sum_ns / f.ops as f64);
            series.push(f);
        }
        out.insert(key, series);
    }
    Ok(out)
}
