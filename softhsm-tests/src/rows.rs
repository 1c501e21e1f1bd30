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

/// The rows of calls the application made (not the shim's own `C_GetInfo`).
pub fn application_rows<'r, 'a>(rows: &'r [Row<'a>]) -> Vec<&'r Row<'a>> {
    rows.iter()
        .filter(|r| r.call_origin == "application")
        .collect()
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
