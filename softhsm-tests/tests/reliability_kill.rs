//! `kill -9` in the middle of a load: what is lost in each durability mode.
//!
//! The workload bumps a counter in a shared file mapping after every call that returned; the
//! mapping outlives the killed process, so the test knows how many calls had returned.
//! The measurements in docs/reliability.md come from the ignored tests here:
//! `cargo test --release -p softhsm-tests --test reliability_kill -- --ignored --nocapture`.

use softhsm_tests::*;
use std::io::BufRead;
use std::time::{Duration, Instant};

const THREADS: u64 = 2;

struct Killed {
    /// Calls that had returned when the process died (±1 per thread in flight).
    returned: u64,
    /// Application rows on disk.
    rows: u64,
    /// Unterminated final lines.
    fragments: usize,
    /// How long the load ran before the kill.
    loaded: Duration,
}

fn read_counter(path: &std::path::Path) -> u64 {
    std::fs::read(path)
        .ok()
        .and_then(|b| {
            b.get(..8)
                .map(|b| u64::from_ne_bytes(b.try_into().unwrap()))
        })
        .unwrap_or(0)
}

fn kill_mid_load(durability: &str, after_calls: u64, pause_us: u64) -> Killed {
    let token = Token::default_test();
    let counter = token.path().join("counter");
    let mut child = stress(&token)
        .args([
            "kill",
            &format!("threads={THREADS}"),
            &format!("counter={}", counter.display()),
            &format!("pause_us={pause_us}"),
        ])
        .env("HSM_AUDIT_DURABILITY", durability)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready 1");
    // Not a timing assertion: the deadline only keeps a broken workload from hanging CI.
    let ready = Instant::now();
    let deadline = ready + Duration::from_secs(60);
    while read_counter(&counter) < after_calls && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    let loaded = ready.elapsed();
    child.wait().unwrap();
    let returned = read_counter(&counter);
    let (rows, fragments) = read_rows_after_kill(&token.out_dir());
    for stream in by_writer(&rows).values() {
        check_stream(stream);
    }
    Killed {
        returned,
        rows: application_rows(&rows) as u64,
        fragments,
        loaded,
    }
}

#[test]
fn sync_mode_loses_no_returned_call() {
    let k = kill_mid_load("sync", 500, 0);
    assert!(k.fragments <= 1);
    assert!(
        k.rows >= k.returned,
        "{} calls returned, {} rows",
        k.returned,
        k.rows
    );
}

#[test]
fn buffered_mode_loses_only_unwritten_rows() {
    let k = kill_mid_load("buffered", 100_000, 0);
    assert!(k.fragments <= 1);
    // Rows only ever record calls that were made: at most the calls in flight beyond those
    // that returned.
    assert!(
        k.rows <= k.returned + THREADS,
        "{} rows for {} calls",
        k.rows,
        k.returned
    );
    println!(
        "buffered kill -9: {} calls returned, {} rows, {} lost",
        k.returned,
        k.rows,
        k.returned.saturating_sub(k.rows)
    );
}

fn rounds() -> u64 {
    std::env::var("KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

/// The loss bound of buffered mode: rows lost per `kill -9`, and how many milliseconds of
/// calls that is at the measured call rate.
#[test]
#[ignore = "measurement for docs/reliability.md"]
fn measure_buffered_kill_loss() {
    // Saturated (the writer cannot keep up, the channel is full), then a steady load with a
    // 100 µs pause after each call.
    for (pause_us, after) in [(0, 300_000), (100, 20_000)] {
        for round in 0..rounds() {
            measure_one_kill(pause_us, after + round * after / 3);
        }
    }
}

fn measure_one_kill(pause_us: u64, after: u64) {
    let k = kill_mid_load("buffered", after, pause_us);
    let rate = k.returned as f64 / k.loaded.as_secs_f64();
    let lost = k.returned.saturating_sub(k.rows);
    println!(
        "pause {pause_us} us, killed after {after}: returned {} rows {} lost {lost} (~{:.0} ms of calls at {rate:.0} calls/s), fragments {}",
        k.returned,
        k.rows,
        lost as f64 / rate * 1000.0,
        k.fragments
    );
}

/// The cost of `durability = "sync"`: wall time per call, buffered vs sync.
#[test]
#[ignore = "measurement for docs/reliability.md"]
fn measure_sync_cost() {
    let calls: u64 = std::env::var("SYNC_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    for threads in [1u64, 4] {
        for durability in ["buffered", "sync"] {
            for round in 0..rounds() {
                let token = Token::default_test();
                let started = Instant::now();
                let r = run_report(
                    stress(&token)
                        .args([
                            "threads",
                            &format!("threads={threads}"),
                            &format!("calls={calls}"),
                        ])
                        .env("HSM_AUDIT_DURABILITY", durability),
                );
                let took = started.elapsed();
                let n = r.num("calls");
                println!(
                    "{durability} threads={threads} round {round}: {n} calls in {:.3} s = {:.1} us/call, {:.0} calls/s",
                    took.as_secs_f64(),
                    took.as_secs_f64() * 1e6 / n as f64,
                    n as f64 / took.as_secs_f64()
                );
            }
        }
    }
}
