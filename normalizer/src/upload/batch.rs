//! Row files → batches the Logs Ingestion API accepts: a JSON array of rows, at most
//! `max_bytes` of uncompressed JSON (1 MiB, as the official SDKs split), spanning at most
//! `max_span` of `TimeGenerated` (30 minutes, reference §4).
//!
//! Files are read in name order from their checkpointed offsets; a batch covers a
//! contiguous run of lines, so accepting it moves each file's offset forward and nothing
//! else. Only complete lines (ending in `\n`) are taken: a line still being written waits.

use super::checkpoint::{FilePos, Positions};
use crate::row::parse_line;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What one request may carry.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest uncompressed JSON body, bytes.
    pub max_bytes: usize,
    /// Largest distance between the earliest and latest `TimeGenerated` of a batch.
    pub max_span: time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 1024 * 1024,
            max_span: time::Duration::minutes(30),
        }
    }
}

/// A run of lines of one file: `[start, end)` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// File name (the checkpoint key).
    pub file: String,
    /// Inode of the file.
    pub ino: u64,
    /// First byte.
    pub start: u64,
    /// One past the last byte (a line boundary).
    pub end: u64,
}

/// One request's worth of rows. A batch with no rows only moves offsets past skipped lines.
#[derive(Debug, Default)]
pub struct Batch {
    /// `[row,row,…]`, uncompressed.
    pub body: Vec<u8>,
    /// Rows in `body`.
    pub rows: usize,
    /// Earliest and latest `TimeGenerated`.
    pub span: Option<(OffsetDateTime, OffsetDateTime)>,
    /// Lines covered, in order.
    pub segments: Vec<Segment>,
    /// Lines covered that were not rows (and are not sent), with why.
    pub skipped: Vec<String>,
}

impl Batch {
    /// Checkpoint positions once this batch is accepted.
    pub fn positions(&self) -> impl Iterator<Item = (&str, FilePos)> {
        self.segments.iter().map(|s| {
            (
                s.file.as_str(),
                FilePos {
                    ino: s.ino,
                    offset: s.end,
                },
            )
        })
    }

    /// Bytes of row files this batch covers.
    pub fn file_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.end - s.start).sum()
    }

    fn cover(&mut self, file: &str, ino: u64, start: u64, end: u64) {
        match self.segments.last_mut() {
            Some(s) if s.file == file && s.end == start => s.end = end,
            _ => self.segments.push(Segment {
                file: file.to_owned(),
                ino,
                start,
                end,
            }),
        }
    }

    /// Whether `json` stamped `t` can join without breaking a limit.
    fn fits(&self, json: &[u8], t: OffsetDateTime, limits: &Limits) -> bool {
        let size = if self.rows == 0 {
            2 + json.len()
        } else {
            self.body.len() + 1 + json.len() + 1
        };
        let span_ok = self.span.is_none_or(|(lo, hi)| {
            let (lo, hi) = (lo.min(t), hi.max(t));
            hi - lo <= limits.max_span
        });
        size <= limits.max_bytes && span_ok
    }

    fn push(&mut self, json: &[u8], t: OffsetDateTime) {
        self.body.push(if self.rows == 0 { b'[' } else { b',' });
        self.body.extend_from_slice(json);
        self.rows += 1;
        self.span = Some(self.span.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
    }

    fn finish(mut self) -> Batch {
        if self.rows > 0 {
            self.body.push(b']');
        }
        self
    }
}

/// One parsed line waiting for a batch.
struct Pending {
    json: Vec<u8>,
    time: OffsetDateTime,
    file: String,
    ino: u64,
    start: u64,
    end: u64,
}

/// Reads row files from given positions and cuts them into batches.
pub struct Planner {
    files: Vec<PathBuf>,
    next_file: usize,
    current: Option<Open>,
    positions: Positions,
    limits: Limits,
    carried: Option<Pending>,
}

struct Open {
    name: String,
    ino: u64,
    pos: u64,
    reader: BufReader<File>,
}

impl Planner {
    /// A planner over `files` (in the order given) starting at `positions`.
    pub fn new(files: Vec<PathBuf>, positions: Positions, limits: Limits) -> Planner {
        Planner {
            files,
            next_file: 0,
            current: None,
            positions,
            limits,
            carried: None,
        }
    }

    /// Bytes not yet covered by the positions, for a progress bar.
    pub fn remaining_bytes(&self) -> u64 {
        self.files
            .iter()
            .filter_map(|p| {
                let meta = std::fs::metadata(p).ok()?;
                let name = file_name(p);
                let start = self.start_of(&name, meta.ino(), meta.len());
                Some(meta.len().saturating_sub(start))
            })
            .sum()
    }

    fn start_of(&self, name: &str, ino: u64, len: u64) -> u64 {
        match self.positions.get(name) {
            // Same file, not shrunk: resume. Otherwise it is a new file under an old name.
            Some(p) if p.ino == ino && p.offset <= len => p.offset,
            _ => 0,
        }
    }

    /// The next batch, or `None` when every complete line has been planned.
    pub fn next_batch(&mut self) -> io::Result<Option<Batch>> {
        let mut batch = Batch::default();
        if let Some(p) = self.carried.take() {
            batch.push(&p.json, p.time);
            batch.cover(&p.file, p.ino, p.start, p.end);
        }
        while let Some((name, ino, start, end, text)) = self.next_line()? {
            match parse(&text) {
                Ok((json, time)) => {
                    if json.len() + 2 > self.limits.max_bytes {
                        batch.skipped.push(format!(
                            "{name} at byte {start}: row of {} bytes exceeds the batch limit",
                            json.len()
                        ));
                        batch.cover(&name, ino, start, end);
                    } else if batch.fits(&json, time, &self.limits) {
                        batch.push(&json, time);
                        batch.cover(&name, ino, start, end);
                    } else {
                        self.carried = Some(Pending {
                            json,
                            time,
                            file: name,
                            ino,
                            start,
                            end,
                        });
                        return Ok(Some(batch.finish()));
                    }
                }
                Err(why) => {
                    batch
                        .skipped
                        .push(format!("{name} at byte {start}: not a row ({why})"));
                    batch.cover(&name, ino, start, end);
                }
            }
        }
        Ok((!batch.segments.is_empty()).then(|| batch.finish()))
    }

    /// The next complete line: (file, inode, start, end, text without the newline).
    #[allow(clippy::type_complexity)]
    fn next_line(&mut self) -> io::Result<Option<(String, u64, u64, u64, Vec<u8>)>> {
        loop {
            if self.current.is_none() {
                let Some(path) = self.files.get(self.next_file) else {
                    return Ok(None);
                };
                self.next_file += 1;
                let mut file = match File::open(path) {
                    Ok(f) => f,
                    // Removed since the directory was listed: nothing left to send from it.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("cannot open {}: {e}", path.display()),
                        ))
                    }
                };
                let meta = file.metadata()?;
                let name = file_name(path);
                let pos = self.start_of(&name, meta.ino(), meta.len());
                file.seek(SeekFrom::Start(pos))?;
                self.current = Some(Open {
                    name,
                    ino: meta.ino(),
                    pos,
                    reader: BufReader::with_capacity(256 * 1024, file),
                });
            }
            let open = self.current.as_mut().expect("set above");
            let mut line = Vec::new();
            let n = open.reader.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                // End of file, or a line still being written: leave it for a later pass.
                self.current = None;
                continue;
            }
            let start = open.pos;
            open.pos += n as u64;
            line.pop();
            return Ok(Some((open.name.clone(), open.ino, start, open.pos, line)));
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A line as the JSON object to send (only the schema's columns) and its `TimeGenerated`.
fn parse(line: &[u8]) -> Result<(Vec<u8>, OffsetDateTime), String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_owned())?;
    let row = parse_line(text).map_err(|e| e.to_string())?;
    let time = OffsetDateTime::parse(&row.time_generated, &Rfc3339)
        .map_err(|e| format!("TimeGenerated: {e}"))?;
    // Re-serialising keeps exactly the declared columns, whatever else the line held.
    let json = serde_json::to_vec(&row).map_err(|e| e.to_string())?;
    Ok((json, time))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::Row;
    use std::io::Write;

    fn row(seq: u64, minute: u64) -> String {
        let r = Row {
            time_generated: format!(
                "2025-11-21T{:02}:{:02}:00.000000Z",
                10 + minute / 60,
                minute % 60
            )
            .into(),
            caller_ip_address: "192.0.2.1".into(),
            duration_ms: 0,
            duration_us: 0,
            writer_id: "w".into(),
            sequence_no: seq,
            ..crate::row::sample()
        };
        serde_json::to_string(&r).unwrap() + "\n"
    }

    fn all(p: &mut Planner) -> Vec<Batch> {
        std::iter::from_fn(|| p.next_batch().unwrap()).collect()
    }

    #[test]
    fn batches_respect_size_and_span_and_cover_every_line() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("hsm-audit-a.jsonl");
        let b = dir.path().join("hsm-audit-b.jsonl");
        // 100 rows a minute apart: 100 minutes, so at least 4 batches by span alone.
        std::fs::write(&a, (0..60).map(|i| row(i, i)).collect::<String>()).unwrap();
        std::fs::write(
            &b,
            (60..100).map(|i| row(i, i)).collect::<String>() + "garbage\n",
        )
        .unwrap();
        let limits = Limits {
            max_bytes: 4096,
            ..Limits::default()
        };
        let mut p = Planner::new(vec![a.clone(), b.clone()], Positions::new(), limits);
        let batches = all(&mut p);
        let mut seqs = Vec::new();
        for batch in &batches {
            assert!(batch.body.len() <= 4096);
            if let Some((lo, hi)) = batch.span {
                assert!(hi - lo <= time::Duration::minutes(30));
            }
            if batch.rows > 0 {
                let v: Vec<serde_json::Value> = serde_json::from_slice(&batch.body).unwrap();
                assert_eq!(v.len(), batch.rows);
                seqs.extend(v.iter().map(|r| r["SequenceNo"].as_u64().unwrap()));
            }
        }
        assert_eq!(seqs, (0..100).collect::<Vec<_>>());
        let skipped: Vec<_> = batches.iter().flat_map(|b| b.skipped.clone()).collect();
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        // Segments tile both files exactly.
        let mut ends = Positions::new();
        for batch in &batches {
            for s in &batch.segments {
                let prev = ends.get(&s.file).map_or(0, |p| p.offset);
                assert_eq!(s.start, prev);
                ends.insert(
                    s.file.clone(),
                    FilePos {
                        ino: s.ino,
                        offset: s.end,
                    },
                );
            }
        }
        assert_eq!(
            ends["hsm-audit-a.jsonl"].offset,
            std::fs::metadata(&a).unwrap().len()
        );
        assert_eq!(
            ends["hsm-audit-b.jsonl"].offset,
            std::fs::metadata(&b).unwrap().len()
        );
        // From the final positions there is nothing left.
        let mut again = Planner::new(vec![a, b], ends, limits);
        assert!(again.next_batch().unwrap().is_none());
        assert_eq!(again.remaining_bytes(), 0);
    }

    #[test]
    fn partial_lines_wait_and_replaced_files_restart() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("hsm-audit-a.jsonl");
        let full = row(1, 0);
        std::fs::write(&a, format!("{full}{}", &full[..20])).unwrap();
        let mut p = Planner::new(vec![a.clone()], Positions::new(), Limits::default());
        let batch = p.next_batch().unwrap().unwrap();
        assert_eq!(batch.rows, 1);
        assert_eq!(batch.segments[0].end, full.len() as u64);
        assert!(p.next_batch().unwrap().is_none());
        // Completing the line makes it available from the saved position.
        let mut f = std::fs::OpenOptions::new().append(true).open(&a).unwrap();
        f.write_all(&full.as_bytes()[20..]).unwrap();
        let positions: Positions = batch.positions().map(|(n, p)| (n.to_owned(), p)).collect();
        let mut p = Planner::new(vec![a.clone()], positions.clone(), Limits::default());
        assert_eq!(p.next_batch().unwrap().unwrap().rows, 1);
        // A different inode under the same name is read from the start.
        std::fs::remove_file(&a).unwrap();
        std::fs::write(&a, row(9, 0)).unwrap();
        let mut stale = positions;
        stale.get_mut("hsm-audit-a.jsonl").unwrap().ino = std::fs::metadata(&a).unwrap().ino() ^ 1;
        let mut p = Planner::new(vec![a], stale, Limits::default());
        assert_eq!(p.next_batch().unwrap().unwrap().rows, 1);
    }
}
