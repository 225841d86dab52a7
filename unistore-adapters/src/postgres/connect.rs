//! Opening one connection within a deadline, with the phase it was in when time ran out.
//!
//! The driver's own `connect_timeout` covers only the TCP connect: a server that accepts the
//! connection and then says nothing (a stuck server, a proxy to nowhere, a port that is not
//! PostgreSQL) would hang the login forever. So the whole of it (TCP, TLS, authentication,
//! session set-up) runs under one deadline, and the TLS connector handed to the driver notes
//! how far the driver got, so the timeout can say which phase stalled.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::error::Elapsed;
use tokio::time::Instant;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, NoTls};
use unistore_core::{Error, ErrorKind, Result};

use super::config::{PasswordSource, PostgresConfig};
use super::lean::{share, LeanConnection, LeanSlot, SharedStream, Sharing};
use super::owned::{Driver, OwnedConnection};
use super::sqlstate_kind;
use super::tls::{handshake_hint, tls_failure_hint, SslMode};

/// How far opening a connection got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    /// Resolving the host and opening the TCP connection.
    Tcp = 0,
    /// TCP is up; the server has not finished the start-up exchange (no TLS).
    Startup = 1,
    /// The TLS handshake.
    Tls = 2,
    /// TLS is up; authentication and start-up.
    Login = 3,
    /// Logged in; the session's settings are being applied.
    Setup = 4,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            1 => Phase::Startup,
            2 => Phase::Tls,
            3 => Phase::Login,
            4 => Phase::Setup,
            _ => Phase::Tcp,
        }
    }

    /// What had not happened yet, and the likely fix.
    fn describe(self) -> &'static str {
        match self {
            Phase::Tcp => {
                "no TCP connection was established; check the host, the port and firewalls \
                 (a dropped SYN waits rather than failing)"
            }
            Phase::Startup => {
                "the server accepted the TCP connection but did not answer; check that the port \
                 belongs to a PostgreSQL server (not a proxy or another service) and that the \
                 server is not overloaded"
            }
            Phase::Tls => {
                "the server agreed to TLS but the TLS handshake did not complete; check the \
                 server's TLS set-up, or try sslmode=disable to see whether plain connections work"
            }
            Phase::Login => {
                "TLS was set up but the server did not complete the login (authentication); check \
                 the server's log and load"
            }
            Phase::Setup => {
                "the login succeeded but the session set-up (SET statements) did not finish; the \
                 server may be overloaded"
            }
        }
    }
}

/// Human form of a timeout: `2 s`, `1.5 s`, `250 ms`.
pub(crate) fn human(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        let s = d.as_secs_f64();
        if (s - s.round()).abs() < 1e-9 {
            format!("{} s", s.round())
        } else {
            format!("{s:.1} s")
        }
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// A TLS connector (or `NoTls`) that records the phase as the driver goes through it.
struct Traced<T> {
    inner: T,
    phase: Arc<AtomicU8>,
}

impl<S, T> MakeTlsConnect<S> for Traced<T>
where
    T: MakeTlsConnect<S>,
    <T::TlsConnect as TlsConnect<S>>::Future: Send + 'static,
{
    type Stream = T::Stream;
    type TlsConnect = Traced<T::TlsConnect>;
    type Error = T::Error;

    fn make_tls_connect(&mut self, domain: &str) -> std::result::Result<Self::TlsConnect, Self::Error> {
        // The driver asks for the connector right after the TCP connection is up.
        self.phase.store(Phase::Startup as u8, Ordering::Relaxed);
        // A Unix socket has no host name, and rustls refuses an empty one before the server
        // is even asked. The server never offers TLS on a socket (and the driver refuses TLS
        // without a host name), so the placeholder only lets the driver ask and hear "no".
        let domain = if domain.is_empty() { "localhost" } else { domain };
        Ok(Traced { inner: self.inner.make_tls_connect(domain)?, phase: self.phase.clone() })
    }
}

impl<S, T> TlsConnect<S> for Traced<T>
where
    T: TlsConnect<S>,
    T::Future: Send + 'static,
{
    type Stream = T::Stream;
    type Error = T::Error;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<T::Stream, T::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        // Called once the server has agreed to TLS.
        self.phase.store(Phase::Tls as u8, Ordering::Relaxed);
        let phase = self.phase;
        let handshake = self.inner.connect(stream);
        Box::pin(async move {
            let stream = handshake.await?;
            phase.store(Phase::Login as u8, Ordering::Relaxed);
            Ok(stream)
        })
    }
}

/// Empties the session's slot after a failed login attempt: that attempt's stream is not the
/// session's connection, and the retry leaves its own.
fn forget_stream(slot: Option<&LeanSlot>) {
    if let Some(Ok(mut shared)) = slot.map(|s| s.lock()) {
        *shared = None;
    }
}

fn phase_of(phase: &AtomicU8) -> Phase {
    Phase::from_u8(phase.load(Ordering::Relaxed))
}

impl PostgresConfig {
    /// Opens one connection tagged with `application_name`, within the connect timeout, and
    /// drives it on a background task until the client is dropped.
    pub async fn connect(&self, application_name: &str) -> Result<Client> {
        self.connect_with_setup(application_name, None).await
    }

    /// Like [`connect`](Self::connect), then runs `setup` (for example `SET statement_timeout
    /// = 2000`), all of it within the connect timeout.
    pub async fn connect_with_setup(&self, application_name: &str, setup: Option<&str>) -> Result<Client> {
        let (client, connection) = self.open(application_name, setup).await?;
        if let Some(driver) = connection.into_driver() {
            tokio::spawn(drive(driver));
        }
        Ok(client)
    }

    /// Like [`connect_with_setup`](Self::connect_with_setup), but the connection is returned
    /// for its owner to poll (a benchmark session: see [`OwnedConnection`]) instead of being
    /// driven by a task of its own.
    pub(crate) async fn open(
        &self,
        application_name: &str,
        setup: Option<&str>,
    ) -> Result<(Client, OwnedConnection)> {
        self.open_shared(application_name, setup, None).await
    }

    /// Like [`open`](Self::open), for a benchmark session: over TLS, or over a plain TCP stream
    /// the session opened itself (a single TCP host), the connection is shared with the
    /// session's own hot path (see the `lean` module), which is returned too.
    pub(crate) async fn open_session(
        &self,
        application_name: &str,
        setup: Option<&str>,
    ) -> Result<(Client, OwnedConnection, Option<LeanConnection>)> {
        let slot = LeanSlot::default();
        let (client, connection) = self.open_shared(application_name, setup, Some(&slot)).await?;
        let socket = slot.lock().ok().and_then(|mut s| s.take());
        Ok((client, connection, socket.map(LeanConnection::new)))
    }

    async fn open_shared(
        &self,
        application_name: &str,
        setup: Option<&str>,
        slot: Option<&LeanSlot>,
    ) -> Result<(Client, OwnedConnection)> {
        let phase = Arc::new(AtomicU8::new(Phase::Tcp as u8));
        let deadline = self.connect_timeout.map(|t| Instant::now() + t);
        let opening = async {
            let (client, driver) = self.login(application_name, deadline, &phase, slot).await?;
            let mut connection = OwnedConnection::new(driver);
            if let Some(sql) = setup {
                phase.store(Phase::Setup as u8, Ordering::Relaxed);
                connection.run(client.batch_execute(sql)).await.map_err(|e| {
                    super::map_error(e, &format!("setting up a session on {}", self.redacted_url))
                })?;
            }
            Ok((client, connection))
        };
        match (deadline, self.connect_timeout) {
            (Some(deadline), Some(timeout)) => match tokio::time::timeout_at(deadline, opening).await {
                Ok(result) => result,
                Err(_) => Err(self.timeout_error(phase_of(&phase), timeout)),
            },
            _ => opening.await,
        }
    }

    /// TCP, TLS as `sslmode` says (with libpq's fallbacks for `allow` and `prefer`), login.
    async fn login(
        &self,
        application_name: &str,
        deadline: Option<Instant>,
        phase: &Arc<AtomicU8>,
        slot: Option<&LeanSlot>,
    ) -> Result<(Client, Driver)> {
        use tokio_postgres::config::SslMode as DriverMode;
        let tls = self.tls_connector.as_ref();
        match (self.ssl_mode, tls) {
            (SslMode::Disable, _) | (_, None) => {
                self.attempt(application_name, deadline, phase, DriverMode::Disable, None, slot).await
            }
            (SslMode::Allow, Some(tls)) => {
                match self.attempt(application_name, deadline, phase, DriverMode::Disable, None, slot).await {
                    // The server refused a plain connection (pg_hba `hostssl`): libpq retries with TLS.
                    Err(e) if e.code() == Some(SqlState::INVALID_AUTHORIZATION_SPECIFICATION.code()) => {
                        phase.store(Phase::Tcp as u8, Ordering::Relaxed);
                        forget_stream(slot);
                        self.attempt(application_name, deadline, phase, DriverMode::Require, Some(tls), slot)
                            .await
                    }
                    other => other,
                }
            }
            (SslMode::Prefer, Some(tls)) => {
                // The driver falls back to plain by itself when the server declines TLS; a failed
                // handshake is retried without TLS, as libpq does.
                match self
                    .attempt(application_name, deadline, phase, DriverMode::Prefer, Some(tls), slot)
                    .await
                {
                    Err(e) if failed_in_tls(&e) => {
                        tracing::debug!(
                            "TLS handshake failed with sslmode=prefer ({e}); retrying without TLS"
                        );
                        phase.store(Phase::Tcp as u8, Ordering::Relaxed);
                        forget_stream(slot);
                        self.attempt(application_name, deadline, phase, DriverMode::Disable, None, slot).await
                    }
                    other => other,
                }
            }
            (SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull, Some(tls)) => {
                self.attempt(application_name, deadline, phase, DriverMode::Require, Some(tls), slot).await
            }
        }
    }

    async fn attempt(
        &self,
        application_name: &str,
        deadline: Option<Instant>,
        phase: &Arc<AtomicU8>,
        mode: tokio_postgres::config::SslMode,
        tls: Option<&tokio_postgres_rustls::MakeRustlsConnect>,
        slot: Option<&LeanSlot>,
    ) -> Result<(Client, Driver)> {
        let mut config = self.driver.clone();
        config.application_name(application_name).ssl_mode(mode);
        if let Some(deadline) = deadline {
            // The driver's own limit on the TCP connect; the deadline around it covers the rest.
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            config.connect_timeout(left + Duration::from_millis(500));
        }
        match tls {
            // A plain session over TCP: on a stream of its own, shared with its hot path.
            None if mode == tokio_postgres::config::SslMode::Disable && slot.is_some() => {
                let own = match (slot, self.own_tcp_target()) {
                    (Some(slot), Some((host, port))) => {
                        self.open_tcp(host, port).await.ok().map(|s| (slot, s))
                    }
                    _ => None,
                };
                match own {
                    Some((slot, stream)) => {
                        self.via_own_stream(&config, share(stream, slot, false), NoTls, phase).await
                    }
                    // No stream of its own (a Unix socket, several hosts, or the TCP connect
                    // failed: the driver's attempt then fails the same way and says so in its words).
                    None => self.via_driver(&config, NoTls, phase).await,
                }
            }
            None => self.via_driver(&config, NoTls, phase).await,
            Some(tls) => match slot {
                None => self.via_driver(&config, tls.clone(), phase).await,
                // `prefer` on a TCP stream of its own: shared whether the server takes TLS or not.
                Some(slot) if mode == tokio_postgres::config::SslMode::Prefer => {
                    let own = match self.own_tcp_target() {
                        Some((host, port)) => {
                            let connector =
                                MakeTlsConnect::<TcpStream>::make_tls_connect(&mut tls.clone(), host);
                            match (self.open_tcp(host, port).await, connector) {
                                (Ok(stream), Ok(connector)) => Some((stream, connector)),
                                _ => None,
                            }
                        }
                        None => None,
                    };
                    match own {
                        Some((stream, connector)) => {
                            let sharing = Sharing { inner: connector, slot: slot.clone() };
                            self.via_own_stream(&config, share(stream, slot, true), sharing, phase).await
                        }
                        // As for `disable`: the driver's attempt says why in its words.
                        None => {
                            let sharing = Sharing { inner: tls.clone(), slot: slot.clone() };
                            self.via_driver(&config, sharing, phase).await
                        }
                    }
                }
                Some(slot) => {
                    let sharing = Sharing { inner: tls.clone(), slot: slot.clone() };
                    self.via_driver(&config, sharing, phase).await
                }
            },
        }
    }

    /// Logs in through the driver's own connect (TCP or Unix socket, then TLS as `tls` does it).
    async fn via_driver<T>(
        &self,
        config: &tokio_postgres::Config,
        tls: T,
        phase: &Arc<AtomicU8>,
    ) -> Result<(Client, Driver)>
    where
        T: MakeTlsConnect<tokio_postgres::Socket> + Send,
        T::Stream: Send + 'static,
        T::TlsConnect: Send,
        <T::TlsConnect as TlsConnect<tokio_postgres::Socket>>::Future: Send + 'static,
    {
        let traced = Traced { inner: tls, phase: phase.clone() };
        let (client, connection) =
            config.connect(traced).await.map_err(|e| self.connect_error(e, phase_of(phase)))?;
        Ok((client, Box::pin(connection)))
    }

    /// Logs in on a TCP stream the session opened and shares with its hot path.
    async fn via_own_stream<T>(
        &self,
        config: &tokio_postgres::Config,
        stream: SharedStream<TcpStream>,
        tls: T,
        phase: &Arc<AtomicU8>,
    ) -> Result<(Client, Driver)>
    where
        T: TlsConnect<SharedStream<TcpStream>> + Send,
        T::Stream: Send + 'static,
        T::Future: Send + 'static,
    {
        phase.store(Phase::Startup as u8, Ordering::Relaxed);
        let traced = Traced { inner: tls, phase: phase.clone() };
        let (client, connection) =
            config.connect_raw(stream, traced).await.map_err(|e| self.connect_error(e, phase_of(phase)))?;
        Ok((client, Box::pin(connection)))
    }

    /// The one TCP host and port a session can open a stream to itself, as the driver would:
    /// `None` for a Unix socket, several hosts or ports, `hostaddr=`, or a session that must
    /// be checked for read-write (the driver's `connect` does that, `connect_raw` does not).
    fn own_tcp_target(&self) -> Option<(&str, u16)> {
        use tokio_postgres::config::{Host, TargetSessionAttrs};
        let d = &self.driver;
        if d.get_target_session_attrs() != TargetSessionAttrs::Any || !d.get_hostaddrs().is_empty() {
            return None;
        }
        match (d.get_hosts(), d.get_ports()) {
            ([Host::Tcp(host)], []) => Some((host, 5432)),
            ([Host::Tcp(host)], [port]) => Some((host, *port)),
            _ => None,
        }
    }

    /// A TCP stream to `host` and `port` (the config's one TCP host), set up as the driver sets
    /// up its own (`TCP_NODELAY`, keepalives, user timeout), trying each address in turn; the
    /// last failure if none answered. The caller bounds the wait.
    async fn open_tcp(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, "could not resolve any addresses");
        for address in tokio::net::lookup_host((host, port)).await? {
            match TcpStream::connect(address).await {
                Ok(stream) => match self.set_up_socket(&stream) {
                    Ok(()) => return Ok(stream),
                    Err(e) => last = e,
                },
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn set_up_socket(&self, stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)?;
        let socket = socket2::SockRef::from(stream);
        #[cfg(target_os = "linux")]
        if let Some(timeout) = self.driver.get_tcp_user_timeout() {
            socket.set_tcp_user_timeout(Some(*timeout))?;
        }
        if self.driver.get_keepalives() {
            let mut keepalive = socket2::TcpKeepalive::new().with_time(self.driver.get_keepalives_idle());
            #[cfg(not(any(target_os = "redox", target_os = "solaris")))]
            if let Some(interval) = self.driver.get_keepalives_interval() {
                keepalive = keepalive.with_interval(interval);
            }
            #[cfg(not(any(target_os = "redox", target_os = "solaris", target_os = "windows")))]
            if let Some(retries) = self.driver.get_keepalives_retries() {
                keepalive = keepalive.with_retries(retries);
            }
            socket.set_tcp_keepalive(&keepalive)?;
        }
        Ok(())
    }

    /// A cancel request for a statement in flight on a connection (its own short connection,
    /// bounded by the connect timeout). Over TCP the request goes on a stream opened here (a
    /// session that logged in on a stream of its own has a token that cannot open one), with
    /// TLS as the session's login negotiated it.
    pub async fn cancel(&self, token: &tokio_postgres::CancelToken) -> Result<()> {
        let request = async {
            if let Some((host, port)) = self.own_tcp_target() {
                let stream = self.open_tcp(host, port).await.map_err(|e| {
                    let kind = match e.kind() {
                        io::ErrorKind::TimedOut => ErrorKind::Timeout,
                        _ => ErrorKind::Connect,
                    };
                    Error::backend(
                        kind,
                        format!(
                            "cannot send a cancel request to {} ({}): {e}",
                            self.redacted_url,
                            self.endpoint()
                        ),
                    )
                    .with_source(e)
                })?;
                let sent = match &self.tls_connector {
                    None => token.cancel_query_raw(stream, NoTls).await,
                    Some(tls) => {
                        match MakeTlsConnect::<TcpStream>::make_tls_connect(&mut tls.clone(), host) {
                            Ok(tls) => token.cancel_query_raw(stream, tls).await,
                            Err(e) => {
                                return Err(Error::backend(
                                    ErrorKind::Connect,
                                    format!(
                                        "sending a cancel request to {}: no TLS connector for `{host}`: {e}",
                                        self.endpoint()
                                    ),
                                ))
                            }
                        }
                    }
                };
                return sent.map_err(|e| self.connect_error(e, Phase::Startup));
            }
            let sent = match &self.tls_connector {
                None => token.cancel_query(NoTls).await,
                // Traced: a Unix socket's empty host name must not fail before the server is asked.
                Some(tls) => {
                    let phase = Arc::new(AtomicU8::new(Phase::Tcp as u8));
                    token.cancel_query(Traced { inner: tls.clone(), phase }).await
                }
            };
            sent.map_err(|e| self.connect_error(e, Phase::Startup))
        };
        let timeout = self.connect_timeout.unwrap_or(super::config::DEFAULT_CONNECT_TIMEOUT);
        match tokio::time::timeout(timeout, request).await {
            Ok(r) => r,
            Err(_) => Err(Error::backend(
                ErrorKind::Timeout,
                format!("sending a cancel request to {} timed out after {}", self.endpoint(), human(timeout)),
            )),
        }
    }

    fn timeout_error(&self, phase: Phase, timeout: Duration) -> Error {
        Error::backend(
            ErrorKind::Timeout,
            format!(
                "connecting to {} timed out after {}: {} (target {}; raise connect_timeout= in the URL \
                 or the connect timeout option if the server is just slow)",
                self.endpoint(),
                human(timeout),
                phase.describe(),
                self.redacted_url
            ),
        )
    }

    /// Maps a failure to connect: wrong or missing password, no server, a server that is not
    /// PostgreSQL, a certificate that does not verify. The driver's error is kept as the source
    /// (its text names neither the URL nor the password).
    pub(crate) fn connect_error(&self, e: tokio_postgres::Error, phase: Phase) -> Error {
        let target = &self.redacted_url;
        if let Some(db) = e.as_db_error() {
            let code = db.code().code().to_string();
            let kind = sqlstate_kind(&code);
            let fix = match code.as_str() {
                // pg_hba's "no encryption" has no code of its own: 28000 is any rejected login.
                "28P01" | "28000" if db.message().contains("no encryption") => {
                    "the server accepts only TLS connections from here: use sslmode=require (or verify-full)"
                        .to_string()
                }
                "28P01" | "28000" => self.password_fix(),
                "3D000" => "check the database name in the URL (or PGDATABASE)".to_string(),
                "53300" => {
                    "the server has no free connection slots: lower --connections or raise max_connections"
                        .to_string()
                }
                _ => "check the URL and the server's log".to_string(),
            };
            let message = format!("cannot connect to {target}: {} (SQLSTATE {code}); {fix}", db.message());
            return Error::backend(if kind == ErrorKind::Other { ErrorKind::Connect } else { kind }, message)
                .with_code(code)
                .with_source(e);
        }
        let text = e.to_string();
        let cause = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default();
        let detail =
            if cause.is_empty() || text.contains(&cause) { text.clone() } else { format!("{text}: {cause}") };
        // The driver reports a missing password as a configuration error with a text cause.
        if detail.contains("password missing") {
            return Error::backend(
                ErrorKind::Permission,
                format!(
                    "cannot connect to {target}: the server asks for a password and none was given; {}",
                    self.password_fix()
                ),
            )
            .with_source(e);
        }
        let io_kind = super::io_error_kind(&e);
        let (kind, hint) = if let Some(tls) = super::find_cause::<rustls::Error>(&e) {
            (ErrorKind::Connect, tls_failure_hint(tls, &detail, self.ssl_mode))
        // A TLS failure without a rustls error (the server declined TLS, or the socket failed
        // mid-handshake): the driver's kind is private and its fixed wording the only marker.
        } else if text == "error performing TLS handshake" {
            (ErrorKind::Connect, handshake_hint(&detail, self.ssl_mode))
        } else if io_kind == Some(io::ErrorKind::ConnectionRefused) {
            (
                ErrorKind::Connect,
                "nothing listens there: check host and port, and that the server is running".into(),
            )
        } else if io_kind == Some(io::ErrorKind::TimedOut) || super::find_cause::<Elapsed>(&e).is_some() {
            (ErrorKind::Timeout, "the server did not answer in time: check host, port and firewalls".into())
        } else if speaks_another_protocol(&e, io_kind, phase) {
            (
                ErrorKind::Connect,
                "the server there does not speak the PostgreSQL protocol: check the port".into(),
            )
        // The driver's authentication errors carry text causes (SASL, SCRAM) only.
        } else if text == "authentication error" {
            (ErrorKind::Permission, self.password_fix())
        } else {
            (ErrorKind::Connect, "check the URL and that a PostgreSQL server is reachable".into())
        };
        Error::backend(kind, format!("cannot connect to {target} ({}): {detail}; {hint}", self.endpoint()))
            .with_source(e)
    }

    /// Where the password came from and where it could come from, never the password itself.
    fn password_fix(&self) -> String {
        let user = self.driver.get_user().unwrap_or("?");
        let tried = match &self.password_source {
            PasswordSource::None => format!("no password was found for user `{user}`"),
            source => format!("{source} was used for user `{user}`"),
        };
        let note = self.password_note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        format!(
            "check the user name and password: {tried}{note}; set PGPASSWORD, or add a line \
             host:port:database:user:password to ~/.pgpass (or the file named by PGPASSFILE, mode \
             0600), or put it in the URL (never in a template)"
        )
    }
}

/// Whether opening a connection failed in the TLS handshake (as libpq, `prefer` then retries in
/// plain).
fn failed_in_tls(e: &Error) -> bool {
    let Some(driver) = std::error::Error::source(e) else { return false };
    super::find_cause::<rustls::Error>(driver).is_some()
        // A handshake that failed without a rustls error (the socket broke mid-handshake): the
        // driver's kind is private and its fixed wording the only marker.
        || driver.downcast_ref::<tokio_postgres::Error>()
            .is_some_and(|d| d.to_string() == "error performing TLS handshake")
}

/// Whether a connection that failed after the TCP connect met a server of another protocol: it
/// hung up or answered with bytes the PostgreSQL parser rejects. A PostgreSQL server explains
/// itself before it hangs up; one that drops the connection during the start-up exchange without
/// a word is something else.
fn speaks_another_protocol(e: &tokio_postgres::Error, io_kind: Option<io::ErrorKind>, phase: Phase) -> bool {
    use io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
    e.is_closed()
        || (phase == Phase::Startup && io_kind.is_some())
        || (phase != Phase::Tcp && matches!(io_kind, Some(UnexpectedEof | InvalidData | InvalidInput)))
        // The driver's "unexpected message" has no cause: its fixed wording is the only marker.
        || e.to_string() == "unexpected message from server"
}

async fn drive(connection: Driver) {
    if let Err(e) = connection.await {
        // The session sees the same failure on its next statement and reports it with the
        // right kind; this is only a trace for debugging.
        tracing::debug!("postgres connection ended: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_like_a_person_wrote_them() {
        assert_eq!(human(Duration::from_secs(2)), "2 s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(human(Duration::from_millis(250)), "250 ms");
    }

    #[test]
    fn every_phase_says_what_did_not_happen() {
        assert!(Phase::Startup
            .describe()
            .starts_with("the server accepted the TCP connection but did not answer"));
        for v in 0..=5u8 {
            assert!(!Phase::from_u8(v).describe().is_empty());
        }
        let c = PostgresConfig::parse_with_env("postgres://bob:hunter2@127.0.0.1:41234/db", &|_| None)
            .expect("valid URL");
        let e = c.timeout_error(Phase::Startup, Duration::from_secs(2));
        assert_eq!(e.kind(), ErrorKind::Timeout);
        let text = e.to_string();
        assert!(
            text.starts_with(
                "connecting to 127.0.0.1:41234 timed out after 2 s: the server accepted the TCP connection but did not answer"
            ),
            "{text}"
        );
        assert!(!text.contains("hunter2") && text.contains("bob:***@"), "{text}");
    }
}
