//! `hsm-audit summary`: what the seed's KQL queries would answer, computed locally from
//! the JSON Lines row files.
//!
//! Sections (1)–(4) are the Azure Cloud HSM queries of seed 003 ("Querying operation
//! event logs"), listed once in [`QUERIES`]. Sections (5) and (6) follow seed 000's Managed
//! HSM queries "Are there any failures?" and "Are there any slow requests?".
//!
//! Rows are streamed: the summary keeps counters and bounded top-N lists, never the rows,
//! so a directory of any size is summarised in constant memory.

mod render;
mod top;

use crate::row::{self, Row};
use crate::sink::jsonl::row_files;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use time::format_description::well_known::Rfc3339;
use top::TopN;

/// One of seed 003's Cloud HSM queries: `where OperationName in (…)`, projecting
/// `OperationName, MemberId, CallerIpAddress, TimeGenerated`.
#[derive(Debug)]
pub struct Query {
    /// Section title.
    pub title: &'static str,
    /// The KQL comment that names the query in seed 003.
    pub seed: &'static str,
    /// The `OperationName` values it selects.
    pub operations: &'static [&'static str],
}

/// Seed 003's four Cloud HSM queries, in the seed's order.
pub const QUERIES: &[Query] = &[
    Query {
        title: "Login and session events",
        seed: "Find Login and Session Events",
        operations: &["CN_LOGIN", "CN_AUTHORIZE_SESSION"],
    },
    Query {
        title: "Create and delete user events",
        seed: "Find Create and Delete User Events",
        operations: &["CN_CREATE_USER", "CN_DELETE_USER"],
    },
    Query {
        title: "Key creation events",
        seed: "Find Key Creation Events",
        operations: &["CN_GENERATE_KEY", "CN_GENERATE_KEY_PAIR"],
    },
    Query {
        title: "Key deletion events",
        seed: "Find Delete Key Events",
        operations: &["CN_TOMBSTONE_OBJECT"],
    },
];

/// How many recent rows per query, and slowest calls, a summary keeps.
pub const TOP_N: usize = 10;

/// Seed 000's slow-request threshold (`let threshold=1000;`, milliseconds), in µs.
const SLOW_THRESHOLD_US: u64 = 1_000_000;

/// How many skipped lines or files are quoted by location.
const MAX_QUOTED: usize = 5;

/// Why a directory cannot be summarised at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The directory is missing or unreadable.
    #[error("cannot read directory {}: {source}", dir.display())]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The directory holds no row files.
    #[error("no hsm-audit-*.jsonl row files in {}", .0.display())]
    NoFiles(PathBuf),
}

/// Parsed `TimeGenerated` (Unix ns), `None` if it is not RFC 3339. `None` sorts first,
/// so such rows never count as the most recent.
type Stamp = Option<i128>;

fn stamp(time: &str) -> Stamp {
    time::OffsetDateTime::parse(time, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos())
}

/// Lines that were not rows, and files that could not be read.
#[derive(Debug, Default)]
struct Skipped {
    lines: u64,
    files: u64,
    /// `file:line[:column]: reason` of the first few.
    quoted: Vec<String>,
}

/// A row as seed 003's queries project it.
struct Projected {
    operation: &'static str,
    member_id: String,
    caller_ip: String,
    time: String,
}

/// One query's answer.
struct Answer {
    query: &'static Query,
    /// Per entry of `query.operations`: rows by `ResultType`.
    counts: Vec<BTreeMap<String, u64>>,
    matched: u64,
    recent: TopN<(Stamp, u64), Projected>,
}

struct SlowCall {
    function: String,
    mechanism: String,
    duration_us: u64,
    time: String,
}

/// Counters and bounded lists over a stream of rows.
pub struct Summary {
    files: usize,
    /// Call rows (`RecordType` = `call`): what the queries count.
    rows: u64,
    /// Checkpoint and other non-call records, counted but not summarised.
    other_records: u64,
    /// Rows the writers reported lost (`LostRows` of `HSM_AUDIT_GAP` rows).
    lost_rows: u64,
    /// Rows whose `TimeGenerated` does not parse; left out of the time range.
    bad_times: u64,
    skipped: Skipped,
    earliest: Option<(i128, String)>,
    latest: Option<(i128, String)>,
    writers: BTreeSet<String>,
    answers: Vec<Answer>,
    failed: u64,
    /// Failed rows by `Pkcs11Function`, then `ResultSignature`.
    failures: BTreeMap<String, BTreeMap<String, u64>>,
    slow_calls: u64,
    slowest: TopN<(u64, Stamp, u64), SlowCall>,
}

/// `*map[key] += 1`, allocating the key only the first time it is seen.
fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

/// Puts `(t, text)` in `slot` if it is empty or `beats(t, old)`. Reuses the buffer: times
/// mostly ascend, so the latest changes on nearly every row.
fn keep_if(
    slot: &mut Option<(i128, String)>,
    t: i128,
    text: &str,
    beats: impl Fn(i128, i128) -> bool,
) {
    match slot {
        Some((old, buf)) if beats(t, *old) => {
            *old = t;
            buf.clear();
            buf.push_str(text);
        }
        Some(_) => {}
        None => *slot = Some((t, text.to_owned())),
    }
}

impl Summary {
    /// An empty summary keeping `top` recent rows per query and `top` slowest calls.
    pub fn new(top: usize) -> Summary {
        let answers = QUERIES
            .iter()
            .map(|query| Answer {
                query,
                counts: vec![BTreeMap::new(); query.operations.len()],
                matched: 0,
                recent: TopN::new(top),
            })
            .collect();
        Summary {
            files: 0,
            rows: 0,
            other_records: 0,
            lost_rows: 0,
            bad_times: 0,
            skipped: Skipped::default(),
            earliest: None,
            latest: None,
            writers: BTreeSet::new(),
            answers,
            failed: 0,
            failures: BTreeMap::new(),
            slow_calls: 0,
            slowest: TopN::new(top),
        }
    }

    /// The summary of `rows`.
    pub fn from_rows<'a>(top: usize, rows: impl IntoIterator<Item = Row<'a>>) -> Summary {
        let mut summary = Summary::new(top);
        for row in rows {
            summary.add(&row);
        }
        summary
    }

    /// Rows summarised so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Counts one row.
    pub fn add(&mut self, row: &Row<'_>) {
        // Checkpoints (and other bookkeeping records) are no HSM operation.
        if row.record_type != "call" {
            self.other_records += 1;
            self.lost_rows += row.lost_rows;
            return;
        }
        // Arrival order breaks ties, so equal keys keep a stable order.
        let seq = self.rows;
        self.rows += 1;
        let time = stamp(&row.time_generated);
        match time {
            Some(t) => {
                keep_if(&mut self.earliest, t, &row.time_generated, |new, old| {
                    new < old
                });
                keep_if(&mut self.latest, t, &row.time_generated, |new, old| {
                    new > old
                });
            }
            None => self.bad_times += 1,
        }
        if !self.writers.contains(row.writer_id.as_ref()) {
            self.writers.insert(row.writer_id.to_string());
        }

        for answer in &mut self.answers {
            let ops = answer.query.operations;
            let Some(i) = ops.iter().position(|op| *op == row.operation_name) else {
                continue;
            };
            answer.matched += 1;
            bump(&mut answer.counts[i], &row.result_type);
            answer.recent.offer((time, seq), || Projected {
                operation: ops[i],
                member_id: row.member_id.to_string(),
                caller_ip: row.caller_ip_address.to_string(),
                time: row.time_generated.to_string(),
            });
        }

        if !row.succeeded() {
            self.failed += 1;
            let function = row.pkcs11_function.as_ref();
            if !self.failures.contains_key(function) {
                self.failures.insert(function.to_owned(), BTreeMap::new());
            }
            let by_signature = self.failures.get_mut(function).expect("inserted above");
            bump(by_signature, &row.result_signature);
        }

        if row.duration_us > SLOW_THRESHOLD_US {
            self.slow_calls += 1;
        }
        self.slowest
            .offer((row.duration_us, time, seq), || SlowCall {
                function: row.pkcs11_function.to_string(),
                mechanism: row.mechanism.to_string(),
                duration_us: row.duration_us,
                time: row.time_generated.to_string(),
            });
    }

    /// Reads JSON Lines from `reader`, counting rows and quoting lines that are not rows
    /// as `source:line`. Never fails: a read error ends `source` and is reported.
    pub fn add_lines(&mut self, source: &str, mut reader: impl BufRead) {
        let mut buf = Vec::new();
        let mut line = 0u64;
        loop {
            buf.clear();
            line += 1;
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    self.skip_file(&format!("{source}:{line}"), &e);
                    return;
                }
            }
            let Ok(text) = std::str::from_utf8(&buf) else {
                self.skip_line(format!("{source}:{line}: not UTF-8"));
                continue;
            };
            match row::parse_line(text) {
                Ok(row) => self.add(&row),
                Err(e) => {
                    // serde_json positions are within the line; report them as file:line:column.
                    let msg = e.to_string();
                    let suffix = format!(" at line {} column {}", e.line(), e.column());
                    let reason = msg.strip_suffix(&suffix).unwrap_or(&msg);
                    self.skip_line(format!("{source}:{line}:{}: {reason}", e.column()));
                }
            }
        }
    }

    fn skip_line(&mut self, quoted: String) {
        self.skipped.lines += 1;
        self.quote(quoted);
    }

    fn skip_file(&mut self, source: &str, e: &io::Error) {
        self.skipped.files += 1;
        self.quote(format!("{source}: cannot read: {e}"));
    }

    fn quote(&mut self, quoted: String) {
        if self.skipped.quoted.len() < MAX_QUOTED {
            self.skipped.quoted.push(quoted);
        }
    }
}

/// Summarises every row file in `dir`, streaming each line by line.
pub fn summarize_dir(dir: &Path, top: usize) -> Result<Summary, Error> {
    let files = row_files(dir).map_err(|source| Error::ReadDir {
        dir: dir.to_owned(),
        source,
    })?;
    if files.is_empty() {
        return Err(Error::NoFiles(dir.to_owned()));
    }
    let mut summary = Summary::new(top);
    for path in &files {
        summary.files += 1;
        let name = path.display().to_string();
        match File::open(path) {
            Ok(file) => summary.add_lines(&name, BufReader::new(file)),
            Err(e) => summary.skip_file(&name, &e),
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests;
