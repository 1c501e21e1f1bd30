#!/usr/bin/env bash
# Optional alternative to `hsm-audit upload`: the Azure Monitor Agent on the HSM client VM
# tails the row files. Creates the JSON-log DCR from `hsm-audit schema ama-dcr` and
# associates it with the VM (the agent must already be installed there).
# Needs: RESOURCE_GROUP, WORKSPACE, VM_ID. Optional: FILE_PATTERN, AMA_DCR_NAME.
. "$(dirname "$0")/common.sh"
need RESOURCE_GROUP WORKSPACE VM_ID
name="${AMA_DCR_NAME:-hsm-audit-ama}"
pattern="${FILE_PATTERN:-/var/log/hsm-audit/hsm-audit-*.jsonl}"

location="$(workspace_location)"
rule_file="$(mktemp --suffix=.json)"
trap 'rm -f "$rule_file"' EXIT
"$HSM_AUDIT" schema ama-dcr --location "$location" --workspace-resource-id "$(workspace_id)" \
    --file-pattern "$pattern" >"$rule_file"

az monitor data-collection rule create --resource-group "$RESOURCE_GROUP" \
    --name "$name" --location "$location" --rule-file "$rule_file" --output none
rule_id="$(az monitor data-collection rule show --resource-group "$RESOURCE_GROUP" \
    --name "$name" --query id --output tsv)"
az monitor data-collection rule association create --name "$name" \
    --rule-id "$rule_id" --resource "$VM_ID" --output none
echo "the agent on $VM_ID now sends $pattern to $TABLE"
