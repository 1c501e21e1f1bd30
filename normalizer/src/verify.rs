//! `hsm-audit verify`: checks the hash chains of a directory of row files and reports, with
//! file and line, every row that was edited, deleted, inserted, reordered or cut off.
//!
//! Rows are grouped into streams by `WriterId` across files (a writer rotates into several
//! files) and ordered by `SequenceNo`. Each line is checked on its own first (parse,
//! canonical form, RowHash, checkpoint fields, signature), then each stream's links. Nothing
//! in the input can make this panic: whatever is not a well-formed row is a finding.
//!
//! Rows the writer could not write leave their `SequenceNo`s missing, reported by the
//! `HSM_AUDIT_GAP` row that follows them (linked to the last row before them). Such a jump
//! is an honest record, not tampering: it is listed as information. A jump without a gap
//! row right after it that reports exactly the missing count is an error.

use crate::chain::{
    self, Hash, CHECKPOINT_OPERATION, GENESIS, RECORD_CALL, RECORD_CHECKPOINT, RECORD_GAP,
};
use crate::row::Row;
use crate::signing::CheckpointVerifier;
use crate::transform::GAP_OPERATION;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// What a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Problem {
    /// A line that is not a row (or not a whole one).
    Unparseable,
    /// A row whose RowHash does not match its bytes.
    Altered,
    /// A row whose PrevHash is not its predecessor's RowHash.
    ChainBroken,
    /// SequenceNos missing from a stream.
    Missing,
    /// A SequenceNo that appears more than once.
    Duplicate,
    /// Rows of a stream out of SequenceNo order within a file.
    Reordered,
    /// A checkpoint whose fields disagree with its position.
    BadCheckpoint,
    /// A checkpoint without a signature, when a public key was given.
    Unsigned,
    /// A checkpoint whose signature does not verify.
    BadSignature,
    /// A gap row whose `LostRows` is not the number of SequenceNos missing before it.
    BadGap,
    /// A stream whose last row is not a checkpoint.
    Unterminated,
    /// Nothing to verify.
    NoRows,
    /// Rows the writer could not write, reported by its gap row (information, not a fault).
    RowsLost,
}

impl Problem {
    /// Short name shown in reports.
    pub const fn label(self) -> &'static str {
        match self {
            Problem::Unparseable => "unparseable",
            Problem::Altered => "altered",
            Problem::ChainBroken => "chain-broken",
            Problem::Missing => "missing",
            Problem::Duplicate => "duplicate",
            Problem::Reordered => "reordered",
            Problem::BadCheckpoint => "bad-checkpoint",
            Problem::Unsigned => "unsigned",
            Problem::BadSignature => "bad-signature",
            Problem::BadGap => "bad-gap",
            Problem::Unterminated => "unterminated",
            Problem::NoRows => "no-rows",
            Problem::RowsLost => "rows-lost",
        }
    }

    /// `error`, `warning` or `info`.
    pub const fn severity(self) -> &'static str {
        if self.is_info() {
            "info"
        } else if self.is_warning() {
            "warning"
        } else {
            "error"
        }
    }

    /// Whether the finding only informs: a loss the writer itself reported.
    pub const fn is_info(self) -> bool {
        matches!(self, Problem::RowsLost)
    }

    /// Whether the finding may have an innocent cause (a killed process, a wrong directory).
    pub const fn is_warning(self) -> bool {
        matches!(self, Problem::Unterminated | Problem::NoRows)
    }
}

/// One thing verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// File (or directory) it concerns.
    pub file: String,
    /// 1-based line, if it concerns one.
    pub line: Option<usize>,
    /// What kind of problem.
    pub problem: Problem,
    /// Explanation.
    pub message: String,
}

impl fmt::Display for Finding {
    /// `FILE:LINE: error|warning: LABEL: MESSAGE`, as compilers print, so editors can jump.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(
            f,
            ": {}: {}: {}",
            self.problem.severity(),
            self.problem.label(),
            self.message
        )
    }
}

/// The outcome of a verification.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Everything found, in file and line order.
    pub findings: Vec<Finding>,
    /// Files read.
    pub files: usize,
    /// Distinct writers.
    pub streams: usize,
    /// Rows that parsed (checkpoints included).
    pub rows: u64,
    /// Checkpoint rows among them.
    pub checkpoints: u64,
    /// Checkpoint signatures checked against the public key (valid or not).
    pub signatures_checked: u64,
    /// Signed checkpoints whose signature was not checked (no public key given).
    pub signatures_unchecked: u64,
    /// Rows the writers reported lost in gap rows that verify (see `Problem::RowsLost`).
    pub rows_lost: u64,
}

impl Report {
    /// No finding but information (reported losses).
    pub fn is_clean(&self) -> bool {
        self.findings.iter().all(|f| f.problem.is_info())
    }

    /// Findings that are errors.
    pub fn errors(&self) -> usize {
        self.count("error")
    }

    fn count(&self, severity: &str) -> usize {
        self.findings
            .iter()
            .filter(|f| f.problem.severity() == severity)
            .count()
    }

    /// One closing line: what was checked and what was found.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} files, {} streams, {} rows ({} checkpoints, {} signatures verified",
            self.files, self.streams, self.rows, self.checkpoints, self.signatures_checked,
        );
        if self.signatures_unchecked > 0 {
            s.push_str(&format!(
                ", {} not checked: no --public-key",
                self.signatures_unchecked
            ));
        }
        s.push_str(&format!(
            "): {} errors, {} warnings",
            self.errors(),
            self.count("warning")
        ));
        if self.rows_lost > 0 {
            s.push_str(&format!(
                "; {} rows reported lost by the writers",
                self.rows_lost
            ));
        }
        s
    }
}

/// Verifies every `hsm-audit-*.jsonl` file in `dir`, reading one file at a time.
pub fn verify_dir(dir: &Path, key: Option<&CheckpointVerifier>) -> std::io::Result<Report> {
    let files = crate::sink::jsonl::row_files(dir)?;
    let mut v = Verifier::new(key);
    for path in &files {
        let bytes = std::fs::read(path)?;
        v.scan(&path.display().to_string(), &bytes);
    }
    let mut report = v.finish();
    if files.is_empty() {
        report.findings.push(Finding {
            file: dir.display().to_string(),
            line: None,
            problem: Problem::NoRows,
            message: "no hsm-audit-*.jsonl files: nothing verified".into(),
        });
    }
    Ok(report)
}

/// Verifies files given as (name, content), in that order.
pub fn verify_files(files: &[(String, Vec<u8>)], key: Option<&CheckpointVerifier>) -> Report {
    let mut v = Verifier::new(key);
    for (name, bytes) in files {
        v.scan(name, bytes);
    }
    v.finish()
}

/// What the stream checks need of a row. Kept small: verify holds one per row.
struct Entry {
    stream: u32,
    seq: u64,
    file: u32,
    line: u32,
    /// `None` if the row's PrevHash was malformed (already reported).
    prev: Option<Hash>,
    /// The RowHash the row claims, and the one its bytes give. They differ only for an
    /// altered row (already reported); the next row may link to either.
    claimed: Hash,
    computed: Hash,
    checkpoint: bool,
    /// For a gap row: what it reports (rare, so boxed).
    gap: Option<Box<Gap>>,
}

/// What a gap row reports.
struct Gap {
    lost_rows: u64,
    from: String,
    to: String,
}

struct Verifier<'k> {
    key: Option<&'k CheckpointVerifier>,
    files: Vec<String>,
    writers: HashMap<String, u32>,
    writer_names: Vec<String>,
    entries: Vec<Entry>,
    /// Per stream: (file, SequenceNo, line) of its latest row, for the order-in-file check.
    latest: HashMap<u32, (u32, u64, u32)>,
    report: Report,
}

impl<'k> Verifier<'k> {
    fn new(key: Option<&'k CheckpointVerifier>) -> Self {
        Verifier {
            key,
            files: Vec::new(),
            writers: HashMap::new(),
            writer_names: Vec::new(),
            entries: Vec::new(),
            latest: HashMap::new(),
            report: Report::default(),
        }
    }

    fn find(&mut self, file: u32, line: u32, problem: Problem, message: String) {
        self.report.findings.push(Finding {
            file: self.files[file as usize].clone(),
            line: Some(line as usize),
            problem,
            message,
        });
    }

    fn scan(&mut self, name: &str, bytes: &[u8]) {
        let file = u32::try_from(self.files.len()).unwrap_or(u32::MAX);
        self.files.push(name.to_owned());
        let body = bytes.strip_suffix(b"\n");
        let complete = body.is_some();
        let body = body.unwrap_or(bytes);
        if body.is_empty() && complete {
            // A lone newline is still a line: an empty one.
            self.find(file, 1, Problem::Unparseable, "empty line".into());
            return;
        }
        if body.is_empty() {
            return;
        }
        let count = body.split(|&b| b == b'\n').count();
        for (i, line) in body.split(|&b| b == b'\n').enumerate() {
            let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let last_incomplete = !complete && i + 1 == count;
            self.scan_line(file, line_no, line, last_incomplete);
        }
    }

    fn scan_line(&mut self, file: u32, line_no: u32, line: &[u8], incomplete: bool) {
        if line.is_empty() {
            self.find(file, line_no, Problem::Unparseable, "empty line".into());
            return;
        }
        let row: Row<'_> = match serde_json::from_slice(line) {
            Ok(row) => row,
            Err(e) => {
                let message = if incomplete {
                    format!("last line is cut off (no newline; truncated?): {e}")
                } else {
                    format!("not a row: {e}")
                };
                self.find(file, line_no, Problem::Unparseable, message);
                return;
            }
        };
        if incomplete {
            self.find(
                file,
                line_no,
                Problem::Unparseable,
                "no newline at end of file (truncated?)".into(),
            );
        }
        self.report.rows += 1;

        // RowHash: the row's own bytes.
        let (claimed, computed) = match chain::split_line(line) {
            Some((prefix, digits)) => {
                let computed = chain::hash_prefix(prefix);
                let claimed = std::str::from_utf8(digits)
                    .ok()
                    .and_then(chain::unhex::<32>)
                    .filter(|_| digits == row.row_hash.as_bytes());
                if claimed != Some(computed) {
                    self.find(
                        file,
                        line_no,
                        Problem::Altered,
                        "RowHash does not match the row's bytes (row edited?)".into(),
                    );
                }
                (claimed.unwrap_or(computed), computed)
            }
            None => {
                self.find(
                    file,
                    line_no,
                    Problem::Altered,
                    "line does not end with the RowHash column (not as written)".into(),
                );
                let claimed = chain::unhex::<32>(&row.row_hash).unwrap_or([0xff; 32]);
                (claimed, claimed)
            }
        };
        let prev = chain::unhex::<32>(&row.prev_hash);
        if prev.is_none() {
            self.find(
                file,
                line_no,
                Problem::Altered,
                "PrevHash is not 64 lowercase hex digits".into(),
            );
        }

        let mut gap = None;
        let checkpoint = match row.record_type.as_ref() {
            RECORD_CALL => false,
            RECORD_CHECKPOINT => true,
            RECORD_GAP => {
                if row.operation_name != GAP_OPERATION {
                    self.find(
                        file,
                        line_no,
                        Problem::BadGap,
                        format!(
                            "gap row with OperationName {:?}, not {GAP_OPERATION}",
                            row.operation_name
                        ),
                    );
                }
                gap = Some(Box::new(Gap {
                    lost_rows: row.lost_rows,
                    from: row.lost_from.to_string(),
                    to: row.lost_to.to_string(),
                }));
                false
            }
            other => {
                self.find(
                    file,
                    line_no,
                    Problem::Altered,
                    format!("unknown RecordType {other:?}"),
                );
                false
            }
        };
        if checkpoint {
            self.check_checkpoint(file, line_no, &row);
        }

        let stream = match self.writers.get(row.writer_id.as_ref()) {
            Some(&s) => s,
            None => {
                let s = u32::try_from(self.writer_names.len()).unwrap_or(u32::MAX);
                self.writers.insert(row.writer_id.to_string(), s);
                self.writer_names.push(row.writer_id.to_string());
                s
            }
        };
        let seq = row.sequence_no;
        // A writer appends in SequenceNo order, so within one file its rows only go up.
        if let Some(&(f, latest_seq, latest_line)) = self.latest.get(&stream) {
            if f == file && seq < latest_seq {
                self.find(
                    file,
                    line_no,
                    Problem::Reordered,
                    format!(
                        "SequenceNo {seq} comes after SequenceNo {latest_seq} (line {latest_line}): rows moved"
                    ),
                );
            }
        }
        self.latest.insert(stream, (file, seq, line_no));
        self.entries.push(Entry {
            stream,
            seq,
            file,
            line: line_no,
            prev,
            claimed,
            computed,
            checkpoint,
            gap,
        });
    }

    fn check_checkpoint(&mut self, file: u32, line_no: u32, row: &Row<'_>) {
        self.report.checkpoints += 1;
        if row.operation_name != CHECKPOINT_OPERATION {
            self.find(
                file,
                line_no,
                Problem::BadCheckpoint,
                format!(
                    "checkpoint with OperationName {:?}, not {CHECKPOINT_OPERATION}",
                    row.operation_name
                ),
            );
        }
        if row.sequence_no.checked_sub(1) != Some(row.chain_count) {
            self.find(
                file,
                line_no,
                Problem::BadCheckpoint,
                format!(
                    "checkpoint counts {} rows before it but is SequenceNo {}",
                    row.chain_count, row.sequence_no
                ),
            );
        }
        match self.key {
            Some(key) => {
                if row.signature.is_empty() {
                    self.find(
                        file,
                        line_no,
                        Problem::Unsigned,
                        "checkpoint is not signed".into(),
                    );
                } else {
                    self.report.signatures_checked += 1;
                    if !key.verify(
                        &row.writer_id,
                        row.chain_count,
                        &row.prev_hash,
                        &row.signature,
                    ) {
                        self.find(
                            file,
                            line_no,
                            Problem::BadSignature,
                            "signature does not verify with the public key".into(),
                        );
                    }
                }
            }
            None if !row.signature.is_empty() => self.report.signatures_unchecked += 1,
            None => {}
        }
    }

    fn finish(mut self) -> Report {
        let mut entries = std::mem::take(&mut self.entries);
        entries.sort_unstable_by_key(|e| (e.stream, e.seq, e.file, e.line));
        for stream in entries.chunk_by(|a, b| a.stream == b.stream) {
            self.check_stream(stream);
        }
        self.report.files = self.files.len();
        self.report.streams = self.writer_names.len();
        let order: HashMap<&str, usize> = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.as_str(), i))
            .collect();
        let mut findings = std::mem::take(&mut self.report.findings);
        findings.sort_by_key(|f| (order.get(f.file.as_str()).copied(), f.line));
        self.report.findings = findings;
        self.report
    }

    fn at(&self, e: &Entry) -> String {
        format!("{}:{}", self.files[e.file as usize], e.line)
    }

    /// Checks one stream's rows, sorted by SequenceNo.
    fn check_stream(&mut self, rows: &[Entry]) {
        let writer = self.writer_names[rows[0].stream as usize].clone();
        let mut expected_seq = 1u64;
        let mut links = [GENESIS, GENESIS];
        let mut previous: Option<&Entry> = None;
        let mut last_checkpoint = 0u64;
        for same in rows.chunk_by(|a, b| a.seq == b.seq) {
            // Of several rows claiming one SequenceNo, the one that links is the original.
            let links_here = |e: &&Entry| e.prev.is_some_and(|p| links.contains(&p));
            let e = same.iter().find(links_here).unwrap_or(&same[0]);
            for other in same.iter().filter(|o| !std::ptr::eq(*o, e)) {
                let message = format!(
                    "SequenceNo {} of stream {writer} is also at {}: row inserted or duplicated",
                    other.seq,
                    self.at(e)
                );
                self.find(other.file, other.line, Problem::Duplicate, message);
            }
            let jump = e.seq.saturating_sub(expected_seq);
            let range = if jump == 1 {
                format!("SequenceNo {expected_seq} is")
            } else {
                format!(
                    "SequenceNos {expected_seq}..{} are",
                    e.seq.saturating_sub(1)
                )
            };
            // Whether the SequenceNos up to this row are accounted for, so its link to the
            // previous row present is meaningful.
            let accounted = match &e.gap {
                Some(g) if g.lost_rows == jump => {
                    if jump > 0 {
                        self.report.rows_lost += jump;
                        let rows = if jump == 1 { "row" } else { "rows" };
                        let message = format!(
                            "{jump} {rows} of stream {writer} lost between {} and {} (SequenceNo {expected_seq}..{}), reported by this {GAP_OPERATION} row",
                            g.from,
                            g.to,
                            e.seq - 1
                        );
                        self.find(e.file, e.line, Problem::RowsLost, message);
                    }
                    true
                }
                Some(g) => {
                    let message = format!(
                        "{GAP_OPERATION} row reports {} lost rows, but {jump} SequenceNos are missing before it",
                        g.lost_rows
                    );
                    self.find(e.file, e.line, Problem::BadGap, message);
                    jump == 0
                }
                None if jump > 0 => {
                    let message = format!(
                        "{range} missing from stream {writer} before this row: rows deleted"
                    );
                    self.find(e.file, e.line, Problem::Missing, message);
                    false
                }
                None => true,
            };
            if accounted && e.prev.is_some() && !links_here(&e) {
                let message = match previous {
                    Some(p) => format!(
                        "PrevHash is not the RowHash of SequenceNo {} ({}): a row was edited, replaced or inserted",
                        p.seq,
                        self.at(p)
                    ),
                    None => "first row of the stream does not start from the genesis hash".into(),
                };
                self.find(e.file, e.line, Problem::ChainBroken, message);
            }
            links = [e.claimed, e.computed];
            expected_seq = e.seq.saturating_add(1);
            if e.checkpoint {
                last_checkpoint = e.seq;
            }
            previous = Some(e);
        }
        if let Some(last) = previous.filter(|l| !l.checkpoint) {
            let unprotected = match last.seq - last_checkpoint {
                1 => "1 row".to_owned(),
                n => format!("{n} rows"),
            };
            let message = format!(
                "unterminated stream {writer} (process killed?): its last row is not a checkpoint; \
                 {unprotected} after the last checkpoint (SequenceNo {}..{}) unprotected",
                last_checkpoint + 1,
                last.seq
            );
            self.find(last.file, last.line, Problem::Unterminated, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Chain;
    use crate::config::Config;
    use crate::row::parse_line;
    use crate::signing::CheckpointSigner;
    use crate::writer::{Msg, Writer};
    use crate::{Event, FunctionId};
    use std::time::{Duration, SystemTime};

    /// Row files a real writer produced: `calls` calls, a checkpoint after every 3, and one
    /// at shutdown; signed if `key` is given.
    fn real_output(calls: u64, key: Option<&Path>) -> Vec<(String, Vec<u8>)> {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            output: dir.path().to_owned(),
            checkpoint_every: 3,
            flush_interval_ms: 600_000,
            signing_key_file: key.map(Path::to_owned),
            ..Config::default()
        };
        let w = Writer::spawn(&config).unwrap();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        for i in 0..calls {
            let mut ev = Event::new(FunctionId::Sign, i % 2, now + i * 1000, 1_234_567);
            ev.mechanism = Some(0x1041);
            w.sender().send(Msg::Event(ev)).unwrap();
        }
        assert!(w.flush(Duration::from_secs(10)));
        drop(w);
        read_row_files(dir.path())
    }

    /// Every row file in `dir`, as (file name, contents).
    fn read_row_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        crate::sink::jsonl::row_files(dir)
            .unwrap()
            .into_iter()
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).unwrap())
            })
            .collect()
    }

    fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
        bytes
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn with_lines(files: &[(String, Vec<u8>)], lines: &[Vec<u8>]) -> Vec<(String, Vec<u8>)> {
        let mut out = files.to_vec();
        out[0].1 = lines.concat();
        out
    }

    fn assert_found(files: &[(String, Vec<u8>)], what: &str) -> Report {
        let report = verify_files(files, None);
        assert!(!report.is_clean(), "{what}: nothing found");
        report
    }

    fn problems(report: &Report) -> Vec<Problem> {
        report.findings.iter().map(|f| f.problem).collect()
    }

    #[test]
    fn untouched_output_verifies_clean() {
        let files = real_output(10, None);
        let report = verify_files(&files, None);
        assert!(report.is_clean(), "{:?}", report.findings);
        // 10 calls, checkpoints after calls 3, 6, 9 and at shutdown.
        assert_eq!(
            (report.rows, report.checkpoints, report.streams),
            (14, 4, 1)
        );
        assert!(report.summary().ends_with("0 errors, 0 warnings"));
    }

    #[test]
    fn every_byte_flip_is_found() {
        let files = real_output(5, None);
        assert_eq!(files.len(), 1, "one day's file");
        let original = files[0].1.clone();
        for pos in 0..original.len() {
            for mask in [0x01, 0x20, 0x80] {
                let mut bytes = original.clone();
                bytes[pos] ^= mask;
                let report = verify_files(&[(files[0].0.clone(), bytes)], None);
                assert!(
                    !report.is_clean(),
                    "flipping {mask:#x} at byte {pos} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn edits_name_the_file_and_line() {
        let files = real_output(5, None);
        let mut ls = lines(&files[0].1);
        let edited = String::from_utf8(ls[1].clone())
            .unwrap()
            .replace("\"ResultType\":\"Failure\"", "\"ResultType\":\"Success\"");
        assert_ne!(edited.as_bytes(), ls[1]);
        ls[1] = edited.into_bytes();
        let report = assert_found(&with_lines(&files, &ls), "edit");
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        let f = &report.findings[0];
        assert_eq!(
            (f.file.as_str(), f.line, f.problem),
            (files[0].0.as_str(), Some(2), Problem::Altered)
        );
        assert!(f
            .to_string()
            .starts_with(&format!("{}:2: error: altered: ", files[0].0)));
    }

    #[test]
    fn every_deleted_line_is_found() {
        let files = real_output(7, None);
        let ls = lines(&files[0].1);
        for i in 0..ls.len() {
            let mut cut = ls.clone();
            cut.remove(i);
            let report = assert_found(
                &with_lines(&files, &cut),
                &format!("deleting line {}", i + 1),
            );
            let expected = if i + 1 == ls.len() {
                Problem::Unterminated
            } else {
                Problem::Missing
            };
            assert_eq!(problems(&report), [expected], "deleting line {}", i + 1);
        }
    }

    #[test]
    fn every_swap_of_two_lines_is_found() {
        let files = real_output(5, None);
        let ls = lines(&files[0].1);
        for i in 0..ls.len() {
            for j in i + 1..ls.len() {
                let mut swapped = ls.clone();
                swapped.swap(i, j);
                let report = assert_found(&with_lines(&files, &swapped), &format!("swap {i} {j}"));
                assert!(problems(&report).contains(&Problem::Reordered));
            }
        }
    }

    #[test]
    fn inserted_lines_are_found() {
        let files = real_output(5, None);
        let ls = lines(&files[0].1);
        for at in 0..=ls.len() {
            // A copy of any row, anywhere.
            for copy in 0..ls.len() {
                let mut more = ls.clone();
                more.insert(at, ls[copy].clone());
                assert_found(&with_lines(&files, &more), &format!("copy {copy} at {at}"));
            }
            // Something that is not a row, and an empty line.
            for junk in [&b"{\"hello\":1}\n"[..], b"\n"] {
                let mut more = ls.clone();
                more.insert(at, junk.to_vec());
                let report = assert_found(&with_lines(&files, &more), "junk");
                assert_eq!(report.findings[0].line, Some(at + 1));
            }
        }
        // A forged row: a real one given a new SequenceNo and a correct RowHash for its bytes.
        let mut forged = parse_line(std::str::from_utf8(&ls[1]).unwrap().trim_end())
            .unwrap()
            .into_owned();
        forged.sequence_no = 3;
        let forged_line = Chain::new().seal(forged, None, |_, line| line.to_vec());
        let mut more = ls.clone();
        more.insert(2, forged_line);
        let report = assert_found(&with_lines(&files, &more), "forged row");
        assert!(
            problems(&report).contains(&Problem::Duplicate),
            "{:?}",
            report.findings
        );
    }

    #[test]
    fn truncation_is_found_unless_cut_right_after_a_checkpoint() {
        let files = real_output(5, None);
        let bytes = &files[0].1;
        // Ends of checkpoint lines: the one cut that leaves a stream verifiable.
        let mut checkpoint_ends = Vec::new();
        let mut offset = 0;
        for l in lines(bytes) {
            offset += l.len();
            if String::from_utf8_lossy(&l).contains("\"RecordType\":\"checkpoint\"") {
                checkpoint_ends.push(offset);
            }
        }
        assert_eq!(checkpoint_ends.len(), 2);
        for len in 1..bytes.len() {
            let report = verify_files(&[(files[0].0.clone(), bytes[..len].to_vec())], None);
            if checkpoint_ends.contains(&len) {
                // The documented limit: what a checkpoint closed looks complete.
                assert!(report.is_clean(), "cut at {len}: {:?}", report.findings);
            } else {
                assert!(!report.is_clean(), "cut at {len} went unnoticed");
            }
        }
        // Cut at a line boundary after call rows: a warning naming what is unprotected.
        let ls = lines(bytes);
        let report = verify_files(&with_lines(&files, &ls[..ls.len() - 2]), None);
        assert_eq!(problems(&report), [Problem::Unterminated]);
        let text = report.findings[0].to_string();
        assert!(
            text.contains("warning: unterminated") && text.contains("1 row after"),
            "{text}"
        );
    }

    /// What someone without the key can do: rewrite rows and recompute the whole chain.
    fn rechain(
        files: &[(String, Vec<u8>)],
        edit: impl Fn(&mut Row<'static>),
    ) -> Vec<(String, Vec<u8>)> {
        let mut chain = Chain::new();
        let mut out = Vec::new();
        for l in lines(&files[0].1) {
            let mut row = parse_line(std::str::from_utf8(&l).unwrap().trim_end())
                .unwrap()
                .into_owned();
            edit(&mut row);
            chain.seal(row, None, |_, line| out.extend_from_slice(line));
        }
        with_lines(files, &[out])
    }

    #[test]
    fn signatures_catch_a_recomputed_chain() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("k.pem");
        let key = CheckpointSigner::generate(&key_path).unwrap().verifier();
        let files = real_output(5, Some(&key_path));
        let clean = verify_files(&files, Some(&key));
        assert!(clean.is_clean(), "{:?}", clean.findings);
        assert_eq!(clean.signatures_checked, 2);

        let forged = rechain(&files, |r| {
            if r.sequence_no == 2 {
                r.result_type = "Success".into();
            }
        });
        // Without the key a recomputed chain is consistent: the limit of an unsigned chain.
        assert!(verify_files(&forged, None).is_clean());
        let report = verify_files(&forged, Some(&key));
        assert_eq!(
            problems(&report),
            [Problem::BadSignature, Problem::BadSignature],
            "{:?}",
            report.findings
        );

        let stripped = rechain(&files, |r| r.signature = "".into());
        let report = verify_files(&stripped, Some(&key));
        assert_eq!(problems(&report), [Problem::Unsigned, Problem::Unsigned]);

        let other = CheckpointSigner::generate(&dir.path().join("other.pem"))
            .unwrap()
            .verifier();
        let report = verify_files(&files, Some(&other));
        assert_eq!(
            problems(&report),
            [Problem::BadSignature, Problem::BadSignature]
        );
    }

    #[test]
    fn streams_are_checked_across_files_and_writers() {
        let a = real_output(4, None);
        let b = real_output(2, None);
        // Writer A's rows split over two files, writer B's interleaved into the second.
        let la = lines(&a[0].1);
        let lb = lines(&b[0].1);
        let first = la[..3].concat();
        let mut second = Vec::new();
        for (i, l) in la[3..].iter().enumerate() {
            second.extend_from_slice(l);
            if let Some(other) = lb.get(i) {
                second.extend_from_slice(other);
            }
        }
        second.extend(lb.iter().skip(la.len() - 3).flatten());
        let files = vec![
            ("x-1.jsonl".to_owned(), first),
            ("x-2.jsonl".to_owned(), second),
        ];
        let report = verify_files(&files, None);
        assert!(report.is_clean(), "{:?}", report.findings);
        assert_eq!(report.streams, 2);
        // Losing the first file shows as rows missing at the start of the second.
        let report = verify_files(&files[1..], None);
        assert_eq!(problems(&report), [Problem::Missing]);
        assert_eq!(report.findings[0].file, "x-2.jsonl");
    }

    #[test]
    fn garbage_never_panics_and_is_always_reported() {
        let files = real_output(3, None);
        let real = &files[0].1;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..300 {
            let len = (next() % 2000) as usize;
            let mut bytes: Vec<u8> = match round % 3 {
                0 => (0..len).map(|_| next() as u8).collect(),
                // Splices of real rows, which parse more often than noise.
                _ => {
                    let from = (next() as usize) % real.len();
                    real[from..(from + len).min(real.len())].to_vec()
                }
            };
            if round % 2 == 0 {
                bytes.push(b'\n');
            }
            let report = verify_files(&[("g.jsonl".into(), bytes.clone())], None);
            if !bytes.is_empty() && bytes != *real {
                assert!(!report.is_clean(), "round {round}");
            }
        }
        for odd in [
            &b""[..],
            b"\n",
            b"\n\n",
            b"[]\n",
            b"null\n",
            b"\xff\xfe\n",
            b"{\"SequenceNo\":-1}\n",
        ] {
            let report = verify_files(&[("o.jsonl".into(), odd.to_vec())], None);
            assert_eq!(report.is_clean(), odd.is_empty(), "{odd:?}");
        }
    }

    /// Row files a real writer produced through a sink whose one write failed: calls 1-4,
    /// checkpoint 5; calls 6-8 and checkpoint 9 lost; gap row 10 (LostRows 4), calls 11-12,
    /// checkpoint 13.
    fn output_with_a_gap() -> Vec<(String, Vec<u8>)> {
        let dir = tempfile::tempdir().unwrap();
        let sink = crate::writer::testing::Failing::new(dir.path(), false);
        let failures = sink.failures.clone();
        let config = Config {
            flush_interval_ms: 600_000,
            ..Config::default()
        };
        let context = crate::context::Context::current(&config);
        let w = Writer::spawn_with(&config, context, vec![Box::new(sink)]).unwrap();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let send = |n: u64| {
            for i in 0..n {
                assert!(w.record(Event::new(FunctionId::Sign, 0, now + i * 1000, 5)));
            }
            assert!(w.flush(Duration::from_secs(10)));
        };
        send(4);
        failures.store(1, std::sync::atomic::Ordering::Relaxed);
        send(3);
        send(2);
        drop(w);
        read_row_files(dir.path())
    }

    #[test]
    fn a_reported_loss_verifies_clean_with_an_information_line() {
        let files = output_with_a_gap();
        assert_eq!(files.len(), 1);
        let ls = lines(&files[0].1);
        assert_eq!(ls.len(), 9);
        assert!(String::from_utf8_lossy(&ls[5]).contains("\"RecordType\":\"gap\""));
        let report = verify_files(&files, None);
        assert!(report.is_clean(), "{:?}", report.findings);
        assert_eq!(problems(&report), [Problem::RowsLost]);
        assert_eq!(report.rows_lost, 4);
        assert_eq!(report.errors(), 0);
        let text = report.findings[0].to_string();
        assert!(
            text.starts_with(&format!(
                "{}:6: info: rows-lost: 4 rows of stream ",
                files[0].0
            )) && text.contains("(SequenceNo 6..9), reported by this HSM_AUDIT_GAP row"),
            "{text}"
        );
        assert!(
            report
                .summary()
                .ends_with("0 errors, 0 warnings; 4 rows reported lost by the writers"),
            "{}",
            report.summary()
        );
    }

    #[test]
    fn a_deleted_or_altered_gap_row_is_found() {
        let files = output_with_a_gap();
        let ls = lines(&files[0].1);
        let mut cut = ls.clone();
        cut.remove(5);
        let report = verify_files(&with_lines(&files, &cut), None);
        assert_eq!(
            problems(&report),
            [Problem::Missing],
            "{:?}",
            report.findings
        );
        assert!(report.findings[0]
            .message
            .contains("SequenceNos 6..10 are missing"));

        // Even with the chain recomputed, LostRows must match the SequenceNos missing.
        for lost in [0, 3, 5] {
            let forged = rechain(&files, |r| {
                if r.record_type == "gap" {
                    r.lost_rows = lost;
                }
            });
            let report = verify_files(&forged, None);
            assert_eq!(problems(&report), [Problem::BadGap], "LostRows {lost}");
        }
        // A gap row without a jump, or a jump hidden behind a renumbered gap row.
        let forged = rechain(&files, |r| {
            if r.record_type == "gap" {
                r.sequence_no = 6;
            }
        });
        let report = verify_files(&forged, None);
        assert!(
            problems(&report).contains(&Problem::BadGap),
            "{:?}",
            report.findings
        );
        // Unedited bytes but a changed LostRows: the row hash catches it as well.
        let mut edited = ls.clone();
        edited[5] = String::from_utf8(ls[5].clone())
            .unwrap()
            .replace("\"LostRows\":4", "\"LostRows\":3")
            .into_bytes();
        let report = verify_files(&with_lines(&files, &edited), None);
        assert!(problems(&report).contains(&Problem::Altered));
        assert!(problems(&report).contains(&Problem::BadGap));
    }

    #[test]
    fn an_empty_directory_is_not_a_pass() {
        let dir = tempfile::tempdir().unwrap();
        let report = verify_dir(dir.path(), None).unwrap();
        assert_eq!(problems(&report), [Problem::NoRows]);
    }
}
