//! Benchmark, not a test (ignored; run it on purpose):
//!
//! ```text
//! cargo test -p unistore-server --test bench_ui_ws -- --ignored --nocapture
//! ```
//!
//! 50 WebSocket clients on one running run: the controller's CPU (utime + stime of the
//! `unistore-server` process, from `/proc/<pid>/stat`) and the run's throughput, in windows
//! that alternate without and with the clients, in one run so both see the same table and
//! machine. Throughput per window comes from the worker's stored one-second snapshots whose
//! end falls inside the window (the first second of a window is left out: clients connect or
//! leave then). Prints one line per window and the means.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // a benchmark prints

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{json, Value};

const CLIENTS: usize = 50;
const WINDOW: Duration = Duration::from_secs(6);
const PAIRS: usize = 5;

/// CPU seconds (user + system) the process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let hz: f64 = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0);
    ticks / hz
}

struct Window {
    with_clients: bool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    cpu_pct: f64,
    messages: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run it with --ignored --nocapture"]
async fn fifty_websocket_clients_on_one_run() {
    let data = tempfile::tempdir().unwrap().keep();
    std::env::set_var("UNISTORE_DATA_DIR", &data);
    unistore_adapters::sqlite::demo::ensure_demo_database(&data.join("demo.db")).unwrap();
    let server = common::start_server(&[], None).await;
    let base = format!("http://{}", server.addr);
    let pid = server.child.id().unwrap();
    let http = reqwest::Client::new();
    let measurement = WINDOW.as_secs() * (2 * PAIRS as u64) + 10;
    let template = json!({
        "name": "bench-ui-ws",
        "target": format!("sqlite://{}", data.join("demo.db").display()),
        "table": unistore_adapters::sqlite::demo::DEMO_TABLE,
        "mix": {"POINT_LOOKUP": 100},
        "load": {"mode": "CONCURRENCY", "connections": 2},
        "phases": {"warmup": "2s", "measurement": format!("{measurement}s")},
    });
    let created: Value = http
        .post(format!("{base}/api/runs"))
        .json(&json!({ "template": template }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["run_id"].as_str().unwrap().to_string();
    assert_eq!(http.post(format!("{base}/api/runs/{id}/start")).send().await.unwrap().status(), 200);
    // Into the measurement, with a margin.
    loop {
        let v: Value = http.get(format!("{base}/api/runs/{id}")).send().await.unwrap().json().await.unwrap();
        if v["phase"] == "MEASUREMENT" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let ws_url = format!("ws://{}/ws/test/{id}", server.addr);
    let mut windows = Vec::new();
    for i in 0..2 * PAIRS {
        let with_clients = i % 2 == 1;
        let mut clients = Vec::new();
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        if with_clients {
            for _ in 0..CLIENTS {
                let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
                let counter = counter.clone();
                clients.push(tokio::spawn(async move {
                    while let Some(Ok(_)) = ws.next().await {
                        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }));
            }
        }
        let from = Utc::now();
        let cpu0 = cpu_seconds(pid);
        let t0 = Instant::now();
        tokio::time::sleep(WINDOW).await;
        let cpu_pct = 100.0 * (cpu_seconds(pid) - cpu0) / t0.elapsed().as_secs_f64();
        let to = Utc::now();
        for c in clients {
            c.abort();
        }
        windows.push(Window {
            with_clients,
            from,
            to,
            cpu_pct,
            messages: counter.load(std::sync::atomic::Ordering::Relaxed),
        });
    }
    let _ = http
        .post(format!("{base}/api/runs/{id}/stop"))
        .json(&json!({"reason": "benchmark over"}))
        .send()
        .await;
    // The worker writes its snapshots in batches: wait for the run to end.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v: Value = http.get(format!("{base}/api/runs/{id}")).send().await.unwrap().json().await.unwrap();
        if ["COMPLETED", "CANCELLED", "FAILED"].contains(&v["status"].as_str().unwrap_or(""))
            || Instant::now() > deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let url = format!("sqlite://{}", server._dir.path().join("results.db").display());
    let store = unistore_adapters::open_results(&url).await.unwrap();
    let snapshots = store.reader.snapshots(id.parse().unwrap()).await.unwrap();

    println!("window  clients  controller CPU  run QPS     messages");
    let mut sums = [(0.0, 0.0, 0usize); 2];
    let mut window_qps = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        let skip = w.from + chrono::Duration::seconds(1);
        let inside: Vec<_> = snapshots.iter().filter(|s| s.taken_at > skip && s.taken_at <= w.to).collect();
        let ops: u64 = inside.iter().map(|s| s.total.ops).sum();
        let secs: f64 = inside.iter().map(|s| s.interval_s).sum();
        let qps = if secs > 0.0 { ops as f64 / secs } else { 0.0 };
        println!(
            "{i:>6}  {:>7}  {:>12.2} %  {qps:>10.1}  {:>8}",
            if w.with_clients { CLIENTS } else { 0 },
            w.cpu_pct,
            w.messages
        );
        window_qps.push(qps);
        let s = &mut sums[usize::from(w.with_clients)];
        s.0 += w.cpu_pct;
        s.1 += qps;
        s.2 += 1;
    }
    let mean = |s: (f64, f64, usize)| (s.0 / s.2 as f64, s.1 / s.2 as f64);
    let (cpu_without, qps_without) = mean(sums[0]);
    let (cpu_with, qps_with) = mean(sums[1]);
    println!("without clients: controller CPU {cpu_without:.2} %, run {qps_without:.1} ops/s");
    println!("with {CLIENTS} clients: controller CPU {cpu_with:.2} %, run {qps_with:.1} ops/s");
    println!("throughput change with the clients: {:+.2} %", 100.0 * (qps_with - qps_without) / qps_without);
    // Each pair (a window without, the next with) shares the machine's state of the moment;
    // the median of the pairs' ratios is the figure least moved by a noisy neighbour.
    let mut ratios: Vec<f64> =
        window_qps.chunks(2).filter(|p| p.len() == 2 && p[0] > 0.0).map(|p| p[1] / p[0]).collect();
    ratios.sort_by(f64::total_cmp);
    if let Some(median) = ratios.get(ratios.len() / 2) {
        println!(
            "median of the {} pairs' ratios with/without: {median:.4} ({:+.2} %)",
            ratios.len(),
            100.0 * (median - 1.0)
        );
    }
    assert!(
        windows.iter().filter(|w| w.with_clients).all(|w| w.messages >= CLIENTS as u64 * 4),
        "every client got its messages"
    );
}
