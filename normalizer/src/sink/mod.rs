//! Sinks: where rows go. Each receives typed rows, never pre-rendered strings.

pub mod jsonl;

use crate::row::Row;
use std::io;

/// A destination for rows.
pub trait Sink: Send {
    /// Takes one row; may buffer it.
    fn accept(&mut self, row: &Row<'_>) -> io::Result<()>;
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
