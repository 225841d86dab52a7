//! The history page with 1,000 stored runs: a temporary SQLite results store filled through the
//! sink, then `GET /history` (the first page: store read + render) through the controller's
//! router, as a browser asks for it. The bound is 200 ms of server time.
//!
//! `cargo bench -p unistore-server --bench history_page`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark's setup fails loudly

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use criterion::{criterion_group, criterion_main, Criterion};
use tower::ServiceExt;
use unistore_core::RunId;
use unistore_server::{router, AppState};

const RUNS: usize = 1_000;

fn history_page(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/results.db", dir.path().display());
    let results = runtime.block_on(async {
        let store = unistore_adapters::open_results(&url).await.unwrap();
        let start = chrono::Utc::now() - chrono::Duration::days(30);
        for i in 0..RUNS {
            let mut s = unistore_core::testkit::sample_summary(RunId::new());
            s.started_at = start + chrono::Duration::minutes(i as i64 * 10);
            s.template = format!("template-{}", i % 7);
            store.sink.write_summary(&s).await.unwrap();
        }
        store
    });
    let app = router(AppState {
        results,
        results_kind: "sqlite".into(),
        orchestrator: None,
        live: Default::default(),
        connections: Default::default(),
    });
    let get = |path: &'static str| {
        let app = app.clone();
        async move {
            let res = app.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let body = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
            assert!(body.len() > 10_000, "a page of runs");
            body.len()
        }
    };
    // The page really lists 50 of the 1,000 runs.
    let html = runtime.block_on(async {
        let res = app.clone().oneshot(Request::get("/history").body(Body::empty()).unwrap()).await.unwrap();
        String::from_utf8(axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap()
    });
    assert_eq!(html.matches("<tr data-run=").count(), 50);
    assert!(html.contains("Runs 1–50 of <strong>1,000</strong>"));

    let mut group = c.benchmark_group("history_page_1000_runs");
    group.sample_size(30).measurement_time(Duration::from_secs(10));
    group.bench_function("first page", |b| b.iter(|| runtime.block_on(get("/history"))));
    group.bench_function("page 10", |b| b.iter(|| runtime.block_on(get("/history?page=10"))));
    group.bench_function("filtered by template", |b| {
        b.iter(|| runtime.block_on(get("/history?template=template-3&status=COMPLETED")))
    });
    group.bench_function("filtered by table type", |b| {
        b.iter(|| runtime.block_on(get("/history?table_type=postgres")))
    });
    group.finish();
}

criterion_group!(benches, history_page);
criterion_main!(benches);
