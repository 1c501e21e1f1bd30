//! Sinks: where rows go. Each receives typed rows, never pre-rendered strings.

pub mod archive;
pub mod jsonl;

use crate::row::Row;
use std::io;

/// A destination for rows.
pub trait Sink: Send {
    /// Takes one row; may buffer it.
    fn accept(&mut self, row: &Row<'_>) -> io::Result<()>;
    /// Hands every buffered row to the operating system.
    fn flush(&mut self) -> io::Result<()>;
}
