//! Reading `p11-client` transcripts back: call lines `C_Name CKR_X [mech=…] [user=…]`,
//! indented fact lines, and the handles the module returned.

/// One PKCS#11 call as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallLine {
    /// `C_*` name.
    pub function: String,
    /// `CKR_*` name of the return value.
    pub rv: String,
    /// `CKM_*` name of the mechanism passed, if any.
    pub mechanism: Option<String>,
    /// `CKU_*` name of the user type passed, if any.
    pub user: Option<String>,
}

/// The calls of a transcript, in order.
pub fn calls(transcript: &str) -> Vec<CallLine> {
    transcript
        .lines()
        .filter(|l| l.starts_with("C_"))
        .map(|l| {
            let mut words = l.split_whitespace();
            let function = words.next().unwrap_or_default().to_owned();
            let rv = words.next().unwrap_or_default().to_owned();
            let (mut mechanism, mut user) = (None, None);
            for w in words {
                if let Some(m) = w.strip_prefix("mech=") {
                    mechanism = Some(m.to_owned());
                } else if let Some(u) = w.strip_prefix("user=") {
                    user = Some(u.to_owned());
                }
            }
            CallLine {
                function,
                rv,
                mechanism,
                user,
            }
        })
        .collect()
}

/// Every session and object handle the client printed (`handle <kind> <value>` facts).
pub fn handles(transcript: &str) -> Vec<u64> {
    transcript
        .lines()
        .filter_map(|l| l.trim().strip_prefix("handle "))
        .filter_map(|rest| rest.split_whitespace().nth(1)?.parse().ok())
        .collect()
}
