//! Concurrency: threads calling `C_GenerateRandom`, `C_DigestInit` and `C_Digest` on their
//! own sessions through the shim. Every call is one row: per-function row counts equal call
//! counts, SequenceNo is gapless and unique. Each calling thread has its own lane to the
//! writer, so threads that come and go (waves) must lose nothing either.

use softhsm_tests::client::{run_client, Target};
use softhsm_tests::rows::assert_one_gapless_writer;
use softhsm_tests::{read_rows, Token};
use std::collections::BTreeMap;

/// Runs the `threads` workload and checks that its rows are exactly its calls.
fn every_call_is_one_row(threads: usize, iterations: usize, waves: usize) {
    let token = Token::canary();
    let args = [threads, iterations, waves].map(|n| n.to_string());
    let transcript = run_client(
        &token,
        Target::Shim,
        &["threads", &args[0], &args[1], &args[2]],
    );
    assert!(transcript.contains("failed calls 0\n"), "{transcript}");
    let mut expected: BTreeMap<String, usize> = transcript
        .lines()
        .filter_map(|l| l.strip_prefix("count "))
        .map(|l| {
            let (f, n) = l.split_once(' ').expect("count line");
            (f.to_owned(), n.parse().expect("count"))
        })
        .collect();
    assert_eq!(expected["C_Digest"], threads * iterations * waves);
    assert_eq!(expected["C_OpenSession"], threads * waves);

    let rows = read_rows(&token.out_dir());
    assert_one_gapless_writer(&rows);
    let mut counted: BTreeMap<String, usize> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.call_origin == "application") {
        assert!(row.succeeded(), "{row:?}");
        *counted.entry(row.pkcs11_function.to_string()).or_default() += 1;
    }
    // Plus the shim's own C_GetInfo after C_Initialize.
    let own: Vec<_> = rows.iter().filter(|r| r.call_origin == "shim").collect();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].pkcs11_function, "C_GetInfo");
    expected.retain(|_, n| *n > 0);
    assert_eq!(counted, expected);
}

#[test]
fn every_call_from_every_thread_is_one_row() {
    every_call_is_one_row(4, 5000, 1);
}

#[test]
fn threads_that_come_and_go_lose_no_row() {
    // 12 waves of 16 short-lived threads: 192 lanes opened, drained and closed.
    every_call_is_one_row(16, 100, 12);
}
