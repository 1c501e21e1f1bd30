#!/usr/bin/env bash
# Lets the uploader's identity send to the DCR: Monitoring Metrics Publisher on the rule.
# Needs: ASSIGNEE (the service principal's app id, or the managed identity's principal id),
# RESOURCE_GROUP. Optional: DCR_NAME.
. "$(dirname "$0")/common.sh"
need ASSIGNEE RESOURCE_GROUP

dcr_id="$(az monitor data-collection rule show --resource-group "$RESOURCE_GROUP" \
    --name "$DCR_NAME" --query id --output tsv)"
az role assignment create --assignee "$ASSIGNEE" \
    --role "Monitoring Metrics Publisher" --scope "$dcr_id" --output none
echo "assigned Monitoring Metrics Publisher on $dcr_id to $ASSIGNEE (allow up to 30 minutes to apply)"
