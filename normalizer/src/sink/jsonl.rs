//! JSON Lines row files, the shape the Azure Monitor Agent tails.
//!
//! Files are `hsm-audit-<YYYY-MM-DD>-pid<PID>[-<part>].jsonl` (UTC date of the rows).
//! They are opened for append and never rewritten or renamed (nor truncated, except to undo
//! a failed write of our own: see `append`); rotation starts a
//! new file (a new day, or a new part once `max_file_bytes` is reached). Each process writes
//! only its own files, and each write hands whole lines to the OS, so concurrent processes
//! never interleave partial lines.
//!
//! When a write fails (disk full, directory gone) the rows of that write are dropped and
//! counted by the writer; whatever the failed write left in the file is cut off again, so no
//! line of a lost batch stays on disk, and the next write reopens the file (recreating the
//! directory), so writing resumes once it can.

use super::Sink;
use crate::row::Row;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
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
    pending_rows: u64,
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
            pending_rows: 0,
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

    fn open(&mut self) -> io::Result<()> {
        while self.file.is_none() {
            let path = self
                .dir
                .join(Self::file_name(&self.day, self.pid, self.part));
            let mut options = OpenOptions::new();
            options.create(true).append(true).read(true);
            let mut file = match options.open(&path) {
                // The directory was removed while we ran: make it again, as at start.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(&self.dir)?;
                    options.open(&path)?
                }
                other => other?,
            };
            let len = file.metadata()?.len();
            if len > 0 && !ends_with_newline(&mut file, len) {
                // A predecessor with our pid was killed mid-line: appending would glue our
                // first row onto its fragment, so start the next part instead.
                self.part += 1;
                continue;
            }
            self.file_bytes = len;
            self.file = Some(file);
        }
        Ok(())
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
        let result = self.write_pending_once().map_err(|e| {
            io::Error::new(e.kind(), format!("writing in {}: {e}", self.dir.display()))
        });
        // Whatever happened, the held rows are gone: written, or counted lost by the writer.
        // Keeping them for a retry would let memory grow without bound on a full disk.
        self.pending.clear();
        self.pending_rows = 0;
        if result.is_err() {
            self.file = None;
        }
        result
    }

    /// Writes the pending rows to the current file. A failed write leaves no line of the
    /// batch in any file (see `append`), so "the batch was lost" is exactly true and the
    /// writer can roll its hash chain back to the last row on disk.
    fn write_pending_once(&mut self) -> io::Result<()> {
        self.open_with_room()?;
        self.append()?;
        // A file we cannot stat counts as still linked: the rows are in it.
        let unlinked = self
            .file
            .as_ref()
            .is_some_and(|f| f.metadata().is_ok_and(|m| m.nlink() == 0));
        if unlinked {
            // The file (or its directory) was deleted under us: these rows went nowhere.
            // Write them again to a fresh file.
            self.file = None;
            self.open_with_room()?;
            self.append()?;
        }
        Ok(())
    }

    /// Opens the file to append to, starting the next part if the pending rows would not
    /// fit under `max_file_bytes`.
    fn open_with_room(&mut self) -> io::Result<()> {
        loop {
            self.open()?;
            if self.file_bytes == 0
                || self.file_bytes + self.pending.len() as u64 <= self.max_file_bytes
            {
                return Ok(());
            }
            self.part += 1;
            self.file = None;
        }
    }

    /// Appends the pending rows to the open file, all or nothing: if the write fails, the
    /// file is truncated back to its length before the write. That removes a partial line
    /// a short write left, and also every complete line of the batch that did reach the
    /// file: the writer counts the whole batch lost and links its next row to the last row
    /// before the batch, so a line of the batch left on disk would break the chain. If even
    /// the truncation fails (and the length is not already right), the next rows go to the
    /// next part so they never follow a fragment.
    fn append(&mut self) -> io::Result<()> {
        let file = self.file.as_mut().expect("opened before appending");
        if let Err(e) = file.write_all(&self.pending) {
            let cut = file.set_len(self.file_bytes).is_ok()
                || file.metadata().is_ok_and(|m| m.len() == self.file_bytes);
            if !cut {
                self.part += 1;
            }
            return Err(e);
        }
        self.file_bytes += self.pending.len() as u64;
        Ok(())
    }

    /// Starts a new file when `row` belongs to another day than the pending rows.
    fn switch_day(&mut self, day: &str) -> io::Result<()> {
        if day != self.pending_day {
            self.write_pending()?;
            self.pending_day.clear();
            self.pending_day.push_str(day);
        }
        Ok(())
    }

    fn after_append(&mut self) -> io::Result<()> {
        self.pending_rows += 1;
        if self.pending.len() >= WRITE_CHUNK {
            self.write_pending()?;
        }
        Ok(())
    }
}

/// The UTC day (`YYYY-MM-DD`) a row belongs to: the files are per day.
pub fn row_day<'a>(row: &'a Row<'_>) -> &'a str {
    row.time_generated.get(..10).unwrap_or("0000-00-00")
}

/// Whether a non-empty file's last byte is a newline.
fn ends_with_newline(file: &mut File, len: u64) -> bool {
    let mut last = [0u8];
    // A file we cannot read back (e.g. a device) counts as ending cleanly.
    file.seek(SeekFrom::Start(len - 1))
        .and_then(|_| file.read_exact(&mut last))
        .map_or(true, |()| last[0] == b'\n')
}

impl Sink for JsonlSink {
    fn accept(&mut self, row: &Row<'_>) -> io::Result<()> {
        self.switch_day(row_day(row))?;
        row.write_json(&mut self.pending);
        self.pending.push(b'\n');
        self.after_append()
    }

    fn accept_sealed(&mut self, row: &Row<'_>, line: &[u8]) -> io::Result<()> {
        self.switch_day(row_day(row))?;
        self.pending.extend_from_slice(line);
        self.after_append()
    }

    fn line_buffer(&mut self, day: &str) -> io::Result<Option<&mut Vec<u8>>> {
        self.switch_day(day)?;
        Ok(Some(&mut self.pending))
    }

    fn appended_line(&mut self) -> io::Result<()> {
        self.after_append()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_pending()
    }

    fn sync(&mut self) -> io::Result<()> {
        match &self.file {
            Some(file) => file.sync_data(),
            None => Ok(()),
        }
    }

    fn held(&self) -> u64 {
        self.pending_rows
    }
}

/// Row files in `dir` (not recursive), in writing order: by day and pid, then part number
/// (a plain name sort would put `…-pid7-2.jsonl` before `…-pid7.jsonl`).
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
    files.sort_by_cached_key(|p| part_key(p));
    Ok(files)
}

/// (file name without its part suffix, part number) of a row file.
fn part_key(path: &Path) -> (String, u32) {
    let name = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    if let Some((base, part)) = name.rsplit_once('-') {
        if let (true, Ok(n)) = (base.contains("-pid"), part.parse::<u32>()) {
            return (base.to_owned(), n);
        }
    }
    (name, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_sort_after_their_first_file() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "hsm-audit-2026-01-02-pid7-10.jsonl",
            "hsm-audit-2026-01-02-pid7-2.jsonl",
            "hsm-audit-2026-01-02-pid7.jsonl",
            "hsm-audit-2026-01-01-pid9.jsonl",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let names: Vec<String> = row_files(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "hsm-audit-2026-01-01-pid9.jsonl",
                "hsm-audit-2026-01-02-pid7.jsonl",
                "hsm-audit-2026-01-02-pid7-2.jsonl",
                "hsm-audit-2026-01-02-pid7-10.jsonl",
            ]
        );
    }
}
