//! `bench --metrics-listen`: a scrape during the run parses as Prometheus text and shows the
//! live figures; the last scrape's counters are the run's totals from its summary, exactly.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use prometheus_parse::{Sample, Scrape, Value};
use support::{bench, json, spawn_bench, text};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A port that was free a moment ago (the listener is dropped before the worker binds it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `bench` whose stderr is read line by line on a thread of its own.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
}

impl Running {
    fn start(data: &Path, args: &[&str]) -> Running {
        let mut child = spawn_bench(data, args);
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines, stderr: Vec::new() }
    }

    /// Waits for a stderr line that starts with `prefix`; `None` when the process ended first.
    fn wait_for(&mut self, prefix: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    self.stderr.push(line.clone());
                    if line.starts_with(prefix) {
                        return Some(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        panic!("no `{prefix}` line within 120 s:\n{}", self.stderr.join("\n"));
    }

    fn wait(mut self) -> (ExitStatus, String) {
        let status = self.child.wait().unwrap();
        self.stderr.extend(self.lines.iter());
        (status, self.stderr.join("\n"))
    }
}

/// Starts `bench ARGS --metrics-listen 127.0.0.1:PORT` on a free port and waits for its
/// endpoint. Another process may take the port between our check and the worker's bind: then
/// once more on another port.
fn start_with_metrics(data: &Path, args: &[&str]) -> (Running, String) {
    for _ in 0..2 {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut all = args.to_vec();
        all.extend(["--metrics-listen", &listen]);
        let mut run = Running::start(data, &all);
        if let Some(line) = run.wait_for("metrics: http://") {
            let url = line["metrics: ".len()..].split_whitespace().next().unwrap().to_string();
            assert_eq!(url, format!("http://{listen}/metrics"));
            return (run, url);
        }
        let (status, stderr) = run.wait();
        assert!(stderr.contains("Address already in use"), "{status}: {stderr}");
    }
    panic!("no free port twice in a row");
}

/// One scrape: the response's content type is OpenMetrics, the text ends with `# EOF`, and
/// Prometheus's text-format parser reads it.
fn scrape(url: &str) -> (String, Scrape) {
    let response = reqwest::blocking::get(url).unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], OPENMETRICS);
    let body = response.text().unwrap();
    assert_eq!(body.lines().last(), Some("# EOF"), "{body}");
    let parsed = Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
    (body, parsed)
}

fn number(s: &Sample) -> f64 {
    match s.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        _ => panic!("{} is not a number: {s:?}", s.metric),
    }
}

fn samples<'a>(scrape: &'a Scrape, metric: &str) -> Vec<&'a Sample> {
    scrape.samples.iter().filter(|s| s.metric == metric).collect()
}

/// The sum of a metric's samples over all their labels.
fn sum(scrape: &Scrape, metric: &str) -> f64 {
    samples(scrape, metric).iter().map(|s| number(s)).sum()
}

fn one(scrape: &Scrape, metric: &str) -> f64 {
    let found = samples(scrape, metric);
    assert_eq!(found.len(), 1, "{metric}: {found:?}");
    number(found[0])
}

fn phase(scrape: &Scrape) -> String {
    let on: Vec<_> = samples(scrape, "unistore_phase").into_iter().filter(|s| number(s) == 1.0).collect();
    assert_eq!(on.len(), 1, "exactly one phase is 1: {on:?}");
    on[0].labels.get("phase").unwrap().to_string()
}

/// What every scrape must show: each family with its type, and a histogram that agrees with
/// the operations counter kind by kind.
fn check_families(body: &str, scrape: &Scrape) {
    for (family, kind) in [
        ("unistore_operations", "counter"),
        ("unistore_errors", "counter"),
        ("unistore_rows", "counter"),
        ("unistore_response_time_seconds", "histogram"),
        ("unistore_late_starts", "counter"),
        ("unistore_active_connections", "gauge"),
        ("unistore_target_connections", "gauge"),
        ("unistore_target_rate", "gauge"),
        ("unistore_backlog", "gauge"),
        ("unistore_phase", "gauge"),
        ("unistore_run_info", "gauge"),
    ] {
        assert!(body.contains(&format!("# TYPE {family} {kind}\n")), "{family} {kind} in\n{body}");
    }
    let ops = samples(scrape, "unistore_operations_total");
    assert!(!ops.is_empty(), "{body}");
    for op in ops {
        let kind = op.labels.get("kind").unwrap();
        let histogram = samples(scrape, "unistore_response_time_seconds")
            .into_iter()
            .find(|s| s.labels.get("kind") == Some(kind))
            .unwrap_or_else(|| panic!("no histogram for {kind}"));
        let Value::Histogram(buckets) = &histogram.value else { panic!("{histogram:?}") };
        assert_eq!(buckets.len(), 19, "{buckets:?}");
        assert!(buckets.windows(2).all(|w| w[0].less_than < w[1].less_than && w[0].count <= w[1].count));
        let last = buckets.last().unwrap();
        assert!(last.less_than.is_infinite());
        let count = samples(scrape, "unistore_response_time_seconds_count")
            .into_iter()
            .find(|s| s.labels.get("kind") == Some(kind))
            .map(number)
            .unwrap();
        assert_eq!(last.count, count, "+Inf bucket is the count for {kind}");
        assert_eq!(count, number(op), "the histogram counts every successful {kind}");
    }
    assert_eq!(samples(scrape, "unistore_run_info").len(), 1);
}

#[test]
fn a_scrape_during_the_run_parses_and_the_last_one_has_the_run_totals() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let (mut run, url) = start_with_metrics(
        dir.path(),
        &[
            "--duration",
            "4s",
            "--warmup",
            "1s",
            "--connections",
            "3",
            "--metrics-linger",
            "10s",
            "--json",
            out.to_str().unwrap(),
        ],
    );

    // During the run: poll until operations have been counted, while the load is on.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (body, live) = loop {
        let (body, live) = scrape(&url);
        if sum(&live, "unistore_operations_total") > 0.0 {
            break (body, live);
        }
        assert!(Instant::now() < deadline, "no operation counted in 60 s:\n{body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    check_families(&body, &live);
    assert!(["WARMUP", "MEASUREMENT"].contains(&phase(&live).as_str()), "{body}");
    assert_eq!(one(&live, "unistore_target_connections"), 3.0);
    let active = one(&live, "unistore_active_connections");
    assert!((1.0..=3.0).contains(&active), "{active}");
    assert_eq!(one(&live, "unistore_target_rate"), 0.0, "closed loop");
    assert_eq!(sum(&live, "unistore_errors_total"), 0.0);
    let sum_s = samples(&live, "unistore_response_time_seconds_sum")[0];
    let count = samples(&live, "unistore_response_time_seconds_count")[0];
    let mean_s = number(sum_s) / number(count);
    assert!(mean_s > 0.0 && mean_s < 1.0, "mean response time {mean_s} s");

    // After the summary, while the endpoint lingers: the counters are the run's totals.
    run.wait_for("metrics: the final figures are served").unwrap_or_else(|| panic!("{:?}", run.stderr));
    let (body, last) = scrape(&url);
    let (status, stderr) = run.wait();
    assert!(status.success(), "{status}: {stderr}");
    check_families(&body, &last);
    let summary = json(&out);
    let ok_ops = sum(&last, "unistore_operations_total") as u64;
    let errors = sum(&last, "unistore_errors_total") as u64;
    let all = summary["completed_ops_all_phases"].as_u64().unwrap();
    assert_eq!(ok_ops + errors, all, "{body}");
    let successful = ["total", "warmup_ops", "cooldown_ops"]
        .map(|k| if k == "total" { summary[k]["ops"].as_u64() } else { summary[k].as_u64() })
        .map(Option::unwrap);
    assert_eq!(ok_ops, successful.iter().sum::<u64>(), "successful operations of every phase");
    assert!(ok_ops > sum(&live, "unistore_operations_total") as u64);
    assert_eq!(one(&last, "unistore_late_starts_total") as u64, summary["late_starts"].as_u64().unwrap());
    assert_eq!(phase(&last), "PROCESSING");
    assert_eq!(one(&last, "unistore_active_connections"), 0.0);
    let info = samples(&last, "unistore_run_info")[0];
    assert_eq!(info.labels.get("run_id"), summary["run_id"].as_str());
    assert_eq!(info.labels.get("table"), Some("demo_orders"));
    assert_eq!(info.labels.get("mode"), Some("CONCURRENCY"));
}

#[test]
fn several_workers_export_their_sum() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let (mut run, url) = start_with_metrics(
        dir.path(),
        &[
            "--workers",
            "2",
            "--connections",
            "4",
            "--duration",
            "3s",
            "--warmup",
            "1s",
            "--metrics-linger",
            "10s",
            "--json",
            out.to_str().unwrap(),
        ],
    );
    run.wait_for("metrics: the final figures are served").unwrap_or_else(|| panic!("{:?}", run.stderr));
    let (body, last) = scrape(&url);
    let (status, stderr) = run.wait();
    assert!(status.success(), "{status}: {stderr}");
    check_families(&body, &last);
    let parent = json(&out);
    assert!(parent["worker_id"].is_null(), "the run's own summary");
    let ops = sum(&last, "unistore_operations_total") as u64 + sum(&last, "unistore_errors_total") as u64;
    assert_eq!(ops, parent["completed_ops_all_phases"].as_u64().unwrap(), "{body}");
    assert_eq!(one(&last, "unistore_target_connections"), 4.0, "two workers' connections, summed");
    assert_eq!(phase(&last), "PROCESSING");
    assert_eq!(samples(&last, "unistore_run_info")[0].labels.get("run_id"), parent["run_id"].as_str());
}

#[test]
fn a_bad_listen_address_or_a_taken_port_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = bench(dir.path(), &["--duration", "1s", "--metrics-listen", "not-an-address"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`not-an-address` is not a listen address"), "{stderr}");

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let json_path = dir.path().join("never.json");
    let out = bench(
        dir.path(),
        &["--duration", "1s", "--metrics-listen", &addr, "--json", json_path.to_str().unwrap()],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains(&format!("--metrics-listen {addr}: cannot listen there")), "{stderr}");
    assert!(!stderr.contains("progress:"), "no load ran: {stderr}");
    assert!(!json_path.exists());

    let out = bench(dir.path(), &["--duration", "1s", "--metrics-linger", "5s"]);
    assert_eq!(out.status.code(), Some(2), "--metrics-linger needs --metrics-listen: {}", text(&out.stderr));
}
