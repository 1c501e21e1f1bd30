//! Secrets: PINs (user and SO), token and object labels, CKA_ID, data and the imported key's
//! value are canaries; none appears in anything the shim writes (rows and its debug
//! diagnostic log, their contents and their file names), raw, hex, base64 or escaped
//! ([`canary::forms`]). No session or object handle appears as a row value. Beside the
//! fixed canaries, random ones: a few random seeds per run (`HSM_AUDIT_TEST_CANARY_CASES`, default 6), or exactly one with
//! `HSM_AUDIT_TEST_CANARY_SEED` to reproduce a failure.

use normalizer::row::COLUMNS;
use softhsm_tests::canary::{self, assert_no_canary, Canaries};
use softhsm_tests::client::Target;
use softhsm_tests::transcript::{calls, handles};
use softhsm_tests::Token;

/// Runs `workload` through the shim with the debug log in the output directory; returns
/// the token (whose output directory holds everything written) and the transcript.
fn run_logged(workload: &str) -> (Token, String) {
    run_logged_on(Token::canary(), workload)
}

/// [`run_logged`] on a given token (fixed or random canaries).
fn run_logged_on(token: Token, workload: &str) -> (Token, String) {
    let log = token.out_dir().join("shim.log");
    let out = token
        .command(softhsm_tests::bin_path("p11-client"))
        .arg(Target::Shim.module())
        .arg(workload)
        .env("HSM_AUDIT_LOG_FILE", &log)
        .env("HSM_AUDIT_LOG_LEVEL", "debug")
        .output()
        .expect("run p11-client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log_text = std::fs::read_to_string(&log).expect("the diagnostic log was written");
    assert!(
        log_text.contains("loaded vendor module"),
        "debug log too quiet: {log_text}"
    );
    (token, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// No handle is a string value of a row, and the only numbers are the counters.
fn assert_no_handles(token: &Token, transcript: &str) {
    let handles = handles(transcript);
    assert!(
        handles.len() >= 10,
        "the client printed its handles: {handles:?}"
    );
    let as_text: Vec<String> = handles
        .iter()
        .flat_map(|h| {
            [
                h.to_string(),
                format!("{h:#x}"),
                format!("{h:#X}"),
                format!("{h:x}"),
            ]
        })
        .collect();
    let numeric = [
        "DurationMs",
        "DurationUs",
        "SequenceNo",
        "LostRows",
        "ChainCount",
    ];
    let passed: Vec<String> = calls(transcript)
        .into_iter()
        .flat_map(|c| c.mechanism.into_iter().chain(c.user))
        .collect();
    let opcodes: Vec<&str> = normalizer::catalog::CATALOG
        .iter()
        .map(|op| op.opcode)
        .collect();
    let mut rows = 0;
    for file in normalizer::sink::jsonl::row_files(&token.out_dir()).unwrap() {
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            rows += 1;
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let object = value.as_object().expect("a row is an object");
            assert_eq!(object.len(), COLUMNS.len(), "{line}");
            for (key, v) in object {
                match v {
                    // Counters and durations, which may coincide with small handle values.
                    serde_json::Value::Number(_) => {
                        assert!(numeric.contains(&key.as_str()), "{key} in {line}")
                    }
                    // Opcodes come from the catalog's fixed set (and "0xd" is also 13 in hex).
                    serde_json::Value::String(s) if key == "Opcode" => {
                        assert!(opcodes.contains(&s.as_str()), "{key} in {line}")
                    }
                    // Mechanism and UserType carry only what the client passed as one (an
                    // invalid user type 7 reads "0x7", like handle 7 in hex).
                    serde_json::Value::String(s) if key == "Mechanism" || key == "UserType" => {
                        assert!(s.is_empty() || passed.contains(s), "{key} {s} in {line}")
                    }
                    serde_json::Value::String(s) => {
                        assert!(!as_text.contains(s), "handle {s} as {key} in {line}")
                    }
                    other => panic!("{key} is {other} in {line}"),
                }
            }
        }
    }
    assert!(rows > 50, "only {rows} rows");
}

#[test]
fn raw_workload_leaks_no_secret_and_no_handle() {
    let (token, transcript) = run_logged("raw");
    assert_no_canary(&token, &Canaries::FIXED);
    assert_no_handles(&token, &transcript);
}

#[test]
fn cryptoki_workload_leaks_no_secret() {
    let (token, _) = run_logged("cryptoki");
    assert_no_canary(&token, &Canaries::FIXED);
}

/// Random canaries (PINs, token and object labels, CKA_ID, values, data, key, seed) through
/// the broad raw workload, every function family, a fresh set per seed.
#[test]
fn random_canaries_leak_nowhere() {
    let seeds = canary::seeds(6);
    eprintln!("canary seeds: {seeds:?}");
    // Every seed through the raw workload, the first also through `cryptoki`.
    let cases = seeds.iter().map(|&s| (s, "raw"));
    for (seed, workload) in cases.chain(seeds.first().map(|&s| (s, "cryptoki"))) {
        let outcome = std::panic::catch_unwind(|| {
            let (token, _) = run_logged_on(Token::random_canary(seed), workload);
            assert_no_canary(&token, &Canaries::from_seed(seed));
        });
        if outcome.is_err() {
            panic!(
                "the {workload} workload with random canaries failed for seed {seed}; \
                 reproduce with {}={seed} cargo test -p softhsm-tests --test secrets \
                 random_canaries",
                canary::SEED_ENV
            );
        }
    }
}
