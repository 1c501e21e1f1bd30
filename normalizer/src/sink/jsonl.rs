//! JSON Lines row files, the shape the Azure Monitor Agent tails.
//!
//! Files are `hsm-audit-<YYYY-MM-DD>-pid<PID>[-<part>].jsonl` (UTC date of the rows).
//! They are opened for append and never truncated, rewritten or renamed; rotation starts a
//! new file (a new day, or a new part once `max_file_bytes` is reached). Each process writes
//! only its own files, and each write hands whole lines to the OS, so concurrent processes
//! never interleave partial lines.

use super::Sink;
use crate::row::Row;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Buffered rows are written once this many bytes are pending (or on `flush`).
const WRITE_CHUNK: usize = 256 * 1024;

/// Appends rows as JSON Lines to date-and-pid-named files in one directory.
pub struct JsonlSink {
    dir: PathBuf,
    pid: u32,
    max_file_bytes: u64,
    day: String,
    part: u32,
    file: Option<File>,
    file_bytes: u64,
    pending: Vec<u8>,
    pending_day: String,
}

impl JsonlSink {
    /// A sink writing into `dir` (created if missing) for process `pid`.
    pub fn new(dir: &Path, pid: u32, max_file_bytes: u64) -> io::Result<JsonlSink> {
        std::fs::create_dir_all(dir)?;
        Ok(JsonlSink {
            dir: dir.to_owned(),
            pid,
            max_file_bytes: max_file_bytes.max(1),
            day: String::new(),
            part: 1,
            file: None,
            file_bytes: 0,
            pending: Vec::with_capacity(WRITE_CHUNK + 4096),
            pending_day: String::new(),
        })
    }

    /// The file rows of `day` and `part` go to.
    pub fn file_name(day: &str, pid: u32, part: u32) -> String {
        if part <= 1 {
            format!("hsm-audit-{day}-pid{pid}.jsonl")
        } else {
            format!("hsm-audit-{day}-pid{pid}-{part}.jsonl")
        }
    }

    fn open(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            let path = self
                .dir
                .join(Self::file_name(&self.day, self.pid, self.part));
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            self.file_bytes = file.metadata()?.len();
            self.file = Some(file);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }

    fn write_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.day != self.pending_day {
            self.day = self.pending_day.clone();
            self.part = 1;
            self.file = None;
        }
        loop {
            let file = self.open()?;
            let _ = file;
            if self.file_bytes == 0
                || self.file_bytes + self.pending.len() as u64 <= self.max_file_bytes
            {
                break;
            }
            self.part += 1;
            self.file = None;
        }
        let file = self.file.as_mut().expect("opened above");
        // On failure the rows stay pending and the next flush retries them.
        file.write_all(&self.pending)?;
        self.file_bytes += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Starts a new file when `row` belongs to another day than the pending rows.
    fn switch_day(&mut self, row: &Row<'_>) -> io::Result<()> {
        let day = row.time_generated.get(..10).unwrap_or("0000-00-00");
        if day != self.pending_day {
            self.write_pending()?;
            self.pending_day.clear();
            self.pending_day.push_str(day);
        }
        Ok(())
    }

    fn after_append(&mut self) -> io::Result<()> {
        if self.pending.len() >= WRITE_CHUNK {
            self.write_pending()?;
        }
        Ok(())
    }
}

impl Sink for JsonlSink {
    fn accept(&mut self, row: &Row<'_>) -> io::Result<()> {
        self.switch_day(row)?;
        row.write_json(&mut self.pending);
        self.pending.push(b'\n');
        self.after_append()
    }

    fn accept_sealed(&mut self, row: &Row<'_>, line: &[u8]) -> io::Result<()> {
        self.switch_day(row)?;
        self.pending.extend_from_slice(line);
        self.after_append()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_pending()
    }
}

/// Row files in `dir` (not recursive), sorted by name.
pub fn row_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|e| e == "jsonl")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("hsm-audit-"))
        })
        .collect();
    files.sort();
    Ok(files)
}
