//! `p11-client MODULE WORKLOAD [ARGS]`: loads a PKCS#11 module and runs one workload,
//! printing a transcript the tests compare between SoftHSM and the shim in front of it.
//!
//! Workloads: `raw`, `cryptoki`, `interfaces VENDOR`, `interfaces-v3 VENDOR`,
//! `interfaces-v32 VENDOR`, `threads THREADS ITERATIONS [WAVES]`.

use softhsm_tests::workloads;
use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: p11-client MODULE raw|cryptoki|interfaces VENDOR|interfaces-v3 VENDOR|interfaces-v32 VENDOR|threads THREADS ITERATIONS [WAVES]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| args.get(i).and_then(|a| a.parse::<usize>().ok());
    let Some(module) = args.first().map(PathBuf::from) else {
        return usage();
    };
    match args.get(1).map(String::as_str) {
        Some("raw") => workloads::raw::run(&module),
        Some("cryptoki") => workloads::high_level::run(&module),
        Some("interfaces") => match args.get(2) {
            Some(vendor) => workloads::interfaces::run(&module, vendor.as_ref()),
            None => return usage(),
        },
        Some("interfaces-v3") => match args.get(2) {
            Some(vendor) => workloads::interfaces_v3::run(&module, vendor.as_ref()),
            None => return usage(),
        },
        Some("interfaces-v32") => match args.get(2) {
            Some(vendor) => workloads::interfaces_v3::run_v32(&module, vendor.as_ref()),
            None => return usage(),
        },
        Some("threads") => match (number(2), number(3)) {
            (Some(threads), Some(iterations)) => {
                let waves = number(4).unwrap_or(1);
                workloads::threads::run(&module, threads, iterations, waves)
            }
            _ => return usage(),
        },
        _ => return usage(),
    }
    ExitCode::SUCCESS
}
