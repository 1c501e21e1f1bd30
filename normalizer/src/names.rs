//! Names for the scalar values an event carries: `CKR_*`, `CKM_*` and `CKU_*`.
//!
//! Return-value names come from the `cryptoki-sys` constants (listed by identifier, so a
//! value is never typed twice); descriptions and mechanism names come from `cryptoki`.

use cryptoki::error::{Rv, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki_sys::*;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::OnceLock;

macro_rules! ckr_names {
    ($( $c:ident ),* $(,)?) => {
        /// `CKR_*` name of a return value, or `None` for an unknown code.
        pub fn ckr_name(rv: u64) -> Option<&'static str> {
            #[allow(unreachable_patterns)]
            match rv as CK_RV {
                $( $c => Some(stringify!($c)), )*
                _ => None,
            }
        }
    };
}

ckr_names!(
    CKR_OK,
    CKR_CANCEL,
    CKR_HOST_MEMORY,
    CKR_SLOT_ID_INVALID,
    CKR_GENERAL_ERROR,
    CKR_FUNCTION_FAILED,
    CKR_ARGUMENTS_BAD,
    CKR_NO_EVENT,
    CKR_NEED_TO_CREATE_THREADS,
    CKR_CANT_LOCK,
    CKR_ATTRIBUTE_READ_ONLY,
    CKR_ATTRIBUTE_SENSITIVE,
    CKR_ATTRIBUTE_TYPE_INVALID,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_ACTION_PROHIBITED,
    CKR_DATA_INVALID,
    CKR_DATA_LEN_RANGE,
    CKR_DEVICE_ERROR,
    CKR_DEVICE_MEMORY,
    CKR_DEVICE_REMOVED,
    CKR_ENCRYPTED_DATA_INVALID,
    CKR_ENCRYPTED_DATA_LEN_RANGE,
    CKR_AEAD_DECRYPT_FAILED,
    CKR_FUNCTION_CANCELED,
    CKR_FUNCTION_NOT_PARALLEL,
    CKR_FUNCTION_NOT_SUPPORTED,
    CKR_KEY_HANDLE_INVALID,
    CKR_KEY_SIZE_RANGE,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_KEY_NOT_NEEDED,
    CKR_KEY_CHANGED,
    CKR_KEY_NEEDED,
    CKR_KEY_INDIGESTIBLE,
    CKR_KEY_FUNCTION_NOT_PERMITTED,
    CKR_KEY_NOT_WRAPPABLE,
    CKR_KEY_UNEXTRACTABLE,
    CKR_MECHANISM_INVALID,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_OBJECT_HANDLE_INVALID,
    CKR_OPERATION_ACTIVE,
    CKR_OPERATION_NOT_INITIALIZED,
    CKR_PIN_INCORRECT,
    CKR_PIN_INVALID,
    CKR_PIN_LEN_RANGE,
    CKR_PIN_EXPIRED,
    CKR_PIN_LOCKED,
    CKR_SESSION_CLOSED,
    CKR_SESSION_COUNT,
    CKR_SESSION_HANDLE_INVALID,
    CKR_SESSION_PARALLEL_NOT_SUPPORTED,
    CKR_SESSION_READ_ONLY,
    CKR_SESSION_EXISTS,
    CKR_SESSION_READ_ONLY_EXISTS,
    CKR_SESSION_READ_WRITE_SO_EXISTS,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
    CKR_TEMPLATE_INCOMPLETE,
    CKR_TEMPLATE_INCONSISTENT,
    CKR_TOKEN_NOT_PRESENT,
    CKR_TOKEN_NOT_RECOGNIZED,
    CKR_TOKEN_WRITE_PROTECTED,
    CKR_UNWRAPPING_KEY_HANDLE_INVALID,
    CKR_UNWRAPPING_KEY_SIZE_RANGE,
    CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
    CKR_USER_ALREADY_LOGGED_IN,
    CKR_USER_NOT_LOGGED_IN,
    CKR_USER_PIN_NOT_INITIALIZED,
    CKR_USER_TYPE_INVALID,
    CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
    CKR_USER_TOO_MANY_TYPES,
    CKR_WRAPPED_KEY_INVALID,
    CKR_WRAPPED_KEY_LEN_RANGE,
    CKR_WRAPPING_KEY_HANDLE_INVALID,
    CKR_WRAPPING_KEY_SIZE_RANGE,
    CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
    CKR_RANDOM_SEED_NOT_SUPPORTED,
    CKR_RANDOM_NO_RNG,
    CKR_DOMAIN_PARAMS_INVALID,
    CKR_CURVE_NOT_SUPPORTED,
    CKR_BUFFER_TOO_SMALL,
    CKR_SAVED_STATE_INVALID,
    CKR_INFORMATION_SENSITIVE,
    CKR_STATE_UNSAVEABLE,
    CKR_CRYPTOKI_NOT_INITIALIZED,
    CKR_CRYPTOKI_ALREADY_INITIALIZED,
    CKR_MUTEX_BAD,
    CKR_MUTEX_NOT_LOCKED,
    CKR_NEW_PIN_MODE,
    CKR_NEXT_OTP,
    CKR_EXCEEDED_MAX_ITERATIONS,
    CKR_FIPS_SELF_TEST_FAILED,
    CKR_LIBRARY_LOAD_FAILED,
    CKR_PIN_TOO_WEAK,
    CKR_PUBLIC_KEY_INVALID,
    CKR_FUNCTION_REJECTED,
    CKR_TOKEN_RESOURCE_EXCEEDED,
    CKR_OPERATION_CANCEL_FAILED,
    CKR_KEY_EXHAUSTED,
);

/// `ResultSignature`: the `CKR_*` name, or `CKR_VENDOR_DEFINED+0x…` / `0x…` for others.
#[allow(clippy::unnecessary_cast)] // CK_RV is c_ulong: not u64 on every target.
pub fn result_signature(rv: u64) -> String {
    match ckr_name(rv) {
        Some(name) => name.to_owned(),
        None if rv >= CKR_VENDOR_DEFINED => {
            format!("CKR_VENDOR_DEFINED+0x{:x}", rv - CKR_VENDOR_DEFINED)
        }
        None => format!("0x{rv:08x}"),
    }
}

/// `ResultDescription`: the PKCS#11 specification's description of the return value, as
/// `cryptoki` carries it.
pub fn result_description(rv: u64) -> String {
    match Rv::from(rv as CK_RV) {
        Rv::Ok => "Success".to_owned(),
        Rv::Error(RvError::UnknownErrorCode(code)) => format!("Unknown return value 0x{code:x}"),
        Rv::Error(e) => e.to_string(),
    }
}

/// `CKM_*` name of a mechanism type (`unknown 0x…` / vendor-defined as `cryptoki` says).
pub fn mechanism_name(mech: u64) -> &'static str {
    // cryptoki renders names into a fresh String; rows need them often, so each distinct
    // mechanism is rendered once and kept (a process uses a handful).
    static CACHE: OnceLock<Mutex<HashMap<u64, &'static str>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock();
    map.entry(mech).or_insert_with(|| {
        let name = match MechanismType::try_from(mech as CK_MECHANISM_TYPE) {
            Ok(m) => m.to_string(),
            Err(_) => format!("0x{mech:08x}"),
        };
        let name = if name.starts_with("unknown ") {
            format!("0x{mech:08x}")
        } else {
            name
        };
        Box::leak(name.into_boxed_str())
    })
}

/// `CKU_*` name of a user type.
pub fn user_type_name(user: u64) -> std::borrow::Cow<'static, str> {
    match user as CK_USER_TYPE {
        CKU_SO => "CKU_SO".into(),
        CKU_USER => "CKU_USER".into(),
        CKU_CONTEXT_SPECIFIC => "CKU_CONTEXT_SPECIFIC".into(),
        other => format!("0x{other:x}").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_for_common_values() {
        assert_eq!(result_signature(0), "CKR_OK");
        assert_eq!(result_signature(0xa0), "CKR_PIN_INCORRECT");
        assert_eq!(result_signature(0x8000_0001), "CKR_VENDOR_DEFINED+0x1");
        assert_eq!(result_signature(0x7777), "0x00007777");
        assert!(result_description(0xa0).contains("PIN is incorrect"));
        assert_eq!(mechanism_name(0x1041), "CKM_ECDSA");
        assert_eq!(mechanism_name(0x0001), "CKM_RSA_PKCS");
        assert_eq!(user_type_name(1), "CKU_USER");
    }
}
