//! The comparison of runs against the first: values from the stored summaries, intervals
//! and significance from a moving-block bootstrap over the measured seconds.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::error::{Error, Result};
use crate::metrics::KindStats;
use crate::model::QueryKind;

use super::bootstrap::{
    block_length, bucket_range, corrected_autocorrelation, draw_blocks, normal_quantile, percentile_interval,
    student_t_quantile, widening, Block, CountSums, LatencyGrid, GRID_STEP, MAX_AUTOCORRELATION,
};
use super::series::{figures, SecondFigures};
use super::warnings::compare_warnings;
use super::{
    CompareOptions, Comparison, ComparisonRow, Difference, Metric, RunData, Significance, MIN_OPS,
    MIN_SECONDS,
};

/// The percentile metrics, in [`Metric::ALL`] order.
const PERCENTILES: [Metric; 4] = [Metric::P50, Metric::P95, Metric::P99, Metric::P999];

/// Compares runs with the first (the baseline): totals first, then each kind that any run
/// ran (in kind order), each with every [`Metric`]. Values are the runs' stored summaries;
/// intervals and significance come from a moving-block bootstrap over each run's measured
/// seconds (see [`Comparison::method`]). The warnings of [`compare_warnings`] come first.
///
/// Deterministic: the same runs and options give the same comparison.
///
/// Fails with [`Error::InvalidInput`] for fewer than two runs, a confidence outside (0, 1) or
/// fewer than 100 resamples, and when a stored histogram cannot be decoded.
pub fn compare(runs: &[RunData], options: &CompareOptions) -> Result<Comparison> {
    if runs.len() < 2 {
        return Err(Error::invalid(format!(
            "a comparison needs at least two runs (the first is the baseline), got {}: name another run to compare with",
            runs.len()
        )));
    }
    if !(options.confidence > 0.0 && options.confidence < 1.0) {
        return Err(Error::invalid(format!(
            "confidence must be between 0 and 1 (e.g. 0.95), got {}",
            options.confidence
        )));
    }
    if options.resamples < 100 {
        return Err(Error::invalid(format!(
            "at least 100 bootstrap resamples are needed for an interval, got {}",
            options.resamples
        )));
    }
    let series: Vec<BTreeMap<Option<QueryKind>, Vec<SecondFigures>>> =
        runs.iter().map(figures).collect::<Result<_>>()?;
    let kinds: BTreeSet<QueryKind> = runs.iter().flat_map(|r| r.summary.by_kind.keys().copied()).collect();
    let keys: Vec<Option<QueryKind>> = std::iter::once(None).chain(kinds.into_iter().map(Some)).collect();

    let mut rows = Vec::new();
    let mut block_lengths = BTreeSet::new();
    for (key_index, key) in keys.iter().enumerate() {
        let stats: Vec<Option<&KindStats>> = runs
            .iter()
            .map(|r| match key {
                None => Some(&r.summary.total),
                Some(kind) => r.summary.by_kind.get(kind),
            })
            .collect();
        let empty = Vec::new();
        let run_series: Vec<&[SecondFigures]> =
            series.iter().map(|s| s.get(key).map_or(empty.as_slice(), Vec::as_slice)).collect();
        let resamplings: Vec<Resampling> = run_series.iter().map(|s| resampling(s)).collect();
        let mut tested: Vec<Option<Tested>> = vec![None];
        for i in 1..runs.len() {
            let (Some(a), Some(b)) = (stats[0], stats[i]) else {
                tested.push(None);
                continue;
            };
            // One stream per (row, run): a row's intervals do not depend on the other rows.
            let seed = options.seed
                ^ (key_index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ^ ((i as u64) << 48);
            let pair = Pair {
                series: [run_series[0], run_series[i]],
                resampling: [resamplings[0], resamplings[i]],
                ops: [a.ops, b.ops],
            };
            if pair.enough_seconds() {
                block_lengths.extend([resamplings[0].block, resamplings[i].block]);
            }
            tested.push(Some(pair.bootstrap(options, seed)));
        }
        for metric in Metric::ALL {
            let values: Vec<Option<f64>> = stats.iter().map(|s| s.map(|s| value_of(s, metric))).collect();
            let differences = (1..runs.len())
                .map(|i| match (values[0], values[i], &tested[i]) {
                    (Some(baseline), Some(value), Some(t)) => Some(difference(baseline, value, metric, t)),
                    _ => None,
                })
                .collect();
            rows.push(ComparisonRow { kind: *key, metric, values, differences });
        }
    }
    Ok(Comparison {
        runs: runs.iter().map(|r| r.summary.run_id).collect(),
        confidence: options.confidence,
        method: method(options, &block_lengths),
        warnings: compare_warnings(runs),
        rows,
    })
}

/// A figure of a stored summary.
fn value_of(s: &KindStats, metric: Metric) -> f64 {
    match metric {
        Metric::Throughput => s.qps,
        Metric::ErrorRate => s.error_rate(),
        Metric::P50 => s.latency_ms.p50,
        Metric::P95 => s.latency_ms.p95,
        Metric::P99 => s.latency_ms.p99,
        Metric::P999 => s.latency_ms.p999,
        Metric::Max => s.latency_ms.max,
    }
}

/// How a run's series is resampled: its block length and, for each tested figure
/// (throughput, error rate, latency), how much its resampled values are widened.
#[derive(Debug, Clone, Copy)]
struct Resampling {
    block: usize,
    widen: [f64; 3],
}

/// The resampling of a run's series, from the lag-1 autocorrelations of its operations per
/// second, its error fraction per second and its mean response time per second.
fn resampling(series: &[SecondFigures]) -> Resampling {
    let fill = |values: Vec<Option<f64>>| -> Vec<f64> {
        let known: Vec<f64> = values.iter().flatten().copied().collect();
        let mean = if known.is_empty() { 0.0 } else { known.iter().sum::<f64>() / known.len() as f64 };
        values.into_iter().map(|v| v.unwrap_or(mean)).collect()
    };
    let rates: Vec<f64> = series.iter().map(|s| s.rate).collect();
    let errors = fill(
        series
            .iter()
            .map(|s| (s.ops + s.errors > 0).then(|| s.errors as f64 / (s.ops + s.errors) as f64))
            .collect(),
    );
    let latencies = fill(series.iter().map(|s| s.mean_ns).collect());
    let rho = [rates, errors, latencies].map(|x| corrected_autocorrelation(&x));
    let block = block_length(series.len(), rho.iter().copied().fold(0.0, f64::max));
    Resampling { block, widen: rho.map(|r| widening(r, block, series.len())) }
}

/// A run against the baseline, for one row key (a kind or the total).
struct Pair<'a> {
    series: [&'a [SecondFigures]; 2],
    resampling: [Resampling; 2],
    ops: [u64; 2],
}

/// What the bootstrap found for one pair: for each metric, the mean of the resampled
/// differences and their percentile interval (`None`: not enough data).
#[derive(Debug, Default)]
struct Tested {
    throughput: Option<(f64, (f64, f64))>,
    error_rate: Option<(f64, (f64, f64))>,
    percentiles: [Option<(f64, (f64, f64))>; 4],
}

/// Figures resampled per run: throughput, error rate, then the four percentiles.
const FIGURES: usize = 6;

impl Pair<'_> {
    fn enough_seconds(&self) -> bool {
        self.series.iter().all(|s| s.len() >= MIN_SECONDS)
    }

    fn bootstrap(&self, options: &CompareOptions, seed: u64) -> Tested {
        if !self.enough_seconds() {
            return Tested::default();
        }
        let sums = self.series.map(CountSums::new);
        let histogram_ops =
            self.series.map(|s| s.iter().flat_map(|f| f.latencies.iter().map(|l| l.1)).sum::<u64>());
        let percentiles_testable = (0..2).all(|i| self.ops[i].min(histogram_ops[i]) >= MIN_OPS);
        let grids = match (percentiles_testable, bucket_range(self.series[0]), bucket_range(self.series[1])) {
            (true, Some(a), Some(b)) => {
                let (first, last) = (a.0.min(b.0), a.1.max(b.1));
                Some(self.series.map(|s| LatencyGrid::new(s, first, last)))
            }
            _ => None,
        };
        let qs = PERCENTILES.map(|m| m.quantile().unwrap_or(0.5));

        // samples[run][figure][resample]
        let mut samples: [[Vec<f64>; FIGURES]; 2] =
            std::array::from_fn(|_| std::array::from_fn(|_| Vec::with_capacity(options.resamples)));
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut blocks: Vec<Block> = Vec::new();
        let mut quantiles = [0.0; 4];
        for _ in 0..options.resamples {
            for run in 0..2 {
                draw_blocks(&mut rng, self.series[run].len(), self.resampling[run].block, &mut blocks);
                let s = &mut samples[run];
                s[0].push(sums[run].mean_rate(&blocks));
                s[1].push(sums[run].error_rate(&blocks));
                if let Some(grids) = &grids {
                    grids[run].quantiles(&blocks, &qs, &mut quantiles);
                    for (i, q) in quantiles.iter().enumerate() {
                        s[2 + i].push(*q);
                    }
                }
            }
        }
        let confidence = options.confidence;
        let mut tested = (0..FIGURES).map(|figure| {
            let widen = |run: usize| self.resampling[run].widen[figure.min(2)];
            let blocks = |run: usize| self.series[run].len() as f64 / self.resampling[run].block as f64;
            differences(
                &samples[0][figure],
                &samples[1][figure],
                [widen(0), widen(1)],
                [blocks(0), blocks(1)],
                confidence,
                options.resamples,
            )
            .and_then(|mut d| {
                let centre = d.iter().sum::<f64>() / d.len() as f64;
                percentile_interval(&mut d, confidence).map(|interval| (centre, interval))
            })
        });
        Tested {
            throughput: tested.next().flatten(),
            error_rate: tested.next().flatten(),
            percentiles: std::array::from_fn(|_| tested.next().flatten()),
        }
    }
}

/// The resampled differences `b − a`: each run's values first widened around their mean by
/// its factor, then the differences widened around their mean by t / z, the ratio of the
/// Student t quantile to the normal one at the confidence level, with the Welch–Satterthwaite
/// degrees of freedom of two variances each estimated from `blocks[i] − 1` independent
/// blocks. A block bootstrap estimates a run's variance from its few blocks, and a normal
/// quantile would ignore how uncertain that estimate is. Resamples in which a figure could
/// not be read (NaN: no operation) are dropped; `None` when most were.
fn differences(
    a: &[f64],
    b: &[f64],
    widen: [f64; 2],
    blocks: [f64; 2],
    confidence: f64,
    resamples: usize,
) -> Option<Vec<f64>> {
    let pairs: Vec<(f64, f64)> =
        a.iter().zip(b).filter(|(x, y)| x.is_finite() && y.is_finite()).map(|(x, y)| (*x, *y)).collect();
    if pairs.is_empty() || pairs.len() * 2 < resamples {
        return None;
    }
    let n = pairs.len() as f64;
    let mean = |f: &dyn Fn(&(f64, f64)) -> f64| pairs.iter().map(f).sum::<f64>() / n;
    let (mean_a, mean_b) = (mean(&|p| p.0), mean(&|p| p.1));
    let var_a = mean(&|p| (widen[0] * (p.0 - mean_a)).powi(2));
    let var_b = mean(&|p| (widen[1] * (p.1 - mean_b)).powi(2));
    let df = [blocks[0] - 1.0, blocks[1] - 1.0].map(|d| d.max(1.0));
    let welch = (var_a + var_b).powi(2) / (var_a.powi(2) / df[0] + var_b.powi(2) / df[1]);
    let p = (1.0 + confidence) / 2.0;
    let t_over_z = if welch.is_finite() && welch > 0.0 {
        (student_t_quantile(p, welch) / normal_quantile(p)).max(1.0)
    } else {
        1.0
    };
    let diffs: Vec<f64> =
        pairs.iter().map(|(x, y)| widen[1] * (y - mean_b) - widen[0] * (x - mean_a)).collect();
    Some(diffs.into_iter().map(|d| mean_b - mean_a + t_over_z * d).collect())
}

/// One run's difference from the baseline for a metric.
fn difference(baseline: f64, value: f64, metric: Metric, tested: &Tested) -> Difference {
    let diff = value - baseline;
    let result = match metric {
        Metric::Throughput => Some(tested.throughput),
        Metric::ErrorRate => Some(tested.error_rate),
        Metric::P50 => Some(tested.percentiles[0]),
        Metric::P95 => Some(tested.percentiles[1]),
        Metric::P99 => Some(tested.percentiles[2]),
        Metric::P999 => Some(tested.percentiles[3]),
        Metric::Max => None,
    };
    let (interval, significance) = match result {
        None => (None, Significance::NotTested),
        Some(None) => (None, Significance::NotEnoughData),
        Some(Some((centre, (lo, hi)))) => {
            // The bootstrap's interval, moved so that the resampled differences' mean falls
            // on the difference of the stored values: a moving-block resample is not centred
            // on the series' own figure (its first and last seconds are drawn less often),
            // and the stored summary is the figure that is shown.
            let shift = diff - centre;
            let (lo, hi) = (lo + shift, hi + shift);
            let significant = lo > 0.0 || hi < 0.0;
            (
                Some((lo, hi)),
                if significant { Significance::Significant } else { Significance::NotSignificant },
            )
        }
    };
    let better =
        (significance == Significance::Significant).then(|| (diff > 0.0) == metric.higher_is_better());
    Difference {
        baseline,
        value,
        diff,
        ratio: (baseline != 0.0).then(|| value / baseline),
        interval,
        significance,
        better,
    }
}

/// The paragraph that says how the comparison was made.
fn method(options: &CompareOptions, block_lengths: &BTreeSet<usize>) -> String {
    let blocks = match (block_lengths.first(), block_lengths.last()) {
        (Some(a), Some(b)) if a == b => format!("here {a} seconds"),
        (Some(a), Some(b)) => format!("here {a} to {b} seconds"),
        _ => "no run had enough seconds to resample".to_string(),
    };
    format!(
        "Values are the runs' stored summaries of the measurement window; each later run is compared \
         with the first. Intervals come from a circular moving-block bootstrap over each run's measured \
         seconds (the workers' snapshots of each second added up): {resamples} resamples, each run \
         resampled on its own in blocks of consecutive seconds (wrapping around the end) whose length is \
         the larger of the cube root of the number of seconds n (rounded up) and \
         (3n/2)^(1/3)·(2ρ/(1−ρ²))^(2/3), ρ being the largest lag-1 autocorrelation (bias-corrected, \
         clamped to [0, {max_rho}]) of the run's operations per second, error fraction per second and \
         mean response time per second, at most n/2 ({blocks}). Throughput compares the mean of the \
         per-second rates; the error rate, failed over completed operations of the resampled seconds; \
         p50, p95, p99 and p99.9 are read from the resampled seconds' histograms merged on a shared \
         log-scale grid of {step} % buckets (interpolated within a bucket). Each run's resampled values \
         are widened around their mean by √(v/(v_L − L·v/n)), the AR(1) ratio of the long-run variance \
         v = (1+ρ)/(1−ρ) to what blocks of length L keep, and the differences by t/z, the ratio of the \
         Student t quantile (Welch–Satterthwaite degrees of freedom, n/L − 1 per run) to the normal \
         quantile. Each interval is the {lo_q:.1}th to {hi_q:.1}th percentile of the resampled \
         differences ({confidence} % confidence), moved so that their mean falls on the difference of \
         the stored values; a difference is significant when its interval excludes zero. A run with \
         fewer than {min_seconds} measured seconds, or (percentiles) fewer than {min_ops} operations of \
         the kind, is not enough data; the maximum is shown, not tested. Seed {seed}.",
        resamples = options.resamples,
        max_rho = MAX_AUTOCORRELATION,
        step = GRID_STEP * 100.0,
        lo_q = (1.0 - options.confidence) / 2.0 * 100.0,
        hi_q = (1.0 + options.confidence) / 2.0 * 100.0,
        confidence = options.confidence * 100.0,
        min_seconds = MIN_SECONDS,
        min_ops = MIN_OPS,
        seed = options.seed,
    )
}
