# shellcheck shell=bash
# Shared by the scripts in this directory: checks the tools and the variables they need.
# Source it; do not run it.
set -euo pipefail

need() {
    local v
    for v in "$@"; do
        if [ -z "${!v:-}" ]; then
            echo "$(basename "$0"): set $v (see docs/azure.md)" >&2
            exit 2
        fi
    done
}

command -v az >/dev/null || { echo "$(basename "$0"): the Azure CLI (az) is not installed" >&2; exit 2; }
HSM_AUDIT="${HSM_AUDIT:-hsm-audit}"
command -v "$HSM_AUDIT" >/dev/null || { echo "$(basename "$0"): $HSM_AUDIT not found; set HSM_AUDIT to the binary" >&2; exit 2; }

# shellcheck disable=SC2034 # used by the scripts that source this file
TABLE=CloudHsmServiceOperationAuditLogs_CL
DCR_NAME="${DCR_NAME:-hsm-audit-ingestion}"

workspace_id() {
    az monitor log-analytics workspace show --resource-group "$RESOURCE_GROUP" \
        --workspace-name "$WORKSPACE" --query id --output tsv
}

workspace_location() {
    az monitor log-analytics workspace show --resource-group "$RESOURCE_GROUP" \
        --workspace-name "$WORKSPACE" --query location --output tsv
}
