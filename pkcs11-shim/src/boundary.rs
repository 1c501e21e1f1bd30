//! The one panic boundary. Every exported function runs its body through [`guard`], so no
//! panic unwinds into C (which since Rust 1.81 would abort the host process).

use cryptoki_sys::{CKR_GENERAL_ERROR, CK_RV};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `body`; a panic becomes `CKR_GENERAL_ERROR` and one diagnostic line.
#[inline]
pub fn guard(body: impl FnOnce() -> CK_RV) -> CK_RV {
    // AssertUnwindSafe: after a panic nothing observes the closure's captures again; shared
    // state (the writer, the vendor table) is only ever replaced whole, never half-updated.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(rv) => rv,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            crate::diag::error(format_args!(
                "internal error, returning CKR_GENERAL_ERROR: {what}"
            ));
            CKR_GENERAL_ERROR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_general_error() {
        assert_eq!(guard(|| 7), 7);
        assert_eq!(guard(|| panic!("boom")), CKR_GENERAL_ERROR);
    }
}
