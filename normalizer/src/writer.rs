//! The writer: a background thread that receives events over a bounded channel, turns
//! them into rows and hands them to the sinks.
//!
//! The sending side is all the shim touches on its hot path: `Sender::send` on a bounded
//! crossbeam channel neither allocates nor locks while there is room. When the channel is
//! full the caller waits for the writer to catch up (back-pressure) rather than dropping the
//! event: memory stays bounded and no row is lost.

use crate::chain::Chain;
use crate::config::Config;
use crate::context::Context;
use crate::event::Event;
use crate::resource_id::ResourceId;
use crate::row::Row;
use crate::signing::CheckpointSigner;
use crate::sink::{archive::ArchiveSink, jsonl::JsonlSink, Sink};
use crate::transform::Normalizer;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use std::borrow::Cow;
use std::io;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

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

    /// Starts a writer with the given context and sinks. Fails if `signing_key_file` is set
    /// but unusable: signed checkpoints were asked for, so unsigned ones would mislead.
    pub fn spawn_with(
        config: &Config,
        context: Context,
        sinks: Vec<Box<dyn Sink>>,
    ) -> io::Result<Writer> {
        let signer = match &config.signing_key_file {
            Some(path) => Some(
                CheckpointSigner::from_file(path)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?,
            ),
            None => None,
        };
        let (tx, rx) = bounded(config.channel_capacity);
        let writer_id = context.writer_id.clone();
        let interval = Duration::from_millis(config.flush_interval_ms);
        let p = Pipeline {
            normalizer: Normalizer::new(context),
            out: Output {
                chain: Chain::new(),
                sinks,
                last_error: None,
            },
            signer,
            checkpoint_every: config.checkpoint_every.max(1),
            since_checkpoint: 0,
        };
        let thread = std::thread::Builder::new()
            .name("hsm-audit-writer".into())
            .spawn(move || run(rx, p, interval))?;
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

/// Turns events into chained rows and checkpoints.
struct Pipeline {
    normalizer: Normalizer,
    out: Output,
    signer: Option<CheckpointSigner>,
    checkpoint_every: u64,
    /// Call rows written since the last checkpoint.
    since_checkpoint: u64,
}

/// Where rows leave the pipeline. Every row passes through `emit`, which chains it.
struct Output {
    chain: Chain,
    sinks: Vec<Box<dyn Sink>>,
    last_error: Option<Instant>,
}

impl Output {
    fn emit(&mut self, row: Row<'_>) {
        let Output {
            chain,
            sinks,
            last_error,
        } = self;
        chain.seal(row, |row, line| {
            for sink in sinks.iter_mut() {
                if let Err(e) = sink.accept_sealed(row, line) {
                    report(last_error, &e);
                }
            }
        });
    }

    fn flush(&mut self) {
        for sink in &mut self.sinks {
            if let Err(e) = sink.flush() {
                report(&mut self.last_error, &e);
            }
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

impl Pipeline {
    fn event(&mut self, event: &Event) {
        self.out.emit(self.normalizer.row(event));
        self.since_checkpoint += 1;
        if self.since_checkpoint >= self.checkpoint_every {
            self.checkpoint();
        }
    }

    /// Writes a checkpoint unless no call row came since the last one (a stream then already
    /// ends with a checkpoint, or is empty).
    fn checkpoint(&mut self) {
        if self.since_checkpoint == 0 {
            return;
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let signature: String;
        let mut row = self.normalizer.checkpoint(now);
        if let Some(signer) = &self.signer {
            // The head is what sealing puts in this row's PrevHash.
            signature = signer.sign(&row.writer_id, row.chain_count, self.out.chain.head());
            row.signature = Cow::Borrowed(&signature);
        }
        self.out.emit(row);
        self.since_checkpoint = 0;
    }

    /// Checkpoints, then hands every row to the OS, so what is on disk ends protected.
    fn flush(&mut self) {
        self.checkpoint();
        self.out.flush();
    }
}

/// Diagnostics of writer threads go here when set (the shim sets its own, so that a host
/// application's global `tracing` subscriber is neither replaced nor flooded).
pub static DIAGNOSTICS: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();

fn run(rx: Receiver<Msg>, mut p: Pipeline, interval: Duration) {
    let _diagnostics = DIAGNOSTICS.get().map(tracing::dispatcher::set_default);
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
    use crate::verify::verify_dir;

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
        // Call rows go to the file of their own (2025) day; checkpoints carry the time they
        // were written, so they land in today's file.
        assert_eq!(files.len(), 2);
        let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            name,
            format!("hsm-audit-2025-11-21-pid{}.jsonl", std::process::id())
        );
        let text = std::fs::read_to_string(&files[0]).unwrap();
        let calls: Vec<_> = text.lines().map(|l| parse_line(l).unwrap()).collect();
        assert_eq!(calls.len(), 1000);
        assert!(calls.iter().all(|r| r.record_type == "call"));
        // One checkpoint after the 1000th row (checkpoint_every), possibly more if a flush
        // interval passed while the events were being sent; all in one SequenceNo stream.
        let rows = rows_in(dir.path());
        assert!(rows.len() > 1000);
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.sequence_no, i as u64 + 1);
            assert_eq!(r.writer_id, w.writer_id());
        }
        assert_eq!(rows.last().unwrap().record_type, "checkpoint");
        drop(w);
        assert!(verify_dir(dir.path(), None).unwrap().is_clean());
    }

    /// Every row in `dir`, in SequenceNo order.
    fn rows_in(dir: &std::path::Path) -> Vec<Row<'static>> {
        let mut rows: Vec<Row<'static>> = crate::sink::jsonl::row_files(dir)
            .unwrap()
            .iter()
            .flat_map(|f| {
                let text = std::fs::read_to_string(f).unwrap();
                text.lines()
                    .map(|l| parse_line(l).unwrap().into_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        rows.sort_by_key(|r| r.sequence_no);
        rows
    }

    fn now_event() -> Msg {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Msg::Event(Event::new(FunctionId::Sign, 0, now, 5))
    }

    fn quiet_config(dir: &std::path::Path) -> Config {
        Config {
            output: dir.to_owned(),
            checkpoint_every: 3,
            // Long enough that no interval checkpoint lands in the middle of a test.
            flush_interval_ms: 600_000,
            ..Config::default()
        }
    }

    #[test]
    fn checkpoints_follow_every_n_rows_each_flush_and_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::spawn(&quiet_config(dir.path())).unwrap();
        for _ in 0..7 {
            w.sender().send(now_event()).unwrap();
        }
        assert!(w.flush(Duration::from_secs(10)));
        // A flush with nothing new adds no checkpoint.
        assert!(w.flush(Duration::from_secs(10)));
        w.sender().send(now_event()).unwrap();
        drop(w);
        let kinds: Vec<(u64, String, u64)> = rows_in(dir.path())
            .into_iter()
            .map(|r| (r.sequence_no, r.record_type.into_owned(), r.chain_count))
            .collect();
        let expected: Vec<(u64, String, u64)> = [
            "call",
            "call",
            "call",
            "checkpoint", // every 3 rows
            "call",
            "call",
            "call",
            "checkpoint", //
            "call",
            "checkpoint", // flush
            "call",
            "checkpoint", // shutdown
        ]
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let seq = i as u64 + 1;
            let count = if *k == "checkpoint" { seq - 1 } else { 0 };
            (seq, k.to_string(), count)
        })
        .collect();
        assert_eq!(kinds, expected);
        assert!(verify_dir(dir.path(), None).unwrap().is_clean());
    }

    #[test]
    fn checkpoints_are_signed_with_the_configured_key() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("key.pem");
        let signer = CheckpointSigner::generate(&key_path).unwrap();
        let out = dir.path().join("rows");
        let config = Config {
            signing_key_file: Some(key_path),
            ..quiet_config(&out)
        };
        let w = Writer::spawn(&config).unwrap();
        for _ in 0..5 {
            w.sender().send(now_event()).unwrap();
        }
        drop(w);
        let rows = rows_in(&out);
        let checkpoints: Vec<_> = rows
            .iter()
            .filter(|r| r.record_type == "checkpoint")
            .collect();
        assert_eq!(checkpoints.len(), 2);
        for cp in &checkpoints {
            assert_eq!(cp.signature.len(), 128);
        }
        let report = verify_dir(&out, Some(&signer.verifier())).unwrap();
        assert!(report.is_clean(), "{:?}", report.findings);
        assert_eq!(report.signatures_checked, 2);
        let unchecked = verify_dir(&out, None).unwrap();
        assert!(unchecked.is_clean());
        assert_eq!(unchecked.signatures_unchecked, 2);
    }

    #[test]
    fn an_unusable_signing_key_stops_the_writer_from_starting() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("nokey.pem");
        let config = Config {
            signing_key_file: Some(key_path),
            ..quiet_config(dir.path())
        };
        let e = Writer::spawn(&config).err().unwrap();
        assert!(e.to_string().contains("nokey.pem"), "{e}");
    }
}
