//! `bench --metrics-listen ADDR`: the run's live figures for Prometheus, as OpenMetrics text on
//! `GET /metrics`.
//!
//! The figures come from the same one-second snapshots that the progress lines and the results
//! store get, so the counters are the run's own counts, not a second measurement: once the run
//! has ended, `unistore_operations_total` plus `unistore_errors_total`, summed over their
//! labels, equal the summary's `completed_ops_all_phases`. They count every phase (warmup,
//! measurement, cooldown); `unistore_phase` says which phase the load is in, so a query can
//! take the rate over the measurement only.
//!
//! The response-time histogram is filled from each snapshot's serialized HdrHistogram, one
//! bucket count at a time, rather than re-measured: its `_count` is the operations counter and
//! its `_sum` the exact sum of response times. A bucket's bound is compared with the
//! histogram's recorded value (microseconds, exact to 0.1 %).
//!
//! Several workers (`--workers N`) push their snapshots to this process; each is counted once
//! (by worker and sequence number), and when the run has ended the snapshots that the workers
//! stored but whose push was lost are added from the results store, so the final counters are
//! the run's totals there too.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};
use unistore_core::metrics::{decode_histogram, MetricSnapshot};
use unistore_core::{ErrorKind, QueryKind, RunId, RunPhase};

use crate::signals::Interrupts;

/// The content type of OpenMetrics text, as Prometheus asks for it.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the response-time buckets, in microseconds (100 µs to 60 s): the span from a
/// cached lookup on a local database to a statement that hits a timeout.
const BUCKET_BOUNDS_US: [u64; 18] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ErrorLabels {
    kind: &'static str,
    error_kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RunInfoLabels {
    run_id: String,
    table: String,
    mode: String,
}

/// A histogram whose buckets are added to in bulk from an HdrHistogram (the crate's own
/// histogram takes one observation at a time, which would mean replaying every operation).
#[derive(Debug, Clone, Default)]
struct ResponseTimeHistogram {
    inner: Arc<Mutex<BucketCounts>>,
}

#[derive(Debug, Default)]
struct BucketCounts {
    /// Per bucket (not cumulative); the last is above the highest bound (`+Inf`).
    counts: [u64; BUCKET_BOUNDS_US.len() + 1],
    count: u64,
    sum_ns: u128,
}

impl ResponseTimeHistogram {
    fn add(&self, histogram: &Histogram<u64>, sum_ns: u64) {
        let mut c = self.inner.lock();
        for v in histogram.iter_recorded() {
            let us = histogram.lowest_equivalent(v.value_iterated_to());
            let bucket = BUCKET_BOUNDS_US.partition_point(|bound| *bound < us);
            c.counts[bucket] += v.count_at_value();
        }
        c.count += histogram.len();
        c.sum_ns += u128::from(sum_ns);
    }
}

impl TypedMetric for ResponseTimeHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for ResponseTimeHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let c = self.inner.lock();
        let buckets: Vec<(f64, u64)> = BUCKET_BOUNDS_US
            .iter()
            .map(|us| *us as f64 / 1e6)
            .chain([f64::INFINITY])
            .zip(c.counts.iter().copied())
            .collect();
        encoder.encode_histogram::<NoLabelSet>(c.sum_ns as f64 / 1e9, c.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// What each worker said last; the gauges are their sums.
#[derive(Debug, Default, Clone, Copy)]
struct WorkerGauges {
    active_connections: u32,
    target_connections: u32,
    target_qps: f64,
    backlog: u64,
}

#[derive(Debug, Default)]
struct Tally {
    run_id: Option<RunId>,
    /// (worker, sequence number) of every snapshot counted: a snapshot counts once.
    seen: HashSet<(String, u64)>,
    workers: BTreeMap<String, WorkerGauges>,
}

/// The run's figures as Prometheus metrics.
#[derive(Debug)]
pub struct PrometheusExporter {
    registry: Registry,
    operations: Family<KindLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    rows: Family<KindLabels, Counter>,
    response_time: Family<KindLabels, ResponseTimeHistogram>,
    late_starts: Counter,
    active_connections: Gauge,
    target_connections: Gauge,
    target_rate: Gauge<f64, AtomicU64>,
    backlog: Gauge,
    phase: Family<PhaseLabels, Gauge>,
    run_info: Family<RunInfoLabels, Gauge>,
    tally: Mutex<Tally>,
}

impl Default for PrometheusExporter {
    fn default() -> Self {
        Self::new()
    }
}

impl PrometheusExporter {
    /// An exporter with every family registered and nothing counted yet.
    pub fn new() -> Self {
        let mut e = PrometheusExporter {
            registry: Registry::with_prefix("unistore"),
            operations: Family::default(),
            errors: Family::default(),
            rows: Family::default(),
            response_time: Family::default(),
            late_starts: Counter::default(),
            active_connections: Gauge::default(),
            target_connections: Gauge::default(),
            target_rate: Gauge::default(),
            backlog: Gauge::default(),
            phase: Family::default(),
            run_info: Family::default(),
            tally: Mutex::new(Tally::default()),
        };
        // The registry holds handles that share their values with the fields above.
        let r = &mut e.registry;
        r.register("operations", "Successful operations by query kind, every phase", e.operations.clone());
        r.register("errors", "Failed operations by query kind and error kind, every phase", e.errors.clone());
        r.register("rows", "Rows read or written by successful operations", e.rows.clone());
        r.register_with_unit(
            "response_time",
            "Response time of successful operations (from the intended start in open loop)",
            Unit::Seconds,
            e.response_time.clone(),
        );
        r.register(
            "late_starts",
            "Open loop: operations that could not start on time",
            e.late_starts.clone(),
        );
        r.register(
            "active_connections",
            "Connections open to the database under test",
            e.active_connections.clone(),
        );
        r.register("target_connections", "Connections asked for", e.target_connections.clone());
        r.register(
            "target_rate",
            "Open loop: target operations per second (0 in closed loop)",
            e.target_rate.clone(),
        );
        r.register("backlog", "Open loop: operations due that have not started yet", e.backlog.clone());
        r.register("phase", "1 for the phase the run is in, 0 for the others", e.phase.clone());
        r.register("run_info", "The run being measured (always 1)", e.run_info.clone());
        e.set_phase(RunPhase::Preparing);
        e
    }

    /// Names the run and creates its kinds' series at zero, so that a scrape before the first
    /// operation already shows them (a rate over a series that appears late misses its start).
    pub fn start_run(
        &self,
        run_id: RunId,
        table: &str,
        mode: &str,
        kinds: impl IntoIterator<Item = QueryKind>,
    ) {
        self.tally.lock().run_id = Some(run_id);
        self.run_info
            .get_or_create(&RunInfoLabels {
                run_id: run_id.to_string(),
                table: table.to_string(),
                mode: mode.to_string(),
            })
            .set(1);
        for kind in kinds {
            let labels = KindLabels { kind: kind.as_str() };
            self.operations.get_or_create(&labels).inc_by(0);
            self.rows.get_or_create(&labels).inc_by(0);
            drop(self.response_time.get_or_create(&labels));
            for error_kind in ErrorKind::ALL {
                self.errors
                    .get_or_create(&ErrorLabels { kind: kind.as_str(), error_kind: error_kind.as_str() })
                    .inc_by(0);
            }
        }
    }

    /// Adds one worker's one-second snapshot. A snapshot already counted (same worker and
    /// sequence number) or of another run is ignored.
    pub fn observe(&self, s: &MetricSnapshot) {
        let mut tally = self.tally.lock();
        if tally.run_id.is_some_and(|id| id != s.run_id) || !tally.seen.insert((s.worker_id.clone(), s.seq)) {
            return;
        }
        for (kind, stats) in &s.by_kind {
            let labels = KindLabels { kind: kind.as_str() };
            self.operations.get_or_create(&labels).inc_by(stats.ops);
            self.rows.get_or_create(&labels).inc_by(stats.rows);
            for (error_kind, n) in &stats.errors_by_kind {
                self.errors
                    .get_or_create(&ErrorLabels { kind: kind.as_str(), error_kind: error_kind.as_str() })
                    .inc_by(*n);
            }
            match stats.histogram.as_deref().map(decode_histogram) {
                Some(Ok(h)) => self.response_time.get_or_create(&labels).add(&h, stats.sum_ns),
                Some(Err(e)) => tracing::warn!("metrics: a snapshot's histogram cannot be read: {e}"),
                None => {}
            }
        }
        self.late_starts.inc_by(s.late_starts);
        tally.workers.insert(
            s.worker_id.clone(),
            WorkerGauges {
                active_connections: s.active_connections,
                target_connections: s.target_connections,
                target_qps: s.target_qps.unwrap_or(0.0),
                backlog: s.backlog,
            },
        );
        self.set_gauges(&tally);
        self.set_phase(s.phase);
    }

    /// The load has stopped: no connections, phase `PROCESSING`. The counters keep their final
    /// values for as long as the endpoint serves.
    pub fn finish(&self) {
        let mut tally = self.tally.lock();
        for w in tally.workers.values_mut() {
            w.active_connections = 0;
            w.backlog = 0;
        }
        self.set_gauges(&tally);
        self.set_phase(RunPhase::Processing);
    }

    fn set_gauges(&self, tally: &Tally) {
        let w = tally.workers.values();
        self.active_connections.set(w.clone().map(|g| i64::from(g.active_connections)).sum());
        self.target_connections.set(w.clone().map(|g| i64::from(g.target_connections)).sum());
        self.target_rate.set(w.clone().map(|g| g.target_qps).sum());
        self.backlog.set(w.map(|g| i64::try_from(g.backlog).unwrap_or(i64::MAX)).sum());
    }

    fn set_phase(&self, current: RunPhase) {
        for phase in RunPhase::ALL {
            self.phase.get_or_create(&PhaseLabels { phase: phase.as_str() }).set(i64::from(phase == current));
        }
    }

    /// The metrics as OpenMetrics text.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Listens on `addr` and serves `GET /metrics` from `exporter` until the process exits.
/// Returns the URL to scrape. Fails (before any load starts) when the address cannot be bound.
pub async fn serve(addr: SocketAddr, exporter: Arc<PrometheusExporter>) -> std::io::Result<String> {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let url = format!("http://{}/metrics", listener.local_addr()?);
    async fn metrics(
        axum::extract::State(exporter): axum::extract::State<Arc<PrometheusExporter>>,
    ) -> axum::response::Response {
        match exporter.encode() {
            Ok(text) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response(),
            Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "the metrics could not be encoded").into_response(),
        }
    }
    let app = axum::Router::new().route("/metrics", axum::routing::get(metrics)).with_state(exporter);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("the metrics endpoint stopped: {e}");
        }
    });
    Ok(url)
}

/// `--metrics-listen ADDR`: a new exporter, served on `addr`; prints the URL. The error is one
/// line for the user (bad input: nothing has run).
pub async fn start(addr: SocketAddr) -> Result<Arc<PrometheusExporter>, String> {
    let exporter = Arc::new(PrometheusExporter::new());
    let url = serve(addr, exporter.clone()).await.map_err(|e| {
        format!("--metrics-listen {addr}: cannot listen there ({e}); choose another address or port")
    })?;
    eprintln!("metrics: {url} (OpenMetrics, for Prometheus)");
    Ok(exporter)
}

/// `--metrics-linger`: keeps the process (and so the endpoint, with the final figures) up for
/// `duration` after the run, or until a signal.
pub async fn linger(duration: Duration, interrupts: &Interrupts) {
    if duration.is_zero() || interrupts.first().is_some() {
        return;
    }
    eprintln!("metrics: the final figures are served for {} more", humantime::format_duration(duration));
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = interrupts.wait() => {}
    }
}

/// `--metrics-listen` values: `IP:PORT`, or `HOST:PORT` for a name that resolves (`localhost`).
pub fn parse_listen_address(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match s.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(addr)) => Ok(addr),
        Ok(None) | Err(_) => {
            Err(format!("`{s}` is not a listen address: write IP:PORT, e.g. 127.0.0.1:9464"))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn buckets_take_each_recorded_value_once_at_its_bound() {
        let h = ResponseTimeHistogram::default();
        let mut hdr = unistore_core::metrics::new_histogram();
        for us in [50, 100, 101, 999, 1_000, 70_000_000] {
            hdr.record(us).unwrap();
        }
        h.add(&hdr, 123_000_000);
        let c = h.inner.lock();
        assert_eq!(c.counts[0], 2, "50 µs and 100 µs are within 100 µs");
        assert_eq!(c.counts[1], 1, "101 µs");
        assert_eq!(c.counts[3], 2, "999 µs and 1 ms");
        assert_eq!(c.counts[BUCKET_BOUNDS_US.len()], 1, "70 s is above the last bound");
        assert_eq!(c.count, 6);
        assert_eq!(c.sum_ns, 123_000_000);
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen_address("127.0.0.1:9464").unwrap().port(), 9464);
        assert!(parse_listen_address("localhost:9464").is_ok());
        let e = parse_listen_address("not-an-address").unwrap_err();
        assert!(e.contains("IP:PORT"), "{e}");
        assert!(parse_listen_address("127.0.0.1").is_err());
    }
}
