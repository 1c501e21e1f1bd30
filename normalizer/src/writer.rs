//! The writer: a background thread that receives events over a bounded channel, turns
//! them into rows and hands them to the sinks.
//!
//! The sending side is all the shim touches on its hot path: `Sender::send` on a bounded
//! crossbeam channel neither allocates nor locks while there is room. When the channel is
//! full the caller waits for the writer to catch up (back-pressure) rather than dropping the
//! event: memory stays bounded and no row is lost.

use crate::config::{Config, Durability};
use crate::context::Context;
use crate::event::Event;
use crate::health::Health;
use crate::sink::{jsonl::JsonlSink, Sink};
use crate::transform::Normalizer;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use std::io;
use std::sync::Arc;
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

/// Longest a call waits for its row in `durability = "sync"`: a backstop so that a stalled
/// disk delays the application but never blocks it forever.
pub const SYNC_WAIT_LIMIT: Duration = Duration::from_secs(10);

/// A running writer. Dropping it stops the thread after writing every pending row.
pub struct Writer {
    tx: Option<Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
    writer_id: String,
    health: Arc<Health>,
    /// In sync mode, the number of events sent so far: locked while an event is sent, so
    /// each caller's ticket is its event's position in the channel.
    tickets: Option<Mutex<u64>>,
}

impl Writer {
    /// Starts a writer for this process with the JSON Lines sink in `config.output`.
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
        Writer::spawn_with(config, context, vec![Box::new(sink)])
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
        let health = Arc::new(Health::default());
        let sync = config.durability == Durability::Sync;
        let p = Pipeline {
            normalizer: Normalizer::new(context),
            sinks,
            health: health.clone(),
            sync,
            held: None,
            loss: None,
            last_error: None,
        };
        let thread = std::thread::Builder::new()
            .name("hsm-audit-writer".into())
            .spawn(move || run(rx, p, interval))?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
            writer_id,
            health,
            tickets: sync.then(|| Mutex::new(0)),
        })
    }

    /// The sending side, for the hot path.
    pub fn sender(&self) -> &Sender<Msg> {
        self.tx.as_ref().expect("present until drop")
    }

    /// What this writer shares with the callers.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Hands one event to the writer. Buffered, it returns once the event is queued (waiting
    /// only while the channel is full); sync, once its row is written and synced or counted
    /// lost (at most [`SYNC_WAIT_LIMIT`]). Returns false if the event could not be handed over.
    #[inline]
    pub fn record(&self, event: Event) -> bool {
        let Some(tickets) = &self.tickets else {
            return self.send(event);
        };
        let ticket = {
            let mut sent = tickets.lock();
            if !self.send(event) {
                return false;
            }
            *sent += 1;
            *sent
        };
        self.health.wait_done(ticket, SYNC_WAIT_LIMIT)
    }

    #[inline]
    fn send(&self, event: Event) -> bool {
        let sent = self.sender().send(Msg::Event(event)).is_ok();
        if !sent {
            self.health.add_undelivered();
        }
        sent
    }

    /// The id every row of this writer carries.
    pub fn writer_id(&self) -> &str {
        &self.writer_id
    }

    /// Waits until every event sent before this call has been handed to the OS (and synced,
    /// in sync mode), or until `timeout`. Returns whether the writer confirmed.
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

/// Start times (Unix ns) of the first and last of some rows.
type Span = (u64, u64);

fn widen(span: Option<Span>, at: Span) -> Span {
    span.map_or(at, |(from, to)| (from.min(at.0), to.max(at.1)))
}

struct Pipeline {
    normalizer: Normalizer,
    sinks: Vec<Box<dyn Sink>>,
    health: Arc<Health>,
    sync: bool,
    /// Times of the rows the sinks hold (accepted, not yet handed to the OS).
    held: Option<Span>,
    /// Rows lost and not yet reported by a gap row, and their times.
    loss: Option<(u64, Span)>,
    last_error: Option<Instant>,
}

impl Pipeline {
    fn event(&mut self, event: &Event) {
        let at = event.start_unix_ns;
        let row = self.normalizer.row(event);
        let mut failure = None;
        for sink in &mut self.sinks {
            let held = sink.held();
            match sink.accept(&row) {
                // Only this row is held: anything before it was just written.
                Ok(()) if sink.held() == 1 => self.held = None,
                Ok(()) => {}
                Err(e) => failure = Some((held + 1, e)),
            }
        }
        self.held = Some(widen(self.held, (at, at)));
        if let Some((rows, e)) = failure {
            self.lost(rows, e);
        }
    }

    /// Hands every held row to the OS; once that works after a loss, writes the gap row.
    fn flush(&mut self) {
        if !self.write_held() {
            return;
        }
        self.health.set_writable(true);
        let undelivered = self.health.take_undelivered();
        if undelivered > 0 {
            // Counted lost by the callers already; numbered here so SequenceNo shows the gap.
            self.normalizer.skip(undelivered);
            let now = unix_now_ns();
            self.add_loss(undelivered, (now, now));
        }
        let Some((rows, (from, to))) = self.loss.take() else {
            return;
        };
        let row = self.normalizer.gap(rows, from, to, unix_now_ns());
        let accepted = self.sinks.iter_mut().all(|s| s.accept(&row).is_ok());
        if accepted && self.write_held() {
            tracing::warn!(
                "hsm-audit: writing audit rows works again; {rows} rows were lost, reported by an {} row",
                crate::transform::GAP_OPERATION
            );
        } else {
            // The gap row itself is lost: it joins the loss the next gap row reports.
            self.health.add_lost(1);
            self.add_loss(rows + 1, (from, to));
            self.held = None;
        }
    }

    /// Flushes every sink; false (and the held rows counted lost) if one failed.
    fn write_held(&mut self) -> bool {
        let held = self.sinks.iter().map(|s| s.held()).max().unwrap_or(0);
        let mut failure = None;
        for sink in &mut self.sinks {
            if let Err(e) = sink.flush() {
                failure = Some(e);
            }
        }
        match failure {
            Some(e) => {
                self.lost(held, e);
                false
            }
            None => {
                self.held = None;
                true
            }
        }
    }

    /// Makes written rows durable (sync mode).
    fn sync(&mut self) {
        for sink in &mut self.sinks {
            if let Err(e) = sink.sync() {
                self.health.set_writable(false);
                report(&mut self.last_error, &e);
            }
        }
    }

    /// `rows` held rows were dropped by a failed write.
    fn lost(&mut self, rows: u64, e: io::Error) {
        self.health.set_writable(false);
        self.health.add_lost(rows);
        let span = self.held.take().unwrap_or_else(|| {
            let now = unix_now_ns();
            (now, now)
        });
        self.add_loss(rows, span);
        report(&mut self.last_error, &e);
    }

    fn add_loss(&mut self, rows: u64, span: Span) {
        if rows == 0 {
            return;
        }
        self.loss = Some(match self.loss {
            Some((n, s)) => (n + rows, widen(Some(s), span)),
            None => (rows, span),
        });
    }
}

fn unix_now_ns() -> u64 {
    crate::clock::to_unix_ns(crate::clock::now_mono_ns())
}

/// Logs write failures at most once a minute, so a full disk does not flood the log.
fn report(last: &mut Option<Instant>, e: &io::Error) {
    if last.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
        tracing::error!("hsm-audit: cannot write audit rows (config `output`): {e}");
        *last = Some(Instant::now());
    }
}

/// Diagnostics of writer threads go here when set (the shim sets its own, so that a host
/// application's global `tracing` subscriber is neither replaced nor flooded).
pub static DIAGNOSTICS: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();

/// Events taken from the channel between two writes.
const BATCH: usize = 4096;

fn run(rx: Receiver<Msg>, mut p: Pipeline, interval: Duration) {
    let _diagnostics = DIAGNOSTICS.get().map(tracing::dispatcher::set_default);
    let mut dirty_since: Option<Instant> = None;
    // Events received so far: in sync mode, the tickets of the callers waiting for them.
    let mut received = 0u64;
    loop {
        crate::clock::rebase();
        let wait = dirty_since.map_or(interval, |t| interval.saturating_sub(t.elapsed()));
        match rx.recv_timeout(wait) {
            Ok(msg) => {
                handle(&mut p, msg, &mut dirty_since, &mut received);
                // Drain what is already queued before deciding to write.
                for msg in rx.try_iter().take(BATCH) {
                    handle(&mut p, msg, &mut dirty_since, &mut received);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // Sync mode writes every batch at once (group commit): its callers are waiting.
        let due = p.sync || dirty_since.is_some_and(|t| t.elapsed() >= interval);
        if dirty_since.is_some() && due {
            write_batch(&mut p, received);
            dirty_since = None;
        }
    }
    write_batch(&mut p, received);
}

/// Writes what is held; in sync mode also syncs and releases the callers waiting for it.
fn write_batch(p: &mut Pipeline, received: u64) {
    p.flush();
    if p.sync {
        p.sync();
        p.health.set_done(received);
    }
}

fn handle(p: &mut Pipeline, msg: Msg, dirty_since: &mut Option<Instant>, received: &mut u64) {
    match msg {
        Msg::Event(e) => {
            *received += 1;
            p.event(&e);
            dirty_since.get_or_insert_with(Instant::now);
        }
        Msg::Flush(ack) => {
            write_batch(p, *received);
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

    /// Keeps rows in memory; fails every write while `broken` is set.
    struct Flaky {
        broken: Arc<std::sync::atomic::AtomicBool>,
        written: Arc<Mutex<Vec<crate::row::Row<'static>>>>,
        held: Vec<crate::row::Row<'static>>,
    }

    impl Sink for Flaky {
        fn accept(&mut self, row: &crate::row::Row<'_>) -> io::Result<()> {
            self.held.push(row.clone().into_owned());
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            let rows = std::mem::take(&mut self.held);
            if self.broken.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(io::Error::other("disk full"));
            }
            self.written.lock().extend(rows);
            Ok(())
        }
        fn held(&self) -> u64 {
            self.held.len() as u64
        }
    }

    #[test]
    fn lost_rows_leave_a_sequence_gap_and_a_gap_row() {
        let broken = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let written = Arc::new(Mutex::new(Vec::new()));
        let sink = Flaky {
            broken: broken.clone(),
            written: written.clone(),
            held: Vec::new(),
        };
        let config = Config::default();
        let w =
            Writer::spawn_with(&config, Context::current(&config), vec![Box::new(sink)]).unwrap();
        let send = |n: u64| {
            for i in 0..n {
                assert!(w.record(Event::new(FunctionId::Sign, 0, 1_000_000_000 * (i + 1), 5)));
            }
            assert!(w.flush(Duration::from_secs(10)));
        };
        send(10);
        broken.store(true, std::sync::atomic::Ordering::Relaxed);
        send(5);
        assert!(!w.health().writable());
        assert_eq!(w.health().lost(), 5);
        broken.store(false, std::sync::atomic::Ordering::Relaxed);
        send(3);
        assert!(w.health().writable());
        let rows = written.lock().clone();
        let seq: Vec<u64> = rows.iter().map(|r| r.sequence_no).collect();
        let expected: Vec<u64> = (1..=10).chain(16..=19).collect();
        assert_eq!(seq, expected);
        let gap = rows.last().unwrap();
        assert_eq!(gap.operation_name, crate::transform::GAP_OPERATION);
        assert_eq!(gap.lost_rows, 5);
        assert_eq!(gap.lost_from, "1970-01-01T00:00:01.000000Z");
        assert_eq!(gap.lost_to, "1970-01-01T00:00:05.000000Z");
    }

    #[test]
    fn sync_mode_returns_once_the_row_is_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            output: dir.path().to_owned(),
            durability: Durability::Sync,
            flush_interval_ms: 60_000,
            ..Config::default()
        };
        let w = Writer::spawn(&config).unwrap();
        for i in 1..=20u64 {
            assert!(w.record(Event::new(
                FunctionId::Sign,
                0,
                1_763_762_603_000_000_000,
                5
            )));
            let files = crate::sink::jsonl::row_files(dir.path()).unwrap();
            let text = std::fs::read_to_string(&files[0]).unwrap();
            assert_eq!(text.lines().count() as u64, i);
        }
    }
}
