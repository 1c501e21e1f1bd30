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
    /// Send the row files in DIR to the Azure Monitor Logs Ingestion API, each row once.
    Upload(UploadArgs),
    /// Print the custom table columns or a DCR, generated from the row schema.
    Schema {
        #[command(subcommand)]
        part: SchemaPart,
    },
}

#[derive(clap::Args)]
struct UploadArgs {
    /// Logs ingestion endpoint, e.g. https://<dcr>.<region>-1.ingest.monitor.azure.com.
    #[arg(long)]
    endpoint: String,
    /// DCR immutable id (dcr-…).
    #[arg(long)]
    dcr: String,
    /// DCR stream name.
    #[arg(long, default_value = normalizer::schema::STREAM)]
    stream: String,
    /// Keep tailing DIR for new rows.
    #[arg(long)]
    follow: bool,
    /// Print the batches that would be sent; send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Checkpoint file [default: DIR/.hsm-audit-upload-<dcr>-<stream>.json].
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Attempts per batch before giving up (0: forever; the default with --follow).
    #[arg(long)]
    max_attempts: Option<u32>,
    /// Directory holding hsm-audit-*.jsonl row files.
    dir: PathBuf,
}

#[derive(Subcommand)]
enum SchemaPart {
    /// Table columns as `az monitor log-analytics workspace table create --columns` arguments.
    Table {
        /// Print the Tables REST API body instead.
        #[arg(long)]
        json: bool,
    },
    /// The Logs Ingestion DCR (for `az monitor data-collection rule create --rule-file`).
    Dcr(DcrArgs),
    /// The Azure Monitor Agent DCR that tails the row files.
    AmaDcr {
        #[command(flatten)]
        dcr: DcrArgs,
        /// Files the agent tails.
        #[arg(long, default_value = normalizer::schema::DEFAULT_FILE_PATTERN)]
        file_pattern: String,
    },
}

#[derive(clap::Args)]
struct DcrArgs {
    /// Azure region of the DCR (the workspace's).
    #[arg(long, default_value = "<LOCATION>")]
    location: String,
    /// Resource id of the Log Analytics workspace.
    #[arg(long, default_value = "<WORKSPACE_RESOURCE_ID>")]
    workspace_resource_id: String,
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
        Command::Upload(args) => return upload(args),
        Command::Schema { part } => print!("{}", schema(part)),
        Command::Verify { public_key, dir } => return verify(public_key.as_deref(), &dir),
        Command::Keygen {
            key_file,
            public_key,
        } => return keygen(&key_file, public_key.as_deref()),
    }
    ExitCode::SUCCESS
}

fn upload(a: UploadArgs) -> ExitCode {
    use std::io::IsTerminal;
    let mut opts = normalizer::upload::Options::new(&a.endpoint, &a.dcr, &a.stream, a.dir);
    opts.checkpoint = a.checkpoint;
    opts.follow = a.follow;
    opts.dry_run = a.dry_run;
    opts.retry.max_attempts =
        a.max_attempts
            .unwrap_or(if a.follow { 0 } else { opts.retry.max_attempts });
    opts.progress = !a.dry_run && std::io::stderr().is_terminal();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let env = |k: &str| std::env::var(k).ok();
    match normalizer::upload::run(&opts, &env, &stop, &mut std::io::stdout()) {
        Ok(s) => {
            let verb = if a.dry_run { "would send" } else { "sent" };
            eprintln!(
                "hsm-audit upload: {verb} {} rows in {} batches ({} lines skipped)",
                s.rows,
                s.batches,
                s.skipped.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hsm-audit upload: {e}");
            ExitCode::FAILURE
        }
    }
}

fn schema(part: SchemaPart) -> String {
    use normalizer::schema;
    let pretty = |v: serde_json::Value| serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
    match part {
        SchemaPart::Table { json: false } => schema::az_columns() + "\n",
        SchemaPart::Table { json: true } => pretty(schema::table_json()),
        SchemaPart::Dcr(d) => pretty(schema::ingestion_dcr(&d.location, &d.workspace_resource_id)),
        SchemaPart::AmaDcr { dcr, file_pattern } => pretty(schema::ama_dcr(
            &dcr.location,
            &dcr.workspace_resource_id,
            &file_pattern,
        )),
    }
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
