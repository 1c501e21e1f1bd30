//! Rows: every call of the raw workload (every 2.40 function, SoftHSM implements or
//! refuses them all) produces exactly one row, in call order, with the catalog's
//! OperationName and Opcode, the call's result, mechanism and user type.

use normalizer::function::Since;
use normalizer::FunctionId;
use softhsm_tests::client::{run_client, Target};
use softhsm_tests::rows::assert_rows_match_calls;
use softhsm_tests::transcript::calls;
use softhsm_tests::{read_rows, Token};

#[test]
fn each_call_of_the_raw_workload_is_one_catalog_row() {
    let token = Token::canary();
    let transcript = run_client(&token, Target::Shim, &["raw"]);
    let calls = calls(&transcript);
    let rows = read_rows(&token.out_dir());
    assert_rows_match_calls(&rows, &calls);

    // The vendor's description reaches the rows once C_Initialize succeeded.
    assert_eq!(rows[0].client_sdk_package_version, "");
    let last = rows.last().unwrap();
    assert!(
        last.client_sdk_package_version.contains("SoftHSM"),
        "{last:?}"
    );

    for f in FunctionId::ALL.iter().filter(|f| f.since() == Since::V2_40) {
        assert!(
            calls.iter().any(|c| c.function == f.name()),
            "the raw workload never calls {f}"
        );
    }
}
