//! The Cloud HSM cluster resource id (`resource_id`), checked once so the archive sink can
//! put it in paths without further care.

/// Resource provider and type of a Cloud HSM cluster (reference §3).
pub const PROVIDER: &str = "Microsoft.HardwareSecurityModules";
/// Resource type under [`PROVIDER`].
pub const TYPE: &str = "cloudHsmClusters";

/// A validated `/subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.HardwareSecurityModules/cloudHsmClusters/<name>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceId {
    subscription: String,
    resource_group: String,
    name: String,
}

const EXPECTED: &str = "expected /subscriptions/<subscription-guid>/resourceGroups/<group>/providers/Microsoft.HardwareSecurityModules/cloudHsmClusters/<name>";

impl ResourceId {
    /// Parses an id, case-insensitively as ARM does. The error is one line.
    pub fn parse(text: &str) -> Result<ResourceId, String> {
        let parts: Vec<&str> = text.trim().split('/').collect();
        let bad = |why: &str| Err(format!("{text:?}: {why}; {EXPECTED}"));
        if parts.len() != 9 || !parts[0].is_empty() {
            return bad("wrong number of path segments");
        }
        let fixed = [
            (1, "subscriptions"),
            (3, "resourceGroups"),
            (5, "providers"),
            (6, PROVIDER),
            (7, TYPE),
        ];
        for (i, want) in fixed {
            if !parts[i].eq_ignore_ascii_case(want) {
                return bad(&format!("segment {i} is {:?}, not {want:?}", parts[i]));
            }
        }
        let (sub, rg, name) = (parts[2], parts[4], parts[8]);
        if !is_guid(sub) {
            return bad("the subscription is not a GUID");
        }
        // ARM's rule for resource group names: 1-90 of letters, digits, `_-.()`, not ending in `.`.
        if rg.is_empty()
            || rg.len() > 90
            || rg.ends_with('.')
            || !rg
                .chars()
                .all(|c| c.is_alphanumeric() || "_-.()".contains(c))
        {
            return bad("the resource group name is not valid");
        }
        // Cluster names go into file paths: allow only a conservative set (no `.`, `/`, spaces).
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return bad("the cluster name must be 1-64 letters, digits, '-' or '_'");
        }
        Ok(ResourceId {
            subscription: sub.to_owned(),
            resource_group: rg.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The id upper-cased, as Azure writes it in archive paths and `resourceId` fields.
    pub fn upper(&self) -> String {
        format!(
            "/SUBSCRIPTIONS/{}/RESOURCEGROUPS/{}/PROVIDERS/{}/{}/{}",
            self.subscription, self.resource_group, PROVIDER, TYPE, self.name
        )
        .to_uppercase()
    }
}

fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "/subscriptions/361da5d4-a47a-4c79-afdd-0123456789ab/resourceGroups/rg-hsm/providers/Microsoft.HardwareSecurityModules/cloudHsmClusters/chsm1";

    #[test]
    fn parses_and_upper_cases() {
        let id = ResourceId::parse(GOOD).unwrap();
        assert_eq!(
            id.upper(),
            "/SUBSCRIPTIONS/361DA5D4-A47A-4C79-AFDD-0123456789AB/RESOURCEGROUPS/RG-HSM/PROVIDERS/MICROSOFT.HARDWARESECURITYMODULES/CLOUDHSMCLUSTERS/CHSM1"
        );
        assert_eq!(ResourceId::parse(&GOOD.to_lowercase()).unwrap(), id);
    }

    #[test]
    fn rejects_bad_ids_on_one_line() {
        for bad in [
            "",
            "chsm1",
            &GOOD.replace("cloudHsmClusters", "vaults"),
            &GOOD.replace("361da5d4-", "361da5d4"),
            &GOOD.replace("chsm1", "../x"),
            &GOOD.replace("chsm1", "a b"),
            &format!("{GOOD}/extra"),
        ] {
            let e = ResourceId::parse(bad).unwrap_err();
            assert!(!e.contains('\n') && e.contains("expected"), "{e}");
        }
    }
}
