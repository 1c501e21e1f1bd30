//! The workloads `p11-client` runs, each printing a transcript that must be the same
//! whether the module is SoftHSM itself or the shim in front of it.

pub mod high_level;
pub mod interfaces;
pub mod interfaces_v3;
pub mod raw;
pub mod threads;
