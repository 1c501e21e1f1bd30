//! `hsm-audit upload` end to end against the local fake service in `support/`.

mod support;

use normalizer::upload::{self, Options, UploadError};
use normalizer::Row;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::{Fake, Fault, DCR, STREAM};

type Id = (String, u64);

/// Appends `n` rows of writer `writer` (sequence numbers from `first`), `step_s` seconds
/// apart from `start_s` (Unix seconds), to `file` in `dir`.
fn append_rows(
    dir: &Path,
    file: &str,
    writer: &str,
    first: u64,
    n: u64,
    start_s: i64,
    step_s: i64,
) -> Vec<Id> {
    let mut text = String::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let t = time::OffsetDateTime::from_unix_timestamp(start_s + i as i64 * step_s).unwrap();
        let mut time_generated = String::new();
        normalizer::transform::format_time(
            u64::try_from(t.unix_timestamp_nanos()).unwrap(),
            &mut time_generated,
        );
        let row = Row {
            time_generated: time_generated.into(),
            operation_name: "HASH_SINGLE_CALL".into(),
            opcode: "".into(),
            hsm_instance: "hsm1".into(),
            member_id: "hsm1".into(),
            cluster_type: "".into(),
            pool_type: "".into(),
            caller_ip_address: "192.0.2.10".into(),
            client_info: "test (pid 1)".into(),
            client_sdk_package_version: "SoftHSM 2.6".into(),
            duration_ms: 3,
            result_type: "Success".into(),
            result_signature: "CKR_OK".into(),
            result_description: "The function was successful".into(),
            source_system: "hsm-audit".into(),
            pkcs11_function: "C_Sign".into(),
            mechanism: "CKM_SHA256_RSA_PKCS".into(),
            user_type: "".into(),
            call_origin: "application".into(),
            duration_us: 3100,
            writer_id: writer.to_owned().into(),
            sequence_no: first + i,
            lost_rows: 0,
            lost_from: "".into(),
            lost_to: "".into(),
            record_type: "call".into(),
            chain_count: 0,
            signature: "".into(),
            prev_hash: "".into(),
            row_hash: "".into(),
        };
        text.push_str(&serde_json::to_string(&row).unwrap());
        text.push('\n');
        ids.push((writer.to_owned(), first + i));
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(file))
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    ids
}

/// Three writers' files, 600 rows over about 100 minutes: many batches by size and by span.
fn three_files(dir: &Path) -> Vec<Id> {
    let t0 = 1_763_762_603; // 2025-11-21T22:03:23Z
    let mut ids = append_rows(
        dir,
        "hsm-audit-2025-11-21-pid11.jsonl",
        "w11",
        1,
        200,
        t0,
        30,
    );
    ids.extend(append_rows(
        dir,
        "hsm-audit-2025-11-21-pid12.jsonl",
        "w12",
        1,
        200,
        t0 + 7,
        30,
    ));
    ids.extend(append_rows(
        dir,
        "hsm-audit-2025-11-21-pid13.jsonl",
        "w13",
        1,
        200,
        t0 + 3000,
        1,
    ));
    ids
}

fn options(fake: &Fake, dir: &Path) -> Options {
    let mut o = Options::new(&fake.url(), DCR, STREAM, dir.to_owned());
    o.limits.max_bytes = 16 * 1024;
    o.retry.base = Duration::from_millis(1);
    o.retry.cap = Duration::from_millis(20);
    o.retry.max_attempts = 20;
    o.timeout = Duration::from_secs(10);
    o.poll_interval = Duration::from_millis(20);
    o
}

fn received(fake: &Fake) -> Vec<Id> {
    fake.with(|s| {
        s.rows
            .iter()
            .map(|r: &Value| {
                (
                    r["WriterId"].as_str().unwrap().to_owned(),
                    r["SequenceNo"].as_u64().unwrap(),
                )
            })
            .collect()
    })
}

fn assert_exactly_once(fake: &Fake, expected: &[Id]) {
    let mut got = received(fake);
    let mut want = expected.to_vec();
    got.sort();
    want.sort();
    assert_eq!(got.len(), want.len(), "rows received vs written");
    assert_eq!(got, want);
    assert_eq!(fake.with(|s| s.violations.clone()), Vec::<String>::new());
}

fn run(
    opts: &Options,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<upload::Summary, UploadError> {
    upload::run(opts, env, &AtomicBool::new(false), &mut Vec::new())
}

#[test]
fn every_row_arrives_once_through_throttling_errors_drops_and_slow_replies() {
    let dir = tempfile::tempdir().unwrap();
    let expected = three_files(dir.path());
    let fake = Fake::start(vec![
        Fault::Throttle(30), // Retry-After far above the cap: the cap keeps the test short.
        Fault::Accept,
        Fault::ServerError,
        Fault::Drop,
        Fault::Slow(Duration::from_millis(150)),
        Fault::Accept,
        Fault::Throttle(0),
        Fault::Status(503),
        Fault::Drop,
        Fault::Drop,
    ]);
    fake.with(|s| s.max_bytes = 16 * 1024);
    let opts = options(&fake, dir.path());
    let summary = run(&opts, &fake.env()).unwrap();
    assert_exactly_once(&fake, &expected);
    assert_eq!(summary.rows, 600);
    assert!(summary.batches >= 8, "{summary:?}");
    // Faulted requests were retried: more requests than batches.
    assert_eq!(
        fake.with(|s| s.ingestion_requests) as u64,
        summary.batches + 7
    );
    // One token served the whole upload.
    assert_eq!(fake.with(|s| s.token_requests), 1);
    // Nothing is left to send.
    let again = run(&opts, &fake.env()).unwrap();
    assert_eq!(again.rows, 0);
    assert_exactly_once(&fake, &expected);
    // A rotated-away file leaves the checkpoint at the next accepted batch.
    let checkpoint = dir
        .path()
        .join(format!(".hsm-audit-upload-{DCR}-{STREAM}.json"));
    let saved = |f: &str| std::fs::read_to_string(&checkpoint).unwrap().contains(f);
    assert!(saved("pid11.jsonl"));
    std::fs::remove_file(dir.path().join("hsm-audit-2025-11-21-pid11.jsonl")).unwrap();
    let more = append_rows(
        dir.path(),
        "hsm-audit-2025-11-22-pid14.jsonl",
        "w14",
        1,
        5,
        1_763_800_000,
        1,
    );
    assert_eq!(run(&opts, &fake.env()).unwrap().rows, 5);
    assert!(!saved("pid11.jsonl") && saved("pid14.jsonl"));
    assert_exactly_once(&fake, &[expected, more].concat());
}

#[test]
fn rerun_after_a_network_cut_sends_each_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let expected = three_files(dir.path());
    let fake = Fake::start(vec![Fault::Accept, Fault::Accept, Fault::Accept]);
    // After three batches the network "goes down" for good.
    fake.with(|s| s.after_script = Some(Fault::Drop));
    let mut opts = options(&fake, dir.path());
    opts.retry.max_attempts = 3;
    let err = run(&opts, &fake.env()).unwrap_err();
    assert!(
        matches!(err, UploadError::GaveUp { attempts: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("rerun to resume"), "{err}");
    let sent_before = received(&fake).len();
    assert!(sent_before > 0 && sent_before < expected.len());
    // The network comes back; the rerun sends the rest and nothing twice.
    fake.with(|s| s.after_script = None);
    run(&opts, &fake.env()).unwrap();
    assert_exactly_once(&fake, &expected);
}

#[test]
fn a_reply_lost_after_acceptance_resends_one_batch_that_ids_deduplicate() {
    let dir = tempfile::tempdir().unwrap();
    let expected = three_files(dir.path());
    let fake = Fake::start(vec![Fault::Accept, Fault::AcceptThenDrop]);
    let opts = options(&fake, dir.path());
    run(&opts, &fake.env()).unwrap();
    let got = received(&fake);
    // The second batch arrived twice: no client can know the service kept it.
    assert!(got.len() > expected.len(), "expected a duplicate batch");
    let mut unique: HashMap<Id, usize> = HashMap::new();
    for id in got {
        *unique.entry(id).or_default() += 1;
    }
    let mut keys: Vec<Id> = unique.keys().cloned().collect();
    let mut want = expected.clone();
    keys.sort();
    want.sort();
    assert_eq!(keys, want, "deduplicated by WriterId + SequenceNo");
    assert_eq!(fake.with(|s| s.violations.clone()), Vec::<String>::new());
}

#[test]
fn follow_uploads_rows_appended_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = append_rows(
        dir.path(),
        "hsm-audit-2025-11-21-pid21.jsonl",
        "w21",
        1,
        50,
        1_763_762_603,
        1,
    );
    let fake = Fake::start(vec![Fault::ServerError]);
    let mut opts = options(&fake, dir.path());
    opts.follow = true;
    opts.retry.max_attempts = 0;
    let stop = AtomicBool::new(false);
    let env = fake.env();
    std::thread::scope(|s| {
        let runner = s.spawn(|| upload::run(&opts, &env, &stop, &mut Vec::new()));
        let wait_for = |n: usize| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while received(&fake).len() < n && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        wait_for(50);
        // The shim keeps appending: more rows in the same file and a new process's file.
        expected.extend(append_rows(
            dir.path(),
            "hsm-audit-2025-11-21-pid21.jsonl",
            "w21",
            51,
            30,
            1_763_762_700,
            1,
        ));
        let later = append_rows(
            dir.path(),
            "hsm-audit-2025-11-21-pid22.jsonl",
            "w22",
            1,
            2,
            1_763_762_800,
            1,
        );
        expected.extend(later);
        wait_for(82);
        stop.store(true, Ordering::Relaxed);
        let summary = runner.join().unwrap().unwrap();
        assert_eq!(summary.rows, 82);
    });
    assert_exactly_once(&fake, &expected);
}

#[test]
fn forbidden_and_too_large_stop_with_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    three_files(dir.path());
    let fake = Fake::start(vec![Fault::Status(403)]);
    let opts = options(&fake, dir.path());
    let e = run(&opts, &fake.env()).unwrap_err();
    assert!(matches!(e, UploadError::Rejected { status: 403, .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("Monitoring Metrics Publisher") && msg.contains(DCR),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
    assert_eq!(fake.with(|s| s.ingestion_requests), 1, "403 is not retried");

    // A client allowed bigger batches than the service takes gets a 413 naming the size.
    let fake = Fake::start(vec![]);
    fake.with(|s| s.max_bytes = 8 * 1024);
    let e = run(&options(&fake, dir.path()), &fake.env()).unwrap_err();
    assert!(matches!(e, UploadError::Rejected { status: 413, .. }));
    assert!(e.to_string().contains("too large"), "{e}");
    assert!(received(&fake).is_empty());
}

#[test]
fn dry_run_lists_batches_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    three_files(dir.path());
    let fake = Fake::start(vec![]);
    let mut opts = options(&fake, dir.path());
    opts.dry_run = true;
    let mut out = Vec::new();
    let summary = upload::run(&opts, &|_| None, &AtomicBool::new(false), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count() as u64, summary.batches);
    assert!(text.starts_with("batch 1: "), "{text}");
    assert!(text.contains("bytes gzip") && text.contains("hsm-audit-2025-11-21-pid11.jsonl[0.."));
    assert_eq!(summary.rows, 600);
    assert_eq!(fake.with(|s| s.ingestion_requests + s.token_requests), 0);
    // A dry run leaves no checkpoint behind: the real upload still sends everything.
    assert_eq!(
        run(&options(&fake, dir.path()), &fake.env()).unwrap().rows,
        600
    );
}

#[test]
fn managed_identity_tokens_are_used_and_renewed_when_refused() {
    let dir = tempfile::tempdir().unwrap();
    let expected = append_rows(
        dir.path(),
        "hsm-audit-2025-11-21-pid31.jsonl",
        "w31",
        1,
        10,
        1_763_762_603,
        1,
    );
    // The service refuses the first token once: the uploader fetches a fresh one and resends.
    let fake = Fake::start(vec![Fault::Status(401)]);
    run(&options(&fake, dir.path()), &fake.managed_identity_env()).unwrap();
    assert_exactly_once(&fake, &expected);
    assert_eq!(fake.with(|s| s.token_requests), 2);
}

#[test]
fn the_command_line_uploads_and_explains_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let expected = append_rows(
        dir.path(),
        "hsm-audit-2025-11-21-pid41.jsonl",
        "w41",
        1,
        20,
        1_763_762_603,
        1,
    );
    let fake = Fake::start(vec![Fault::Throttle(0)]);
    let bin = env!("CARGO_BIN_EXE_hsm-audit");
    let cmd = |endpoint: &str| {
        let mut c = std::process::Command::new(bin);
        c.args(["upload", "--endpoint", endpoint, "--dcr", DCR])
            .arg(dir.path())
            .env_clear()
            .env("AZURE_TENANT_ID", support::TENANT)
            .env("AZURE_CLIENT_ID", support::CLIENT_ID)
            .env("AZURE_CLIENT_SECRET", support::CLIENT_SECRET)
            .env("AZURE_AUTHORITY_HOST", fake.url());
        c
    };
    let out = cmd(&fake.url()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("sent 20 rows in 1 batches"), "{stderr}");
    assert_exactly_once(&fake, &expected);

    let out = cmd("http://192.0.2.1:9").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("must use https"), "{stderr}");
}
