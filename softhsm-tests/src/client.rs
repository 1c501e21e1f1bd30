//! Running `p11-client` workloads against SoftHSM directly or through the shim.

use crate::{bin_path, shim_path, softhsm_module, Token};
use std::path::PathBuf;
use std::process::Output;

/// Which module a workload loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// SoftHSM's own module.
    Direct,
    /// The shim, forwarding to SoftHSM.
    Shim,
}

impl Target {
    /// The module's path.
    pub fn module(self) -> PathBuf {
        match self {
            Target::Direct => softhsm_module(),
            Target::Shim => shim_path().to_owned(),
        }
    }
}

/// Runs `p11-client <module> <args…>` in `token`'s environment.
pub fn run_client_output(token: &Token, target: Target, args: &[&str]) -> Output {
    token
        .command(bin_path("p11-client"))
        .arg(target.module())
        .args(args)
        .output()
        .expect("run p11-client")
}

/// Runs a workload that must succeed and returns its transcript.
pub fn run_client(token: &Token, target: Target, args: &[&str]) -> String {
    let out = run_client_output(token, target, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "p11-client {args:?} against {target:?} failed ({}):\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Asserts two transcripts are identical, showing the first differing line.
pub fn assert_same_transcript(direct: &str, shim: &str) {
    let (d, s): (Vec<&str>, Vec<&str>) = (direct.lines().collect(), shim.lines().collect());
    for (i, (a, b)) in d.iter().zip(&s).enumerate() {
        assert_eq!(
            a,
            b,
            "transcripts differ at line {} (direct vs shim); context:\n{}",
            i + 1,
            d[i.saturating_sub(5)..=i].join("\n")
        );
    }
    assert_eq!(
        d.len(),
        s.len(),
        "transcript lengths differ (direct vs shim)"
    );
}
