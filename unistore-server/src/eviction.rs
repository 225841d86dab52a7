//! Making room when every connection slot is taken.
//!
//! Waiting in the listen backlog alone is not enough: the kernel queues in arrival order, so a
//! health check that arrives behind a few thousand stalled clients waits for all of them, one
//! header timeout per round of `max_connections`. Instead, when the slots are full, the accept
//! loop closes the connection that has been quiet the longest (no request in flight, nothing left
//! to send: a half-sent request head, or an idle keep-alive connection) once it has been quiet for
//! a moment. nginx does the same with idle keep-alive connections when it runs out of them.
//! Busy connections are never chosen, and neither are brand-new ones, which are presumably still
//! sending their first request.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::connection::ConnectionActivity;

/// A connection's side of the eviction: held by the task serving it, so a connection whose task
/// has ended (closed, or handed to a WebSocket handler) is no longer a candidate.
#[derive(Debug)]
pub(crate) struct EvictionHandle {
    activity: Arc<ConnectionActivity>,
    asked: AtomicBool,
    notify: Notify,
}

impl EvictionHandle {
    /// Completes when the accept loop asks this connection to close.
    pub(crate) async fn asked_to_close(&self) {
        self.notify.notified().await;
    }

    /// The connection became busy in the meantime and stays; it may be asked again later.
    pub(crate) fn decline(&self) {
        self.asked.store(false, Ordering::Release);
    }
}

/// Every connection being served, in accept order.
#[derive(Debug, Default)]
pub(crate) struct ConnectionRegistry {
    entries: Mutex<VecDeque<Weak<EvictionHandle>>>,
}

impl ConnectionRegistry {
    /// Registers a connection; `open_limit` bounds how many entries of ended connections may
    /// pile up before they are swept.
    pub(crate) fn register(
        &self,
        activity: Arc<ConnectionActivity>,
        open_limit: usize,
    ) -> Arc<EvictionHandle> {
        let handle =
            Arc::new(EvictionHandle { activity, asked: AtomicBool::new(false), notify: Notify::new() });
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= open_limit.saturating_mul(2) {
            entries.retain(|entry| entry.strong_count() > 0);
        }
        entries.push_back(Arc::downgrade(&handle));
        handle
    }

    /// Asks the connection that has been quiet the longest, at least `min_quiet`, to close.
    /// Returns whether one was asked.
    pub(crate) fn evict_longest_quiet(&self, min_quiet: Duration) -> bool {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|entry| entry.strong_count() > 0);
        let candidate = entries
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|handle| !handle.asked.load(Ordering::Acquire))
            .filter_map(|handle| {
                let quiet = handle.activity.quiet_for(now)?;
                (quiet >= min_quiet).then_some((quiet, handle))
            })
            .max_by_key(|(quiet, _)| *quiet);
        match candidate {
            Some((_, handle)) => {
                handle.asked.store(true, Ordering::Release);
                handle.notify.notify_one();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_longest_quiet_connection_is_asked_and_new_ones_are_spared() {
        let registry = ConnectionRegistry::default();
        let older = registry.register(Arc::new(ConnectionActivity::new()), 8);
        tokio::time::sleep(Duration::from_millis(60)).await;
        let newer = registry.register(Arc::new(ConnectionActivity::new()), 8);

        assert!(!registry.evict_longest_quiet(Duration::from_secs(5)), "nobody has been quiet 5 s");
        assert!(registry.evict_longest_quiet(Duration::from_millis(50)), "the older one qualifies");
        tokio::time::timeout(Duration::from_secs(1), older.asked_to_close())
            .await
            .expect("the older one was asked");
        assert!(
            !registry.evict_longest_quiet(Duration::from_millis(50)),
            "the newer one is not quiet long enough"
        );

        older.decline();
        drop(older); // its task ended: no longer a candidate
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(registry.evict_longest_quiet(Duration::from_millis(50)));
        tokio::time::timeout(Duration::from_secs(1), newer.asked_to_close())
            .await
            .expect("now the newer one");
        assert_eq!(registry.entries.lock().map(|e| e.len()).unwrap_or(0), 1);
    }

    #[tokio::test]
    async fn a_busy_connection_is_never_asked_however_long_it_has_been_open() {
        let registry = ConnectionRegistry::default();
        let activity = Arc::new(ConnectionActivity::new());
        let _handle = registry.register(Arc::clone(&activity), 8);
        let request = crate::connection::InFlight::start(&activity);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(!registry.evict_longest_quiet(Duration::from_millis(10)), "a request is in flight");
        drop(request);
        assert!(!registry.evict_longest_quiet(Duration::from_millis(10)), "quiet only since the response");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(registry.evict_longest_quiet(Duration::from_millis(10)));
    }

    #[test]
    fn entries_of_ended_connections_do_not_pile_up() {
        let registry = ConnectionRegistry::default();
        for _ in 0..100 {
            drop(registry.register(Arc::new(ConnectionActivity::new()), 4));
        }
        let len = registry.entries.lock().map(|e| e.len()).unwrap_or(usize::MAX);
        assert!(len <= 8, "{len} entries kept for 4 open connections at most");
    }
}
