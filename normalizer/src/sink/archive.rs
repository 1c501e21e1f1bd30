//! The Azure storage archive layout: rows as Azure resource-log records, one hourly
//! `PT1H.json` per resource, so tools that read diagnostic-setting archives read ours.
//!
//! Path (reference §3), under the output directory:
//! `insights-logs-hsmserviceoperations/resourceId=<RESOURCE ID UPPER-CASED>/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json`.
//! Records are JSON Lines (the format Azure has written since Nov 2018).
//!
//! Several processes append to the same hourly file. Each flush hands one hour's whole lines
//! to the OS in a single `write` on an `O_APPEND` descriptor; Linux applies such a write
//! atomically at the end of a regular file, so lines from different processes never
//! interleave.

use super::Sink;
use crate::resource_id::ResourceId;
use crate::row::Row;
use serde_json::{Map, Value};
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Resource-log category of Cloud HSM operation logs (reference §3).
pub const CATEGORY: &str = "HsmServiceOperations";

/// Row columns that become common-schema top-level fields; every other column goes into
/// `properties` under its column name. The common schema (reference §3) names these
/// fields; which Cloud HSM column feeds which field is our mapping (inferred: no public
/// Cloud HSM archive record has been published).
pub const TOP_LEVEL: &[(&str, &str)] = &[
    ("TimeGenerated", "time"),
    ("OperationName", "operationName"),
    ("ResultType", "resultType"),
    ("ResultSignature", "resultSignature"),
    ("ResultDescription", "resultDescription"),
    ("DurationMs", "durationMs"),
    ("CallerIpAddress", "callerIpAddress"),
];

/// Buffered lines are written once this many bytes are pending (or on `flush`).
const WRITE_CHUNK: usize = 256 * 1024;

/// Appends resource-log records to hourly archive files.
pub struct ArchiveSink {
    root: PathBuf,
    resource_id: String,
    /// Hour key (`YYYY-MM-DDTHH`) of the pending lines.
    hour: String,
    pending: Vec<u8>,
}

impl ArchiveSink {
    /// A sink writing under `output` for the given resource.
    pub fn new(output: &Path, resource_id: &ResourceId) -> ArchiveSink {
        ArchiveSink {
            root: output.to_owned(),
            resource_id: resource_id.upper(),
            hour: String::new(),
            pending: Vec::with_capacity(WRITE_CHUNK + 4096),
        }
    }

    /// The archive file for `time_generated` (`YYYY-MM-DDTHH…`), relative to the output dir.
    pub fn relative_path(resource_id_upper: &str, time_generated: &str) -> PathBuf {
        let t = |r: std::ops::Range<usize>| time_generated.get(r).unwrap_or("00");
        let (y, m, d, h) = (
            time_generated.get(0..4).unwrap_or("0000"),
            t(5..7),
            t(8..10),
            t(11..13),
        );
        PathBuf::from(format!(
            "insights-logs-{}/resourceId={}/y={y}/m={m}/d={d}/h={h}/m=00/PT1H.json",
            CATEGORY.to_lowercase(),
            resource_id_upper
        ))
    }

    /// The resource-log record for `row`.
    pub fn record(resource_id_upper: &str, row: &Row<'_>) -> Value {
        let Value::Object(mut columns) = serde_json::to_value(row).unwrap_or_default() else {
            return Value::Null;
        };
        let mut record = Map::new();
        for (column, field) in TOP_LEVEL {
            if let Some(v) = columns.remove(*column) {
                record.insert((*field).to_owned(), v);
            }
        }
        record.insert("resourceId".into(), resource_id_upper.into());
        record.insert("category".into(), CATEGORY.into());
        record.insert("properties".into(), Value::Object(columns));
        Value::Object(record)
    }

    fn write_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = self
            .root
            .join(Self::relative_path(&self.resource_id, &self.hour));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        // One write call per flush: a short write would split the batch, so report it
        // rather than silently finishing it with a second, interleavable write.
        let n = file.write(&self.pending)?;
        if n != self.pending.len() {
            let rest = self.pending.split_off(n);
            self.pending = rest;
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short append to {}", path.display()),
            ));
        }
        self.pending.clear();
        Ok(())
    }
}

impl Sink for ArchiveSink {
    fn accept(&mut self, row: &Row<'_>) -> io::Result<()> {
        let hour = row.time_generated.get(..13).unwrap_or("0000-00-00T00");
        if hour != self.hour {
            self.write_pending()?;
            self.hour.clear();
            self.hour.push_str(hour);
        }
        serde_json::to_writer(&mut self.pending, &Self::record(&self.resource_id, row))?;
        self.pending.push(b'\n');
        if self.pending.len() >= WRITE_CHUNK {
            self.write_pending()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_pending()
    }
}
