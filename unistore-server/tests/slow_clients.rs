//! Issue 8, defect 9: half-sent requests must not hold the controller's connections (or its file
//! descriptors) for ever, and must not starve `/healthz`. These run the real binary.
//!
//! Before the fix (axum::serve, no header timeout), the first test measured: of 200 stalled
//! clients 179 connected and 21 could not (the 128-entry backlog was full), `/healthz` did not
//! answer within 4 s, and 0 of the 179 were closed by the server within 6 s.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::time::{Duration, Instant};

use common::*;

#[tokio::test]
async fn two_hundred_half_sent_requests_under_64_descriptors_are_closed_and_healthz_answers() {
    // The original report's situation: a low descriptor limit and many stalled clients.
    let server = start_server(&["--header-timeout", "300ms"], Some(64)).await;
    let started = Instant::now();
    let (mut stalled, failed) = open_stalled(&server.addr, 200).await;
    assert_eq!(failed, 0, "every stalled client could connect (the listen backlog holds them)");

    // At most 32 connections fit (64 - 32 reserved), so the 200 are served in ~7 rounds of 300 ms.
    let health = healthz_within(&server.addr, Duration::from_secs(5)).await;
    let closed = count_closed_by(&mut stalled, started + Duration::from_secs(6)).await;
    eprintln!("healthz {health:?}; {closed} of 200 closed, all within {:?}", started.elapsed());
    assert!(matches!(health, Some((200, _))), "/healthz with 200 stalled clients: {health:?}");
    assert_eq!(closed, 200, "stalled connections closed by the server within 6 s");

    let log = server.log();
    assert!(
        log.contains("the open-file limit is 64") && log.contains("serving at most 32 connections"),
        "the connection limit was fitted to the descriptor limit: {log}"
    );
    assert!(!log.contains("accept failed"), "the connection limit kept accept() away from EMFILE: {log}");
}

#[tokio::test]
async fn half_sent_requests_are_closed_after_the_header_timeout_not_before() {
    let server = start_server(&["--header-timeout", "1s"], None).await;
    let started = Instant::now();
    let (mut stalled, failed) = open_stalled(&server.addr, 10).await;
    assert_eq!(failed, 0);

    let still_open_early = 10 - count_closed_by(&mut stalled, started + Duration::from_millis(700)).await;
    assert_eq!(still_open_early, 10, "nothing closes them before the header timeout");
    let closed = count_closed_by(&mut stalled, started + Duration::from_millis(2_500)).await;
    assert_eq!(closed, 10, "all closed within the 1 s header timeout plus 1.5 s margin");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let server = start_server(&["--header-timeout", "1s"], None).await;
    let mut stream = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "kept-alive request answered");

    let idle_since = Instant::now();
    let mut streams = [stream];
    assert_eq!(count_closed_by(&mut streams, idle_since + Duration::from_millis(700)).await, 0);
    assert_eq!(count_closed_by(&mut streams, idle_since + Duration::from_millis(2_500)).await, 1);
}

#[tokio::test]
async fn healthz_answers_while_more_stalled_clients_than_the_connection_limit_are_open() {
    // A 10 s header timeout: only making room (closing connections quiet for 1 s when every slot
    // is taken) can let /healthz through within 3 s.
    let server = start_server(&["--header-timeout", "10s", "--max-connections", "16"], None).await;
    let started = Instant::now();
    // 24 > 16: the first 16 take every slot, 8 wait in the backlog ahead of /healthz.
    let (mut stalled, failed) = open_stalled(&server.addr, 24).await;
    assert_eq!(failed, 0);

    let health = healthz_within(&server.addr, Duration::from_secs(3)).await;
    let answered_after = started.elapsed();
    assert!(matches!(health, Some((200, _))), "/healthz answered within 3 s: {health:?}");
    let closed = count_closed_by(&mut stalled, Instant::now() + Duration::from_millis(100)).await;
    eprintln!("healthz after {answered_after:?}; {closed} of 24 stalled clients closed by then");
    // 9 slots were needed: 8 for the stalled clients queued ahead, 1 for /healthz.
    assert!(closed >= 9, "the longest-quiet ones were closed to make room: {closed}");
    assert!(closed < 24, "stalled clients were still open when /healthz answered: {closed} closed");

    let log = server.log();
    assert!(log.contains("connection limit reached") && log.contains("max_connections=16"), "{log}");
}

#[tokio::test]
async fn sigterm_stops_the_server_promptly_with_exit_code_0() {
    let mut server = start_server(&["--header-timeout", "30s"], None).await;
    // A stalled client and an idle keep-alive client must not hold the shutdown up.
    let (_stalled, _) = open_stalled(&server.addr, 1).await;
    let (status, _) = http_get(&server.addr, "/healthz").await;
    assert_eq!(status, 200);
    let mut idle = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    idle.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let _ = idle.read(&mut buf).await.unwrap();

    let signalled = Instant::now();
    server.terminate();
    let status = tokio::time::timeout(Duration::from_secs(3), server.child.wait())
        .await
        .expect("exits within 3 s of SIGTERM")
        .unwrap();
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "log: {}", server.log());
    assert!(took < Duration::from_secs(2), "stopped in {took:?}");
    let log = server.log();
    assert!(log.contains("signal=\"SIGTERM\"") || log.contains("signal=SIGTERM"), "{log}");
    assert!(log.contains("cut_after_grace=0"), "nothing had to be cut: {log}");
    assert!(log.contains("open_at_shutdown=2"), "the stalled and the idle client: {log}");
}

#[tokio::test]
async fn help_never_prints_a_secret_from_the_environment() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_unistore-server"))
        .arg("--help")
        .env("UNISTORE_RESULTS", "postgres://u:secretpw@h/db")
        .env("UNISTORE_LISTEN", "127.0.0.1:9999")
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    let help =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!help.contains("secretpw"), "{help}");
    assert!(!help.contains("9999"), "no environment value at all: {help}");
    assert!(help.contains("[env: UNISTORE_RESULTS]"), "the variable's name is still documented: {help}");
    assert!(help.contains("--header-timeout") && help.contains("--max-connections"), "{help}");
}

#[tokio::test]
async fn a_limit_out_of_range_is_bad_input_with_exit_code_2() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_unistore-server"))
        .args(["--listen", "127.0.0.1:0", "--max-connections", "0"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--max-connections") && stderr.contains("0 is outside 1..="), "{stderr}");

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_unistore-server"))
        .args(["--listen", "127.0.0.1:0", "--max-body", "lots"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a size"));
}
