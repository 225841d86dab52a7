//! The serving layer through the library: per-request limits, WebSockets, graceful shutdown.
//! Real sockets on 127.0.0.1:0, raw HTTP/1.1 from the client side.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::routing::{get, post};
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use unistore_server::{bind_listener, serve, ServerError, ServerLimits, ShutdownReport};

use common::http_request;

struct Running {
    addr: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<ShutdownReport, ServerError>>,
}

impl Running {
    async fn shut_down(mut self) -> ShutdownReport {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap()
    }
}

fn test_router() -> Router {
    Router::new()
        .route("/echo", post(|body: Bytes| async move { body.len().to_string() }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(600)).await;
                "done"
            }),
        )
        .route("/panic", get(panicking_handler))
        .route(
            "/ws",
            get(|ws: WebSocketUpgrade| async move {
                ws.on_upgrade(|mut socket| async move {
                    // Speaks only after several request timeouts have passed.
                    tokio::time::sleep(Duration::from_millis(900)).await;
                    let _ = socket.send(Message::Text("still here".into())).await;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                })
            }),
        )
}

async fn panicking_handler() -> &'static str {
    panic!("boom in a handler")
}

fn small_limits() -> ServerLimits {
    ServerLimits {
        header_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_millis(250),
        max_body_bytes: 1024,
        shutdown_grace: Duration::from_secs(2),
        ..ServerLimits::default()
    }
}

async fn start(router: Router, limits: ServerLimits) -> Running {
    let listener = bind_listener("127.0.0.1:0", &limits).await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, router, limits, async move {
        let _ = stopped.await;
    }));
    Running { addr, stop: Some(stop), task }
}

fn post_with_length(addr: &str, body: &str) -> String {
    format!(
        "POST /echo HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_whether_announced_or_chunked() {
    let server = start(test_router(), small_limits()).await;
    let (status, body) = http_request(&server.addr, &post_with_length(&server.addr, &"x".repeat(1000))).await;
    assert_eq!((status, body.as_str()), (200, "1000"), "a body under the limit is read whole");

    let (status, _) = http_request(&server.addr, &post_with_length(&server.addr, &"x".repeat(1025))).await;
    assert_eq!(status, 413, "Content-Length over the 1 KiB limit");

    // Announced as 10 MB but never sent: refused from the header alone, without waiting for it.
    let started = Instant::now();
    let announced = format!(
        "POST /echo HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 10000000\r\n\r\n",
        server.addr
    );
    let (status, _) = http_request(&server.addr, &announced).await;
    assert_eq!(status, 413);
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "refused before the body: {:?}",
        started.elapsed()
    );

    let chunk = "x".repeat(800);
    let chunked = format!(
        "POST /echo HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n\
         320\r\n{chunk}\r\n320\r\n{chunk}\r\n0\r\n\r\n",
        server.addr
    );
    let (status, _) = http_request(&server.addr, &chunked).await;
    assert_eq!(status, 413, "1600 chunked bytes, no Content-Length");
    server.shut_down().await;
}

#[tokio::test]
async fn a_slow_handler_gets_503_with_a_json_error_at_the_request_timeout() {
    let server = start(test_router(), small_limits()).await;
    let started = Instant::now();
    let (status, body) =
        http_request(&server.addr, "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["kind"], "timeout");
    assert!(error["error"]["message"].as_str().unwrap().contains("250ms"), "{body}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(550),
        "answered after {took:?}"
    );
    server.shut_down().await;
}

#[tokio::test]
async fn a_panicking_handler_gets_500_and_the_server_keeps_serving() {
    let server = start(test_router(), small_limits()).await;
    let (status, body) =
        http_request(&server.addr, "GET /panic HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 500);
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["kind"], "internal");
    assert!(!body.contains("boom"), "the panic message stays in the server log: {body}");
    let (status, body) = http_request(&server.addr, &post_with_length(&server.addr, "abc")).await;
    assert_eq!((status, body.as_str()), (200, "3"));
    server.shut_down().await;
}

#[tokio::test]
async fn an_upgraded_websocket_outlives_the_request_timeout_and_holds_its_connection_slot() {
    let limits = ServerLimits { max_connections: 1, ..small_limits() };
    let server = start(test_router(), limits).await;
    let mut ws = TcpStream::connect(&server.addr).await.unwrap();
    let handshake = "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                     Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    ws.write_all(handshake.as_bytes()).await.unwrap();
    let started = Instant::now();

    // The only slot belongs to the WebSocket: another client waits in the backlog meanwhile.
    let addr = server.addr.clone();
    let other = tokio::spawn(async move {
        let (status, _) = http_request(&addr, &post_with_length(&addr, "abcd")).await;
        (status, Instant::now())
    });

    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&received).contains("still here") {
        let n = tokio::time::timeout(Duration::from_secs(3), ws.read(&mut buf)).await.unwrap().unwrap();
        assert_ne!(n, 0, "closed early: {}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(started.elapsed() >= Duration::from_millis(900), "the message came after 900 ms, past 250 ms");
    assert!(!other.is_finished(), "the second client waits while the WebSocket holds the only slot");
    drop(ws);

    let (status, answered_at) = tokio::time::timeout(Duration::from_secs(3), other).await.unwrap().unwrap();
    assert_eq!(status, 200);
    assert!(answered_at.duration_since(started) >= Duration::from_millis(900));
    server.shut_down().await;
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish_and_returns_promptly() {
    let server =
        start(test_router(), ServerLimits { request_timeout: Duration::from_secs(5), ..small_limits() })
            .await;
    let addr = server.addr.clone();
    let in_flight = tokio::spawn(async move {
        http_request(&addr, "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await
    });
    tokio::time::sleep(Duration::from_millis(150)).await; // the request is in the handler now
    let started = Instant::now();
    let report = server.shut_down().await;
    let took = started.elapsed();

    assert_eq!(in_flight.await.unwrap(), (200, "done".to_string()), "the request in flight finished");
    assert_eq!(report.open_at_shutdown, 1);
    assert_eq!(report.cut_after_grace, 0);
    assert_eq!(report.connections_accepted, 1);
    assert!(took < Duration::from_millis(1_500), "shutdown waited only for the request: {took:?}");
}

#[tokio::test]
async fn after_shutdown_the_port_refuses_connections() {
    let server = start(test_router(), small_limits()).await;
    let addr = server.addr.clone();
    server.shut_down().await;
    let refused = TcpStream::connect(&addr).await;
    assert!(refused.is_err(), "the listener is closed once serve returns");
}

#[tokio::test]
async fn a_request_longer_than_the_grace_period_is_cut() {
    let limits = ServerLimits {
        request_timeout: Duration::from_secs(5),
        shutdown_grace: Duration::from_millis(200),
        ..small_limits()
    };
    let server = start(test_router(), limits).await;
    let addr = server.addr.clone();
    let in_flight = tokio::spawn(async move {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        raw
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = Instant::now();
    let report = server.shut_down().await;
    let took = started.elapsed();
    assert_eq!((report.open_at_shutdown, report.cut_after_grace), (1, 1));
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(2), "{took:?}");
    assert!(in_flight.await.unwrap().is_empty(), "the cut request got no response");
}

#[tokio::test]
async fn invalid_limits_are_refused_before_serving() {
    let limits = ServerLimits { max_connections: 0, ..ServerLimits::default() };
    let listener = bind_listener("127.0.0.1:0", &ServerLimits::default()).await.unwrap();
    let error = serve(listener, test_router(), limits, async {}).await.unwrap_err();
    assert!(error.to_string().contains("--max-connections"), "{error}");
}

#[tokio::test]
async fn a_request_head_over_the_size_limit_gets_431() {
    let limits = ServerLimits { max_header_bytes: 16 * 1024, ..small_limits() };
    let server = start(test_router(), limits).await;
    let big = format!(
        "GET /slow HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "y".repeat(20_000)
    );
    let (status, _) = http_request(&server.addr, &big).await;
    assert_eq!(status, 431);
    let fits = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        "y".repeat(8_000)
    );
    assert_eq!(http_request(&server.addr, &fits).await, (200, "2".to_string()));
    server.shut_down().await;
}

#[tokio::test]
async fn connections_closed_for_a_missing_head_are_counted() {
    let limits = ServerLimits { header_timeout: Duration::from_millis(300), ..small_limits() };
    let server = start(test_router(), limits).await;
    let (mut stalled, _) = common::open_stalled(&server.addr, 3).await;
    let silent = TcpStream::connect(&server.addr).await.unwrap(); // sends nothing at all
    let mut all: Vec<TcpStream> = stalled.drain(..).chain(std::iter::once(silent)).collect();
    let closed = common::count_closed_by(&mut all, Instant::now() + Duration::from_secs(2)).await;
    assert_eq!(closed, 4, "a client that sends nothing is closed like one that sends half a head");
    let report = server.shut_down().await;
    assert_eq!(report.closed_by_header_timeout, 4);
    assert_eq!(report.connections_accepted, 4);
    assert_eq!(report.open_at_shutdown, 0);
}
