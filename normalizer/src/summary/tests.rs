use super::*;
use std::io::Cursor;

/// A row of `function` recorded as `op`, at second `sec` of a fixed minute.
fn row(op: &str, function: &str, ok: bool, sec: u32, duration_us: u64) -> Row<'static> {
    Row {
        time_generated: format!("2026-11-21T22:03:{sec:02}.000000Z").into(),
        operation_name: op.to_owned().into(),
        opcode: "".into(),
        hsm_instance: "hsm1".into(),
        member_id: "hsm1".into(),
        duration_ms: duration_us / 1000,
        result_type: if ok { "Success" } else { "Failure" }.into(),
        result_signature: if ok { "CKR_OK" } else { "CKR_PIN_INCORRECT" }.into(),
        result_description: "".into(),
        pkcs11_function: function.to_owned().into(),
        user_type: "".into(),
        duration_us,
        writer_id: "w1".into(),
        sequence_no: 1,
        ..crate::row::sample()
    }
}

fn login(ok: bool, sec: u32) -> Row<'static> {
    row("CN_LOGIN", "C_Login", ok, sec, 100)
}

fn answer<'s>(s: &'s Summary, title: &str) -> &'s Answer {
    s.answers.iter().find(|a| a.query.title == title).unwrap()
}

fn recent_times(a: &Answer) -> Vec<&str> {
    a.recent.sorted().iter().map(|p| p.time.as_str()).collect()
}

fn jsonl(rows: &[Row<'_>]) -> String {
    rows.iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect()
}

#[test]
fn queries_are_the_seeds_four_and_name_catalog_operations() {
    assert_eq!(QUERIES.len(), 4);
    let mut all: Vec<&str> = QUERIES.iter().flat_map(|q| q.operations).copied().collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "an operation is in two queries");
    // Every name is one the catalog records, except CN_DELETE_USER (no PKCS#11 function).
    for op in all {
        let recorded = crate::catalog::CATALOG.iter().any(|o| o.name == op);
        assert_eq!(recorded, op != "CN_DELETE_USER", "{op}");
    }
}

#[test]
fn counts_each_query_by_operation_and_result_type() {
    let s = Summary::from_rows(
        TOP_N,
        [
            login(true, 1),
            login(true, 2),
            login(false, 3),
            row("CN_AUTHORIZE_SESSION", "C_OpenSession", true, 4, 10),
            row("CN_CREATE_USER", "C_InitPIN", true, 5, 10),
            row("CN_GENERATE_KEY_PAIR", "C_GenerateKeyPair", true, 6, 10),
            row("CN_TOMBSTONE_OBJECT", "C_DestroyObject", false, 7, 10),
            row("HASH_SINGLE_CALL", "C_Sign", true, 8, 10),
        ],
    );
    assert_eq!(s.rows(), 8);

    let logins = answer(&s, "Login and session events");
    assert_eq!(logins.matched, 4);
    assert_eq!(logins.counts[0].get("Success"), Some(&2));
    assert_eq!(logins.counts[0].get("Failure"), Some(&1));
    assert_eq!(logins.counts[1].get("Success"), Some(&1));

    let users = answer(&s, "Create and delete user events");
    assert_eq!((users.matched, users.counts[1].len()), (1, 0));
    assert_eq!(
        answer(&s, "Key creation events").counts[1].get("Success"),
        Some(&1)
    );
    let deletes = answer(&s, "Key deletion events");
    assert_eq!(deletes.counts[0].get("Failure"), Some(&1));
    // C_Sign belongs to no query.
    assert_eq!(s.answers.iter().map(|a| a.matched).sum::<u64>(), 7);
}

#[test]
fn recent_rows_are_bounded_newest_first_by_parsed_time() {
    let mut rows: Vec<Row> = [3, 9, 1, 7, 5]
        .into_iter()
        .map(|s| login(true, s))
        .collect();
    // Same instant as second 7, written with an offset: parsed, not compared as text.
    rows.push(Row {
        time_generated: "2026-11-21T23:03:08+01:00".into(),
        ..login(true, 0)
    });
    let s = Summary::from_rows(3, rows);
    let a = answer(&s, "Login and session events");
    assert_eq!(a.matched, 6);
    assert_eq!(
        recent_times(a),
        [
            "2026-11-21T22:03:09.000000Z",
            "2026-11-21T23:03:08+01:00",
            "2026-11-21T22:03:07.000000Z"
        ]
    );
}

#[test]
fn header_counts_writers_time_range_and_unparsable_times() {
    let mut late = login(true, 50);
    late.writer_id = "w2".into();
    let bad = Row {
        time_generated: "yesterday".into(),
        ..login(true, 0)
    };
    let s = Summary::from_rows(TOP_N, [login(true, 20), late, bad, login(true, 10)]);
    assert_eq!(s.writers.len(), 2);
    assert_eq!(s.bad_times, 1);
    assert_eq!(
        s.earliest.as_ref().unwrap().1,
        "2026-11-21T22:03:10.000000Z"
    );
    assert_eq!(s.latest.as_ref().unwrap().1, "2026-11-21T22:03:50.000000Z");
    // The unparsable row sorts as oldest, so it is dropped first from "recent".
    let s3 = Summary::from_rows(
        3,
        [
            Row {
                time_generated: "yesterday".into(),
                ..login(true, 0)
            },
            login(true, 1),
            login(true, 2),
            login(true, 3),
        ],
    );
    assert!(!recent_times(answer(&s3, "Login and session events")).contains(&"yesterday"));
}

#[test]
fn failures_are_counted_by_function_and_signature() {
    let mut locked = login(false, 4);
    locked.result_signature = "CKR_PIN_LOCKED".into();
    let s = Summary::from_rows(
        TOP_N,
        [
            login(false, 1),
            login(false, 2),
            locked,
            login(true, 3),
            row("P11_ENCRYPT", "C_Encrypt", false, 5, 1),
        ],
    );
    assert_eq!(s.failed, 4);
    assert_eq!(s.failures["C_Login"]["CKR_PIN_INCORRECT"], 2);
    assert_eq!(s.failures["C_Login"]["CKR_PIN_LOCKED"], 1);
    assert_eq!(s.failures["C_Encrypt"]["CKR_PIN_INCORRECT"], 1);
    assert_eq!(s.failures.len(), 2);
}

#[test]
fn slowest_keeps_top_durations_and_counts_over_threshold() {
    let durations = [500, 2_500_000, 40, 1_000_000, 1_000_001, 900_000];
    let rows = durations
        .iter()
        .enumerate()
        .map(|(i, &d)| row("P11_ENCRYPT", "C_Encrypt", true, i as u32, d));
    let s = Summary::from_rows(3, rows);
    let top: Vec<u64> = s.slowest.sorted().iter().map(|c| c.duration_us).collect();
    assert_eq!(top, [2_500_000, 1_000_001, 1_000_000]);
    // Seed 000's threshold is "> 1000 ms": exactly 1 s is not over it.
    assert_eq!(s.slow_calls, 2);
}

#[test]
fn lines_that_are_not_rows_are_counted_with_their_location() {
    let good = jsonl(&[login(true, 1)]);
    let mut input = good.clone().into_bytes();
    input.extend_from_slice(b"not json\n");
    input.extend_from_slice(b"{\"TimeGenerated\":\"x\"}\n");
    input.extend_from_slice(b"\xff\xfe\n");
    input.extend_from_slice(good.as_bytes());
    // A torn last line, as a crash mid-write would leave.
    input.extend_from_slice(&good.as_bytes()[..20]);

    let mut s = Summary::new(TOP_N);
    s.add_lines("f.jsonl", Cursor::new(input));
    assert_eq!(s.rows(), 2);
    assert_eq!(s.skipped.lines, 4);
    assert_eq!(s.skipped.files, 0);
    let q = &s.skipped.quoted;
    assert!(q[0].starts_with("f.jsonl:2:2: expected ident"), "{q:?}");
    assert!(
        q[1].starts_with("f.jsonl:3:") && q[1].contains("missing field"),
        "{q:?}"
    );
    assert_eq!(q[2], "f.jsonl:4: not UTF-8");
    assert!(q[3].starts_with("f.jsonl:6:"), "{q:?}");
    assert!(
        !q[0].contains(" at line "),
        "position given once, as file:line:column"
    );
}

#[test]
fn a_read_error_ends_the_file_and_is_reported() {
    struct Failing;
    impl io::Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }
    let good = jsonl(&[login(true, 1)]);
    let mut s = Summary::new(TOP_N);
    s.add_lines(
        "f",
        BufReader::new(io::Read::chain(Cursor::new(good), Failing)),
    );
    assert_eq!((s.rows(), s.skipped.lines, s.skipped.files), (1, 0, 1));
    assert_eq!(s.skipped.quoted, ["f:2: cannot read: disk on fire"]);
    assert!(s.render().contains("Skipped 1 unreadable file; first:"));
}

#[test]
fn only_the_first_few_skipped_lines_are_quoted() {
    let mut s = Summary::new(TOP_N);
    s.add_lines("f", Cursor::new("x\n".repeat(MAX_QUOTED + 3)));
    assert_eq!(s.skipped.lines as usize, MAX_QUOTED + 3);
    assert_eq!(s.skipped.quoted.len(), MAX_QUOTED);
    let text = s.render();
    assert!(
        text.contains("Skipped 8 lines that are not rows; first:"),
        "{text}"
    );
    assert!(text.contains("… and 3 more"), "{text}");
}

#[test]
fn missing_or_empty_directories_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = summarize_dir(&missing, TOP_N).err().unwrap();
    assert!(matches!(err, Error::ReadDir { .. }));
    assert!(err.to_string().contains("nope"), "{err}");

    std::fs::write(dir.path().join("other.jsonl"), jsonl(&[login(true, 1)])).unwrap();
    let err = summarize_dir(dir.path(), TOP_N).err().unwrap();
    assert!(matches!(err, Error::NoFiles(_)), "{err}");
    assert!(err
        .to_string()
        .starts_with("no hsm-audit-*.jsonl row files in"));
}

#[test]
fn summarizes_a_directory_and_renders_every_section() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("hsm-audit-2026-11-21-pid1.jsonl");
    let b = dir.path().join("hsm-audit-2026-11-21-pid2.jsonl");
    let mut slow = row("CN_GENERATE_KEY", "C_GenerateKey", true, 30, 1_234_567);
    slow.mechanism = "CKM_AES_KEY_GEN".into();
    std::fs::write(&a, jsonl(&[login(true, 10), login(false, 20)])).unwrap();
    std::fs::write(&b, jsonl(&[slow]) + "garbage\n").unwrap();

    let s = summarize_dir(dir.path(), TOP_N).unwrap();
    assert_eq!((s.files, s.rows()), (2, 3));
    let text = s.render();
    for want in [
        "hsm-audit summary: 3 rows in 2 files, 1 writer (distinct WriterId)",
        "TimeGenerated from 2026-11-21T22:03:10.000000Z to 2026-11-21T22:03:30.000000Z",
        &format!("{}:2:1: expected value", b.display()),
        "(1) Login and session events, seed 003 \"Find Login and Session Events\": 2 rows",
        "where OperationName in (\"CN_LOGIN\", \"CN_AUTHORIZE_SESSION\")",
        "(no PKCS#11 call is recorded as CN_DELETE_USER",
        "where OperationName == \"CN_TOMBSTONE_OBJECT\"",
        "(5) Failures",
        "CKR_PIN_INCORRECT",
        "1 call over 1000 ms",
        "CKM_AES_KEY_GEN",
        "1234.567",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // Newest first in the login section.
    let login_section = &text[text.find("(1)").unwrap()..text.find("(2)").unwrap()];
    let newer = login_section.find("22:03:20").unwrap();
    let older = login_section.find("22:03:10").unwrap();
    assert!(newer < older, "{login_section}");
}

#[test]
fn no_rows_renders_only_the_header() {
    let mut s = Summary::new(TOP_N);
    s.files = 1;
    s.add_lines("f", Cursor::new("oops\n"));
    let text = s.render();
    assert!(text.starts_with("hsm-audit summary: 0 rows in 1 file, 0 writers"));
    assert!(
        text.contains("Skipped 1 line that is not a row; first:\n  f:1:1: expected value"),
        "{text}"
    );
    assert!(!text.contains("(1)"));
}

#[test]
fn checkpoints_are_counted_apart_from_calls() {
    let checkpoint = Row {
        operation_name: "HSM_AUDIT_CHECKPOINT".into(),
        record_type: "checkpoint".into(),
        ..login(true, 5)
    };
    let s = Summary::from_rows(10, [login(true, 1), checkpoint, login(false, 2)]);
    assert_eq!(s.rows(), 2);
    assert_eq!(answer(&s, "Login and session events").matched, 2);
    assert!(
        s.render().contains("plus 1 record not summarised"),
        "{}",
        s.render()
    );
}

#[test]
fn lost_rows_reported_by_gap_rows_are_warned_about() {
    let gap = Row {
        operation_name: "HSM_AUDIT_GAP".into(),
        record_type: "gap".into(),
        lost_rows: 7,
        ..login(false, 6)
    };
    let s = Summary::from_rows(10, [login(true, 1), gap]);
    assert_eq!(s.rows(), 1);
    assert!(
        s.render().contains("reported 7 rows lost"),
        "{}",
        s.render()
    );
}
