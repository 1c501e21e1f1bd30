//! The normalizer alone, on one core: events → rows → JSON Lines file, in rows per second.
//!
//! `cargo bench -p normalizer --bench normalizer`. Each iteration is a batch of events,
//! processed as the writer thread does (normalise, seal into the hash chain, which renders
//! the line once, buffered write, then a final flush to the OS), minus the channel and
//! checkpoints. Row files are deleted between samples so the run does not fill the disk.
//! `events_to_rows_to_file` counts the thread's CPU time (user and system), not wall time, so
//! its rate is per core and does not depend on what else the machine runs.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use normalizer::chain::Chain;
use normalizer::context::Context;
use normalizer::sink::{jsonl::JsonlSink, Sink};
use normalizer::transform::Normalizer;
use normalizer::{Config, Event, FunctionId};
use std::hint::black_box;
use std::time::Duration;

const BATCH: usize = 10_000;

/// A realistic mix: mostly crypto calls, some with a mechanism, a few failures, with
/// start times 2 µs apart.
fn events() -> Vec<Event> {
    let start = 1_763_762_603_000_000_000u64;
    (0..BATCH as u64)
        .map(|i| {
            let (function, mechanism, rv) = match i % 8 {
                0 => (FunctionId::SignInit, Some(0x1041), 0),
                1 => (FunctionId::Sign, None, 0),
                2 => (FunctionId::DigestInit, Some(0x250), 0),
                3 => (FunctionId::Digest, None, 0),
                4 => (FunctionId::FindObjectsInit, None, 0),
                5 => (FunctionId::GetAttributeValue, None, 0x12),
                6 => (FunctionId::GenerateRandom, None, 0),
                _ => (FunctionId::Login, None, 0xa0),
            };
            let mut e = Event::new(function, rv, start + i * 2_000, 1_500 + i % 700);
            e.mechanism = mechanism;
            if function == FunctionId::Login {
                e.user_type = Some(1);
            }
            e
        })
        .collect()
}

/// CPU time of this thread, user and system (the `write(2)` calls included): "rows per second
/// on one core", whatever else the machine runs meanwhile.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock exists on every Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn context() -> Context {
    let mut c = Context::current(&Config {
        hsm_instance: "hsm-bench-01".into(),
        cluster_type: "StandardB1".into(),
        caller_ip_address: "10.1.2.3".into(),
        ..Config::default()
    });
    c.client_sdk_package_version = "SoftHSM 2.6 (SoftHSM)".into();
    c
}

fn bench(c: &mut Criterion) {
    let events = events();
    let mut g = c.benchmark_group("normalizer");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.measurement_time(Duration::from_secs(5));

    g.bench_function("events_to_rows", |b| {
        let mut n = Normalizer::new(context());
        b.iter(|| {
            for e in &events {
                black_box(n.row(e));
            }
        })
    });

    g.bench_function("events_to_sealed_lines", |b| {
        let mut n = Normalizer::new(context());
        let mut chain = Chain::new();
        b.iter(|| {
            for e in &events {
                let (row, head) = n.row_with_head(e);
                chain.seal(row, Some(head), |_, line| black_box(line.len()));
                chain.commit();
            }
        })
    });

    g.bench_function("events_to_rows_to_file", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut n = Normalizer::new(context());
            let mut chain = Chain::new();
            let mut sink = JsonlSink::new(dir.path(), 1, 256 * 1024 * 1024).expect("sink");
            let t = thread_cpu();
            for _ in 0..iters {
                for e in &events {
                    // As the writer does: rendered straight into the sink's write buffer.
                    let (row, head) = n.row_with_head(e);
                    let buffer = sink
                        .line_buffer(normalizer::sink::jsonl::row_day(&row))
                        .expect("day")
                        .expect("the JSON Lines sink has a line buffer");
                    chain.seal_into(row, Some(head), buffer, |_, _| ());
                    sink.appended_line().expect("append");
                    chain.commit();
                }
            }
            sink.flush().expect("flush");
            thread_cpu() - t
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
