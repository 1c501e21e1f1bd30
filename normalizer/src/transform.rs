//! Event → row: looks the function up in the catalog and names the scalar values.

use crate::catalog;
use crate::chain::Head;
use crate::chain::{CHECKPOINT_OPERATION, RECORD_CALL, RECORD_CHECKPOINT, RECORD_GAP};
use crate::context::Context;
use crate::event::{Event, Origin};
use crate::names;
use crate::row::Row;
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use time::format_description::FormatItem;
use time::macros::format_description;

/// `TimeGenerated` format: RFC 3339, UTC, microseconds.
const TIME_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// Formats nanoseconds since the Unix epoch as a `TimeGenerated` value.
pub fn format_time(unix_ns: u64, out: &mut String) {
    out.clear();
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ns))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    // Writing into a String cannot fail, and the format has no fallible component.
    let mut bytes = std::mem::take(out).into_bytes();
    let _ = t.format_into(&mut bytes, TIME_FORMAT);
    *out = String::from_utf8(bytes).unwrap_or_default();
}

/// `format_time` that formats the date and time of day only when the second changes: a
/// busy writer sees thousands of rows per second, and this was a visible share of its time.
struct TimeText {
    second: Option<u64>,
    text: String,
}

impl TimeText {
    /// Makes `text` the formatted `unix_ns`.
    fn set(&mut self, unix_ns: u64) {
        let second = unix_ns / 1_000_000_000;
        if self.second != Some(second) {
            format_time(second * 1_000_000_000, &mut self.text);
            self.second = Some(second);
        }
        // Keep "YYYY-MM-DDTHH:MM:SS." and write the microseconds and the Z.
        let prefix = self.text.rfind('.').map_or(self.text.len(), |i| i + 1);
        self.text.truncate(prefix);
        let micros = (unix_ns % 1_000_000_000) / 1_000;
        let mut digits = [b'0'; 6];
        let mut n = micros;
        for d in digits.iter_mut().rev() {
            *d += (n % 10) as u8;
            n /= 10;
        }
        self.text
            .push_str(std::str::from_utf8(&digits).expect("ASCII digits"));
        self.text.push('Z');
    }

    #[cfg(test)]
    fn format(&mut self, unix_ns: u64) -> &str {
        self.set(unix_ns);
        &self.text
    }
}

/// What makes call rows share their shape columns (`row::SHAPE_COLUMNS`): with the writer's
/// context, these decide every one of them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Shape {
    function: crate::FunctionId,
    origin: Origin,
    rv: u64,
    mechanism: Option<u64>,
    user_type: Option<u64>,
}

/// Shapes kept at most; a program cycling through more (garbage mechanism numbers the
/// vendor still accepts) only starts the cache over.
const MAX_SHAPES: usize = 4096;

/// Turns events into rows for one writer, numbering them 1, 2, 3…
pub struct Normalizer {
    context: Context,
    next_sequence: u64,
    time: TimeText,
    results: FxHashMap<u64, (String, String)>,
    /// The head of every shape seen since the context last changed.
    heads: FxHashMap<Shape, Head>,
}

impl Normalizer {
    /// A normalizer whose first row gets `SequenceNo` 1.
    pub fn new(context: Context) -> Normalizer {
        Normalizer {
            context,
            next_sequence: 1,
            time: TimeText {
                second: None,
                text: String::with_capacity(32),
            },
            results: FxHashMap::default(),
            heads: FxHashMap::default(),
        }
    }

    /// The writer's context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Records the vendor's `C_GetInfo` description for the rows that follow.
    pub fn set_sdk_version(&mut self, version: String) {
        self.context.client_sdk_package_version = version;
        // A context column changed: every cached head is stale.
        self.heads.clear();
    }

    /// The `SequenceNo` the next row will get.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    fn take_sequence(&mut self) -> u64 {
        let n = self.next_sequence;
        self.next_sequence += 1;
        n
    }

    /// The row for `event`; takes the next sequence number. `PrevHash` and `RowHash` are
    /// left empty for [`crate::chain::Chain::seal`].
    pub fn row(&mut self, event: &Event) -> Row<'_> {
        let sequence_no = self.prepare(event);
        call_row(
            &self.context,
            &self.time.text,
            &self.results,
            event,
            sequence_no,
        )
    }

    /// [`Normalizer::row`], with the head of the row's shape for
    /// [`crate::chain::Chain::seal`] (made the first time the shape occurs).
    pub fn row_with_head(&mut self, event: &Event) -> (Row<'_>, &Head) {
        let sequence_no = self.prepare(event);
        let shape = Shape {
            function: event.function,
            origin: event.origin,
            rv: event.rv,
            mechanism: event.mechanism,
            user_type: event.user_type,
        };
        let Normalizer {
            context,
            time,
            results,
            heads,
            ..
        } = self;
        if heads.len() >= MAX_SHAPES && !heads.contains_key(&shape) {
            heads.clear();
        }
        let row = || call_row(context, &time.text, results, event, sequence_no);
        let head = heads.entry(shape).or_insert_with(|| Head::of(&row()));
        (row(), head)
    }

    /// What a call row needs changed in `self`: its sequence number (returned), its time
    /// text and its result's names.
    fn prepare(&mut self, event: &Event) -> u64 {
        self.time.set(event.start_unix_ns);
        self.results.entry(event.rv).or_insert_with(|| {
            (
                names::result_signature(event.rv),
                names::result_description(event.rv),
            )
        });
        self.take_sequence()
    }

    /// A checkpoint row written at `unix_ns`; takes the next sequence number. It records no
    /// call, so the call columns (result, function, durations) are empty or zero; its
    /// `ChainCount` is the number of rows before it, and sealing puts the chain head in its
    /// `PrevHash`.
    pub fn checkpoint(&mut self, unix_ns: u64) -> Row<'_> {
        let mut row = self.bookkeeping(unix_ns, CHECKPOINT_OPERATION, RECORD_CHECKPOINT);
        row.chain_count = row.sequence_no - 1;
        row
    }

    /// A row that records no call (checkpoint, gap), written at `unix_ns`: the writer's
    /// context columns, the next sequence number, and every call column empty or zero.
    fn bookkeeping(
        &mut self,
        unix_ns: u64,
        operation: &'static str,
        kind: &'static str,
    ) -> Row<'_> {
        let sequence_no = self.take_sequence();
        self.time.set(unix_ns);
        Row {
            operation_name: Cow::Borrowed(operation),
            record_type: Cow::Borrowed(kind),
            ..context_row(&self.context, &self.time.text, sequence_no)
        }
    }

    /// Gives up the next `n` sequence numbers, for events that were lost before they could
    /// be numbered, so that missing `SequenceNo` values always add up to `LostRows`.
    pub fn skip(&mut self, n: u64) {
        self.next_sequence += n;
    }

    /// The `HSM_AUDIT_GAP` row written once rows can be written again: `rows` rows of calls
    /// started between `from_ns` and `to_ns` were lost. Takes the next sequence number.
    pub fn gap(&mut self, rows: u64, from_ns: u64, to_ns: u64, now_ns: u64) -> Row<'_> {
        let mut from = String::new();
        let mut to = String::new();
        format_time(from_ns, &mut from);
        format_time(to_ns, &mut to);
        let description = format!("{rows} audit rows could not be written ({from} to {to})");
        let mut row = self.bookkeeping(now_ns, GAP_OPERATION, RECORD_GAP);
        // Written by the shim's writer itself, about its own failure.
        row.call_origin = Cow::Borrowed("shim");
        row.result_type = Cow::Borrowed("Failure");
        row.result_signature = Cow::Borrowed("HSM_AUDIT_ROWS_LOST");
        row.result_description = Cow::Owned(description);
        row.lost_rows = rows;
        row.lost_from = Cow::Owned(from);
        row.lost_to = Cow::Owned(to);
        row
    }
}

/// The row of a call, from the parts of a [`Normalizer`] it borrows (`results` holds the
/// names of `event.rv`: see `Normalizer::prepare`).
fn call_row<'a>(
    c: &'a Context,
    time: &'a str,
    results: &'a FxHashMap<u64, (String, String)>,
    event: &Event,
    sequence_no: u64,
) -> Row<'a> {
    let (signature, description) = &results[&event.rv];
    let op = catalog::operation(event.function);
    Row {
        operation_name: Cow::Borrowed(op.name),
        opcode: Cow::Borrowed(op.opcode),
        duration_ms: event.duration_ns / 1_000_000,
        result_type: Cow::Borrowed(if event.rv == 0 { "Success" } else { "Failure" }),
        result_signature: Cow::Borrowed(signature),
        result_description: Cow::Borrowed(description),
        pkcs11_function: Cow::Borrowed(event.function.name()),
        mechanism: Cow::Borrowed(event.mechanism.map_or("", names::mechanism_name)),
        user_type: event
            .user_type
            .map_or(Cow::Borrowed(""), names::user_type_name),
        call_origin: Cow::Borrowed(match event.origin {
            Origin::Application => "application",
            Origin::Shim => "shim",
            Origin::Refused => "refused",
        }),
        duration_us: event.duration_ns / 1_000,
        record_type: Cow::Borrowed(RECORD_CALL),
        ..context_row(c, time, sequence_no)
    }
}

/// A row with the writer's context columns, `time` and `sequence_no`, and every other column
/// empty or zero: what every row starts from.
fn context_row<'a>(c: &'a Context, time: &'a str, sequence_no: u64) -> Row<'a> {
    Row {
        time_generated: Cow::Borrowed(time),
        operation_name: Cow::Borrowed(""),
        opcode: Cow::Borrowed(""),
        hsm_instance: Cow::Borrowed(&c.hsm_instance),
        member_id: Cow::Borrowed(&c.hsm_instance),
        cluster_type: Cow::Borrowed(&c.cluster_type),
        pool_type: Cow::Borrowed(&c.cluster_type),
        caller_ip_address: Cow::Borrowed(&c.caller_ip_address),
        client_info: Cow::Borrowed(&c.client_info),
        client_sdk_package_version: Cow::Borrowed(&c.client_sdk_package_version),
        duration_ms: 0,
        result_type: Cow::Borrowed(""),
        result_signature: Cow::Borrowed(""),
        result_description: Cow::Borrowed(""),
        source_system: Cow::Borrowed("hsm-audit"),
        pkcs11_function: Cow::Borrowed(""),
        mechanism: Cow::Borrowed(""),
        user_type: Cow::Borrowed(""),
        call_origin: Cow::Borrowed(""),
        duration_us: 0,
        writer_id: Cow::Borrowed(&c.writer_id),
        sequence_no,
        lost_rows: 0,
        lost_from: Cow::Borrowed(""),
        lost_to: Cow::Borrowed(""),
        record_type: Cow::Borrowed(""),
        chain_count: 0,
        signature: Cow::Borrowed(""),
        prev_hash: Cow::Borrowed(""),
        row_hash: Cow::Borrowed(""),
    }
}

/// `OperationName` of the row that reports lost rows.
pub const GAP_OPERATION: &str = "HSM_AUDIT_GAP";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::function::FunctionId;

    #[test]
    fn login_event_becomes_a_cn_login_row() {
        let mut n = Normalizer::new(Context::current(&Config {
            hsm_instance: "hsm1".into(),
            cluster_type: "StandardB1".into(),
            caller_ip_address: "192.0.2.1".into(),
            ..Config::default()
        }));
        let mut ev = Event::new(
            FunctionId::Login,
            0xa0,
            1_763_762_603_123_456_789,
            2_345_678,
        );
        ev.user_type = Some(1);
        let row = n.row(&ev);
        assert_eq!(row.time_generated, "2025-11-21T22:03:23.123456Z");
        assert_eq!(row.operation_name, "CN_LOGIN");
        assert_eq!(row.opcode, "0xd");
        assert_eq!(row.member_id, "hsm1");
        assert_eq!(row.pool_type, "StandardB1");
        assert_eq!(row.duration_ms, 2);
        assert_eq!(row.duration_us, 2345);
        assert_eq!(row.result_type, "Failure");
        assert_eq!(row.result_signature, "CKR_PIN_INCORRECT");
        assert_eq!(row.user_type, "CKU_USER");
        assert_eq!(row.sequence_no, 1);
        let mut ev = Event::new(FunctionId::SignInit, 0, 0, 0);
        ev.mechanism = Some(0x1041);
        let row = n.row(&ev);
        assert_eq!(row.mechanism, "CKM_ECDSA");
        assert_eq!(row.result_type, "Success");
        assert_eq!(row.sequence_no, 2);
        assert_eq!(row.record_type, "call");
        n.skip(3);
        let row = n.gap(4, 1_763_762_603_000_000_000, 1_763_762_604_000_000_000, 0);
        assert_eq!(row.operation_name, GAP_OPERATION);
        assert_eq!(row.sequence_no, 6);
        assert_eq!(row.lost_rows, 4);
        assert_eq!(row.lost_from, "2025-11-21T22:03:23.000000Z");
        assert_eq!(row.lost_to, "2025-11-21T22:03:24.000000Z");
        assert_eq!(row.call_origin, "shim");
        assert_eq!(row.record_type, "gap");
    }

    #[test]
    fn cached_time_text_matches_full_formatting() {
        let mut cache = TimeText {
            second: None,
            text: String::new(),
        };
        let mut full = String::new();
        let base = 1_763_762_603_999_999_000u64;
        for ns in [0, 999, 1_000, 1_001, 59_999_999_999, 60_000_000_000]
            .into_iter()
            .chain((0..2_000u64).map(|i| base + i * 7_919_321))
            .chain([base, 0, u64::MAX])
        {
            format_time(ns, &mut full);
            assert_eq!(cache.format(ns), full, "{ns}");
        }
    }

    #[test]
    fn checkpoints_share_the_sequence_and_count_what_precedes_them() {
        let mut n = Normalizer::new(Context::current(&Config::default()));
        n.row(&Event::new(FunctionId::Sign, 0, 0, 0));
        n.row(&Event::new(FunctionId::Sign, 0, 0, 0));
        let cp = n.checkpoint(1_763_762_603_000_000_000);
        assert_eq!(cp.operation_name, CHECKPOINT_OPERATION);
        assert_eq!(cp.record_type, "checkpoint");
        assert_eq!((cp.sequence_no, cp.chain_count), (3, 2));
        assert_eq!(cp.time_generated, "2025-11-21T22:03:23.000000Z");
        assert!(!cp.succeeded());
        assert_eq!(n.row(&Event::new(FunctionId::Sign, 0, 0, 0)).sequence_no, 4);
        assert!(crate::catalog::CATALOG
            .iter()
            .all(|op| op.name != CHECKPOINT_OPERATION));
    }
}
