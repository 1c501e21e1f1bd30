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
    ($( $(#[doc = $doc:literal])+ $field:ident : $ty:ty => $col:literal, $kind:literal, $azure:literal; )*) => {
        /// One audit row. String columns borrow from the writer's context where they can.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub struct Row<'a> {
            $( $(#[doc = $doc])+ #[serde(rename = $col)] pub $field: $ty, )*
        }

        /// Every column, in the order rows are written.
        pub const COLUMNS: &[Column] = &[
            $( Column { name: $col, kind: $kind, azure: $azure, description: concat!($($doc),+) }, )*
        ];
    };
}

row_schema! {
    /// UTC time the call started (RFC 3339, microseconds).
    time_generated: Cow<'a, str> => "TimeGenerated", "datetime", true;
    /// Operation name from the catalog, e.g. `CN_LOGIN`.
    operation_name: Cow<'a, str> => "OperationName", "string", true;
    /// Published opcode for the operation name (hex), or empty.
    opcode: Cow<'a, str> => "Opcode", "string", true;
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
    /// Time spent in the vendor module, whole milliseconds (rounded down).
    duration_ms: u64 => "DurationMs", "int", true;
    /// `Success` when the call returned `CKR_OK`, else `Failure`.
    result_type: Cow<'a, str> => "ResultType", "string", true;
    /// The `CKR_*` name of the return value.
    result_signature: Cow<'a, str> => "ResultSignature", "string", true;
    /// The PKCS#11 description of the return value.
    result_description: Cow<'a, str> => "ResultDescription", "string", true;
    /// Always `hsm-audit`: the agent that produced the row.
    source_system: Cow<'a, str> => "SourceSystem", "string", true;
    /// The PKCS#11 function, e.g. `C_Login`.
    pkcs11_function: Cow<'a, str> => "Pkcs11Function", "string", false;
    /// The `CKM_*` mechanism, for calls that pass one; else empty.
    mechanism: Cow<'a, str> => "Mechanism", "string", false;
    /// The `CKU_*` user type, for `C_Login` and `C_LoginUser`; else empty.
    user_type: Cow<'a, str> => "UserType", "string", false;
    /// `application`, or `shim` for calls the shim made itself.
    call_origin: Cow<'a, str> => "CallOrigin", "string", false;
    /// Time spent in the vendor module, microseconds.
    duration_us: u64 => "DurationUs", "long", false;
    /// Random id of the writer (one per process and fork) that wrote the row.
    writer_id: Cow<'a, str> => "WriterId", "string", false;
    /// Position of the row in its writer's stream: 1, 2, 3…; a number is missing only for a
    /// row counted in the `LostRows` of an `HSM_AUDIT_GAP` row.
    sequence_no: u64 => "SequenceNo", "long", false;
    /// In an `HSM_AUDIT_GAP` row, how many rows of this writer were lost before it (their
    /// SequenceNo values are missing); 0 in call rows.
    lost_rows: u64 => "LostRows", "long", false;
    /// In an `HSM_AUDIT_GAP` row, when the first lost call started; else empty.
    lost_from: Cow<'a, str> => "LostFrom", "datetime", false;
    /// In an `HSM_AUDIT_GAP` row, when the last lost call started; else empty.
    lost_to: Cow<'a, str> => "LostTo", "datetime", false;
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
mod tests {
    use super::*;

    fn sample() -> Row<'static> {
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
        }
    }

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
