//! Interface negotiation over a PKCS#11 3.0 vendor: the mock module in
//! `softhsm-tests/mock-v3/` (SoftHSM2 plus a "PKCS 11" 3.0, a "PKCS 11" 2.40 and a "Vendor
//! MOCK" interface). The `interfaces-v3` workload runs directly on the mock and through the
//! shim in front of it: both must print [`EXPECTED`], where each interface's table is the
//! vendor's own (`table vendor`: the pointer the mock hands out when asked directly) or not
//! (`table other`). Directly every table is the vendor's. Through the shim the two "PKCS 11"
//! tables are the shim's (so calls through them are recorded) and the "Vendor MOCK" one is
//! the vendor's, passed through unchanged and unaudited, as `exports/general.rs` documents.
//!
//!
//! The same mock with `MOCK_PKCS11_ONLY_V32=1` is a vendor whose only "PKCS 11" interface is
//! 3.2 (as SoftHSM's development branch and Kryoptic are); the `interfaces-v32` workload runs
//! over it, directly and through the shim, and must print [`EXPECTED_V32`]: see
//! [`shim_over_a_3_2_only_vendor_lists_3_0_and_hands_out_what_it_lists`].
//!
//! Run: `cargo test --release -p softhsm-tests --test interfaces_v3`.

use softhsm_tests::client::assert_same_transcript;
use softhsm_tests::rows::{assert_rows_match_calls, call_rows};
use softhsm_tests::transcript::calls;
use softhsm_tests::{bin_path, mock_v3_path, read_rows, shim_path, Token};
use std::path::Path;

/// Runs the `interfaces-v3` workload on `module`, with the shim (if that is the module)
/// forwarding to the mock.
fn run(token: &Token, module: &Path) -> String {
    run_workload(token, module, "interfaces-v3", false)
}

/// Runs `workload` on `module` with the mock as the vendor; `only_v32` makes the mock a
/// vendor offering only a "PKCS 11" 3.2 interface (`MOCK_PKCS11_ONLY_V32=1`).
fn run_workload(token: &Token, module: &Path, workload: &str, only_v32: bool) -> String {
    let mock = mock_v3_path();
    let mut cmd = token.command(bin_path("p11-client"));
    cmd.env_remove("MOCK_PKCS11_ONLY_V32");
    if only_v32 {
        cmd.env("MOCK_PKCS11_ONLY_V32", "1");
    }
    let out = cmd
        .env("HSM_AUDIT_MODULE", mock)
        .arg(module)
        .arg(workload)
        .arg(mock)
        .output()
        .expect("run p11-client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "p11-client {workload} on {} failed ({}):\n{stdout}\nstderr:\n{}",
        module.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The transcript of the `interfaces-v3` workload; `{pkcs11}` is whose table each "PKCS 11"
/// interface points at. Besides negotiation it checks the tables have NULL entries exactly
/// where the vendor's do (the mock leaves `C_GetFunctionStatus`, `C_CancelFunction` and the
/// message-verify functions NULL) and calls 2.40 and 3.0 functions through them.
const EXPECTED: &str = r#"C_GetInterfaceList CKR_ARGUMENTS_BAD count=NULL
C_GetInterfaceList CKR_ARGUMENTS_BAD list count=NULL
C_GetInterfaceList CKR_OK list=NULL
  interface count 3
C_GetInterfaceList CKR_BUFFER_TOO_SMALL room=2
  count after too-small buffer 3
C_GetInterfaceList CKR_OK room=8
  count 3
  interface "PKCS 11" version 3.0 flags 0x1 table {pkcs11}
  interface "PKCS 11" version 2.40 flags 0x0 table {pkcs11}
  interface "Vendor MOCK" version 1.0 flags 0x0 table vendor
C_GetInterface CKR_ARGUMENTS_BAD interface=NULL
C_GetInterface CKR_OK default
  interface "PKCS 11" version 3.0 flags 0x1 table {pkcs11}
  default is listed interface 1: true
C_GetInterface CKR_OK name=PKCS_11 version=3.0
  interface "PKCS 11" version 3.0 flags 0x1 table {pkcs11}
  is listed interface 1: true
C_GetInterface CKR_OK name=PKCS_11 version=2.40
  interface "PKCS 11" version 2.40 flags 0x0 table {pkcs11}
  is listed interface 2: true
C_GetInterface CKR_OK name=PKCS_11
  interface "PKCS 11" version 3.0 flags 0x1 table {pkcs11}
C_GetInterface CKR_ARGUMENTS_BAD name=PKCS_11 version=3.1
C_GetInterface CKR_ARGUMENTS_BAD name=PKCS_11 version=2.40 flags=CKF_INTERFACE_FORK_SAFE
C_GetInterface CKR_OK name=PKCS_11 flags=CKF_INTERFACE_FORK_SAFE
  interface "PKCS 11" version 3.0 flags 0x1 table {pkcs11}
C_GetInterface CKR_ARGUMENTS_BAD name=Vendor_X
C_GetInterface CKR_OK name=Vendor_MOCK
  interface "Vendor MOCK" version 1.0 flags 0x0 table vendor
  is listed interface 3: true
C_GetFunctionList CKR_OK
  is the 2.40 interface's table: true
  3.0 table NULL entries: ["C_GetFunctionStatus", "C_CancelFunction"] + ["C_MessageVerifyInit", "C_VerifyMessage", "C_VerifyMessageBegin", "C_VerifyMessageNext", "C_MessageVerifyFinal"]
  2.40 table NULL entries: ["C_GetFunctionStatus", "C_CancelFunction"]
  3.0 table, set where the vendor's is NULL: [] + []
  3.0 table, NULL where the vendor's is set: [] + []
  2.40 table, set where the vendor's is NULL: []
  2.40 table, NULL where the vendor's is set: []
C_GetFunctionList CKR_OK
  is the 2.40 interface's table: true
C_GetInterface CKR_OK name=PKCS_11 version=3.0
  is the 3.0 interface's table: true
C_GetInterfaceList CKR_OK list=NULL
  interface count 3
{session}"#;

/// What both workloads print for their calls through the negotiated tables (the
/// workload's `session_calls`) and the vendor interface's `MOCK_Ping`.
const SESSION_CALLS: &str = r#"C_Initialize CKR_OK
C_GetInfo CKR_OK
  manufacturer SoftHSM
C_GetSlotList CKR_OK
C_OpenSession CKR_OK
C_LoginUser CKR_PIN_INCORRECT user=CKU_USER
C_LoginUser CKR_OK user=CKU_USER
C_SessionCancel CKR_OK
C_SessionCancel CKR_SESSION_HANDLE_INVALID
C_MessageEncryptInit CKR_FUNCTION_NOT_SUPPORTED mech=CKM_AES_GCM
C_MessageEncryptFinal CKR_FUNCTION_NOT_SUPPORTED
C_Logout CKR_OK
C_CloseSession CKR_OK
C_Finalize CKR_OK
MOCK_Ping CKR_OK
  version 1.0 answer 0x4d4f434b
"#;

fn expected(pkcs11_tables: &str) -> String {
    EXPECTED
        .replace("{pkcs11}", pkcs11_tables)
        .replace("{session}", SESSION_CALLS)
}

#[test]
fn the_mock_is_a_3_0_vendor() {
    // The premise of the shim test: the mock answers as a 3.0 vendor with NULL entries.
    let token = Token::canary();
    let direct = run(&token, mock_v3_path());
    assert_same_transcript(&expected("vendor"), &direct);
}

#[test]
fn shim_over_a_3_0_vendor_answers_as_the_vendor_and_records_every_call_once() {
    let token = Token::canary();
    let shim = run(&token, shim_path());
    // The vendor's answers, counts, versions, flags and order, and a table entry exactly
    // where the vendor's has one; only the "PKCS 11" tables are the shim's own.
    assert_same_transcript(&expected("other"), &shim);

    // One row per call line, in order, with its function, operation name, result and user
    // type: calls through tables obtained from C_GetInterface are recorded once, and
    // MOCK_Ping, through the vendor-specific interface, not at all.
    assert_every_call_recorded_once(&token, &shim);
}

/// One row per call line of `transcript`, in order, with its function, operation name,
/// result and user type, and the 3.0 calls of the workloads recorded as such.
fn assert_every_call_recorded_once(token: &Token, transcript: &str) {
    let rows = read_rows(&token.out_dir());
    assert_rows_match_calls(&rows, &calls(transcript));
    let row_of = |function: &str, result: &str| {
        let found: Vec<_> = call_rows(&rows)
            .into_iter()
            .filter(|r| r.pkcs11_function == function && r.result_signature == result)
            .collect();
        assert_eq!(found.len(), 1, "{function} {result}: {found:?}");
        found[0].clone()
    };
    let login = row_of("C_LoginUser", "CKR_OK");
    assert_eq!(
        (
            &*login.operation_name,
            &*login.user_type,
            &*login.call_origin
        ),
        ("CN_LOGIN", "CKU_USER", "application")
    );
    let failed = row_of("C_LoginUser", "CKR_PIN_INCORRECT");
    assert_eq!(
        (&*failed.operation_name, &*failed.result_type),
        ("CN_LOGIN", "Failure")
    );
    let cancel = row_of("C_SessionCancel", "CKR_OK");
    assert_eq!(&*cancel.operation_name, "P11_SESSION_CANCEL");
    let message = row_of("C_MessageEncryptInit", "CKR_FUNCTION_NOT_SUPPORTED");
    assert_eq!(&*message.operation_name, "P11_ENCRYPT_MESSAGE");
    let initialize = row_of("C_Initialize", "CKR_OK");
    assert_eq!(&*initialize.operation_name, "P11_INITIALIZE");
}

/// The transcript of the `interfaces-v32` workload over the mock as a 3.2-only vendor.
/// `{label}` is the version the "PKCS 11" interface carries and `{pkcs11}` whose table it
/// is; `{by_version}` and `{no_name}` are the answers that differ between the vendor and the
/// shim (see [`expected_v32`]).
const EXPECTED_V32: &str = r#"C_GetInterfaceList CKR_OK list=NULL
  interface count 2
C_GetInterfaceList CKR_OK room=8
  count 2
  interface "PKCS 11" version {label} flags 0x1 table {pkcs11}
  interface "Vendor MOCK" version 1.0 flags 0x0 table vendor
C_GetInterface CKR_OK default
  interface "PKCS 11" version {label} flags 0x1 table {pkcs11}
  default is listed interface 1
C_GetInterface CKR_OK name=PKCS_11 version={label}
  interface "PKCS 11" version {label} flags 0x1 table {pkcs11}
  listed interface 1 obtained by its name and version: true
C_GetInterface CKR_OK name=PKCS_11 version={label} flags=0x1
  interface "PKCS 11" version {label} flags 0x1 table {pkcs11}
  listed interface 1 obtained by its name, version and flags: true
C_GetInterface CKR_OK name=Vendor_MOCK version=1.0
  interface "Vendor MOCK" version 1.0 flags 0x0 table vendor
  listed interface 2 obtained by its name and version: true
{by_version}C_GetInterface CKR_ARGUMENTS_BAD name=PKCS_11 version=2.40
C_GetInterface CKR_OK name=PKCS_11
  interface "PKCS 11" version {label} flags 0x1 table {pkcs11}
C_GetInterface CKR_OK name=PKCS_11 flags=CKF_INTERFACE_FORK_SAFE
  interface "PKCS 11" version {label} flags 0x1 table {pkcs11}
C_GetInterface CKR_ARGUMENTS_BAD name=PKCS_11 flags=CKF_INTERFACE_FORK_SAFE|0x2
C_GetInterface CKR_ARGUMENTS_BAD version=3.0
{no_name}  "PKCS 11" table NULL entries: ["C_GetFunctionStatus", "C_CancelFunction"] + ["C_MessageVerifyInit", "C_VerifyMessage", "C_VerifyMessageBegin", "C_VerifyMessageNext", "C_MessageVerifyFinal"]
  3.0 part, set where the vendor's is NULL: [] + []
  3.0 part, NULL where the vendor's is set: [] + []
C_GetInterface CKR_OK name=PKCS_11 version={label}
  is the same table: true
C_GetInterfaceList CKR_OK list=NULL
  interface count 2
{session}"#;

/// [`EXPECTED_V32`] directly on the 3.2-only mock (`shim` false) or through the shim.
fn expected_v32(shim: bool) -> String {
    let (label, pkcs11, by_version, no_name) = if shim {
        (
            "3.0",
            "other",
            // The shim lists its 3.0 table as "PKCS 11" 3.0 and hands it out for 3.0; it
            // does not list 3.2, and refuses it.
            r#"C_GetInterface CKR_OK name=PKCS_11 version=3.0
  interface "PKCS 11" version 3.0 flags 0x1 table other
  is listed interface 1
C_GetInterface CKR_ARGUMENTS_BAD name=PKCS_11 version=3.2
"#,
            // With no name the vendor picks (its default interface); the shim refuses its
            // 3.2 answer because its own table is 3.0.
            "C_GetInterface CKR_ARGUMENTS_BAD version=3.2\n",
        )
    } else {
        (
            "3.2",
            "vendor",
            r#"C_GetInterface CKR_ARGUMENTS_BAD name=PKCS_11 version=3.0
C_GetInterface CKR_OK name=PKCS_11 version=3.2
  interface "PKCS 11" version 3.2 flags 0x1 table vendor
  is listed interface 1
"#,
            r#"C_GetInterface CKR_OK version=3.2
  interface "PKCS 11" version 3.2 flags 0x1 table vendor
"#,
        )
    };
    EXPECTED_V32
        .replace("{by_version}", by_version)
        .replace("{no_name}", no_name)
        .replace("{label}", label)
        .replace("{pkcs11}", pkcs11)
        .replace("{session}", SESSION_CALLS)
}

/// Every interface the transcript lists was obtained by its name and version (and flags).
fn assert_listed_interfaces_obtainable(transcript: &str) {
    let listed = transcript
        .lines()
        .find_map(|l| l.trim().strip_prefix("count "))
        .and_then(|n| n.parse::<usize>().ok())
        .expect("a listed-interface count");
    for i in 1..=listed {
        let by_name_and_version =
            format!("  listed interface {i} obtained by its name and version: true");
        assert!(
            transcript.lines().any(|l| l == by_name_and_version),
            "listed interface {i} not obtained by its name and version:\n{transcript}"
        );
    }
    assert!(
        !transcript.contains(": false"),
        "an interface listed but not obtained:\n{transcript}"
    );
}

#[test]
fn the_mock_can_be_a_3_2_only_vendor() {
    // The premise of the next test: with MOCK_PKCS11_ONLY_V32=1 the mock lists only
    // "PKCS 11" 3.2 (and "Vendor MOCK") and refuses "PKCS 11" 3.0.
    let token = Token::canary();
    let direct = run_workload(&token, mock_v3_path(), "interfaces-v32", true);
    assert_same_transcript(&expected_v32(false), &direct);
    assert_listed_interfaces_obtainable(&direct);
}

/// Over a vendor whose only "PKCS 11" interface is 3.2, the shim lists that interface as its
/// own 3.0 table labelled 3.0, with the vendor's flags, and hands out exactly what it lists:
/// `C_GetInterface("PKCS 11", 3.0)` (with or without the listed flags) returns the listed
/// interface, and `("PKCS 11", 3.2)` is refused. What differs from the vendor is the label,
/// and with it which explicit versions succeed; it is the safe choice because our table is a
/// `CK_FUNCTION_LIST_3_0`: a caller trusting a 3.2 label would read the entries 3.2 adds
/// past its end. Vendor-specific interfaces and the default (no name) are the vendor's
/// answers as before. Calls through the table obtained by the listed name and version are
/// recorded once each.
#[test]
fn shim_over_a_3_2_only_vendor_lists_3_0_and_hands_out_what_it_lists() {
    let token = Token::canary();
    let shim = run_workload(&token, shim_path(), "interfaces-v32", true);
    assert_same_transcript(&expected_v32(true), &shim);
    assert_listed_interfaces_obtainable(&shim);
    assert_every_call_recorded_once(&token, &shim);
}
