//! Conformance checks for [`ResultsSink`] + [`ResultsReader`] and [`ControlStore`].

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration as ChronoDuration, Utc};

use super::now_ms;
use crate::control::ControlStore;
use crate::error::ErrorKind;
use crate::metrics::Verdict;
use crate::metrics::{KindRecorder, MetricSnapshot, QueryExecution, RunSummary, SloReport};
use crate::model::{
    ControlEventKind, EventScope, QueryKind, RunId, RunPhase, RunStatus, RunStatusRecord, TableType,
    WorkerHeartbeat, WorkerState,
};
use crate::sink::{ResultsReader, ResultsSink, RunRecord, StoredTemplate, STALE_RUN_REASON};
use crate::template::{LoadMode, Template};

/// A recorder with real recorded latencies: `n` operations between `base_us` and
/// `base_us + n * 7` µs, plus two constraint errors.
fn recorder(n: u64, base_us: u64) -> KindRecorder {
    let mut r = KindRecorder::new(false);
    for i in 0..n {
        r.response.record_ns((base_us + i * 7) * 1_000 + i % 1_000);
        r.rows += 1;
    }
    r.errors[ErrorKind::Constraint.index()] += 2;
    r
}

pub(super) fn snapshot(run_id: RunId, worker: &str, seq: u64, taken_at: DateTime<Utc>) -> MetricSnapshot {
    let r = recorder(100 * seq, 200 + seq * 50);
    let stats = r.stats(1.0, true).expect("statistics of a recorder");
    MetricSnapshot {
        run_id,
        worker_id: worker.to_string(),
        seq,
        taken_at,
        elapsed_s: seq as f64 + 0.25,
        interval_s: 1.0,
        phase: RunPhase::Measurement,
        active_connections: 4,
        target_connections: 4,
        target_qps: Some(1234.5),
        late_starts: seq,
        backlog: seq * 2,
        total: stats.clone(),
        by_kind: BTreeMap::from([(QueryKind::PointLookup, stats)]),
    }
}

pub(super) fn summary(
    run_id: RunId,
    worker_id: Option<&str>,
    started_at: DateTime<Utc>,
    ops: u64,
) -> RunSummary {
    let point = recorder(ops, 300);
    let range = recorder(ops / 4, 900);
    let mut total = point.clone();
    total.merge(&range);
    let window = 10.0;
    RunSummary {
        run_id,
        worker_id: worker_id.map(str::to_string),
        template: "conformance".into(),
        target_kind: "testkit".into(),
        table: "unistore_conformance".into(),
        table_type: TableType::Postgres,
        mode: "CONCURRENCY".into(),
        connections: 8,
        target_qps: None,
        status: RunStatus::Completed,
        reason: None,
        started_at,
        measurement_started_at: started_at + ChronoDuration::seconds(2),
        measurement_ended_at: started_at + ChronoDuration::seconds(12),
        warmup_s: 2.0,
        duration_s: window,
        total: total.stats(window, true).expect("statistics"),
        by_kind: BTreeMap::from([
            (QueryKind::PointLookup, point.stats(window, false).expect("statistics")),
            (QueryKind::RangeScan, range.stats(window, false).expect("statistics")),
        ]),
        by_statement: BTreeMap::new(),
        warmup_ops: 17,
        cooldown_ops: 3,
        completed_ops_all_phases: total.ops() + 20 + 4,
        abandoned_in_flight: 0,
        late_starts: 0,
        max_start_lag_ms: 0.0,
        unissued_ops: 0,
        unreachable_s: 0.0,
        samples_dropped: 1,
        error_examples: BTreeMap::from([(ErrorKind::Constraint, "duplicate key".to_string())]),
        slo: SloReport { passed: false, violations: vec!["POINT_LOOKUP: p95 9 ms > 5 ms".into()] },
        verdict: Some(Verdict::SloFailed),
        target_reached: Some(true),
        warnings: vec!["key column `id` has no index".into()],
        seed: 42,
        stages: Vec::new(),
        steps: Vec::new(),
        best_step: None,
        server_stats: Some(serde_json::json!({"calls": 42, "note": "round-trips"})),
        client: Some(crate::metrics::ClientInfo {
            hosts: vec!["bench-host-1".into()],
            workers: 1,
            threads: 2,
            version: "0.1.0".into(),
        }),
        gate: None,
    }
}

/// A complete summary with real recorded latencies, for adapters' own store tests.
pub fn sample_summary(run_id: RunId) -> RunSummary {
    summary(run_id, None, now_ms(), 1_000)
}

pub(super) fn record(run_id: RunId, started_at: DateTime<Utc>, planned: ChronoDuration) -> RunRecord {
    let mut template = Template::new("unistore_conformance", BTreeMap::from([(QueryKind::PointLookup, 100)]));
    template.name = "conformance".into();
    template.load = LoadMode::Qps { target_qps: 500.0, connections: 3 };
    RunRecord {
        run_id,
        worker_id: None,
        template_id: "conformance".into(),
        template_version: Some(4),
        template,
        target: "postgres://bench@db.example:5432/app".into(),
        target_kind: "testkit".into(),
        table: "unistore_conformance".into(),
        table_type: TableType::Postgres,
        seed: 7,
        started_at,
        planned_end_at: started_at + planned,
    }
}

/// Checks the run row's life: written as RUNNING before the load, completed by the summary,
/// never reset by a replayed `begin_run`, and marked FAILED when abandoned.
async fn check_run_rows(sink: &dyn ResultsSink, reader: &dyn ResultsReader) {
    let now = now_ms();
    let run = RunId::new();
    let begun = record(run, now, ChronoDuration::seconds(30));
    sink.begin_run(&begun).await.unwrap_or_else(|e| panic!("begin_run failed: {e}"));
    sink.begin_run(&begun).await.unwrap_or_else(|e| panic!("a replayed begin_run failed: {e}"));
    let read = reader.summary(run, None).await.expect("reading a running run").expect("the run's row exists");
    assert_eq!(read.status, RunStatus::Running, "a begun run is RUNNING");
    assert_eq!(read.verdict(), Verdict::Pending);
    assert_eq!(read.template, "conformance");
    assert_eq!(read.target_qps, Some(500.0));
    assert_eq!(read.connections, 3);
    assert_eq!(read.seed, 7);
    let as_begun = reader.run_record(run, None).await.unwrap_or_else(|e| panic!("run_record failed: {e}"));
    assert_eq!(as_begun.as_ref(), Some(&begun), "the run's row must read back as begun");
    let listed = reader.runs(1000).await.expect("listing runs");
    let rows: Vec<_> = listed.iter().filter(|r| r.run_id == run).collect();
    assert_eq!(rows.len(), 1, "begin_run twice must list the run once");
    assert_eq!(rows[0].status, "RUNNING");

    let mut finished = summary(run, None, now, 800);
    finished.status = RunStatus::Completed;
    finished.verdict = Some(Verdict::Passed);
    sink.write_summary(&finished).await.expect("completing the run");
    sink.begin_run(&begun).await.expect("a late replayed begin_run");
    let read = reader.summary(run, None).await.expect("reading").expect("the run's row");
    assert_eq!(read, finished, "begin_run after the summary must not reset the row");
    let linked = reader.run_record(run, None).await.expect("reading the run record").expect("the run's row");
    assert_eq!(
        (linked.template_id.as_str(), linked.template_version, &linked.template, linked.target.as_str()),
        (begun.template_id.as_str(), Some(4), &begun.template, begun.target.as_str()),
        "the summary must keep the template, its version and the target as begun"
    );

    // Abandoned: planned end long past, no snapshot since. Not abandoned: a run still within
    // its plan, and a run past its plan that still sends snapshots.
    let abandoned = RunId::new();
    sink.begin_run(&record(abandoned, now - ChronoDuration::minutes(20), ChronoDuration::minutes(5)))
        .await
        .expect("begin_run");
    let young = RunId::new();
    sink.begin_run(&record(young, now - ChronoDuration::minutes(1), ChronoDuration::minutes(30)))
        .await
        .expect("begin_run");
    let alive = RunId::new();
    sink.begin_run(&record(alive, now - ChronoDuration::minutes(20), ChronoDuration::minutes(5)))
        .await
        .expect("begin_run");
    sink.write_snapshots(&[snapshot(alive, "worker-0", 1, now - ChronoDuration::seconds(10))])
        .await
        .expect("a recent snapshot");
    let failed = sink
        .fail_stale_runs(now, std::time::Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("fail_stale_runs failed: {e}"));
    assert!(failed.contains(&abandoned), "the abandoned run was not marked: {failed:?}");
    assert!(!failed.contains(&young) && !failed.contains(&alive) && !failed.contains(&run), "{failed:?}");
    let read = reader.summary(abandoned, None).await.expect("reading").expect("row");
    assert_eq!(read.status, RunStatus::Failed);
    assert_eq!(read.verdict(), Verdict::Failed);
    assert_eq!(read.reason.as_deref(), Some(STALE_RUN_REASON));
    for id in [young, alive] {
        let read = reader.summary(id, None).await.expect("reading").expect("row");
        assert_eq!(read.status, RunStatus::Running, "run {id} must stay RUNNING");
    }
    let again = sink.fail_stale_runs(now, std::time::Duration::from_secs(120)).await.expect("second sweep");
    assert!(!again.contains(&abandoned), "a failed run is not failed twice: {again:?}");
}

/// Checks templates, snapshots, sampled executions and summaries: what is written reads back
/// equal, replacements never duplicate, and listings are in the documented order.
pub async fn check_results_store(sink: Arc<dyn ResultsSink>, reader: Arc<dyn ResultsReader>) {
    check_run_rows(sink.as_ref(), reader.as_ref()).await;
    super::run_listing::check_run_listing(sink.as_ref(), reader.as_ref()).await;
    super::template_versions::check_template_versions(sink.clone(), reader.clone()).await;
    // Templates: insert, read back, replace (a new version), order, delete.
    let base = now_ms();
    let mix = BTreeMap::from([(QueryKind::PointLookup, 80), (QueryKind::RangeScan, 20)]);
    let mut template = Template::new("unistore_conformance", mix);
    template.name = format!("conformance-{}", RunId::new());
    let first = StoredTemplate {
        template_id: RunId::new().to_string(),
        template: template.clone(),
        version: 1,
        updated_at: base,
    };
    sink.save_template(&first).await.unwrap_or_else(|e| panic!("saving a template failed: {e}"));
    let read = reader
        .template(&first.template_id)
        .await
        .unwrap_or_else(|e| panic!("reading a template failed: {e}"));
    assert_eq!(read.as_ref(), Some(&first), "template did not round-trip");

    let mut changed = first.clone();
    changed.template.name.push_str("-renamed");
    changed.template.allow_writes = true;
    changed.updated_at = base + ChronoDuration::seconds(5);
    changed.version = 2;
    sink.save_template(&changed).await.unwrap_or_else(|e| panic!("replacing a template failed: {e}"));
    let read = reader.template(&changed.template_id).await.expect("reading a template");
    assert_eq!(read.as_ref(), Some(&changed), "a changed template with the same id must become current");

    let second = StoredTemplate {
        template_id: RunId::new().to_string(),
        template: template.clone(),
        version: 1,
        updated_at: base + ChronoDuration::seconds(10),
    };
    sink.save_template(&second).await.expect("saving a second template");
    let all = reader.templates().await.unwrap_or_else(|e| panic!("listing templates failed: {e}"));
    let ids: Vec<&str> = all.iter().map(|t| t.template_id.as_str()).collect();
    let pos = |id: &str| ids.iter().position(|i| *i == id);
    assert_eq!(
        ids.iter().filter(|i| **i == changed.template_id).count(),
        1,
        "a replaced template is listed once"
    );
    match (pos(&second.template_id), pos(&changed.template_id)) {
        (Some(a), Some(b)) => assert!(a < b, "templates must be listed most recently updated first: {ids:?}"),
        other => panic!("saved templates missing from the listing ({other:?}): {ids:?}"),
    }
    assert!(
        reader.delete_template(&changed.template_id).await.expect("deleting a template"),
        "delete of an existing template returned false"
    );
    assert_eq!(
        reader.template(&changed.template_id).await.expect("reading a template"),
        None,
        "deleted template still readable"
    );
    assert!(
        !reader.delete_template(&changed.template_id).await.expect("deleting a template"),
        "deleting twice returned true"
    );
    assert!(reader.delete_template(&second.template_id).await.expect("deleting a template"));

    // Snapshots: written out of order, read back in time (= seq) order.
    let run = RunId::new();
    let snaps: Vec<MetricSnapshot> = (1..=3)
        .map(|seq| snapshot(run, "worker-0", seq, base + ChronoDuration::seconds(seq as i64)))
        .collect();
    sink.write_snapshots(&snaps[1..]).await.unwrap_or_else(|e| panic!("writing snapshots failed: {e}"));
    sink.write_snapshots(&snaps[..1]).await.expect("writing snapshots");
    // A retried batch (a replayed spool) must not duplicate rows.
    sink.write_snapshots(&snaps[1..]).await.expect("rewriting snapshots");
    let read = reader.snapshots(run).await.unwrap_or_else(|e| panic!("reading snapshots failed: {e}"));
    assert_eq!(read.len(), 3, "wrote 3 snapshots (two of them twice), read {}", read.len());
    assert_eq!(read, snaps, "snapshots did not round-trip in seq order");
    assert!(
        reader.snapshots(RunId::new()).await.expect("reading snapshots").is_empty(),
        "snapshots of an unknown run"
    );

    // Sampled executions.
    let executions: Vec<QueryExecution> = (0..5u64)
        .map(|i| QueryExecution {
            run_id: run,
            worker_id: "worker-0".into(),
            connection: (i % 2) as u32,
            kind: if i == 3 { QueryKind::Insert } else { QueryKind::PointLookup },
            phase: if i == 0 { RunPhase::Warmup } else { RunPhase::Measurement },
            started_at: base + ChronoDuration::milliseconds(i as i64 * 10),
            response_us: 100 + i * 13,
            service_us: 90 + i * 11,
            rows: u64::from(i != 3),
            ok: i != 3,
            error_kind: (i == 3).then_some(ErrorKind::Constraint),
        })
        .collect();
    sink.write_query_executions(&executions)
        .await
        .unwrap_or_else(|e| panic!("writing query executions failed: {e}"));
    let read = reader
        .query_executions(run, 100)
        .await
        .unwrap_or_else(|e| panic!("reading query executions failed: {e}"));
    assert_eq!(read, executions, "query executions did not round-trip in time order");
    let limited = reader.query_executions(run, 2).await.expect("reading query executions");
    assert_eq!(limited, executions[..2].to_vec(), "query_executions(limit 2)");

    // Summaries: round trip, replacement, worker rows, listing order.
    let first_run = summary(run, None, base, 1_000);
    sink.write_summary(&first_run).await.unwrap_or_else(|e| panic!("writing a summary failed: {e}"));
    let read = reader.summary(run, None).await.unwrap_or_else(|e| panic!("reading a summary failed: {e}"));
    assert_eq!(read.as_ref(), Some(&first_run), "summary did not round-trip");
    sink.write_summary(&first_run).await.unwrap_or_else(|e| panic!("rewriting a summary failed: {e}"));
    let runs = reader.runs(1000).await.unwrap_or_else(|e| panic!("listing runs failed: {e}"));
    let own_rows = |runs: &[crate::sink::RunListEntry], id: RunId| {
        runs.iter().filter(|r| r.run_id == id && r.worker_id.is_none()).count()
    };
    assert_eq!(own_rows(&runs, run), 1, "a summary written twice must be listed once");
    let entry = runs.iter().find(|r| r.run_id == run && r.worker_id.is_none()).expect("run listed");
    assert_eq!(entry.template_name, first_run.template);
    assert_eq!(entry.table, first_run.table);
    assert_eq!(entry.status, "COMPLETED");
    assert_eq!(entry.started_at, first_run.started_at);
    assert_eq!(entry.ops, first_run.total.ops);
    assert!(
        (entry.qps - first_run.total.qps).abs() < 1e-6,
        "listed qps {} != {}",
        entry.qps,
        first_run.total.qps
    );

    let later = RunId::new();
    let second_run = summary(later, None, base + ChronoDuration::minutes(1), 500);
    sink.write_summary(&second_run).await.expect("writing a second summary");
    let worker_row = summary(run, Some("worker-1"), base, 400);
    sink.write_summary(&worker_row).await.expect("writing a worker summary");
    assert_eq!(
        reader.summary(run, Some("worker-1")).await.expect("reading").as_ref(),
        Some(&worker_row),
        "worker summary"
    );
    assert_eq!(
        reader.summary(run, None).await.expect("reading").as_ref(),
        Some(&first_run),
        "the worker row replaced the run row"
    );
    assert_eq!(
        reader.summary(run, Some("worker-9")).await.expect("reading"),
        None,
        "summary of an unknown worker"
    );
    let runs = reader.runs(1000).await.expect("listing runs");
    assert_eq!(own_rows(&runs, run), 1, "the worker row must not duplicate the run row");
    let own: Vec<RunId> = runs.iter().filter(|r| r.worker_id.is_none()).map(|r| r.run_id).collect();
    match (own.iter().position(|r| *r == later), own.iter().position(|r| *r == run)) {
        (Some(a), Some(b)) => assert!(a < b, "runs must be listed newest first: {own:?}"),
        other => panic!("runs missing from the listing ({other:?})"),
    }
    if let Some(w) = runs.iter().find(|r| r.run_id == run && r.worker_id.is_some()) {
        assert_eq!(w.worker_id.as_deref(), Some("worker-1"), "worker row of the listing");
    }
    let one = reader.runs(1).await.expect("listing runs");
    assert_eq!(one.len(), 1, "runs(1) returned {} rows", one.len());
}

fn beat(run_id: RunId, worker: &str, ops: u64, at: DateTime<Utc>) -> WorkerHeartbeat {
    WorkerHeartbeat {
        run_id,
        worker_id: worker.to_string(),
        state: WorkerState::Running,
        phase: RunPhase::Measurement,
        connections: 4,
        ops,
        errors: ops / 100,
        last_error: (ops > 10).then(|| "timeout".to_string()),
        last_event_seq: ops / 10,
        beat_at: at,
        host: "bench-host".to_string(),
        pid: 4242,
    }
}

/// A run with every field set to a value that tells them apart (created at `created_at`,
/// microsecond timestamps, text that needs quoting).
fn full_run(template_name: &str, status: RunStatus, created_at: DateTime<Utc>) -> RunStatusRecord {
    let mut record = RunStatusRecord::prepared(RunId::new(), template_name, 3);
    record.status = status;
    record.phase = RunPhase::Warmup;
    record.reason = Some("it's \"quoted\"".to_string());
    record.target_connections = 24;
    record.target_qps = Some(1250.5);
    record.last_event_seq = 0;
    record.created_at = created_at;
    record.updated_at = created_at + ChronoDuration::microseconds(1_500_001);
    record.template_json =
        Some(r#"{"name":"bench-é","mix":{"POINT_LOOKUP":100},"note":"it's \"quoted\""}"#.to_string());
    record.results_url = Some("postgres://bench@results.example:5432/bench?schema=unistore".to_string());
    record.load_start_at = Some(created_at + ChronoDuration::microseconds(2_000_003));
    record.controller_beat_at = Some(created_at + ChronoDuration::microseconds(1_000_007));
    record.version = 0;
    record
}

async fn read_run(store: &dyn ControlStore, run: RunId) -> RunStatusRecord {
    store
        .run(run)
        .await
        .unwrap_or_else(|e| panic!("reading run {run} failed: {e}"))
        .unwrap_or_else(|| panic!("run {run} does not exist"))
}

/// Every column round-trips; `replace_run` is a compare-and-set on the version.
async fn check_control_rows(store: &dyn ControlStore, base: DateTime<Utc>) -> RunStatusRecord {
    let record = full_run("conformance", RunStatus::Prepared, base);
    let run = record.run_id;
    store.create_run(&record).await.unwrap_or_else(|e| panic!("creating a run failed: {e}"));
    assert_eq!(read_run(store, run).await, record, "run status did not round-trip");
    match store.create_run(&record).await {
        Ok(()) => panic!("creating run {run} twice succeeded"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::Constraint, "creating a run twice: {e}"),
    }
    assert_eq!(store.run(RunId::new()).await.expect("reading a run"), None, "an unknown run");
    let mut bare = RunStatusRecord::prepared(RunId::new(), "conformance-bare", 1);
    bare.created_at = base;
    bare.updated_at = base;
    store.create_run(&bare).await.expect("creating a run without optional fields");
    assert_eq!(read_run(store, bare.run_id).await, bare, "a run without optional fields");

    // Compare-and-set: every column is replaced when the version matches.
    let mut next = record.clone();
    next.status = RunStatus::Running;
    next.phase = RunPhase::Measurement;
    next.reason = None;
    next.worker_count = 5;
    next.target_connections = 7;
    next.target_qps = None;
    next.last_event_seq = 9;
    next.updated_at = base + ChronoDuration::microseconds(3_000_011);
    next.template_json = Some(r#"{"name":"changed"}"#.to_string());
    next.results_url = None;
    next.load_start_at = None;
    next.controller_beat_at = Some(base + ChronoDuration::microseconds(4_000_013));
    next.version = 1;
    assert!(store.replace_run(&next, 0).await.expect("replace_run"), "replace_run with the current version");
    assert_eq!(read_run(store, run).await, next, "replace_run did not write every column");
    let mut stale = next.clone();
    stale.phase = RunPhase::Cooldown;
    stale.target_connections = 99;
    stale.version = 2;
    assert!(!store.replace_run(&stale, 0).await.expect("replace_run"), "replace_run with a stale version");
    assert_eq!(read_run(store, run).await, next, "a stale replace_run changed the run");
    let mut unknown = next.clone();
    unknown.run_id = RunId::new();
    assert!(!store.replace_run(&unknown, 0).await.expect("replace_run"), "replace_run of an unknown run");
    assert_eq!(store.run(unknown.run_id).await.expect("reading"), None, "replace_run created a run");
    next
}

/// `runs` filters by status and lists newest first, at most `limit`.
async fn check_runs_listing(store: &dyn ControlStore, base: DateTime<Utc>) {
    // Later than every other run of the suite, so that they are the newest of the store.
    let later = base + ChronoDuration::days(1);
    let oldest = full_run("listing-1", RunStatus::Prepared, later);
    let middle = full_run("listing-2", RunStatus::Running, later + ChronoDuration::minutes(1));
    let newest = full_run("listing-3", RunStatus::Failed, later + ChronoDuration::minutes(2));
    // Created out of order: the listing sorts by creation time, not by insertion.
    for r in [&middle, &newest, &oldest] {
        store.create_run(r).await.unwrap_or_else(|e| panic!("creating a run failed: {e}"));
    }
    let all = store.runs(&[], 3).await.unwrap_or_else(|e| panic!("runs failed: {e}"));
    assert_eq!(all, vec![newest.clone(), middle.clone(), oldest.clone()], "runs(&[], 3): newest first");
    let two = store.runs(&[], 2).await.expect("runs");
    assert_eq!(two, vec![newest.clone(), middle.clone()], "runs(&[], 2) keeps the limit");
    let running = store.runs(&[RunStatus::Running], 100).await.expect("runs");
    assert!(running.iter().all(|r| r.status == RunStatus::Running), "runs(RUNNING) returned {running:?}");
    assert_eq!(running.first(), Some(&middle), "the newest RUNNING run first");
    let ended = store.runs(&[RunStatus::Prepared, RunStatus::Failed], 100).await.expect("runs");
    assert!(
        ended.iter().all(|r| matches!(r.status, RunStatus::Prepared | RunStatus::Failed)),
        "runs(PREPARED, FAILED) returned {ended:?}"
    );
    assert_eq!(ended.get(..2), Some(&[newest, oldest][..]), "filtered runs, newest first");
    assert!(store.runs(&[RunStatus::Cancelled], 100).await.expect("runs").is_empty(), "no CANCELLED run");
    assert!(store.runs(&[], 0).await.expect("runs").is_empty(), "runs(&[], 0)");
}

/// The lifecycle through `transition`, `set_phase` and `controller_beat`: each write bumps the
/// version by one; a refusal changes nothing.
async fn check_lifecycle(store: &dyn ControlStore, mut current: RunStatusRecord) {
    let run = current.run_id;
    for to in [RunStatus::Stopping, RunStatus::Completed] {
        let updated = store
            .transition(run, to, None)
            .await
            .unwrap_or_else(|e| panic!("transition of {run} to {to} failed: {e}"));
        assert_eq!(updated.status, to, "transition returned the wrong status");
        assert_eq!(updated.version, current.version + 1, "a transition bumps the version");
        assert_eq!(
            (&updated.template_name, &updated.template_json, updated.target_connections),
            (&current.template_name, &current.template_json, current.target_connections),
            "transition changed other fields"
        );
        assert_eq!(read_run(store, run).await, updated, "transition returned another row than it wrote");
        current = updated;
    }
    store.set_phase(run, RunPhase::Processing).await.unwrap_or_else(|e| panic!("set_phase failed: {e}"));
    let beat_at = current.updated_at + ChronoDuration::microseconds(5_000_017);
    store.controller_beat(run, beat_at).await.unwrap_or_else(|e| panic!("controller_beat failed: {e}"));
    let before = read_run(store, run).await;
    assert_eq!(before.status, RunStatus::Completed);
    assert_eq!(before.phase, RunPhase::Processing, "set_phase did not persist");
    assert_eq!(before.controller_beat_at, Some(beat_at), "controller_beat did not persist");
    assert_eq!(before.version, current.version + 2, "set_phase and controller_beat bump the version");
    for (to, reason) in [(RunStatus::Running, Some("restart")), (RunStatus::Cancelling, None)] {
        match store.transition(run, to, reason).await {
            Ok(r) => panic!("COMPLETED -> {to} was allowed: {r:?}"),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "disallowed transition: {e}"),
        }
        assert_eq!(read_run(store, run).await, before, "a refused transition changed the run");
    }
    match store.transition(RunId::new(), RunStatus::Running, None).await {
        Ok(r) => panic!("transition of an unknown run succeeded: {r:?}"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "transition of an unknown run: {e}"),
    }
    match store.controller_beat(RunId::new(), beat_at).await {
        Ok(()) => panic!("controller_beat of an unknown run succeeded"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "controller_beat of an unknown run: {e}"),
    }
    let cancelled = RunStatusRecord::prepared(RunId::new(), "conformance", 1);
    store.create_run(&cancelled).await.expect("creating a run");
    let r = store
        .transition(cancelled.run_id, RunStatus::Cancelling, Some("user request"))
        .await
        .expect("cancelling");
    assert_eq!(r.reason.as_deref(), Some("user request"), "the cancellation reason was not kept");
    let r = store.transition(cancelled.run_id, RunStatus::Cancelled, None).await.expect("cancelled");
    assert_eq!(r.reason.as_deref(), Some("user request"), "a transition without a reason keeps the reason");
}

/// What `append_event` does to the run's row, event by event, and that events read back equal.
async fn check_event_application(store: &dyn ControlStore, base: DateTime<Utc>) {
    let mut record = RunStatusRecord::prepared(RunId::new(), "conformance-apply", 2);
    record.created_at = base;
    record.updated_at = base;
    record.target_connections = 4;
    let run = record.run_id;
    store.create_run(&record).await.expect("creating a run");
    let start_at = base + ChronoDuration::microseconds(10_000_019);
    let steps: Vec<(EventScope, ControlEventKind)> = vec![
        (EventScope::Run, ControlEventKind::Start { load_start_at: Some(start_at) }),
        (EventScope::Run, ControlEventKind::SetPhase { phase: RunPhase::Measurement }),
        (EventScope::Run, ControlEventKind::SetWorkerTarget { connections: 12, target_qps: Some(500.0) }),
        (
            EventScope::Worker("worker-0".into()),
            ControlEventKind::SetWorkerTarget { connections: 3, target_qps: None },
        ),
        (
            EventScope::WorkerGroup("group-a".into()),
            ControlEventKind::SetWorkerTarget { connections: 2, target_qps: Some(1.0) },
        ),
        (EventScope::Run, ControlEventKind::Start { load_start_at: None }),
        (EventScope::Run, ControlEventKind::Stop { reason: Some("done".into()) }),
        (EventScope::Run, ControlEventKind::SetWorkerTarget { connections: 6, target_qps: None }),
    ];
    let mut expected = read_run(store, run).await;
    let mut appended = Vec::new();
    for (i, (scope, kind)) in steps.into_iter().enumerate() {
        let seq = i as u64 + 1;
        let event = store
            .append_event(run, scope.clone(), kind.clone())
            .await
            .unwrap_or_else(|e| panic!("appending {kind:?} failed: {e}"));
        assert_eq!((event.run_id, event.seq, &event.scope, &event.kind), (run, seq, &scope, &kind));
        match (&scope, &kind) {
            (_, ControlEventKind::Start { load_start_at: Some(at) }) => expected.load_start_at = Some(*at),
            (_, ControlEventKind::SetPhase { phase }) => expected.phase = *phase,
            (EventScope::Run, ControlEventKind::SetWorkerTarget { connections, target_qps }) => {
                expected.target_connections = *connections;
                expected.target_qps = *target_qps;
            }
            _ => {}
        }
        expected.last_event_seq = seq;
        expected.version += 1;
        let actual = read_run(store, run).await;
        expected.updated_at = actual.updated_at;
        assert_eq!(actual, expected, "the run after appending {kind:?} to {scope:?}");
        appended.push(event);
    }
    let read = store.events_since(run, 0).await.expect("events_since");
    assert_eq!(read, appended, "events did not round-trip (scope, kind and created_at)");
    let final_run = read_run(store, run).await;
    assert_eq!(final_run.load_start_at, Some(start_at), "START without an instant keeps the run's");
    assert_eq!((final_run.target_connections, final_run.target_qps), (6, None), "the last run-scoped target");
    assert_eq!(final_run.phase, RunPhase::Measurement, "SET_PHASE");

    // The primary key refuses a second event with the same number.
    match store.insert_event(&appended[0]).await {
        Ok(()) => panic!("inserting event 1 of run {run} twice succeeded"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::Constraint, "a duplicate event: {e}"),
    }
    assert_eq!(
        store.events_since(run, 0).await.expect("events_since"),
        appended,
        "a refused insert changed the events"
    );
    match store
        .append_event(RunId::new(), EventScope::Run, ControlEventKind::Start { load_start_at: None })
        .await
    {
        Ok(e) => panic!("appending to an unknown run succeeded: {e:?}"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "appending to an unknown run: {e}"),
    }
}

/// 8 concurrent appenders, 25 events each: every number 1..=200 once.
async fn check_concurrent_appends(store: Arc<dyn ControlStore>, base: DateTime<Utc>) -> RunId {
    let mut events_run = RunStatusRecord::prepared(RunId::new(), "conformance-events", 2);
    events_run.created_at = base;
    events_run.updated_at = base;
    let erun = events_run.run_id;
    store.create_run(&events_run).await.expect("creating a run");
    let mut tasks = Vec::new();
    for t in 0..8u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::with_capacity(25);
            for i in 0..25u32 {
                let (scope, kind) = match i % 3 {
                    0 => (
                        EventScope::Worker(format!("worker-{t}")),
                        ControlEventKind::SetPhase { phase: RunPhase::Warmup },
                    ),
                    1 => (
                        EventScope::WorkerGroup("group-a".into()),
                        ControlEventKind::Start { load_start_at: None },
                    ),
                    _ => (EventScope::Run, ControlEventKind::Stop { reason: Some(format!("t{t}-{i}")) }),
                };
                let event = store
                    .append_event(erun, scope.clone(), kind.clone())
                    .await
                    .unwrap_or_else(|e| panic!("append_event failed: {e}"));
                assert_eq!(
                    (event.run_id, &event.scope, &event.kind),
                    (erun, &scope, &kind),
                    "append_event returned another event"
                );
                seqs.push((event.seq, scope, kind));
            }
            seqs
        }));
    }
    let mut appended = Vec::new();
    for task in tasks {
        appended.extend(task.await.expect("an appending task panicked"));
    }
    let mut seqs: Vec<u64> = appended.iter().map(|(s, _, _)| *s).collect();
    seqs.sort_unstable();
    let unique: HashSet<u64> = seqs.iter().copied().collect();
    assert_eq!(unique.len(), 200, "duplicate sequence numbers among 200 concurrent appends");
    assert_eq!(seqs, (1..=200).collect::<Vec<u64>>(), "sequence numbers must be exactly 1..=200");
    let since = store.events_since(erun, 150).await.unwrap_or_else(|e| panic!("events_since failed: {e}"));
    assert_eq!(
        since.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (151..=200).collect::<Vec<u64>>(),
        "events_since(150)"
    );
    let by_seq: BTreeMap<u64, _> = appended.iter().map(|(s, scope, kind)| (*s, (scope, kind))).collect();
    for e in &since {
        assert_eq!(e.run_id, erun);
        assert_eq!(Some(&(&e.scope, &e.kind)), by_seq.get(&e.seq), "event {} read back differently", e.seq);
    }
    let all = store.events_since(erun, 0).await.expect("events_since");
    assert_eq!(all.len(), 200, "events_since(0)");
    let status = read_run(store.as_ref(), erun).await;
    assert_eq!(status.last_event_seq, 200, "last_event_seq after 200 appends");
    assert_eq!(status.version, 200, "one version per append");
    assert!(store.events_since(erun, 200).await.expect("events_since").is_empty(), "events after the last");
    erun
}

/// Heartbeats: upserted per worker, latest values kept, with the worker's state, host and pid.
async fn check_heartbeats(store: &dyn ControlStore, run: RunId, other_run: RunId, base: DateTime<Utc>) {
    let first = beat(run, "worker-0", 5, base);
    let mut latest = beat(run, "worker-0", 50, base + ChronoDuration::microseconds(1_000_001));
    latest.state = WorkerState::Failed;
    latest.last_error = Some("target unreachable: it's \"down\"".to_string());
    latest.host = "host-b.example".to_string();
    latest.pid = u32::MAX;
    let mut other = beat(run, "worker-1", 7, base + ChronoDuration::seconds(1));
    other.state = WorkerState::Ready;
    other.phase = RunPhase::Preparing;
    other.host = String::new();
    other.pid = 1;
    for b in [&first, &latest, &other] {
        store.heartbeat(b).await.unwrap_or_else(|e| panic!("heartbeat failed: {e}"));
    }
    let mut beats = store.heartbeats(run).await.unwrap_or_else(|e| panic!("reading heartbeats failed: {e}"));
    beats.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
    assert_eq!(beats, vec![latest, other], "heartbeats must be one row per worker with the latest values");
    assert!(
        store.heartbeats(other_run).await.expect("reading heartbeats").is_empty(),
        "heartbeats of another run"
    );
    for state in WorkerState::ALL {
        let mut b = beat(run, "worker-states", 1, base);
        b.state = state;
        store.heartbeat(&b).await.expect("heartbeat");
        let read = store.heartbeats(run).await.expect("reading heartbeats");
        assert_eq!(read.iter().find(|r| r.worker_id == "worker-states"), Some(&b), "state {state}");
    }
}

/// Checks the run rows (every field, compare-and-set), the listing, the lifecycle, what events
/// do to a run, event sequencing under concurrency, and heartbeats.
pub async fn check_control_store(store: Arc<dyn ControlStore>) {
    let base = now_ms();
    let run = check_control_rows(store.as_ref(), base).await;
    check_runs_listing(store.as_ref(), base).await;
    let run_id = run.run_id;
    check_lifecycle(store.as_ref(), run).await;
    check_event_application(store.as_ref(), base).await;
    let events_run = check_concurrent_appends(store.clone(), base).await;
    check_heartbeats(store.as_ref(), events_run, run_id, base).await;
}
