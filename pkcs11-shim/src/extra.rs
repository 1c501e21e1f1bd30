//! What the shim exports beyond PKCS#11 (declared in `include/hsm_audit.h`).

use crate::boundary::guard;
use std::time::Duration;

/// Writes every row recorded so far in this process to its file before returning, waiting
/// at most `timeout_ms` milliseconds. Returns 0 on success, 1 on timeout.
#[no_mangle]
pub extern "C" fn hsm_audit_flush(timeout_ms: u32) -> u32 {
    guard(|| {
        u64::from(!crate::recorder::flush(Duration::from_millis(u64::from(
            timeout_ms,
        ))))
    }) as u32
}

/// Number of rows this process lost: calls made while no writer could start, plus rows the
/// writer could not write (calls, and the checkpoints and gap rows lost with them).
#[no_mangle]
pub extern "C" fn hsm_audit_lost_events() -> u64 {
    guard(crate::recorder::lost)
}
