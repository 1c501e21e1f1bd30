//! Measures how many rows per second the writer thread turns into JSON Lines on disk.
//!
//! `cargo run --release -p normalizer --example writer_throughput -- [ROWS] [DIR]`
//! (DIR defaults to a fresh temporary directory, removed afterwards). Use a tmpfs DIR such
//! as /dev/shm/x to measure the writer rather than the disk.

use normalizer::{Config, Event, FunctionId, Writer};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let rows: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = args
        .next()
        .map_or_else(|| tmp.path().to_owned(), Into::into);
    // The usual config file and HSM_AUDIT_* variables apply (e.g. HSM_AUDIT_SIGNING_KEY_FILE).
    let config = Config {
        output: dir.clone(),
        hsm_instance: "hsm1".into(),
        caller_ip_address: "192.0.2.1".into(),
        ..Config::load().expect("configuration")
    };
    let writer = Writer::spawn(&config).expect("writer");
    let start = Instant::now();
    for i in 0..rows {
        let mut ev = Event::new(
            FunctionId::Sign,
            if i % 100 == 0 { 0xa0 } else { 0 },
            1_763_762_603_000_000_000 + i * 1_000,
            25_000 + i % 977,
        );
        ev.mechanism = Some(0x1041);
        assert!(writer.record(ev), "writer alive");
    }
    assert!(
        writer.flush(Duration::from_secs(600)),
        "writer did not flush"
    );
    let elapsed = start.elapsed();
    let cpu = writer_cpu_seconds();
    drop(writer);
    let bytes: u64 = std::fs::read_dir(&dir)
        .expect("output directory")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "{rows} events in {:.3} s: {:.0} rows/s, {:.1} MB written",
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64(),
        bytes as f64 / 1e6
    );
    // Wall time depends on whatever else the machine runs; the writer thread's own CPU time
    // is what "rows per second on one core" means.
    if let Some(cpu) = cpu {
        println!(
            "writer thread CPU {cpu:.3} s: {:.0} rows per CPU second",
            rows as f64 / cpu
        );
    }
}

/// User + system time of the `hsm-audit-writer` thread, from /proc (Linux only).
fn writer_cpu_seconds() -> Option<f64> {
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let task = task.ok()?.path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        // Thread names are cut to 15 bytes.
        if !"hsm-audit-writer".starts_with(comm.trim()) || comm.trim().len() < 10 {
            continue;
        }
        let stat = std::fs::read_to_string(task.join("stat")).ok()?;
        // Fields after the parenthesised name; utime and stime are the 14th and 15th.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        // SAFETY: sysconf only reads a configuration value.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        return Some(ticks / hz);
    }
    None
}
