//! Metrics: latency recorders built on HdrHistogram, interval snapshots, run summaries.
//!
//! Every connection task records into recorders of its own (no shared lock on the hot path);
//! once a second they are merged into an interval snapshot. Snapshots carry the serialized
//! histogram so that snapshots of several workers merge exactly: the percentile of a merged
//! histogram is the run's percentile, whereas the worst worker's percentile (what the original
//! application reported) is not.

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::model::{QueryKind, RunId, RunPhase, RunStatus, TableType};

/// Highest trackable latency in microseconds (one hour); longer operations saturate there
/// in the histogram, while the exact maximum is kept separately.
pub const HISTOGRAM_HIGH_US: u64 = 3_600_000_000;
/// Significant decimal digits kept by the histograms: values are exact to 0.1 %.
pub const HISTOGRAM_SIGFIG: u8 = 3;

/// A new empty latency histogram in microseconds.
///
/// It starts with the smallest range and grows to the largest value recorded (at most
/// [`HISTOGRAM_HIGH_US`]): a histogram sized for an hour up front takes 188 KB, and every
/// connection keeps several, so thousands of connections would cost gigabytes for ranges they
/// never use. A run of sub-millisecond lookups keeps its histograms at 16 KB.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts, so this cannot fail.
    let mut h =
        Histogram::new_with_bounds(1, 2, HISTOGRAM_SIGFIG).expect("constant histogram bounds are valid");
    h.auto(true);
    h
}

/// Serializes a histogram (V2 + deflate, base64): compact and mergeable elsewhere.
pub fn encode_histogram(h: &Histogram<u64>) -> Result<String> {
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .map_err(|e| Error::backend(ErrorKind::Other, format!("cannot serialize histogram: {e:?}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(buf))
}

/// Decodes a histogram written by [`encode_histogram`].
pub fn decode_histogram(s: &str) -> Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| Error::invalid(format!("histogram is not valid base64: {e}")))?;
    let mut h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| Error::invalid(format!("histogram cannot be decoded: {e:?}")))?;
    // Deserialized histograms may have narrower bounds; widen them so merges never fail.
    h.auto(true);
    Ok(h)
}

/// Latency recorder: histogram for percentiles plus the exact sum and maximum.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    histogram: Histogram<u64>,
    sum_ns: u64,
    max_ns: u64,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        LatencyRecorder { histogram: new_histogram(), sum_ns: 0, max_ns: 0 }
    }
}

impl LatencyRecorder {
    /// Records one latency in nanoseconds.
    #[inline]
    pub fn record_ns(&mut self, ns: u64) {
        // `record` grows the histogram as needed (`saturating_record` would clamp to its
        // current range instead); the value is capped at the documented ceiling first.
        let us = (ns / 1_000).min(HISTOGRAM_HIGH_US);
        if self.histogram.record(us).is_err() {
            self.histogram.saturating_record(us);
        }
        self.sum_ns = self.sum_ns.saturating_add(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// Adds everything recorded by `other`.
    pub fn merge(&mut self, other: &LatencyRecorder) {
        // Both use the same bounds, so `add` cannot fail; saturate defensively anyway.
        add_histogram(&mut self.histogram, &other.histogram);
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    /// Clears the recorder, keeping its allocation.
    pub fn reset(&mut self) {
        self.histogram.reset();
        self.sum_ns = 0;
        self.max_ns = 0;
    }

    /// The underlying histogram (microseconds).
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.histogram
    }

    /// Percentile summary in milliseconds.
    pub fn summary(&self) -> LatencySummary {
        let h = &self.histogram;
        if h.is_empty() {
            return LatencySummary::default();
        }
        let max = self.max_ns as f64 / 1_000_000.0;
        // A histogram bucket reports its highest equivalent value, which can lie a hair above
        // the exact maximum; no percentile may exceed the maximum.
        let q = |p: f64| (h.value_at_quantile(p) as f64 / 1_000.0).min(max);
        LatencySummary {
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            p999: q(0.999),
            max,
            mean: self.sum_ns as f64 / h.len() as f64 / 1_000_000.0,
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LatencySummary {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Exact maximum.
    pub max: f64,
    /// Exact mean.
    pub mean: f64,
}

/// What one query kind (or all kinds together) did over a window.
#[derive(Debug, Clone, Default)]
pub struct KindRecorder {
    /// Response time of successful operations (from the intended start in open loop).
    pub response: LatencyRecorder,
    /// Service time (from the actual start), recorded in open loop only.
    pub service: Option<LatencyRecorder>,
    /// Failed operations by error kind.
    pub errors: [u64; ErrorKind::ALL.len()],
    /// Rows read or written by successful operations.
    pub rows: u64,
}

impl KindRecorder {
    /// A recorder, with a service-time histogram when `open_loop`.
    pub fn new(open_loop: bool) -> Self {
        KindRecorder { service: open_loop.then(LatencyRecorder::default), ..Default::default() }
    }

    /// Successful operations.
    pub fn ops(&self) -> u64 {
        self.response.count()
    }

    /// Failed operations.
    pub fn error_count(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Nothing recorded: no operation, successful or failed.
    pub fn is_empty(&self) -> bool {
        self.ops() == 0 && self.error_count() == 0
    }

    /// Adds everything recorded by `other`.
    pub fn merge(&mut self, other: &KindRecorder) {
        self.response.merge(&other.response);
        match (&mut self.service, &other.service) {
            (Some(a), Some(b)) => a.merge(b),
            (None, Some(b)) => self.service = Some(b.clone()),
            _ => {}
        }
        for (a, b) in self.errors.iter_mut().zip(other.errors.iter()) {
            *a += b;
        }
        self.rows += other.rows;
    }

    /// Clears, keeping allocations.
    pub fn reset(&mut self) {
        self.response.reset();
        if let Some(s) = &mut self.service {
            s.reset();
        }
        self.errors = [0; ErrorKind::ALL.len()];
        self.rows = 0;
    }

    /// Statistics over a window of `window_s` seconds, with serialized histograms when
    /// `with_histograms`.
    pub fn stats(&self, window_s: f64, with_histograms: bool) -> Result<KindStats> {
        let ops = self.ops();
        let errors_by_kind: BTreeMap<ErrorKind, u64> = ErrorKind::ALL
            .iter()
            .zip(self.errors.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (*k, *n))
            .collect();
        Ok(KindStats {
            ops,
            errors: self.error_count(),
            errors_by_kind,
            rows: self.rows,
            qps: if window_s > 0.0 { ops as f64 / window_s } else { 0.0 },
            latency_ms: self.response.summary(),
            service_time_ms: self.service.as_ref().map(LatencyRecorder::summary),
            sum_ns: self.response.sum_ns,
            max_ns: self.response.max_ns,
            histogram: if with_histograms { Some(encode_histogram(&self.response.histogram)?) } else { None },
            service_histogram: match (&self.service, with_histograms) {
                (Some(s), true) => Some(encode_histogram(&s.histogram)?),
                _ => None,
            },
        })
    }
}

/// Statistics of one query kind (or of all kinds) over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KindStats {
    /// Successful operations.
    pub ops: u64,
    /// Failed operations.
    pub errors: u64,
    /// Failed operations by error kind.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors_by_kind: BTreeMap<ErrorKind, u64>,
    /// Rows read or written by successful operations.
    #[serde(default)]
    pub rows: u64,
    /// Successful operations per second of the window.
    pub qps: f64,
    /// Response time of successful operations.
    pub latency_ms: LatencySummary,
    /// Service time (open loop only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_time_ms: Option<LatencySummary>,
    /// Exact sum of response times in nanoseconds (for exact means after merging).
    #[serde(default)]
    pub sum_ns: u64,
    /// Exact maximum response time in nanoseconds.
    #[serde(default)]
    pub max_ns: u64,
    /// Serialized response-time histogram (microseconds; V2 + deflate, base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<String>,
    /// Serialized service-time histogram (open loop only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_histogram: Option<String>,
}

impl KindStats {
    /// Error rate: failed over all completed operations.
    pub fn error_rate(&self) -> f64 {
        let all = self.ops + self.errors;
        if all == 0 {
            0.0
        } else {
            self.errors as f64 / all as f64
        }
    }

    /// Merges statistics of the same window from several workers exactly, using their
    /// serialized histograms. `window_s` is the common window.
    pub fn merge_exact(parts: &[&KindStats], window_s: f64) -> Result<KindStats> {
        let mut acc = KindRecorder::default();
        let mut any_service = false;
        for p in parts {
            let Some(encoded) = &p.histogram else {
                return Err(Error::invalid("cannot merge statistics without serialized histograms"));
            };
            let h = decode_histogram(encoded)?;
            add_histogram(&mut acc.response.histogram, &h);
            acc.response.sum_ns = acc.response.sum_ns.saturating_add(p.sum_ns);
            acc.response.max_ns = acc.response.max_ns.max(p.max_ns);
            if let Some(s) = &p.service_histogram {
                let h = decode_histogram(s)?;
                let svc = acc.service.get_or_insert_with(LatencyRecorder::default);
                add_histogram(&mut svc.histogram, &h);
                svc.max_ns = svc.max_ns.max(h.max() * 1_000);
                any_service = true;
            }
            for (k, n) in &p.errors_by_kind {
                acc.errors[k.index()] += n;
            }
            acc.rows += p.rows;
        }
        if !any_service {
            acc.service = None;
        }
        let mut merged = acc.stats(window_s, true)?;
        if let (Some(svc), Some(summary)) = (&acc.service, merged.service_time_ms.as_mut()) {
            // Service-time sums are not carried in snapshots; the histogram mean is the best
            // available estimate.
            summary.mean = svc.histogram.mean() / 1_000.0;
        }
        Ok(merged)
    }
}

/// Adds `from` into `into`, growing `into` as needed.
fn add_histogram(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    if into.add(from).is_err() {
        for v in from.iter_recorded() {
            let value = v.value_iterated_to().min(HISTOGRAM_HIGH_US);
            if into.record_n(value, v.count_at_value()).is_err() {
                into.saturating_record_n(value, v.count_at_value());
            }
        }
    }
}

/// A one-second (or so) interval snapshot of one worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSnapshot {
    /// The run.
    pub run_id: RunId,
    /// The worker.
    pub worker_id: String,
    /// Sequence number within the worker, from 1.
    pub seq: u64,
    /// Wall-clock time at the end of the interval.
    pub taken_at: DateTime<Utc>,
    /// Seconds since the load started, at the end of the interval.
    pub elapsed_s: f64,
    /// Exact length of the interval in seconds.
    pub interval_s: f64,
    /// Phase at the end of the interval.
    pub phase: RunPhase,
    /// Connections open at the end of the interval.
    pub active_connections: u32,
    /// Connections asked for.
    pub target_connections: u32,
    /// Target QPS in open loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_qps: Option<f64>,
    /// Operations in this interval that could not start on time (open loop).
    #[serde(default)]
    pub late_starts: u64,
    /// Open loop: operations due by the end of the interval that had not started yet.
    #[serde(default)]
    pub backlog: u64,
    /// All kinds together.
    pub total: KindStats,
    /// Per query kind.
    pub by_kind: BTreeMap<QueryKind, KindStats>,
}

/// One sampled query execution (`QUERY_EXECUTIONS`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryExecution {
    /// The run.
    pub run_id: RunId,
    /// The worker.
    pub worker_id: String,
    /// Connection index within the worker.
    pub connection: u32,
    /// Query kind.
    pub kind: QueryKind,
    /// Phase the operation completed in.
    pub phase: RunPhase,
    /// Wall-clock start (intended start in open loop).
    pub started_at: DateTime<Utc>,
    /// Response time in microseconds.
    pub response_us: u64,
    /// Service time in microseconds.
    pub service_us: u64,
    /// Rows read or written.
    pub rows: u64,
    /// Whether it succeeded.
    pub ok: bool,
    /// Error kind when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
}

/// SLO verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SloReport {
    /// Whether every threshold held.
    pub passed: bool,
    /// One line per violated threshold.
    pub violations: Vec<String>,
}

/// What a finished run means for the person (or the CI job) that started it. Stored in its
/// own column beside the status, so that history can be filtered by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// The run is still going.
    Pending,
    /// Completed, every threshold held, and an open-loop target was reached.
    Passed,
    /// Completed, but a threshold (SLO) was violated.
    SloFailed,
    /// Completed open loop, but the achieved rate fell short of the target.
    TargetNotReached,
    /// Stopped by a user or a signal before its end.
    Cancelled,
    /// The run failed: nothing measured, too many errors, a panic, a lost worker.
    Failed,
    /// Completed, but its regression gate found it significantly worse than its baseline by
    /// more than the allowance.
    Regressed,
}

impl Verdict {
    /// Stable upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pending => "PENDING",
            Verdict::Passed => "PASSED",
            Verdict::SloFailed => "SLO_FAILED",
            Verdict::TargetNotReached => "TARGET_NOT_REACHED",
            Verdict::Cancelled => "CANCELLED",
            Verdict::Failed => "FAILED",
            Verdict::Regressed => "REGRESSED",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Verdict {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let up = s.trim().to_ascii_uppercase();
        [
            Verdict::Pending,
            Verdict::Passed,
            Verdict::SloFailed,
            Verdict::TargetNotReached,
            Verdict::Cancelled,
            Verdict::Failed,
            Verdict::Regressed,
        ]
        .into_iter()
        .find(|v| v.as_str() == up)
        .ok_or_else(|| Error::invalid(format!("unknown verdict `{s}`")))
    }
}

/// The result of a run (or of one worker's share of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run.
    pub run_id: RunId,
    /// Worker id for a worker's own row; `None` for the run's row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    /// Template name.
    pub template: String,
    /// Backend of the target (`sqlite`, `postgres`, `snowflake`).
    pub target_kind: String,
    /// The table benchmarked.
    pub table: String,
    /// Its type.
    pub table_type: TableType,
    /// Load mode (`CONCURRENCY`, `QPS`, `FIND_MAX_CONCURRENCY`).
    pub mode: String,
    /// Connections at the end of the measurement (best step for `FIND_MAX_CONCURRENCY`).
    pub connections: u32,
    /// Target QPS in open loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_qps: Option<f64>,
    /// Final status.
    pub status: RunStatus,
    /// Why the run ended early, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the load started.
    pub started_at: DateTime<Utc>,
    /// Start of the measurement window.
    pub measurement_started_at: DateTime<Utc>,
    /// End of the measurement window.
    pub measurement_ended_at: DateTime<Utc>,
    /// Warmup length actually run, seconds.
    pub warmup_s: f64,
    /// Measurement window actually measured, seconds. QPS = ops / duration_s everywhere.
    pub duration_s: f64,
    /// All kinds together, measurement window only.
    pub total: KindStats,
    /// Per kind, measurement window only.
    pub by_kind: BTreeMap<QueryKind, KindStats>,
    /// Named custom statements, each on its own (`CUSTOM_SQL:name`); their sum is the
    /// `CUSTOM_SQL` row of `by_kind`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_statement: BTreeMap<String, KindStats>,
    /// Successful operations during warmup (excluded above).
    pub warmup_ops: u64,
    /// Successful operations during cooldown or after the window (excluded above).
    pub cooldown_ops: u64,
    /// Every operation issued that completed, in every phase, successful or not.
    pub completed_ops_all_phases: u64,
    /// Operations still in flight at the stop deadline and abandoned.
    pub abandoned_in_flight: u64,
    /// Open loop: operations that started later than the late-start threshold.
    pub late_starts: u64,
    /// Open loop: largest delay between intended and actual start, ms.
    pub max_start_lag_ms: f64,
    /// Open loop: operations due in the measurement window that were never started in it
    /// (as k6's `dropped_iterations`): the client fell behind the target rate.
    #[serde(default)]
    pub unissued_ops: u64,
    /// Seconds of the measurement window in which the target could not be reached (nothing
    /// succeeded; connections lost or refused), from the one-second snapshots.
    #[serde(default)]
    pub unreachable_s: f64,
    /// Sampled executions dropped because the persistence channel was full.
    pub samples_dropped: u64,
    /// First error message seen per error kind (free of secrets).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_examples: BTreeMap<ErrorKind, String>,
    /// SLO verdict.
    pub slo: SloReport,
    /// What the run means: passed, SLO failed, target not reached, cancelled, failed.
    /// `None` only in summaries stored by versions that did not record it (see
    /// [`RunSummary::verdict`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Open loop: whether the achieved rate reached the target within the template's
    /// tolerance. `None` in closed loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_reached: Option<bool>,
    /// Warnings about the setup that may make the figures mislead (an unindexed key, writes
    /// that fire triggers), as printed before the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Seed used for key generation (rerun with it to repeat the key sequence).
    pub seed: u64,
    /// Stages of a staged run, each with what it measured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageResult>,
    /// Steps of a `FIND_MAX_CONCURRENCY` run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepResult>,
    /// `FIND_MAX_CONCURRENCY`: the best sustainable step (its connections are `connections`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_step: Option<StepResult>,
    /// The server's own figures for the run (`pg_stat_statements` deltas, Snowflake query
    /// history), beside the client-side figures above. Covers every phase, not only the
    /// measurement window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_stats: Option<serde_json::Value>,
    /// The client that measured: hosts, workers, client threads, tool version (a comparison
    /// warns when they differ). `None` in summaries stored by versions that did not record it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientInfo>,
    /// The regression gate's judgement, when the run had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<crate::analysis::GateReport>,
}

/// The client side of a run: where and with what it measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// Host names of the worker processes, sorted, each once.
    pub hosts: Vec<String>,
    /// Worker processes.
    pub workers: u32,
    /// Client threads per worker (the largest, when they differ).
    pub threads: u32,
    /// `unistore-worker` version.
    pub version: String,
}

impl ClientInfo {
    /// This process: its host, one worker, `threads` client threads.
    pub fn this_process(threads: u32) -> Self {
        ClientInfo {
            hosts: vec![crate::orchestrator::join::host_name()],
            workers: 1,
            threads,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// The client of a run made of these workers' parts.
    pub fn merge<'a>(parts: impl IntoIterator<Item = &'a ClientInfo>) -> Option<ClientInfo> {
        let mut merged: Option<ClientInfo> = None;
        for p in parts {
            match merged.as_mut() {
                None => merged = Some(p.clone()),
                Some(m) => {
                    m.hosts.extend(p.hosts.iter().cloned());
                    m.workers += p.workers;
                    m.threads = m.threads.max(p.threads);
                }
            }
        }
        if let Some(m) = merged.as_mut() {
            m.hosts.sort();
            m.hosts.dedup();
        }
        merged
    }
}

impl RunSummary {
    /// The verdict, derived from status and SLO for summaries stored without one.
    pub fn verdict(&self) -> Verdict {
        self.verdict.unwrap_or(match self.status {
            RunStatus::Completed if !self.slo.passed => Verdict::SloFailed,
            RunStatus::Completed => Verdict::Passed,
            RunStatus::Cancelled | RunStatus::Cancelling => Verdict::Cancelled,
            RunStatus::Failed => Verdict::Failed,
            RunStatus::Prepared | RunStatus::Running | RunStatus::Stopping => Verdict::Pending,
        })
    }

    /// The row of a run whose load is starting: status RUNNING, nothing measured yet.
    pub fn running(record: &crate::sink::RunRecord) -> RunSummary {
        RunSummary {
            run_id: record.run_id,
            worker_id: record.worker_id.clone(),
            template: record.template.name.clone(),
            target_kind: record.target_kind.clone(),
            table: record.table.clone(),
            table_type: record.table_type,
            mode: record.template.load.name().to_string(),
            connections: record.template.load.initial_connections(),
            target_qps: record.template.load.target_qps(),
            status: RunStatus::Running,
            reason: None,
            started_at: record.started_at,
            measurement_started_at: record.started_at,
            measurement_ended_at: record.started_at,
            warmup_s: 0.0,
            duration_s: 0.0,
            total: KindStats::default(),
            by_kind: BTreeMap::new(),
            by_statement: BTreeMap::new(),
            warmup_ops: 0,
            cooldown_ops: 0,
            completed_ops_all_phases: 0,
            abandoned_in_flight: 0,
            late_starts: 0,
            max_start_lag_ms: 0.0,
            unissued_ops: 0,
            unreachable_s: 0.0,
            samples_dropped: 0,
            error_examples: BTreeMap::new(),
            slo: SloReport { passed: false, violations: Vec::new() },
            verdict: Some(Verdict::Pending),
            target_reached: None,
            warnings: Vec::new(),
            seed: record.seed,
            stages: Vec::new(),
            steps: Vec::new(),
            best_step: None,
            server_stats: None,
            client: None,
            gate: None,
        }
    }
}

/// One stage of a staged run: its load and what it measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageResult {
    /// Position of the stage, from 0.
    pub index: usize,
    /// Its planned length, seconds.
    pub duration_s: f64,
    /// Connections asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u32>,
    /// Target rate (open loop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_qps: Option<f64>,
    /// All kinds together over the stage (exact merge of its one-second snapshots).
    pub total: KindStats,
}

/// One step of a step-load search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// Connections during the step.
    pub connections: u32,
    /// Successful operations per second.
    pub qps: f64,
    /// p95 response time, ms.
    pub p95_ms: f64,
    /// p99 response time, ms.
    pub p99_ms: f64,
    /// Error rate.
    pub error_rate: f64,
}
