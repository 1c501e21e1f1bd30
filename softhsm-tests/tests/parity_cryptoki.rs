//! Transparency for an ordinary `cryptoki` application: the same high-level workload
//! (PINs, objects, AES/RSA/EC keys, CBC/GCM, digests, signatures, wrap, ECDH, random)
//! prints the same transcript directly and through the shim, although through the shim
//! `cryptoki` negotiates with `C_GetInterface` and directly with `C_GetFunctionList`.

use softhsm_tests::client::{assert_same_transcript, run_client, Target};
use softhsm_tests::rows::assert_one_gapless_writer;
use softhsm_tests::{read_rows, Token};

#[test]
fn cryptoki_workload_is_identical_direct_and_through_the_shim() {
    let (a, b) = (Token::canary(), Token::canary());
    let direct = run_client(&a, Target::Direct, &["cryptoki"]);
    let shim = run_client(&b, Target::Shim, &["cryptoki"]);
    assert_same_transcript(&direct, &shim);
    for fact in [
        "login user ok",
        "set pin ok",
        "  as created: true true true",
        "  decrypts to the data: true",
        "verify rsa ok",
        "verify ecdsa ok",
        "verify bad ecdsa error",
        "  unwrapped key encrypts as the imported key: true",
        "  both sides derived the same secret: true",
        "finalize ok",
    ] {
        assert!(shim.contains(fact), "transcript lacks {fact:?}:\n{shim}");
    }

    let rows = read_rows(&b.out_dir());
    assert_one_gapless_writer(&rows);
    // cryptoki's negotiation went through the shim's C_GetInterface.
    assert_eq!(rows[0].pkcs11_function, "C_GetInterface", "{:?}", rows[0]);
    assert!(rows[0].succeeded());
    let logins: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r.pkcs11_function == "C_Login")
        .map(|r| (&*r.user_type, &*r.result_signature))
        .collect();
    assert_eq!(
        logins,
        [
            ("CKU_USER", "CKR_PIN_INCORRECT"),
            ("CKU_SO", "CKR_OK"),
            ("CKU_USER", "CKR_OK"),
            ("CKU_USER", "CKR_OK")
        ]
    );
}
