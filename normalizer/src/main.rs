//! `hsm-audit`: the command-line side of hsm-audit.

use clap::{Parser, Subcommand};
use normalizer::signing::{CheckpointSigner, CheckpointVerifier};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "hsm-audit",
    version,
    about = "PKCS#11 operation audit: rows, summaries, uploads and tamper checks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the operation catalog: PKCS#11 function → OperationName, Opcode, provenance.
    Catalog,
    /// Print the configuration keys, their environment variables and defaults.
    Config,
    /// Print the row columns.
    Columns,
    /// Summarise the rows in DIR as the seed's Cloud HSM queries would.
    Summary {
        /// Directory holding hsm-audit-*.jsonl row files.
        dir: PathBuf,
    },
    /// Check the hash chains of the rows in DIR; report every edited, deleted, inserted or
    /// reordered row as FILE:LINE. Exit 0 when clean, 1 on any finding, 2 if DIR or the key
    /// cannot be read.
    Verify {
        /// Also check checkpoint signatures with this Ed25519 public key (SPKI PEM, or 64 hex
        /// digits); every checkpoint must then be signed.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        /// Directory holding hsm-audit-*.jsonl row files.
        dir: PathBuf,
    },
    /// Create an Ed25519 checkpoint signing key (PKCS#8 PEM, owner-only) and print its public
    /// key; set `signing_key_file` to the key and give the public key to `verify`.
    Keygen {
        /// Where to write the private key; an existing file is never overwritten.
        key_file: PathBuf,
        /// Also write the public key (SPKI PEM) to this file.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Catalog => print!("{}", normalizer::catalog::markdown()),
        Command::Config => print!("{}", normalizer::config::markdown()),
        Command::Columns => print!("{}", normalizer::row::markdown()),
        Command::Summary { dir } => {
            let _ = dir;
            eprintln!("hsm-audit summary: not yet implemented");
            return ExitCode::FAILURE;
        }
        Command::Verify { public_key, dir } => return verify(public_key.as_deref(), &dir),
        Command::Keygen {
            key_file,
            public_key,
        } => return keygen(&key_file, public_key.as_deref()),
    }
    ExitCode::SUCCESS
}

fn verify(public_key: Option<&Path>, dir: &Path) -> ExitCode {
    let key = match public_key.map(CheckpointVerifier::from_file).transpose() {
        Ok(key) => key,
        Err(e) => {
            eprintln!("hsm-audit verify: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match normalizer::verify::verify_dir(dir, key.as_ref()) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("hsm-audit verify: cannot read {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    };
    for finding in &report.findings {
        println!("{finding}");
    }
    println!("{}", report.summary());
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn keygen(key_file: &Path, public_key: Option<&Path>) -> ExitCode {
    let signer = match CheckpointSigner::generate(key_file) {
        Ok(signer) => signer,
        Err(e) => {
            eprintln!("hsm-audit keygen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pem = signer.verifier().to_pem();
    if let Some(path) = public_key {
        if let Err(e) = std::fs::write(path, &pem) {
            eprintln!("hsm-audit keygen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    eprintln!("wrote private key {}", key_file.display());
    print!("{pem}");
    ExitCode::SUCCESS
}
