//! `hsm-audit upload`: sends the row files of a directory to the Logs Ingestion API,
//! each row once, resuming from a checkpoint.
//!
//! Exactly once, with one caveat no client can remove: if the service accepts a batch and
//! the answer is lost (connection cut after acceptance, or a crash before the checkpoint is
//! saved), the batch is sent again. Every row carries `WriterId` + `SequenceNo`, so queries
//! can deduplicate.

pub mod auth;
pub mod batch;
pub mod checkpoint;
pub mod client;

use batch::{Batch, Limits, Planner};
use checkpoint::Store;
use client::{Ingestion, RetryPolicy};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use time::format_description::well_known::Rfc3339;

/// Everything `hsm-audit upload` is told.
#[derive(Clone, Debug)]
pub struct Options {
    /// Logs ingestion endpoint of the DCR (or its data collection endpoint).
    pub endpoint: String,
    /// DCR immutable id (`dcr-…`).
    pub dcr: String,
    /// Stream name declared in the DCR (`Custom-…`).
    pub stream: String,
    /// Directory of row files.
    pub dir: PathBuf,
    /// Checkpoint file; `None` for the default in `dir`.
    pub checkpoint: Option<PathBuf>,
    /// Keep tailing the directory.
    pub follow: bool,
    /// Show the batches, send nothing.
    pub dry_run: bool,
    /// Batch limits.
    pub limits: Limits,
    /// Retry policy per batch.
    pub retry: RetryPolicy,
    /// Limit for one HTTP exchange.
    pub timeout: Duration,
    /// With `follow`, how often to look for new rows.
    pub poll_interval: Duration,
    /// Draw a progress bar (the CLI sets this only on a terminal).
    pub progress: bool,
}

impl Options {
    /// Options with the service's limits and production retry settings.
    pub fn new(endpoint: &str, dcr: &str, stream: &str, dir: PathBuf) -> Options {
        Options {
            endpoint: endpoint.to_owned(),
            dcr: dcr.to_owned(),
            stream: stream.to_owned(),
            dir,
            checkpoint: None,
            follow: false,
            dry_run: false,
            limits: Limits::default(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(120),
            poll_interval: Duration::from_secs(2),
            progress: false,
        }
    }
}

/// Why an upload stopped. Each message is one line.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The service refused a batch in a way retrying cannot fix.
    #[error("{message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Cause, for the user.
        message: String,
    },
    /// A batch kept failing with retryable errors.
    #[error("gave up after {attempts} attempts ({last}); rerun to resume from the checkpoint")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// No token could be had.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// Asked to stop while a batch was pending.
    #[error("stopped before the current batch was accepted")]
    Stopped,
    /// Anything else (arguments, files, checkpoint).
    #[error("{0}")]
    Other(String),
}

/// What an upload did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Batches accepted (or, in a dry run, planned).
    pub batches: u64,
    /// Rows in them.
    pub rows: u64,
    /// Lines that were not rows and were passed over.
    pub skipped: Vec<String>,
}

/// Runs an upload. `env` supplies the credential variables; `stop` ends `--follow` (and
/// waits between retries) cleanly.
pub fn run(
    opts: &Options,
    env: &dyn Fn(&str) -> Option<String>,
    stop: &AtomicBool,
    out: &mut dyn std::io::Write,
) -> Result<Summary, UploadError> {
    client::check_url(&opts.endpoint, "--endpoint").map_err(UploadError::Other)?;
    let stream_ok = opts.stream.strip_prefix("Custom-").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    if !stream_ok {
        return Err(UploadError::Other(format!(
            "--stream {:?}: DCR stream names are Custom- and letters, digits, '_' or '-' (e.g. {})",
            opts.stream,
            crate::schema::STREAM
        )));
    }
    if opts.dcr.is_empty() || opts.dcr.contains(['/', '?', '#']) {
        return Err(UploadError::Other(format!(
            "--dcr {:?} is not a DCR immutable id (dcr-…)",
            opts.dcr
        )));
    }
    if !opts.dir.is_dir() {
        return Err(UploadError::Other(format!(
            "{} is not a directory",
            opts.dir.display()
        )));
    }
    let path = opts
        .checkpoint
        .clone()
        .unwrap_or_else(|| checkpoint::default_path(&opts.dir, &opts.dcr, &opts.stream));
    let destination = format!("{}/{}", opts.dcr, opts.stream);
    let mut store = Store::open(&path, &destination, !opts.dry_run).map_err(UploadError::Other)?;
    let mut ingestion = if opts.dry_run {
        None
    } else {
        let credential = auth::Credential::from_env(env).map_err(UploadError::Auth)?;
        Some(Ingestion::new(
            client::agent(opts.timeout),
            &opts.endpoint,
            &opts.dcr,
            &opts.stream,
            auth::Tokens::new(credential),
            opts.retry,
        ))
    };
    let bar = opts.progress.then(progress_bar);
    let mut summary = Summary::default();
    loop {
        let files = crate::sink::jsonl::row_files(&opts.dir)
            .map_err(|e| UploadError::Other(format!("cannot list {}: {e}", opts.dir.display())))?;
        // Files removed since (rotated away) need no position; a file re-created under the
        // same name is told apart by its inode anyway.
        store.state.files.retain(|name, _| {
            files
                .iter()
                .any(|f| f.file_name().is_some_and(|n| n.to_string_lossy() == *name))
        });
        let mut planner = Planner::new(files, store.state.files.clone(), opts.limits);
        if let Some(bar) = &bar {
            bar.set_length(bar.position() + planner.remaining_bytes());
        }
        loop {
            let batch = planner
                .next_batch()
                .map_err(|e| UploadError::Other(e.to_string()))?;
            let Some(batch) = batch else { break };
            match &mut ingestion {
                None => {
                    if batch.rows > 0 {
                        let _ = writeln!(out, "{}", describe(summary.batches + 1, &batch));
                    }
                    // Later batches of a dry run continue from this one's end.
                    store
                        .state
                        .files
                        .extend(batch.positions().map(|(n, p)| (n.to_owned(), p)));
                }
                Some(ingestion) => {
                    if batch.rows > 0 {
                        ingestion.send(&batch.body, stop)?;
                    }
                    store
                        .commit(batch.positions())
                        .map_err(UploadError::Other)?;
                }
            }
            for s in &batch.skipped {
                let _ = writeln!(out, "skipped: {s}");
            }
            summary.skipped.extend(batch.skipped.iter().cloned());
            if batch.rows > 0 {
                summary.batches += 1;
                summary.rows += batch.rows as u64;
            }
            if let Some(bar) = &bar {
                bar.inc(batch.file_bytes());
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        if !opts.follow || stop.load(Ordering::Relaxed) {
            break;
        }
        client::sleep_unless_stopped(opts.poll_interval, stop);
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(summary)
}

fn describe(n: u64, batch: &Batch) -> String {
    let rfc3339 = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    let span = batch.span.map_or(String::new(), |(lo, hi)| {
        format!(", TimeGenerated {} .. {}", rfc3339(lo), rfc3339(hi))
    });
    let from: Vec<String> = batch
        .segments
        .iter()
        .map(|s| format!("{}[{}..{}]", s.file, s.start, s.end))
        .collect();
    format!(
        "batch {n}: {} rows, {} bytes JSON, {} bytes gzip{span}, from {}",
        batch.rows,
        batch.body.len(),
        client::gzip(&batch.body).len(),
        from.join(" ")
    )
}

fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} uploading [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
