//! Event → row: looks the function up in the catalog and names the scalar values.

use crate::catalog;
use crate::context::Context;
use crate::event::{Event, Origin};
use crate::names;
use crate::row::Row;
use std::borrow::Cow;
use std::collections::HashMap;
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

/// Turns events into rows for one writer, numbering them 1, 2, 3…
pub struct Normalizer {
    context: Context,
    next_sequence: u64,
    time: String,
    results: HashMap<u64, (String, String)>,
}

impl Normalizer {
    /// A normalizer whose first row gets `SequenceNo` 1.
    pub fn new(context: Context) -> Normalizer {
        Normalizer {
            context,
            next_sequence: 1,
            time: String::with_capacity(32),
            results: HashMap::new(),
        }
    }

    /// The writer's context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Records the vendor's `C_GetInfo` description for the rows that follow.
    pub fn set_sdk_version(&mut self, version: String) {
        self.context.client_sdk_package_version = version;
    }

    /// The `SequenceNo` the next row will get.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// The row for `event`; takes the next sequence number.
    pub fn row(&mut self, event: &Event) -> Row<'_> {
        let sequence_no = self.next_sequence;
        self.next_sequence += 1;
        format_time(event.start_unix_ns, &mut self.time);
        let (signature, description) = self.results.entry(event.rv).or_insert_with(|| {
            (
                names::result_signature(event.rv),
                names::result_description(event.rv),
            )
        });
        let op = catalog::operation(event.function);
        let c = &self.context;
        Row {
            time_generated: Cow::Borrowed(&self.time),
            operation_name: Cow::Borrowed(op.name),
            opcode: Cow::Borrowed(op.opcode),
            hsm_instance: Cow::Borrowed(&c.hsm_instance),
            member_id: Cow::Borrowed(&c.hsm_instance),
            cluster_type: Cow::Borrowed(&c.cluster_type),
            pool_type: Cow::Borrowed(&c.cluster_type),
            caller_ip_address: Cow::Borrowed(&c.caller_ip_address),
            client_info: Cow::Borrowed(&c.client_info),
            client_sdk_package_version: Cow::Borrowed(&c.client_sdk_package_version),
            duration_ms: event.duration_ns / 1_000_000,
            result_type: Cow::Borrowed(if event.rv == 0 { "Success" } else { "Failure" }),
            result_signature: Cow::Borrowed(signature),
            result_description: Cow::Borrowed(description),
            source_system: Cow::Borrowed("hsm-audit"),
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
            writer_id: Cow::Borrowed(&c.writer_id),
            sequence_no,
            lost_rows: 0,
            lost_from: Cow::Borrowed(""),
            lost_to: Cow::Borrowed(""),
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
        let mut row = self.row(&Event {
            origin: Origin::Shim,
            ..Event::new(crate::function::FunctionId::GetInfo, 0, now_ns, 0)
        });
        row.operation_name = Cow::Borrowed(GAP_OPERATION);
        row.opcode = Cow::Borrowed("");
        row.pkcs11_function = Cow::Borrowed("");
        row.result_type = Cow::Borrowed("Failure");
        row.result_signature = Cow::Borrowed("HSM_AUDIT_ROWS_LOST");
        row.result_description = Cow::Owned(description);
        row.lost_rows = rows;
        row.lost_from = Cow::Owned(from);
        row.lost_to = Cow::Owned(to);
        row
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
        n.skip(3);
        let row = n.gap(4, 1_763_762_603_000_000_000, 1_763_762_604_000_000_000, 0);
        assert_eq!(row.operation_name, GAP_OPERATION);
        assert_eq!(row.sequence_no, 6);
        assert_eq!(row.lost_rows, 4);
        assert_eq!(row.lost_from, "2025-11-21T22:03:23.000000Z");
        assert_eq!(row.lost_to, "2025-11-21T22:03:24.000000Z");
        assert_eq!(row.call_origin, "shim");
    }
}
