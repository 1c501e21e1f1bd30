//! The Log Analytics custom table and the data collection rules (DCRs), generated from the
//! one row schema ([`crate::row::COLUMNS`]) so they cannot drift from what we write.

use crate::row::COLUMNS;
use serde_json::{json, Value};

/// The custom twin of `CloudHsmServiceOperationAuditLogs` (the Azure table itself does not
/// accept the Logs Ingestion API, reference §1).
pub const TABLE: &str = "CloudHsmServiceOperationAuditLogs_CL";
/// Input stream of the Logs Ingestion DCR (`--stream` of `hsm-audit upload`).
pub const STREAM: &str = "Custom-CloudHsmServiceOperationAuditLogs";
/// Input stream of the Azure Monitor Agent JSON-log DCR. The `Custom-Json-<table>` form is
/// taken from Microsoft's sample DCRs (inferred: not in the reference facts).
pub const AMA_STREAM: &str = "Custom-Json-CloudHsmServiceOperationAuditLogs_CL";
/// Output stream both DCRs write to.
pub const OUTPUT_STREAM: &str = "Custom-CloudHsmServiceOperationAuditLogs_CL";
/// Column names a custom table may not use (reference §1).
pub const RESERVED: &[&str] = &[
    "_ResourceId",
    "id",
    "_SubscriptionId",
    "TenantId",
    "Type",
    "UniqueId",
    "Title",
];
/// Default file pattern the Azure Monitor Agent tails (the shim's default output).
pub const DEFAULT_FILE_PATTERN: &str = "/var/log/hsm-audit/hsm-audit-*.jsonl";
/// The DCR passes rows through unchanged: the stream already has the table's shape.
pub const TRANSFORM_KQL: &str = "source";

/// Table column type for a row.rs `kind` (custom table types, reference §1).
pub fn table_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "datetime" => "dateTime",
        "string" => "string",
        "int" => "int",
        "long" => "long",
        "real" => "real",
        "boolean" | "bool" => "boolean",
        "dynamic" => "dynamic",
        "guid" => "guid",
        _ => return None,
    })
}

/// DCR stream-declaration type for a row.rs `kind`. DCR streams spell it `datetime` and
/// have no `guid` (DCR structure reference).
pub fn stream_type(kind: &str) -> Option<&'static str> {
    Some(match table_type(kind)? {
        "dateTime" => "datetime",
        "guid" => "string",
        t => t,
    })
}

fn is_reserved(name: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name))
}

/// The custom table's columns and their types: every row column except reserved names.
pub fn table_columns() -> Vec<(&'static str, &'static str)> {
    COLUMNS
        .iter()
        .filter(|c| !is_reserved(c.name))
        .filter_map(|c| Some((c.name, table_type(c.kind)?)))
        .collect()
}

/// The columns as `az monitor log-analytics workspace table create --columns` arguments.
pub fn az_columns() -> String {
    table_columns()
        .iter()
        .map(|(n, t)| format!("{n}={t}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The table as the body of the workspace Tables REST API (`az rest --method put`).
pub fn table_json() -> Value {
    let columns: Vec<Value> = table_columns()
        .iter()
        .map(|(n, t)| json!({ "name": n, "type": t }))
        .collect();
    json!({ "properties": { "schema": { "name": TABLE, "columns": columns } } })
}

fn stream_columns() -> Vec<Value> {
    COLUMNS
        .iter()
        .filter(|c| !is_reserved(c.name))
        .filter_map(|c| Some(json!({ "name": c.name, "type": stream_type(c.kind)? })))
        .collect()
}

/// The names the ingestion stream declares (what each uploaded object may hold).
pub fn stream_column_names() -> Vec<&'static str> {
    table_columns().iter().map(|(n, _)| *n).collect()
}

fn destinations(workspace_resource_id: &str) -> Value {
    json!({ "logAnalytics": [ { "workspaceResourceId": workspace_resource_id, "name": "workspace" } ] })
}

/// The Logs Ingestion DCR for `az monitor data-collection rule create --rule-file`.
/// `kind: Direct` gives the DCR its own ingestion endpoint (`properties.endpoints.logsIngestion`),
/// so no separate data collection endpoint is needed (DCR structure reference, DCRs created
/// since March 2024).
pub fn ingestion_dcr(location: &str, workspace_resource_id: &str) -> Value {
    json!({
        "location": location,
        "kind": "Direct",
        "properties": {
            "description": "hsm-audit rows via the Logs Ingestion API",
            "streamDeclarations": { STREAM: { "columns": stream_columns() } },
            "destinations": destinations(workspace_resource_id),
            "dataFlows": [ {
                "streams": [STREAM],
                "destinations": ["workspace"],
                "transformKql": TRANSFORM_KQL,
                "outputStream": OUTPUT_STREAM
            } ]
        }
    })
}

/// The Azure Monitor Agent DCR that tails the JSON Lines row files on a Linux host.
/// The `logFiles` data source with `format: json` follows Microsoft's JSON-log samples
/// (inferred: not in the reference facts).
pub fn ama_dcr(location: &str, workspace_resource_id: &str, file_pattern: &str) -> Value {
    json!({
        "location": location,
        "kind": "Linux",
        "properties": {
            "description": "hsm-audit row files tailed by the Azure Monitor Agent",
            "streamDeclarations": { AMA_STREAM: { "columns": stream_columns() } },
            "dataSources": { "logFiles": [ {
                "name": "hsmAuditRows",
                "streams": [AMA_STREAM],
                "filePatterns": [file_pattern],
                "format": "json"
            } ] },
            "destinations": destinations(workspace_resource_id),
            "dataFlows": [ {
                "streams": [AMA_STREAM],
                "destinations": ["workspace"],
                "transformKql": TRANSFORM_KQL,
                "outputStream": OUTPUT_STREAM
            } ]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_kind_has_a_type_and_no_column_is_reserved() {
        for c in COLUMNS {
            assert!(table_type(c.kind).is_some(), "{}: {}", c.name, c.kind);
            assert!(!is_reserved(c.name), "{}", c.name);
        }
        assert_eq!(table_columns().len(), COLUMNS.len());
        assert!(table_columns().contains(&("TimeGenerated", "dateTime")));
        assert!(table_columns().contains(&("SequenceNo", "long")));
        assert!(az_columns().starts_with("OperationName=string Opcode=string"));
        assert!(az_columns().contains(" TimeGenerated=dateTime "));
    }

    #[test]
    fn dcrs_declare_every_column_and_route_to_the_table() {
        for dcr in [
            ingestion_dcr("westeurope", "/ws"),
            ama_dcr("westeurope", "/ws", DEFAULT_FILE_PATTERN),
        ] {
            let p = &dcr["properties"];
            let (stream, decl) = p["streamDeclarations"]
                .as_object()
                .unwrap()
                .iter()
                .next()
                .unwrap();
            let names: Vec<&str> = decl["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, stream_column_names());
            let time = decl["columns"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == "TimeGenerated")
                .unwrap();
            assert_eq!(time["type"], "datetime");
            let flow = &p["dataFlows"][0];
            assert_eq!(flow["streams"][0], stream.as_str());
            assert_eq!(flow["outputStream"], OUTPUT_STREAM);
            assert_eq!(flow["transformKql"], "source");
            assert_eq!(
                p["destinations"]["logAnalytics"][0]["workspaceResourceId"],
                "/ws"
            );
        }
        assert_eq!(format!("Custom-{TABLE}"), OUTPUT_STREAM);
        assert_eq!(table_json()["properties"]["schema"]["name"], TABLE);
    }
}
