//! A run never reports success when it broke, and its results survive a store that fails:
//! retries, the spool, its replay in order, and what the store refuses for good.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use common::{ToyTables, ToyTarget};
use parking_lot::Mutex;
use unistore_core::metrics::{MetricSnapshot, QueryExecution};
use unistore_core::runner::PreparedRun;
use unistore_core::spool::{DurableSink, Spool};
use unistore_core::template::KeySource;
use unistore_core::testkit::sample_summary;
use unistore_core::{
    Error, ErrorKind, QueryKind, Result, ResultsSink, RunId, RunRecord, RunStatus, RunSummary,
    StoredTemplate, Template, Verdict, WorkerIdentity,
};

fn toy_template(seconds: u64) -> Template {
    let mut t = Template::new("toy", BTreeMap::from([(QueryKind::PointLookup, 100)]));
    t.values.source = KeySource::Range;
    t.phases.warmup = Duration::ZERO;
    t.phases.measurement = Duration::from_secs(seconds);
    t
}

/// A solo run of `template` on `target`, prepared.
async fn prepare_toy(template: Template, target: Arc<ToyTarget>) -> PreparedRun {
    PreparedRun::prepare(template, RunId::new(), WorkerIdentity::solo(), target, &ToyTables).await.unwrap()
}

/// A results store in memory that can be taken down, or made to refuse one kind of write.
#[derive(Default)]
struct MemorySink {
    down: AtomicBool,
    fail_next: AtomicUsize,
    refuse_templates: AtomicBool,
    writes: Mutex<Vec<String>>,
    summaries: Mutex<Vec<RunSummary>>,
    /// Saved templates; a save's version is its position, from 1.
    templates: Mutex<Vec<StoredTemplate>>,
    begun: Mutex<Vec<RunRecord>>,
}

impl MemorySink {
    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::backend(ErrorKind::Connect, "connection refused"));
        }
        if self.fail_next.load(Ordering::SeqCst) > 0 {
            self.fail_next.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::backend(ErrorKind::Connect, "server closed the connection"));
        }
        Ok(())
    }
    fn log(&self, what: String) -> Result<()> {
        self.check()?;
        self.writes.lock().push(what);
        Ok(())
    }
}

#[async_trait]
impl ResultsSink for MemorySink {
    async fn save_template_version(&self, t: &StoredTemplate) -> Result<Option<u32>> {
        if self.refuse_templates.load(Ordering::SeqCst) {
            return Err(Error::invalid("template refused"));
        }
        self.log(format!("template {}", t.template_id))?;
        let mut templates = self.templates.lock();
        templates.push(t.clone());
        Ok(Some(u32::try_from(templates.len()).unwrap()))
    }
    async fn write_snapshots(&self, s: &[MetricSnapshot]) -> Result<()> {
        self.log(format!("snapshots {}", s.iter().map(|s| s.seq.to_string()).collect::<Vec<_>>().join(",")))
    }
    async fn write_query_executions(&self, rows: &[QueryExecution]) -> Result<()> {
        self.log(format!("executions {}", rows.len()))
    }
    async fn begin_run(&self, run: &RunRecord) -> Result<()> {
        self.log(format!("begin {}", run.run_id))?;
        self.begun.lock().push(run.clone());
        Ok(())
    }
    async fn write_summary(&self, summary: &RunSummary) -> Result<()> {
        self.log(format!("summary {}", summary.run_id))?;
        self.summaries.lock().push(summary.clone());
        Ok(())
    }
    async fn fail_stale_runs(&self, _now: DateTime<Utc>, _grace: Duration) -> Result<Vec<RunId>> {
        Ok(Vec::new())
    }
}

fn snapshot_batch(run: RunId, seqs: std::ops::RangeInclusive<u64>) -> Vec<MetricSnapshot> {
    let stats = unistore_core::metrics::KindRecorder::default().stats(1.0, true).unwrap();
    seqs.map(|seq| MetricSnapshot {
        run_id: run,
        worker_id: "worker-0".into(),
        seq,
        taken_at: Utc::now(),
        elapsed_s: seq as f64,
        interval_s: 1.0,
        phase: unistore_core::RunPhase::Measurement,
        active_connections: 1,
        target_connections: 1,
        target_qps: None,
        late_starts: 0,
        backlog: 0,
        total: stats.clone(),
        by_kind: BTreeMap::new(),
    })
    .collect()
}

#[tokio::test]
async fn a_panicking_connection_task_fails_the_run_with_the_message() {
    let target = Arc::new(ToyTarget::new(Duration::from_millis(1)));
    target.state.panic_at.store(50, Ordering::SeqCst);
    let sink = Arc::new(MemorySink::default());
    let prepared = prepare_toy(toy_template(3), target.clone()).await;
    let started = std::time::Instant::now();
    let finished = prepared.connect().await.unwrap().start(Some(sink.clone())).await.finish(|_| {}).await;
    let s = &finished.summary;
    assert_eq!(s.status, RunStatus::Failed, "{s:?}");
    assert_eq!(s.verdict(), Verdict::Failed);
    let reason = s.reason.as_deref().unwrap();
    assert!(reason.contains("panicked: boom: injected at operation 50"), "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a failed run stops at once: {:?}",
        started.elapsed()
    );
    // The failure is stored, not only printed.
    assert_eq!(sink.summaries.lock().last().map(|s| s.status), Some(RunStatus::Failed));
    let writes = sink.writes.lock().clone();
    assert_eq!(writes[0], "template unnamed", "the template comes first: {writes:?}");
    assert!(writes[1].starts_with("begin "), "then the run's row: {writes:?}");
}

#[tokio::test]
async fn the_runs_row_is_written_before_the_load_and_the_summary_after() {
    let target = Arc::new(ToyTarget::new(Duration::from_millis(1)));
    let sink = Arc::new(MemorySink::default());
    let prepared = prepare_toy(toy_template(1), target.clone()).await;
    let run = prepared.run_id;
    let ready = prepared.connect().await.unwrap();
    assert_eq!(target.state.executed.load(Ordering::SeqCst), 0, "connecting runs no operation");
    assert!(sink.writes.lock().is_empty(), "connecting writes nothing");
    let finished = ready.start(Some(sink.clone())).await.finish(|_| {}).await;
    assert_eq!(finished.summary.verdict(), Verdict::Passed);
    let writes = sink.writes.lock().clone();
    assert_eq!(writes[..2], ["template unnamed".to_string(), format!("begin {run}")], "{writes:?}");
    assert_eq!(writes.last(), Some(&format!("summary {run}")), "{writes:?}");
    assert_eq!(
        writes.iter().filter(|w| w.starts_with("template")).count(),
        1,
        "the template is saved once, before the run: {writes:?}"
    );
}

/// The server-side window begins before the load: a worker of a multi-worker run learns the
/// shared start instant by polling and writes its row first, and a baseline taken only then
/// (after the load had started) left its window without the first operations, so that no
/// worker's window covered the run (seen as a null `covered_by` in a clean-clone CI run). The
/// baseline is taken once, when the connections open.
#[tokio::test]
async fn the_server_side_baseline_is_taken_when_the_connections_open_before_the_shared_start() {
    let target = Arc::new(ToyTarget::new(Duration::from_millis(1)));
    let prepared = prepare_toy(toy_template(1), target.clone()).await;
    let ready = prepared.connect().await.unwrap();
    assert_eq!(target.state.baselines.lock().len(), 1, "the baseline is taken as the connections open");
    // The run's start instant is set after this worker said it was ready, and the worker
    // learns of it 100 ms late.
    let at = Utc::now() + chrono::Duration::milliseconds(20);
    tokio::time::sleep(Duration::from_millis(120)).await;
    let finished = ready.start_at(None, Some(at)).await.finish(|_| {}).await;
    let s = &finished.summary;
    assert_eq!(s.status, RunStatus::Completed, "{:?}", s.reason);
    assert_eq!(target.state.baselines.lock().len(), 1, "one baseline per run");
    let stats = s.server_stats.as_ref().expect("the toy target's window");
    let from: DateTime<Utc> = stats["from"].as_str().unwrap().parse().unwrap();
    // Every worker's window must begin before any worker's load: before the shared instant.
    assert!(from <= at, "the window begins at {from}, after the run's load started at {at}");
    assert!(from <= s.started_at, "the window begins at {from}, after this load started at {}", s.started_at);
    assert_eq!(stats["calls"].as_u64(), Some(s.completed_ops_all_phases), "{stats}");
}

#[tokio::test]
async fn the_runs_row_names_the_template_version_the_store_gave() {
    let sink = Arc::new(MemorySink::default());
    // An earlier save, so the run's save gets version 2.
    let earlier = StoredTemplate {
        template_id: "unnamed".into(),
        template: toy_template(5),
        version: 0,
        updated_at: Utc::now(),
    };
    sink.save_template(&earlier).await.unwrap();
    let target = Arc::new(ToyTarget::new(Duration::from_millis(1)));
    let template = toy_template(1);
    let prepared = prepare_toy(template.clone(), target).await;
    prepared.connect().await.unwrap().start(Some(sink.clone())).await.finish(|_| {}).await;
    let saved = sink.templates.lock().clone();
    assert_eq!(saved.len(), 2, "one save per run");
    assert_eq!((saved[1].template_id.as_str(), &saved[1].template), ("unnamed", &template));
    let begun = sink.begun.lock().clone();
    assert_eq!(begun.len(), 1);
    assert_eq!(begun[0].template_version, Some(2), "the run names the version its save got");
    assert_eq!(begun[0].template, template);
}

#[tokio::test]
async fn a_spooled_template_leaves_the_run_without_a_version() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(MemorySink::default());
    inner.down.store(true, Ordering::SeqCst);
    let durable = Arc::new(DurableSink::new(inner.clone(), Some(Spool::new(dir.path(), "memory://"))));
    let target = Arc::new(ToyTarget::new(Duration::from_millis(1)));
    let prepared = prepare_toy(toy_template(1), target).await;
    let run = prepared.run_id;
    let ready = prepared.connect().await.unwrap();
    // Down for the template and the run's row; back before the summary.
    let active = ready.start(Some(durable.clone())).await;
    inner.down.store(false, Ordering::SeqCst);
    let finished = active.finish(|_| {}).await;
    assert!(finished.persistence_warnings.is_empty(), "{:?}", finished.persistence_warnings);
    let writes = inner.writes.lock().clone();
    assert_eq!(
        writes[..2],
        ["template unnamed".to_string(), format!("begin {run}")],
        "replayed in order: {writes:?}"
    );
    let begun = inner.begun.lock().clone();
    assert_eq!(begun.len(), 1);
    assert_eq!(begun[0].template_version, None, "a spooled save had no version when the run began");
    assert_eq!(inner.templates.lock().len(), 1, "the spooled template is stored on replay");
}

#[tokio::test]
async fn a_write_that_fails_briefly_is_retried_not_spooled() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(MemorySink::default());
    inner.fail_next.store(2, Ordering::SeqCst);
    let durable = DurableSink::new(inner.clone(), Some(Spool::new(dir.path(), "memory://")));
    durable.write_summary(&sample_summary(RunId::new())).await.unwrap();
    assert_eq!(durable.retried(), 2);
    assert_eq!(durable.spooled(), 0);
    assert_eq!(inner.summaries.lock().len(), 1);
}

#[tokio::test]
async fn writes_the_store_does_not_take_are_spooled_and_replayed_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(MemorySink::default());
    let durable = DurableSink::new(inner.clone(), Some(Spool::new(dir.path(), "memory://")));
    let run = RunId::new();
    inner.down.store(true, Ordering::SeqCst);
    durable.write_snapshots(&snapshot_batch(run, 1..=5)).await.unwrap();
    durable.write_snapshots(&snapshot_batch(run, 6..=10)).await.unwrap();
    assert_eq!(durable.spooled(), 2);
    assert_eq!(durable.pending(), 2);
    assert!(inner.writes.lock().is_empty());
    // The store is back: the next write replays the spool first, in order.
    inner.down.store(false, Ordering::SeqCst);
    durable.write_snapshots(&snapshot_batch(run, 11..=12)).await.unwrap();
    assert_eq!(
        *inner.writes.lock(),
        vec!["snapshots 1,2,3,4,5", "snapshots 6,7,8,9,10", "snapshots 11,12"],
        "replayed in the order written, before the new write"
    );
    assert_eq!(durable.pending(), 0);
    assert!(!Spool::new(dir.path(), "memory://").path().exists(), "an empty spool is removed");
}

#[tokio::test]
async fn another_process_replays_the_spool_and_refused_writes_are_kept_aside() {
    let dir = tempfile::tempdir().unwrap();
    let down = Arc::new(MemorySink::default());
    down.down.store(true, Ordering::SeqCst);
    let first = DurableSink::new(down.clone(), Some(Spool::new(dir.path(), "memory://a")));
    let run = RunId::new();
    first.write_snapshots(&snapshot_batch(run, 1..=2)).await.unwrap();
    let template = StoredTemplate {
        template_id: "t".into(),
        template: toy_template(1),
        version: 0,
        updated_at: Utc::now(),
    };
    first.save_template(&template).await.unwrap();
    first.write_summary(&sample_summary(run)).await.unwrap();
    assert_eq!(first.pending(), 3);

    // A later command opens the same store: the template is refused for good, the rest lands.
    let store = MemorySink::default();
    store.refuse_templates.store(true, Ordering::SeqCst);
    let spool = Spool::new(dir.path(), "memory://a");
    let report = spool.replay(&store).await.unwrap();
    assert_eq!((report.written, report.remaining, report.rejected), (2, 0, 1), "{report:?}");
    assert_eq!(*store.writes.lock(), vec!["snapshots 1,2".to_string(), format!("summary {run}")]);
    let rejected = std::fs::read_to_string(spool.path().with_extension("rejected.jsonl")).unwrap();
    assert!(rejected.contains("template refused"), "{rejected}");
    assert_eq!(spool.pending(), 0);
    // A different store has a different spool.
    assert_ne!(Spool::new(dir.path(), "memory://b").path(), spool.path());
}

#[tokio::test]
async fn without_a_spool_a_failed_write_is_an_error() {
    let inner = Arc::new(MemorySink::default());
    inner.down.store(true, Ordering::SeqCst);
    let durable = DurableSink::new(inner, None);
    let e = durable.write_summary(&sample_summary(RunId::new())).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect);
}
