//! Checks on the rows one client process wrote.

use normalizer::row::Row;

/// Asserts every row comes from one writer numbered 1, 2, 3… without gaps or repeats.
pub fn assert_one_gapless_writer(rows: &[Row<'_>]) {
    assert!(!rows.is_empty(), "no rows written");
    let writer = &rows[0].writer_id;
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(&row.writer_id, writer, "row {} has another WriterId", i + 1);
        assert_eq!(
            row.sequence_no,
            i as u64 + 1,
            "SequenceNo gap or repeat at row {}",
            i + 1
        );
    }
}

/// Asserts that, per WriterId, SequenceNo runs 1, 2, 3… without gaps or repeats.
pub fn assert_gapless_per_writer(rows: &[Row<'_>]) {
    let mut by_writer: std::collections::BTreeMap<&str, Vec<u64>> = Default::default();
    for row in rows {
        by_writer
            .entry(&row.writer_id)
            .or_default()
            .push(row.sequence_no);
    }
    for (writer, mut seqs) in by_writer {
        seqs.sort_unstable();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(
            seqs, expected,
            "SequenceNo of writer {writer} has gaps or repeats"
        );
    }
}

/// The rows that record calls (`RecordType` `call`): not checkpoints, not gap rows.
pub fn call_rows<'r, 'a>(rows: &'r [Row<'a>]) -> Vec<&'r Row<'a>> {
    rows.iter().filter(|r| r.record_type == "call").collect()
}

/// Asserts the rows of one client process are exactly its calls: one application row per
/// call line, in order, each with the catalog's OperationName and Opcode, the call's
/// result, mechanism and user type; and the shim's own rows are one `C_GetInfo` right after
/// each successful `C_Initialize`. Checkpoints are left out of that comparison; SequenceNo
/// must be gapless over all rows.
pub fn assert_rows_match_calls(rows: &[Row<'_>], calls: &[crate::transcript::CallLine]) {
    use normalizer::{catalog, FunctionId};
    assert_one_gapless_writer(rows);
    let rows = call_rows(rows);
    let mut app = Vec::new();
    let mut after_initialize = false;
    for row in rows.iter().copied() {
        match &*row.call_origin {
            "application" => {
                after_initialize = row.pkcs11_function == "C_Initialize" && row.succeeded();
                app.push(row);
            }
            "shim" => {
                // The shim's only own call: C_GetInfo for ClientSdkPackageVersion.
                assert_eq!(row.pkcs11_function, "C_GetInfo", "{row:?}");
                assert!(
                    after_initialize,
                    "shim row not right after a C_Initialize: {row:?}"
                );
                assert!(row.succeeded(), "{row:?}");
                after_initialize = false;
            }
            other => panic!("CallOrigin {other:?} in {row:?}"),
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
}
