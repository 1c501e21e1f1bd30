//! Sinks: where rows go. Each receives typed rows, never pre-rendered strings — except the
//! row's own JSON line, which the hash chain covers byte for byte (see `accept_sealed`).

pub mod archive;
pub mod jsonl;

use crate::row::Row;
use std::io;

/// A destination for rows.
pub trait Sink: Send {
    /// Takes one row; may buffer it.
    fn accept(&mut self, row: &Row<'_>) -> io::Result<()>;
    /// Takes one sealed row together with `line`: its JSON line, the exact bytes its
    /// `RowHash` was computed over, then `\n`. A sink that writes JSON Lines must write these
    /// bytes unchanged (re-rendering costs time and risks breaking the chain); others can
    /// keep this default and use the row.
    fn accept_sealed(&mut self, row: &Row<'_>, line: &[u8]) -> io::Result<()> {
        let _ = line;
        self.accept(row)
    }
    /// For a sink that buffers JSON lines before writing them: the buffer the next sealed
    /// line, of a row started on UTC `day` (`YYYY-MM-DD`), may be rendered straight into,
    /// saving a copy of every line. The line must then be reported with
    /// [`Sink::appended_line`]. `None` (the default): use `accept_sealed`.
    fn line_buffer(&mut self, day: &str) -> io::Result<Option<&mut Vec<u8>>> {
        let _ = day;
        Ok(None)
    }
    /// A sealed line was rendered into [`Sink::line_buffer`]; may write the buffer.
    fn appended_line(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Hands every buffered row to the operating system.
    fn flush(&mut self) -> io::Result<()>;
    /// Makes every row handed to the operating system durable (`fdatasync`).
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Rows accepted but not yet handed to the operating system. A failed `accept` or
    /// `flush` drops every row the sink held (memory stays bounded while writing fails),
    /// so the writer can count exactly what was lost.
    fn held(&self) -> u64;
}
