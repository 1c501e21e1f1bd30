//! Concurrency: 4 threads × 5000 rounds of `C_GenerateRandom`, `C_DigestInit`, `C_Digest`
//! on their own sessions through the shim. Every call is one row: per-function row counts
//! equal call counts, SequenceNo is gapless and unique.

use softhsm_tests::client::{run_client, Target};
use softhsm_tests::rows::assert_one_gapless_writer;
use softhsm_tests::{read_rows, Token};
use std::collections::BTreeMap;

#[test]
fn every_call_from_every_thread_is_one_row() {
    let token = Token::canary();
    let transcript = run_client(&token, Target::Shim, &["threads", "4", "5000"]);
    assert!(transcript.contains("failed calls 0\n"), "{transcript}");
    let mut expected: BTreeMap<String, usize> = transcript
        .lines()
        .filter_map(|l| l.strip_prefix("count "))
        .map(|l| {
            let (f, n) = l.split_once(' ').expect("count line");
            (f.to_owned(), n.parse().expect("count"))
        })
        .collect();
    assert_eq!(expected["C_Digest"], 20_000);

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
