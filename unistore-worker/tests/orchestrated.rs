//! Multi-worker runs with real processes and real stores: `bench --workers N` (the
//! orchestrator in-process, N `join` processes, the embedded SQLite control store), worker
//! faults, and the target's own count on PostgreSQL.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{bench, psql, results_url, run_id_of, runtime, spawn_bench, summaries, text, Cluster};
use unistore_core::{RunId, RunSummary};

/// p99 of the workers' histograms merged with hdrhistogram itself: a second computation.
fn reference_p99_ms(parts: &[RunSummary]) -> f64 {
    let mut all = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    all.auto(true);
    for p in parts {
        let h = unistore_core::metrics::decode_histogram(p.total.histogram.as_deref().expect("histogram"))
            .unwrap();
        all.add(&h).unwrap();
    }
    all.value_at_quantile(0.99) as f64 / 1_000.0
}

fn heartbeats(data: &Path, run_id: RunId) -> Vec<unistore_core::model::WorkerHeartbeat> {
    runtime().block_on(async {
        let control = unistore_adapters::open_control(&results_url(data)).await.unwrap();
        control.heartbeats(run_id).await.unwrap()
    })
}

#[test]
fn three_workers_on_sqlite_roll_up_exactly() {
    let data = tempfile::tempdir().unwrap();
    let out = bench(
        data.path(),
        &["--workers", "3", "-c", "6", "--duration", "3s", "--warmup", "1s", "--seed", "11"],
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "bench --workers 3: {}\n{stderr}", text(&out.stdout));
    let run_id = run_id_of(&stderr);
    let (parent, parts) = summaries(data.path(), run_id, &["worker-0", "worker-1", "worker-2"]);
    assert_eq!(parent.status, unistore_core::RunStatus::Completed, "{:?}", parent.reason);
    assert_eq!(parent.worker_id, None);
    assert_eq!(
        parts.iter().map(|p| p.connections).collect::<Vec<_>>(),
        vec![2, 2, 2],
        "connections split evenly"
    );
    let ops: u64 = parts.iter().map(|p| p.total.ops).sum();
    assert!(ops > 100, "the workers measured {ops} operations");
    assert_eq!(parent.total.ops, ops, "the run's ops are the sum of its workers'");
    assert_eq!(
        parent.completed_ops_all_phases,
        parts.iter().map(|p| p.completed_ops_all_phases).sum::<u64>(),
        "every phase's operations"
    );
    assert_eq!(parent.total.errors, 0);
    let reference = reference_p99_ms(&parts);
    assert!(
        (parent.total.latency_ms.p99 - reference).abs() <= reference * 0.001 + 1e-6,
        "the run's p99 {} is the p99 of the merged histograms {reference}",
        parent.total.latency_ms.p99
    );
    assert!(parent.total.latency_ms.p99 <= parts.iter().map(|p| p.total.latency_ms.p99).fold(0.0, f64::max));
    // Every worker shared the run's phase boundaries: their windows agree to a tick.
    let windows: Vec<f64> = parts.iter().map(|p| p.duration_s).collect();
    assert!(windows.iter().all(|w| (w - 3.0).abs() < 0.25), "measurement windows {windows:?}");
    let starts: Vec<_> = parts.iter().map(|p| p.measurement_started_at).collect();
    let spread = starts.iter().max().unwrap().signed_duration_since(*starts.iter().min().unwrap());
    assert!(spread.num_milliseconds() < 100, "the workers' windows start together: {starts:?}");
    let beats = heartbeats(data.path(), run_id);
    assert_eq!(beats.len(), 3);
    assert!(beats.iter().all(|b| b.state == unistore_core::model::WorkerState::Finished), "{beats:?}");
    let status = run_status(data.path(), run_id);
    assert_eq!(status, "COMPLETED");
}

fn run_status(data: &Path, run_id: RunId) -> String {
    runtime().block_on(async {
        let control = unistore_adapters::open_control(&results_url(data)).await.unwrap();
        control.run(run_id).await.unwrap().unwrap().status.to_string()
    })
}

/// Workers insert into the same table from separate processes: the key ranges are sharded by
/// worker, so no insert collides, and the table grows by exactly the inserts counted. Every
/// worker inserts.
#[test]
fn workers_never_insert_the_same_key() {
    let data = tempfile::tempdir().unwrap();
    // Creates the demo database.
    let first = bench(data.path(), &["--duration", "1s", "--warmup", "0s", "--no-results"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let demo = data.path().join("demo.db");
    let before = support::sqlite_count(&demo, "SELECT count(*) FROM demo_orders");
    let out = bench(
        data.path(),
        &[
            "--workers",
            "3",
            "-c",
            "3",
            "--duration",
            "3s",
            "--warmup",
            "0s",
            "--mix",
            "insert=100",
            "--allow-writes",
            "--seed",
            "5",
            // At a set rate, not flat out: three processes writing one SQLite file in tight loops
            // can keep one of them waiting on the lock for the whole window (seen on a loaded
            // machine: "worker-2: no operation completed"), and the sharding needs all three.
            "--qps",
            "60",
        ],
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{}\n{stderr}", text(&out.stdout));
    let run_id = run_id_of(&stderr);
    let (parent, parts) = summaries(data.path(), run_id, &["worker-0", "worker-1", "worker-2"]);
    assert_eq!(parent.total.errors, 0, "no insert collided: {:?}", parent.error_examples);
    let after = support::sqlite_count(&demo, "SELECT count(*) FROM demo_orders");
    let inserted: u64 = parts.iter().map(|p| p.completed_ops_all_phases).sum();
    assert!(inserted > 10);
    for part in &parts {
        assert!(part.completed_ops_all_phases > 0, "every worker inserted: {part:?}");
    }
    assert_eq!((after - before) as u64, inserted, "rows added = inserts counted by the three workers");
}

fn pid_of(data: &Path, run_id: RunId, worker: &str) -> Option<u32> {
    heartbeats(data, run_id)
        .into_iter()
        .find(|b| b.worker_id == worker && b.state == unistore_core::model::WorkerState::Running)
        .map(|b| b.pid)
}

fn snapshot_count(data: &Path, run_id: RunId, worker: &str) -> usize {
    runtime().block_on(async {
        let store = unistore_adapters::open_results(&results_url(data)).await.unwrap();
        store.reader.snapshots(run_id).await.unwrap().iter().filter(|s| s.worker_id == worker).count()
    })
}

/// Starts a 3-worker run, kills worker-1 with SIGKILL once it has written snapshots, and
/// returns the run id, the snapshots it had written, and the finished bench's output.
fn kill_one_worker(data: &Path, policy: &str) -> (RunId, usize, std::process::Output) {
    let json = data.join("out.json");
    let child = spawn_bench(
        data,
        &[
            "--workers",
            "3",
            "-c",
            "3",
            "--duration",
            "10s",
            "--warmup",
            "0s",
            "--on-worker-loss",
            policy,
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let started = Instant::now();
    let db = data.join("results.db");
    let (run_id, pid) = loop {
        assert!(started.elapsed() < Duration::from_secs(60), "the run did not start");
        std::thread::sleep(Duration::from_millis(200));
        if !db.exists() {
            continue;
        }
        let conn = rusqlite::Connection::open(&db).unwrap();
        let run: Option<String> = conn
            .query_row("SELECT RUN_ID FROM RUN_STATUS ORDER BY CREATED_AT DESC LIMIT 1", [], |r| r.get(0))
            .ok();
        let Some(run) = run else { continue };
        let run_id: RunId = run.parse().unwrap();
        // Snapshots are written in batches of five: wait for worker-1's first batch.
        if snapshot_count(data, run_id, "worker-1") == 0 {
            continue;
        }
        if let Some(pid) = pid_of(data, run_id, "worker-1") {
            break (run_id, pid);
        }
    };
    let written = snapshot_count(data, run_id, "worker-1");
    support::kill(pid, "-KILL");
    let out = child.wait_with_output().unwrap();
    (run_id, written, out)
}

#[test]
fn a_killed_worker_is_replaced_and_the_loss_recorded() {
    let data = tempfile::tempdir().unwrap();
    let (run_id, written, out) = kill_one_worker(data.path(), "replace");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "the run completes with a replacement: {}\n{stderr}", text(&out.stdout));
    let (parent, parts) = summaries(data.path(), run_id, &["worker-0", "worker-2", "worker-1r1"]);
    assert_eq!(parent.status, unistore_core::RunStatus::Completed);
    assert!(
        parent.warnings.iter().any(|w| w.contains("worker-1") && w.contains("replaced by worker-1r1")),
        "the loss is recorded with the run: {:?}",
        parent.warnings
    );
    assert!(parts[2].total.ops > 0, "the replacement measured");
    assert!(snapshot_count(data.path(), run_id, "worker-1") >= written, "snapshots already written are kept");
    let beats = heartbeats(data.path(), run_id);
    let lost = beats.iter().find(|b| b.worker_id == "worker-1").unwrap();
    assert_eq!(lost.state, unistore_core::model::WorkerState::Lost, "{lost:?}");
}

#[test]
fn a_killed_worker_fails_the_run_under_the_fail_policy() {
    let data = tempfile::tempdir().unwrap();
    let (run_id, written, out) = kill_one_worker(data.path(), "fail");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a failed run exits 1: {}\n{stderr}", text(&out.stdout));
    assert_eq!(run_status(data.path(), run_id), "FAILED");
    let reason = runtime().block_on(async {
        let control = unistore_adapters::open_control(&results_url(data.path())).await.unwrap();
        control.run(run_id).await.unwrap().unwrap().reason.unwrap_or_default()
    });
    assert!(reason.contains("worker failure: 1 worker(s) stopped responding"), "{reason}");
    assert!(snapshot_count(data.path(), run_id, "worker-1") >= written, "snapshots already written are kept");
    let (parent, _) = summaries(data.path(), run_id, &["worker-0", "worker-2"]);
    assert_eq!(parent.status, unistore_core::RunStatus::Failed);
    assert_eq!(parent.verdict(), unistore_core::Verdict::Failed);
}

#[test]
fn bad_multi_worker_input_is_refused_before_anything_starts() {
    let data = tempfile::tempdir().unwrap();
    let out = bench(data.path(), &["--workers", "4", "-c", "2", "--duration", "1s"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("4 workers for 2 connections"), "{}", text(&out.stderr));
    let out = bench(data.path(), &["--workers", "2", "--on-worker-loss", "sometimes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("use `fail`, `replace`"), "{}", text(&out.stderr));
    let out = support::worker(data.path())
        .args(["join", "--run-id", &RunId::new().to_string(), "--worker-id", "worker-0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("does not exist in the control store"), "{}", text(&out.stderr));
}

/// On PostgreSQL the run's count equals the server's own: pg_stat_statements `calls` of the
/// benchmark statement over the whole run (every phase) = the sum of the workers' operations.
#[test]
fn three_workers_on_postgres_match_pg_stat_statements() {
    let cluster = Cluster::start();
    psql(&cluster.url, "DROP TABLE IF EXISTS orch_accounts");
    psql(
        &cluster.url,
        "CREATE TABLE orch_accounts (id integer PRIMARY KEY, balance integer NOT NULL); \
         INSERT INTO orch_accounts SELECT g, g % 1000 FROM generate_series(1, 20000) g; ANALYZE orch_accounts",
    );
    psql(&cluster.url, "SELECT pg_stat_statements_reset()");
    let data = tempfile::tempdir().unwrap();
    let out = bench(
        data.path(),
        &[
            "--workers",
            "3",
            "-c",
            "6",
            "--duration",
            "3s",
            "--warmup",
            "1s",
            "--target",
            &cluster.url,
            "--table",
            "public.orch_accounts",
        ],
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{}\n{stderr}", text(&out.stdout));
    let run_id = run_id_of(&stderr);
    let (parent, parts) = summaries(data.path(), run_id, &["worker-0", "worker-1", "worker-2"]);
    let calls: u64 = psql(
        &cluster.url,
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements \
         WHERE query LIKE 'SELECT%orch_accounts%WHERE%id% = $1%'",
    )
    .parse()
    .unwrap();
    let sum: u64 = parts.iter().map(|p| p.completed_ops_all_phases).sum();
    assert!(sum > 100);
    assert_eq!(parent.completed_ops_all_phases, sum, "the run's count is the sum of its workers'");
    assert_eq!(calls, sum, "pg_stat_statements counted {calls} lookups; the workers {sum}");
    // The run's own server-side figures: one worker's window that covers every worker's load
    // (never the sum of the workers', which would count each call three times).
    let server = parent.server_stats.as_ref().expect("the run's server-side figures");
    assert!(server["covered_by"].as_str().is_some_and(|w| w.starts_with("worker-")), "{server}");
    assert_eq!(server["per_worker"].as_object().map(|m| m.len()), Some(3), "{server}");
    // Each worker took its baseline before it said it was ready, so every window begins
    // before the run's load (a worker that took it after the shared start left no window
    // covering the run).
    for (worker, window) in server["per_worker"].as_object().unwrap() {
        let from: chrono::DateTime<chrono::Utc> = window["from"].as_str().unwrap().parse().unwrap();
        assert!(
            from <= parent.started_at,
            "{worker}'s window begins at {from}, after the load's {}",
            parent.started_at
        );
    }
    let run_calls: u64 = server["run"]["statements"]
        .as_array()
        .expect("statements")
        .iter()
        .filter(|s| s["query"].as_str().is_some_and(|q| q.contains("orch_accounts") && q.contains("WHERE")))
        .map(|s| s["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(run_calls, sum, "the run's server-side calls are every worker's operations");
    assert_eq!(parent.total.ops, parts.iter().map(|p| p.total.ops).sum::<u64>());
}

fn rate_run(args: &[&str]) -> (std::process::Output, RunSummary, Vec<RunSummary>) {
    let data = tempfile::tempdir().unwrap();
    let out = bench(data.path(), args);
    let run_id = run_id_of(&text(&out.stderr));
    let (parent, parts) = summaries(data.path(), run_id, &["worker-0", "worker-1", "worker-2"]);
    (out, parent, parts)
}

/// QPS across workers: the rate is split, each worker holds its share, and the run holds the
/// target; a target the connections cannot carry is reported with the reason.
#[test]
fn qps_across_three_workers_holds_a_reachable_target_and_explains_a_shortfall() {
    let (out, parent, parts) =
        rate_run(&["--workers", "3", "--qps", "600", "-c", "6", "--duration", "4s", "--warmup", "1s"]);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(
        parts.iter().map(|p| p.target_qps).collect::<Vec<_>>(),
        vec![Some(200.0); 3],
        "the rate is split"
    );
    assert_eq!(parent.target_qps, Some(600.0));
    assert!(
        (parent.total.qps - 600.0).abs() <= 600.0 * 0.02,
        "the run held 600 ops/s within 2 %: {}",
        parent.total.qps
    );
    assert_eq!(parent.target_reached, Some(true));
    assert_eq!(parent.verdict(), unistore_core::Verdict::Passed);

    // One connection per worker cannot carry a million operations a second.
    let (out, parent, _) =
        rate_run(&["--workers", "3", "--qps", "1000000", "-c", "3", "--duration", "2s", "--warmup", "0s"]);
    assert_eq!(out.status.code(), Some(1), "a missed target exits 1: {}", text(&out.stderr));
    assert_eq!(parent.target_reached, Some(false));
    assert_eq!(parent.verdict(), unistore_core::Verdict::TargetNotReached);
    assert!(parent.unissued_ops > 0);
    assert!(
        parent.warnings.iter().any(|w| w.contains("short of its target") && w.contains("more connections")),
        "the shortfall and its reason: {:?}",
        parent.warnings
    );
    assert!(
        parent.warnings.iter().all(|w| !w.contains("  ")),
        "one space between words: {:?}",
        parent.warnings
    );
}

/// A worker that cannot reach the target says so in its heartbeat, and the run ends FAILED
/// with that message before any load.
#[test]
fn an_unreachable_target_fails_the_run_with_the_workers_reason() {
    let data = tempfile::tempdir().unwrap();
    let out = bench(
        data.path(),
        &[
            "--workers",
            "2",
            "-c",
            "2",
            "--duration",
            "2s",
            "--target",
            "postgres://bench@127.0.0.1:1/app",
            "--table",
            "public.t",
            "--connect-timeout",
            "2s",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("FAILED") && stdout.contains("could not start"), "{stdout}");
    let run_id = run_id_of(&text(&out.stderr));
    let beats = heartbeats(data.path(), run_id);
    let failed: Vec<_> =
        beats.iter().filter(|b| b.state == unistore_core::model::WorkerState::Failed).collect();
    assert!(!failed.is_empty(), "{beats:?}");
    assert!(
        failed[0].last_error.as_deref().unwrap_or("").contains("127.0.0.1:1"),
        "{:?}",
        failed[0].last_error
    );
    assert_eq!(run_status(data.path(), run_id), "FAILED");
}

/// FIND_MAX_CONCURRENCY across 2 workers: the controller searches on the merged figures and
/// steps the run's connections. The target has a known knee: a statement that needs one of 4
/// slots (advisory locks) for 20 ms, so throughput grows up to 4 connections and then only
/// the waiting grows.
#[test]
fn a_search_across_two_workers_finds_the_knee_within_one_step() {
    let cluster = Cluster::start();
    psql(&cluster.url, "DROP TABLE IF EXISTS knee; CREATE TABLE knee (id integer PRIMARY KEY); INSERT INTO knee SELECT generate_series(1, 100)");
    psql(
        &cluster.url,
        "CREATE OR REPLACE FUNCTION knee_slot() RETURNS integer LANGUAGE plpgsql AS $$ \
         BEGIN LOOP FOR i IN 0..3 LOOP \
           IF pg_try_advisory_xact_lock(4242, i) THEN PERFORM pg_sleep(0.02); RETURN i; END IF; \
         END LOOP; PERFORM pg_sleep(0.001); END LOOP; END $$",
    );
    let data = tempfile::tempdir().unwrap();
    let template = support::template(
        data.path(),
        "knee.toml",
        &format!(
            r#"name = "knee"
target = "{}"
table = "public.knee"
[mix]
CUSTOM_SQL = 100
[custom_sql]
sql = "SELECT knee_slot()"
params = []
[load]
mode = "FIND_MAX_CONCURRENCY"
start_connections = 2
step_connections = 2
step_duration = "3s"
max_connections = 10
qps_drop_pct = 10.0
p95_growth_pct = 50.0
[scaling]
mode = "FIXED"
workers = 2
[phases]
warmup = "1s"
"#,
            cluster.url
        ),
    );
    let out = bench(data.path(), &["--template", template.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{}\n{stderr}", text(&out.stdout));
    let run_id = run_id_of(&stderr);
    let (parent, parts) = summaries(data.path(), run_id, &["worker-0", "worker-1"]);
    let steps: Vec<(u32, f64, f64)> = parent.steps.iter().map(|s| (s.connections, s.qps, s.p95_ms)).collect();
    eprintln!("search steps (connections, ops/s, p95 ms): {steps:?}");
    let best = parent.best_step.as_ref().unwrap_or_else(|| panic!("no best step: {steps:?}"));
    assert!(
        (2..=6).contains(&best.connections) && best.connections.abs_diff(4) <= 2,
        "the knee is at 4 connections; the search chose {} (steps {steps:?})",
        best.connections
    );
    assert!(steps.len() >= 2, "it stepped: {steps:?}");
    assert!(steps.windows(2).all(|w| w[1].0 == w[0].0 + 2), "steps of 2 connections: {steps:?}");
    assert!(steps.iter().all(|s| s.0 <= 8), "it stopped after the knee, not at max_connections: {steps:?}");
    assert_eq!(parent.status, unistore_core::RunStatus::Completed, "{:?}", parent.reason);
    assert!(parent.reason.as_deref().unwrap_or("").starts_with("search finished"), "{:?}", parent.reason);
    assert!(
        parts.iter().all(|p| p.status == unistore_core::RunStatus::Completed),
        "the workers' rows are completed"
    );
    assert_eq!(parent.connections, best.connections);
}
