//! `libhsm_audit_pkcs11.so`: a PKCS#11 module that forwards every call, unchanged, to the
//! vendor module named by the configuration, and records one event per call.
//!
//! - [`exports`]: the `C_*` symbols, one module per function family, all behind
//!   [`boundary::guard`].
//! - [`vendor`] / [`lists`]: the vendor module and the function tables we offer in its place.
//! - [`recorder`]: timing, and handing events to the normalizer's writer thread.

pub mod boundary;
pub mod diag;
pub mod exports;
pub mod extra;
pub mod lists;
pub mod recorder;
pub mod settings;
pub mod vendor;
