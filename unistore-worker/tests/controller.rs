//! The controller's runs API with real processes: `unistore-server` on the embedded SQLite
//! store (no setup) starting `unistore-worker join` processes; bad requests; a worker joining
//! after warmup; a controller killed and restarted mid-run.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::text;

fn server_bin() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_unistore-worker")).with_file_name("unistore-server");
    assert!(path.exists(), "{} is missing: build the workspace (cargo test --workspace)", path.display());
    path
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(data: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(server_bin());
        cmd.args(["--listen", "127.0.0.1:0", "--heartbeat-timeout", "5s"])
            .arg("--worker-bin")
            .arg(env!("CARGO_BIN_EXE_unistore-worker"))
            .env("UNISTORE_DATA_DIR", data)
            .env_remove("UNISTORE_RESULTS")
            .env_remove("UNISTORE_CONTROL")
            .env("UNISTORE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("no address: {line}"))
            .to_string();
        Server { child, base }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn call(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        let mut req = match method {
            "GET" => c.get(url),
            _ => c.post(url),
        };
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        (status, value)
    })
}

/// A template on the demo database (created by a first bench in `data`).
fn demo_template(data: &Path, workers: u32, connections: u32, warmup: &str, measurement: &str) -> Value {
    let first = support::bench(data, &["--duration", "1s", "--warmup", "0s", "--no-results"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    json!({
        "name": "api-run",
        "target": format!("sqlite://{}", data.join("demo.db").display()),
        "table": "demo_orders",
        "mix": {"POINT_LOOKUP": 100},
        "load": {"mode": "CONCURRENCY", "connections": connections},
        "scaling": {"mode": "FIXED", "workers": workers},
        "phases": {"warmup": warmup, "measurement": measurement},
    })
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_api_starts_watches_and_finishes_a_multi_worker_run() {
    let data = tempfile::tempdir().unwrap();
    let template = demo_template(data.path(), 2, 4, "1s", "3s");
    let server = Server::start(data.path(), &[]);
    let runs = format!("{}/api/runs", server.base);
    let (status, created) = call("POST", &runs, Some(json!({ "template": template })));
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "PREPARED");
    let id = created["run_id"].as_str().unwrap().to_string();
    let run = format!("{runs}/{id}");
    let (status, started) = call("POST", &format!("{run}/start"), None);
    assert_eq!(status, 200, "{started}");
    let (status, again) = call("POST", &format!("{run}/start"), None);
    assert_eq!(status, 409, "starting twice: {again}");
    assert!(
        again["error"]["message"].as_str().unwrap().contains("only a PREPARED run can be started"),
        "{again}"
    );
    let mut saw_live = false;
    wait_for("the run to finish", Duration::from_secs(60), || {
        let (_, v) = call("GET", &run, None);
        if v["live"]["total"]["ops"].as_u64().is_some_and(|n| n > 0) {
            saw_live = true;
            assert!(v["workers"].as_array().unwrap().len() == 2, "{v}");
            assert!(v["elapsed_s"].as_f64().is_some());
        }
        v["status"] == "COMPLETED" || v["status"] == "FAILED" || v["status"] == "CANCELLED"
    });
    let (_, done) = call("GET", &run, None);
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert!(saw_live, "the live figures (merged pushes of the workers) were shown while it ran");
    let (status, list) = call("GET", &runs, None);
    assert_eq!(status, 200);
    assert!(list.as_array().unwrap().iter().any(|r| r["run_id"] == id.as_str()));
    let (status, stop) = call("POST", &format!("{run}/stop"), None);
    assert_eq!(status, 409, "stopping a finished run: {stop}");
}

#[test]
fn the_api_refuses_bad_requests_and_creates_nothing() {
    let data = tempfile::tempdir().unwrap();
    let template = demo_template(data.path(), 1, 2, "0s", "1s");
    let server = Server::start(data.path(), &[]);
    let runs = format!("{}/api/runs", server.base);
    let mut bounded = template.clone();
    bounded["scaling"] =
        json!({"mode": "BOUNDED", "min_workers": 3, "max_workers": 2, "max_connections_per_worker": 4});
    let (status, v) = call("POST", &runs, Some(json!({ "template": bounded })));
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("min_workers 3 is above max_workers 2"), "{v}");
    let mut crowded = template.clone();
    crowded["scaling"] = json!({"mode": "FIXED", "workers": 4});
    let (status, v) = call("POST", &runs, Some(json!({ "template": crowded })));
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("4 workers for 2 connections"), "{v}");
    let (status, v) = call("POST", &runs, Some(json!({ "template_id": "no-such-template" })));
    assert_eq!(status, 404, "{v}");
    let (status, v) = call("GET", &format!("{runs}/{}", unistore_core::RunId::new()), None);
    assert_eq!(status, 404, "{v}");
    let (status, v) = call("POST", &format!("{runs}/not-a-uuid/start"), None);
    assert_eq!(status, 400, "{v}");
    let (_, list) = call("GET", &runs, None);
    assert_eq!(list.as_array().unwrap().len(), 0, "nothing was created: {list}");
    // A prepared run stopped before it starts is cancelled with the reason.
    let (_, created) = call("POST", &runs, Some(json!({ "template": template })));
    let id = created["run_id"].as_str().unwrap();
    let (status, v) = call("POST", &format!("{runs}/{id}/stop"), Some(json!({"reason": "changed my mind"})));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "CANCELLED");
    assert!(v["reason"].as_str().unwrap().contains("changed my mind"));
}

#[test]
fn a_worker_joining_after_warmup_starts_in_measurement() {
    let data = tempfile::tempdir().unwrap();
    let template = demo_template(data.path(), 1, 2, "2s", "5s");
    let server = Server::start(data.path(), &[]);
    let runs = format!("{}/api/runs", server.base);
    let (_, created) = call("POST", &runs, Some(json!({ "template": template })));
    let id = created["run_id"].as_str().unwrap().to_string();
    let (status, _) = call("POST", &format!("{runs}/{id}/start"), None);
    assert_eq!(status, 200);
    wait_for("the measurement phase", Duration::from_secs(60), || {
        call("GET", &format!("{runs}/{id}"), None).1["phase"] == "MEASUREMENT"
    });
    let out = support::worker(data.path())
        .args([
            "join",
            "--run-id",
            &id,
            "--worker-id",
            "worker-late",
            "--worker-index",
            "0",
            "--worker-count",
            "1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_for("the run to finish", Duration::from_secs(60), || {
        call("GET", &format!("{runs}/{id}"), None).1["status"] == "COMPLETED"
    });
    let late = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let store = unistore_adapters::open_results(&format!(
            "sqlite://{}",
            data.path().join("results.db").display()
        ))
        .await
        .unwrap();
        store
            .reader
            .summary(id.parse().unwrap(), Some("worker-late"))
            .await
            .unwrap()
            .expect("the late worker's row")
    });
    assert_eq!(late.warmup_ops, 0, "a worker joining after warmup does not warm up");
    assert!(late.total.ops > 0, "it measured");
    assert!(late.duration_s < 4.9, "it measured only the rest of the window: {}", late.duration_s);
}

#[test]
fn workers_stop_when_their_controller_dies_and_a_restarted_controller_fails_the_run() {
    let data = tempfile::tempdir().unwrap();
    let template = demo_template(data.path(), 2, 2, "0s", "60s");
    let mut server = Server::start(data.path(), &[("UNISTORE_CONTROLLER_TIMEOUT", "3s")]);
    let runs = format!("{}/api/runs", server.base);
    let (_, created) = call("POST", &runs, Some(json!({ "template": template })));
    let id = created["run_id"].as_str().unwrap().to_string();
    call("POST", &format!("{runs}/{id}/start"), None);
    let db = data.path().join("results.db");
    let running = || {
        support::sqlite_count(
            &db,
            &format!("SELECT count(*) FROM WORKER_HEARTBEATS WHERE RUN_ID = '{id}' AND STATE = 'RUNNING'"),
        )
    };
    wait_for("both workers running", Duration::from_secs(60), || running() == 2);
    server.kill();
    let killed = Instant::now();
    wait_for("the workers to stop by themselves", Duration::from_secs(30), || {
        support::sqlite_count(
            &db,
            &format!("SELECT count(*) FROM WORKER_HEARTBEATS WHERE RUN_ID = '{id}' AND STATE = 'FINISHED'"),
        ) == 2
    });
    assert!(
        killed.elapsed() < Duration::from_secs(20),
        "they stopped within their timeout: {:?}",
        killed.elapsed()
    );
    // The run is still RUNNING in the store; a restarted controller notices nobody drives it.
    let server = Server::start(data.path(), &[]);
    let url = format!("{}/api/runs/{id}", server.base);
    // Once the old controller's last beat is older than the heartbeat timeout (5 s here).
    wait_for("the restarted controller to fail the run", Duration::from_secs(30), || {
        call("GET", &url, None).1["status"] != "RUNNING"
    });
    let (_, v) = call("GET", &url, None);
    assert_eq!(v["status"], "FAILED", "{v}");
    assert!(v["reason"].as_str().unwrap().contains("controller restarted"), "{v}");
}

#[test]
fn a_restarted_controller_reattaches_workers_that_are_still_running() {
    let data = tempfile::tempdir().unwrap();
    let template = demo_template(data.path(), 2, 2, "0s", "12s");
    let mut server = Server::start(data.path(), &[]);
    let runs = format!("{}/api/runs", server.base);
    let (_, created) = call("POST", &runs, Some(json!({ "template": template })));
    let id = created["run_id"].as_str().unwrap().to_string();
    call("POST", &format!("{runs}/{id}/start"), None);
    let db = data.path().join("results.db");
    wait_for("both workers running", Duration::from_secs(60), || {
        support::sqlite_count(
            &db,
            &format!("SELECT count(*) FROM WORKER_HEARTBEATS WHERE RUN_ID = '{id}' AND STATE = 'RUNNING'"),
        ) == 2
    });
    server.kill();
    let server = Server::start(data.path(), &[]);
    let url = format!("{}/api/runs/{id}", server.base);
    wait_for("the re-attached run to finish", Duration::from_secs(60), || {
        let status = call("GET", &url, None).1["status"].clone();
        status != "RUNNING" && status != "STOPPING"
    });
    let (_, v) = call("GET", &url, None);
    assert_eq!(v["status"], "COMPLETED", "{v}");
    let parent =
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
            let store = unistore_adapters::open_results(&format!("sqlite://{}", db.display())).await.unwrap();
            store.reader.summary(id.parse().unwrap(), None).await.unwrap().expect("the run's row")
        });
    assert!(parent.warnings.iter().any(|w| w.contains("re-attached")), "{:?}", parent.warnings);
    assert!(parent.total.ops > 0);
    assert_eq!(parent.connections, 2, "both workers' rows are rolled up");
}

/// Reads one socket's messages until the run's last one (or the limit).
async fn read_socket(url: &str) -> Vec<Value> {
    use futures::StreamExt;
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

/// `GET /ws/test/{id}`: one message a second while the run goes, the same text to every
/// socket (one computation per run per second), and a last message with the stored figures.
#[test]
fn the_live_socket_sends_every_browser_the_same_message_each_second() {
    let data = tempfile::tempdir().unwrap();
    let template = demo_template(data.path(), 2, 4, "1s", "4s");
    let server = Server::start(data.path(), &[]);
    let runs = format!("{}/api/runs", server.base);
    let (status, created) = call("POST", &runs, Some(json!({ "template": template })));
    assert_eq!(status, 201, "{created}");
    let id = created["run_id"].as_str().unwrap().to_string();
    let ws = format!("{}/ws/test/{id}", server.base.replacen("http://", "ws://", 1));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (a, b) = rt.block_on(async {
        let a = tokio::spawn({
            let ws = ws.clone();
            async move { read_socket(&ws).await }
        });
        let b = tokio::spawn({
            let ws = ws.clone();
            async move { read_socket(&ws).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let start = format!("{runs}/{id}/start");
        let (status, _) = tokio::task::spawn_blocking(move || call("POST", &start, None)).await.unwrap();
        assert_eq!(status, 200);
        (a.await.unwrap(), b.await.unwrap())
    });
    let last = a.last().unwrap();
    assert_eq!(last["final"], true, "{last}");
    assert_eq!(last["status"], "COMPLETED", "{last}");
    let stored = support::summaries(data.path(), id.parse().unwrap(), &[]).0;
    assert_eq!(
        last["summary"]["ops"].as_u64(),
        Some(stored.total.ops),
        "the last message is the stored summary"
    );
    // While it ran: live figures merged from both workers, phases with the time left.
    let live: Vec<&Value> = a.iter().filter(|m| m["live"]["qps"].as_f64().is_some_and(|q| q > 0.0)).collect();
    assert!(live.len() >= 2, "live figures in {} messages: {a:?}", live.len());
    assert!(live.iter().any(|m| m["workers"].as_array().is_some_and(|w| w.len() == 2)), "{live:?}");
    let phases = &live[0]["phases"];
    assert_eq!(phases[1]["phase"], "MEASUREMENT", "{phases}");
    assert_eq!(phases[1]["length_s"].as_f64(), Some(4.0));
    // One message a second: consecutive numbers over the run's 5 to 6 seconds.
    let seqs: Vec<u64> = a.iter().filter_map(|m| m["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert!((5..=20).contains(&seqs.len()), "about one a second: {seqs:?}");
    // Every socket gets the same text for the same second.
    for m in &b {
        if let Some(same) = a.iter().find(|x| x["seq"] == m["seq"]) {
            assert_eq!(same, m, "one computation for every socket");
        }
    }
    assert!(
        b.iter().filter(|m| a.contains(m)).count() >= seqs.len() - 1,
        "both sockets got the run's messages"
    );

    // A run that does not exist, and a path that is not a run id.
    let (unknown, bad) = rt.block_on(async {
        let base = server.base.replacen("http://", "ws://", 1);
        (
            read_socket(&format!("{base}/ws/test/5f0c2a9e-0000-4000-8000-000000000000")).await,
            read_socket(&format!("{base}/ws/test/nope")).await,
        )
    });
    assert!(unknown[0]["error"].as_str().unwrap().starts_with("no run"), "{unknown:?}");
    assert!(bad[0]["error"].as_str().unwrap().contains("is not a run id"), "{bad:?}");
}
