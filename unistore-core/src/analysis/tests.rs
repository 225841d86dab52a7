//! The statistics on known data: synthetic runs whose per-second throughput is an AR(1)
//! series around a mean and whose response times are lognormal, recorded into real
//! histograms and snapshots as a run would.
//!
//! The seeded trials use 400 resamples (instead of the default 2,000) and 60-second runs at
//! 200 operations per second (100 for the percentile trials), so that 100 trials per property finish in a few seconds in a
//! debug build. For the same reason the throughput trials' snapshots carry no histograms
//! (their percentiles are then "not enough data"), and the percentile trials' histograms are
//! serialized without deflate (`decode_histogram` reads both): compressing thousands of
//! histograms dominates a debug build's time, and changes nothing that is compared.

use std::collections::BTreeMap;

use chrono::Utc;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, StandardNormal};

use super::*;
use crate::error::ErrorKind;
use crate::metrics::{ClientInfo, KindRecorder, MetricSnapshot, RunSummary};
use crate::model::{QueryKind, RunId, RunPhase, RunStatus, TableType};
use crate::sink::RunRecord;
use crate::template::Template;

const TRIALS: u64 = 100;
const TEST_RESAMPLES: usize = 400;

/// How a synthetic run behaves.
#[derive(Debug, Clone)]
struct Spec {
    seconds: usize,
    /// Mean successful operations per second.
    qps: f64,
    /// Standard deviation of a second's rate, relative to the mean (stationary).
    noise: f64,
    /// Lag-1 autocorrelation of the per-second rates.
    phi: f64,
    /// Median response time, microseconds.
    median_us: f64,
    /// Spread of the lognormal response times.
    sigma: f64,
    /// Probability that an operation fails.
    error_probability: f64,
    /// Kinds run (operations alternate between them).
    kinds: Vec<QueryKind>,
    /// Whether snapshots carry per-kind figures (the summary always does).
    per_kind_snapshots: bool,
    /// Whether snapshots carry histograms.
    histograms: bool,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            seconds: 60,
            qps: 200.0,
            noise: 0.03,
            phi: 0.5,
            median_us: 500.0,
            sigma: 0.5,
            error_probability: 0.0,
            kinds: vec![QueryKind::PointLookup],
            per_kind_snapshots: false,
            histograms: true,
        }
    }
}

fn record(run_id: RunId, table: &str, kinds: &[QueryKind]) -> RunRecord {
    let now = Utc::now();
    let mix: BTreeMap<QueryKind, u32> = kinds.iter().map(|k| (*k, 100 / kinds.len() as u32)).collect();
    RunRecord {
        run_id,
        worker_id: None,
        template_id: "synthetic".into(),
        template_version: Some(1),
        template: Template::new(table, mix),
        target: "postgres://bench@db/app".into(),
        target_kind: "postgres".into(),
        table: table.into(),
        table_type: TableType::Postgres,
        seed: 1,
        started_at: now,
        planned_end_at: now,
    }
}

/// A run made as the engine would make it: one worker, one snapshot a second (two seconds of
/// warmup first, excluded from everything), and a summary of the measurement window.
fn synthetic_run(spec: &Spec, rng: &mut SmallRng) -> RunData {
    if !spec.histograms {
        return counted_run(spec, rng);
    }
    let run_id = RunId(uuid::Uuid::from_u128(rng.gen()));
    let rec = record(run_id, "public.accounts", &spec.kinds);
    let latency = LogNormal::new(spec.median_us.ln(), spec.sigma).expect("lognormal");
    let mut total = KindRecorder::default();
    let mut by_kind: BTreeMap<QueryKind, KindRecorder> =
        spec.kinds.iter().map(|k| (*k, KindRecorder::default())).collect();
    let mut snapshots = Vec::new();
    let innovation = spec.noise * spec.qps * (1.0 - spec.phi * spec.phi).sqrt();
    let mut deviation = spec.noise * spec.qps * rng.sample::<f64, _>(StandardNormal);
    let warmup = 2;
    for t in 0..warmup + spec.seconds {
        deviation = spec.phi * deviation + innovation * rng.sample::<f64, _>(StandardNormal);
        let ops = (spec.qps + deviation).round().max(0.0) as u64;
        let mut second: BTreeMap<QueryKind, KindRecorder> =
            spec.kinds.iter().map(|k| (*k, KindRecorder::default())).collect();
        for i in 0..ops {
            let kind = spec.kinds[i as usize % spec.kinds.len()];
            let r = second.get_mut(&kind).expect("kind");
            if spec.error_probability > 0.0 && rng.gen_bool(spec.error_probability) {
                r.errors[ErrorKind::Timeout.index()] += 1;
            } else {
                r.response.record_ns((latency.sample(rng) * 1_000.0) as u64);
            }
        }
        let mut second_total = KindRecorder::default();
        for r in second.values() {
            second_total.merge(r);
        }
        let phase = if t < warmup { RunPhase::Warmup } else { RunPhase::Measurement };
        if phase == RunPhase::Measurement {
            total.merge(&second_total);
            for (k, r) in &second {
                by_kind.get_mut(k).expect("kind").merge(r);
            }
        }
        snapshots.push(MetricSnapshot {
            run_id,
            worker_id: "worker-0".into(),
            seq: t as u64 + 1,
            taken_at: Utc::now(),
            // Timer jitter: the interval ends a little after or before the whole second.
            elapsed_s: t as f64 + 1.0 + rng.gen_range(-0.004..0.004),
            interval_s: 1.0,
            phase,
            active_connections: 8,
            target_connections: 8,
            target_qps: None,
            late_starts: 0,
            backlog: 0,
            total: snapshot_stats(&second_total, spec.histograms),
            by_kind: if spec.per_kind_snapshots {
                second.iter().map(|(k, r)| (*k, snapshot_stats(r, spec.histograms))).collect()
            } else {
                BTreeMap::new()
            },
        });
    }
    let window = spec.seconds as f64;
    let mut summary = RunSummary::running(&rec);
    summary.status = RunStatus::Completed;
    summary.duration_s = window;
    summary.warmup_s = warmup as f64;
    summary.total = total.stats(window, true).expect("stats");
    summary.by_kind = by_kind.iter().map(|(k, r)| (*k, r.stats(window, true).expect("stats"))).collect();
    summary.completed_ops_all_phases = summary.total.ops;
    summary.client =
        Some(ClientInfo { hosts: vec!["bench-1".into()], workers: 1, threads: 4, version: "0.1.0".into() });
    RunData { summary, record: Some(rec), snapshots }
}

/// A run whose snapshots hold counts only (no latencies, no histograms), for the throughput
/// trials: recording thousands of latencies per trial is what a debug build is slow at.
fn counted_run(spec: &Spec, rng: &mut SmallRng) -> RunData {
    let run_id = RunId(uuid::Uuid::from_u128(rng.gen()));
    let rec = record(run_id, "public.accounts", &spec.kinds);
    let innovation = spec.noise * spec.qps * (1.0 - spec.phi * spec.phi).sqrt();
    let mut deviation = spec.noise * spec.qps * rng.sample::<f64, _>(StandardNormal);
    let mut snapshots = Vec::new();
    let mut ops_total = 0;
    let warmup = 2;
    for t in 0..warmup + spec.seconds {
        deviation = spec.phi * deviation + innovation * rng.sample::<f64, _>(StandardNormal);
        let ops = (spec.qps + deviation).round().max(0.0) as u64;
        let phase = if t < warmup { RunPhase::Warmup } else { RunPhase::Measurement };
        if phase == RunPhase::Measurement {
            ops_total += ops;
        }
        let stats = crate::metrics::KindStats { ops, qps: ops as f64, ..Default::default() };
        snapshots.push(MetricSnapshot {
            run_id,
            worker_id: "worker-0".into(),
            seq: t as u64 + 1,
            taken_at: Utc::now(),
            elapsed_s: t as f64 + 1.0 + rng.gen_range(-0.004..0.004),
            interval_s: 1.0,
            phase,
            active_connections: 8,
            target_connections: 8,
            target_qps: None,
            late_starts: 0,
            backlog: 0,
            total: stats,
            by_kind: BTreeMap::new(),
        });
    }
    let window = spec.seconds as f64;
    let mut summary = RunSummary::running(&rec);
    summary.status = RunStatus::Completed;
    summary.duration_s = window;
    summary.total =
        crate::metrics::KindStats { ops: ops_total, qps: ops_total as f64 / window, ..Default::default() };
    summary.by_kind = spec.kinds.iter().take(1).map(|k| (*k, summary.total.clone())).collect();
    summary.completed_ops_all_phases = ops_total;
    RunData { summary, record: Some(rec), snapshots }
}

/// A completed 60-second run of counts only, for tests of what surrounds the statistics.
pub(super) fn quick_run(seed: u64) -> RunData {
    counted_run(&Spec::default(), &mut SmallRng::seed_from_u64(seed))
}

/// A second's statistics, with its histogram serialized without deflate (see the module docs).
fn snapshot_stats(r: &KindRecorder, histograms: bool) -> crate::metrics::KindStats {
    use base64::Engine as _;
    use hdrhistogram::serialization::{Serializer as _, V2Serializer};
    let mut stats = r.stats(1.0, false).expect("stats");
    if histograms {
        let mut buf = Vec::new();
        V2Serializer::new().serialize(r.response.histogram(), &mut buf).expect("serialize");
        stats.histogram = Some(base64::engine::general_purpose::STANDARD.encode(buf));
    }
    stats
}

fn options(seed: u64) -> CompareOptions {
    CompareOptions { resamples: TEST_RESAMPLES, seed, ..CompareOptions::default() }
}

fn total(c: &Comparison, metric: Metric) -> &Difference {
    c.row(None, metric).and_then(|r| r.differences[0].as_ref()).expect("a difference")
}

#[test]
fn same_distribution_is_not_significant() {
    let spec = Spec { histograms: false, ..Spec::default() };
    let mut not_significant = 0;
    for trial in 0..TRIALS {
        let mut rng = SmallRng::seed_from_u64(1_000 + trial);
        let runs = [synthetic_run(&spec, &mut rng), synthetic_run(&spec, &mut rng)];
        let c = compare(&runs, &options(trial)).expect("compare");
        let d = total(&c, Metric::Throughput);
        assert_ne!(d.significance, Significance::NotEnoughData);
        if d.significance == Significance::NotSignificant {
            not_significant += 1;
            assert_eq!(d.better, None);
        }
        assert_eq!(total(&c, Metric::P50).significance, Significance::NotEnoughData, "no histograms");
    }
    eprintln!("same distribution: throughput not significant in {not_significant}/{TRIALS}");
    assert!(not_significant >= 94, "not significant in only {not_significant} of {TRIALS} trials");
}

#[test]
fn five_percent_more_throughput_is_significant() {
    let baseline = Spec { histograms: false, ..Spec::default() };
    let faster = Spec { qps: baseline.qps * 1.05, ..baseline.clone() };
    let mut significant = 0;
    for trial in 0..TRIALS {
        let mut rng = SmallRng::seed_from_u64(2_000 + trial);
        let runs = [synthetic_run(&baseline, &mut rng), synthetic_run(&faster, &mut rng)];
        let c = compare(&runs, &options(trial)).expect("compare");
        let d = total(&c, Metric::Throughput);
        if d.significance == Significance::Significant {
            significant += 1;
            assert_eq!(d.better, Some(d.diff > 0.0), "more throughput is better");
        }
    }
    eprintln!("5 % more throughput: significant in {significant}/{TRIALS}");
    assert!(significant >= 90, "significant in only {significant} of {TRIALS} trials");
}

#[test]
fn percentile_intervals_cover_the_true_difference() {
    // Run B's response times are run A's times 1.05: each quantile is 5 % higher, so the
    // true difference of a quantile is 0.05 × the lognormal's quantile.
    let baseline = Spec { qps: 100.0, ..Spec::default() };
    let slower = Spec { median_us: baseline.median_us * 1.05, ..baseline.clone() };
    let metrics = [Metric::P50, Metric::P95, Metric::P99, Metric::P999];
    let normal = |q: f64| {
        // Quantiles of the standard normal at the compared levels.
        match q {
            0.5 => 0.0,
            0.95 => 1.644_853_627,
            0.99 => 2.326_347_874,
            _ => 3.090_232_306,
        }
    };
    let mut covered = [0; 4];
    let mut significant = [0; 4];
    for trial in 0..TRIALS {
        let mut rng = SmallRng::seed_from_u64(3_000 + trial);
        let runs = [synthetic_run(&baseline, &mut rng), synthetic_run(&slower, &mut rng)];
        let c = compare(&runs, &options(trial)).expect("compare");
        for (i, m) in metrics.into_iter().enumerate() {
            let q = m.quantile().expect("a percentile");
            let truth_ms = 0.05 * baseline.median_us * (baseline.sigma * normal(q)).exp() / 1_000.0;
            let d = total(&c, m);
            let (lo, hi) = d.interval.expect("an interval");
            if lo <= truth_ms && truth_ms <= hi {
                covered[i] += 1;
            }
            if d.significance == Significance::Significant {
                significant[i] += 1;
                assert_eq!(d.better, Some(d.diff < 0.0), "lower latency is better");
            }
        }
    }
    eprintln!(
        "5 % slower response times: intervals (p50, p95, p99, p99.9) cover the true difference in \
         {covered:?}/{TRIALS}; significant in {significant:?}/{TRIALS}"
    );
    for (i, m) in metrics.iter().take(3).enumerate() {
        assert!(covered[i] >= 88, "{m:?} covered the true difference in only {} of {TRIALS}", covered[i]);
    }
    assert!(significant[0] >= 90, "a 5 % slower median is found: {significant:?}");
}

#[test]
fn more_errors_is_significant_and_worse() {
    let baseline = Spec { qps: 100.0, ..Spec::default() };
    let failing = Spec { error_probability: 0.02, ..baseline.clone() };
    let mut rng = SmallRng::seed_from_u64(7);
    let runs = [synthetic_run(&baseline, &mut rng), synthetic_run(&failing, &mut rng)];
    let c = compare(&runs, &options(7)).expect("compare");
    let d = total(&c, Metric::ErrorRate);
    assert_eq!(d.baseline, 0.0);
    assert!((d.value - 0.02).abs() < 0.006, "about 2 % failed: {}", d.value);
    assert_eq!(d.significance, Significance::Significant, "{d:?}");
    assert_eq!(d.better, Some(false), "more errors is worse");
    assert_eq!(d.ratio, None, "no ratio to a zero baseline");
    assert!(c.warnings.iter().any(|w| w.contains("failed operations")), "{:?}", c.warnings);
}

#[test]
fn short_runs_are_not_enough_data() {
    let mut rng = SmallRng::seed_from_u64(11);
    let short = Spec { seconds: 5, histograms: true, ..Spec::default() };
    let runs = [synthetic_run(&Spec::default(), &mut rng), synthetic_run(&short, &mut rng)];
    let c = compare(&runs, &options(1)).expect("compare");
    for metric in Metric::ALL {
        let d = total(&c, metric);
        let want = if metric == Metric::Max { Significance::NotTested } else { Significance::NotEnoughData };
        assert_eq!(d.significance, want, "{metric:?}");
        assert_eq!(d.better, None);
        assert!(metric == Metric::Max || d.interval.is_none());
        assert!(d.diff.is_finite(), "the values are still shown");
    }
    assert!(c.method.contains("no run had enough seconds"), "{}", c.method);

    // Long enough, but too few operations for percentiles: throughput is tested, p99 is not.
    let sparse = Spec { qps: 3.0, noise: 0.3, ..Spec::default() };
    let runs = [synthetic_run(&sparse, &mut rng), synthetic_run(&sparse, &mut rng)];
    assert!(runs[0].summary.total.ops < MIN_OPS);
    let c = compare(&runs, &options(1)).expect("compare");
    assert_ne!(total(&c, Metric::Throughput).significance, Significance::NotEnoughData);
    assert_eq!(total(&c, Metric::P99).significance, Significance::NotEnoughData);
}

#[test]
fn fewer_than_two_runs_is_an_error() {
    let mut rng = SmallRng::seed_from_u64(3);
    let run = synthetic_run(&Spec { histograms: false, ..Spec::default() }, &mut rng);
    for runs in [Vec::new(), vec![run]] {
        let e = compare(&runs, &CompareOptions::default()).expect_err("needs two runs");
        assert!(e.to_string().contains("at least two runs"), "{e}");
    }
}

#[test]
fn the_same_seed_gives_the_same_comparison() {
    let mut rng = SmallRng::seed_from_u64(5);
    let spec = Spec {
        per_kind_snapshots: true,
        kinds: vec![QueryKind::PointLookup, QueryKind::Insert],
        ..Spec::default()
    };
    let runs = [synthetic_run(&spec, &mut rng), synthetic_run(&spec, &mut rng)];
    let a = compare(&runs, &options(42)).expect("compare");
    let b = compare(&runs, &options(42)).expect("compare");
    assert_eq!(a, b);
    let c = compare(&runs, &options(43)).expect("compare");
    assert_ne!(
        a.row(None, Metric::Throughput).map(|r| &r.differences),
        c.row(None, Metric::Throughput).map(|r| &r.differences),
        "another seed resamples differently"
    );
}

#[test]
fn rows_show_the_summaries_totals_first_then_each_kind() {
    let mut rng = SmallRng::seed_from_u64(9);
    let one = Spec { per_kind_snapshots: true, ..Spec::default() };
    let two = Spec { kinds: vec![QueryKind::PointLookup, QueryKind::Insert], ..one.clone() };
    let runs = [synthetic_run(&one, &mut rng), synthetic_run(&two, &mut rng)];
    let c = compare(&runs, &options(1)).expect("compare");
    assert_eq!(c.runs, vec![runs[0].summary.run_id, runs[1].summary.run_id]);
    let keys: Vec<(Option<QueryKind>, Metric)> = c.rows.iter().map(|r| (r.kind, r.metric)).collect();
    let want: Vec<(Option<QueryKind>, Metric)> =
        [None, Some(QueryKind::PointLookup), Some(QueryKind::Insert)]
            .into_iter()
            .flat_map(|k| Metric::ALL.map(|m| (k, m)))
            .collect();
    assert_eq!(keys, want);
    let row = c.row(None, Metric::P99).expect("row");
    assert_eq!(
        row.values,
        vec![Some(runs[0].summary.total.latency_ms.p99), Some(runs[1].summary.total.latency_ms.p99)]
    );
    let row = c.row(Some(QueryKind::PointLookup), Metric::Throughput).expect("row");
    assert_eq!(row.values[1], Some(runs[1].summary.by_kind[&QueryKind::PointLookup].qps));
    let d = row.differences[0].as_ref().expect("both ran point lookups");
    assert_ne!(
        d.significance,
        Significance::NotEnoughData,
        "per-kind rows are tested from per-kind snapshots"
    );
    let (lo, hi) = d.interval.expect("interval");
    assert!(lo <= d.diff && d.diff <= hi, "the interval surrounds the shown difference: {d:?}");
    let insert = c.row(Some(QueryKind::Insert), Metric::Throughput).expect("row");
    assert_eq!(insert.values[0], None, "the baseline ran no inserts");
    assert_eq!(insert.differences, vec![None]);
    assert!(c.warnings.iter().any(|w| w.starts_with("different mixes")), "{:?}", c.warnings);
    assert!(c.method.contains("400 resamples") && c.method.contains("95 % confidence"), "{}", c.method);
}

#[test]
fn measured_seconds_merge_the_workers_of_each_second() {
    let mut rng = SmallRng::seed_from_u64(13);
    let spec = Spec { seconds: 12, per_kind_snapshots: true, ..Spec::default() };
    let a = synthetic_run(&spec, &mut rng);
    let b = synthetic_run(&spec, &mut rng);
    // One run of two workers: b's snapshots under another worker id, same seconds.
    let mut run = a.clone();
    run.snapshots.extend(b.snapshots.iter().cloned().map(|mut s| {
        s.worker_id = "worker-1".into();
        s.run_id = a.summary.run_id;
        s
    }));
    run.snapshots.sort_by(|x, y| x.elapsed_s.total_cmp(&y.elapsed_s));
    let series = measured_seconds(&run).expect("series");
    assert_eq!(series.len(), 12, "the two warmup seconds are left out, jitter moves no second");
    assert_eq!(series.keys().next(), Some(&2));
    for (second, stats) in &series {
        let part = |r: &RunData| {
            r.snapshots
                .iter()
                .find(|s| s.phase == RunPhase::Measurement && (s.elapsed_s - 0.5).floor() as u64 == *second)
                .map(|s| s.total.clone())
                .expect("snapshot")
        };
        let (x, y) = (part(&a), part(&b));
        assert_eq!(stats.ops, x.ops + y.ops);
        assert!((stats.qps - (x.ops + y.ops) as f64).abs() < 1e-9);
        let merged =
            crate::metrics::decode_histogram(stats.histogram.as_deref().expect("histogram")).expect("decode");
        assert_eq!(merged.len(), x.ops + y.ops, "histograms merged");
        assert!(stats.latency_ms.max >= x.latency_ms.max.max(y.latency_ms.max) - 1e-9);
    }
    let by_kind = measured_seconds_by_kind(&run).expect("series");
    let lookups = &by_kind[&QueryKind::PointLookup];
    assert_eq!(lookups.keys().collect::<Vec<_>>(), series.keys().collect::<Vec<_>>());
    assert_eq!(lookups.values().map(|s| s.ops).sum::<u64>(), series.values().map(|s| s.ops).sum::<u64>());
}

/// Calibration over many trials, by hand in a release build, e.g.
/// `UNISTORE_CALIBRATION_TRIALS=4000 UNISTORE_CALIBRATION_PHI=0.5 cargo test --release -p
/// unistore-core --lib analysis::tests::calibration -- --ignored --nocapture` (also
/// `_SECONDS`, `_NOISE`, and `_RATIO` for the second run's mean over the first's). Prints how
/// often the throughput difference is not significant and the interval half-widths.
#[test]
#[ignore = "many trials; run by hand in a release build"]
fn calibration() {
    fn env(name: &str, default: f64) -> f64 {
        std::env::var(format!("UNISTORE_CALIBRATION_{name}"))
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
    let base = Spec::default();
    let trials = env("TRIALS", 500.0) as u64;
    let spec = Spec {
        histograms: false,
        phi: env("PHI", base.phi),
        seconds: env("SECONDS", base.seconds as f64) as usize,
        noise: env("NOISE", base.noise),
        ..base
    };
    let other = Spec { qps: spec.qps * env("RATIO", 1.0), ..spec.clone() };
    let mut not_significant = 0;
    let mut half_widths = Vec::new();
    for trial in 0..trials {
        let mut rng = SmallRng::seed_from_u64(10_000 + trial);
        let runs = [synthetic_run(&spec, &mut rng), synthetic_run(&other, &mut rng)];
        let c =
            compare(&runs, &CompareOptions { seed: trial, ..CompareOptions::default() }).expect("compare");
        let d = total(&c, Metric::Throughput);
        if d.significance == Significance::NotSignificant {
            not_significant += 1;
        }
        let (lo, hi) = d.interval.expect("interval");
        half_widths.push((hi - lo) / 2.0);
    }
    half_widths.sort_by(f64::total_cmp);
    let at = |p: f64| half_widths[((half_widths.len() - 1) as f64 * p) as usize];
    eprintln!(
        "{spec:?} vs {:.1} ops/s: not significant in {not_significant}/{trials}; half-width 10/50/90 %: {:.3} {:.3} {:.3}",
        other.qps,
        at(0.1),
        at(0.5),
        at(0.9)
    );
}
