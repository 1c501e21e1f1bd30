#!/usr/bin/env bash
# Runs one query of scripts/queries against the workspace, e.g.
#   scripts/azure/5-query.sh scripts/queries/cloudhsm-login-session.kql
# Needs: RESOURCE_GROUP, WORKSPACE. Optional: TIMESPAN (ISO 8601, default P1D).
. "$(dirname "$0")/common.sh"
need RESOURCE_GROUP WORKSPACE
if [ $# -ne 1 ] || [ ! -f "$1" ]; then
    echo "usage: $0 QUERY.kql" >&2
    exit 2
fi

customer_id="$(az monitor log-analytics workspace show --resource-group "$RESOURCE_GROUP" \
    --workspace-name "$WORKSPACE" --query customerId --output tsv)"
az monitor log-analytics query --workspace "$customer_id" \
    --analytics-query "$(cat "$1")" --timespan "${TIMESPAN:-P1D}" --output table
