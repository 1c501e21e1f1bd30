//! The event the shim sends for each PKCS#11 call: small, `Copy`, fixed size, and made
//! only of scalars the shim may read (never a handle, PIN, label or ID).

use crate::function::FunctionId;

/// Who made the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The host application (every forwarded call).
    Application,
    /// The shim itself (e.g. the `C_GetInfo` it issues to learn the vendor's version).
    Shim,
    /// The host application, refused by the shim (`on_write_failure = "fail-closed"` while
    /// rows could not be written): the call never reached the vendor module.
    Refused,
}

/// One PKCS#11 call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// Which function was called.
    pub function: FunctionId,
    /// Who called it.
    pub origin: Origin,
    /// The `CK_RV` the vendor returned (and the shim passed back unchanged).
    pub rv: u64,
    /// Wall-clock start, nanoseconds since the Unix epoch (UTC).
    pub start_unix_ns: u64,
    /// Time spent inside the vendor module, nanoseconds.
    pub duration_ns: u64,
    /// `CK_MECHANISM_TYPE`, for calls that take a mechanism and passed a non-NULL one.
    pub mechanism: Option<u64>,
    /// `CK_USER_TYPE`, for `C_Login` / `C_LoginUser`.
    pub user_type: Option<u64>,
}

impl Event {
    /// An event with no mechanism or user type.
    pub const fn new(function: FunctionId, rv: u64, start_unix_ns: u64, duration_ns: u64) -> Event {
        Event {
            function,
            origin: Origin::Application,
            rv,
            start_unix_ns,
            duration_ns,
            mechanism: None,
            user_type: None,
        }
    }
}

#[cfg(test)]
mod tests {
    /// The README and the channel sizing assume a 64-byte event.
    #[test]
    fn an_event_is_64_bytes() {
        assert_eq!(std::mem::size_of::<super::Event>(), 64);
    }
}
