//! Reading stored results: comparing runs with a statement of how sure the comparison is, and
//! the warnings a person needs before trusting it. No I/O: pure functions over stored
//! summaries and snapshots ([`RunData`]), shared by the CLI (`runs`, `show`, `compare`,
//! `report`, the regression gate) and the controller's pages.
//!
//! Method (also in [`Comparison::method`], printed with every comparison):
//! - **Values** are the runs' stored summaries, so a comparison shows the numbers of the
//!   summary; each later run is compared with the first (the baseline).
//! - **Throughput** is compared on the per-second series of the measurement window (the
//!   workers' snapshots of each second added up, [`measured_seconds`]). Neighbouring seconds
//!   are correlated, so the series are resampled in blocks of consecutive seconds (a circular
//!   moving-block bootstrap, each run on its own), and the interval of the difference of the
//!   mean rates is read from the resampled differences. The block length is the larger of
//!   ⌈n^(1/3)⌉ and the AR(1) rule (3n/2)^(1/3) · (2ρ / (1 − ρ²))^(2/3), ρ being the lag-1
//!   autocorrelation of the run's seconds (bias-corrected).
//! - **Error rate** is compared the same way, on failed over completed operations of the
//!   resampled seconds.
//! - **Latency percentiles** (p50, p95, p99, p99.9) are compared the same way: blocks of
//!   seconds are resampled, their histograms merged (as counts on a shared log-scale grid of
//!   1 % buckets) and the percentile read from the merge.
//! - Blocks lose the correlation between seconds of different blocks, and a variance measured
//!   from a few blocks is itself uncertain; so each run's resampled values are widened by the
//!   AR(1) ratio of the long-run variance to the variance the blocks keep, and the resampled
//!   differences by the ratio of the Student t quantile (Welch–Satterthwaite degrees of
//!   freedom, one per block) to the normal one. Without these, nominal 95 % intervals held
//!   zero in only 87 of 100 comparisons of two 60-second runs of the same AR(1) process
//!   (autocorrelation 0.5); with them, in 95 to 96 % of 4,000.
//! - A difference is **significant** when its interval at the chosen confidence (default
//!   95 %) excludes zero. A run with fewer than [`MIN_SECONDS`] measured seconds, or
//!   (percentiles) fewer than [`MIN_OPS`] operations of the kind, is "not enough data", never
//!   a difference. The maximum is shown, not tested.
//!
//! ```
//! use unistore_core::analysis::{compare, CompareOptions, RunData};
//!
//! fn print(runs: &[RunData]) -> unistore_core::Result<()> {
//!     let comparison = compare(runs, &CompareOptions::default())?;
//!     for w in &comparison.warnings {
//!         println!("warning: {w}");
//!     }
//!     println!("{}", comparison.method);
//!     Ok(())
//! }
//! ```

mod bootstrap;
mod compare;
mod export;
mod series;
#[cfg(test)]
mod tests;
mod warnings;

mod gate;

use std::collections::BTreeMap;

pub use compare::compare;
pub use export::{csv_field, run_listing, same_table, snapshots_csv, SNAPSHOTS_CSV_HEADER};
pub use series::{all_seconds, measured_seconds, measured_seconds_by_kind, SecondPoint};
pub use warnings::{compare_warnings, short_id};

use serde::{Deserialize, Serialize};

use crate::metrics::{MetricSnapshot, RunSummary};
use crate::model::{QueryKind, RunId};
use crate::sink::RunRecord;

pub use gate::{judge_gate, GateReport};

/// Fewest measured seconds a run needs before it is compared.
pub const MIN_SECONDS: usize = 10;
/// Fewest successful operations a run needs before its percentiles are compared.
pub const MIN_OPS: u64 = 200;

/// One stored run, as the analysis reads it.
#[derive(Debug, Clone)]
pub struct RunData {
    /// The run's own summary (`worker_id` `None`).
    pub summary: RunSummary,
    /// How the run was configured, when its row was written before the load.
    pub record: Option<RunRecord>,
    /// Every snapshot of the run (all workers, all phases), in time order.
    pub snapshots: Vec<MetricSnapshot>,
}

/// How to compare.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompareOptions {
    /// Confidence level of the intervals, in (0, 1). Default 0.95.
    pub confidence: f64,
    /// Bootstrap resamples. Default 2,000.
    pub resamples: usize,
    /// Seed of the resampling, so that a comparison can be repeated exactly.
    pub seed: u64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions { confidence: 0.95, resamples: 2_000, seed: 0x5eed }
    }
}

/// A figure that is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Successful operations per second.
    Throughput,
    /// Failed over all completed operations.
    ErrorRate,
    /// Response-time percentiles and maximum, milliseconds.
    P50,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
    /// 99.9th percentile.
    P999,
    /// Largest response time.
    Max,
}

impl Metric {
    /// Every metric, in display order.
    pub const ALL: [Metric; 7] = [
        Metric::Throughput,
        Metric::ErrorRate,
        Metric::P50,
        Metric::P95,
        Metric::P99,
        Metric::P999,
        Metric::Max,
    ];

    /// Short name: "ops/s", "errors", "p50", ...
    pub fn label(self) -> &'static str {
        match self {
            Metric::Throughput => "ops/s",
            Metric::ErrorRate => "error rate",
            Metric::P50 => "p50 ms",
            Metric::P95 => "p95 ms",
            Metric::P99 => "p99 ms",
            Metric::P999 => "p99.9 ms",
            Metric::Max => "max ms",
        }
    }

    /// Whether a larger value is better (throughput) or worse (latency, errors).
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::Throughput)
    }

    /// The quantile of a percentile metric.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Metric::P50 => Some(0.50),
            Metric::P95 => Some(0.95),
            Metric::P99 => Some(0.99),
            Metric::P999 => Some(0.999),
            _ => None,
        }
    }
}

/// Whether a difference is real.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Significance {
    /// The interval of the difference excludes zero.
    Significant,
    /// It includes zero: no difference can be claimed.
    NotSignificant,
    /// A run is too short (or has too few operations) to tell.
    NotEnoughData,
    /// No test for this metric (the maximum: one value, no interval); shown, not judged.
    NotTested,
}

/// One metric of one run against the baseline (the first run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    /// The baseline's value.
    pub baseline: f64,
    /// This run's value.
    pub value: f64,
    /// `value - baseline`.
    pub diff: f64,
    /// `value / baseline` (`None` when the baseline is 0).
    pub ratio: Option<f64>,
    /// Interval of the difference at the chosen confidence (`None` when not tested).
    pub interval: Option<(f64, f64)>,
    /// Whether the difference is real.
    pub significance: Significance,
    /// Whether the change is for the better (`None` when not significant).
    pub better: Option<bool>,
}

/// One row of a comparison: a metric of one kind (or the total) across the runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRow {
    /// `None`: all kinds together.
    pub kind: Option<QueryKind>,
    /// The metric.
    pub metric: Metric,
    /// Each run's value, in the order of [`Comparison::runs`].
    pub values: Vec<Option<f64>>,
    /// Each later run against the first (`differences[i]` is run `i + 1`); `None` when the
    /// run has no value for it (a kind it did not run).
    pub differences: Vec<Option<Difference>>,
}

/// A comparison of two or more runs, the first being the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The runs, baseline first.
    pub runs: Vec<RunId>,
    /// Confidence level used.
    pub confidence: f64,
    /// How the intervals were computed, in one paragraph (printed with the comparison).
    pub method: String,
    /// What a person must know before trusting the comparison (printed first).
    pub warnings: Vec<String>,
    /// Totals first, then per kind in kind order; within each, [`Metric::ALL`] order.
    pub rows: Vec<ComparisonRow>,
}

impl Comparison {
    /// The row of a metric (`kind` `None`: the total).
    pub fn row(&self, kind: Option<QueryKind>, metric: Metric) -> Option<&ComparisonRow> {
        self.rows.iter().find(|r| r.kind == kind && r.metric == metric)
    }
}

/// Per-second series of the measurement window of a run: each second's snapshots of every
/// worker merged (counts added, histograms merged), keyed by the whole second since the load
/// started. Shared by the comparison and the report's charts.
pub type SecondSeries = BTreeMap<u64, crate::metrics::KindStats>;
