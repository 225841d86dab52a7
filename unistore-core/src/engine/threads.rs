//! Client threads, as `pgbench -j` has them: each thread runs a single-threaded runtime of its
//! own and owns a share of the connections (connection `k` on thread `k mod N`), so a
//! connection's socket, its statements and their timers stay on one thread. A multi-thread
//! runtime moves tasks between threads and wakes idle threads to steal work: a futex and a
//! cross-thread hand-off per operation, which cost more client CPU than a second thread
//! gains (measured by `scripts/pgbench-parity` at 2 threads).
//!
//! [`ClientThreads::start_pinned`] also binds thread `i` to the `i`-th CPU the process may run
//! on. Left to the scheduler, two client threads on a machine they share with the database's
//! processes now and then end up on one CPU for seconds, and every wake-up of a server process
//! then crosses CPUs: on a 2-core machine, pgbench -j 2 (which does not pin) ran at about
//! 80k point lookups a second in such stretches and about 110k otherwise; pinned client
//! threads ran at 103-110k in all six runs of that comparison. Pinning makes such stretches
//! rarer; it does not rule out every slow run on a shared host.

use std::sync::Arc;

use nix::sched::CpuSet;
use nix::unistd::Pid;

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
    /// The CPU of each thread, when pinned.
    cpus: Option<Vec<usize>>,
    /// Thread 0 (the caller's) and the CPUs it could run on before it was pinned.
    restore: Option<(Pid, CpuSet)>,
}

impl ClientThreads {
    /// `n` client threads: the calling runtime's thread and `n - 1` new ones. Call it from a
    /// current-thread runtime (the caller's thread is thread 0).
    pub fn start(n: usize) -> Result<ClientThreads> {
        Self::start_with(n, None)
    }

    /// As [`start`](Self::start), each thread bound to a CPU of its own: thread `i` to the
    /// `i`-th CPU the process may run on (its affinity mask, so a container's or `taskset`'s
    /// limits hold). The caller's thread gets its CPUs back when the threads stop. Where that
    /// cannot be (more threads than CPUs, or the system refuses), the threads run unpinned:
    /// [`cpus`](Self::cpus) says which it was.
    pub fn start_pinned(n: usize) -> Result<ClientThreads> {
        let plan = nix::sched::sched_getaffinity(nix::unistd::gettid()).ok().and_then(|before| {
            let cpus = cpus_in(&before);
            (n <= cpus.len()).then(|| (cpus[..n].to_vec(), before))
        });
        Self::start_with(n, plan)
    }

    /// `plan`: the CPU of each thread, and thread 0's CPUs before it is pinned.
    fn start_with(n: usize, plan: Option<(Vec<usize>, CpuSet)>) -> Result<ClientThreads> {
        if n == 0 {
            return Err(Error::invalid("client threads is 0: use at least 1"));
        }
        let current = Handle::try_current().map_err(|_| {
            Error::invalid(
                "client threads must be started from within a tokio runtime (thread 0 is the caller's)",
            )
        })?;
        // Thread 0 first: if the system refuses, nothing is pinned.
        let (cpus, restore) = match plan {
            Some((cpus, before)) => match pin(cpus[0]) {
                Ok(()) => (Some(cpus), Some((nix::unistd::gettid(), before))),
                Err(e) => {
                    tracing::debug!("client threads run unpinned: {e}");
                    (None, None)
                }
            },
            None => (None, None),
        };
        // Built first, so that a thread failing to start stops the others and gives thread 0
        // its CPUs back (its Drop).
        let mut inner = Inner { handles: vec![current], stops: Vec::with_capacity(n - 1), cpus, restore };
        for index in 1..n {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
                    Error::backend(
                        ErrorKind::Other,
                        format!("cannot start client thread {index}'s runtime: {e}"),
                    )
                })?;
            let (stop, stopped) = oneshot::channel::<()>();
            inner.handles.push(runtime.handle().clone());
            let cpu = inner.cpus.as_ref().map(|c| c[index]);
            std::thread::Builder::new()
                .name(format!("unistore-client-{index}"))
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        if let Err(e) = pin(cpu) {
                            tracing::warn!("client thread {index} runs unpinned: {e}");
                        }
                    }
                    // Runs the thread's tasks until every clone is dropped (the sender with it).
                    let _ = runtime.block_on(stopped);
                })
                .map_err(|e| {
                    Error::backend(ErrorKind::Other, format!("cannot start client thread {index}: {e}"))
                })?;
            inner.stops.push(stop);
        }
        Ok(ClientThreads { inner: Arc::new(inner) })
    }

    /// The CPU each thread is bound to (thread `i` to the `i`-th), or `None` when unpinned.
    pub fn cpus(&self) -> Option<&[usize]> {
        self.inner.cpus.as_deref()
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
        if let Some((thread, cpus)) = self.restore.take() {
            if let Err(e) = nix::sched::sched_setaffinity(thread, &cpus) {
                tracing::debug!("cannot give client thread 0 its CPUs back: {e}");
            }
        }
    }
}

/// The CPUs in `set`, in order.
fn cpus_in(set: &CpuSet) -> Vec<usize> {
    (0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect()
}

/// Binds the calling thread to `cpu`.
fn pin(cpu: usize) -> std::result::Result<(), nix::Error> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    nix::sched::sched_setaffinity(nix::unistd::gettid(), &set)
}

impl std::fmt::Debug for ClientThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientThreads").field("threads", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's CPUs.
    fn affinity() -> Vec<usize> {
        cpus_in(&nix::sched::sched_getaffinity(nix::unistd::gettid()).expect("affinity"))
    }

    /// Each thread runs on its own CPU of the process's set, and thread 0 (the caller's)
    /// gets its CPUs back afterwards; more threads than CPUs run unpinned.
    #[test]
    fn pinned_threads_each_get_a_cpu_of_their_own_and_give_it_back() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let before = affinity();
        runtime.block_on(async {
            let too_many = ClientThreads::start_pinned(before.len() + 1).expect("starts");
            assert_eq!(too_many.cpus(), None, "more threads than CPUs: unpinned");
            assert_eq!(affinity(), before);
            drop(too_many);
            if before.len() < 2 {
                return; // one CPU: nothing to spread over
            }
            let threads = ClientThreads::start_pinned(2).expect("starts");
            assert_eq!(threads.cpus(), Some(&before[..2]));
            assert_eq!(affinity(), vec![before[0]], "thread 0 runs on the first CPU");
            let on_thread_1 = threads.handle(1).spawn(async { affinity() }).await.expect("runs");
            assert_eq!(on_thread_1, vec![before[1]], "thread 1 runs on the second CPU");
            drop(threads);
            assert_eq!(affinity(), before, "thread 0 has its CPUs back");
            let unpinned = ClientThreads::start(2).expect("starts");
            assert_eq!(unpinned.cpus(), None);
            let on_thread_1 = unpinned.handle(1).spawn(async { affinity() }).await.expect("runs");
            assert_eq!(on_thread_1, before, "start leaves the threads to the scheduler");
        });
    }
}
