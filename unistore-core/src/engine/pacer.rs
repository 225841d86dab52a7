//! The open-loop pacer: one precise timer per engine that wakes each connection task at its
//! start slot.
//!
//! Why not tokio's timer. Its wheel counts whole milliseconds and rounds a deadline up to the
//! next tick, so a task woken by `sleep_until` starts up to a millisecond (plus the wake-up)
//! after its slot. Open loop measures the response time from the intended start, so that lag
//! was charged to the target: PostgreSQL point lookups at 1,000 ops/s showed a response p50 of
//! 1.2 ms against a service p50 of 0.2 ms, the difference being the tool's own scheduling.
//!
//! Design. The timetable is unchanged: a connection task claims the next slot and then waits
//! for it, so there is at most one waiting deadline per connection. The waiting is done here:
//! one thread per open-loop engine keeps the waiting deadlines in order, sleeps (a condition
//! variable with a timeout, i.e. an OS high-resolution timer) until shortly before the earliest
//! one, spins the final stretch, and wakes exactly the task(s) whose slot has come. Each task
//! is woken once, at its slot, by its waker: no task polls or spins.
//!
//! Why sleep-then-spin, and how long to spin. An OS sleep ends after its deadline by the
//! thread's timer slack (50 µs by default on Linux) plus the wake-up itself. The pacer asks
//! to wake `early` before the deadline and spins what is left, and learns `early` from the
//! overshoot of its own sleeps (it settles at their median), so the spin per slot is only as
//! long as the spread of the OS's imprecision, microseconds where the OS is steady, never more
//! than [`MAX_EARLY_NS`]; half the wakes end a few microseconds late instead. That is a small
//! fraction of one core even at 10,000 ops/s, against a busy loop per connection that would
//! burn them all; a dedicated thread (not a tokio task) also keeps the timing clear of the
//! runtime's workers, which are busy running the connections. (A first version tracked a high
//! percentile of the overshoot: on a loaded 2-core machine nearly every wake then spun, and at
//! 1,000 ops/s the client's CPU rose by half.)

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

/// Where the learnt wake-up margin starts: a wake-up with the pacer's minimal timer slack.
const INITIAL_EARLY_NS: u64 = 20_000;
/// How far one sleep moves the margin.
const EARLY_STEP_NS: u64 = 2_000;
/// The learnt margin never drops below this (a wake-up always costs a few microseconds)...
const MIN_EARLY_NS: u64 = 5_000;
/// ... nor rises above this: the spin per slot is bounded whatever the machine does.
pub(super) const MAX_EARLY_NS: u64 = 100_000;

/// A deadline as an offset from the load start, with a ticket that keeps equal deadlines apart.
type Key = (u64, u64);

struct State {
    waiting: BTreeMap<Key, Waker>,
    next_ticket: u64,
    shutdown: bool,
}

struct Inner {
    /// The load start. The pacer reads the OS's monotonic clock, not the hot path's time-stamp
    /// counter: it decides on one thread when tasks on others may start, and the OS clock is
    /// the same on every CPU.
    start: Instant,
    state: Mutex<State>,
    changed: Condvar,
    /// The deadline the thread is waiting or spinning towards (`u64::MAX` when idle). A task
    /// whose deadline is earlier wakes the thread; a later one leaves it be.
    armed_ns: AtomicU64,
}

impl Inner {
    #[inline]
    fn now_ns(&self) -> u64 {
        super::nanos_since(self.start)
    }
}

/// The pacer of one engine. Dropping it stops its thread and wakes every waiting task.
pub(super) struct Pacer {
    inner: Arc<Inner>,
}

impl Pacer {
    /// Starts the pacer's thread. Deadlines are offsets from `start` (the load start). `None`
    /// if the thread cannot be started.
    pub(super) fn start(start: Instant) -> Option<Pacer> {
        let inner = Arc::new(Inner {
            start,
            state: Mutex::new(State { waiting: BTreeMap::new(), next_ticket: 0, shutdown: false }),
            changed: Condvar::new(),
            armed_ns: AtomicU64::new(u64::MAX),
        });
        let thread_inner = inner.clone();
        match std::thread::Builder::new().name("unistore-pacer".into()).spawn(move || run(&thread_inner)) {
            Ok(_) => Some(Pacer { inner }),
            Err(e) => {
                tracing::warn!(
                    "cannot start the open-loop pacer thread ({e}); start slots use tokio's 1 ms timer"
                );
                None
            }
        }
    }

    /// Completes at `deadline_ns` (an offset from the load start), or at once if the pacer has
    /// stopped.
    pub(super) fn sleep_until(&self, deadline_ns: u64) -> PacedSleep<'_> {
        PacedSleep { inner: &self.inner, deadline_ns, key: None }
    }

    /// Stops the thread and wakes every waiting task.
    pub(super) fn shutdown(&self) {
        let waiting = {
            let mut st = self.inner.state.lock();
            st.shutdown = true;
            std::mem::take(&mut st.waiting)
        };
        self.inner.changed.notify_one();
        for waker in waiting.into_values() {
            waker.wake();
        }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A wait for a start slot (see [`Pacer::sleep_until`]).
pub(super) struct PacedSleep<'a> {
    inner: &'a Inner,
    deadline_ns: u64,
    /// Set while registered with the pacer; the pacer removes the entry when the slot comes.
    key: Option<Key>,
}

impl Future for PacedSleep<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut st = this.inner.state.lock();
        if let Some(key) = this.key {
            return match st.waiting.get_mut(&key) {
                Some(waker) => {
                    if !waker.will_wake(cx.waker()) {
                        waker.clone_from(cx.waker());
                    }
                    Poll::Pending
                }
                // The pacer took the entry out: the slot has come (or the pacer stopped).
                None => {
                    this.key = None;
                    Poll::Ready(())
                }
            };
        }
        if st.shutdown || this.inner.now_ns() >= this.deadline_ns {
            return Poll::Ready(());
        }
        let key = (this.deadline_ns, st.next_ticket);
        st.next_ticket += 1;
        st.waiting.insert(key, cx.waker().clone());
        this.key = Some(key);
        // Only a deadline earlier than the one the thread is heading for needs to wake it.
        if this.deadline_ns < this.inner.armed_ns.load(Ordering::Acquire) {
            this.inner.armed_ns.store(this.deadline_ns, Ordering::Release);
            drop(st);
            this.inner.changed.notify_one();
        }
        Poll::Pending
    }
}

impl Drop for PacedSleep<'_> {
    fn drop(&mut self) {
        // Cancelled (the load is stopping): leave nothing behind for the pacer to wake.
        if let Some(key) = self.key {
            self.inner.state.lock().waiting.remove(&key);
        }
    }
}

/// The pacer thread.
fn run(inner: &Inner) {
    // The kernel may end this thread's sleeps up to its timer slack late (50 µs by default) to
    // batch wake-ups; the pacer wants them on time, so that it spins less.
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_timerslack(1) {
        tracing::debug!("the pacer keeps the default timer slack: {e}");
    }
    let mut early_ns = INITIAL_EARLY_NS;
    let mut due: Vec<Waker> = Vec::new();
    let mut st = inner.state.lock();
    loop {
        if st.shutdown {
            return;
        }
        let Some(&(deadline, _)) = st.waiting.keys().next() else {
            inner.armed_ns.store(u64::MAX, Ordering::Release);
            inner.changed.wait(&mut st);
            continue;
        };
        inner.armed_ns.store(deadline, Ordering::Release);
        let now = inner.now_ns();
        if now >= deadline {
            while let Some(entry) = st.waiting.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                due.push(entry.remove());
            }
            // Wake outside the lock, so that a woken task that registers its next slot at
            // once does not wait for the pacer.
            MutexGuard::unlocked(&mut st, || {
                for waker in due.drain(..) {
                    waker.wake();
                }
            });
            continue;
        }
        if deadline - now > early_ns {
            let wake_at = deadline - early_ns;
            let timed_out = inner.changed.wait_for(&mut st, Duration::from_nanos(wake_at - now)).timed_out();
            if timed_out {
                early_ns = learn_early(early_ns, inner.now_ns().saturating_sub(wake_at));
            }
            continue;
        }
        // The final stretch: spin, without the lock so tasks can register meanwhile, and stop
        // early if one registers an earlier deadline.
        MutexGuard::unlocked(&mut st, || loop {
            let target = deadline.min(inner.armed_ns.load(Ordering::Acquire));
            if inner.now_ns() >= target {
                break;
            }
            std::hint::spin_loop();
        });
    }
}

/// The next wake-up margin, from the overshoot of the last sleep: a step towards it either
/// way, so the margin settles at the median overshoot. Half the sleeps then end a little late
/// (by the spread of the OS's overshoot, microseconds) and half spin a little; tracking a high
/// percentile instead would make nearly every wake spin, which on a loaded machine (long-tailed
/// overshoots) cost as much CPU as the operations themselves.
fn learn_early(early_ns: u64, overshoot_ns: u64) -> u64 {
    let next = if overshoot_ns > early_ns {
        early_ns + EARLY_STEP_NS.min(overshoot_ns - early_ns)
    } else {
        early_ns - EARLY_STEP_NS.min(early_ns - overshoot_ns)
    };
    next.clamp(MIN_EARLY_NS, MAX_EARLY_NS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_margin_follows_the_overshoot_within_its_bounds() {
        // One step towards the overshoot either way, never past it.
        assert_eq!(learn_early(60_000, 100_000), 62_000);
        assert_eq!(learn_early(60_000, 28_000), 58_000);
        assert_eq!(learn_early(60_000, 61_000), 61_000);
        assert_eq!(learn_early(MIN_EARLY_NS, 0), MIN_EARLY_NS);
        assert_eq!(learn_early(MAX_EARLY_NS, 10_000_000), MAX_EARLY_NS);
    }
}
