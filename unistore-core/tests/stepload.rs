//! FIND_MAX_CONCURRENCY end to end on an in-process target whose latency grows past a
//! capacity of four concurrent operations, so throughput peaks at four connections.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::{ToyTables, ToyTarget};
use unistore_core::runner::PreparedRun;
use unistore_core::template::{KeySource, LoadMode};
use unistore_core::{QueryKind, RunId, RunStatus, Template, WorkerIdentity};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_stops_when_throughput_falls_and_reports_the_best_step() {
    let mut target = ToyTarget::new(Duration::from_millis(4));
    target.capacity = Some(4);
    let target = Arc::new(target);
    let state = target.state.clone();
    let mut mix = BTreeMap::new();
    mix.insert(QueryKind::PointLookup, 100);
    let mut template = Template::new("toy", mix);
    template.values.source = KeySource::Range;
    template.phases.warmup = Duration::ZERO;
    template.load = LoadMode::FindMaxConcurrency {
        start_connections: 2,
        step_connections: 2,
        step_duration: Duration::from_secs(1),
        max_connections: 20,
        qps_drop_pct: 5.0,
        p95_growth_pct: 1000.0,
        max_error_rate: 0.01,
    };
    let run_id = RunId::new();
    let prepared =
        PreparedRun::prepare(template, run_id, WorkerIdentity::solo(), target, &ToyTables).await.unwrap();
    let finished = prepared.connect().await.unwrap().start(None).await.finish(|_| {}).await;
    let s = finished.summary;
    let steps: Vec<u32> = s.steps.iter().map(|s| s.connections).collect();
    // 2 and 4 connections: throughput doubles; 6: operations queue past the capacity and
    // throughput falls by a third, so the search stops there.
    assert_eq!(steps, vec![2, 4, 6], "{:?}", s.steps);
    let best = s.best_step.clone().unwrap();
    assert_eq!(best.connections, 4);
    assert_eq!(s.connections, 4);
    assert!(s.steps[1].qps > s.steps[0].qps * 1.6, "{:?}", s.steps);
    assert!(s.steps[2].qps < best.qps * 0.95, "{:?}", s.steps);
    assert_eq!(s.status, RunStatus::Completed);
    assert!(s.reason.as_deref().unwrap().contains("below the best"), "{:?}", s.reason);
    assert_eq!(s.mode, "FIND_MAX_CONCURRENCY");
    assert_eq!(s.completed_ops_all_phases, state.executed.load(Ordering::SeqCst));
    assert!(
        s.duration_s > 2.9 && s.duration_s < 3.6,
        "the search measured its three steps: {}",
        s.duration_s
    );
}
