//! `p11-client MODULE WORKLOAD [ARGS]`: loads a PKCS#11 module and runs one workload,
//! printing a transcript the tests compare between SoftHSM and the shim in front of it.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: p11-client MODULE raw|cryptoki|interfaces VENDOR|threads N CALLS");
        return ExitCode::from(2);
    }
    let module = PathBuf::from(&args[1]);
    match args[2].as_str() {
        "raw" => softhsm_tests::workloads::raw::run(&module),
        other => {
            eprintln!("unknown workload {other}");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
