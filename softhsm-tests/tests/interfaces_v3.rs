//! Interface negotiation over a PKCS#11 3.0 vendor: the mock module in
//! `softhsm-tests/mock-v3/` (SoftHSM2 plus a "PKCS 11" 3.0, a "PKCS 11" 2.40 and a "Vendor
//! MOCK" interface). The `interfaces-v3` workload runs directly on the mock and through the
//! shim in front of it: both must print [`EXPECTED`], where each interface's table is the
//! vendor's own (`table vendor`: the pointer the mock hands out when asked directly) or not
//! (`table other`). Directly every table is the vendor's. Through the shim the two "PKCS 11"
//! tables are the shim's (so calls through them are recorded) and the "Vendor MOCK" one is
//! the vendor's, passed through unchanged and unaudited, as `exports/general.rs` documents.
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
    let mock = mock_v3_path();
    let out = token
        .command(bin_path("p11-client"))
        .env("HSM_AUDIT_MODULE", mock)
        .arg(module)
        .arg("interfaces-v3")
        .arg(mock)
        .output()
        .expect("run p11-client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "p11-client interfaces-v3 on {} failed ({}):\n{stdout}\nstderr:\n{}",
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
C_Initialize CKR_OK
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
    EXPECTED.replace("{pkcs11}", pkcs11_tables)
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
    let rows = read_rows(&token.out_dir());
    assert_rows_match_calls(&rows, &calls(&shim));
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
