//! Rows survive how processes fork and end: fork with and without PKCS#11 in the child,
//! `C_Finalize`, exit without it, and `exit()` from another thread.

use softhsm_tests::*;

#[test]
fn fork_parent_and_initialising_child_each_keep_every_row() {
    let token = Token::default_test();
    let report = run_report(stress(&token).args(["fork", "calls=2000", "busy=1"]));
    let rows = read_rows(&token.out_dir());
    let writers = by_writer(&rows);
    assert_eq!(
        writers.len(),
        2,
        "the parent's writer and the working child's"
    );
    let pid_of = |key: &str| format!("p11-stress (pid {})", report.num(key));
    let child = pid_of("child_pid");
    let idle = pid_of("idle_pid");
    assert!(
        rows.iter().all(|r| r.client_info != idle),
        "idle child wrote rows"
    );
    let files = normalizer::sink::jsonl::row_files(&token.out_dir()).unwrap();
    assert_eq!(files.len(), 2);
    for stream in writers.values() {
        assert_eq!(check_stream(stream), 0);
        let expected = if stream[0].client_info == child {
            report.num("child_calls")
        } else {
            report.num("calls")
        };
        assert_eq!(application_rows(stream) as u64, expected);
    }
}

fn exit_keeps_every_row(mode: &str, durability: &str, calls: u64) {
    let token = Token::default_test();
    // Rows could otherwise reach the file on the timer: with a 10-minute interval only the
    // flush at C_Finalize or exit can have written them.
    let report = run_report(
        stress(&token)
            .args(["exit", &format!("mode={mode}"), &format!("calls={calls}")])
            .env("HSM_AUDIT_FLUSH_INTERVAL_MS", "600000")
            .env("HSM_AUDIT_DURABILITY", durability),
    );
    let rows = read_rows(&token.out_dir());
    for stream in by_writer(&rows).values() {
        assert_eq!(check_stream(stream), 0);
    }
    assert_eq!(
        application_rows(&rows) as u64,
        report.num("calls"),
        "{mode}"
    );
}

#[test]
fn finalize_flushes_every_row() {
    exit_keeps_every_row("finalize", "buffered", 20_000);
}

#[test]
fn exit_without_finalize_flushes_every_row() {
    exit_keeps_every_row("no-finalize", "buffered", 20_000);
}

#[test]
fn exit_from_another_thread_flushes_every_row() {
    exit_keeps_every_row("thread-exit", "buffered", 20_000);
}

#[test]
fn sync_mode_exit_without_finalize_keeps_every_row() {
    // Each call waits for an fdatasync: fewer calls keep the test fast on a slow disk.
    exit_keeps_every_row("no-finalize", "sync", 2_000);
}
