//! `libmock_pkcs11_v3.so`: a PKCS#11 3.0 vendor module for the shim's tests, made of
//! SoftHSM2 2.6 (a 2.40 module without interface negotiation) plus a 3.0 face. Test
//! infrastructure only.
//!
//! - `C_GetFunctionList`: a 2.40 table, labelled 2.40, whose entries are SoftHSM's own
//!   functions (calls go straight to SoftHSM).
//! - `C_GetInterfaceList` / `C_GetInterface`: three interfaces, in this order:
//!   1. "PKCS 11" 3.0, flags `CKF_INTERFACE_FORK_SAFE` (the default interface);
//!   2. "PKCS 11" 2.40, flags 0: `C_GetFunctionList`'s table;
//!   3. "Vendor MOCK" 1.0, flags 0: a vendor-specific table ([`MockFunctions`]).
//! - The 3.0 table: the 2.40 entries above, and 3.0 entries implemented here:
//!   `C_GetInterfaceList`, `C_GetInterface`, `C_LoginUser` (SoftHSM's `C_Login`; the user name
//!   is ignored), `C_SessionCancel` (cancels nothing: `C_GetSessionInfo`'s error for a bad
//!   session, else `CKR_OK`), and the message-based encrypt, decrypt and sign functions,
//!   which return `CKR_FUNCTION_NOT_SUPPORTED`.
//! - NULL entries, so tests can check that a wrapper sets an entry exactly where this module
//!   does: `C_GetFunctionStatus` and `C_CancelFunction` (both tables) and the five
//!   `C_MessageVerify*`/`C_VerifyMessage*` functions (3.0 table).
//!
//! - With `MOCK_PKCS11_ONLY_V32=1` in the environment (read once, on first use) it is instead
//!   a vendor offering only a "PKCS 11" 3.2 interface (the shape reported for SoftHSM's
//!   development branch and Kryoptic): `C_GetInterfaceList` lists two interfaces,
//!   1. "PKCS 11" 3.2, flags `CKF_INTERFACE_FORK_SAFE` (the default interface): a
//!      `CK_FUNCTION_LIST_3_2` holding the 3.0 table's entries, labelled 3.2, with every
//!      function 3.2 added (`C_EncapsulateKey` … `C_UnwrapKeyAuthenticated`) NULL;
//!   2. "Vendor MOCK" 1.0, as above;
//!
//!   and `C_GetInterface` knows only those (a request for "PKCS 11" 3.0 or 2.40 is refused).
//!   `C_GetFunctionList` still returns the 2.40 table, labelled 2.40.
//!
//! SoftHSM is `$SOFTHSM2_MODULE`, else `/usr/lib/softhsm/libsofthsm2.so`, loaded on first use;
//! when it cannot be loaded every function returns `CKR_GENERAL_ERROR` and the reason is
//! printed once on standard error. Every function runs behind [`guard`].

#![allow(non_snake_case)] // PKCS#11 names

use cryptoki_sys::*;
use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use std::ffi::{c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::OnceLock;

/// The vendor-specific interface's name.
pub const VENDOR_INTERFACE: &CStr = c"Vendor MOCK";
/// The environment variable that makes the module a 3.2-only vendor (value `1`).
pub const ONLY_V32_ENV: &str = "MOCK_PKCS11_ONLY_V32";
/// What `MOCK_Ping` writes.
pub const PING_ANSWER: CK_ULONG = 0x4d4f_434b; // "MOCK"

/// The function list of the "Vendor MOCK" interface.
#[repr(C)]
pub struct MockFunctions {
    /// 1.0.
    pub version: CK_VERSION,
    /// Writes [`PING_ANSWER`] to its argument; `CKR_ARGUMENTS_BAD` for NULL.
    pub MOCK_Ping: unsafe extern "C" fn(*mut CK_ULONG) -> CK_RV,
}

const V2_40: CK_VERSION = CK_VERSION {
    major: 2,
    minor: 40,
};
const V3_0: CK_VERSION = CK_VERSION { major: 3, minor: 0 };
const V3_2: CK_VERSION = CK_VERSION { major: 3, minor: 2 };

/// Everything the module hands out, built once and never freed.
struct Mock {
    /// SoftHSM's table (its functions are called through it).
    softhsm: CK_FUNCTION_LIST,
    v2: &'static CK_FUNCTION_LIST,
    /// What `C_GetInterfaceList` lists, in order; the first is the default.
    interfaces: Vec<CK_INTERFACE>,
    /// Kept so SoftHSM stays mapped.
    _lib: Library,
}

// SAFETY: function pointers and pointers to leaked, never-mutated statics.
unsafe impl Send for Mock {}
unsafe impl Sync for Mock {}

/// Runs `body`; a panic becomes `CKR_GENERAL_ERROR` instead of unwinding into C.
fn guard(body: impl FnOnce() -> CK_RV) -> CK_RV {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(CKR_GENERAL_ERROR)
}

fn mock() -> Result<&'static Mock, CK_RV> {
    static MOCK: OnceLock<Result<Mock, ()>> = OnceLock::new();
    MOCK.get_or_init(|| load().map_err(|e| eprintln!("mock_pkcs11_v3: {e}")))
        .as_ref()
        .map_err(|()| CKR_GENERAL_ERROR)
}

fn load() -> Result<Mock, String> {
    let path = std::env::var_os("SOFTHSM2_MODULE")
        .unwrap_or_else(|| "/usr/lib/softhsm/libsofthsm2.so".into());
    // SAFETY: loading SoftHSM runs its initialisers; that is what this module is for.
    let lib = unsafe { Library::open(Some(&path), RTLD_NOW | RTLD_LOCAL) }
        .map_err(|e| format!("cannot load SoftHSM {path:?}: {e}"))?;
    type GetFunctionList = unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV;
    // SAFETY: the PKCS#11 signature of this symbol.
    let get = unsafe { lib.get::<GetFunctionList>(b"C_GetFunctionList\0") }
        .map_err(|e| format!("{path:?}: {e}"))?;
    let mut list = ptr::null_mut();
    // SAFETY: a valid out-pointer; SoftHSM 2.6 returns its 2.40 table.
    if unsafe { get(&mut list) } != CKR_OK || list.is_null() {
        return Err(format!("{path:?}: C_GetFunctionList failed"));
    }
    // SAFETY: a CK_FUNCTION_LIST SoftHSM keeps alive while it is loaded.
    let softhsm = unsafe { ptr::read(list) };

    let mut v2 = softhsm;
    v2.version = V2_40;
    v2.C_GetFunctionList = Some(C_GetFunctionList);
    v2.C_GetFunctionStatus = None;
    v2.C_CancelFunction = None;
    let v2: &'static CK_FUNCTION_LIST = Box::leak(Box::new(v2));
    let v3: &'static CK_FUNCTION_LIST_3_0 = Box::leak(Box::new(v3_table(v2)));
    let vendor: &'static MockFunctions = Box::leak(Box::new(MockFunctions {
        version: CK_VERSION { major: 1, minor: 0 },
        MOCK_Ping: mock_ping,
    }));
    let interface = |name: &'static CStr, list: *const c_void, flags| CK_INTERFACE {
        pInterfaceName: name.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: list as *mut c_void,
        flags,
    };
    let interfaces = if std::env::var_os(ONLY_V32_ENV).is_some_and(|v| v == "1") {
        let v32: &'static CK_FUNCTION_LIST_3_2 = Box::leak(Box::new(v32_table(v3)));
        vec![
            interface(c"PKCS 11", v32 as *const _ as _, CKF_INTERFACE_FORK_SAFE),
            interface(VENDOR_INTERFACE, vendor as *const _ as _, 0),
        ]
    } else {
        vec![
            interface(c"PKCS 11", v3 as *const _ as _, CKF_INTERFACE_FORK_SAFE),
            interface(c"PKCS 11", v2 as *const _ as _, 0),
            interface(VENDOR_INTERFACE, vendor as *const _ as _, 0),
        ]
    };
    Ok(Mock {
        softhsm,
        v2,
        interfaces,
        _lib: lib,
    })
}

// CK_FUNCTION_LIST_3_2 begins with exactly CK_FUNCTION_LIST_3_0's fields and appends the
// functions 3.2 adds (the layout the PKCS#11 3.2 header gives it); `v32_table` relies on it.
const _: () = assert!(
    std::mem::offset_of!(CK_FUNCTION_LIST_3_2, C_MessageVerifyFinal)
        == std::mem::offset_of!(CK_FUNCTION_LIST_3_0, C_MessageVerifyFinal)
        && std::mem::offset_of!(CK_FUNCTION_LIST_3_2, C_EncapsulateKey)
            == std::mem::size_of::<CK_FUNCTION_LIST_3_0>()
);

/// The 3.2 table: a real `CK_FUNCTION_LIST_3_2`, the 3.0 table's entries labelled 3.2, with
/// the functions 3.2 adds NULL (this mock implements none of them).
fn v32_table(v3: &CK_FUNCTION_LIST_3_0) -> CK_FUNCTION_LIST_3_2 {
    let mut table = CK_FUNCTION_LIST_3_2::default();
    // SAFETY: the 3.0 fields are the 3.2 table's prefix, same types and offsets (checked
    // above); the 3.2 additions stay `None`.
    unsafe { ptr::write(&mut table as *mut _ as *mut CK_FUNCTION_LIST_3_0, *v3) };
    table.version = V3_2;
    table
}

/// The 3.0 table: `v2`'s entries, and the 3.0 functions of this module.
fn v3_table(v2: &CK_FUNCTION_LIST) -> CK_FUNCTION_LIST_3_0 {
    macro_rules! table {
        ($($f:ident),*) => {
            CK_FUNCTION_LIST_3_0 {
                version: V3_0,
                $( $f: v2.$f, )*
                C_GetInterfaceList: Some(C_GetInterfaceList),
                C_GetInterface: Some(C_GetInterface),
                C_LoginUser: Some(login_user),
                C_SessionCancel: Some(session_cancel),
                C_MessageEncryptInit: Some(message_init),
                C_EncryptMessage: Some(crypt_message),
                C_EncryptMessageBegin: Some(crypt_message_begin),
                C_EncryptMessageNext: Some(crypt_message_next),
                C_MessageEncryptFinal: Some(message_final),
                C_MessageDecryptInit: Some(message_init),
                C_DecryptMessage: Some(crypt_message),
                C_DecryptMessageBegin: Some(crypt_message_begin),
                C_DecryptMessageNext: Some(crypt_message_next),
                C_MessageDecryptFinal: Some(message_final),
                C_MessageSignInit: Some(message_init),
                C_SignMessage: Some(sign_message),
                C_SignMessageBegin: Some(sign_message_begin),
                C_SignMessageNext: Some(sign_message),
                C_MessageSignFinal: Some(message_final),
                C_MessageVerifyInit: None,
                C_VerifyMessage: None,
                C_VerifyMessageBegin: None,
                C_VerifyMessageNext: None,
                C_MessageVerifyFinal: None,
            }
        };
    }
    table!(
        C_Initialize,
        C_Finalize,
        C_GetInfo,
        C_GetFunctionList,
        C_GetSlotList,
        C_GetSlotInfo,
        C_GetTokenInfo,
        C_GetMechanismList,
        C_GetMechanismInfo,
        C_InitToken,
        C_InitPIN,
        C_SetPIN,
        C_OpenSession,
        C_CloseSession,
        C_CloseAllSessions,
        C_GetSessionInfo,
        C_GetOperationState,
        C_SetOperationState,
        C_Login,
        C_Logout,
        C_CreateObject,
        C_CopyObject,
        C_DestroyObject,
        C_GetObjectSize,
        C_GetAttributeValue,
        C_SetAttributeValue,
        C_FindObjectsInit,
        C_FindObjects,
        C_FindObjectsFinal,
        C_EncryptInit,
        C_Encrypt,
        C_EncryptUpdate,
        C_EncryptFinal,
        C_DecryptInit,
        C_Decrypt,
        C_DecryptUpdate,
        C_DecryptFinal,
        C_DigestInit,
        C_Digest,
        C_DigestUpdate,
        C_DigestKey,
        C_DigestFinal,
        C_SignInit,
        C_Sign,
        C_SignUpdate,
        C_SignFinal,
        C_SignRecoverInit,
        C_SignRecover,
        C_VerifyInit,
        C_Verify,
        C_VerifyUpdate,
        C_VerifyFinal,
        C_VerifyRecoverInit,
        C_VerifyRecover,
        C_DigestEncryptUpdate,
        C_DecryptDigestUpdate,
        C_SignEncryptUpdate,
        C_DecryptVerifyUpdate,
        C_GenerateKey,
        C_GenerateKeyPair,
        C_WrapKey,
        C_UnwrapKey,
        C_DeriveKey,
        C_SeedRandom,
        C_GenerateRandom,
        C_GetFunctionStatus,
        C_CancelFunction,
        C_WaitForSlotEvent
    )
}

/// The version of an interface's function list (every list starts with its version).
fn version_of(iface: &CK_INTERFACE) -> CK_VERSION {
    // SAFETY: our own interfaces point at our own tables.
    unsafe { *(iface.pFunctionList as *const CK_VERSION) }
}

/// `C_GetFunctionList`: the 2.40 table.
///
/// # Safety
/// `list` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    guard(|| {
        let m = match mock() {
            Ok(m) => m,
            Err(rv) => return rv,
        };
        if list.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: non-NULL and writable per the contract.
        unsafe { *list = m.v2 as *const CK_FUNCTION_LIST as *mut CK_FUNCTION_LIST };
        CKR_OK
    })
}

/// `C_GetInterfaceList`: the interfaces, in order.
///
/// # Safety
/// `count` is NULL or writable; `list` is NULL or has room for `*count` entries.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterfaceList(
    list: *mut CK_INTERFACE,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let m = match mock() {
            Ok(m) => m,
            Err(rv) => return rv,
        };
        if count.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        let n = m.interfaces.len();
        // SAFETY: non-NULL, readable and writable per the contract.
        let room = unsafe { *count } as usize;
        unsafe { *count = n as CK_ULONG };
        if list.is_null() {
            return CKR_OK;
        }
        if room < n {
            return CKR_BUFFER_TOO_SMALL;
        }
        // SAFETY: `list` has room for `room >= n` entries.
        unsafe { ptr::copy_nonoverlapping(m.interfaces.as_ptr(), list, n) };
        CKR_OK
    })
}

/// `C_GetInterface`: the first interface whose name (if given), version (if given) and
/// flags match; `CKR_ARGUMENTS_BAD` when none does.
///
/// # Safety
/// `name` NULL or NUL-terminated; `version` NULL or readable; `interface` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterface(
    name: *mut CK_UTF8CHAR,
    version: *mut CK_VERSION,
    interface: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    guard(|| {
        let m = match mock() {
            Ok(m) => m,
            Err(rv) => return rv,
        };
        if interface.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: per the contract.
        let name = (!name.is_null()).then(|| unsafe { CStr::from_ptr(name as *const _) });
        let version = (!version.is_null()).then(|| unsafe { *version });
        let found = m.interfaces.iter().find(|i| {
            // SAFETY: our names are C strings.
            let n = unsafe { CStr::from_ptr(i.pInterfaceName as *const _) };
            let v = version_of(i);
            name.is_none_or(|want| want == n)
                && version.is_none_or(|want| (want.major, want.minor) == (v.major, v.minor))
                && i.flags & flags == flags
        });
        match found {
            Some(i) => {
                // SAFETY: non-NULL and writable per the contract.
                unsafe { *interface = i as *const CK_INTERFACE as *mut CK_INTERFACE };
                CKR_OK
            }
            None => CKR_ARGUMENTS_BAD,
        }
    })
}

/// `C_LoginUser`: SoftHSM's `C_Login` (SoftHSM has no named users).
unsafe extern "C" fn login_user(
    session: CK_SESSION_HANDLE,
    user_type: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
    _username: *mut CK_UTF8CHAR,
    _username_len: CK_ULONG,
) -> CK_RV {
    guard(|| match mock().map(|m| m.softhsm.C_Login) {
        // SAFETY: the caller's arguments, as C_Login takes them.
        Ok(Some(login)) => unsafe { login(session, user_type, pin, pin_len) },
        Ok(None) => CKR_FUNCTION_NOT_SUPPORTED,
        Err(rv) => rv,
    })
}

/// `C_SessionCancel`: nothing to cancel; SoftHSM's answer for the session handle.
unsafe extern "C" fn session_cancel(session: CK_SESSION_HANDLE, _flags: CK_FLAGS) -> CK_RV {
    guard(|| match mock().map(|m| m.softhsm.C_GetSessionInfo) {
        Ok(Some(get_info)) => {
            // SAFETY: CK_SESSION_INFO is plain data; the pointer is to a local.
            let mut info: CK_SESSION_INFO = unsafe { std::mem::zeroed() };
            unsafe { get_info(session, &mut info) }
        }
        Ok(None) => CKR_FUNCTION_NOT_SUPPORTED,
        Err(rv) => rv,
    })
}

/// `MOCK_Ping`, the vendor-specific interface's one function.
unsafe extern "C" fn mock_ping(out: *mut CK_ULONG) -> CK_RV {
    guard(|| {
        if out.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: non-NULL; the caller passes a writable CK_ULONG.
        unsafe { *out = PING_ANSWER };
        CKR_OK
    })
}

/// The message-based functions this module does not support, one per signature shape.
macro_rules! not_supported {
    ($($name:ident($($t:ty),*);)*) => {$(
        unsafe extern "C" fn $name($(_: $t),*) -> CK_RV {
            guard(|| CKR_FUNCTION_NOT_SUPPORTED)
        }
    )*};
}

not_supported! {
    message_init(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE);
    message_final(CK_SESSION_HANDLE);
    crypt_message(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    crypt_message_begin(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG);
    crypt_message_next(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG, CK_FLAGS);
    sign_message(CK_SESSION_HANDLE, *mut c_void, CK_ULONG, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    sign_message_begin(CK_SESSION_HANDLE, *mut c_void, CK_ULONG);
}
