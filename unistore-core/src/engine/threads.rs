//! Client threads, as `pgbench -j` has them: each thread runs a single-threaded runtime of its
//! own and owns a share of the connections (connection `k` on thread `k mod N`), so a
//! connection's socket, its statements and their timers stay on one thread. A multi-thread
//! runtime moves tasks between threads and wakes idle threads to steal work: a futex and a
//! cross-thread hand-off per operation, which cost more client CPU than a second thread
//! gains (measured by `scripts/pgbench-parity` at 2 threads).

use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::error::{Error, ErrorKind, Result};

/// The threads that run a worker's connections. Cloning shares them; they stop when the last
/// clone is dropped (their runtimes then drop what still runs on them).
#[derive(Clone)]
pub struct ClientThreads {
    inner: Arc<Inner>,
}

struct Inner {
    /// Thread 0 is the runtime that started them; the others are this value's own.
    handles: Vec<Handle>,
    stops: Vec<oneshot::Sender<()>>,
}

impl ClientThreads {
    /// `n` client threads: the calling runtime's thread and `n - 1` new ones. Call it from a
    /// current-thread runtime (the caller's thread is thread 0).
    pub fn start(n: usize) -> Result<ClientThreads> {
        if n == 0 {
            return Err(Error::invalid("client threads is 0: use at least 1"));
        }
        let current = Handle::try_current().map_err(|_| {
            Error::invalid(
                "client threads must be started from within a tokio runtime (thread 0 is the caller's)",
            )
        })?;
        let mut handles = vec![current];
        let mut stops = Vec::with_capacity(n - 1);
        for index in 1..n {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
                    Error::backend(
                        ErrorKind::Other,
                        format!("cannot start client thread {index}'s runtime: {e}"),
                    )
                })?;
            let (stop, stopped) = oneshot::channel::<()>();
            handles.push(runtime.handle().clone());
            std::thread::Builder::new()
                .name(format!("unistore-client-{index}"))
                .spawn(move || {
                    // Runs the thread's tasks until every clone is dropped (the sender with it).
                    let _ = runtime.block_on(stopped);
                })
                .map_err(|e| {
                    Error::backend(ErrorKind::Other, format!("cannot start client thread {index}: {e}"))
                })?;
            stops.push(stop);
        }
        Ok(ClientThreads { inner: Arc::new(Inner { handles, stops }) })
    }

    /// How many threads.
    pub fn len(&self) -> usize {
        self.inner.handles.len()
    }

    /// Never: there is at least one thread.
    pub fn is_empty(&self) -> bool {
        self.inner.handles.is_empty()
    }

    /// The runtime of connection `index`'s thread.
    fn handle(&self, index: u32) -> &Handle {
        let n = self.inner.handles.len();
        &self.inner.handles[index as usize % n]
    }
}

/// Where connection `index` runs: its client thread's runtime, or without client threads the
/// caller's runtime.
pub(crate) fn runtime_of(threads: Option<&ClientThreads>, index: u32) -> Handle {
    threads.map_or_else(Handle::current, |t| t.handle(index).clone())
}

impl Drop for Inner {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
    }
}

impl std::fmt::Debug for ClientThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientThreads").field("threads", &self.len()).finish()
    }
}
