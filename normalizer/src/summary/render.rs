//! Renders a [`Summary`] as text with terminal tables.

use super::{Answer, Summary, SLOW_THRESHOLD_US};
use crate::catalog::CATALOG;
use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
use std::fmt::Write;

/// Failure combinations shown before the rest are only counted.
const MAX_FAILURE_ROWS: usize = 20;

/// A table with `header`; columns in `numeric` are right-aligned.
fn table(header: &[&str], numeric: &[usize]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    for &i in numeric {
        if let Some(column) = t.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// Empty columns (no mechanism, no configured instance) show as a dash, not a blank.
fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "—"
    } else {
        s
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The query's KQL filter, as seed 003 writes it.
fn where_clause(ops: &[&str]) -> String {
    match ops {
        [one] => format!("where OperationName == \"{one}\""),
        _ => {
            let quoted: Vec<String> = ops.iter().map(|op| format!("\"{op}\"")).collect();
            format!("where OperationName in ({})", quoted.join(", "))
        }
    }
}

fn millis(us: u64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

impl Summary {
    /// The summary as text: a header, then one section per query.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_header(&mut out);
        if self.rows > 0 {
            for (n, answer) in self.answers.iter().enumerate() {
                render_answer(&mut out, n + 1, answer);
            }
            self.render_failures(&mut out);
            self.render_slowest(&mut out);
        }
        out
    }

    fn render_header(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "hsm-audit summary: {} in {}, {} (distinct WriterId)",
            plural(self.rows, "row", "rows"),
            plural(self.files as u64, "file", "files"),
            plural(self.writers.len() as u64, "writer", "writers"),
        );
        if self.other_records > 0 {
            let _ = writeln!(
                out,
                "(plus {} not summarised: checkpoints and other bookkeeping rows)",
                plural(self.other_records, "record", "records")
            );
        }
        if self.lost_rows > 0 {
            let _ = writeln!(
                out,
                "WARNING: the writers reported {} lost (HSM_AUDIT_GAP rows): calls went unaudited",
                plural(self.lost_rows, "row", "rows")
            );
        }
        if let (Some((_, first)), Some((_, last))) = (&self.earliest, &self.latest) {
            let _ = writeln!(out, "TimeGenerated from {first} to {last}");
        }
        if self.bad_times > 0 {
            let _ = writeln!(
                out,
                "{} not RFC 3339: counted, but left out of the time range and sorted as oldest",
                plural(
                    self.bad_times,
                    "row has a TimeGenerated",
                    "rows have a TimeGenerated"
                ),
            );
        }
        let skipped = &self.skipped;
        if skipped.lines + skipped.files > 0 {
            let mut what = Vec::new();
            if skipped.lines > 0 {
                what.push(plural(
                    skipped.lines,
                    "line that is not a row",
                    "lines that are not rows",
                ));
            }
            if skipped.files > 0 {
                what.push(plural(skipped.files, "unreadable file", "unreadable files"));
            }
            let _ = writeln!(out, "Skipped {}; first:", what.join(" and "));
            for quoted in &skipped.quoted {
                let _ = writeln!(out, "  {quoted}");
            }
            let more = (skipped.lines + skipped.files).saturating_sub(skipped.quoted.len() as u64);
            if more > 0 {
                let _ = writeln!(out, "  … and {more} more");
            }
        }
    }

    fn render_failures(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n(5) Failures, after seed 000 \"Are there any failures?\": {} of {} not Success",
            self.failed,
            plural(self.rows, "row", "rows"),
        );
        if self.failed == 0 {
            return;
        }
        let _ = writeln!(
            out,
            "    summarize count() by Pkcs11Function, ResultSignature"
        );
        let mut rows: Vec<(&str, &str, u64)> = self
            .failures
            .iter()
            .flat_map(|(f, sigs)| sigs.iter().map(move |(s, n)| (f.as_str(), s.as_str(), *n)))
            .collect();
        // Most frequent first; names break ties so the order is stable.
        rows.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (a.0, a.1).cmp(&(b.0, b.1))));
        let mut t = table(&["Pkcs11Function", "ResultSignature", "Rows"], &[2]);
        for (function, signature, n) in rows.iter().take(MAX_FAILURE_ROWS) {
            t.add_row(vec![
                function.to_string(),
                signature.to_string(),
                n.to_string(),
            ]);
        }
        let _ = writeln!(out, "{t}");
        if rows.len() > MAX_FAILURE_ROWS {
            let rest: u64 = rows[MAX_FAILURE_ROWS..].iter().map(|r| r.2).sum();
            let _ = writeln!(
                out,
                "… and {} more combinations ({})",
                rows.len() - MAX_FAILURE_ROWS,
                plural(rest, "row", "rows"),
            );
        }
    }

    fn render_slowest(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n(6) Slowest calls, after seed 000 \"Are there any slow requests?\": {} over {} ms",
            plural(self.slow_calls, "call", "calls"),
            SLOW_THRESHOLD_US / 1000,
        );
        let slowest = self.slowest.sorted();
        let _ = writeln!(out, "Top {} by DurationUs:", slowest.len());
        let mut t = table(
            &[
                "TimeGenerated",
                "Pkcs11Function",
                "Mechanism",
                "ms",
                "DurationUs",
            ],
            &[3, 4],
        );
        for call in slowest {
            t.add_row(vec![
                call.time.as_str(),
                call.function.as_str(),
                or_dash(&call.mechanism),
                &millis(call.duration_us),
                &call.duration_us.to_string(),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
}

fn render_answer(out: &mut String, n: usize, answer: &Answer) {
    let query = answer.query;
    let _ = writeln!(
        out,
        "\n({n}) {}, seed 003 \"{}\": {}",
        query.title,
        query.seed,
        plural(answer.matched, "row", "rows"),
    );
    let _ = writeln!(out, "    {}", where_clause(query.operations));
    // A name no PKCS#11 function is recorded as stays empty by design; say so.
    for op in query.operations {
        if !CATALOG.iter().any(|o| o.name == *op) {
            let _ = writeln!(
                out,
                "    (no PKCS#11 call is recorded as {op}; see `hsm-audit catalog`)"
            );
        }
    }
    if answer.matched == 0 {
        return;
    }

    let mut counts = table(&["OperationName", "ResultType", "Rows"], &[2]);
    for (op, by_result) in query.operations.iter().zip(&answer.counts) {
        if by_result.is_empty() {
            counts.add_row(vec![*op, "—", "0"]);
        }
        for (result, rows) in by_result {
            counts.add_row(vec![op.to_string(), result.clone(), rows.to_string()]);
        }
    }
    let _ = writeln!(out, "{counts}");

    let recent = answer.recent.sorted();
    let _ = writeln!(out, "Most recent {} of {}:", recent.len(), answer.matched);
    let mut t = table(
        &[
            "OperationName",
            "MemberId",
            "CallerIpAddress",
            "TimeGenerated",
        ],
        &[],
    );
    for row in recent {
        t.add_row(vec![
            row.operation,
            or_dash(&row.member_id),
            or_dash(&row.caller_ip),
            &row.time,
        ]);
    }
    let _ = writeln!(out, "{t}");
}
