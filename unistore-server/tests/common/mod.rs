//! Helpers shared by the server's integration tests: start the real binary, talk raw HTTP/1.1.

#![allow(dead_code, clippy::unwrap_used)] // not every test file uses every helper; tests fail loudly

pub mod browser;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Child;

/// A running `unistore-server`, the address it printed and what it logged on stderr.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub log: Arc<Mutex<String>>,
    pub _dir: tempfile::TempDir,
}

impl Server {
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM (through kill(1): the workspace forbids `unsafe`, so no libc::kill).
    pub fn terminate(&self) {
        let pid = self.child.id().expect("still running").to_string();
        let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(status.success());
    }
}

/// Starts the binary on a free port with a fresh SQLite results store. `open_files` runs it under
/// that descriptor limit (soft and hard), as the original report did.
pub async fn start_server(extra_args: &[&str], open_files: Option<u32>) -> Server {
    start_server_at(std::path::Path::new(env!("CARGO_BIN_EXE_unistore-server")), extra_args, open_files).await
}

/// [`start_server`] with the controller program at `bin` (e.g. a copy with nothing beside it).
pub async fn start_server_at(bin: &std::path::Path, extra_args: &[&str], open_files: Option<u32>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/results.db", dir.path().display());
    let mut command = match open_files {
        Some(n) => {
            let mut c = tokio::process::Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}")).arg(bin);
            c
        }
        None => tokio::process::Command::new(bin),
    };
    let mut child = command
        .args(["--listen", "127.0.0.1:0", "--results", &url])
        .args(extra_args)
        .env("UNISTORE_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("server starts");
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = Arc::clone(&log);
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("server prints its address in time; stderr: {}", log.lock().unwrap()))
        .unwrap();
    let Some(line) = line else {
        // The stderr reader may still be catching up with the server's last words.
        tokio::time::sleep(Duration::from_millis(300)).await;
        panic!("the server exited before printing its address; stderr: {}", log.lock().unwrap());
    };
    let addr = line.trim().strip_prefix("listening on http://").expect("address line").to_string();
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Server { child, addr, log, _dir: dir }
}

/// Sends a complete request with `Connection: close` and returns status and body.
pub async fn http_request(addr: &str, request_head_and_body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request_head_and_body.as_bytes()).await.expect("write");
    // Read to the end; a reset after the response (the server closed with request bytes unread,
    // as after a 431) still leaves the response that came before it.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if !raw.is_empty() => {
                eprintln!("read ended with {e} after {} bytes", raw.len());
                break;
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status line");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    http_request(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")).await
}

/// Opens `n` connections that each send half a request head and then stall. Returns the
/// connections made and how many could not connect within 2 s (a full listen backlog).
pub async fn open_stalled(addr: &str, n: usize) -> (Vec<TcpStream>, usize) {
    let mut streams = Vec::with_capacity(n);
    let mut failed = 0;
    for _ in 0..n {
        match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await {
            Ok(Ok(mut s)) => {
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: ")
                    .await
                    .expect("write half a head");
                streams.push(s);
            }
            _ => failed += 1,
        }
    }
    (streams, failed)
}

/// How many of `streams` the server closed before `deadline` (EOF or reset; a 408 before the
/// close counts as closed too).
pub async fn count_closed_by(streams: &mut [TcpStream], deadline: Instant) -> usize {
    let mut closed = 0;
    for s in streams.iter_mut() {
        let mut buf = [0u8; 512];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed += 1;
                    break;
                }
                Ok(Ok(_)) => continue, // a response before the close: keep reading to the end
                Err(_) => break,       // still open at the deadline
            }
        }
    }
    closed
}

/// GET /healthz with an overall deadline; `None` if it did not answer in time.
pub async fn healthz_within(addr: &str, limit: Duration) -> Option<(u16, Duration)> {
    let started = Instant::now();
    tokio::time::timeout(limit, http_get(addr, "/healthz")).await.ok().map(|(s, _)| (s, started.elapsed()))
}
