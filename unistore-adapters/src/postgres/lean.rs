//! A benchmark session's hot path without the driver in between.
//!
//! `tokio-postgres` logs in and prepares the statements; after that, each plain `execute` of a
//! session writes the prepared statement's Bind/Execute/Sync itself and reads the answer itself,
//! on the same connection: no request channel, no response channel, no row objects, one reused
//! write buffer and one reused read buffer.
//!
//! Both sides share the connection through [`SharedStream`], the stream the driver is given (the
//! TLS stream, wrapped by [`Sharing`], the connector the session's login goes through). The
//! stream holds the connection's one read buffer and hands the driver the server's bytes only up
//! to the end of a ReadyForQuery: what the server sends after it stays in the shared buffer, and
//! the driver is told "nothing yet" until it writes its next request. So when the driver has
//! asked for more after its ReadyForQuery, it has processed everything it was given and its own
//! buffer is empty ([`LeanSocket::is_idle`]), and the session may use the connection; the
//! driver can take it back at any time (the session's `execute_returning`, a later `prepare`)
//! because the session leaves the buffer at a message boundary after each ReadyForQuery.
//!
//! A plain TCP session (`sslmode=disable`, or a plain attempt of `allow` or `prefer`'s retry)
//! shares the TCP stream the session opened itself ([`share`]) and logs in over it with the
//! driver's `connect_raw`; with `sslmode=prefer` the driver asks for TLS on that stream, and
//! the answer decides which stream is shared (see [`share`]). Where the session cannot open the
//! stream itself (a Unix socket, several hosts, `hostaddr=`, `target_session_attrs=read-write`)
//! the driver owns its plain socket and the session keeps the driver's path.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::types::{IsNull, Type};
use unistore_core::Value;

use super::pool::PgParam;

/// Read buffer growth step; a response larger than the buffer grows it by this much at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Where a session's connector leaves the shared connection once TLS is up.
pub(crate) type LeanSlot = Arc<Mutex<Option<Arc<dyn LeanSocket>>>>;

/// The connection as the session's hot path sees it.
pub(crate) trait LeanSocket: Send + Sync {
    /// Whether the driver has nothing in flight and nothing buffered: the session may write.
    fn is_idle(&self) -> bool;

    /// One request and its answer, in one pass under one lock where the answer is there in
    /// time: before any of `out` is written, hands `unasked` what the server sent unasked
    /// since the last answer (without waiting); writes the rest of `out` and flushes; then
    /// hands the answer's complete messages to `on_message` (tag, body) until it returns `true`,
    /// reading as needed. `Ok(false)` from either callback asks for the next message.
    fn poll_exchange(
        &self,
        cx: &mut Context<'_>,
        request: &mut Request<'_>,
        unasked: &mut dyn FnMut(u8, &[u8]) -> io::Result<bool>,
        on_message: &mut dyn FnMut(u8, &[u8]) -> io::Result<bool>,
    ) -> Poll<io::Result<()>>;
}

/// A request on its way out: its bytes, how many are written, and whether they are flushed.
pub(crate) struct Request<'a> {
    out: &'a [u8],
    sent: &'a mut usize,
    flushed: &'a mut bool,
}

/// What a [`SharedStream`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The protocol's messages, followed as described above.
    Shared,
    /// Nothing yet: the driver has asked the server for TLS (`sslmode=prefer`) and the answer
    /// decides. `N` (plain): the messages follow, shared. Anything else: TLS (or the driver's
    /// error) goes on over the stream, passed through.
    Negotiating,
    /// The TLS stream's bytes (the shared stream is the one on top of it), passed through.
    Raw,
}

struct Inner<S> {
    stream: S,
    mode: Mode,
    /// Bytes read and not yet handed on are `buf[start..end]`; the rest is spare room.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Offset from `start` of the next message header the driver-side scan has not read yet.
    next_header: usize,
    /// Offset from `start` of the end of the first ReadyForQuery not yet handed to the driver.
    ready_end: Option<usize>,
    /// What the driver has written, message by message.
    written: Outgoing,
    /// ReadyForQuery messages the driver's requests still expect.
    expected: u32,
    /// The driver sent Terminate: it may read to the end of the stream.
    terminating: bool,
    /// The driver asked to read with nothing expected: it has processed all it was given.
    drained: bool,
}

/// Follows the frontend messages the driver writes: each Sync and simple Query (and the
/// start-up message) is answered by one ReadyForQuery.
#[derive(Debug, Default)]
struct Outgoing {
    /// Past the start-up message (the only one without a type byte).
    started: bool,
    header: [u8; 5],
    header_len: usize,
    body_left: usize,
}

impl Outgoing {
    /// Notes `data` as written: (ReadyForQuery messages now expected, Terminate seen).
    fn observe(&mut self, mut data: &[u8]) -> (u32, bool) {
        let (mut expected, mut terminate) = (0, false);
        while !data.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(data.len());
                self.body_left -= n;
                data = &data[n..];
                continue;
            }
            let header_size = if self.started { 5 } else { 4 };
            let n = (header_size - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
            self.header_len += n;
            data = &data[n..];
            if self.header_len < header_size {
                break;
            }
            let at = header_size - 4;
            let len = u32::from_be_bytes([
                self.header[at],
                self.header[at + 1],
                self.header[at + 2],
                self.header[at + 3],
            ]) as usize;
            self.body_left = len.max(4) - 4;
            self.header_len = 0;
            if !self.started {
                self.started = true;
                expected += 1;
                continue;
            }
            match self.header[0] {
                b'S' | b'Q' => expected += 1,
                b'X' => terminate = true,
                _ => {}
            }
        }
        (expected, terminate)
    }

    /// Whether a message is half written.
    fn mid_message(&self) -> bool {
        self.body_left > 0 || self.header_len > 0
    }
}

impl<S> Inner<S> {
    /// Whether the driver has nothing in flight and nothing buffered.
    fn idle(&self) -> bool {
        self.mode == Mode::Shared
            && self.expected == 0
            && self.drained
            && !self.terminating
            && !self.written.mid_message()
    }
}

impl<S: AsyncRead + Unpin> Inner<S> {
    fn buffered(&self) -> usize {
        self.end - self.start
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.next_header -= n;
        if let Some(end) = self.ready_end.as_mut() {
            *end -= n;
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads what the stream has into the spare room; `Ok(0)` is the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.len() - self.end < READ_CHUNK / 4 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() - self.end < READ_CHUNK / 4 {
                self.buf.resize(self.buf.len() + READ_CHUNK, 0);
            }
        }
        let mut room = ReadBuf::new(&mut self.buf[self.end..]);
        ready!(Pin::new(&mut self.stream).poll_read(cx, &mut room))?;
        let n = room.filled().len();
        self.end += n;
        Poll::Ready(Ok(n))
    }

    /// Moves the driver-side scan over the complete headers, stopping after a ReadyForQuery.
    fn scan(&mut self) {
        while self.ready_end.is_none() && self.next_header + 5 <= self.buffered() {
            let at = self.start + self.next_header;
            let tag = self.buf[at];
            let len =
                u32::from_be_bytes([self.buf[at + 1], self.buf[at + 2], self.buf[at + 3], self.buf[at + 4]]);
            // A length under 4 is malformed: the driver's parser says so when it gets there.
            self.next_header += 1 + (len as usize).max(4);
            if tag == b'Z' {
                self.ready_end = Some(self.next_header);
            }
        }
    }

    /// The next complete message at `start`: (tag, whole length).
    fn complete_message(&self) -> io::Result<Option<(u8, usize)>> {
        let pending = &self.buf[self.start..self.end];
        if pending.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]]) as usize;
        if len < 4 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "invalid message length"));
        }
        Ok((pending.len() > len).then_some((pending[0], 1 + len)))
    }

    /// Hands the complete buffered messages to `on_message` until it says stop (`Ok(true)`).
    fn drain(&mut self, on_message: &mut dyn FnMut(u8, &[u8]) -> io::Result<bool>) -> io::Result<bool> {
        let mut stop = false;
        while let Some((tag, len)) = self.complete_message()? {
            stop = on_message(tag, &self.buf[self.start + 5..self.start + len])?;
            self.start += len;
            if stop {
                break;
            }
        }
        // The buffer starts at a message boundary again: the driver-side scan restarts there.
        self.next_header = 0;
        self.ready_end = None;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(stop)
    }
}

/// A connection shared by the driver (through its `AsyncRead`/`AsyncWrite`) and the session
/// (through [`LeanSocket`]).
pub(crate) struct SharedStream<S>(Arc<Shared<S>>);

struct Shared<S> {
    inner: Mutex<Inner<S>>,
    /// [`LeanSocket::is_idle`]'s answer, kept current under the lock by the driver's reads and
    /// writes (the only ones that change it), so that the session asks without locking.
    idle: AtomicBool,
}

impl<S> SharedStream<S> {
    fn with_mode(stream: S, mode: Mode) -> Self {
        let inner = Mutex::new(Inner {
            stream,
            mode,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            next_header: 0,
            ready_end: None,
            written: Outgoing::default(),
            expected: 0,
            terminating: false,
            drained: false,
        });
        SharedStream(Arc::new(Shared { inner, idle: AtomicBool::new(false) }))
    }

    fn lock(&self) -> io::Result<MutexGuard<'_, Inner<S>>> {
        self.0.inner.lock().map_err(|_| io::Error::other("postgres connection state poisoned"))
    }

    /// Notes, after the driver's read or write, whether the session may now write.
    fn note_idle(&self, inner: &Inner<S>) {
        self.0.idle.store(inner.idle(), Ordering::Release);
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for SharedStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut inner = self.lock()?;
        let polled = inner.poll_driver_read(cx, out);
        self.note_idle(&inner);
        polled
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Inner<S> {
    /// The driver's read: the server's bytes up to the ReadyForQuery its requests expect.
    fn poll_driver_read(&mut self, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.mode {
            Mode::Shared => {}
            Mode::Raw => return Pin::new(&mut self.stream).poll_read(cx, out),
            Mode::Negotiating => {
                // The driver reads the one-byte answer to its SSLRequest, and nothing more.
                let before = out.filled().len();
                ready!(Pin::new(&mut self.stream).poll_read(cx, out))?;
                match out.filled()[before..].first() {
                    Some(b'N') => self.mode = Mode::Shared,
                    Some(_) => self.mode = Mode::Raw,
                    None => {}
                }
                return Poll::Ready(Ok(()));
            }
        }
        if self.expected == 0 && !self.terminating {
            // The driver's requests are answered; anything further waits for its next request
            // (its write wakes it). No waker: nothing but that write opens the gate.
            self.drained = true;
            return Poll::Pending;
        }
        loop {
            self.scan();
            let limit = self.ready_end.unwrap_or(self.next_header).min(self.buffered());
            if limit > 0 {
                let n = limit.min(out.remaining());
                let start = self.start;
                out.put_slice(&self.buf[start..start + n]);
                let hands_ready = self.ready_end == Some(n);
                self.consume(n);
                if hands_ready {
                    self.ready_end = None;
                    self.expected = self.expected.saturating_sub(1);
                }
                return Poll::Ready(Ok(()));
            }
            if ready!(self.poll_fill(cx))? == 0 {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for SharedStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut inner = self.lock()?;
        let n = ready!(Pin::new(&mut inner.stream).poll_write(cx, data))?;
        if inner.mode != Mode::Shared {
            return Poll::Ready(Ok(n));
        }
        let (expected, terminate) = inner.written.observe(&data[..n]);
        if expected > 0 || terminate {
            if inner.expected == 0 {
                // This poll's read may have been refused before the request went out.
                cx.waker().wake_by_ref();
            }
            inner.expected += expected;
            inner.terminating |= terminate;
            inner.drained = false;
        }
        self.note_idle(&inner);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.lock()?.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.lock()?.stream).poll_shutdown(cx)
    }
}

impl<S: TlsStream + Unpin> TlsStream for SharedStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM's channel binding needs the certificate the TLS stream saw.
        match self.0.inner.lock() {
            Ok(inner) => inner.stream.channel_binding(),
            Err(_) => ChannelBinding::none(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> LeanSocket for SharedStream<S> {
    fn is_idle(&self) -> bool {
        self.0.idle.load(Ordering::Acquire)
    }

    fn poll_exchange(
        &self,
        cx: &mut Context<'_>,
        request: &mut Request<'_>,
        unasked: &mut dyn FnMut(u8, &[u8]) -> io::Result<bool>,
        on_message: &mut dyn FnMut(u8, &[u8]) -> io::Result<bool>,
    ) -> Poll<io::Result<()>> {
        let mut inner = self.lock()?;
        if *request.sent == 0 {
            // What came since the last answer, before this request goes out.
            inner.drain(unasked)?;
            match inner.poll_fill(cx) {
                Poll::Pending => {}
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
                Poll::Ready(Ok(_)) => {
                    inner.drain(unasked)?;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            }
        }
        while *request.sent < request.out.len() {
            let n = ready!(Pin::new(&mut inner.stream).poll_write(cx, &request.out[*request.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *request.sent += n;
        }
        if !*request.flushed {
            ready!(Pin::new(&mut inner.stream).poll_flush(cx))?;
            *request.flushed = true;
        }
        loop {
            if inner.drain(on_message)? {
                return Poll::Ready(Ok(()));
            }
            if ready!(inner.poll_fill(cx))? == 0 {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }
}

/// `stream` (a plain TCP connection the session opened itself, before anything was written on
/// it) as a [`SharedStream`] for the driver, left in `slot` for the session. With `negotiating`
/// the driver first asks for TLS on it (`sslmode=prefer`): if the server declines, the stream
/// is shared from the start-up message on; if it agrees, the stream only carries the TLS
/// stream, which [`Sharing`] shares (and leaves in `slot` instead).
pub(crate) fn share<S>(stream: S, slot: &LeanSlot, negotiating: bool) -> SharedStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = SharedStream::with_mode(stream, if negotiating { Mode::Negotiating } else { Mode::Shared });
    if let Ok(mut slot) = slot.lock() {
        *slot = Some(Arc::new(SharedStream(shared.0.clone())));
    }
    shared
}

/// A TLS connector whose streams are [`SharedStream`]s, each left in `slot` for the session.
pub(crate) struct Sharing<T> {
    pub(crate) inner: T,
    pub(crate) slot: LeanSlot,
}

impl<S, T> MakeTlsConnect<S> for Sharing<T>
where
    T: MakeTlsConnect<S>,
    T::Stream: Send + Unpin + 'static,
    <T::TlsConnect as TlsConnect<S>>::Future: Send + 'static,
{
    type Stream = SharedStream<T::Stream>;
    type TlsConnect = Sharing<T::TlsConnect>;
    type Error = T::Error;

    fn make_tls_connect(&mut self, domain: &str) -> std::result::Result<Self::TlsConnect, Self::Error> {
        Ok(Sharing { inner: self.inner.make_tls_connect(domain)?, slot: self.slot.clone() })
    }
}

impl<S, T> TlsConnect<S> for Sharing<T>
where
    T: TlsConnect<S>,
    T::Stream: Send + Unpin + 'static,
    T::Future: Send + 'static,
{
    type Stream = SharedStream<T::Stream>;
    type Error = T::Error;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<Self::Stream, T::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let handshake = self.inner.connect(stream);
        let slot = self.slot;
        Box::pin(async move { Ok(share(handshake.await?, &slot, false)) })
    }
}

/// The server's ErrorResponse, as the driver's `DbError` shows it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerError {
    pub(crate) severity: String,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) detail: Option<String>,
    pub(crate) hint: Option<String>,
}

impl ServerError {
    fn parse(mut body: &[u8]) -> io::Result<ServerError> {
        let mut error = ServerError::default();
        while let Some((&field, rest)) = body.split_first() {
            if field == 0 {
                break;
            }
            let end = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unterminated error field"))?;
            let value = String::from_utf8_lossy(&rest[..end]).into_owned();
            match field {
                b'S' => error.severity = value,
                b'C' => error.code = value,
                b'M' => error.message = value,
                b'D' => error.detail = Some(value),
                b'H' => error.hint = Some(value),
                _ => {}
            }
            body = &rest[end + 1..];
        }
        Ok(error)
    }

    /// Whether the server ends the session with this error.
    fn is_fatal(&self) -> bool {
        matches!(self.severity.as_str(), "FATAL" | "PANIC")
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.severity, self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, "\nDETAIL: {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\nHINT: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServerError {}

/// Why a lean `execute` failed; the session maps it as the driver's error of the same cause.
#[derive(Debug)]
pub(crate) enum LeanError {
    /// The server's ErrorResponse.
    Server(Box<ServerError>),
    /// Parameter `index` could not be encoded for its type.
    Encode { index: usize, cause: Box<dyn std::error::Error + Send + Sync> },
    /// The statement has `expected` parameters, `got` were given.
    Parameters { expected: usize, got: usize },
    /// The connection failed or the server hung up (`None`: it had already failed).
    Lost(Option<io::Error>),
    /// The server sent a message this path does not expect.
    Unexpected,
}

/// The answer to one Bind/Execute/Sync, as it arrives.
struct Response {
    counts_in_tag: bool,
    rows: u64,
    error: Option<Box<ServerError>>,
    unexpected: bool,
}

impl Response {
    fn new(counts_in_tag: bool) -> Self {
        Response { counts_in_tag, rows: 0, error: None, unexpected: false }
    }

    fn on_message(&mut self, tag: u8, body: &[u8]) -> io::Result<bool> {
        match tag {
            b'Z' => return Ok(true),
            b'D' if !self.counts_in_tag => self.rows += 1,
            b'C' if self.counts_in_tag => self.rows = rows_in_tag(body),
            b'I' if self.counts_in_tag => self.rows = 0,
            b'E' => {
                if self.error.is_none() {
                    self.error = Some(Box::new(ServerError::parse(body)?));
                }
            }
            // Bind and command complete, rows counted elsewhere, notices, parameter changes,
            // notifications: nothing to count.
            b'1' | b'2' | b'D' | b'C' | b'I' | b'N' | b'S' | b'A' | b's' => {}
            _ => self.unexpected = true,
        }
        Ok(false)
    }
}

/// The row count at the end of a completion tag (`SELECT 3`, `INSERT 0 1`), as the driver reads
/// it: 0 when the tag has none (or one beyond `u64`).
fn rows_in_tag(body: &[u8]) -> u64 {
    let tag = body.strip_suffix(&[0]).unwrap_or(body);
    let last = tag.rsplit(|&b| b == b' ').next().unwrap_or(&[]);
    if last.is_empty() || !last.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    last.iter().try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0'))).unwrap_or(0)
}

/// What the server may send unasked between two answers: notices, parameter changes and
/// notifications are fine; an error (the server ending the session) means the connection is
/// gone, as the driver sees it.
fn unasked(tag: u8, _: &[u8]) -> io::Result<bool> {
    match tag {
        b'N' | b'S' | b'A' => Ok(false),
        _ => {
            Err(io::Error::new(io::ErrorKind::ConnectionAborted, "message from the server before a request"))
        }
    }
}

/// A session's own use of its connection.
pub(crate) struct LeanConnection {
    socket: Arc<dyn LeanSocket>,
    /// The request being written (kept until written, should the caller drop the future).
    out: BytesMut,
    sent: usize,
    flushed: bool,
    /// A request was sent whose answer has not been read to its ReadyForQuery.
    in_flight: bool,
    /// The connection failed under this path: it is not used again.
    broken: bool,
}

impl std::fmt::Debug for LeanConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeanConnection").field("broken", &self.broken).finish()
    }
}

impl LeanConnection {
    pub(crate) fn new(socket: Arc<dyn LeanSocket>) -> Self {
        LeanConnection {
            socket,
            out: BytesMut::with_capacity(256),
            sent: 0,
            flushed: false,
            in_flight: false,
            broken: false,
        }
    }

    /// Whether this path may run the next statement: the driver is idle, or this path
    /// broke (and says so).
    pub(crate) fn usable(&self) -> bool {
        self.broken || self.in_flight || self.socket.is_idle()
    }

    /// Prepares `sql` under `name` with the parameter types the driver's prepare found (the
    /// driver keeps its own statement names to itself).
    pub(crate) async fn prepare(
        &mut self,
        name: &str,
        sql: &str,
        types: &[Type],
    ) -> std::result::Result<(), LeanError> {
        if self.broken || self.in_flight {
            Box::pin(self.finish_dropped()).await?;
        }
        self.out.clear();
        let parsed = frontend::parse(name, sql, types.iter().map(Type::oid), &mut self.out);
        if let Err(e) = parsed {
            self.out.clear();
            return Err(LeanError::Encode { index: 0, cause: Box::new(e) });
        }
        frontend::sync(&mut self.out);
        let mut response = Response::new(true);
        self.exchange(&mut response).await?;
        if response.unexpected {
            self.broken = true;
            return Err(LeanError::Unexpected);
        }
        response.error.map_or(Ok(()), |error| Err(LeanError::Server(error)))
    }

    /// Reads the answer of a request whose caller dropped the future midway.
    async fn finish_dropped(&mut self) -> std::result::Result<(), LeanError> {
        if self.broken {
            return Err(LeanError::Lost(None));
        }
        if self.in_flight {
            let mut discard = Response::new(true);
            self.resume(&mut discard).await?;
        }
        Ok(())
    }

    /// Binds and executes the statement prepared as `name` with parameter `types` (each resolved
    /// by `base_type`, domains to their base types); the row count
    /// as the driver's `execute` (`counts_in_tag`) or its row stream (otherwise) gives it.
    pub(crate) async fn execute(
        &mut self,
        name: &str,
        types: &[Type],
        params: &[Value],
        counts_in_tag: bool,
    ) -> std::result::Result<u64, LeanError> {
        if self.broken || self.in_flight {
            // Out of line: the common case's future stays small.
            Box::pin(self.finish_dropped()).await?;
        }
        if types.len() != params.len() {
            return Err(LeanError::Parameters { expected: types.len(), got: params.len() });
        }
        self.encode(name, types, params)?;
        let mut response = Response::new(counts_in_tag);
        self.exchange(&mut response).await?;
        if response.unexpected {
            self.broken = true;
            return Err(LeanError::Unexpected);
        }
        match response.error {
            Some(error) => Err(LeanError::Server(error)),
            None => Ok(response.rows),
        }
    }

    /// Sends the request in `out` (after what the server said unasked since the last answer)
    /// and reads its answer to the ReadyForQuery.
    async fn exchange(&mut self, response: &mut Response) -> std::result::Result<(), LeanError> {
        self.sent = 0;
        self.flushed = false;
        self.in_flight = true;
        self.resume(response).await
    }

    /// Writes the rest of the request in flight and reads its answer to the ReadyForQuery.
    async fn resume(&mut self, response: &mut Response) -> std::result::Result<(), LeanError> {
        let socket = &self.socket;
        let mut request = Request { out: &self.out, sent: &mut self.sent, flushed: &mut self.flushed };
        let outcome = poll_fn(|cx| {
            socket.poll_exchange(cx, &mut request, &mut unasked, &mut |tag, body| {
                response.on_message(tag, body)
            })
        })
        .await;
        match outcome {
            Ok(()) => {
                self.in_flight = false;
                if response.error.as_ref().is_some_and(|e| e.is_fatal()) {
                    self.broken = true;
                }
                Ok(())
            }
            Err(e) => {
                self.broken = true;
                self.in_flight = false;
                // A session-ending error arrives just before the server hangs up: it says why.
                match response.error.take() {
                    Some(error) => Err(LeanError::Server(error)),
                    None => Err(LeanError::Lost(Some(e))),
                }
            }
        }
    }

    /// Bind (parameters in the format `PgParam` picks for each type; results binary, as the
    /// driver asks), Execute, Sync, into the reused buffer.
    fn encode(&mut self, name: &str, types: &[Type], params: &[Value]) -> std::result::Result<(), LeanError> {
        self.out.clear();
        let formats = params.iter().zip(types).map(|(v, ty)| i16::from(PgParam(v).binary_for_base(ty)));
        let mut failed_at = 0;
        let bound = frontend::bind(
            "",
            name,
            formats,
            params.iter().zip(types).enumerate(),
            |(index, (v, ty)), buf| match PgParam(v).encode_for_base(ty, buf) {
                Ok(IsNull::No) => Ok(postgres_protocol::IsNull::No),
                Ok(IsNull::Yes) => Ok(postgres_protocol::IsNull::Yes),
                Err(e) => {
                    failed_at = index;
                    Err(e)
                }
            },
            Some(1),
            &mut self.out,
        );
        let encoded = match bound {
            Ok(()) => frontend::execute("", 0, &mut self.out)
                .map_err(|e| LeanError::Encode { index: failed_at, cause: Box::new(e) }),
            Err(frontend::BindError::Conversion(cause)) => Err(LeanError::Encode { index: failed_at, cause }),
            Err(frontend::BindError::Serialization(e)) => {
                Err(LeanError::Encode { index: failed_at, cause: Box::new(e) })
            }
        };
        if encoded.is_err() {
            self.out.clear();
            return encoded;
        }
        frontend::sync(&mut self.out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn every_sync_and_query_the_driver_writes_expects_one_answer() {
        let mut written = Outgoing::default();
        let startup = [0, 0, 0, 8, 0, 3, 0, 0];
        assert_eq!(written.observe(&startup), (1, false));
        let mut request = message(b'P', b"s1\0SELECT 1\0\0\0");
        request.extend(message(b'D', b"Ss1\0"));
        request.extend(message(b'S', b""));
        // Written in pieces, split inside a header and inside a body.
        assert_eq!(written.observe(&request[..3]), (0, false));
        assert!(written.mid_message());
        assert_eq!(written.observe(&request[3..10]), (0, false));
        assert_eq!(written.observe(&request[10..]), (1, false));
        assert!(!written.mid_message());
        let mut two = message(b'Q', b"SELECT 1\0");
        two.extend(message(b'X', b""));
        assert_eq!(written.observe(&two), (1, true));
    }

    #[test]
    fn completion_tags_give_the_driver_s_counts() {
        assert_eq!(rows_in_tag(b"SELECT 3\0"), 3);
        assert_eq!(rows_in_tag(b"INSERT 0 12\0"), 12);
        assert_eq!(rows_in_tag(b"SET\0"), 0);
        assert_eq!(rows_in_tag(b"MERGE 18446744073709551615\0"), u64::MAX);
        assert_eq!(rows_in_tag(b"SELECT 18446744073709551616\0"), 0, "beyond u64, as the driver's parse");
        assert_eq!(rows_in_tag(b"SELECT\0"), 0);
        assert_eq!(rows_in_tag(b"SELECT -1\0"), 0);
    }

    #[test]
    fn error_fields_parse_as_the_driver_shows_them() {
        let body = b"SERROR\0VERROR\0C23505\0Mduplicate key\0Dkey (id)=(1) exists\0\0";
        let e = ServerError::parse(body).expect("parses");
        assert_eq!((e.code.as_str(), e.message.as_str()), ("23505", "duplicate key"));
        assert_eq!(e.to_string(), "ERROR: duplicate key\nDETAIL: key (id)=(1) exists");
        assert!(!e.is_fatal());
    }

    #[test]
    fn the_driver_is_handed_bytes_up_to_a_ready_for_query_only() {
        let mut wire = message(b'C', b"SELECT 1\0");
        wire.extend(message(b'Z', b"I"));
        let first_answer = wire.len();
        wire.extend(message(b'N', b"SNOTICE\0Mlater\0\0"));
        let stream = SharedStream::with_mode(std::io::Cursor::new(wire.clone()), Mode::Shared);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut driver = SharedStream(stream.0.clone());
        // The start-up message (no type byte), then nothing else: one answer expected.
        let startup = [0, 0, 0, 8, 0, 3, 0, 0];
        assert!(matches!(Pin::new(&mut driver).poll_write(&mut cx, &startup), Poll::Ready(Ok(8))));
        assert!(!stream.is_idle());
        let mut space = [0u8; 256];
        let mut got = Vec::new();
        // The cursor took the write in place: put the server's side back.
        {
            let mut inner = stream.0.inner.lock().expect("lock");
            *inner.stream.get_mut() = wire.clone();
            inner.stream.set_position(0);
        }
        loop {
            let mut out = ReadBuf::new(&mut space);
            match Pin::new(&mut driver).poll_read(&mut cx, &mut out) {
                Poll::Ready(Ok(())) => got.extend_from_slice(out.filled()),
                Poll::Ready(Err(e)) => panic!("{e}"),
                Poll::Pending => break,
            }
        }
        assert_eq!(got, wire[..first_answer], "the driver got exactly its answer");
        assert!(stream.is_idle(), "drained after asking again");
        let mut seen = Vec::new();
        let mut on = |tag: u8, _: &[u8]| {
            seen.push(tag);
            Ok(false)
        };
        let (mut sent, mut flushed) = (0, false);
        let mut request = Request { out: b"", sent: &mut sent, flushed: &mut flushed };
        // The cursor then ends: the answer never comes, which is not what this test is about.
        let _ = stream.poll_exchange(&mut cx, &mut request, &mut on, &mut |_, _| Ok(true));
        assert_eq!(seen, vec![b'N'], "the rest stays for the session");
    }
}
