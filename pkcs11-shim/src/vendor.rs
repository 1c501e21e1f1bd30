//! The vendor module: loaded lazily and once, with its function table copied out.

use crate::diag;
use cryptoki_sys::*;
use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use normalizer::Config;
use std::ptr;
use std::sync::OnceLock;

type GetFunctionListFn = unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV;
type GetInterfaceListFn = unsafe extern "C" fn(*mut CK_INTERFACE, *mut CK_ULONG) -> CK_RV;
type GetInterfaceFn = unsafe extern "C" fn(
    *mut CK_UTF8CHAR,
    *mut CK_VERSION,
    *mut *mut CK_INTERFACE,
    CK_FLAGS,
) -> CK_RV;

/// The interface name PKCS#11 3.0 defines for its standard function lists.
pub const PKCS11_INTERFACE: &[u8] = b"PKCS 11\0";

/// A loaded vendor module.
pub struct Vendor {
    /// Every function the vendor offers: the 2.40 part from `C_GetFunctionList`, the 3.0
    /// part from its 3.0 interface (absent functions are `None`).
    pub fns: CK_FUNCTION_LIST_3_0,
    /// The version `C_GetFunctionList`'s table carries.
    pub v2_version: CK_VERSION,
    /// Whether the vendor offers a PKCS#11 3.x interface.
    pub has_v3: bool,
    /// The vendor's own `C_GetFunctionList`.
    pub get_function_list: GetFunctionListFn,
    /// The vendor's `C_GetInterfaceList`, when it exports one.
    pub get_interface_list: Option<GetInterfaceListFn>,
    /// The vendor's `C_GetInterface`, when it exports one.
    pub get_interface: Option<GetInterfaceFn>,
    /// Kept so the vendor stays mapped for the life of the process.
    _lib: Library,
}

// SAFETY: the table holds plain function pointers into a library that is never unloaded;
// PKCS#11 modules are called from any thread (we never pass the CKF_OS_LOCKING_OK contract
// differently from how the caller asked).
unsafe impl Send for Vendor {}
unsafe impl Sync for Vendor {}

static VENDOR: OnceLock<Result<Vendor, ()>> = OnceLock::new();

/// The vendor, loading it on first use. On failure every call returns
/// `CKR_GENERAL_ERROR`; the reason was logged once.
#[inline]
pub fn get() -> Result<&'static Vendor, CK_RV> {
    VENDOR
        .get_or_init(|| {
            let config = crate::settings::config().map_err(|_| ())?;
            load(config).map_err(|msg| diag::error(format_args!("{msg}")))
        })
        .as_ref()
        .map_err(|()| CKR_GENERAL_ERROR)
}

/// The vendor function `pick` selects, or the error to return when there is none.
#[inline]
pub fn function<F>(pick: impl FnOnce(&CK_FUNCTION_LIST_3_0) -> Option<F>) -> Result<F, CK_RV> {
    let vendor = get()?;
    pick(&vendor.fns).ok_or(CKR_FUNCTION_NOT_SUPPORTED)
}

fn load(config: &Config) -> Result<Vendor, String> {
    let path = config.module_path().map_err(|e| e.to_string())?;
    let shown = path.display();
    if !path.exists() {
        return Err(format!(
            "vendor module {shown} (config `module`) does not exist"
        ));
    }
    // RTLD_NOW: a module with unresolved symbols fails here, with its reason, rather than
    // in the middle of some later call.
    // SAFETY: loading runs the module's initialisers; that is what the caller configured.
    let lib = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }
        .map_err(|e| format!("cannot load vendor module {shown} (config `module`): {e}"))?;
    // SAFETY: the symbol types are the ones PKCS#11 defines for these names.
    let get_function_list: GetFunctionListFn = unsafe {
        lib.get::<GetFunctionListFn>(b"C_GetFunctionList\0")
    }
    .map(|s| *s)
    .map_err(|_| {
        format!("vendor module {shown} (config `module`) is not a PKCS#11 module: it exports no C_GetFunctionList")
    })?;
    if get_function_list as usize
        == crate::exports::general::C_GetFunctionList as *const () as usize
    {
        return Err(format!(
            "config `module` ({shown}) is the hsm-audit shim itself; name the vendor module"
        ));
    }
    // SAFETY: as above; absent symbols are simply not offered.
    let get_interface_list = unsafe { lib.get::<GetInterfaceListFn>(b"C_GetInterfaceList\0") }
        .ok()
        .map(|s| *s);
    let get_interface = unsafe { lib.get::<GetInterfaceFn>(b"C_GetInterface\0") }
        .ok()
        .map(|s| *s);

    let mut list: *mut CK_FUNCTION_LIST = ptr::null_mut();
    // SAFETY: `list` is a valid out-pointer.
    let rv = unsafe { get_function_list(&mut list) };
    if rv != CKR_OK || list.is_null() {
        return Err(format!(
            "vendor module {shown} (config `module`): C_GetFunctionList returned {}",
            normalizer::names::result_signature(rv as u64)
        ));
    }
    // SAFETY: C_GetFunctionList returns a CK_FUNCTION_LIST; whatever version it claims, we
    // read only the 2.40-sized struct (SoftHSM 2.7 labels a 2.40 table as 3.2).
    let v2 = unsafe { ptr::read(list) };
    let mut fns = widen(&v2);
    let mut has_v3 = false;
    if let Some(get_interface) = get_interface {
        if let Some(v3) = vendor_v3_list(get_interface) {
            // SAFETY: a "PKCS 11" interface of version 3.x points at a table at least as
            // large as CK_FUNCTION_LIST_3_0.
            let v3 = unsafe { ptr::read(v3) };
            copy_v3_part(&mut fns, &v3);
            has_v3 = true;
        }
    }
    diag::info(format_args!(
        "loaded vendor module {shown} (function list {}.{}{})",
        v2.version.major,
        v2.version.minor,
        if has_v3 {
            ", PKCS#11 3.0 interface"
        } else {
            ""
        }
    ));
    Ok(Vendor {
        fns,
        v2_version: v2.version,
        has_v3,
        get_function_list,
        get_interface_list,
        get_interface,
        _lib: lib,
    })
}

/// The vendor's PKCS#11 3.x table: version 3.0 if it offers it, else its default if that is 3.x.
fn vendor_v3_list(get_interface: GetInterfaceFn) -> Option<*const CK_FUNCTION_LIST_3_0> {
    let mut v30 = CK_VERSION { major: 3, minor: 0 };
    for version in [&mut v30 as *mut CK_VERSION, ptr::null_mut()] {
        let mut iface: *mut CK_INTERFACE = ptr::null_mut();
        // SAFETY: name is a NUL-terminated static, version NULL or valid, out-pointer valid.
        let rv =
            unsafe { get_interface(PKCS11_INTERFACE.as_ptr() as *mut _, version, &mut iface, 0) };
        if rv != CKR_OK || iface.is_null() {
            continue;
        }
        // SAFETY: the vendor returned a valid interface pointer.
        let list = unsafe { (*iface).pFunctionList } as *const CK_FUNCTION_LIST_3_0;
        // SAFETY: every function list starts with its CK_VERSION.
        if !list.is_null() && unsafe { (*list).version.major } == 3 {
            return Some(list);
        }
    }
    None
}

macro_rules! v2_fields {
    ($m:ident) => {
        $m!(
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
    };
}

macro_rules! v3_fields {
    ($m:ident) => {
        $m!(
            C_GetInterfaceList,
            C_GetInterface,
            C_LoginUser,
            C_SessionCancel,
            C_MessageEncryptInit,
            C_EncryptMessage,
            C_EncryptMessageBegin,
            C_EncryptMessageNext,
            C_MessageEncryptFinal,
            C_MessageDecryptInit,
            C_DecryptMessage,
            C_DecryptMessageBegin,
            C_DecryptMessageNext,
            C_MessageDecryptFinal,
            C_MessageSignInit,
            C_SignMessage,
            C_SignMessageBegin,
            C_SignMessageNext,
            C_MessageSignFinal,
            C_MessageVerifyInit,
            C_VerifyMessage,
            C_VerifyMessageBegin,
            C_VerifyMessageNext,
            C_MessageVerifyFinal
        )
    };
}
pub(crate) use {v2_fields, v3_fields};

/// A 3.0-shaped table holding a 2.40 table's entries (3.0 entries `None`).
pub fn widen(v2: &CK_FUNCTION_LIST) -> CK_FUNCTION_LIST_3_0 {
    let mut out = empty_list(v2.version);
    macro_rules! copy { ($($f:ident),*) => { $( out.$f = v2.$f; )* }; }
    v2_fields!(copy);
    out
}

/// Copies the 3.0 additions of `from` into `to`.
pub fn copy_v3_part(to: &mut CK_FUNCTION_LIST_3_0, from: &CK_FUNCTION_LIST_3_0) {
    macro_rules! copy { ($($f:ident),*) => { $( to.$f = from.$f; )* }; }
    v3_fields!(copy);
}

/// A table with every entry `None`.
pub fn empty_list(version: CK_VERSION) -> CK_FUNCTION_LIST_3_0 {
    // SAFETY: every field is an `Option` of a function pointer (`None` is all-zero bits) or
    // a `CK_VERSION` of two bytes, so all-zero is a valid value of the whole struct.
    let mut list: CK_FUNCTION_LIST_3_0 = unsafe { std::mem::zeroed() };
    list.version = version;
    list
}
