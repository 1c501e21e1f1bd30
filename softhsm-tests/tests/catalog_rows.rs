//! Rows: every call of the raw workload produces exactly one row, in call order, with the
//! catalog's OperationName and Opcode, the call's result, mechanism and user type; the
//! shim's own `C_GetInfo` follows each successful `C_Initialize`; SequenceNo is gapless.

use normalizer::{catalog, FunctionId};
use softhsm_tests::client::{run_client, Target};
use softhsm_tests::rows::assert_one_gapless_writer;
use softhsm_tests::transcript::calls;
use softhsm_tests::{read_rows, Token};

#[test]
fn each_call_of_the_raw_workload_is_one_catalog_row() {
    let token = Token::canary();
    let transcript = run_client(&token, Target::Shim, &["raw"]);
    let calls = calls(&transcript);
    let rows = read_rows(&token.out_dir());
    assert_one_gapless_writer(&rows);

    let mut app = Vec::new();
    let mut after_initialize = false;
    for row in &rows {
        match &*row.call_origin {
            "application" => {
                after_initialize = row.pkcs11_function == "C_Initialize" && row.succeeded();
                app.push(row);
            }
            "shim" => {
                // The shim's only own call: C_GetInfo for ClientSdkPackageVersion, right
                // after each successful C_Initialize.
                assert_eq!(row.pkcs11_function, "C_GetInfo", "{row:?}");
                assert!(
                    after_initialize,
                    "shim row not after a C_Initialize: {row:?}"
                );
                assert!(row.succeeded(), "{row:?}");
                after_initialize = false;
            }
            other => panic!("CallOrigin {other:?}"),
        }
    }
    let initializes = calls
        .iter()
        .filter(|c| c.function == "C_Initialize" && c.rv == "CKR_OK")
        .count();
    assert_eq!(
        rows.len() - app.len(),
        initializes,
        "one shim row per C_Initialize"
    );
    assert_eq!(app.len(), calls.len(), "one row per call");

    for (i, (call, row)) in calls.iter().zip(&app).enumerate() {
        let at = format!("call {} ({call:?}), row {row:?}", i + 1);
        let f = FunctionId::from_name(&call.function).expect("a known function");
        let op = catalog::operation(f);
        assert_eq!(row.pkcs11_function, call.function, "{at}");
        assert_eq!(row.operation_name, op.name, "{at}");
        assert_eq!(row.opcode, op.opcode, "{at}");
        assert_eq!(row.result_signature, call.rv, "{at}");
        let ok = call.rv == "CKR_OK";
        assert_eq!(
            row.result_type,
            if ok { "Success" } else { "Failure" },
            "{at}"
        );
        assert!(!row.result_description.is_empty(), "{at}");
        match &call.mechanism {
            // On success the mechanism is always recorded; on failure the shim may not
            // have been able to read it safely, so it is either right or absent.
            Some(m) if ok => assert_eq!(&*row.mechanism, m, "{at}"),
            Some(m) => assert!(row.mechanism == *m || row.mechanism.is_empty(), "{at}"),
            None => assert_eq!(row.mechanism, "", "{at}"),
        }
        assert_eq!(row.user_type, call.user.clone().unwrap_or_default(), "{at}");
        assert_eq!(row.source_system, "hsm-audit", "{at}");
        assert!(row.client_info.starts_with("p11-client (pid "), "{at}");
    }

    // The vendor's description reaches the rows once C_Initialize succeeded.
    let last = rows.last().unwrap();
    assert!(
        last.client_sdk_package_version.contains("SoftHSM"),
        "{last:?}"
    );
    assert_eq!(rows[0].client_sdk_package_version, "");

    // The workload exercises every 2.40 function (SoftHSM's table has them all).
    for f in FunctionId::ALL
        .iter()
        .filter(|f| f.since() == normalizer::function::Since::V2_40)
    {
        assert!(
            calls.iter().any(|c| c.function == f.name()),
            "raw workload never calls {f}"
        );
    }
}
