//! The query pack in `scripts/queries/`: every seed query is there, reads our table, and
//! names only columns our row schema has.

use normalizer::schema;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// One file per seed query (Cloud HSM seed 003, Managed HSM seed 000), plus the
/// deduplication helper.
const EXPECTED: &[&str] = &[
    "cloudhsm-create-delete-user.kql",
    "cloudhsm-key-creation.kql",
    "cloudhsm-key-deletion.kql",
    "cloudhsm-login-session.kql",
    "managedhsm-activity.kql",
    "managedhsm-callers.kql",
    "managedhsm-duration-trend.kql",
    "managedhsm-failures.kql",
    "managedhsm-slow-requests.kql",
    "rows-deduplicated.kql",
];

/// KQL operators, functions and chart names the queries may use; any other identifier must
/// be a column (or a `let` name). Extend this list when a query needs a new operator.
const KQL: &[&str] = &[
    "let",
    "where",
    "in",
    "project",
    "summarize",
    "count",
    "by",
    "bin",
    "render",
    "timechart",
    "avg",
    "arg_max",
    "and",
    "or",
    "not",
    "extend",
    "sort",
    "order",
    "desc",
    "asc",
    "take",
    "top",
    "distinct",
    "ago",
    "dcount",
    "max",
    "min",
    "sum",
    "percentile",
];

fn queries_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/queries")
}

/// Identifiers outside comments and string literals, plus the names bound by `let`.
fn identifiers(text: &str) -> (Vec<String>, BTreeSet<String>) {
    let mut ids: Vec<String> = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let chars: Vec<char> = code.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '"' {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += 1;
                }
                i += 1;
            } else if c.is_ascii_digit() {
                // Numbers and timespans such as 1000 or 1h.
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            } else if c.is_ascii_alphabetic() || c == '_' {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                ids.push(chars[start..i].iter().collect());
            } else {
                i += 1;
            }
        }
    }
    let lets = ids
        .windows(2)
        .filter(|w| w[0] == "let")
        .map(|w| w[1].clone())
        .collect();
    (ids, lets)
}

#[test]
fn every_seed_query_is_there_and_reads_our_table() {
    let mut found: Vec<String> = std::fs::read_dir(queries_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".kql"))
        .collect();
    found.sort();
    assert_eq!(found, EXPECTED);
    for name in EXPECTED {
        let text = std::fs::read_to_string(queries_dir().join(name)).unwrap();
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with("let "))
            .unwrap();
        assert_eq!(first, schema::TABLE, "{name}");
    }
}

#[test]
fn queries_name_only_columns_of_the_schema() {
    let columns: BTreeSet<&str> = schema::table_columns().iter().map(|(n, _)| *n).collect();
    for name in EXPECTED {
        let text = std::fs::read_to_string(queries_dir().join(name)).unwrap();
        let (ids, lets) = identifiers(&text);
        let unknown: Vec<&String> = ids
            .iter()
            .filter(|id| {
                !KQL.contains(&id.as_str())
                    && !lets.contains(*id)
                    && id.as_str() != schema::TABLE
                    && !columns.contains(id.as_str())
            })
            .collect();
        assert!(
            unknown.is_empty(),
            "{name} names unknown columns {unknown:?}"
        );
    }
}

#[test]
fn the_checker_catches_seed_only_columns() {
    // The seeds' own names that our table lacks must be caught, or the check proves nothing.
    let (ids, _) = identifiers(
        "AzureDiagnostics | where httpStatusCode_d >= 300 // MemberId\n| summarize count() by requestUri_s, CallerIPAddress, _ResourceId",
    );
    let columns: BTreeSet<&str> = schema::table_columns().iter().map(|(n, _)| *n).collect();
    let unknown: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|id| !KQL.contains(id) && !columns.contains(id))
        .collect();
    assert_eq!(
        unknown,
        [
            "AzureDiagnostics",
            "httpStatusCode_d",
            "requestUri_s",
            "CallerIPAddress",
            "_ResourceId"
        ]
    );
}
