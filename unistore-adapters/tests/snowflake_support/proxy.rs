//! Small TCP helpers for the connection tests: a proxy in front of the emulator that counts
//! the TCP connections a client opens (and can misbehave on demand), and a server that accepts
//! connections and never answers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Default)]
struct ProxyState {
    accepted: AtomicU64,
    /// The next request on any open connection is dropped and that connection closed, as a
    /// server does when it closes a kept-alive connection just as the client reuses it.
    close_next_request: AtomicBool,
    /// Nothing the client sends is forwarded any more, and nothing is answered.
    blackhole: AtomicBool,
    /// The first bytes clients sent (requests), for tests of what goes over the wire.
    sent: Mutex<Vec<u8>>,
}

/// How much of what clients send the proxy keeps.
const KEEP_SENT: usize = 1 << 20;

/// A TCP proxy on 127.0.0.1:0 that forwards to `upstream` and counts accepted connections.
pub struct CountingProxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    accept_loop: JoinHandle<()>,
}

impl CountingProxy {
    /// Starts a proxy to `upstream`.
    pub async fn start(upstream: SocketAddr) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(ProxyState::default());
        let shared = state.clone();
        let accept_loop = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                let state = shared.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        forward(client, server, state).await;
                    }
                });
            }
        });
        CountingProxy { addr, state, accept_loop }
    }

    /// What clients sent so far (the first MiB), as text.
    pub fn sent(&self) -> String {
        String::from_utf8_lossy(&self.state.sent.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// TCP connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// `http://127.0.0.1:PORT`, the proxy's base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next request, on whichever connection it comes, is dropped and its connection closed.
    pub fn close_on_next_request(&self) {
        self.state.close_next_request.store(true, Ordering::SeqCst);
    }

    /// From now on nothing is forwarded nor answered (the connections stay open).
    pub fn blackhole(&self) {
        self.state.blackhole.store(true, Ordering::SeqCst);
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn forward(client: TcpStream, server: TcpStream, state: Arc<ProxyState>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if state.close_next_request.swap(false, Ordering::SeqCst) {
                return;
            }
            if state.blackhole.load(Ordering::SeqCst) {
                continue;
            }
            {
                let mut sent = state.sent.lock().unwrap_or_else(|p| p.into_inner());
                let room = KEEP_SENT.saturating_sub(sent.len()).min(n);
                sent.extend_from_slice(&buffer[..room]);
            }
            if server_write.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    };
    let downstream = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if client_write.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    };
    // When either direction ends, both sockets are dropped: the client sees the close.
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

/// A server on 127.0.0.1:0 that accepts TCP connections and never answers (nor closes them).
pub struct SilentServer {
    addr: SocketAddr,
    accept_loop: JoinHandle<()>,
}

impl SilentServer {
    /// Starts the server.
    pub async fn start() -> SilentServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the silent server");
        let addr = listener.local_addr().expect("silent server address");
        let accept_loop = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        SilentServer { addr, accept_loop }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// `url` (a `snowflake://` URL) with its `host=` parameter set to `base_url`.
pub fn with_host(url: &str, base_url: &str) -> String {
    let (head, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params: Vec<String> =
        query.split('&').filter(|p| !p.is_empty() && !p.starts_with("host=")).map(str::to_string).collect();
    params.push(format!("host={base_url}"));
    format!("{head}?{}", params.join("&"))
}

/// The `host:port` the `host=` parameter of a `snowflake://` URL points at.
pub fn upstream_of(url: &str) -> SocketAddr {
    let host = url
        .split_once('?')
        .and_then(|(_, q)| q.split('&').find_map(|p| p.strip_prefix("host=")))
        .unwrap_or_else(|| panic!("{url} has no host= parameter"));
    let host_port = host.trim_start_matches("http://").trim_end_matches('/');
    host_port.parse().unwrap_or_else(|e| panic!("host {host_port} is not an address: {e}"))
}
