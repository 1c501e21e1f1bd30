//! How long the writer naps when it finds no event in any lane.
//!
//! Lanes cannot wake the writer: a wake-up would cost every call a futex system call (or at
//! least a fence to check whether the writer sleeps), several times the cost of recording
//! the call. So the writer looks at the lanes after each nap instead; messages on the shared
//! channel (flush requests, new lanes) end a nap at once.

use std::time::{Duration, Instant};

/// A nap while calls keep coming: bounds the extra delay of a row (flushes are 200 ms apart
/// by default) and how much of a lane can fill meanwhile (10,000 events at 2 M calls/s, well
/// inside the default lane). 1 ms naps cost measurably more: each wake-up can preempt the
/// caller's thread on a busy machine.
pub const NAP: Duration = Duration::from_millis(5);
/// A nap once nothing came for [`QUIET_AFTER`]: about 20 wake-ups a second while the
/// application is idle, and the first call after a quiet spell reaches its file at most
/// this much later.
pub const QUIET_NAP: Duration = Duration::from_millis(50);
/// Time without events after which naps lengthen to [`QUIET_NAP`].
pub const QUIET_AFTER: Duration = Duration::from_millis(100);

/// The writer's nap schedule.
#[derive(Debug)]
pub struct Naps {
    last_busy: Instant,
}

impl Default for Naps {
    fn default() -> Self {
        Naps {
            last_busy: Instant::now(),
        }
    }
}

impl Naps {
    /// The writer found work.
    pub fn busy(&mut self) {
        self.last_busy = Instant::now();
    }

    /// How long to nap now that it found none.
    pub fn next(&self) -> Duration {
        if self.last_busy.elapsed() < QUIET_AFTER {
            NAP
        } else {
            QUIET_NAP
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naps_lengthen_after_a_quiet_spell_and_shorten_with_work() {
        let mut naps = Naps::default();
        assert_eq!(naps.next(), NAP);
        naps.last_busy = Instant::now() - QUIET_AFTER - Duration::from_millis(1);
        assert_eq!(naps.next(), QUIET_NAP);
        naps.busy();
        assert_eq!(naps.next(), NAP);
    }
}
