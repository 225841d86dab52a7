//! One accepted client socket: it carries its connection-limit permit, gives up on a client that
//! stops reading, and tells the shutdown whether anything is in flight on it.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::Response;
use hyper::body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Sleep;

/// What a connection is doing, seen from outside hyper.
///
/// On shutdown hyper finishes a request in flight, which is right, but it also keeps waiting for
/// the rest of a request head that a client has only half sent, up to the header timeout. Such a
/// connection has nothing in flight and can be closed at once; this is how the serve loop tells.
/// The same tells which connection to close when every slot is taken (see `eviction`).
#[derive(Debug)]
pub(crate) struct ConnectionActivity {
    /// Requests handed to the router whose response body has not been sent completely.
    in_flight: AtomicUsize,
    /// The last write found the kernel's send buffer full: response bytes are still queued.
    write_blocked: AtomicBool,
    /// When the connection was last busy (or accepted).
    last_busy: Mutex<Instant>,
}

impl ConnectionActivity {
    pub(crate) fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            write_blocked: AtomicBool::new(false),
            last_busy: Mutex::new(Instant::now()),
        }
    }

    /// Nothing to finish: no request in flight and no response bytes waiting to be sent.
    pub(crate) fn is_quiet(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && !self.write_blocked.load(Ordering::Acquire)
    }

    /// How long the connection has been quiet: waiting for a request head, idle between
    /// requests, or never having sent anything. `None` while it is busy.
    pub(crate) fn quiet_for(&self, now: Instant) -> Option<Duration> {
        let last_busy = *self.last_busy.lock().unwrap_or_else(PoisonError::into_inner);
        self.is_quiet().then(|| now.saturating_duration_since(last_busy))
    }

    fn touch(&self) {
        *self.last_busy.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }
}

/// Counts a request as in flight from the moment it reaches the router until its response body
/// has been sent (or dropped).
#[derive(Debug)]
pub(crate) struct InFlight(Arc<ConnectionActivity>);

impl InFlight {
    pub(crate) fn start(activity: &Arc<ConnectionActivity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.touch();
        Self(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The router of one connection, counting its requests in [`ConnectionActivity`].
#[derive(Debug, Clone)]
pub(crate) struct TrackedService {
    router: axum::Router,
    activity: Arc<ConnectionActivity>,
}

impl TrackedService {
    pub(crate) fn new(router: axum::Router, activity: Arc<ConnectionActivity>) -> Self {
        Self { router, activity }
    }
}

impl tower::Service<Request<hyper::body::Incoming>> for TrackedService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // axum's Router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<hyper::body::Incoming>) -> Self::Future {
        let guard = InFlight::start(&self.activity);
        let call = tower::ServiceExt::oneshot(self.router.clone(), request);
        Box::pin(async move {
            let response = call.await?;
            Ok(response.map(|body| Body::new(TrackedBody { body, _guard: guard })))
        })
    }
}

/// A response body that keeps its request counted as in flight until it is dropped: hyper drops
/// it once the last frame is written (or the connection fails).
struct TrackedBody {
    body: Body,
    _guard: InFlight,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A client socket counted against `max_connections` for as long as it exists.
///
/// The permit lives in the socket rather than in the task serving it because a WebSocket upgrade
/// hands the socket to another task: the upgraded connection must still count, and its slot must
/// be freed exactly when the socket is closed.
#[derive(Debug)]
pub(crate) struct CountedStream {
    stream: TcpStream,
    write_timeout: Duration,
    /// Running while the kernel's send buffer is full; reset by every write that makes progress.
    write_stall: Option<Pin<Box<Sleep>>>,
    activity: Arc<ConnectionActivity>,
    _permit: OwnedSemaphorePermit,
}

impl CountedStream {
    pub(crate) fn new(
        stream: TcpStream,
        permit: OwnedSemaphorePermit,
        write_timeout: Duration,
        activity: Arc<ConnectionActivity>,
    ) -> Self {
        Self { stream, write_timeout, write_stall: None, activity, _permit: permit }
    }

    /// Called when a write returned `Pending`: fails once the client has accepted nothing for
    /// `write_timeout`. hyper has no write timeout, and a client that never reads would otherwise
    /// keep its connection (and a response in memory) for ever.
    fn poll_stall<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let timeout = self.write_timeout;
        let stall = self.write_stall.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client accepted no data for {}", humantime::format_duration(timeout)),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn after_write<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match result {
            Poll::Pending => {
                self.activity.write_blocked.store(true, Ordering::Release);
                self.poll_stall(cx)
            }
            ready => {
                if self.activity.write_blocked.swap(false, Ordering::AcqRel) {
                    self.activity.touch();
                }
                self.write_stall = None;
                ready
            }
        }
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.after_write(cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.after_write(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_flush(cx);
        this.after_write(cx, result)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_shutdown(cx);
        this.after_write(cx, result)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use tokio::sync::Semaphore;

    use super::*;

    #[tokio::test]
    async fn a_client_that_never_reads_is_given_up_and_its_slot_freed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        // The client connects and never reads.
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (server_side, _) = listener.accept().await.expect("accept");
        let slots = Arc::new(Semaphore::new(1));
        let permit = slots.clone().try_acquire_owned().expect("a free slot");
        let activity = Arc::new(ConnectionActivity::new());
        let mut stream =
            CountedStream::new(server_side, permit, Duration::from_millis(300), Arc::clone(&activity));
        assert!(activity.is_quiet());

        let started = std::time::Instant::now();
        let chunk = vec![b'x'; 64 * 1024];
        let error = loop {
            if let Err(e) = stream.write_all(&chunk).await {
                break e;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "the kernel buffers never filled");
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
        assert!(!activity.is_quiet(), "bytes are still waiting to be sent");
        assert_eq!(activity.quiet_for(Instant::now()), None);
        assert!(error.to_string().contains("300ms"), "{error}");
        assert_eq!(slots.available_permits(), 0, "the socket still holds its slot");
        drop(stream);
        assert_eq!(slots.available_permits(), 1, "closing the socket frees its slot");
    }
}
