//! The serving layer: an accept loop bounded by [`ServerLimits`], HTTP/1.1 connections on hyper
//! with a header-read timeout, tower layers for the per-request limits, graceful shutdown.
//!
//! Why not `axum::serve`: it exposes neither hyper's header-read timeout nor a connection limit,
//! and a client that sends half a request head would hold its connection (and a descriptor) for
//! ever. Why HTTP/1.1 only: browsers speak HTTP/2 only over TLS, and hyper-util's protocol
//! detection reads the connection preface with no timeout, which would reopen the same hole for
//! a client that sends nothing.

use std::any::Any;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;

use crate::connection::{ConnectionActivity, CountedStream, TrackedService};
use crate::error::{ApiError, ApiErrorKind, ServerError};
use crate::eviction::ConnectionRegistry;
use crate::limits::ServerLimits;

/// How often the "connection limit reached" and "accept failed" warnings may repeat.
const WARNING_INTERVAL: Duration = Duration::from_secs(10);
/// When every slot is taken, a connection quiet this long (or half the header timeout, if less)
/// may be closed to make room; see `eviction`.
const EVICT_AFTER_QUIET: Duration = Duration::from_secs(1);
const ACCEPT_BACKOFF_FIRST: Duration = Duration::from_millis(50);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What happened to the connections when [`serve`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Connections accepted over the server's life.
    pub connections_accepted: u64,
    /// Connections closed because their request head did not arrive within the header timeout
    /// (idle keep-alive connections included).
    pub closed_by_header_timeout: u64,
    /// Quiet connections (half-sent head, idle keep-alive) closed to make room for a new one
    /// while every slot was taken.
    pub closed_to_make_room: u64,
    /// Connections still open when the shutdown signal came.
    pub open_at_shutdown: usize,
    /// Of those, the ones cut because they had not finished within the grace period.
    pub cut_after_grace: usize,
}

/// Binds `addr` (host:port; port 0 picks a free port) with the configured listen backlog.
pub async fn bind_listener(addr: &str, limits: &ServerLimits) -> Result<TcpListener, ServerError> {
    let candidates = tokio::net::lookup_host(addr)
        .await
        .map_err(|source| ServerError::Resolve { addr: addr.to_string(), source })?;
    let mut last_error = None;
    for candidate in candidates {
        match listen_on(candidate, limits.listen_backlog) {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    let source = last_error.unwrap_or_else(|| std::io::Error::other("the name resolved to no address"));
    Err(ServerError::Bind { addr: addr.to_string(), source })
}

fn listen_on(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // A restarted controller must be able to bind while its old connections sit in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Wraps `router` in the per-request limits: body size (413), request timeout (503 with a JSON
/// error) and a panic guard (500 instead of a dropped connection). [`serve`] applies it to the
/// router it is given; it is public for tests that call a router without a socket.
pub fn apply_limits(router: Router, limits: &ServerLimits) -> Router {
    let request_timeout = limits.request_timeout;
    router
        // Both: `DefaultBodyLimit` for axum's extractors (`Json`, `Bytes`, ...), the tower-http
        // layer for handlers that stream the body themselves and to refuse an oversized
        // `Content-Length` before any byte of the body is read.
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        // The timeout ends when the response head is ready: a WebSocket handler answers `101` at
        // once and its socket lives on, so live metrics are not cut by it.
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(move |error: BoxError| async move {
                    request_failed(&error, request_timeout)
                }))
                .timeout(request_timeout),
        )
        .layer(CatchPanicLayer::custom(handler_panicked))
}

fn request_failed(error: &BoxError, timeout: Duration) -> ApiError {
    if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ApiErrorKind::Timeout,
            format!(
                "the request was not answered within {} (the server's --request-timeout)",
                humantime::format_duration(timeout)
            ),
        )
    } else {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ApiErrorKind::Internal,
            format!("request failed: {error}"),
        )
    }
}

fn handler_panicked(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = message, "a request handler panicked (a bug; please report it)");
    // The panic message stays in the log: it may quote data the client should not see.
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        ApiErrorKind::Internal,
        "internal error: a handler panicked; the server log has the details",
    )
    .into_response()
}

/// Serves `router` on `listener` until `shutdown` completes, within `limits`.
///
/// At most `limits.max_connections` connections are open at once; the accept loop waits for a
/// free slot before it accepts, so further clients queue in the kernel's listen backlog instead
/// of piling up tasks and descriptors here. While every slot is taken, the connection quiet the
/// longest (a half-sent head or an idle keep-alive connection, quiet for a second or half the
/// header timeout) is closed to make room; busy connections never are. A connection that does
/// not deliver a complete request head within `limits.header_timeout` is closed. `accept` errors (out of descriptors) are logged
/// and retried with a backoff, never fatal.
///
/// On shutdown the listener is closed at once, idle connections are closed, requests in flight
/// get `limits.shutdown_grace` to finish, and what is left is cut. Upgraded WebSockets are not
/// waited for: their handlers must watch for shutdown themselves.
pub async fn serve<F>(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: F,
) -> Result<ShutdownReport, ServerError>
where
    F: Future<Output = ()> + Send,
{
    limits.validate()?;
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .max_buf_size(limits.max_header_bytes);
    let (stop_sender, stop) = watch::channel(false);
    let shared = Arc::new(Shared {
        http,
        app: apply_limits(router, &limits),
        registry: ConnectionRegistry::default(),
        stop,
        header_timeouts: AtomicU64::new(0),
        evicted: AtomicU64::new(0),
        max_connections: limits.max_connections,
    });
    // Long enough for a client to send its request head; short against the header timeout so
    // that a flood of stalled clients turns over quickly when every slot is taken.
    let evict_after_quiet = (limits.header_timeout / 2).min(EVICT_AFTER_QUIET);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut tasks = JoinSet::new();
    let mut accepted: u64 = 0;
    let mut backoff = ACCEPT_BACKOFF_FIRST;
    let mut saturated_warning = RateLimitedWarning::default();
    let mut accept_warning = RateLimitedWarning::default();
    tokio::pin!(shutdown);

    loop {
        while let Some(ended) = tasks.try_join_next() {
            report_task_end(ended);
        }
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if let Some(repeats) = saturated_warning.due() {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        times_since_last_warning = repeats,
                        closed_by_header_timeout = shared.header_timeouts.load(Ordering::Relaxed),
                        closed_to_make_room = shared.evicted.load(Ordering::Relaxed),
                        "connection limit reached: closing connections quiet for {} to make room; \
                         if none is, new connections wait in the listen backlog (raise \
                         --max-connections if this is real load)",
                        humantime::format_duration(evict_after_quiet)
                    );
                }
                let permit = loop {
                    let asked = shared.registry.evict_longest_quiet(evict_after_quiet);
                    // An asked connection closes at once unless it just became busy; otherwise
                    // look again when a connection may have been quiet long enough.
                    let look_again = if asked { Duration::from_millis(20) } else { evict_after_quiet / 4 };
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break None,
                        permit = slots.clone().acquire_owned() => break permit.ok(),
                        () = tokio::time::sleep(look_again) => {}
                    }
                };
                match permit {
                    Some(permit) => permit,
                    None => break, // shutdown (the semaphore is never closed)
                }
            }
        };
        let accept = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accept = listener.accept() => accept,
        };
        let (stream, peer) = match accept {
            Ok(connection) => {
                backoff = ACCEPT_BACKOFF_FIRST;
                connection
            }
            Err(e) if is_per_connection(&e) => {
                tracing::debug!(error = %e, "a client went away before it was accepted");
                continue;
            }
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or memory: retrying at once would spin, as the
                // pending connection stays in the queue. Wait, then try again.
                if let Some(repeats) = accept_warning.due() {
                    tracing::warn!(
                        error = %e,
                        retry_in = ?backoff,
                        times_since_last_warning = repeats,
                        "accept failed; retrying (if this says too many open files, lower \
                         --max-connections or raise `ulimit -n`)"
                    );
                }
                let pause = backoff;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(pause) => continue,
                }
            }
        };
        accepted += 1;
        // Small JSON answers should leave at once, not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(ConnectionActivity::new());
        let stream = CountedStream::new(stream, permit, limits.write_timeout, Arc::clone(&activity));
        tasks.spawn(serve_connection(Arc::clone(&shared), stream, activity, peer));
    }

    // Refuse new clients at once; queued ones get a reset rather than a wait.
    drop(listener);
    while let Some(ended) = tasks.try_join_next() {
        report_task_end(ended);
    }
    let open_at_shutdown = tasks.len();
    let _ = stop_sender.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while let Some(ended) = tasks.join_next().await {
            report_task_end(ended);
        }
    })
    .await
    .is_ok();
    let cut_after_grace = if drained {
        0
    } else {
        let left = tasks.len();
        tracing::warn!(
            connections = left,
            grace = %humantime::format_duration(limits.shutdown_grace),
            "requests still running after the shutdown grace period: cutting them"
        );
        tasks.shutdown().await;
        left
    };
    Ok(ShutdownReport {
        connections_accepted: accepted,
        closed_by_header_timeout: shared.header_timeouts.load(Ordering::Relaxed),
        closed_to_make_room: shared.evicted.load(Ordering::Relaxed),
        open_at_shutdown,
        cut_after_grace,
    })
}

/// What every connection task shares.
struct Shared {
    http: http1::Builder,
    app: Router,
    registry: ConnectionRegistry,
    stop: watch::Receiver<bool>,
    header_timeouts: AtomicU64,
    evicted: AtomicU64,
    max_connections: usize,
}

async fn serve_connection(
    shared: Arc<Shared>,
    stream: CountedStream,
    activity: Arc<ConnectionActivity>,
    peer: SocketAddr,
) {
    let eviction = shared.registry.register(Arc::clone(&activity), shared.max_connections);
    let service = TowerToHyperService::new(TrackedService::new(shared.app.clone(), Arc::clone(&activity)));
    let connection = shared.http.serve_connection(TokioIo::new(stream), service).with_upgrades();
    tokio::pin!(connection);
    let mut stop = shared.stop.clone();
    let result = loop {
        tokio::select! {
            result = connection.as_mut() => break result,
            () = stopping(&mut stop) => {
                // hyper finishes a request in flight and then closes, and closes an idle
                // connection at once; but it would wait for the rest of a half-sent request head.
                connection.as_mut().graceful_shutdown();
                break match poll_once(connection.as_mut()).await {
                    Poll::Ready(result) => result,
                    // Nothing in flight and nothing left to send: only a request head is awaited,
                    // and a request that has not arrived by now is refused like a new connection.
                    Poll::Pending if activity.is_quiet() => Ok(()),
                    Poll::Pending => connection.await,
                };
            }
            () = eviction.asked_to_close() => {
                // Let hyper take in what has arrived first: a request head that just came in
                // makes the connection busy, and it stays.
                if let Poll::Ready(result) = poll_once(connection.as_mut()).await {
                    break result;
                }
                if activity.is_quiet() {
                    shared.evicted.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "closed a quiet connection to make room for a new one");
                    break Ok(());
                }
                eviction.decline();
            }
        }
    };
    match result {
        Ok(()) => {}
        Err(e) if e.is_timeout() => {
            shared.header_timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "closed a connection that sent no complete request head in time");
        }
        Err(e) => tracing::debug!(%peer, error = %e, "connection ended with an error"),
    }
}

/// Polls `future` once and returns what it said, ready or not.
async fn poll_once<F: Future>(mut future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await
}

/// Completes when the server starts shutting down (or is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; drop it here, not across the caller's await.
    let _ = stop.wait_for(|stopping| *stopping).await.map(drop);
}

fn report_task_end(ended: Result<(), tokio::task::JoinError>) {
    if let Err(e) = ended {
        if e.is_panic() {
            tracing::error!(error = %e, "a connection task panicked (a bug; please report it)");
        }
    }
}

/// Errors of `accept` that concern one client only; the next `accept` can go ahead at once.
fn is_per_connection(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(error.kind(), ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted)
}

/// A warning that repeats at most every [`WARNING_INTERVAL`], counting what it held back.
#[derive(Debug, Default)]
struct RateLimitedWarning {
    last: Option<Instant>,
    held_back: u64,
}

impl RateLimitedWarning {
    /// `Some(times held back since the last warning)` when it is time to warn again.
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < WARNING_INTERVAL => {
                self.held_back += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.held_back))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_client_side_accept_errors_skip_the_backoff() {
        use std::io::{Error, ErrorKind};
        assert!(is_per_connection(&Error::from(ErrorKind::ConnectionAborted)));
        assert!(is_per_connection(&Error::from(ErrorKind::ConnectionReset)));
        // EMFILE has no stable ErrorKind; anything unrecognized must back off, not spin.
        assert!(!is_per_connection(&Error::other("Too many open files (os error 24)")));
        assert!(!is_per_connection(&Error::from(ErrorKind::OutOfMemory)));
    }

    #[test]
    fn warnings_repeat_at_most_once_per_interval_and_count_what_they_held_back() {
        let mut warning = RateLimitedWarning::default();
        assert_eq!(warning.due(), Some(0));
        assert_eq!(warning.due(), None);
        assert_eq!(warning.due(), None);
        warning.last = Instant::now().checked_sub(WARNING_INTERVAL);
        assert_eq!(warning.due(), Some(2));
    }
}
