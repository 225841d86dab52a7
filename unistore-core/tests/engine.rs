//! Engine behaviour against an in-process target that counts what it sees.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{point_lookup_plan, ToyTarget};
use unistore_core::summary::{summarize, SummaryContext};
use unistore_core::{Engine, EngineConfig, QueryKind, RunId, RunPhase, RunStatus, StopReason, TableType};

fn config(connections: u32, warmup_ms: u64, measure_ms: u64) -> EngineConfig {
    let mut c = EngineConfig::new(RunId::new(), connections, Duration::from_millis(measure_ms));
    c.warmup = Duration::from_millis(warmup_ms);
    c.seed = 7;
    c
}

fn ctx(report_mode: &str) -> SummaryContext {
    SummaryContext {
        run_id: RunId::new(),
        worker_id: None,
        template: "t".into(),
        target_kind: "toy".into(),
        table: "toy".into(),
        table_type: TableType::Sqlite,
        mode: report_mode.into(),
        slo: Default::default(),
        seed: 7,
        status: RunStatus::Completed,
    }
}

/// The engine's counts (all phases, and the phases' sum) equal the toy target's own count.
fn counts_equal_what_the_target_saw(report: &unistore_core::EngineReport, state: &common::ToyState) {
    let seen = state.executed.load(Ordering::SeqCst);
    assert!(seen > 1000, "the toy target is fast; saw only {seen}");
    assert_eq!(report.completed_ops, seen, "engine and target disagree on the operation count");
    let measured: u64 = report.measured.values().map(|r| r.ops()).sum();
    assert_eq!(measured + report.warmup_ops + report.cooldown_ops, seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_counts_equal_what_the_target_saw() {
    let target = Arc::new(ToyTarget::new(Duration::ZERO));
    let state = target.state.clone();
    let handle = Engine::start(target, point_lookup_plan(), config(4, 200, 800)).await.unwrap();
    let report = handle.wait().await.unwrap();
    counts_equal_what_the_target_saw(&report, &state);
    assert_eq!(state.sessions.load(Ordering::SeqCst), 4);
    assert_eq!(report.window, Duration::from_millis(800), "the measurement window is exact");
    assert_eq!(report.abandoned_in_flight, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warmup_operations_are_absent_from_the_summary() {
    // One connection, 10 ms per operation: ~50 operations in each 500 ms phase.
    let mut target = ToyTarget::new(Duration::from_millis(10));
    target.keep_completions = true;
    let target = Arc::new(target);
    let state = target.state.clone();
    let before = Instant::now();
    let report =
        Engine::start(target, point_lookup_plan(), config(1, 500, 500)).await.unwrap().wait().await.unwrap();
    let summary = summarize(&report, &ctx("CONCURRENCY")).unwrap();
    let completions = state.completions.lock().clone();
    let first = *completions.first().unwrap();
    assert!(first >= before);
    assert!(report.warmup_ops >= 35 && report.warmup_ops <= 55, "warmup ops {}", report.warmup_ops);
    assert!(summary.total.ops >= 35 && summary.total.ops <= 55, "measured ops {}", summary.total.ops);
    assert_eq!(summary.total.ops + report.warmup_ops + report.cooldown_ops, completions.len() as u64);
    assert_eq!(summary.duration_s, 0.5);
    assert!((summary.total.qps - summary.total.ops as f64 / 0.5).abs() < 1e-9);
    assert!(summary.warmup_s == 0.5);
    // Every measured latency is about 10 ms: warmup's first-operation effects are excluded.
    let pl = &summary.by_kind[&QueryKind::PointLookup];
    assert!(pl.latency_ms.p50 >= 9.9 && pl.latency_ms.p50 < 20.0, "p50 {}", pl.latency_ms.p50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_achieves_the_target_rate_within_two_percent() {
    let target = Arc::new(ToyTarget::new(Duration::from_millis(2)));
    let state = target.state.clone();
    let mut c = config(4, 0, 5_000);
    c.target_qps = Some(400.0);
    let report = Engine::start(target, point_lookup_plan(), c).await.unwrap().wait().await.unwrap();
    let summary = summarize(&report, &ctx("QPS")).unwrap();
    let achieved = summary.total.qps;
    assert!((achieved - 400.0).abs() / 400.0 < 0.02, "achieved {achieved} QPS against 400");
    assert_eq!(report.completed_ops, state.executed.load(Ordering::SeqCst));
    assert!(summary.total.service_time_ms.is_some(), "open loop records service time");
    assert_eq!(summary.target_qps, Some(400.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_response_time_not_in_service_time() {
    let target = Arc::new(ToyTarget::new(Duration::from_millis(1)));
    let state = target.state.clone();
    let mut c = config(4, 0, 5_000);
    c.target_qps = Some(200.0);
    let handle = Engine::start(target, point_lookup_plan(), c).await.unwrap();
    // Stall every session for 500 ms, two seconds in.
    let from = Instant::now() + Duration::from_secs(2);
    *state.stall.lock() = Some((from, from + Duration::from_millis(500)));
    let report = handle.wait().await.unwrap();
    let summary = summarize(&report, &ctx("QPS")).unwrap();
    let response = summary.total.latency_ms;
    let service = summary.total.service_time_ms.unwrap();
    // ~100 of ~1000 operations were due during the stall and waited up to 500 ms.
    assert!(response.p99 >= 300.0, "response p99 {} ms should show the stall", response.p99);
    assert!(response.max >= 450.0, "response max {} ms", response.max);
    // Only the few operations in flight when the stall began were slow to execute.
    assert!(service.p99 < 50.0, "service p99 {} ms should not show the stall", service.p99);
    assert!(summary.late_starts >= 50, "late starts {}", summary.late_starts);
    // And the rate is still the target rate: the missed operations were issued, late.
    assert!((summary.total.qps - 200.0).abs() / 200.0 < 0.02, "qps {}", summary.total.qps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_count_changes_while_running() {
    let target = Arc::new(ToyTarget::new(Duration::from_millis(5)));
    let state = target.state.clone();
    let mut c = config(2, 0, 2_500);
    c.snapshot_interval = Duration::from_millis(100);
    let mut handle = Engine::start(target, point_lookup_plan(), c).await.unwrap();
    let mut snapshots = handle.take_snapshots().unwrap();
    let control = handle.control();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(control.active_connections(), 2);
    state.max_in_flight.store(0, Ordering::SeqCst);
    control.set_connections(6);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(control.active_connections(), 6);
    assert_eq!(state.max_in_flight.load(Ordering::SeqCst), 6, "six operations in flight at once");
    control.set_connections(1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(control.active_connections(), 1);
    state.max_in_flight.store(0, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(state.max_in_flight.load(Ordering::SeqCst), 1);
    let report = handle.wait().await.unwrap();
    assert_eq!(state.sessions.load(Ordering::SeqCst), 6, "2 initial + 4 added");
    assert_eq!(report.completed_ops, state.executed.load(Ordering::SeqCst));
    let mut seen = Vec::new();
    while let Ok(s) = snapshots.try_recv() {
        seen.push((s.target_connections, s.active_connections));
    }
    assert!(seen.contains(&(6, 6)), "a snapshot shows 6 connections: {seen:?}");
    assert!(seen.iter().any(|s| s.0 == 1), "a snapshot shows the target of 1: {seen:?}");
}

/// Each operation is recorded once, in the interval it completed in, split by phase; the
/// measurement totals are built from the intervals' measured halves. Connections that retire
/// mid-measurement, and the warmup and cooldown around it, must neither lose nor double an
/// operation in the totals or in the snapshots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_counts_once_across_phases_intervals_and_retired_connections() {
    let target = Arc::new(ToyTarget::new(Duration::from_millis(1)));
    let state = target.state.clone();
    // 8 connections, so that even at 3 ms per operation on a loaded machine the target sees
    // well over the 1,000 operations `counts_equal_what_the_target_saw` asks for.
    let mut c = config(8, 300, 900);
    c.cooldown = Duration::from_millis(200);
    c.snapshot_interval = Duration::from_millis(70);
    let mut handle = Engine::start(target, point_lookup_plan(), c).await.unwrap();
    let mut snapshots = handle.take_snapshots().unwrap();
    let control = handle.control();
    tokio::time::sleep(Duration::from_millis(700)).await;
    control.set_connections(1);
    let report = handle.wait().await.unwrap();
    counts_equal_what_the_target_saw(&report, &state);
    assert!(
        report.warmup_ops > 0 && report.cooldown_ops > 0,
        "{} / {}",
        report.warmup_ops,
        report.cooldown_ops
    );
    let mut in_snapshots = 0;
    let mut retired_in_the_window = false;
    while let Ok(s) = snapshots.try_recv() {
        in_snapshots += s.total.ops + s.total.errors;
        retired_in_the_window |= s.target_connections == 1 && s.phase == RunPhase::Measurement;
    }
    assert_eq!(in_snapshots, report.completed_ops, "the snapshots add up to every phase's operations");
    assert!(retired_in_the_window, "seven connections retired during the measurement window");
    assert_eq!(report.connections, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_add_up_to_the_total() {
    let target = Arc::new(ToyTarget::new(Duration::from_millis(1)));
    let state = target.state.clone();
    let mut handle = Engine::start(target, point_lookup_plan(), config(2, 0, 2_200)).await.unwrap();
    let mut rx = handle.take_snapshots().unwrap();
    let report = handle.wait().await.unwrap();
    let mut ops = 0;
    let mut seqs = Vec::new();
    while let Ok(s) = rx.try_recv() {
        ops += s.total.ops + s.total.errors;
        seqs.push(s.seq);
        assert!(s.interval_s > 0.0 && s.interval_s < 1.5, "interval {}", s.interval_s);
        let by_kind: u64 = s.by_kind.values().map(|k| k.ops).sum();
        assert_eq!(by_kind, s.total.ops);
    }
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert!(seqs.len() >= 3, "one snapshot a second plus the final one: {seqs:?}");
    assert_eq!(ops, report.completed_ops);
    assert_eq!(ops, state.executed.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_the_window_early_and_records_the_reason() {
    let target = Arc::new(ToyTarget::new(Duration::from_millis(1)));
    let handle = Engine::start(target, point_lookup_plan(), config(2, 0, 60_000)).await.unwrap();
    let control = handle.control();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_millis(400)).await;
    control.stop("interrupted by the user");
    let report = handle.wait().await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(3), "stop is prompt");
    let w = report.window.as_secs_f64();
    assert!(w > 0.35 && w < 0.6, "window {w}");
    assert_eq!(report.stop_reason.as_ref().map(|r| r.message()), Some("interrupted by the user"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_stuck_past_the_stop_deadline_are_abandoned() {
    let target = Arc::new(ToyTarget::new(Duration::from_secs(30)));
    let mut c = config(3, 0, 200);
    c.stop_deadline = Duration::from_millis(200);
    let t0 = Instant::now();
    let report = Engine::start(target, point_lookup_plan(), c).await.unwrap().wait().await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(report.abandoned_in_flight, 3);
    assert_eq!(report.completed_ops, 0);
    // Abandoning is the engine's own doing at the end of a run that ended on time: not a
    // failure, and not a reason the run stopped.
    assert_eq!(report.stop_reason, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoning_operations_after_a_stop_keeps_the_stops_reason() {
    let target = Arc::new(ToyTarget::new(Duration::from_secs(30)));
    let mut c = config(3, 0, 60_000);
    c.stop_deadline = Duration::from_millis(200);
    let handle = Engine::start(target, point_lookup_plan(), c).await.unwrap();
    let control = handle.control();
    tokio::time::sleep(Duration::from_millis(100)).await;
    control.stop("interrupted by the user");
    let report = handle.wait().await.unwrap();
    assert_eq!(report.abandoned_in_flight, 3);
    assert_eq!(report.stop_reason, Some(StopReason::Requested("interrupted by the user".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_is_told_about_each_phase_in_order() {
    let target = Arc::new(ToyTarget::new(Duration::from_millis(1)));
    let state = target.state.clone();
    let mut c = config(1, 300, 300);
    c.cooldown = Duration::from_millis(300);
    Engine::start(target, point_lookup_plan(), c).await.unwrap().wait().await.unwrap();
    let phases = state.phases.lock().clone();
    assert_eq!(
        phases,
        vec![
            unistore_core::RunPhase::Warmup,
            unistore_core::RunPhase::Measurement,
            unistore_core::RunPhase::Cooldown
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_past_the_stop_deadline_are_cancelled_on_the_target_first() {
    let target = Arc::new(ToyTarget::new(Duration::from_secs(30)));
    target.state.cancellable.store(true, Ordering::SeqCst);
    let state = target.state.clone();
    let mut c = config(3, 0, 200);
    c.stop_deadline = Duration::from_millis(200);
    let t0 = Instant::now();
    let report = Engine::start(target, point_lookup_plan(), c).await.unwrap().wait().await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert_eq!(report.abandoned_in_flight, 0, "cancelled operations return instead of being abandoned");
    assert_eq!(report.completed_ops, 3, "the three cancelled operations are counted");
    assert_eq!(state.in_flight.load(Ordering::SeqCst), 0, "nothing is left running on the target");
    assert!(report.error_examples.contains_key(&unistore_core::ErrorKind::Timeout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_loop_rate_can_change_while_running() {
    let target = Arc::new(ToyTarget::new(Duration::from_millis(1)));
    let mut c = config(4, 0, 2_000);
    c.target_qps = Some(200.0);
    let handle = Engine::start(target, point_lookup_plan(), c).await.unwrap();
    let control = handle.control();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    control.set_target_qps(400.0);
    let report = handle.wait().await.unwrap();
    let summary = summarize(&report, &ctx("QPS")).unwrap();
    // One second at 200/s and one at 400/s, without a burst to "catch up" at the new rate.
    let ops = summary.total.ops as f64;
    assert!((ops - 600.0).abs() / 600.0 < 0.03, "ops {ops}");
    assert_eq!(summary.target_qps, Some(400.0));
}

/// Open loop measures the response time from the intended start, so whatever the tool adds
/// before it starts an operation counts as the target's latency. Against a target that answers
/// at once, the engine's response-minus-service gap is that lag alone: it must match the lag the
/// target itself sees (arrivals against the timetable) and be small. tokio's 1 ms timer wheel
/// started each operation ~1 ms late and charged it to the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_starts_operations_at_their_slots_and_does_not_charge_its_own_lag() {
    const QPS: f64 = 1_000.0;
    let mut target = ToyTarget::new(Duration::ZERO);
    target.keep_completions = true;
    let target = Arc::new(target);
    let state = target.state.clone();
    let mut c = config(4, 0, 3_000);
    c.target_qps = Some(QPS);
    let connected = Engine::connect(target, point_lookup_plan(), c).await.unwrap();
    // The timetable's slot 0 is the load start, a few microseconds after this.
    let before = Instant::now();
    let report = connected.start().wait().await.unwrap();
    let summary = summarize(&report, &ctx("QPS")).unwrap();

    // Independent reference: when the operations reached the target, against their slots.
    let mut arrivals = state.arrivals.lock().clone();
    arrivals.sort();
    assert!(arrivals.len() >= 2_900, "{} operations for ~3,000 slots", arrivals.len());
    let mut target_lags_ms: Vec<f64> = arrivals
        .iter()
        .enumerate()
        .map(|(slot, at)| (at.duration_since(before).as_secs_f64() - slot as f64 / QPS) * 1e3)
        .collect();
    target_lags_ms.sort_by(f64::total_cmp);
    let target_lag_p50 = target_lags_ms[target_lags_ms.len() / 2];

    // The engine's own figures: response p50 minus service p50 is the start lag it charged.
    let response_p50 = summary.total.latency_ms.p50;
    let service_p50 = summary.total.service_time_ms.unwrap().p50;
    let charged_p50 = response_p50 - service_p50;
    // Medians, not maxima: a loaded machine may delay a few starts, never most of them.
    assert!(
        target_lag_p50 < 0.3,
        "the target saw operations start {target_lag_p50:.3} ms after their slots (median)"
    );
    assert!(
        charged_p50 < 0.3,
        "response p50 {response_p50:.3} ms against service p50 {service_p50:.3} ms: \
         {charged_p50:.3} ms of the tool's own lag charged to the target"
    );
    assert!(
        (charged_p50 - target_lag_p50).abs() < 0.1,
        "the engine charged {charged_p50:.3} ms while the target saw {target_lag_p50:.3} ms of lag"
    );
}

/// `--threads 2`: two client threads, each with its own runtime; connection k is opened and
/// run on thread k mod 2, never anywhere else, and the counts are as exact as on one thread.
#[tokio::test(flavor = "current_thread")]
async fn client_threads_own_their_connections() {
    let target = Arc::new(ToyTarget::new(Duration::ZERO));
    let state = target.state.clone();
    state.track_threads.store(true, Ordering::SeqCst);
    let threads = unistore_core::ClientThreads::start(2).expect("starting client threads");
    assert_eq!(threads.len(), 2);
    let mut config = config(4, 100, 500);
    config.client_threads = Some(threads);
    let handle = Engine::start(target, point_lookup_plan(), config).await.unwrap();
    let report = handle.wait().await.unwrap();
    counts_equal_what_the_target_saw(&report, &state);
    assert_eq!(report.client_threads, 2, "the report names the client threads");

    let sessions = state.threads.lock().clone();
    assert_eq!(sessions.len(), 4, "four sessions opened");
    let mut per_thread: std::collections::HashMap<std::thread::ThreadId, usize> = Default::default();
    for (id, (opened_on, used)) in &sessions {
        assert_eq!(used.len(), 1, "session {id} ran on {} threads: {used:?}", used.len());
        assert!(used.contains(opened_on), "session {id} was opened on {opened_on:?} but ran on {used:?}");
        *per_thread.entry(*opened_on).or_default() += 1;
    }
    assert_eq!(per_thread.len(), 2, "the sessions were spread over two threads: {per_thread:?}");
    assert!(per_thread.values().all(|&n| n == 2), "two sessions per thread: {per_thread:?}");
    assert!(
        per_thread.contains_key(&std::thread::current().id()),
        "thread 0 is the caller's: {per_thread:?}"
    );
    let summary = summarize(&report, &ctx("closed")).expect("summary");
    assert_eq!(summary.client.expect("client info").threads, 2, "the summary records 2 client threads");
}
