//! `hsm-audit`: the command-line side of hsm-audit.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "hsm-audit",
    version,
    about = "PKCS#11 operation audit: rows, summaries and uploads"
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Catalog => print!("{}", normalizer::catalog::markdown()),
        Command::Config => print!("{}", normalizer::config::markdown()),
        Command::Columns => print!("{}", normalizer::row::markdown()),
        Command::Summary { dir } => {
            match normalizer::summary::summarize_dir(&dir, normalizer::summary::TOP_N) {
                Ok(summary) => {
                    print!("{}", summary.render());
                    if summary.rows() == 0 {
                        eprintln!("hsm-audit summary: no rows in {}", dir.display());
                        return ExitCode::FAILURE;
                    }
                }
                Err(e) => {
                    eprintln!("hsm-audit summary: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    ExitCode::SUCCESS
}
