//! When rows cannot be written (fail-open and fail-closed), and bad configurations.
//!
//! Tests run as root, so a read-only directory would not stop the writer: the shim's own row
//! file is made a symlink to /dev/full (every write fails with ENOSPC), or the output
//! directory is removed, or a regular file stands where the directory should be.

use softhsm_tests::*;
use std::process::Command;

fn sabotage(policy: &str, mode: &str) -> (Token, Report) {
    let token = Token::default_test();
    let report = run_report(
        stress(&token)
            .args(["sabotage", &format!("mode={mode}"), "calls=50"])
            .env("HSM_AUDIT_ON_WRITE_FAILURE", policy)
            // Rows are written only at the scenario's explicit flushes, so exactly two writes
            // fail (the ends of the `before` and `broken` phases).
            .env("HSM_AUDIT_FLUSH_INTERVAL_MS", "600000"),
    );
    (token, report)
}

/// The one writer's rows, checked; returns them and the rows its gap rows report lost.
fn one_stream(token: &Token) -> (Vec<normalizer::Row<'static>>, u64) {
    let rows = read_rows(&token.out_dir());
    let writers = by_writer(&rows);
    assert_eq!(writers.len(), 1);
    let lost = check_stream(&rows);
    (rows, lost)
}

/// Rows lost that were not calls: the two failed writes each lost a checkpoint, and the
/// second also the gap row reporting the first.
const LOST_NON_CALL_ROWS: u64 = 3;

fn gap_rows<'a>(rows: &'a [normalizer::Row<'static>]) -> Vec<&'a normalizer::Row<'static>> {
    rows.iter()
        .filter(|r| r.operation_name == normalizer::transform::GAP_OPERATION)
        .collect()
}

#[test]
fn fail_open_calls_proceed_and_a_gap_row_counts_the_loss() {
    let (token, report) = sabotage("fail-open", "devfull");
    for phase in ["before", "broken", "after"] {
        assert_eq!(report.num(&format!("{phase}_ok")), 50, "{phase}");
    }
    assert_eq!(report.num("recovery_attempts"), 1);
    assert!(report
        .stderr
        .contains("cannot write audit rows (config `output`)"));
    let (rows, lost) = one_stream(&token);
    assert!(lost > 0);
    assert_eq!(lost, report.num("lost_events"));
    let gaps = gap_rows(&rows);
    assert_eq!(gaps.len(), 1);
    assert!(!gaps[0].lost_from.is_empty() && gaps[0].lost_from <= gaps[0].lost_to);
    // Every call is either a row or counted in the gap row.
    assert_eq!(
        application_rows(&rows) as u64 + lost,
        report.num("calls") + 1 + LOST_NON_CALL_ROWS
    );
}

#[test]
fn fail_closed_refuses_calls_before_the_hsm_until_rows_can_be_written() {
    let (token, report) = sabotage("fail-closed", "devfull");
    // The first phase ran before any write had failed; after that, refusals.
    assert_eq!(report.num("before_ok"), 50);
    assert_eq!(report.num("broken_refused"), 50);
    assert_eq!(report.num("broken_ok"), 0);
    assert!(
        report.num("recovery_attempts") > 1,
        "first calls after repair are refused"
    );
    assert_eq!(report.num("after_ok"), 50);
    // No refused C_OpenSession reached SoftHSM: its session handles stayed consecutive.
    assert_eq!(
        report.num("highest_session_handle"),
        report.num("sessions_opened")
    );
    let (rows, lost) = one_stream(&token);
    assert_eq!(lost, report.num("lost_events"));
    assert_eq!(gap_rows(&rows).len(), 1);
    let refused: Vec<_> = rows.iter().filter(|r| r.call_origin == "refused").collect();
    assert!(
        !refused.is_empty(),
        "the refusal that revived writing is recorded"
    );
    assert!(refused
        .iter()
        .all(|r| r.result_signature == "CKR_FUNCTION_FAILED"));
    assert_eq!(
        application_rows(&rows) as u64 + lost,
        report.num("calls") + 1 + LOST_NON_CALL_ROWS
    );
}

#[test]
fn removed_output_directory_is_recreated_without_loss() {
    for policy in ["fail-open", "fail-closed"] {
        let (token, report) = sabotage(policy, "rmdir");
        assert_eq!(report.num("broken_ok"), 50, "{policy}");
        assert_eq!(report.num("lost_events"), 0, "{policy}");
        let rows = read_rows(&token.out_dir());
        assert!(gap_rows(&rows).is_empty());
        // The rows written before the removal went with the directory; all later ones are
        // in the new one.
        let opens = rows
            .iter()
            .filter(|r| r.pkcs11_function == "C_OpenSession")
            .count();
        assert_eq!(opens, 100, "{policy}");
    }
}

/// Runs `p11-stress init` against the shim with `env` changes; returns its report.
fn init_with(token: &Token, configure: impl FnOnce(&mut Command)) -> Report {
    let mut cmd = stress(token);
    cmd.arg("init");
    configure(&mut cmd);
    run_report(&mut cmd)
}

/// One diagnostic line naming `key`; `C_Initialize` (or the load) failed with an error code.
fn assert_refused_with_line(report: &Report, key: &str) {
    let lines: Vec<&str> = report
        .stderr
        .lines()
        .filter(|l| l.contains("hsm-audit:"))
        .collect();
    assert_eq!(lines.len(), 1, "one line expected: {}", report.stderr);
    assert!(lines[0].contains(key), "{key} not named: {}", lines[0]);
    let failed = match report.values.get("load").map(String::as_str) {
        Some("ok") => {
            report.values["initialize"] == format!("{:#x}", cryptoki_sys::CKR_GENERAL_ERROR)
        }
        Some(load_error) => load_error.contains(&format!("{:#x}", cryptoki_sys::CKR_GENERAL_ERROR)),
        None => false,
    };
    assert!(failed, "expected CKR_GENERAL_ERROR: {:?}", report.values);
}

#[test]
fn bad_configurations_give_one_line_and_an_error_code() {
    let token = Token::default_test();
    let text_file = token.path().join("not-a-module.so");
    std::fs::write(&text_file, "this is text\n").unwrap();
    let vendors = [
        "/lib/x86_64-linux-gnu/libc.so.6".into(),
        text_file.display().to_string(),
        "/nonexistent/libvendor.so".into(),
        shim_path().display().to_string(),
    ];
    for vendor in &vendors {
        let r = init_with(&token, |c| {
            c.env("HSM_AUDIT_MODULE", vendor);
        });
        assert_refused_with_line(&r, "`module`");
    }
    let r = init_with(&token, |c| {
        c.env_remove("HSM_AUDIT_MODULE");
    });
    assert_refused_with_line(&r, "`module`");

    let unknown = token.path().join("unknown.toml");
    std::fs::write(&unknown, "modul = \"/x.so\"\n").unwrap();
    let r = init_with(&token, |c| {
        c.env("HSM_AUDIT_CONFIG", &unknown);
    });
    assert_refused_with_line(&r, "unknown field `modul`");

    // Root can read any file: a directory is what reliably cannot be read as one.
    let r = init_with(&token, |c| {
        c.env("HSM_AUDIT_CONFIG", token.path());
    });
    assert_refused_with_line(&r, "cannot read config file");
    let r = init_with(&token, |c| {
        c.env("HSM_AUDIT_CONFIG", token.path().join("missing.toml"));
    });
    assert_refused_with_line(&r, "missing.toml");

    let r = init_with(&token, |c| {
        c.env("HSM_AUDIT_ON_WRITE_FAILURE", "sometimes");
    });
    assert_refused_with_line(&r, "HSM_AUDIT_ON_WRITE_FAILURE");

    // A regular file where the output directory should be: it cannot be created.
    let blocker = token.path().join("blocked");
    std::fs::write(&blocker, "").unwrap();
    for policy in ["fail-open", "fail-closed"] {
        let r = init_with(&token, |c| {
            c.env("HSM_AUDIT_OUTPUT", blocker.join("out"))
                .env("HSM_AUDIT_ON_WRITE_FAILURE", policy);
        });
        assert_refused_with_line(&r, "`output`");
    }
}
