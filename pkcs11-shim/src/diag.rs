//! The shim's diagnostic log: one line per problem, to stderr or `log_file`.
//!
//! It uses its own `tracing` dispatcher rather than the global one, so a host application's
//! subscriber is never replaced and our lines never depend on how the host set up logging.

use normalizer::Config;
use std::sync::OnceLock;
use tracing::Dispatch;
use tracing_subscriber::EnvFilter;

static DISPATCH: OnceLock<Dispatch> = OnceLock::new();

/// Sets the diagnostic destination from `config` (first call wins).
pub fn init(config: &Config) {
    let _ = DISPATCH.get_or_init(|| build(config).unwrap_or_else(|| build_stderr("warn")));
    if let Some(d) = DISPATCH.get() {
        let _ = normalizer::writer::DIAGNOSTICS.set(d.clone());
    }
}

fn filter(level: &str) -> EnvFilter {
    EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("warn"))
}

fn build(config: &Config) -> Option<Dispatch> {
    let path = config.log_file.as_ref()?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .ok()?;
    let sub = tracing_subscriber::fmt()
        .with_env_filter(filter(&config.log_level))
        .with_ansi(false)
        .with_target(false)
        .with_writer(std::sync::Mutex::new(file))
        .finish();
    Some(Dispatch::new(sub))
}

fn build_stderr(level: &str) -> Dispatch {
    let sub = tracing_subscriber::fmt()
        .with_env_filter(filter(level))
        .with_ansi(false)
        .with_target(false)
        .with_writer(std::io::stderr)
        .finish();
    Dispatch::new(sub)
}

/// The dispatcher in use; before configuration is read, standard error at `warn`.
fn dispatch() -> &'static Dispatch {
    DISPATCH.get_or_init(|| build_stderr("warn"))
}

/// Logs an error line, prefixed `hsm-audit:`.
pub fn error(msg: std::fmt::Arguments<'_>) {
    tracing::dispatcher::with_default(dispatch(), || tracing::error!("hsm-audit: {msg}"));
}

/// Logs a warning line, prefixed `hsm-audit:`.
pub fn warn(msg: std::fmt::Arguments<'_>) {
    tracing::dispatcher::with_default(dispatch(), || tracing::warn!("hsm-audit: {msg}"));
}

/// Logs an informational line, prefixed `hsm-audit:`.
pub fn info(msg: std::fmt::Arguments<'_>) {
    tracing::dispatcher::with_default(dispatch(), || tracing::info!("hsm-audit: {msg}"));
}
