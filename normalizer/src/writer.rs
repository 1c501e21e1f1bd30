//! The writer: a background thread that receives events over a bounded channel, turns
//! them into rows and hands them to the sinks.
//!
//! The sending side is all the shim touches on its hot path: `Sender::send` on a bounded
//! crossbeam channel neither allocates nor locks while there is room. When the channel is
//! full the caller waits for the writer to catch up (back-pressure) rather than dropping the
//! event: memory stays bounded and no row is lost.

use crate::config::Config;
use crate::context::Context;
use crate::event::Event;
use crate::resource_id::ResourceId;
use crate::sink::{archive::ArchiveSink, jsonl::JsonlSink, Sink};
use crate::transform::Normalizer;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use std::io;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What travels from the shim to the writer.
#[derive(Debug)]
pub enum Msg {
    /// One recorded call.
    Event(Event),
    /// Write everything received so far, then answer.
    Flush(Sender<()>),
    /// The vendor's `C_GetInfo` description, for `ClientSdkPackageVersion`.
    SdkVersion(String),
}

/// A running writer. Dropping it stops the thread after writing every pending row.
pub struct Writer {
    tx: Option<Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
    writer_id: String,
}

impl Writer {
    /// Starts a writer for this process with the JSON Lines sink in `config.output`, plus
    /// the archive sink there when `resource_id` is set.
    pub fn spawn(config: &Config) -> io::Result<Writer> {
        let context = Context::current(config);
        let sink =
            JsonlSink::new(&config.output, context.pid, config.max_file_bytes).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot create output directory {}: {e}",
                        config.output.display()
                    ),
                )
            })?;
        let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink)];
        if let Some(id) = &config.resource_id {
            let id = ResourceId::parse(id).map_err(|reason| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("config key `resource_id` is invalid: {reason}"),
                )
            })?;
            sinks.push(Box::new(ArchiveSink::new(&config.output, &id)));
        }
        Writer::spawn_with(config, context, sinks)
    }

    /// Starts a writer with the given context and sinks.
    pub fn spawn_with(
        config: &Config,
        context: Context,
        sinks: Vec<Box<dyn Sink>>,
    ) -> io::Result<Writer> {
        let (tx, rx) = bounded(config.channel_capacity);
        let writer_id = context.writer_id.clone();
        let interval = Duration::from_millis(config.flush_interval_ms);
        let thread = std::thread::Builder::new()
            .name("hsm-audit-writer".into())
            .spawn(move || run(rx, Normalizer::new(context), sinks, interval))?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
            writer_id,
        })
    }

    /// The sending side, for the hot path.
    pub fn sender(&self) -> &Sender<Msg> {
        self.tx.as_ref().expect("present until drop")
    }

    /// The id every row of this writer carries.
    pub fn writer_id(&self) -> &str {
        &self.writer_id
    }

    /// Waits until every event sent before this call has been handed to the OS, or until
    /// `timeout`. Returns whether the writer confirmed.
    pub fn flush(&self, timeout: Duration) -> bool {
        flush_through(self.sender(), timeout)
    }
}

/// `Writer::flush` for a bare sender.
pub fn flush_through(tx: &Sender<Msg>, timeout: Duration) -> bool {
    let (ack_tx, ack_rx) = bounded(1);
    tx.send_timeout(Msg::Flush(ack_tx), timeout).is_ok() && ack_rx.recv_timeout(timeout).is_ok()
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Pipeline {
    normalizer: Normalizer,
    sinks: Vec<Box<dyn Sink>>,
    last_error: Option<Instant>,
}

impl Pipeline {
    fn event(&mut self, event: &Event) {
        let row = self.normalizer.row(event);
        for sink in &mut self.sinks {
            if let Err(e) = sink.accept(&row) {
                Self::report(&mut self.last_error, &e);
            }
        }
    }

    fn flush(&mut self) {
        for sink in &mut self.sinks {
            if let Err(e) = sink.flush() {
                Self::report(&mut self.last_error, &e);
            }
        }
    }

    /// Logs write failures at most once a minute, so a full disk does not flood the log.
    fn report(last: &mut Option<Instant>, e: &io::Error) {
        if last.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
            tracing::error!("hsm-audit: cannot write audit rows: {e}");
            *last = Some(Instant::now());
        }
    }
}

/// Diagnostics of writer threads go here when set (the shim sets its own, so that a host
/// application's global `tracing` subscriber is neither replaced nor flooded).
pub static DIAGNOSTICS: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();

fn run(rx: Receiver<Msg>, normalizer: Normalizer, sinks: Vec<Box<dyn Sink>>, interval: Duration) {
    let _diagnostics = DIAGNOSTICS.get().map(tracing::dispatcher::set_default);
    let mut p = Pipeline {
        normalizer,
        sinks,
        last_error: None,
    };
    let mut dirty_since: Option<Instant> = None;
    loop {
        crate::clock::rebase();
        let wait = dirty_since.map_or(interval, |t| interval.saturating_sub(t.elapsed()));
        match rx.recv_timeout(wait) {
            Ok(msg) => {
                handle(&mut p, msg, &mut dirty_since);
                // Drain what is already queued before deciding to write.
                for msg in rx.try_iter().take(4096) {
                    handle(&mut p, msg, &mut dirty_since);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if dirty_since.is_some_and(|t| t.elapsed() >= interval) {
            p.flush();
            dirty_since = None;
        }
    }
    p.flush();
}

fn handle(p: &mut Pipeline, msg: Msg, dirty_since: &mut Option<Instant>) {
    match msg {
        Msg::Event(e) => {
            p.event(&e);
            dirty_since.get_or_insert_with(Instant::now);
        }
        Msg::Flush(ack) => {
            p.flush();
            *dirty_since = None;
            let _ = ack.send(());
        }
        Msg::SdkVersion(v) => p.normalizer.set_sdk_version(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::function::FunctionId;
    use crate::row::parse_line;

    #[test]
    fn events_become_numbered_rows_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            output: dir.path().to_owned(),
            channel_capacity: 8,
            ..Config::default()
        };
        let w = Writer::spawn(&config).unwrap();
        for i in 0..1000u64 {
            w.sender()
                .send(Msg::Event(Event::new(
                    FunctionId::Sign,
                    i % 2,
                    1_763_762_603_000_000_000 + i,
                    5,
                )))
                .unwrap();
        }
        assert!(w.flush(Duration::from_secs(10)));
        let files = crate::sink::jsonl::row_files(dir.path()).unwrap();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(&files[0]).unwrap();
        let rows: Vec<_> = text.lines().map(|l| parse_line(l).unwrap()).collect();
        assert_eq!(rows.len(), 1000);
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.sequence_no, i as u64 + 1);
            assert_eq!(r.writer_id, w.writer_id());
        }
        drop(w);
        let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            name,
            format!("hsm-audit-2025-11-21-pid{}.jsonl", std::process::id())
        );
    }
}
