//! Transparency: the raw workload (every function family SoftHSM implements, with NULL
//! arguments, bad handles, short buffers, calls before `C_Initialize`, re-initialisation and
//! `CK_C_INITIALIZE_ARGS`) prints the same transcript against SoftHSM and through the shim.
//! Two tokens made alike, so handles and objects line up.

use softhsm_tests::client::{assert_same_transcript, run_client, Target};
use softhsm_tests::Token;

#[test]
fn raw_workload_is_identical_direct_and_through_the_shim() {
    let (a, b) = (Token::canary(), Token::canary());
    let direct = run_client(&a, Target::Direct, &["raw"]);
    let shim = run_client(&b, Target::Shim, &["raw"]);
    assert_same_transcript(&direct, &shim);

    // The workload really did its work (a broken workload would be "identical" too).
    for fact in [
        "table version 2.40, 68 entries set, NULL: []",
        "label, application and value as created: true true true",
        "decrypts to the data: true",
        "multi-part decrypts to the data: true",
        "multi-part equals single: true",
        "unwrapped key encrypts as the imported key: true",
        "both sides derived the same secret: true",
        "new token labelled as asked: true, initialized: true",
        "C_Verify CKR_SIGNATURE_INVALID",
        "C_Login CKR_PIN_INCORRECT user=CKU_USER",
        "C_InitPIN CKR_OK",
        "C_SetPIN CKR_OK",
        "C_Initialize CKR_CRYPTOKI_ALREADY_INITIALIZED",
    ] {
        assert!(shim.contains(fact), "transcript lacks {fact:?}:\n{shim}");
    }
    // Direct runs write nothing; the shim run wrote rows.
    assert!(softhsm_tests::read_rows(&a.out_dir()).is_empty());
    assert!(!softhsm_tests::read_rows(&b.out_dir()).is_empty());
}
