//! `include/hsm_audit.h` is generated from `src/extra.rs`; this test fails when it is stale.
//! Regenerate with `HSM_AUDIT_BLESS=1 cargo test -p pkcs11-shim --test header`.

use std::path::Path;

#[test]
fn header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = crate_dir.join("../include/hsm_audit.h");
    let config = cbindgen::Config {
        language: cbindgen::Language::C,
        include_guard: Some("HSM_AUDIT_H".into()),
        header: Some(
            "/* hsm-audit: what libhsm_audit_pkcs11.so exports beyond PKCS#11.\n * Generated from pkcs11-shim/src/extra.rs by cbindgen; do not edit. */"
                .into(),
        ),
        sys_includes: vec!["stdint.h".into()],
        no_includes: true,
        cpp_compat: true,
        documentation: true,
        ..Default::default()
    };
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/extra.rs"))
        .generate()
        .expect("cbindgen parses src/extra.rs")
        .write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();
    if std::env::var_os("HSM_AUDIT_BLESS").is_some() {
        std::fs::write(&header, &generated).unwrap();
    }
    let current = std::fs::read_to_string(&header).unwrap_or_default();
    assert_eq!(
        current, generated,
        "include/hsm_audit.h is stale: rerun with HSM_AUDIT_BLESS=1"
    );
}

/// The header is valid C and C++ on its own.
#[test]
fn header_compiles_as_c_and_cpp() {
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../include");
    for (lang, compiler) in [("c", "cc"), ("c++", "c++")] {
        let out = std::process::Command::new(compiler)
            .args(["-fsyntax-only", "-Wall", "-Werror", "-x", lang, "-I"])
            .arg(&include)
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(b"#include \"hsm_audit.h\"\nint main(void) { return (int)hsm_audit_flush(0) + (int)hsm_audit_lost_events(); }\n")?;
                child.wait_with_output()
            })
            .expect("a C compiler (cc, c++) is needed");
        assert!(
            out.status.success(),
            "{compiler}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
