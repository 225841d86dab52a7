//! Circular moving-block bootstrap over a run's seconds: the block length, the resampled blocks, and
//! the figures of a resample (mean rate, error rate, latency percentiles) computed from
//! prefix sums, so that a resample costs a few additions per block instead of a pass over
//! every second (or a merge of histograms).

use rand::Rng;

use super::series::SecondFigures;

/// Relative width of a latency bucket of the shared grid (1 %). Values are interpolated
/// within a bucket, so the grid's resolution does not round a percentile to 1 %.
pub(super) const GRID_STEP: f64 = 0.01;

/// Largest lag-1 autocorrelation used by the block-length rule: beyond it the rule's blocks
/// would be most of the series.
pub(super) const MAX_AUTOCORRELATION: f64 = 0.9;

/// The lag-1 autocorrelation of a series (0 for a constant or too short one).
pub(super) fn lag1_autocorrelation(x: &[f64]) -> f64 {
    if x.len() < 3 {
        return 0.0;
    }
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    let var: f64 = x.iter().map(|v| (v - mean).powi(2)).sum();
    if var <= f64::EPSILON * mean.abs().max(1.0) {
        return 0.0;
    }
    let cov: f64 = x.windows(2).map(|w| (w[0] - mean) * (w[1] - mean)).sum();
    cov / var
}

/// The lag-1 autocorrelation of a series with the first-order correction of its small-sample
/// bias (Kendall 1954: the estimate falls short by about (1 + 3ρ) / n), clamped to
/// [0, [`MAX_AUTOCORRELATION`]].
pub(super) fn corrected_autocorrelation(x: &[f64]) -> f64 {
    let rho = lag1_autocorrelation(x);
    let corrected = rho + (1.0 + 3.0 * rho) / x.len().max(1) as f64;
    if rho == 0.0 || !corrected.is_finite() {
        0.0
    } else {
        corrected.clamp(0.0, MAX_AUTOCORRELATION)
    }
}

/// How much to widen a run's resampled values around their mean, for a series of `n`
/// seconds with lag-1 autocorrelation `rho` resampled in blocks of `len`. Blocks keep the
/// correlation of seconds within a block (with weights 1 − k / len) and lose the rest, and
/// measuring each block around the series' own mean takes away another len / n of the
/// long-run variance; so for an AR(1) series the resampled mean's variance is about
/// (σ² / n) · (v_len − len · v / n), with v = (1 + ρ) / (1 − ρ) the long-run factor and
/// v_len = 1 + 2 Σ_{k<len} (1 − k / len) ρ^k, where it should be (σ² / n) · v. The factor is
/// the square root of the ratio (for uncorrelated seconds, √(n / (n − len))).
pub(super) fn widening(rho: f64, len: usize, n: usize) -> f64 {
    let rho = rho.clamp(0.0, MAX_AUTOCORRELATION);
    let long_run = (1.0 + rho) / (1.0 - rho);
    let len = len.max(1);
    let kept: f64 =
        1.0 + 2.0 * (1..len).map(|k| (1.0 - k as f64 / len as f64) * rho.powi(k as i32)).sum::<f64>();
    let reproduced = (kept - len as f64 * long_run / n.max(1) as f64).max(0.25 * kept);
    (long_run / reproduced).sqrt().max(1.0)
}

/// Block length for `n` seconds whose lag-1 autocorrelation is `rho`: the larger of
/// ⌈n^(1/3)⌉ and the rule for a moving-block bootstrap of the mean of an AR(1) series
/// (Hall, Horowitz and Jing 1995; Bühlmann and Künsch 1999):
/// (3n/2)^(1/3) · (2ρ / (1 − ρ²))^(2/3), with ρ clamped to [0, 0.9]; at most n / 2.
pub(super) fn block_length(n: usize, rho: f64) -> usize {
    if n < 2 {
        return 1;
    }
    let rho = if rho.is_finite() { rho.clamp(0.0, MAX_AUTOCORRELATION) } else { 0.0 };
    let nf = n as f64;
    let floor = nf.cbrt().ceil();
    let ar1 = (1.5 * nf).cbrt() * (2.0 * rho / (1.0 - rho * rho)).powf(2.0 / 3.0);
    (floor.max(ar1.round()) as usize).clamp(1, (n / 2).max(1))
}

/// A block of consecutive seconds: (first second's index, length).
pub(super) type Block = (usize, usize);

/// Draws a circular moving-block resample of `n` seconds: ⌈n / len⌉ blocks of `len`
/// consecutive seconds, each starting at any second and wrapping around the end of the series
/// (Politis and Romano 1992), the last one cut so the resample has `n` seconds like the
/// original. Wrapping makes every second equally likely to be drawn: without it the first and
/// last seconds are drawn less often, and the resampled figures are off-centre and too
/// narrow. A wrapped block is written as its two pieces.
pub(super) fn draw_blocks(rng: &mut impl Rng, n: usize, len: usize, out: &mut Vec<Block>) {
    out.clear();
    if n == 0 {
        return;
    }
    let len = len.clamp(1, n);
    let mut left = n;
    while left > 0 {
        let take = len.min(left);
        let start = rng.gen_range(0..n);
        let first = take.min(n - start);
        out.push((start, first));
        if first < take {
            out.push((0, take - first));
        }
        left -= take;
    }
}

/// Prefix sums of a run's per-second counts, for the mean rate and the error rate of a
/// resample.
#[derive(Debug)]
pub(super) struct CountSums {
    rate: Vec<f64>,
    errors: Vec<u64>,
    completed: Vec<u64>,
}

impl CountSums {
    pub(super) fn new(series: &[SecondFigures]) -> Self {
        let mut sums = CountSums {
            rate: Vec::with_capacity(series.len() + 1),
            errors: Vec::with_capacity(series.len() + 1),
            completed: Vec::with_capacity(series.len() + 1),
        };
        let (mut r, mut e, mut c) = (0.0, 0u64, 0u64);
        sums.rate.push(r);
        sums.errors.push(e);
        sums.completed.push(c);
        for s in series {
            r += s.rate;
            e += s.errors;
            c += s.ops + s.errors;
            sums.rate.push(r);
            sums.errors.push(e);
            sums.completed.push(c);
        }
        sums
    }

    /// Mean operations per second of the resampled seconds.
    pub(super) fn mean_rate(&self, blocks: &[Block]) -> f64 {
        let (sum, n) = blocks
            .iter()
            .fold((0.0, 0usize), |(sum, n), &(s, l)| (sum + self.rate[s + l] - self.rate[s], n + l));
        if n == 0 {
            0.0
        } else {
            sum / n as f64
        }
    }

    /// Failed over completed operations of the resampled seconds.
    pub(super) fn error_rate(&self, blocks: &[Block]) -> f64 {
        let (errors, completed) = blocks.iter().fold((0u64, 0u64), |(e, c), &(s, l)| {
            (e + self.errors[s + l] - self.errors[s], c + self.completed[s + l] - self.completed[s])
        });
        if completed == 0 {
            0.0
        } else {
            errors as f64 / completed as f64
        }
    }
}

/// The grid bucket of a latency in microseconds.
pub(super) fn bucket_of(us: u64) -> i32 {
    ((us.max(1) as f64).ln() / GRID_STEP.ln_1p()).floor() as i32
}

/// A run's latencies on a shared log-scale grid: for each second, the cumulative count of
/// each bucket, summed over the seconds before it (a prefix sum in both directions). The
/// count at or below bucket `b` of any block of seconds is then one subtraction, so a
/// percentile of a resample is a binary search over the buckets costing one addition per
/// block and probe.
#[derive(Debug)]
pub(super) struct LatencyGrid {
    /// Bucket number of the grid's first bucket (values below it are counted in it).
    first: i32,
    /// Buckets in the grid.
    width: usize,
    /// `(seconds + 1) × width`: row `i` holds, for each bucket, the operations at or below
    /// it in seconds `0..i`.
    prefix: Vec<u64>,
}

impl LatencyGrid {
    /// The grid of `series` over buckets `first..=last`.
    pub(super) fn new(series: &[SecondFigures], first: i32, last: i32) -> Self {
        let width = usize::try_from(last - first + 1).unwrap_or(1).max(1);
        let mut prefix = vec![0u64; (series.len() + 1) * width];
        let mut row = vec![0u64; width];
        for (i, s) in series.iter().enumerate() {
            row.iter_mut().for_each(|c| *c = 0);
            for &(us, count) in &s.latencies {
                let b = (bucket_of(us) - first).clamp(0, width as i32 - 1) as usize;
                row[b] += count;
            }
            let (before, after) = prefix.split_at_mut((i + 1) * width);
            let previous = &before[i * width..];
            let mut cumulative = 0u64;
            for b in 0..width {
                cumulative += row[b];
                after[b] = previous[b] + cumulative;
            }
        }
        LatencyGrid { first, width, prefix }
    }

    /// Operations at or below bucket `b` in the blocks.
    fn at_or_below(&self, blocks: &[Block], b: usize) -> u64 {
        blocks
            .iter()
            .map(|&(s, l)| self.prefix[(s + l) * self.width + b] - self.prefix[s * self.width + b])
            .sum()
    }

    /// Writes the quantiles `qs` of the blocks' latencies, in milliseconds, into `out`
    /// (NaN when the blocks hold no operation). The quantile is interpolated log-linearly
    /// within its bucket.
    pub(super) fn quantiles(&self, blocks: &[Block], qs: &[f64], out: &mut [f64]) {
        let total = self.at_or_below(blocks, self.width - 1);
        for (q, o) in qs.iter().zip(out.iter_mut()) {
            if total == 0 {
                *o = f64::NAN;
                continue;
            }
            let rank = (q * total as f64).max(f64::MIN_POSITIVE);
            // Smallest bucket whose cumulative count reaches the rank.
            let (mut lo, mut hi) = (0usize, self.width - 1);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if self.at_or_below(blocks, mid) as f64 >= rank {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            let below = if lo == 0 { 0 } else { self.at_or_below(blocks, lo - 1) };
            let inside = self.at_or_below(blocks, lo) - below;
            let fraction =
                if inside == 0 { 1.0 } else { ((rank - below as f64) / inside as f64).clamp(0.0, 1.0) };
            let log_us = (f64::from(self.first) + lo as f64 + fraction) * GRID_STEP.ln_1p();
            *o = log_us.exp() / 1_000.0;
        }
    }
}

/// Buckets of a run's series: the bucket of its 1 % quantile and its largest bucket.
/// Percentiles from p50 up are compared, so the grid may lump everything below a run's 1 %
/// quantile into its first bucket.
pub(super) fn bucket_range(series: &[SecondFigures]) -> Option<(i32, i32)> {
    let mut counts = std::collections::BTreeMap::<i32, u64>::new();
    for s in series {
        for &(us, n) in &s.latencies {
            *counts.entry(bucket_of(us)).or_default() += n;
        }
    }
    let total: u64 = counts.values().sum();
    if total == 0 {
        return None;
    }
    let low_rank = total / 100;
    let mut seen = 0;
    let mut low = None;
    for (&b, &n) in &counts {
        seen += n;
        if seen > low_rank {
            low = Some(b);
            break;
        }
    }
    let high = counts.keys().next_back().copied();
    low.zip(high)
}

/// The bootstrap percentile interval of `samples` at `confidence` (NaNs ignored): the
/// order statistics at (1 − c) / 2 and (1 + c) / 2. `None` without samples.
pub(super) fn percentile_interval(samples: &mut Vec<f64>, confidence: f64) -> Option<(f64, f64)> {
    samples.retain(|v| v.is_finite());
    if samples.is_empty() {
        return None;
    }
    samples.sort_by(f64::total_cmp);
    let alpha = (1.0 - confidence) / 2.0;
    let last = (samples.len() - 1) as f64;
    let lo = (alpha * last).floor() as usize;
    let hi = ((1.0 - alpha) * last).ceil() as usize;
    Some((samples[lo], samples[hi.min(samples.len() - 1)]))
}

/// The quantile of the standard normal distribution at `p` in (0, 1) (Acklam's rational
/// approximation, relative error below 1.2e-9).
pub(super) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.024_25 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.024_25 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// The quantile of Student's t distribution with `df` degrees of freedom (not necessarily
/// whole) at `p`: the Cornish–Fisher expansion around the normal quantile (Abramowitz and
/// Stegun 26.7.5), within 0.5 % from 3 degrees of freedom; below 1 it is taken as 1.
pub(super) fn student_t_quantile(p: f64, df: f64) -> f64 {
    let z = normal_quantile(p);
    let v = df.max(1.0);
    if v == 1.0 {
        // Cauchy: exact.
        return (std::f64::consts::PI * (p - 0.5)).tan();
    }
    let z2 = z * z;
    let g1 = (z2 + 1.0) * z / 4.0;
    let g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0;
    let g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0;
    let g4 = ((((79.0 * z2 + 776.0) * z2 + 1_482.0) * z2 - 1_920.0) * z2 - 945.0) * z / 92_160.0;
    z + g1 / v + g2 / v.powi(2) + g3 / v.powi(3) + g4 / v.powi(4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn block_length_grows_with_autocorrelation() {
        assert_eq!(block_length(60, 0.0), 4, "the floor is the cube root, rounded up");
        assert_eq!(block_length(60, 0.5), 5);
        assert_eq!(block_length(60, 0.9), 20);
        assert_eq!(block_length(600, 0.9), 43);
        assert_eq!(block_length(6, 0.9), 3, "at most half the series");
        assert_eq!(block_length(1, 0.5), 1);
    }

    #[test]
    fn autocorrelation_of_known_series() {
        let alternating: Vec<f64> = (0..100).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        assert!(lag1_autocorrelation(&alternating) < -0.95);
        let trend: Vec<f64> = (0..100).map(f64::from).collect();
        assert!(lag1_autocorrelation(&trend) > 0.95);
        assert_eq!(lag1_autocorrelation(&[3.0; 20]), 0.0);
    }

    #[test]
    fn resamples_have_the_length_of_the_series() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut blocks = Vec::new();
        for (n, len) in [(60, 5), (61, 5), (10, 10), (7, 3)] {
            draw_blocks(&mut rng, n, len, &mut blocks);
            assert_eq!(blocks.iter().map(|b| b.1).sum::<usize>(), n);
            assert!(blocks.iter().all(|&(s, l)| s + l <= n && l > 0));
        }
        // Every second is drawn equally often, the first and last too.
        let mut drawn = [0u32; 20];
        for _ in 0..20_000 {
            draw_blocks(&mut rng, 20, 6, &mut blocks);
            for &(s, l) in &blocks {
                (s..s + l).for_each(|i| drawn[i] += 1);
            }
        }
        let (min, max) = (drawn.iter().min().copied().unwrap_or(0), drawn.iter().max().copied().unwrap_or(0));
        assert!(f64::from(max - min) < 0.05 * f64::from(max), "{drawn:?}");
    }

    #[test]
    fn grid_quantiles_are_within_the_bucket_width() {
        // 1..=10,000 µs, one value each, over 10 seconds.
        let series: Vec<SecondFigures> = (0..10)
            .map(|s| SecondFigures {
                latencies: (1..=1_000).map(|v| (s * 1_000 + v, 1)).collect(),
                ..SecondFigures::default()
            })
            .collect();
        let (first, last) = bucket_range(&series).expect("values");
        let grid = LatencyGrid::new(&series, first, last);
        let mut out = [0.0; 3];
        grid.quantiles(&[(0, 10)], &[0.5, 0.99, 0.999], &mut out);
        for (got, want) in out.iter().zip([5.0, 9.9, 9.99]) {
            assert!((got / want - 1.0).abs() < GRID_STEP, "{got} ms vs {want} ms");
        }
        // One block of the first second: values 1..=1,000 µs.
        grid.quantiles(&[(0, 1)], &[0.5], &mut out[..1]);
        assert!((out[0] / 0.5 - 1.0).abs() < GRID_STEP, "{}", out[0]);
    }

    #[test]
    fn quantiles_of_the_normal_and_t_distributions() {
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-6);
        assert!((normal_quantile(0.5)).abs() < 1e-12);
        assert!((normal_quantile(0.001) + 3.090_232).abs() < 1e-6);
        // Tables: t(0.975) with 1, 4, 10, 30 degrees of freedom.
        for (df, want) in [(1.0, 12.706), (4.0, 2.776), (10.0, 2.228), (30.0, 2.042)] {
            let got = student_t_quantile(0.975, df);
            assert!((got / want - 1.0).abs() < 0.01, "t(0.975, {df}) = {got}, table {want}");
        }
    }

    #[test]
    fn percentile_interval_reads_order_statistics() {
        let mut v: Vec<f64> = (0..=1_000).rev().map(f64::from).collect();
        v.push(f64::NAN);
        assert_eq!(percentile_interval(&mut v, 0.95), Some((25.0, 975.0)));
        assert_eq!(percentile_interval(&mut Vec::new(), 0.95), None);
    }
}
