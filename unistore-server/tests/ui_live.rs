//! The live run: the WebSocket's figures against the workers' merged snapshots, and the run
//! page `/runs/{id}` in headless Chromium (start, live updates, a reconnect, stop, the link to
//! the stored run). The runs' workers are the server's own `worker join` (no `--worker-bin`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::browser::{self, Browser};
use futures::StreamExt;
use serde_json::{json, Value};
use unistore_core::orchestrator::LiveRun;

/// One data directory for the whole test binary, holding the demo database; set as
/// `UNISTORE_DATA_DIR` (inherited by the server and its workers) before any server starts.
fn data_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        std::env::set_var("UNISTORE_DATA_DIR", &dir);
        unistore_adapters::sqlite::demo::ensure_demo_database(&dir.join("demo.db")).unwrap();
        dir
    })
}

/// A template on the demo table, stored through `/api/templates`; returns its id.
async fn store_template(http: &reqwest::Client, base: &str, name: &str, extra: Value) -> String {
    let mut template = json!({
        "name": name,
        "target": format!("sqlite://{}", data_dir().join("demo.db").display()),
        "table": unistore_adapters::sqlite::demo::DEMO_TABLE,
        "mix": {"POINT_LOOKUP": 80, "RANGE_SCAN": 20},
        "load": {"mode": "CONCURRENCY", "connections": 2},
        "phases": {"warmup": "1s", "measurement": "8s"},
        "slo": {"TOTAL": {"p99_ms": 500.0, "max_error_rate": 0.01}, "POINT_LOOKUP": {"min_qps": 1.0}},
    });
    for (k, v) in extra.as_object().unwrap() {
        template[k] = v.clone();
    }
    let resp = http
        .post(format!("{base}/api/templates"))
        .json(&json!({ "template": template }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
}

async fn create_run(http: &reqwest::Client, base: &str, template_id: &str) -> String {
    let resp = http
        .post(format!("{base}/api/runs"))
        .json(&json!({ "template_id": template_id }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let row: Value = resp.json().await.unwrap();
    assert_eq!(row["status"], "PREPARED");
    row["run_id"].as_str().unwrap().to_string()
}

/// Every message of one socket until the run's last.
async fn read_socket(url: &str) -> Vec<Value> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            let last = v["final"] == true;
            out.push(v);
            if last {
                break;
            }
        }
    }
    out
}

fn close(a: &Value, b: f64, what: &str) {
    let a = a.as_f64().unwrap_or_else(|| panic!("{what} is not a number: {a}"));
    assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{what}: the message says {a}, the snapshots {b}");
}

/// The socket's figures are the exact merge of the workers' snapshots it names (each worker's
/// `seq`), read back from the results store: totals, percentiles, in flight, per kind and per
/// worker. Phases and the time left move with the run, and the last message is the stored one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_figures_are_the_merged_snapshots() {
    data_dir();
    let server = common::start_server(&[], None).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let template = store_template(
        &http,
        &base,
        "ws-figures",
        json!({"scaling": {"mode": "FIXED", "workers": 2}, "load": {"mode": "CONCURRENCY", "connections": 4},
               "phases": {"warmup": "1s", "measurement": "4s"}}),
    )
    .await;
    let id = create_run(&http, &base, &template).await;
    let reader = tokio::spawn({
        let url = format!("ws://{}/ws/test/{id}", server.addr);
        async move { read_socket(&url).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resp = http.post(format!("{base}/api/runs/{id}/start")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let messages = reader.await.unwrap();
    let last = messages.last().unwrap();
    assert_eq!(last["final"], true, "{last}");
    assert_eq!(last["status"], "COMPLETED", "{last}");

    let url = format!("sqlite://{}", server._dir.path().join("results.db").display());
    let store = unistore_adapters::open_results(&url).await.unwrap();
    let snapshots = store.reader.snapshots(id.parse().unwrap()).await.unwrap();
    let summary = store.reader.summary(id.parse().unwrap(), None).await.unwrap().unwrap();
    assert_eq!(last["summary"]["ops"].as_u64(), Some(summary.total.ops));
    close(&last["summary"]["p99_ms"], summary.total.latency_ms.p99, "final p99");
    assert_eq!(last["summary"]["kinds"].as_array().unwrap().len(), summary.by_kind.len());

    let mut checked = 0;
    let mut phases_seen = Vec::new();
    for m in messages.iter().filter(|m| m["live"].is_object()) {
        phases_seen.push(m["phase"].as_str().unwrap().to_string());
        let mut merged = LiveRun::default();
        let workers = m["workers"].as_array().unwrap();
        for w in workers.iter().filter(|w| w["seq"].is_u64()) {
            let s = snapshots
                .iter()
                .find(|s| {
                    s.worker_id == w["worker_id"].as_str().unwrap() && s.seq == w["seq"].as_u64().unwrap()
                })
                .unwrap_or_else(|| panic!("no stored snapshot for {w}"))
                .clone();
            close(&w["qps"], s.total.qps, "a worker's qps");
            assert_eq!(w["second_ops"].as_u64(), Some(s.total.ops));
            assert_eq!(w["connections"].as_u64(), Some(u64::from(s.active_connections)));
            assert!(w["beat_age_s"].as_f64().unwrap() < 5.0, "{w}");
            merged.observe(s);
        }
        let Some(f) = merged.merged().unwrap() else { continue };
        let live = &m["live"];
        assert_eq!(live["ops"].as_u64(), Some(f.total.ops), "{m}");
        assert_eq!(live["errors"].as_u64(), Some(f.total.errors));
        close(&live["qps"], f.total.qps, "qps");
        close(&live["p50_ms"], f.total.latency_ms.p50, "p50");
        close(&live["p95_ms"], f.total.latency_ms.p95, "p95");
        close(&live["p99_ms"], f.total.latency_ms.p99, "p99");
        close(&live["error_rate"], f.total.error_rate(), "error rate");
        close(&live["in_flight"], f.in_flight, "in flight");
        assert_eq!(live["connections"].as_u64(), Some(u64::from(f.active_connections)));
        assert_eq!(live["workers"].as_u64(), Some(f.workers as u64));
        let kinds = live["kinds"].as_array().unwrap();
        assert_eq!(kinds.len(), f.by_kind.len());
        for k in kinds {
            let (_, stats) = f
                .by_kind
                .iter()
                .find(|(kind, _)| kind.as_str() == k["kind"].as_str().unwrap())
                .unwrap_or_else(|| panic!("kind {k}"));
            assert_eq!(k["ops"].as_u64(), Some(stats.ops));
            close(&k["p95_ms"], stats.latency_ms.p95, "a kind's p95");
        }
        // The time left in the current phase is the phase's entry in the list.
        let current = m["phases"].as_array().unwrap().iter().find(|p| p["phase"] == m["phase"]);
        if let Some(p) = current {
            assert_eq!(p["remaining_s"], m["phase_remaining_s"], "{m}");
            let length = p["length_s"].as_f64().unwrap();
            let left = p["remaining_s"].as_f64().unwrap();
            assert!((0.0..=length).contains(&left), "{p}");
        }
        assert!(m["steps"].is_null(), "not a search: {m}");
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} messages with live figures: {messages:?}");
    assert!(phases_seen.iter().any(|p| p == "MEASUREMENT"), "{phases_seen:?}");
    assert!(
        phases_seen.iter().any(|p| p == "WARMUP") || phases_seen.first().is_some_and(|p| p == "MEASUREMENT")
    );
}

/// The one-command start, `cargo run --release -p unistore-server`, builds the controller
/// alone: a copy of it with no `unistore-worker` beside it and no `--worker-bin` must still run a
/// two-worker benchmark to the end (its workers are its own `worker join`). Before the controller
/// carried the worker's commands, such a run went to FAILED within 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_alone_runs_a_benchmark_to_the_end() {
    data_dir();
    let alone = tempfile::tempdir().unwrap();
    let bin = alone.path().join("unistore-server");
    std::fs::copy(env!("CARGO_BIN_EXE_unistore-server"), &bin).unwrap();
    let server = common::start_server_at(&bin, &[], None).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let template = store_template(
        &http,
        &base,
        "alone",
        json!({"scaling": {"mode": "FIXED", "workers": 2}, "phases": {"warmup": "1s", "measurement": "2s"}}),
    )
    .await;
    let id = create_run(&http, &base, &template).await;
    let resp = http.post(format!("{base}/api/runs/{id}/start")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let view = loop {
        let view: Value =
            http.get(format!("{base}/api/runs/{id}")).send().await.unwrap().json().await.unwrap();
        let status = view["status"].as_str().unwrap().to_string();
        if ["COMPLETED", "CANCELLED", "FAILED"].contains(&status.as_str()) {
            break view;
        }
        assert!(tokio::time::Instant::now() < deadline, "the run did not end: {view}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(view["status"], "COMPLETED", "{view}\nserver log:\n{}", server.log());
    let url = format!("sqlite://{}", server._dir.path().join("results.db").display());
    let store = unistore_adapters::open_results(&url).await.unwrap();
    let summary = store.reader.summary(id.parse().unwrap(), None).await.unwrap().expect("a stored summary");
    assert!(summary.total.ops > 0, "{summary:?}");
    let snapshots = store.reader.snapshots(id.parse().unwrap()).await.unwrap();
    let mut workers: Vec<&str> = snapshots.iter().map(|s| s.worker_id.as_str()).collect();
    workers.sort_unstable();
    workers.dedup();
    assert_eq!(workers.len(), 2, "both workers reported: {workers:?}");

    // The headless multi-worker run of the same program starts its workers the same way.
    let out = tokio::process::Command::new(&bin)
        .args(["worker", "bench", "--workers", "2", "--duration", "2s", "--warmup", "0s", "--results", &url])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let rows = store.reader.runs(100).await.unwrap();
    let own: Vec<_> = rows.iter().filter(|r| r.worker_id.is_none()).collect();
    assert_eq!(own.len(), 2, "the API's run and the bench run: {rows:?}");
    assert!(own.iter().all(|r| r.status == "COMPLETED" && r.ops > 0), "{rows:?}");
    let bench_run = own.iter().find(|r| r.run_id.to_string() != id).unwrap().run_id;
    let bench_workers = rows.iter().filter(|r| r.run_id == bench_run && r.worker_id.is_some()).count();
    assert_eq!(bench_workers, 2, "{rows:?}");
}

/// A `FIND_MAX_CONCURRENCY` run: the socket carries the search's steps as the run's summary
/// stores them, with a verdict each and the current step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_follows_the_step_search() {
    data_dir();
    let server = common::start_server(&[], None).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let template = store_template(
        &http,
        &base,
        "ws-steps",
        json!({"load": {"mode": "FIND_MAX_CONCURRENCY", "start_connections": 1, "step_connections": 1,
                        "step_duration": "2s", "max_connections": 3, "qps_drop_pct": 99.0,
                        "p95_growth_pct": 100000.0, "max_error_rate": 0.5},
               "phases": {"warmup": "1s", "measurement": "1s"}}),
    )
    .await;
    let id = create_run(&http, &base, &template).await;
    let reader = tokio::spawn({
        let url = format!("ws://{}/ws/test/{id}", server.addr);
        async move { read_socket(&url).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(http.post(format!("{base}/api/runs/{id}/start")).send().await.unwrap().status(), 200);
    let messages = reader.await.unwrap();
    let last = messages.last().unwrap();
    assert_eq!(last["status"], "COMPLETED", "{last}");
    let stored = last["summary"]["steps"].as_array().unwrap_or_else(|| panic!("{last}\n{}", server.log()));
    assert_eq!(stored.len(), 3, "{last}");
    let live: Vec<&Value> = messages.iter().filter(|m| m["steps"].is_object()).collect();
    assert!(!live.is_empty(), "{messages:?}");
    // The steps shown while it ran are the stored ones, in order.
    let fullest = live.iter().max_by_key(|m| m["steps"]["steps"].as_array().unwrap().len()).unwrap();
    let shown = fullest["steps"]["steps"].as_array().unwrap();
    assert!(shown.len() >= 2, "{fullest}");
    for (s, st) in shown.iter().zip(stored) {
        assert_eq!(s["connections"], st["connections"]);
        close(&s["qps"], st["qps"].as_f64().unwrap(), "a step's qps");
        close(&s["p95_ms"], st["p95_ms"].as_f64().unwrap(), "a step's p95");
        assert!(["BEST", "OK", "BREACH"].contains(&s["verdict"].as_str().unwrap()), "{s}");
    }
    let steps_in_order: Vec<u64> =
        live.iter().map(|m| m["steps"]["current_step"].as_u64().unwrap()).collect();
    assert!(steps_in_order.windows(2).all(|w| w[0] <= w[1]), "{steps_in_order:?}");
    assert_eq!(live[0]["load_mode"], "FIND_MAX_CONCURRENCY");
}

/// Waits for a condition, with the page's figures in the failure message.
async fn page_json(b: &Browser, js: &str) -> Value {
    let text: String = b.eval(&format!("JSON.stringify({js})")).await;
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_page_follows_a_run_live() {
    let Some(chromium) = browser::chromium() else { return };
    data_dir();
    let server = common::start_server(&[], None).await;
    let origin = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let template = store_template(&http, &origin, "live-page", json!({})).await;
    let id = create_run(&http, &origin, &template).await;
    let b = Browser::launch(&chromium).await;

    // An unknown run is a 404 page with a way back.
    let (status, text) = common::http_get(&server.addr, "/runs/5f0c2a9e-0000-4000-8000-000000000000").await;
    assert_eq!(status, 404);
    assert!(text.contains("Run not found") && text.contains("href=\"/history\""), "{text}");
    assert_eq!(common::http_get(&server.addr, "/runs/nope").await.0, 404);

    b.goto(&format!("{origin}/runs/{id}")).await;
    let header: String = b.eval("document.querySelector('h1').innerText").await;
    assert!(header.contains("live-page") && header.contains("PREPARED"), "{header}");
    let about: String = b.eval("document.querySelector('.kv').innerText").await;
    assert!(about.contains("demo_orders") && about.contains("POINT_LOOKUP 80 %"), "{about}");
    assert!(about.contains("closed loop, 2 connections"), "{about}");
    b.wait_until("document.body.dataset.status === 'PREPARED'", Duration::from_secs(10), "the first message")
        .await;
    assert!(b.eval::<bool>("!document.getElementById('btn-start').hidden").await);
    assert!(b.eval::<bool>("document.getElementById('btn-stop').hidden").await);

    b.run("document.getElementById('btn-start').click()").await;
    b.wait_until(
        "document.body.dataset.phase === 'WARMUP' || document.body.dataset.phase === 'MEASUREMENT'",
        Duration::from_secs(30),
        "the load to start",
    )
    .await;
    let seen_warmup: bool = b.eval("document.body.dataset.phase === 'WARMUP'").await;
    b.wait_until(
        "document.body.dataset.phase === 'MEASUREMENT' && Number(document.body.dataset.points) >= 3",
        Duration::from_secs(30),
        "3 chart updates in measurement",
    )
    .await;
    let updates: u64 = b.eval("Number(document.body.dataset.updates)").await;
    assert!(updates >= 3, "{updates}");
    assert!(seen_warmup || updates >= 3, "the phase moved");

    // What the page shows is the message it received: cards, then the API's view of that second.
    let shown = page_json(
        &b,
        "{qps: document.getElementById('m-qps').textContent, p99: document.getElementById('m-p99').textContent, \
         errors: document.getElementById('m-errors-sub').textContent, msg: UBLive.last, \
         stepper: document.querySelector('#stepper .current').textContent}",
    )
    .await;
    let msg = &shown["msg"];
    let qps = msg["live"]["qps"].as_f64().unwrap();
    assert!(qps > 0.0, "{msg}");
    let on_card: f64 = shown["qps"].as_str().unwrap().replace(',', "").parse().unwrap();
    assert!((on_card - qps).abs() <= 0.05 + 1e-9, "card {on_card} vs message {qps}");
    assert!(
        shown["errors"]
            .as_str()
            .unwrap()
            .contains(&format!("{} ops", fmt_thousands(msg["live"]["ops"].as_u64().unwrap()))),
        "{shown}"
    );
    assert_eq!(shown["stepper"], "Measurement");
    let api: Value = http.get(format!("{origin}/api/runs/{id}")).send().await.unwrap().json().await.unwrap();
    if api["live"]["taken_at"] == msg["live"]["taken_at"] {
        assert_eq!(api["live"]["total"]["ops"], msg["live"]["ops"], "the API's view of the same second");
        close(&api["live"]["total"]["qps"], qps, "the API's qps of the same second");
    } else {
        let api_qps = api["live"]["total"]["qps"].as_f64().unwrap();
        assert!((api_qps - qps).abs() <= qps * 0.5, "a second later: {api_qps} vs {qps}");
    }
    // SLO rows judged against the same figures; worker cards; the per-kind table.
    let slo_rows: u64 = b.eval("document.querySelectorAll('#slo tbody tr').length").await;
    assert_eq!(slo_rows, 3);
    let slo_text: String = b.eval("document.getElementById('slo').innerText").await;
    assert!(slo_text.contains("PASS"), "{slo_text}");
    let workers: u64 = b.eval("document.querySelectorAll('#workers .worker').length").await;
    assert_eq!(workers, 1);
    let kinds: String = b.eval("document.getElementById('kinds').innerText").await;
    assert!(kinds.contains("POINT_LOOKUP") && kinds.contains("RANGE_SCAN"), "{kinds}");
    assert!(b.eval::<bool>("document.querySelectorAll('.uplot').length === 3").await);
    assert!(
        b.eval::<bool>("document.querySelector('#chart-qps .u-legend').textContent.includes('errors')").await
    );

    b.screenshot("run-live").await;
    b.set_width(400).await;
    b.screenshot("run-live-narrow").await;
    let wide: Vec<String> = b
        .eval(
            "[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)\
             .slice(0, 8).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right))",
        )
        .await;
    assert!(!b.overflows().await, "the live page overflows at 400 px: {wide:?}");
    b.set_width(1200).await;

    // A dropped socket: the page reconnects and the updates and charts go on.
    let before: u64 = b.eval("Number(document.body.dataset.points)").await;
    b.run("UBLive.dropSocket()").await;
    b.wait_until("Number(document.body.dataset.sockets) >= 2", Duration::from_secs(10), "a new socket").await;
    b.wait_until(
        &format!("Number(document.body.dataset.points) >= {}", before + 2),
        Duration::from_secs(15),
        "updates after the reconnect",
    )
    .await;

    b.run("document.getElementById('btn-stop').click()").await;
    b.wait_until("document.body.dataset.final === '1'", Duration::from_secs(40), "the final message").await;
    let status: String = b.eval("document.body.dataset.status").await;
    assert_eq!(status, "CANCELLED");
    let link: String = b.eval("document.getElementById('results-link').getAttribute('href')").await;
    assert_eq!(link, format!("/results/{id}"));
    assert!(b.eval::<bool>("!document.getElementById('results-link').hidden").await);
    let notice: String = b.eval("document.getElementById('live-notice').textContent").await;
    assert!(notice.contains("CANCELLED") && notice.contains("stopped from the web UI"), "{notice}");
    b.screenshot("run-live-ended").await;

    // Opened after the end: the stored figures and the link, no live charts.
    b.goto(&format!("{origin}/runs/{id}")).await;
    let ended = page_json(
        &b,
        "{badge: document.getElementById('run-status').textContent, charts: !!document.getElementById('charts'), \
         link: !document.getElementById('results-link').hidden, qps: document.getElementById('m-qps').textContent}",
    )
    .await;
    assert_eq!(ended["badge"], "CANCELLED");
    assert_eq!(ended["charts"], false);
    assert_eq!(ended["link"], true);
    let summary: Value =
        http.get(format!("{origin}/api/results/{id}")).send().await.unwrap().json().await.unwrap();
    let stored_qps = find_number(&summary, "qps").expect("the stored qps");
    assert_eq!(ended["qps"].as_str().unwrap().replace(',', ""), format!("{stored_qps:.1}"), "{summary}");
    b.wait_until("document.body.dataset.final === '1'", Duration::from_secs(10), "the stored run's message")
        .await;
    let slo: String = b.eval("document.getElementById('slo').innerText").await;
    assert!(slo.contains("PASS") && slo.contains("p99"), "the SLOs against the stored figures: {slo}");
    let on_card: String = b.eval("document.getElementById('m-qps').textContent").await;
    assert_eq!(on_card.replace(',', ""), format!("{stored_qps:.1}"));
    // A whole-number rate keeps its decimal on the live card as on the stored page (a run whose
    // rate came out at exactly 16687 ops/s showed "16687" live against "16687.0" stored).
    b.run("UBLive.render({...UBLive.last, summary: {...UBLive.last.summary, qps: 16687}})").await;
    let whole: String = b.eval("document.getElementById('m-qps').textContent").await;
    assert_eq!(whole, "16,687.0");
    b.screenshot("run-ended").await;
    b.assert_clean(&origin);
    b.close().await;
}

fn fmt_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The run's total qps in the results API's summary (`total.qps`).
fn find_number(v: &Value, key: &str) -> Option<f64> {
    v.pointer(&format!("/total/{key}"))
        .or_else(|| v.pointer(&format!("/summary/total/{key}")))
        .and_then(Value::as_f64)
}

/// A socket opened mid-run first gets the run's chart points from its start (the controller
/// follows a run it started even while nobody watches), then the live seconds; a later socket's
/// history holds every second an earlier socket saw, with the same figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_opened_mid_run_gets_the_run_so_far() {
    data_dir();
    let server = common::start_server(&[], None).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let template =
        store_template(&http, &base, "ws-history", json!({"phases": {"warmup": "1s", "measurement": "10s"}}))
            .await;
    let id = create_run(&http, &base, &template).await;
    let resp = http.post(format!("{base}/api/runs/{id}/start")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let url = format!("ws://{}/ws/test/{id}", server.addr);
    // Nobody watches until the load has run 3 seconds (however long the worker took to start).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let view: Value =
            http.get(format!("{base}/api/runs/{id}")).send().await.unwrap().json().await.unwrap();
        if view["elapsed_s"].as_f64().is_some_and(|e| e >= 3.0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the load did not start: {view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let opened = chrono::Utc::now();
    let early = tokio::spawn({
        let url = url.clone();
        async move { read_socket(&url).await }
    });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let late = read_socket(&url).await;
    let early = early.await.unwrap();

    let history = |messages: &[Value]| -> Vec<Value> {
        assert!(messages[0]["history"].is_array(), "the first message is the history: {}", messages[0]);
        assert!(messages[1..].iter().all(|m| m.get("history").is_none()), "the history comes once");
        messages[0]["history"].as_array().unwrap().clone()
    };
    let (early_history, late_history) = (history(&early), history(&late));
    assert!(early_history.len() >= 2, "seconds before the first socket: {early_history:?}");
    // Seconds from before anybody watched: the run was followed from its start.
    let first: chrono::DateTime<chrono::Utc> =
        early_history[0]["taken_at"].as_str().unwrap().parse().unwrap();
    assert!((opened - first).num_milliseconds() >= 1_500, "first point {first}, socket opened {opened}");
    let times =
        |h: &[Value]| h.iter().map(|p| p["taken_at"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let late_times = times(&late_history);
    assert!(late_times.windows(2).all(|w| w[0] < w[1]), "one point a second, in order: {late_times:?}");
    // Every second the early socket saw (its history, then its live messages) before the late
    // socket opened is in the late history, with the same figures.
    let seen_live: Vec<Value> =
        early[1..].iter().filter_map(|m| m["live"].as_object().map(|_| m["live"].clone())).collect();
    let mut compared = 0;
    for point in early_history.iter().chain(seen_live.iter()) {
        let t = point["taken_at"].as_str().unwrap();
        if let Some(same) = late_history.iter().find(|p| p["taken_at"] == t) {
            for key in ["qps", "errors", "p50_ms", "p95_ms", "p99_ms", "connections", "in_flight"] {
                assert_eq!(same[key], point[key], "{key} of the second {t}");
            }
            compared += 1;
        }
    }
    assert!(
        compared > early_history.len(),
        "the late history covers the early socket's seconds ({compared})"
    );
    assert_eq!(late.last().unwrap()["final"], true);
}
