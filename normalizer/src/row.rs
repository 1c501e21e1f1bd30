//! The row schema: one `CloudHsmServiceOperationAuditLogs` row per event.
//!
//! This is the one place the columns are declared. The struct, the `COLUMNS` table (name,
//! Kusto type, meaning) that docs and generated table schemas use, and the JSON keys all
//! come from the single `row_schema!` invocation below.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// One column of the row schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// JSON key and Log Analytics column name.
    pub name: &'static str,
    /// Kusto type (`string`, `datetime`, `int`, `long`).
    pub kind: &'static str,
    /// Whether the column is one of the Azure table's own (`false`: ours).
    pub azure: bool,
    /// What it holds.
    pub description: &'static str,
}

macro_rules! row_schema {
    (
        shape { $( $(#[doc = $sdoc:literal])+ $sfield:ident : $sty:ty => $scol:literal, $skind:literal, $sazure:literal; )* }
        per_row { $( $(#[doc = $pdoc:literal])+ $pfield:ident : $pty:ty => $pcol:literal, $pkind:literal, $pazure:literal; )* }
    ) => {
        /// One audit row. String columns borrow from the writer's context where they can.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub struct Row<'a> {
            $( $(#[doc = $sdoc])+ #[serde(rename = $scol)] pub $sfield: $sty, )*
            $( $(#[doc = $pdoc])+ #[serde(rename = $pcol)] pub $pfield: $pty, )*
        }

        /// Every column, in the order rows are written.
        pub const COLUMNS: &[Column] = &[
            $( Column { name: $scol, kind: $skind, azure: $sazure, description: concat!($($sdoc),+) }, )*
            $( Column { name: $pcol, kind: $pkind, azure: $pazure, description: concat!($($pdoc),+) }, )*
        ];

        /// How many of [`COLUMNS`] are shape columns (the first ones).
        pub const SHAPE_COLUMNS: usize = [$($scol),*].len();

        impl Row<'_> {
            /// Appends the row as one JSON object, byte for byte what `serde_json::to_writer`
            /// writes, but faster: column names are constants here rather than strings to
            /// escape, and values are scanned for escapes a chunk at a time.
            pub fn write_json(&self, out: &mut Vec<u8>) {
                self.write_json_shape(out);
                self.write_json_per_row(out);
            }

            /// The start of [`Row::write_json`]: `{` and the shape columns.
            pub fn write_json_shape(&self, out: &mut Vec<u8>) {
                let start = out.len();
                $(
                    out.extend_from_slice(concat!(",\"", $scol, "\":").as_bytes());
                    JsonValue::write_json(&self.$sfield, out);
                )*
                // The first column's leading comma becomes the opening brace.
                out[start] = b'{';
            }

            /// The rest of [`Row::write_json`]: the per-row columns and `}`.
            pub fn write_json_per_row(&self, out: &mut Vec<u8>) {
                $(
                    out.extend_from_slice(concat!(",\"", $pcol, "\":").as_bytes());
                    JsonValue::write_json(&self.$pfield, out);
                )*
                out.push(b'}');
            }
        }
    };
}

/// A column value `Row::write_json` can render.
trait JsonValue {
    fn write_json(&self, out: &mut Vec<u8>);
}

impl JsonValue for u64 {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut n = *self;
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(&digits[i..]);
    }
}

impl JsonValue for Cow<'_, str> {
    fn write_json(&self, out: &mut Vec<u8>) {
        let bytes = self.as_bytes();
        if needs_escape(bytes) {
            // Rare: let serde_json escape it, so the bytes stay exactly its own.
            serde_json::to_writer(&mut *out, self.as_ref()).expect("a Vec accepts any write");
        } else {
            out.reserve(bytes.len() + 2);
            out.push(b'"');
            out.extend_from_slice(bytes);
            out.push(b'"');
        }
    }
}

/// Whether JSON needs an escape in `bytes`: a control character, `"` or `\\` (serde_json
/// escapes exactly these). Most values are short, so this reads 8 bytes at a time (the last
/// word overlapping the one before) instead of looping over bytes.
fn needs_escape(bytes: &[u8]) -> bool {
    fn special(b: u8) -> bool {
        b < 0x20 || b == b'"' || b == b'\\'
    }
    if bytes.len() < 8 {
        return bytes.iter().any(|&b| special(b));
    }
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let mut i = 0;
    while i + 8 <= bytes.len() {
        if word_has_special(word(i)) {
            return true;
        }
        i += 8;
    }
    i < bytes.len() && word_has_special(word(bytes.len() - 8))
}

/// Whether any byte of `v` is below 0x20, `"` or `\\`. The "has a byte less than n" bit
/// trick: exact as a yes/no for n <= 128.
fn word_has_special(v: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES * 0x80;
    let has_less = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    let quote = v ^ (ONES * u64::from(b'"'));
    let backslash = v ^ (ONES * u64::from(b'\\'));
    (has_less(v, 0x20) | has_less(quote, 1) | has_less(backslash, 1)) != 0
}

row_schema! {
    // Shape columns: in call rows, the same for every row of one writer with the same
    // function, result, mechanism, user type and origin. They come first so the writer renders
    // them and feeds them to SHA-256 once per shape, not once per row (`chain::Head`).
    shape {
        /// Operation name from the catalog, e.g. `CN_LOGIN`.
        operation_name: Cow<'a, str> => "OperationName", "string", true;
        /// Published opcode for the operation name (hex), or empty.
        opcode: Cow<'a, str> => "Opcode", "string", true;
        /// The PKCS#11 function, e.g. `C_Login`.
        pkcs11_function: Cow<'a, str> => "Pkcs11Function", "string", false;
        /// The `CKM_*` mechanism, for calls that pass one; else empty.
        mechanism: Cow<'a, str> => "Mechanism", "string", false;
        /// The `CKU_*` user type, for `C_Login` and `C_LoginUser`; else empty.
        user_type: Cow<'a, str> => "UserType", "string", false;
        /// `Success` when the call returned `CKR_OK`, else `Failure`.
        result_type: Cow<'a, str> => "ResultType", "string", true;
        /// The `CKR_*` name of the return value.
        result_signature: Cow<'a, str> => "ResultSignature", "string", true;
        /// The PKCS#11 description of the return value.
        result_description: Cow<'a, str> => "ResultDescription", "string", true;
        /// `application`; `shim` for calls the shim made itself and for gap rows; `refused` for
        /// calls refused under `on_write_failure = "fail-closed"`; empty in checkpoints.
        call_origin: Cow<'a, str> => "CallOrigin", "string", false;
        /// `call` for a PKCS#11 call, `checkpoint` for a hash-chain checkpoint, `gap` for an
        /// `HSM_AUDIT_GAP` row reporting lost rows (neither is a call).
        record_type: Cow<'a, str> => "RecordType", "string", false;
        /// Configured HSM instance (`hsm_instance`).
        hsm_instance: Cow<'a, str> => "HsmInstance", "string", true;
        /// Same value as HsmInstance, under the column's earlier name.
        member_id: Cow<'a, str> => "MemberId", "string", true;
        /// Configured cluster type (`cluster_type`).
        cluster_type: Cow<'a, str> => "ClusterType", "string", true;
        /// Same value as ClusterType, under the column's earlier name.
        pool_type: Cow<'a, str> => "PoolType", "string", true;
        /// Configured caller IP (`caller_ip_address`), else the host's first non-loopback address.
        caller_ip_address: Cow<'a, str> => "CallerIpAddress", "string", true;
        /// Calling program and process id, e.g. `pkcs11-tool (pid 4242)`.
        client_info: Cow<'a, str> => "ClientInfo", "string", true;
        /// Vendor library description and version from `C_GetInfo`, once initialised.
        client_sdk_package_version: Cow<'a, str> => "ClientSdkPackageVersion", "string", true;
        /// Always `hsm-audit`: the agent that produced the row.
        source_system: Cow<'a, str> => "SourceSystem", "string", true;
        /// Random id of the writer (one per process and fork) that wrote the row.
        writer_id: Cow<'a, str> => "WriterId", "string", false;
        /// In an `HSM_AUDIT_GAP` row, how many rows of this writer were lost before it (their
        /// SequenceNo values are missing); 0 in other rows.
        lost_rows: u64 => "LostRows", "long", false;
        /// In an `HSM_AUDIT_GAP` row, when the first lost call started; else empty.
        lost_from: Cow<'a, str> => "LostFrom", "datetime", false;
        /// In an `HSM_AUDIT_GAP` row, when the last lost call started; else empty.
        lost_to: Cow<'a, str> => "LostTo", "datetime", false;
        /// In a checkpoint, how many rows of the stream precede it (= SequenceNo - 1, lost rows
        /// included); 0 in other rows.
        chain_count: u64 => "ChainCount", "long", false;
        /// In a signed checkpoint, the Ed25519 signature (hex) of its chain head; else empty.
        signature: Cow<'a, str> => "Signature", "string", false;
    }
    // Per-row columns. RowHash stays last: the chain's canonical form relies on it.
    per_row {
        /// UTC time the call started (RFC 3339, microseconds).
        time_generated: Cow<'a, str> => "TimeGenerated", "datetime", true;
        /// Time spent in the vendor module, whole milliseconds (rounded down).
        duration_ms: u64 => "DurationMs", "int", true;
        /// Time spent in the vendor module, microseconds.
        duration_us: u64 => "DurationUs", "long", false;
        /// Position of the row in its writer's stream: 1, 2, 3…; a number is missing only for a
        /// row counted in the `LostRows` of an `HSM_AUDIT_GAP` row.
        sequence_no: u64 => "SequenceNo", "long", false;
        /// RowHash of the previous row of this writer's stream on disk (lost rows are not in the
        /// chain); 64 zeros for the first row.
        prev_hash: Cow<'a, str> => "PrevHash", "string", false;
        /// SHA-256 (hex) of every byte of this row's JSON line before this value. Stays last.
        row_hash: Cow<'a, str> => "RowHash", "string", false;
    }
}

impl Row<'_> {
    /// Whether the row records a successful call.
    pub fn succeeded(&self) -> bool {
        self.result_type == "Success"
    }

    /// Copies every borrowed string, so the row outlives its source.
    pub fn into_owned(self) -> Row<'static> {
        let v = serde_json::to_value(&self).expect("a row always serialises");
        serde_json::from_value(v).expect("a row always deserialises from its own JSON")
    }
}

/// Parses one JSON Lines row.
pub fn parse_line(line: &str) -> Result<Row<'_>, serde_json::Error> {
    serde_json::from_str(line)
}

/// The columns as a Markdown table (what the README shows).
pub fn markdown() -> String {
    let mut out = String::from("| column | type | Azure table | meaning |\n|---|---|---|---|\n");
    for c in COLUMNS {
        let azure = if c.azure { "yes" } else { "ours" };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            c.name,
            c.kind,
            azure,
            c.description.trim()
        ));
    }
    out
}

#[cfg(test)]
/// A complete, valid row for tests elsewhere in the crate (override fields with `..sample()`).
pub(crate) fn sample() -> Row<'static> {
    Row {
        time_generated: "2026-11-21T22:03:23.123456Z".into(),
        operation_name: "CN_LOGIN".into(),
        opcode: "0xd".into(),
        hsm_instance: "hsm1".into(),
        member_id: "hsm1".into(),
        cluster_type: "".into(),
        pool_type: "".into(),
        caller_ip_address: "10.0.0.4".into(),
        client_info: "app (pid 1)".into(),
        client_sdk_package_version: "".into(),
        duration_ms: 1,
        result_type: "Success".into(),
        result_signature: "CKR_OK".into(),
        result_description: "Success".into(),
        source_system: "hsm-audit".into(),
        pkcs11_function: "C_Login".into(),
        mechanism: "".into(),
        user_type: "CKU_USER".into(),
        call_origin: "application".into(),
        duration_us: 1500,
        writer_id: "00ff".into(),
        sequence_no: 1,
        lost_rows: 0,
        lost_from: "".into(),
        lost_to: "".into(),
        record_type: "call".into(),
        chain_count: 0,
        signature: "".into(),
        prev_hash: "0".repeat(64).into(),
        row_hash: "ab".repeat(32).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::sample;

    #[test]
    fn json_keys_are_the_columns_in_order() {
        let json = serde_json::to_string(&sample()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
        // serde_json's map is sorted unless preserve_order; compare as sets, then order.
        let mut sorted = keys.clone();
        sorted.sort();
        names.sort();
        assert_eq!(sorted, names);
        let first = json.find("\"TimeGenerated\"").unwrap();
        let last = json.find("\"SequenceNo\"").unwrap();
        assert!(first < last);
        // The chain's canonical form relies on RowHash closing the line.
        assert_eq!(COLUMNS.last().unwrap().name, "RowHash");
        assert!(json.ends_with(&format!("\"RowHash\":\"{}\"}}", "ab".repeat(32))));
    }

    #[test]
    fn write_json_is_byte_for_byte_serde_json() {
        let texts = [
            "",
            "plain ascii",
            "caf\u{e9} \u{1f510} \u{7f}",
            "\"",
            "back\\slash",
            "line\nbreak\ttab\u{1}\u{1f}",
            "sixteen bytes ok and then a \" past the first chunk",
            "exactly 16 bytes",
            "exactly 16 byte\"",
        ];
        for (i, text) in texts.iter().enumerate() {
            let mut row = sample();
            row.client_info = Cow::Borrowed(text);
            row.hsm_instance = Cow::Owned(texts[(i + 1) % texts.len()].repeat(3));
            row.duration_us = [0, 9, 10, 1_500, u64::MAX][i % 5];
            row.sequence_no = i as u64;
            let mut fast = b"prefix".to_vec();
            row.write_json(&mut fast);
            let mut expected = b"prefix".to_vec();
            expected.extend(serde_json::to_vec(&row).unwrap());
            assert_eq!(
                String::from_utf8_lossy(&fast),
                String::from_utf8_lossy(&expected)
            );
        }
    }

    #[test]
    fn escape_scan_agrees_with_a_byte_loop() {
        let naive = |b: &[u8]| b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\');
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // Mostly harmless bytes (printable and >= 0x80), a special one now and then.
        let alphabet: Vec<u8> = (0x20..=0xffu8)
            .filter(|&c| c != b'"' && c != b'\\')
            .collect();
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            if len > 0 && next() % 2 == 0 {
                let special = [0u8, 0x1f, b'"', b'\\', b'\n'][(next() % 5) as usize];
                bytes[(next() % len as u64) as usize] = special;
            }
            assert_eq!(needs_escape(&bytes), naive(&bytes), "{bytes:?}");
        }
    }

    #[test]
    fn rows_round_trip() {
        let json = serde_json::to_string(&sample()).unwrap();
        assert_eq!(parse_line(&json).unwrap(), sample());
        assert!(sample().succeeded());
    }

    #[test]
    fn column_names_fit_custom_table_rules() {
        for c in COLUMNS {
            assert!(c.name.len() <= 45 && c.name.chars().next().unwrap().is_ascii_alphabetic());
            assert!(c
                .name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_'));
            assert!(!c.description.is_empty());
        }
    }
}
