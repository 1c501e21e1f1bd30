//! Per-thread event lanes: each thread that records calls gets its own single-producer ring
//! (`rtrb`) to the writer.
//!
//! Handing an event over is then a copy into memory only this thread writes and one release
//! store: no compare-and-swap, no cache line shared with the other calling threads, where a
//! shared multi-producer channel costs both on every call. The writer takes whatever a lane
//! holds in one batch. The shared channel still carries everything else (a new lane, flush
//! requests, the vendor's version) and, in `durability = "sync"`, the events themselves.
//!
//! A lane is announced to its writer (`Msg::Lane`) before its first event is pushed, so a
//! flush asked for after an event was recorded, from any thread, finds that event's lane.

use crate::event::Event;
use rtrb::{Consumer, Producer, PushError, RingBuffer};
use std::cell::RefCell;
use std::time::Duration;

/// The writer's end of one lane.
#[derive(Debug)]
pub struct Outlet(Consumer<Event>);

/// This thread's end of its lane, and which writer the lane leads to.
struct Inlet {
    writer: u64,
    producer: Producer<Event>,
}

thread_local! {
    static LANE: RefCell<Option<Inlet>> = const { RefCell::new(None) };
}

/// How a push ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The event is in this thread's lane.
    Queued,
    /// The writer is gone (or the lane could not be announced): the event was not handed over.
    WriterGone,
    /// No lane can be used here (this thread's storage is being torn down, or the push was
    /// re-entered): the caller sends the event some other way.
    NoLane,
}

/// Hands `event` to writer `writer` through this thread's lane of `capacity` events. A thread
/// without a lane to that writer opens one and passes its outlet to `announce` (false: the
/// writer is gone). While the lane is full it waits, as long as `alive()`.
pub fn push(
    writer: u64,
    capacity: usize,
    event: Event,
    announce: impl FnOnce(Outlet) -> bool,
    alive: impl Fn() -> bool,
) -> Pushed {
    LANE.try_with(|cell| {
        let Ok(mut lane) = cell.try_borrow_mut() else {
            return Pushed::NoLane;
        };
        if lane.as_ref().is_none_or(|l| l.writer != writer) {
            // A lane to an earlier writer (a previous one in this process, or the parent's
            // after fork) is dropped: its writer has, or had, the other end.
            let (producer, consumer) = RingBuffer::new(capacity.max(1));
            if !announce(Outlet(consumer)) {
                *lane = None;
                return Pushed::WriterGone;
            }
            *lane = Some(Inlet { writer, producer });
        }
        let producer = &mut lane.as_mut().expect("opened above").producer;
        let mut event = event;
        let mut waited = 0u32;
        loop {
            match producer.push(event) {
                Ok(()) => return Pushed::Queued,
                Err(PushError::Full(back)) => event = back,
            }
            if !alive() {
                return Pushed::WriterGone;
            }
            // Full: the writer is behind (a slow disk). Back-pressure, never loss.
            waited += 1;
            if waited < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    })
    .unwrap_or(Pushed::NoLane)
}

/// The writer's lanes.
#[derive(Default)]
pub struct Lanes {
    outlets: Vec<Consumer<Event>>,
}

impl Lanes {
    /// Takes a newly announced lane.
    pub fn add(&mut self, outlet: Outlet) {
        self.outlets.push(outlet.0);
    }

    /// Hands every event waiting in the lanes to `handle`, lane by lane (each lane's events
    /// in order), and forgets lanes whose thread has ended and that are empty. Returns how
    /// many events there were.
    pub fn drain(&mut self, mut handle: impl FnMut(&Event)) -> usize {
        let mut total = 0;
        self.outlets.retain_mut(|outlet| {
            // Read before draining: a thread that ends after this leaves its last events for
            // the next pass.
            let abandoned = outlet.is_abandoned();
            let n = outlet.slots();
            if n > 0 {
                let chunk = outlet.read_chunk(n).expect("slots() events are there");
                let (a, b) = chunk.as_slices();
                a.iter().chain(b).for_each(&mut handle);
                chunk.commit_all();
                total += n;
            }
            !(abandoned && outlet.is_empty())
        });
        total
    }

    /// Lanes open now.
    pub fn len(&self) -> usize {
        self.outlets.len()
    }

    /// Whether no lane is open.
    pub fn is_empty(&self) -> bool {
        self.outlets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FunctionId;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;

    fn ev(i: u64) -> Event {
        Event::new(FunctionId::Sign, 0, i, 0)
    }

    #[test]
    fn threads_get_their_own_lanes_and_order_is_kept_per_lane() {
        let (tx, rx) = mpsc::channel();
        let threads: Vec<_> = (0..3u64)
            .map(|t| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        let pushed =
                            push(7, 4096, ev(t * 10_000 + i), |o| tx.send(o).is_ok(), || true);
                        assert_eq!(pushed, Pushed::Queued);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut lanes = Lanes::default();
        for outlet in rx.try_iter() {
            lanes.add(outlet);
        }
        assert_eq!(lanes.len(), 3);
        let mut seen = Vec::new();
        assert_eq!(lanes.drain(|e| seen.push(e.start_unix_ns)), 3000);
        for t in 0..3u64 {
            let mine: Vec<u64> = seen.iter().copied().filter(|s| s / 10_000 == t).collect();
            assert_eq!(mine, (0..1000).map(|i| t * 10_000 + i).collect::<Vec<_>>());
        }
        // Their threads ended and they are empty: gone.
        assert!(lanes.is_empty());
    }

    #[test]
    fn a_full_lane_waits_for_the_writer_and_a_gone_writer_ends_the_wait() {
        let (tx, rx) = mpsc::channel();
        let alive = std::sync::Arc::new(AtomicBool::new(true));
        let producer_alive = alive.clone();
        let producer = std::thread::spawn(move || {
            (0..10)
                .map(|i| {
                    let alive = || producer_alive.load(Ordering::SeqCst);
                    push(8, 4, ev(i), |o| tx.send(o).is_ok(), alive)
                })
                .collect::<Vec<_>>()
        });
        let mut lanes = Lanes::default();
        lanes.add(rx.recv().unwrap());
        let full = |lanes: &Lanes| {
            while lanes.outlets[0].slots() < 4 {
                std::thread::yield_now();
            }
        };
        let mut seen = Vec::new();
        // Full after 4 events: the producer waits instead of dropping the 5th.
        full(&lanes);
        assert_eq!(lanes.drain(|e| seen.push(e.start_unix_ns)), 4);
        // Full again with events 4..8; then the writer goes away.
        full(&lanes);
        alive.store(false, Ordering::SeqCst);
        let results = producer.join().unwrap();
        let queued = results.iter().filter(|r| **r == Pushed::Queued).count();
        assert_eq!(queued, 8, "{results:?}");
        assert_eq!(results[8..], [Pushed::WriterGone, Pushed::WriterGone]);
        lanes.drain(|e| seen.push(e.start_unix_ns));
        assert_eq!(seen, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn a_new_writer_gets_a_new_lane_and_announcing_can_fail() {
        let (tx, rx) = mpsc::channel();
        assert_eq!(
            push(20, 8, ev(1), |o| tx.send(o).is_ok(), || true),
            Pushed::Queued
        );
        assert_eq!(
            push(20, 8, ev(2), |_| unreachable!(), || true),
            Pushed::Queued
        );
        assert_eq!(
            push(21, 8, ev(3), |o| tx.send(o).is_ok(), || true),
            Pushed::Queued
        );
        assert_eq!(rx.try_iter().count(), 2);
        assert_eq!(push(22, 8, ev(4), |_| false, || true), Pushed::WriterGone);
    }
}
