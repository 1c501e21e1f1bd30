//! Conformance: real PKCS#11 clients' own test suites (the `cryptoki` crate's tests,
//! OpenSC `pkcs11-tool`, GnuTLS `p11tool`) give the same pass/fail set through the shim as
//! directly on SoftHSM2. `scripts/conformance.sh` runs and compares them; this test runs it
//! against the shim built for this profile, then reads every row with the rows' own parser.

use softhsm_tests::{read_rows, shim_path, target_dir};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

#[test]
fn clients_pass_and_fail_the_same_through_the_shim() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let target = target_dir();
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("scripts/conformance.sh"));
    if profile == "release" {
        cmd.arg("--release");
    }
    let out = cmd
        .env("HSM_AUDIT_SHIM", shim_path())
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run scripts/conformance.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "conformance differences:\n{stdout}\n{stderr}"
    );
    // The script checks rows are JSON; here each must also be a valid row, and no writer
    // may have lost one (its sequence numbers run 1, 2, 3… without gaps).
    for suite in ["cryptoki-run", "pkcs11-tool", "p11tool"] {
        let dir = target
            .join("conformance")
            .join(profile)
            .join(suite)
            .join("shim/rows");
        let rows = read_rows(&dir);
        assert!(!rows.is_empty(), "no rows in {}", dir.display());
        let mut by_writer: BTreeMap<_, Vec<u64>> = BTreeMap::new();
        for row in &rows {
            by_writer
                .entry(row.writer_id.clone())
                .or_default()
                .push(row.sequence_no);
        }
        for (writer, mut seq) in by_writer {
            seq.sort_unstable();
            let expected: Vec<u64> = (1..=seq.len() as u64).collect();
            assert_eq!(
                seq, expected,
                "{suite}: writer {writer} lost or repeated rows"
            );
        }
    }
}
