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
        // Only calls are resource-log records; checkpoints protect the row files' chain,
        // which the archive's re-rendered records could not be checked against anyway.
        if row.record_type != "call" {
            return Ok(());
        }
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

    fn held(&self) -> u64 {
        // Only the writer's first sink (the row files) is counted on; this is for the trait.
        self.pending.iter().filter(|&&b| b == b'\n').count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::event::Event;
    use crate::function::FunctionId;
    use crate::writer::{Msg, Writer};
    use std::collections::HashSet;
    use std::time::Duration;

    const ID: &str = "/subscriptions/361da5d4-a47a-4c79-afdd-0123456789ab/resourceGroups/rg-hsm/providers/Microsoft.HardwareSecurityModules/cloudHsmClusters/chsm1";
    const ID_UPPER: &str = "/SUBSCRIPTIONS/361DA5D4-A47A-4C79-AFDD-0123456789AB/RESOURCEGROUPS/RG-HSM/PROVIDERS/MICROSOFT.HARDWARESECURITYMODULES/CLOUDHSMCLUSTERS/CHSM1";
    /// 2025-11-21T22:59:59Z, one second before the hour turns.
    const T0: u64 = 1_763_765_999_000_000_000;

    fn lines(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn writer_writes_documented_path_and_record_shape_next_to_rows() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            output: dir.path().to_owned(),
            resource_id: Some(ID.into()),
            hsm_instance: "hsm1".into(),
            ..Config::default()
        };
        let w = Writer::spawn(&config).unwrap();
        for (i, f) in [
            FunctionId::Login,
            FunctionId::Sign,
            FunctionId::DestroyObject,
        ]
        .into_iter()
        .enumerate()
        {
            // The third call lands in the next hour, so in the next PT1H.json.
            let t = T0 + i as u64 * 600_000_000;
            w.sender()
                .send(Msg::Event(Event::new(f, 0, t, 2_500_000)))
                .unwrap();
        }
        assert!(w.flush(Duration::from_secs(10)));
        let base = dir.path().join(format!(
            "insights-logs-hsmserviceoperations/resourceId={ID_UPPER}/y=2025/m=11/d=21"
        ));
        let first = lines(&base.join("h=22/m=00/PT1H.json"));
        let second = lines(&base.join("h=23/m=00/PT1H.json"));
        assert_eq!((first.len(), second.len()), (2, 1));
        let r = &first[0];
        assert_eq!(r["time"], "2025-11-21T22:59:59.000000Z");
        assert_eq!(r["resourceId"], ID_UPPER);
        assert_eq!(r["operationName"], "CN_LOGIN");
        assert_eq!(r["category"], "HsmServiceOperations");
        assert_eq!(r["resultType"], "Success");
        assert_eq!(r["resultSignature"], "CKR_OK");
        assert_eq!(r["durationMs"], 2);
        assert!(r["callerIpAddress"].is_string());
        let p = r["properties"].as_object().unwrap();
        assert_eq!(p["HsmInstance"], "hsm1");
        assert_eq!(p["WriterId"], w.writer_id());
        assert_eq!(p["SequenceNo"], 1);
        assert_eq!(p["Pkcs11Function"], "C_Login");
        // Every column is somewhere, once: top level or properties.
        let top = r.as_object().unwrap().len() - 3; // resourceId, category, properties
        assert_eq!(top + p.len(), crate::row::COLUMNS.len());
        assert_eq!(second[0]["operationName"], "CN_TOMBSTONE_OBJECT");
        // The plain rows are still written (with their checkpoints, which the archive
        // leaves out), and the archive is not taken for a row file.
        let calls = crate::sink::jsonl::row_files(dir.path())
            .unwrap()
            .iter()
            .flat_map(|f| lines(f))
            .filter(|r| r["RecordType"] == "call")
            .count();
        assert_eq!(calls, 3);
    }

    #[test]
    fn concurrent_appenders_never_interleave_lines() {
        let dir = tempfile::tempdir().unwrap();
        let id = ResourceId::parse(ID).unwrap();
        let per_thread = 3000u64;
        std::thread::scope(|s| {
            for w in 0..4 {
                let (root, id) = (dir.path(), &id);
                s.spawn(move || {
                    // Each thread has its own descriptor, as separate processes would.
                    let mut sink = ArchiveSink::new(root, id);
                    let normalizer_ctx = crate::context::Context::current(&Config::default());
                    let mut n = crate::transform::Normalizer::new(crate::context::Context {
                        writer_id: format!("w{w}"),
                        ..normalizer_ctx
                    });
                    for i in 0..per_thread {
                        let row = n.row(&Event::new(FunctionId::Sign, 0, T0 - 1_000_000 * i, 1));
                        sink.accept(&row).unwrap();
                        if i % 37 == 0 {
                            sink.flush().unwrap();
                        }
                    }
                    sink.flush().unwrap();
                });
            }
        });
        let path = dir.path().join(ArchiveSink::relative_path(
            &id.upper(),
            "2025-11-21T22:59:59Z",
        ));
        let records = lines(&path);
        assert_eq!(records.len() as u64, 4 * per_thread);
        let ids: HashSet<(String, u64)> = records
            .iter()
            .map(|r| {
                let p = &r["properties"];
                (
                    p["WriterId"].as_str().unwrap().to_owned(),
                    p["SequenceNo"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(ids.len() as u64, 4 * per_thread);
    }
}
