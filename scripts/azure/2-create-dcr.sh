#!/usr/bin/env bash
# Creates the Logs Ingestion data collection rule (kind Direct, so it has its own ingestion
# endpoint) from `hsm-audit schema dcr`, then prints what `hsm-audit upload` needs.
# Needs: RESOURCE_GROUP, WORKSPACE. Optional: DCR_NAME (default hsm-audit-ingestion).
. "$(dirname "$0")/common.sh"
need RESOURCE_GROUP WORKSPACE

location="$(workspace_location)"
rule_file="$(mktemp --suffix=.json)"
trap 'rm -f "$rule_file"' EXIT
"$HSM_AUDIT" schema dcr --location "$location" --workspace-resource-id "$(workspace_id)" >"$rule_file"

az monitor data-collection rule create --resource-group "$RESOURCE_GROUP" \
    --name "$DCR_NAME" --location "$location" --rule-file "$rule_file" --output none

show() {
    az monitor data-collection rule show --resource-group "$RESOURCE_GROUP" \
        --name "$DCR_NAME" --query "$1" --output tsv
}
echo "DCR_ID=$(show id)"
echo "DCR_IMMUTABLE_ID=$(show properties.immutableId)"
echo "INGESTION_ENDPOINT=$(show properties.endpoints.logsIngestion)"
