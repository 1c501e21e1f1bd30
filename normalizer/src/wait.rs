//! How the writer waits for the next message without making callers wake it.
//!
//! A receiver blocked in `recv` makes every `send` pay a futex wake-up: a system call, and
//! often a context switch, on the application's thread, several times the cost of recording
//! the call. So while calls keep coming the writer naps briefly and polls instead; only
//! after a quiet spell does it block, and then the first call after it pays one wake-up.

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

/// One nap between polls: bounds the extra delay of a row (flushes are 200 ms apart by
/// default) and holds at most this long's worth of calls in the channel (10,000 at 2 M
/// calls/s, well inside the default 65,536). 1 ms naps cost measurably more: each wake-up
/// can preempt the caller's thread on a busy machine.
const NAP: Duration = Duration::from_millis(5);
/// Quiet time after which the writer blocks instead of polling (about 50 wake-ups per
/// quiet spell rather than 1000 a second forever).
const POLL_FOR: Duration = Duration::from_millis(50);

/// `rx.recv_timeout(wait)`, polling with short naps before it blocks.
pub fn recv_lazily<T>(rx: &Receiver<T>, wait: Duration) -> Result<T, RecvTimeoutError> {
    let start = Instant::now();
    loop {
        match rx.try_recv() {
            Ok(msg) => return Ok(msg),
            Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) => {}
        }
        let waited = start.elapsed();
        let Some(left) = wait.checked_sub(waited).filter(|d| !d.is_zero()) else {
            return Err(RecvTimeoutError::Timeout);
        };
        if waited >= POLL_FOR {
            return rx.recv_timeout(left);
        }
        std::thread::sleep(NAP.min(left));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::bounded;

    #[test]
    fn behaves_like_recv_timeout() {
        let (tx, rx) = bounded(4);
        tx.send(1).unwrap();
        assert_eq!(recv_lazily(&rx, Duration::from_secs(1)), Ok(1));
        assert_eq!(
            recv_lazily(&rx, Duration::from_millis(120)),
            Err(RecvTimeoutError::Timeout)
        );
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(80));
            tx.send(2).unwrap();
        });
        // Arrives after the polling phase: received by the blocking wait.
        assert_eq!(recv_lazily(&rx, Duration::from_secs(5)), Ok(2));
        sender.join().unwrap();
        assert_eq!(
            recv_lazily(&rx, Duration::from_secs(5)),
            Err(RecvTimeoutError::Disconnected)
        );
    }
}
