//! The one clock of the hot path: `CLOCK_MONOTONIC` for start and duration, turned into
//! wall-clock time by an offset the writer thread refreshes.
//!
//! Two monotonic reads per call (vDSO, no syscall) and one relaxed atomic load; a wall-clock
//! step (NTP, admin) reaches rows within one writer loop, at most `flush_interval_ms`.

use std::sync::atomic::{AtomicI64, Ordering};

static WALL_MINUS_MONO_NS: AtomicI64 = AtomicI64::new(i64::MIN);

fn read(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clocks exist on every Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Monotonic nanoseconds (arbitrary origin).
#[inline]
pub fn now_mono_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC) as u64
}

/// Re-reads the wall clock; called by the writer thread, never on the hot path.
pub fn rebase() {
    let mono = read(libc::CLOCK_MONOTONIC);
    let wall = read(libc::CLOCK_REALTIME);
    WALL_MINUS_MONO_NS.store(wall - mono, Ordering::Relaxed);
}

/// Wall-clock nanoseconds since the Unix epoch for a monotonic reading.
#[inline]
pub fn to_unix_ns(mono_ns: u64) -> u64 {
    let mut offset = WALL_MINUS_MONO_NS.load(Ordering::Relaxed);
    if offset == i64::MIN {
        rebase();
        offset = WALL_MINUS_MONO_NS.load(Ordering::Relaxed);
    }
    (mono_ns as i64 + offset) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_readings_map_to_current_wall_time() {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        let mapped = to_unix_ns(now_mono_ns()) as i64;
        assert!((mapped - wall).abs() < 5_000_000_000, "{mapped} vs {wall}");
        let a = now_mono_ns();
        let b = now_mono_ns();
        assert!(b >= a);
    }
}
