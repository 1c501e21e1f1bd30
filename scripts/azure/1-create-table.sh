#!/usr/bin/env bash
# Creates the custom table CloudHsmServiceOperationAuditLogs_CL in the workspace, with the
# columns `hsm-audit schema table` prints (generated from the row schema).
# Needs: RESOURCE_GROUP, WORKSPACE.
. "$(dirname "$0")/common.sh"
need RESOURCE_GROUP WORKSPACE

# shellcheck disable=SC2046 # one argument per column is what --columns takes
az monitor log-analytics workspace table create \
    --resource-group "$RESOURCE_GROUP" --workspace-name "$WORKSPACE" \
    --name "$TABLE" --columns $("$HSM_AUDIT" schema table) --output none
echo "created table $TABLE in $WORKSPACE"
