//! Histogram merging is exact: merging serialized interval histograms gives the same
//! percentiles as one histogram fed every value.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use unistore_core::metrics::{decode_histogram, encode_histogram, KindRecorder, KindStats};

#[test]
fn merged_serialized_histograms_equal_one_histogram_of_all_values() {
    let mut rng = SmallRng::seed_from_u64(42);
    let mut a = KindRecorder::default();
    let mut b = KindRecorder::default();
    let mut all = KindRecorder::default();
    for i in 0..50_000u64 {
        // Log-normal-ish spread from microseconds to seconds.
        let ns = (rng.gen::<f64>().powi(4) * 2e9) as u64 + 1_000;
        if i % 3 == 0 {
            a.response.record_ns(ns)
        } else {
            b.response.record_ns(ns)
        }
        all.response.record_ns(ns);
    }
    let sa = a.stats(1.0, true).unwrap();
    let sb = b.stats(1.0, true).unwrap();
    let merged = KindStats::merge_exact(&[&sa, &sb], 1.0).unwrap();
    let reference = all.stats(1.0, true).unwrap();
    assert_eq!(merged.ops, 50_000);
    assert_eq!(merged.latency_ms, reference.latency_ms, "percentiles, exact mean and max agree");
    assert_eq!(merged.qps, reference.qps);
    // Taking the worse worker's percentile (the original's method) is not the same answer.
    let worst_p50 = sa.latency_ms.p50.max(sb.latency_ms.p50);
    assert!(worst_p50 >= reference.latency_ms.p50);
}

#[test]
fn histogram_round_trips_and_percentiles_are_within_precision() {
    let mut r = KindRecorder::default();
    for ms in 1..=1000u64 {
        r.response.record_ns(ms * 1_000_000);
    }
    let s = r.stats(2.0, true).unwrap();
    assert_eq!(s.ops, 1000);
    assert_eq!(s.qps, 500.0);
    // Exact p50 is 500 ms; HdrHistogram with 3 significant digits is within 0.1 %.
    assert!((s.latency_ms.p50 - 500.0).abs() <= 0.5, "p50 {}", s.latency_ms.p50);
    assert!((s.latency_ms.p99 - 990.0).abs() <= 1.0, "p99 {}", s.latency_ms.p99);
    assert_eq!(s.latency_ms.max, 1000.0);
    assert_eq!(s.latency_ms.mean, 500.5);
    let h = decode_histogram(s.histogram.as_ref().unwrap()).unwrap();
    assert_eq!(h.len(), 1000);
    assert_eq!(encode_histogram(&h).unwrap(), s.histogram.unwrap());
}
