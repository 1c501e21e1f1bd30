//! Interface negotiation over SoftHSM 2.6.1, which exports no `C_GetInterface`: the shim
//! offers exactly one "PKCS 11" interface, version 2.40, refuses 3.0 requests, advertises
//! no 3.0 function, and sets a table entry only where SoftHSM's table has one.

use softhsm_tests::client::{run_client, Target};
use softhsm_tests::rows::assert_rows_match_calls;
use softhsm_tests::transcript::calls;
use softhsm_tests::{read_rows, softhsm_module, Token};

fn run(target: Target) -> (Token, String) {
    let token = Token::canary();
    let vendor = softhsm_module();
    let transcript = run_client(&token, target, &["interfaces", vendor.to_str().unwrap()]);
    (token, transcript)
}

#[test]
fn softhsm_2_6_has_no_interface_functions() {
    // The premise of the other test: the shim synthesises what SoftHSM lacks.
    let (_token, transcript) = run(Target::Direct);
    assert_eq!(
        transcript.trim(),
        "C_GetInterfaceList exported: false, C_GetInterface exported: false"
    );
}

#[test]
fn shim_offers_one_2_40_interface_and_nothing_softhsm_lacks() {
    let (token, transcript) = run(Target::Shim);
    let expected = "\
C_GetInterfaceList CKR_ARGUMENTS_BAD
C_GetInterfaceList CKR_OK
  interface count 1
C_GetInterfaceList CKR_BUFFER_TOO_SMALL
  count after too-small buffer 1
C_GetInterfaceList CKR_OK
  interface \"PKCS 11\" version 2.40 flags 0x0
C_GetInterface CKR_ARGUMENTS_BAD
C_GetInterface CKR_OK
  interface \"PKCS 11\" version 2.40 flags 0x0
  default is the listed interface's table: true
C_GetInterface CKR_ARGUMENTS_BAD version=3.0
C_GetInterface CKR_OK version=2.40
  interface \"PKCS 11\" version 2.40 flags 0x0
C_GetInterface CKR_ARGUMENTS_BAD version=3.2
C_GetInterface CKR_ARGUMENTS_BAD name=Vendor-X
C_GetInterface CKR_ARGUMENTS_BAD flags=CKF_INTERFACE_FORK_SAFE
C_GetFunctionList CKR_OK
  C_GetFunctionList gives the same table: true
  3.0 entries set in the 2.x table: []
  set in ours but NULL in the vendor's: []
  set in the vendor's but NULL in ours: []
C_Initialize CKR_OK
C_GetInfo CKR_OK
  cryptoki 2.40
C_Finalize CKR_OK
";
    assert_eq!(transcript, expected);
    // The interface calls are recorded like any other.
    assert_rows_match_calls(&read_rows(&token.out_dir()), &calls(&transcript));
}
