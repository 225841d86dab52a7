//! A benchmark session's connection, polled by the session itself.
//!
//! `tokio-postgres` splits a connection in two: the `Client`, which queues requests on a
//! channel, and the `Connection`, the future that owns the socket, writes the queued requests
//! and hands the responses back. The usual way runs the connection on a task of its own, so
//! every statement wakes two tasks (the connection's to write, the session's to read the
//! answer), and on a multi-thread runtime the two are often on different threads: a wake-up
//! through the scheduler and a futex per hop. A benchmark session runs one statement at a time
//! and nothing else uses its connection, so here the session polls the connection in its own
//! task while a statement is in flight: the socket's readiness wakes the session directly, and
//! request and response are handed over within one poll.

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::Poll;

/// A connection's I/O future (the driver's `Connection`, whatever its TLS stream).
pub(crate) type Driver = Pin<Box<dyn Future<Output = std::result::Result<(), tokio_postgres::Error>> + Send>>;

/// The connection of one session, polled only while the session awaits one of its requests.
pub(crate) struct OwnedConnection {
    driver: Option<Driver>,
}

impl OwnedConnection {
    pub(crate) fn new(driver: Driver) -> Self {
        OwnedConnection { driver: Some(driver) }
    }

    /// Runs `op` (a request of this connection's client) to completion, polling the connection
    /// in the same task. Each poll first lets the connection read what the server sent, then
    /// polls `op`, then lets the connection write what `op` queued.
    pub(crate) async fn run<F: Future>(&mut self, op: F) -> F::Output {
        let mut op = pin!(op);
        std::future::poll_fn(|cx| {
            self.poll_driver(cx);
            if let Poll::Ready(out) = op.as_mut().poll(cx) {
                return Poll::Ready(out);
            }
            self.poll_driver(cx);
            Poll::Pending
        })
        .await
    }

    /// The connection's future, for a task to drive (a connection that has ended: none).
    pub(crate) fn into_driver(mut self) -> Option<Driver> {
        self.driver.take()
    }

    fn poll_driver(&mut self, cx: &mut std::task::Context<'_>) {
        let Some(driver) = self.driver.as_mut() else { return };
        if let Poll::Ready(result) = driver.as_mut().poll(cx) {
            // The client's requests fail with the same closed connection, and say so there;
            // this is only a trace. The op is polled again in this pass and sees it.
            if let Err(e) = result {
                tracing::debug!("postgres connection ended: {e}");
            }
            self.driver = None;
            cx.waker().wake_by_ref();
        }
    }
}

impl Drop for OwnedConnection {
    /// The client is dropped right after this: the connection, moved to a task, then sends the
    /// protocol's Terminate and closes the socket, so the server logs a clean disconnect.
    fn drop(&mut self) {
        let Some(driver) = self.driver.take() else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = driver.await {
                    tracing::debug!("postgres connection ended: {e}");
                }
            });
        }
    }
}

impl std::fmt::Debug for OwnedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedConnection").field("open", &self.driver.is_some()).finish()
    }
}
