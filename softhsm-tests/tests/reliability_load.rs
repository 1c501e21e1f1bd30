//! Nothing lost, nothing duplicated under load: threads, many processes sharing one output
//! directory, and a module unloaded and reloaded 100 times.
//!
//! `STRESS_CALLS` sets the calls per thread of the threads test (default 100 000; the
//! figures in docs/reliability.md use 1 000 000).

use softhsm_tests::*;

fn stress_calls(default: u64) -> u64 {
    std::env::var("STRESS_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn two_threads_every_call_one_row_gapless() {
    let token = Token::default_test();
    let n = stress_calls(100_000);
    let report = run_report(stress(&token).args(["threads", "threads=2", &format!("calls={n}")]));
    let rows = read_rows(&token.out_dir());
    let writers = by_writer(&rows);
    assert_eq!(writers.len(), 1);
    for stream in writers.values() {
        assert_eq!(check_stream(stream), 0, "no row may be missing");
    }
    assert_eq!(application_rows(&rows) as u64, report.num("calls"));
    assert_eq!(report.num("calls"), 2 * n + 3);
}

#[test]
fn many_processes_share_one_directory() {
    let token = Token::default_test();
    let children: Vec<_> = (0..8)
        .map(|_| {
            stress(&token)
                .args(["threads", "threads=2", "calls=5000"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut expected = std::collections::HashMap::new();
    for child in children {
        let pid = child.id();
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let calls: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .strip_prefix("calls ")
            .and_then(|n| n.parse().ok())
            .expect("calls line");
        expected.insert(format!("p11-stress (pid {pid})"), calls);
    }
    // read_rows parses every line: a partial or interleaved line fails here.
    let rows = read_rows(&token.out_dir());
    let writers = by_writer(&rows);
    assert_eq!(writers.len(), 8);
    for stream in writers.values() {
        assert_eq!(check_stream(stream), 0);
        let client = stream[0].client_info.to_string();
        assert!(stream.iter().all(|r| r.client_info == client));
        assert_eq!(
            Some(&(application_rows(stream) as u64)),
            expected.get(&client)
        );
    }
}

#[test]
fn unload_and_reload_100_times() {
    let token = Token::default_test();
    let report = run_report(stress(&token).args(["reload", "cycles=100", "calls=10"]));
    // One writer thread for the process, started once, whatever the number of dlopens.
    assert_eq!(report.num("threads_max"), report.num("threads_first"));
    assert_eq!(report.num("threads_last"), report.num("threads_first"));
    let rows = read_rows(&token.out_dir());
    for stream in by_writer(&rows).values() {
        assert_eq!(check_stream(stream), 0);
    }
    assert_eq!(application_rows(&rows) as u64, report.num("calls"));
}
