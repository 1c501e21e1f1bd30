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
