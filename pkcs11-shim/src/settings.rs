//! The shim's configuration, read once from `HSM_AUDIT_CONFIG` and the environment.

use cryptoki_sys::{CKR_GENERAL_ERROR, CK_RV};
use normalizer::Config;
use std::sync::OnceLock;

static CONFIG: OnceLock<Result<Config, ()>> = OnceLock::new();

/// The configuration; on error every call returns `CKR_GENERAL_ERROR` and the reason was
/// logged once, naming the key or file.
pub fn config() -> Result<&'static Config, CK_RV> {
    CONFIG
        .get_or_init(|| match Config::load() {
            Ok(config) => {
                crate::diag::init(&config);
                Ok(config)
            }
            Err(e) => {
                crate::diag::error(format_args!("{e}"));
                Err(())
            }
        })
        .as_ref()
        .map_err(|()| CKR_GENERAL_ERROR)
}
