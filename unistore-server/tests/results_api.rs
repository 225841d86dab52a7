//! The stored-results API against a real embedded SQLite results store: runs written through
//! the sink as a worker writes them, every route called through `Router::oneshot` (no sockets)
//! on the controller's router, and every answer checked against what was written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use axum::http::Method;
use axum::Router;
use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use serde_json::Value;
use unistore_core::metrics::{KindRecorder, QueryExecution};
use unistore_core::testkit::sample_summary;
use unistore_core::{
    ErrorKind, MetricSnapshot, QueryKind, RunId, RunPhase, RunStatus, RunSummary, TableType,
};
use unistore_server::{router, AppState};

#[path = "common/reply.rs"]
mod reply;
use reply::Reply;

/// `ops` operations of about `base_us` µs each, with `errors` timeouts.
fn stats(ops: u64, base_us: u64, errors: u64) -> unistore_core::KindStats {
    let mut r = KindRecorder::new(false);
    for i in 0..ops {
        r.response.record_ns((base_us + i % 50) * 1_000);
        r.rows += 1;
    }
    r.errors[ErrorKind::Timeout.index()] += errors;
    r.stats(1.0, true).unwrap()
}

/// Second `second` (from 1) of a run's one worker: point lookups and range scans.
fn snapshot(run_id: RunId, started: DateTime<Utc>, second: u64, phase: RunPhase, ops: u64) -> MetricSnapshot {
    let point = stats(ops, 300, 0);
    let range = stats(ops / 4, 900, 1);
    let mut total_rec = KindRecorder::new(false);
    // The total is the kinds together: recorded again rather than merged, as a worker does.
    for i in 0..ops {
        total_rec.response.record_ns((300 + i % 50) * 1_000);
    }
    for i in 0..ops / 4 {
        total_rec.response.record_ns((900 + i % 50) * 1_000);
    }
    total_rec.rows = ops + ops / 4;
    total_rec.errors[ErrorKind::Timeout.index()] += 1;
    MetricSnapshot {
        run_id,
        worker_id: "w1".into(),
        seq: second,
        taken_at: started + ChronoDuration::seconds(second as i64),
        elapsed_s: second as f64,
        interval_s: 1.0,
        phase,
        active_connections: 4,
        target_connections: 4,
        target_qps: None,
        late_starts: 0,
        backlog: 0,
        total: total_rec.stats(1.0, true).unwrap(),
        by_kind: BTreeMap::from([(QueryKind::PointLookup, point), (QueryKind::RangeScan, range)]),
    }
}

struct Fixture {
    app: Router,
    /// Oldest first: a (alpha, orders, postgres), b (beta, orders, sqlite, FAILED),
    /// c (alpha, items, postgres), d (alpha, orders, RUNNING).
    ids: [RunId; 4],
    summaries: [RunSummary; 4],
    /// Snapshots written for runs a and c: 2 warmup seconds, then 12 measured.
    seconds: usize,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// `method path`, without a body.
    async fn call(&self, method: Method, path: &str) -> Reply {
        reply::call(&self.app, method, path, None).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.call(Method::GET, path).await;
        let status = response.status().as_u16();
        let text = response.text();
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}")))
    }

    /// The run ids of a listing, as this fixture names them (a, b, c, d).
    async fn listed(&self, query: &str) -> (Vec<char>, bool) {
        let (status, body) = self.get(&format!("/api/results{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        let names = body["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let id = r["run_id"].as_str().unwrap();
                let i = self.ids.iter().position(|x| x.to_string() == id).expect("a run of the fixture");
                (b'a' + i as u8) as char
            })
            .collect();
        (names, body["has_more"].as_bool().unwrap())
    }
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("results.db").display());
    let results = unistore_adapters::open_results(&url).await.unwrap();
    let sink = results.sink.clone();
    let base_time = Utc.with_ymd_and_hms(2025, 3, 10, 8, 0, 0).unwrap();
    let ids = [RunId::new(), RunId::new(), RunId::new(), RunId::new()];
    let specs = [
        ("alpha", "public.orders", TableType::Postgres, RunStatus::Completed, 1_000u64),
        ("beta", "public.orders", TableType::Sqlite, RunStatus::Failed, 400),
        ("alpha", "public.items", TableType::Postgres, RunStatus::Completed, 2_000),
        ("alpha", "public.orders", TableType::Postgres, RunStatus::Running, 10),
    ];
    let mut summaries = Vec::new();
    for (i, (template, table, table_type, status, ops)) in specs.into_iter().enumerate() {
        let mut s = sample_summary(ids[i]);
        s.template = template.into();
        s.table = table.into();
        s.table_type = table_type;
        s.status = status;
        s.verdict = None;
        s.started_at = base_time + ChronoDuration::hours(i as i64);
        s.total.ops = ops;
        s.total.qps = ops as f64 / 10.0;
        sink.write_summary(&s).await.unwrap();
        summaries.push(s);
    }
    // Run a was measured by one worker, whose own row must not be listed as a run.
    let mut worker = summaries[0].clone();
    worker.worker_id = Some("w1".into());
    sink.write_summary(&worker).await.unwrap();
    let seconds = 14;
    for i in [0, 2] {
        let snaps: Vec<MetricSnapshot> = (1..=seconds as u64)
            .map(|sec| {
                let phase = if sec <= 2 { RunPhase::Warmup } else { RunPhase::Measurement };
                snapshot(ids[i], summaries[i].started_at, sec, phase, 100 + sec * 10 * (i as u64 + 1))
            })
            .collect();
        sink.write_snapshots(&snaps).await.unwrap();
    }
    let executions: Vec<QueryExecution> = (0..5)
        .map(|n| QueryExecution {
            run_id: ids[0],
            worker_id: "w1".into(),
            connection: n,
            kind: QueryKind::PointLookup,
            phase: RunPhase::Measurement,
            started_at: base_time + ChronoDuration::seconds(3 + i64::from(n)),
            response_us: 400 + u64::from(n),
            service_us: 400 + u64::from(n),
            rows: 1,
            ok: n != 4,
            error_kind: (n == 4).then_some(ErrorKind::Timeout),
        })
        .collect();
    sink.write_query_executions(&executions).await.unwrap();

    let state = AppState {
        results,
        results_kind: "sqlite".into(),
        orchestrator: None,
        live: Default::default(),
        connections: Default::default(),
    };
    Fixture { app: router(state), ids, summaries: summaries.try_into().unwrap(), seconds, _dir: dir }
}

#[tokio::test]
async fn listing_filters_and_pages_newest_first() {
    let f = fixture().await;
    assert_eq!(f.listed("").await, (vec!['d', 'c', 'b', 'a'], false), "workers' rows are not runs");
    assert_eq!(f.listed("?template=alpha").await.0, vec!['d', 'c', 'a']);
    assert_eq!(f.listed("?table=orders").await.0, vec!['d', 'b', 'a']);
    assert_eq!(f.listed("?status=completed").await.0, vec!['c', 'a']);
    assert_eq!(f.listed("?table_type=sqlite").await.0, vec!['b']);
    assert_eq!(f.listed("?table_type=postgres&table=orders").await.0, vec!['d', 'a']);
    assert_eq!(f.listed("?from=2025-03-10T09:00:00Z&to=2025-03-10T10:00:00Z").await.0, vec!['c', 'b']);
    assert_eq!(f.listed("?limit=2").await, (vec!['d', 'c'], true));
    assert_eq!(f.listed("?limit=2&offset=2").await, (vec!['b', 'a'], false));
    assert_eq!(f.listed("?limit=2&offset=1&template=alpha").await, (vec!['c', 'a'], false));
    let (_, body) = f.get("/api/results?limit=1&table=orders").await;
    assert_eq!(body["total"], 3, "the count of every matching run, not of the page: {body}");

    let (_, body) = f.get("/api/results?status=failed").await;
    let row = &body["runs"][0];
    let b = &f.summaries[1];
    assert_eq!(row["template"], "beta");
    assert_eq!(row["table_type"], "SQLITE");
    assert_eq!(row["status"], "FAILED");
    assert_eq!(row["verdict"], "FAILED");
    assert_eq!(row["ops"], 400);
    assert_eq!(row["qps"].as_f64(), Some(b.total.qps));
    assert_eq!(row["p99_ms"].as_f64(), Some(b.total.latency_ms.p99));
    assert_eq!(row["connections"], b.connections);

    for (query, names) in [
        ("?status=done", "`status`"),
        ("?table_type=oracle", "`table_type`"),
        ("?from=yesterday", "`from`"),
        ("?from=2025-03-11T00:00:00Z&to=2025-03-10T00:00:00Z", "`from`"),
        ("?limit=0", "`limit`"),
        ("?limit=501", "`limit`"),
        ("?offset=-1", "`offset`"),
        ("?stauts=FAILED", "`stauts`"),
    ] {
        let (status, body) = f.get(&format!("/api/results{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["kind"], "bad_request");
        assert!(body["error"]["message"].as_str().unwrap().contains(names), "{query}: {body}");
    }
}

#[tokio::test]
async fn one_run_its_series_kinds_errors_and_samples() {
    let f = fixture().await;
    let a = f.ids[0];
    let (status, body) = f.get(&format!("/api/results/{a}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["summary"]["run_id"], a.to_string());
    assert_eq!(body["summary"]["total"]["ops"], 1_000);
    let workers = body["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0]["worker_id"], "w1");
    assert!(body["record"].is_null(), "the run was stored by its summary only");

    let (_, body) = f.get(&format!("/api/results/{a}/series")).await;
    let seconds = body["seconds"].as_array().unwrap();
    assert_eq!(seconds.len(), f.seconds, "{body}");
    for (i, point) in seconds.iter().enumerate() {
        let sec = i as u64 + 1;
        let ops = 100 + sec * 10;
        // Each snapshot covers (sec - 1, sec]: its midpoint is in second sec - 1.
        assert_eq!(point["elapsed_s"], sec - 1);
        assert_eq!(point["phase"], if sec <= 2 { "WARMUP" } else { "MEASUREMENT" });
        assert_eq!(point["ops"], ops + ops / 4, "second {sec}");
        assert_eq!(point["qps"].as_f64(), Some((ops + ops / 4) as f64));
        assert_eq!(point["errors"], 1);
        assert_eq!(point["active_connections"], 4);
        let p50 = point["p50_ms"].as_f64().unwrap();
        assert!((0.29..0.36).contains(&p50), "p50 {p50} ms of second {sec}");
        assert!(point["p99_ms"].as_f64().unwrap() > 0.89);
    }

    let summary = &f.summaries[0];
    let (_, body) = f.get(&format!("/api/results/{a}/kinds")).await;
    let kinds = body["kinds"].as_array().unwrap();
    assert_eq!(kinds.len(), summary.by_kind.len());
    for (row, (kind, stats)) in kinds.iter().zip(&summary.by_kind) {
        assert_eq!(row["kind"], kind.as_str());
        assert_eq!(row["ops"], stats.ops);
        assert_eq!(row["errors"], stats.errors);
        assert_eq!(row["p95_ms"].as_f64(), Some(stats.latency_ms.p95));
    }
    assert_eq!(body["total"]["ops"], 1_000);

    let (_, body) = f.get(&format!("/api/results/{a}/errors")).await;
    assert_eq!(body["errors"], summary.total.errors);
    assert_eq!(body["examples"]["CONSTRAINT"], "duplicate key", "{body}");
    assert_eq!(body["by_error_kind"]["CONSTRAINT"], summary.total.errors_by_kind[&ErrorKind::Constraint]);

    let (_, body) = f.get(&format!("/api/results/{a}/server")).await;
    assert_eq!(body["server_stats"]["calls"], 42);

    let (_, body) = f.get(&format!("/api/results/{a}/executions?limit=3")).await;
    let rows = body["executions"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows.iter().map(|r| r["connection"].as_u64().unwrap()).collect::<Vec<_>>(), vec![0, 1, 2]);
    let (_, body) = f.get(&format!("/api/results/{a}/executions")).await;
    assert_eq!(body["executions"][4]["error_kind"], "TIMEOUT");
    let (status, _) = f.get(&format!("/api/results/{a}/executions?limit=lots")).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn exports_as_the_cli_does() {
    let f = fixture().await;
    let a = f.ids[0];
    let response = f.call(Method::GET, &format!("/api/results/{a}/export?format=csv")).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_string();
    assert_eq!(disposition, format!("attachment; filename=\"unistore-run-{a}.csv\""));
    let csv = response.text();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], unistore_core::analysis::SNAPSHOTS_CSV_HEADER);
    assert_eq!(lines.len() - 1, f.seconds * 3, "one row per snapshot and kind (TOTAL and two kinds)");
    assert!(lines[1].contains(",WARMUP,TOTAL,"), "{}", lines[1]);

    let response = f.call(Method::GET, &format!("/api/results/{a}/export?format=json")).await;
    assert!(response.headers()["content-disposition"].to_str().unwrap().ends_with(".json\""));
    let doc: Value = response.json();
    assert_eq!(doc["snapshots"].as_array().unwrap().len(), f.seconds);
    assert_eq!(doc["summary"]["run_id"], a.to_string());
    assert_eq!(doc["workers"][0]["worker_id"], "w1");

    let (status, body) = f.get(&format!("/api/results/{a}/export?format=xlsx")).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("`format`"));
}

#[tokio::test]
async fn compares_finished_runs() {
    let f = fixture().await;
    let [a, b, c, d] = f.ids;
    let (status, body) = f.get(&format!("/api/results/compare?runs={a},{c}")).await;
    assert_eq!(status, 200, "{body}");
    let comparison = &body["comparison"];
    assert_eq!(comparison["runs"], serde_json::json!([a.to_string(), c.to_string()]));
    let rows = comparison["rows"].as_array().unwrap();
    let throughput =
        rows.iter().find(|r| r["kind"].is_null() && r["metric"] == "throughput").expect("a throughput row");
    assert_eq!(throughput["values"][0].as_f64(), Some(f.summaries[0].total.qps));
    assert_eq!(throughput["values"][1].as_f64(), Some(f.summaries[2].total.qps));
    let p99 = rows.iter().find(|r| r["kind"].is_null() && r["metric"] == "p99").expect("a p99 row");
    assert_eq!(p99["values"][1].as_f64(), Some(f.summaries[2].total.latency_ms.p99));
    assert_eq!(body["runs"][1]["run_id"], c.to_string());

    // A failed run is finished: it can be compared.
    let (status, _) = f.get(&format!("/api/results/compare?runs={a},{b}")).await;
    assert_eq!(status, 200);
    let unknown = RunId::new();
    for (query, says) in [
        (format!("runs={a}"), "2 to"),
        (format!("runs={a},{d}"), "still RUNNING"),
        (format!("runs={a},{unknown}"), "not in the results store"),
        (format!("runs={a},{a}"), "named twice"),
        (format!("runs={a},nope"), "not a run id"),
        (format!("runs={a},{c}&confidence=2"), "`confidence`"),
    ] {
        let (status, body) = f.get(&format!("/api/results/compare?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(says), "{query}: {body}");
    }
}

#[tokio::test]
async fn unknown_and_malformed_runs() {
    let f = fixture().await;
    let unknown = RunId::new();
    for tail in ["", "/series", "/kinds", "/executions", "/errors", "/server", "/export?format=csv"] {
        let (status, body) = f.get(&format!("/api/results/{unknown}{tail}")).await;
        assert_eq!(status, 404, "{tail}: {body}");
        assert_eq!(body["error"]["kind"], "not_found");
        assert!(body["error"]["message"].as_str().unwrap().contains(&unknown.to_string()));
        let (status, body) = f.get(&format!("/api/results/not-a-run{tail}")).await;
        assert_eq!(status, 400, "{tail}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("`not-a-run` is not a run id"));
    }
}

#[tokio::test]
async fn deleting_a_run_removes_it_and_only_it() {
    let f = fixture().await;
    let delete = |id: String| {
        let f = &f;
        async move {
            let response = f.call(Method::DELETE, &format!("/api/results/{id}")).await;
            let status = response.status().as_u16();
            (status, response.text())
        }
    };
    // A run still going is refused, and stays.
    let (status, body) = delete(f.ids[3].to_string()).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("is still RUNNING: stop it before deleting it"), "{body}");
    // A finished run goes, with its workers' rows, snapshots and samples; the others stay.
    let (status, body) = delete(f.ids[0].to_string()).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(f.listed("").await, (vec!['d', 'c', 'b'], false));
    for tail in ["", "/series", "/executions"] {
        let (status, _) = f.get(&format!("/api/results/{}{tail}", f.ids[0])).await;
        assert_eq!(status, 404, "{tail}");
    }
    let (status, body) = f.get(&format!("/api/results/{}/series", f.ids[2])).await;
    assert_eq!(status, 200);
    assert_eq!(body["seconds"].as_array().unwrap().len(), f.seconds, "the other run keeps its snapshots");
    // Twice: the second time it is not there.
    let (status, body) = delete(f.ids[0].to_string()).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = delete("not-a-run".into()).await;
    assert_eq!(status, 400);
}
