//! What a writer knows about where it runs: the per-process values every row repeats.

use crate::config::Config;
use std::hash::{BuildHasher, Hasher};

/// Values shared by every row of one writer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// `HsmInstance` / `MemberId`.
    pub hsm_instance: String,
    /// `ClusterType` / `PoolType`.
    pub cluster_type: String,
    /// `CallerIpAddress`.
    pub caller_ip_address: String,
    /// `ClientInfo`: program name and pid.
    pub client_info: String,
    /// `ClientSdkPackageVersion`, known once the vendor answered `C_GetInfo`.
    pub client_sdk_package_version: String,
    /// `WriterId`.
    pub writer_id: String,
    /// Process id the writer belongs to (file names carry it).
    pub pid: u32,
}

impl Context {
    /// The context of a writer started now in this process.
    pub fn current(config: &Config) -> Context {
        let pid = std::process::id();
        Context {
            hsm_instance: config.hsm_instance.clone(),
            cluster_type: config.cluster_type.clone(),
            caller_ip_address: if config.caller_ip_address.is_empty() {
                first_non_loopback_address()
            } else {
                config.caller_ip_address.clone()
            },
            client_info: format!("{} (pid {pid})", program_name()),
            client_sdk_package_version: String::new(),
            writer_id: new_writer_id(),
            pid,
        }
    }
}

/// The executable's file name, e.g. `pkcs11-tool`.
fn program_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .or_else(|| {
            std::env::args_os()
                .next()
                .map(|a| a.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The first IPv4 (else IPv6) address of an interface that is up and not loopback, or
/// `127.0.0.1` on a host without one.
fn first_non_loopback_address() -> String {
    let addrs = if_addrs::get_if_addrs().unwrap_or_default();
    let non_loopback = || addrs.iter().filter(|a| !a.is_loopback());
    non_loopback()
        .find(|a| a.ip().is_ipv4())
        .or_else(|| non_loopback().next())
        .map_or_else(|| "127.0.0.1".to_owned(), |a| a.ip().to_string())
}

/// 64 random bits as 16 hex digits; std's `RandomState` is seeded from the OS RNG.
fn new_writer_id() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_values_win_and_ids_differ() {
        let config = Config {
            hsm_instance: "hsm-a".into(),
            caller_ip_address: "192.0.2.7".into(),
            ..Config::default()
        };
        let a = Context::current(&config);
        let b = Context::current(&config);
        assert_eq!(a.hsm_instance, "hsm-a");
        assert_eq!(a.caller_ip_address, "192.0.2.7");
        assert!(a
            .client_info
            .contains(&format!("pid {}", std::process::id())));
        assert_ne!(a.writer_id, b.writer_id);
        assert_eq!(a.writer_id.len(), 16);
        let derived = Context::current(&Config::default()).caller_ip_address;
        assert!(derived.parse::<std::net::IpAddr>().is_ok(), "{derived}");
    }
}
