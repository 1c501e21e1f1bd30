//! What a writer thread and the threads that record calls share: whether rows can be
//! written, how far the writer has got, and what was lost.
//!
//! Everything the hot path reads is one relaxed atomic load; the mutex and condition
//! variable are used only in `durability = "sync"`, where a call waits for its row anyway.

use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Shared between one writer and the callers sending to it.
#[derive(Debug)]
pub struct Health {
    /// False from a failed write until the next successful one.
    writable: AtomicBool,
    /// Events the writer has finished with (written and synced, or counted lost), counted in
    /// channel order. Maintained in sync mode only.
    done: Mutex<u64>,
    done_changed: Condvar,
    /// Rows lost since the writer started (write failures, and events never handed over).
    lost: AtomicU64,
    /// Events the callers could not hand over; the writer folds them into its next gap row.
    undelivered: AtomicU64,
    /// The writer thread has ended: callers must not wait for it (a full lane).
    stopped: AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            writable: AtomicBool::new(true),
            done: Mutex::new(0),
            done_changed: Condvar::new(),
            lost: AtomicU64::new(0),
            undelivered: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        }
    }
}

impl Health {
    /// Whether the last write succeeded (true until a write has failed).
    #[inline]
    pub fn writable(&self) -> bool {
        self.writable.load(Ordering::Relaxed)
    }

    /// Set by the writer after every write attempt.
    pub fn set_writable(&self, ok: bool) {
        self.writable.store(ok, Ordering::Relaxed);
    }

    /// Whether the writer thread has ended.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Set as the writer thread ends, however it ends.
    pub fn set_stopped(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    /// Rows lost since the writer started.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// The writer counts rows it could not write.
    pub fn add_lost(&self, n: u64) {
        self.lost.fetch_add(n, Ordering::Relaxed);
    }

    /// A caller could not hand an event over (the writer thread is gone or stalled).
    pub fn add_undelivered(&self) {
        self.undelivered.fetch_add(1, Ordering::Relaxed);
        self.lost.fetch_add(1, Ordering::Relaxed);
    }

    /// The writer takes the undelivered count into its loss accounting.
    pub fn take_undelivered(&self) -> u64 {
        self.undelivered.swap(0, Ordering::Relaxed)
    }

    /// The writer has finished with the first `n` events (sync mode).
    pub fn set_done(&self, n: u64) {
        *self.done.lock() = n;
        self.done_changed.notify_all();
    }

    /// Waits until the writer has finished with event number `ticket` (1-based, channel
    /// order), or `timeout`. Returns whether it has.
    pub fn wait_done(&self, ticket: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut done = self.done.lock();
        while *done < ticket {
            if self
                .done_changed
                .wait_until(&mut done, deadline)
                .timed_out()
            {
                return *done >= ticket;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn waiters_wake_when_their_ticket_is_done() {
        let h = Arc::new(Health::default());
        assert!(h.writable());
        assert!(!h.wait_done(1, Duration::from_millis(10)));
        let h2 = h.clone();
        let t = std::thread::spawn(move || h2.wait_done(3, Duration::from_secs(30)));
        h.set_done(2);
        h.set_done(3);
        assert!(t.join().unwrap());
        h.add_undelivered();
        assert_eq!(
            (h.lost(), h.take_undelivered(), h.take_undelivered()),
            (1, 1, 0)
        );
    }
}
