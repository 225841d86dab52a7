//! The HTTP client of the Snowflake API requests (login, query, result polling, abort).
//!
//! One client per target (or store), shared by all its sessions, with a pool of kept-alive
//! HTTP/1.1 connections: a benchmark session's requests reuse a connection instead of opening a
//! new TCP (and TLS) connection per query, which is what `snowflake-connector-rs` does on its
//! own (it keeps no idle connection, for the sake of result-chunk downloads from cloud storage;
//! those still go through the connector's own client). Settings are explicit:
//!
//! - connect timeout: a TCP and TLS connect;
//! - request timeout: one request as a whole;
//! - idle timeout: an idle connection is closed by the client after this, shorter than the
//!   server's own idle timeout, so the client does not reuse a connection the server is closing;
//! - one retry, counted: a request that fails because the server closed the kept-alive
//!   connection it went out on (the connection closed before an answer, or was reset) is sent
//!   once more, on another connection. A query request sent again keeps its `requestId`, as
//!   Snowflake's own connectors do when they resend one. The retry and every
//!   connection opened are counted ([`ConnectionFigures`]) and stored with the run.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use unistore_core::{Error, Result};

use super::config::SnowflakeConfig;

/// How the client used the network: connections it opened, requests it sent, and requests it
/// sent again after the server closed a kept-alive connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionFigures {
    /// TCP connections opened to the Snowflake endpoint (logins, queries, the tool's own
    /// statements; not result-chunk downloads from cloud storage).
    pub connections_opened: u64,
    /// HTTP requests answered or failed, retries not included.
    pub requests: u64,
    /// Requests sent a second time because the server had closed the kept-alive connection.
    pub reconnect_retries: u64,
}

/// The live counters behind [`ConnectionFigures`].
#[derive(Debug, Default)]
pub(crate) struct HttpCounters {
    connections: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
}

impl HttpCounters {
    pub(crate) fn figures(&self) -> ConnectionFigures {
        ConnectionFigures {
            connections_opened: self.connections.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            reconnect_retries: self.retries.load(Ordering::Relaxed),
        }
    }
}

/// Builds the API client for `config`, counting into `counters`.
pub(crate) fn api_client(config: &SnowflakeConfig, counters: Arc<HttpCounters>) -> Result<reqwest::Client> {
    let host = reqwest::Url::parse(&config.endpoint())
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let classify = counters.clone();
    let retry = reqwest::retry::for_host(host)
        // One retry per request, always allowed: a budget would turn retries off exactly when
        // many kept-alive connections are closed at once (a server restart).
        .no_budget()
        .max_retries_per_request(1)
        .classify_fn(move |attempt| {
            classify.requests.fetch_add(1, Ordering::Relaxed);
            let closed = attempt.error().filter(|e| closed_by_server(*e)).map(|e| e.to_string());
            match closed {
                Some(e) => {
                    classify.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        "a Snowflake request failed on a kept-alive connection, sending it again: {e}"
                    );
                    attempt.retryable()
                }
                None => attempt.success(),
            }
        });
    reqwest::ClientBuilder::new()
        .tls_backend_rustls()
        .gzip(true)
        .http1_only()
        .connect_timeout(config.connect_timeout)
        .timeout(config.request_timeout)
        .pool_idle_timeout(config.http_idle_timeout)
        .tcp_keepalive(Duration::from_secs(30))
        .retry(retry)
        .connector_layer(CountConnections { counters })
        .build()
        .map_err(|e| Error::invalid(format!("cannot build the HTTP client for {}: {e}", config.redacted)))
}

/// Whether a request failed because the server closed the connection it was sent on: the
/// connection ended before an answer, or was reset. Connect errors and timeouts are not: a
/// retry would only wait again.
fn closed_by_server(error: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(e) = error.downcast_ref::<reqwest::Error>() {
        if e.is_connect() || e.is_timeout() {
            return false;
        }
    }
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() {
                return true;
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(io.kind(), ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof) {
                return true;
            }
        }
        cause = e.source();
    }
    false
}

/// A connector layer that counts the connections opened.
#[derive(Clone)]
struct CountConnections {
    counters: Arc<HttpCounters>,
}

impl<S> tower_layer::Layer<S> for CountConnections {
    type Service = CountingConnector<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountingConnector { inner, counters: self.counters.clone() }
    }
}

#[derive(Clone)]
struct CountingConnector<S> {
    inner: S,
    counters: Arc<HttpCounters>,
}

impl<S, R> tower_service::Service<R> for CountingConnector<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let connecting = self.inner.call(request);
        let counters = self.counters.clone();
        Box::pin(async move {
            let connection = connecting.await;
            if connection.is_ok() {
                counters.connections.fetch_add(1, Ordering::Relaxed);
            }
            connection
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_connections_closed_under_a_request_are_retried() {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        assert!(closed_by_server(&reset));
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(!closed_by_server(&refused), "a refused connect is not a closed kept-alive connection");
        let other = std::fmt::Error;
        assert!(!closed_by_server(&other));
    }
}
