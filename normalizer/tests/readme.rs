//! The README's catalog, configuration and column tables are generated from the code; this
//! test fails when they drift. Regenerate with
//! `HSM_AUDIT_BLESS=1 cargo test -p normalizer --test readme`.

use std::path::Path;

/// (marker, the code's rendering)
fn sections() -> Vec<(&'static str, String)> {
    vec![
        ("catalog", normalizer::catalog::markdown()),
        ("config", normalizer::config::markdown()),
        ("columns", normalizer::row::markdown()),
    ]
}

/// Replaces the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->`.
fn splice(readme: &str, name: &str, body: &str) -> Option<String> {
    let begin = format!("<!-- {name}:begin -->\n");
    let end = format!("<!-- {name}:end -->");
    let start = readme.find(&begin)? + begin.len();
    let stop = start + readme[start..].find(&end)?;
    Some(format!("{}{}{}", &readme[..start], body, &readme[stop..]))
}

#[test]
fn readme_tables_match_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let mut expected = readme.clone();
    for (name, body) in sections() {
        expected = splice(&expected, name, &body)
            .unwrap_or_else(|| panic!("README.md has no <!-- {name}:begin/end --> markers"));
    }
    if std::env::var_os("HSM_AUDIT_BLESS").is_some() {
        std::fs::write(&path, &expected).unwrap();
        return;
    }
    for (name, body) in sections() {
        assert!(
            readme.contains(&body),
            "README.md's {name} table is stale: rerun with HSM_AUDIT_BLESS=1"
        );
    }
    assert_eq!(readme, expected);
}
