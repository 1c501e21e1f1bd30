//! The writer: a background thread that takes events from the calling threads' lanes
//! (`lanes.rs`) and a bounded channel, turns them into rows and hands them to the sinks.
//!
//! `Writer::record` is all the shim touches on its hot path: a push into the calling
//! thread's own lane, which neither allocates nor locks while there is room. When the lane
//! is full the caller waits for the writer to catch up (back-pressure) rather than dropping
//! the event: memory stays bounded and no row is lost. The channel carries new lanes, flush
//! requests, the vendor's version, and the events of `durability = "sync"`.
//!
//! Every row is chained (docs/tamper-evidence.md) and numbered. When a write fails, its rows
//! are lost (docs/reliability.md): they keep their `SequenceNo`s, the chain rolls back to
//! the last row on disk, and the next row written is an `HSM_AUDIT_GAP` row that links to
//! that row and reports how many numbers are missing before it.

use crate::chain::{Chain, Head};
use crate::config::{Config, Durability};
use crate::context::Context;
use crate::event::Event;
use crate::health::Health;
use crate::lanes::{self, Lanes, Outlet, Pushed};
use crate::resource_id::ResourceId;
use crate::row::Row;
use crate::signing::CheckpointSigner;
use crate::sink::{archive::ArchiveSink, jsonl::row_day, jsonl::JsonlSink, Sink};
use crate::transform::Normalizer;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError};
use parking_lot::Mutex;
use std::borrow::Cow;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
    /// A calling thread's new lane (its events follow there, not in the channel).
    Lane(Outlet),
}

/// Longest a call waits for its row in `durability = "sync"`: a backstop so that a stalled
/// disk delays the application but never blocks it forever.
pub const SYNC_WAIT_LIMIT: Duration = Duration::from_secs(10);

/// A running writer. Dropping it stops the thread after writing every pending row.
pub struct Writer {
    /// Tells this writer's lanes from other writers' (`lanes::push`).
    id: u64,
    /// Events a calling thread's lane holds (`channel_capacity`).
    lane_capacity: usize,
    tx: Option<Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
    writer_id: String,
    health: Arc<Health>,
    /// In sync mode, the number of events sent so far: locked while an event is sent, so
    /// each caller's ticket is its event's position in the channel.
    tickets: Option<Mutex<u64>>,
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

    /// Starts a writer with the given context and sinks. The first sink is the record (the
    /// row files): the hash chain, loss accounting, gap rows and `on_write_failure` follow
    /// its writes. The others (the archive copy) get the same rows; their write failures
    /// are logged, not counted. Fails if `sinks` is empty, or if `signing_key_file` is set
    /// but unusable: signed checkpoints were asked for, so unsigned ones would mislead.
    pub fn spawn_with(
        config: &Config,
        context: Context,
        mut sinks: Vec<Box<dyn Sink>>,
    ) -> io::Result<Writer> {
        if sinks.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a writer needs at least one sink",
            ));
        }
        let record = sinks.remove(0);
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
        let health = Arc::new(Health::default());
        let sync = config.durability == Durability::Sync;
        let p = Pipeline {
            normalizer: Normalizer::new(context),
            out: Output {
                chain: Chain::new(),
                record,
                copies: sinks,
                last_error: None,
            },
            signer,
            checkpoint_every: config.checkpoint_every.max(1),
            since_checkpoint: 0,
            health: health.clone(),
            sync,
            held: None,
            loss: None,
            reporting: None,
        };
        let thread = std::thread::Builder::new()
            .name("hsm-audit-writer".into())
            .spawn(move || run(rx, p, interval))?;
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Ok(Writer {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            lane_capacity: config.channel_capacity,
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

    /// Hands one event to the writer. Buffered, it returns once the event is queued in the
    /// calling thread's lane (waiting only while the lane is full); sync, once its row is
    /// written and synced or counted lost (at most [`SYNC_WAIT_LIMIT`]). Returns false if the
    /// event could not be handed over.
    #[inline]
    pub fn record(&self, event: Event) -> bool {
        let Some(tickets) = &self.tickets else {
            let pushed = lanes::push(
                self.id,
                self.lane_capacity,
                event,
                |outlet| self.sender().send(Msg::Lane(outlet)).is_ok(),
                || !self.health.stopped(),
            );
            return match pushed {
                Pushed::Queued => true,
                Pushed::WriterGone => {
                    self.health.add_undelivered();
                    false
                }
                Pushed::NoLane => self.send(event),
            };
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

/// Some rows, and the span of their times.
type Count = (u64, Span);

fn add(count: Option<Count>, (rows, span): Count) -> Option<Count> {
    if rows == 0 {
        return count;
    }
    Some(match count {
        Some((n, s)) => (n + rows, widen(Some(s), span)),
        None => (rows, span),
    })
}

/// Turns events into chained rows, checkpoints and gap rows, and accounts for lost ones.
struct Pipeline {
    normalizer: Normalizer,
    out: Output,
    signer: Option<CheckpointSigner>,
    checkpoint_every: u64,
    /// Rows (calls and gap rows) emitted since the last checkpoint.
    since_checkpoint: u64,
    health: Arc<Health>,
    sync: bool,
    /// Start times of the call rows the record sink holds (accepted, not yet written).
    held: Option<Span>,
    /// Rows lost and not yet reported by a gap row.
    loss: Option<Count>,
    /// What the gap row(s) the record sink holds report: forgotten once they are written,
    /// lost again (back into `loss`) if their batch is lost.
    reporting: Option<Count>,
}

/// Where rows leave the pipeline. Every row passes through `emit`, which chains it.
struct Output {
    chain: Chain,
    /// The row files. The chain's committed head follows its writes.
    record: Box<dyn Sink>,
    /// Copies of the rows (the archive).
    copies: Vec<Box<dyn Sink>>,
    last_error: Option<Instant>,
}

/// What the record sink did with an emitted row and the rows it held before.
enum Emitted {
    /// Wrote this row and every row before it.
    AllWritten,
    /// Wrote every row before this one, and holds this one.
    PriorWritten,
    /// Holds this row with the ones before it.
    Held,
    /// A write failed: this row and the given number of rows (this one included) are lost.
    Lost(u64, io::Error),
}

/// Gives a sealed row to the copy sinks; their failures are logged, not counted.
fn copy(
    copies: &mut [Box<dyn Sink>],
    last_error: &mut Option<Instant>,
    row: &Row<'_>,
    line: &[u8],
) {
    for sink in copies.iter_mut() {
        if let Err(e) = sink.accept_sealed(row, line) {
            report(last_error, &e);
        }
    }
}

impl Output {
    fn emit(&mut self, row: Row<'_>, head: Option<&Head>) -> Emitted {
        let Output {
            chain,
            record,
            copies,
            last_error,
        } = self;
        let held_before = record.held();
        let result = match record.line_buffer(row_day(&row)) {
            // Rendered straight into the record's write buffer: one copy of the line fewer.
            Ok(Some(buffer)) => {
                chain.seal_into(row, head, buffer, |row, line| {
                    copy(copies, last_error, row, line)
                });
                record.appended_line()
            }
            Ok(None) => chain.seal(row, head, |row, line| {
                copy(copies, last_error, row, line);
                record.accept_sealed(row, line)
            }),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => match record.held() {
                0 => {
                    chain.commit();
                    Emitted::AllWritten
                }
                1 => {
                    chain.commit_all_but_last();
                    Emitted::PriorWritten
                }
                _ => Emitted::Held,
            },
            // A failed accept drops every row the sink held, and this one.
            Err(e) => {
                chain.roll_back();
                Emitted::Lost(held_before + 1, e)
            }
        }
    }

    /// Hands every held row to the OS; on failure, how many rows were lost.
    fn flush(&mut self) -> Result<(), (u64, io::Error)> {
        for sink in &mut self.copies {
            if let Err(e) = sink.flush() {
                report(&mut self.last_error, &e);
            }
        }
        let held = self.record.held();
        match self.record.flush() {
            Ok(()) => {
                self.chain.commit();
                Ok(())
            }
            Err(e) => {
                self.chain.roll_back();
                Err((held, e))
            }
        }
    }

    /// Makes the written rows durable.
    fn sync(&mut self) -> io::Result<()> {
        for sink in &mut self.copies {
            if let Err(e) = sink.sync() {
                report(&mut self.last_error, &e);
            }
        }
        self.record.sync()
    }
}

/// Logs write failures at most once a minute, so a full disk does not flood the log.
fn report(last: &mut Option<Instant>, e: &io::Error) {
    if last.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
        tracing::error!("hsm-audit: cannot write audit rows (config `output`): {e}");
        *last = Some(Instant::now());
    }
}

impl Pipeline {
    fn event(&mut self, event: &Event) {
        if !self.report_loss() {
            // No gap row could be buffered: this row would follow the lost ones without
            // one, so it is lost too. (Rare: a failed write drops what the JSON Lines sink
            // holds, so its next accept only buffers.)
            let at = event.start_unix_ns;
            self.normalizer.skip(1);
            self.health.add_lost(1);
            self.loss = add(self.loss, (1, (at, at)));
            return;
        }
        let (row, head) = self.normalizer.row_with_head(event);
        let emitted = self.out.emit(row, Some(head));
        self.emitted(emitted, Some(event.start_unix_ns));
        self.since_checkpoint += 1;
        if self.since_checkpoint >= self.checkpoint_every {
            self.checkpoint();
        }
    }

    /// After a loss, the next row emitted must be a gap row: it links to the last row on
    /// disk (the chain has rolled back) and its `SequenceNo` follows the lost ones, so the
    /// numbers missing before it are exactly its `LostRows`. Returns false if a loss is
    /// still unreported (the gap row was lost too).
    fn report_loss(&mut self) -> bool {
        let Some((rows, (from, to))) = self.loss else {
            return true;
        };
        let emitted = self
            .out
            .emit(self.normalizer.gap(rows, from, to, unix_now_ns()), None);
        self.since_checkpoint += 1;
        if let Emitted::Lost(n, e) = emitted {
            // The gap row went with the batch: the next one reports it too.
            self.lost(n, e);
            return false;
        }
        let written = matches!(emitted, Emitted::AllWritten);
        self.emitted(emitted, None);
        self.loss = None;
        if written {
            reported(rows);
        } else {
            self.reporting = add(self.reporting, (rows, (from, to)));
        }
        true
    }

    /// Writes a checkpoint unless no call or gap row came since the last one (a stream then
    /// already ends with a checkpoint, or is empty).
    fn checkpoint(&mut self) {
        // Without a gap row in front it could not be written; the next flush retries.
        if !self.report_loss() || self.since_checkpoint == 0 {
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
        let emitted = self.out.emit(row, None);
        self.since_checkpoint = 0;
        self.emitted(emitted, None);
    }

    /// Bookkeeping after a row (of a call that started at `at`, if it is one) was emitted.
    fn emitted(&mut self, emitted: Emitted, at: Option<u64>) {
        match emitted {
            Emitted::AllWritten => self.written(),
            Emitted::PriorWritten => {
                self.written();
                self.hold(at);
            }
            Emitted::Held => self.hold(at),
            Emitted::Lost(rows, e) => {
                self.hold(at);
                self.lost(rows, e);
            }
        }
    }

    fn hold(&mut self, at: Option<u64>) {
        if let Some(at) = at {
            self.held = Some(widen(self.held, (at, at)));
        }
    }

    /// Every row emitted before the current one is on disk.
    fn written(&mut self) {
        self.held = None;
        if let Some((rows, _)) = self.reporting.take() {
            reported(rows);
        }
    }

    /// `rows` rows the record sink held were dropped by a failed write.
    fn lost(&mut self, rows: u64, e: io::Error) {
        self.health.set_writable(false);
        self.health.add_lost(rows);
        // The times are those of lost calls; a loss of only other rows (a checkpoint, a
        // gap row) takes the time it happened.
        let span = self
            .held
            .take()
            .or(self.loss.map(|(_, s)| s))
            .or(self.reporting.map(|(_, s)| s))
            .unwrap_or_else(|| {
                let now = unix_now_ns();
                (now, now)
            });
        // `rows` counts any gap row that was held: what it reported is unreported again.
        self.loss = add(
            add(self.loss, (rows, span)),
            self.reporting.take().unwrap_or_default(),
        );
        report(&mut self.out.last_error, &e);
    }

    /// Events the callers could not hand over: counted lost by them already; numbered here
    /// so `SequenceNo` shows the gap (the gap row reporting them follows at once).
    fn fold_undelivered(&mut self) {
        let n = self.health.take_undelivered();
        if n > 0 {
            self.normalizer.skip(n);
            let now = unix_now_ns();
            self.loss = add(self.loss, (n, (now, now)));
        }
    }

    /// Hands every held row to the OS (no checkpoint: sync mode's per-batch write).
    fn write(&mut self) {
        match self.out.flush() {
            Ok(()) => {
                self.written();
                if self.loss.is_none() {
                    self.health.set_writable(true);
                }
            }
            Err((rows, e)) => self.lost(rows, e),
        }
    }

    /// Reports any loss, checkpoints, then hands every row to the OS, so what is on disk
    /// ends protected.
    fn flush(&mut self) {
        self.fold_undelivered();
        self.checkpoint();
        self.write();
    }

    /// Makes written rows durable (sync mode).
    fn sync(&mut self) {
        if let Err(e) = self.out.sync() {
            self.health.set_writable(false);
            report(&mut self.out.last_error, &e);
        }
    }
}

fn reported(rows: u64) {
    tracing::warn!(
        "hsm-audit: writing audit rows works again; {rows} rows were lost, reported by an {} row",
        crate::transform::GAP_OPERATION
    );
}

fn unix_now_ns() -> u64 {
    crate::clock::to_unix_ns(crate::clock::now())
}

/// Diagnostics of writer threads go here when set (the shim sets its own, so that a host
/// application's global `tracing` subscriber is neither replaced nor flooded).
pub static DIAGNOSTICS: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();

/// Events taken from the channel between two writes.
const BATCH: usize = 4096;

/// The writer thread's loop state.
struct Run {
    p: Pipeline,
    lanes: Lanes,
    /// When the first row since the last flush (and checkpoint) came.
    dirty_since: Option<Instant>,
    /// Events received so far: in sync mode, the tickets of the callers waiting for them.
    received: u64,
    /// Events written (or counted lost) and synced: in sync mode, the callers released.
    settled: u64,
}

impl Run {
    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Event(e) => {
                self.received += 1;
                self.p.event(&e);
                self.dirty_since.get_or_insert_with(Instant::now);
            }
            Msg::Flush(ack) => {
                // Every event recorded before the flush was asked for is in a lane by now.
                self.drain_lanes();
                self.flush();
                let _ = ack.send(());
            }
            Msg::SdkVersion(v) => self.p.normalizer.set_sdk_version(v),
            Msg::Lane(outlet) => self.lanes.add(outlet),
        }
    }

    /// Turns every event waiting in the lanes into rows; returns how many there were.
    fn drain_lanes(&mut self) -> usize {
        let p = &mut self.p;
        let n = self.lanes.drain(|e| p.event(e));
        if n > 0 {
            self.dirty_since.get_or_insert_with(Instant::now);
        }
        n
    }

    /// Checkpoints and writes everything; releases sync-mode callers.
    fn flush(&mut self) {
        self.p.flush();
        self.dirty_since = None;
        self.settle();
    }

    /// In sync mode: syncs what was written and releases the callers waiting for it.
    fn settle(&mut self) {
        if self.p.sync && self.settled < self.received {
            self.p.sync();
            self.settled = self.received;
            self.p.health.set_done(self.received);
        }
    }
}

fn run(rx: Receiver<Msg>, p: Pipeline, interval: Duration) {
    let _diagnostics = DIAGNOSTICS.get().map(tracing::dispatcher::set_default);
    // However the loop ends (even by a panic), callers must stop waiting for this thread.
    struct Stopped(Arc<Health>);
    impl Drop for Stopped {
        fn drop(&mut self) {
            self.0.set_stopped();
        }
    }
    let _stopped = Stopped(p.health.clone());
    let mut r = Run {
        p,
        lanes: Lanes::default(),
        dirty_since: None,
        received: 0,
        settled: 0,
    };
    let mut naps = crate::wait::Naps::default();
    loop {
        crate::clock::rebase();
        let mut busy = r.drain_lanes() > 0;
        let wait = r
            .dirty_since
            .map_or(interval, |t| interval.saturating_sub(t.elapsed()));
        // Sync mode's callers wait for their rows in the channel: no naps there. Otherwise
        // the wait is a nap (lanes are looked at again after it) that a message cuts short.
        let next = if r.p.sync {
            rx.recv_timeout(wait)
        } else if busy {
            rx.try_recv().map_err(|e| match e {
                TryRecvError::Empty => RecvTimeoutError::Timeout,
                TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            })
        } else {
            rx.recv_timeout(naps.next().min(wait))
        };
        match next {
            Ok(msg) => {
                busy = true;
                r.handle(msg);
                // Take what is already queued before deciding to write.
                for msg in rx.try_iter().take(BATCH) {
                    r.handle(msg);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if busy {
            naps.busy();
        }
        if r.dirty_since.is_some_and(|t| t.elapsed() >= interval) {
            r.flush();
        } else if r.p.sync && r.settled < r.received {
            // Sync mode writes every batch at once (group commit): its callers are waiting.
            // Checkpoints keep their own pace (every `flush_interval_ms` with new rows).
            r.p.write();
            r.settle();
        }
    }
    r.drain_lanes();
    r.flush();
}

/// Sinks for tests that need writes to fail.
#[cfg(test)]
pub(crate) mod testing {
    use crate::row::Row;
    use crate::sink::{jsonl::JsonlSink, Sink};
    use std::io;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// Real row files, except that the next `failures` writes fail and drop every row held,
    /// as the JSON Lines sink does on a full disk. A write is a flush, or also an accept when
    /// `fail_accepts` is set (as when the sink writes a full buffer on its own).
    pub(crate) struct Failing {
        inner: JsonlSink,
        held: Vec<(Row<'static>, Vec<u8>)>,
        pub(crate) failures: Arc<AtomicU64>,
        fail_accepts: bool,
    }

    impl Failing {
        pub(crate) fn new(dir: &std::path::Path, fail_accepts: bool) -> Failing {
            Failing {
                inner: JsonlSink::new(dir, std::process::id(), u64::MAX).unwrap(),
                held: Vec::new(),
                failures: Arc::new(AtomicU64::new(0)),
                fail_accepts,
            }
        }

        fn fails(&self) -> bool {
            self.failures
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
        }
    }

    impl Sink for Failing {
        fn accept(&mut self, row: &Row<'_>) -> io::Result<()> {
            let mut line = Vec::new();
            row.write_json(&mut line);
            line.push(b'\n');
            self.accept_sealed(row, &line)
        }
        fn accept_sealed(&mut self, row: &Row<'_>, line: &[u8]) -> io::Result<()> {
            if self.fail_accepts && self.fails() {
                self.held.clear();
                return Err(io::Error::other("injected accept failure"));
            }
            self.held.push((row.clone().into_owned(), line.to_vec()));
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            let held = std::mem::take(&mut self.held);
            if self.fails() {
                return Err(io::Error::other("injected write failure"));
            }
            for (row, line) in &held {
                self.inner.accept_sealed(row, line)?;
            }
            self.inner.flush()
        }
        fn held(&self) -> u64 {
            self.held.len() as u64
        }
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

    fn sign_at(sec: u64) -> Event {
        Event::new(FunctionId::Sign, 0, 1_000_000_000 * sec, 5)
    }

    #[test]
    fn lost_rows_leave_a_sequence_gap_a_gap_row_and_an_unbroken_chain() {
        let dir = tempfile::tempdir().unwrap();
        let sink = testing::Failing::new(dir.path(), false);
        let failures = sink.failures.clone();
        let config = quiet_config(dir.path());
        let config = Config {
            checkpoint_every: 1000,
            ..config
        };
        let w =
            Writer::spawn_with(&config, Context::current(&config), vec![Box::new(sink)]).unwrap();
        let send = |secs: std::ops::RangeInclusive<u64>| {
            for s in secs {
                assert!(w.record(sign_at(s)));
            }
            assert!(w.flush(Duration::from_secs(10)));
        };
        send(1..=10); // 1-10, checkpoint 11
        failures.store(1, std::sync::atomic::Ordering::Relaxed);
        send(11..=15); // 12-16 and checkpoint 17: lost
        assert!(!w.health().writable());
        assert_eq!(w.health().lost(), 6);
        send(16..=18); // gap 18, calls 19-21, checkpoint 22
        assert!(w.health().writable());
        drop(w);
        let rows = rows_in(dir.path());
        let seq: Vec<(u64, &str)> = rows
            .iter()
            .map(|r| (r.sequence_no, r.record_type.as_ref()))
            .collect();
        let mut expected: Vec<(u64, &str)> = (1..=10).map(|n| (n, "call")).collect();
        expected.extend([(11, "checkpoint"), (18, "gap")]);
        expected.extend((19..=21).map(|n| (n, "call")));
        expected.push((22, "checkpoint"));
        assert_eq!(seq, expected);
        let gap = &rows[11];
        assert_eq!(gap.operation_name, crate::transform::GAP_OPERATION);
        assert_eq!(gap.lost_rows, 6);
        assert_eq!(gap.lost_from, "1970-01-01T00:00:11.000000Z");
        assert_eq!(gap.lost_to, "1970-01-01T00:00:15.000000Z");
        // The gap row links to the last row on disk, not to the lost checkpoint.
        assert_eq!(gap.prev_hash, rows[10].row_hash);
        assert_eq!(rows[12].prev_hash, gap.row_hash);
        let report = verify_dir(dir.path(), None).unwrap();
        assert!(report.is_clean(), "{:?}", report.findings);
        assert_eq!(report.rows_lost, 6);
    }

    #[test]
    fn a_lost_gap_row_is_reported_by_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        // Accepts fail too: every row emitted while broken is lost at once.
        let sink = testing::Failing::new(dir.path(), true);
        let failures = sink.failures.clone();
        let config = Config {
            checkpoint_every: 1000,
            ..quiet_config(dir.path())
        };
        let w =
            Writer::spawn_with(&config, Context::current(&config), vec![Box::new(sink)]).unwrap();
        for s in 1..=3 {
            assert!(w.record(sign_at(s)));
        }
        assert!(w.flush(Duration::from_secs(10))); // 1-3, checkpoint 4
                                                   // Call 5 fails on accept; gap 6 and call 7 too; gap 8 and call 9 are held, then
                                                   // the flush fails: gap 8, call 9 and checkpoint 10 are lost.
        failures.store(4, std::sync::atomic::Ordering::Relaxed);
        for s in 5..=7 {
            assert!(w.record(sign_at(s)));
        }
        assert!(w.flush(Duration::from_secs(10)));
        assert_eq!(w.health().lost(), 6);
        assert!(w.record(sign_at(8))); // gap 11 (LostRows 6), call 12
        drop(w); // checkpoint 13
        let rows = rows_in(dir.path());
        let seq: Vec<u64> = rows.iter().map(|r| r.sequence_no).collect();
        assert_eq!(seq, [1, 2, 3, 4, 11, 12, 13]);
        assert_eq!(
            (rows[4].record_type.as_ref(), rows[4].lost_rows),
            ("gap", 6)
        );
        assert_eq!(rows[4].lost_from, "1970-01-01T00:00:05.000000Z");
        assert_eq!(rows[4].lost_to, "1970-01-01T00:00:07.000000Z");
        assert_eq!(rows[4].prev_hash, rows[3].row_hash);
        let report = verify_dir(dir.path(), None).unwrap();
        assert!(report.is_clean(), "{:?}", report.findings);
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
            // Only the call rows: sync writes are not flushes, so no checkpoint yet.
            assert_eq!(text.lines().count() as u64, i);
        }
        assert!(w.flush(Duration::from_secs(10)));
        drop(w);
        assert!(verify_dir(dir.path(), None).unwrap().is_clean());
    }
}
