//! The controller starts on a free port and answers /healthz from a real results store.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

async fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut buf = String::new();
    stream.read_to_string(&mut buf).await.expect("read");
    let status = buf.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status line");
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn healthz_reports_ok_and_the_results_backend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/results.db", dir.path().display());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_unistore-server"))
        .args(["--listen", "127.0.0.1:0", "--results", &url])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("server starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("server prints its address in time")
        .expect("read")
        .expect("a line");
    let addr = line.trim().strip_prefix("listening on http://").expect("address line").to_string();
    let (status, body) = http_get(&addr, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["status"], "ok");
    assert_eq!(v["results"], "sqlite");
    assert_eq!(v["runs_stored"], 0);
    assert!(dir.path().join("results.db").exists(), "the results store was opened");
    let (status, _) = http_get(&addr, "/nope").await;
    assert_eq!(status, 404);
    child.kill().await.expect("kill");
}
