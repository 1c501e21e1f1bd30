//! Raw access to a PKCS#11 module: `dlopen`, `C_GetFunctionList`, then calls through the
//! table, as a C application would: no wrapper checks arguments. Used for the edge cases
//! `cryptoki` cannot express (NULL arguments, garbage, calls before `C_Initialize`, exact
//! return values).
//!
//! - [`Module`] and the transcript helpers: the parity workloads, which print each call as
//!   one transcript line.
//! - [`RawModule`]: the reliability tests and `p11-stress`, which call the function list
//!   directly and use the shim's own exports (`hsm_audit_flush`, `hsm_audit_lost_events`).

use cryptoki_sys::*;
use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use std::ffi::c_void;
use std::path::Path;
use std::ptr;

/// `C_GetFunctionList`.
pub type GetFunctionListFn = unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV;
/// `C_GetInterfaceList`.
pub type GetInterfaceListFn = unsafe extern "C" fn(*mut CK_INTERFACE, *mut CK_ULONG) -> CK_RV;
/// `C_GetInterface`.
pub type GetInterfaceFn = unsafe extern "C" fn(
    *mut CK_UTF8CHAR,
    *mut CK_VERSION,
    *mut *mut CK_INTERFACE,
    CK_FLAGS,
) -> CK_RV;

/// A loaded module and its exported entry points.
pub struct Module {
    /// Kept so the module stays mapped.
    _lib: Library,
    /// The exported `C_GetFunctionList`.
    pub get_function_list: GetFunctionListFn,
    /// The exported `C_GetInterfaceList`, if any.
    pub get_interface_list: Option<GetInterfaceListFn>,
    /// The exported `C_GetInterface`, if any.
    pub get_interface: Option<GetInterfaceFn>,
}

impl Module {
    /// Loads the module at `path` (no PKCS#11 call is made).
    pub fn open(path: &Path) -> Module {
        // SAFETY: loading a PKCS#11 module runs its initialisers; that is the point.
        let lib = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }
            .unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()));
        // SAFETY: the PKCS#11 signatures of these names.
        let get_function_list = unsafe { lib.get::<GetFunctionListFn>(b"C_GetFunctionList\0") }
            .map(|s| *s)
            .expect("C_GetFunctionList exported");
        let get_interface_list = unsafe { lib.get::<GetInterfaceListFn>(b"C_GetInterfaceList\0") }
            .ok()
            .map(|s| *s);
        let get_interface = unsafe { lib.get::<GetInterfaceFn>(b"C_GetInterface\0") }
            .ok()
            .map(|s| *s);
        Module {
            _lib: lib,
            get_function_list,
            get_interface_list,
            get_interface,
        }
    }
}

/// Prints one transcript line for a call: `C_Name CKR_X [tag]`. Lines are printed as they
/// happen, so a crash still leaves the transcript up to the crash.
pub fn call_line(function: &str, rv: CK_RV, tag: Option<String>) {
    match tag {
        Some(tag) => println!(
            "{function} {} {tag}",
            normalizer::names::result_signature(rv)
        ),
        None => println!("{function} {}", normalizer::names::result_signature(rv)),
    }
}

/// Prints a fact about the outputs of the previous call (indented, so it is never a call).
pub fn fact(fact: impl std::fmt::Display) {
    println!("  {fact}");
}

/// A `mech=CKM_*` tag for a transcript line.
pub fn mech_tag(mechanism: CK_MECHANISM_TYPE) -> String {
    format!("mech={}", normalizer::names::mechanism_name(mechanism))
}

/// A `user=CKU_*` tag for a transcript line.
pub fn user_tag(user: CK_USER_TYPE) -> String {
    format!("user={}", normalizer::names::user_type_name(user))
}

/// A mechanism without parameters.
pub fn mech(mechanism: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    }
}

/// A mechanism whose parameter is `param` (which must outlive every use).
pub fn mech_with<P>(mechanism: CK_MECHANISM_TYPE, param: &mut P) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism,
        pParameter: param as *mut P as *mut c_void,
        ulParameterLen: std::mem::size_of::<P>() as CK_ULONG,
    }
}

/// An attribute template that owns its values.
#[derive(Default)]
pub struct Template {
    attrs: Vec<CK_ATTRIBUTE>,
    // Each value's heap buffer stays put while this Vec grows, so the pointers stay valid.
    values: Vec<Vec<u8>>,
}

impl Template {
    /// An empty template.
    pub fn new() -> Template {
        Template::default()
    }

    /// Adds an attribute with a byte value.
    pub fn bytes(mut self, kind: CK_ATTRIBUTE_TYPE, value: &[u8]) -> Template {
        let mut v = value.to_vec();
        self.attrs.push(CK_ATTRIBUTE {
            type_: kind,
            pValue: v.as_mut_ptr() as *mut c_void,
            ulValueLen: v.len() as CK_ULONG,
        });
        self.values.push(v);
        self
    }

    /// Adds a `CK_BBOOL` attribute.
    pub fn bool(self, kind: CK_ATTRIBUTE_TYPE, value: bool) -> Template {
        self.bytes(kind, &[CK_BBOOL::from(value)])
    }

    /// Adds a `CK_ULONG` attribute.
    pub fn ulong(self, kind: CK_ATTRIBUTE_TYPE, value: CK_ULONG) -> Template {
        self.bytes(kind, &value.to_ne_bytes())
    }

    /// Adds an attribute with a zeroed buffer of `len` bytes, or a NULL one (a length query).
    pub fn buffer(mut self, kind: CK_ATTRIBUTE_TYPE, len: Option<usize>) -> Template {
        let mut v = vec![0u8; len.unwrap_or(0)];
        self.attrs.push(CK_ATTRIBUTE {
            type_: kind,
            pValue: if len.is_some() {
                v.as_mut_ptr() as *mut c_void
            } else {
                std::ptr::null_mut()
            },
            ulValueLen: len.unwrap_or(0) as CK_ULONG,
        });
        self.values.push(v);
        self
    }

    /// The template for C.
    pub fn ptr(&mut self) -> *mut CK_ATTRIBUTE {
        self.attrs.as_mut_ptr()
    }

    /// Number of attributes.
    pub fn count(&self) -> CK_ULONG {
        self.attrs.len() as CK_ULONG
    }

    /// The length the module reported for attribute `i`.
    pub fn len_of(&self, i: usize) -> CK_ULONG {
        self.attrs[i].ulValueLen
    }

    /// The value the module wrote into attribute `i` (its reported length, if it fits).
    pub fn value_of(&self, i: usize) -> &[u8] {
        let n = (self.attrs[i].ulValueLen as usize).min(self.values[i].len());
        &self.values[i][..n]
    }
}

/// A reported length: `unavailable` for `CK_UNAVAILABLE_INFORMATION`.
pub fn show_len(len: CK_ULONG) -> String {
    if len == CK_UNAVAILABLE_INFORMATION {
        "unavailable".to_owned()
    } else {
        len.to_string()
    }
}

/// A blank-padded PKCS#11 text field.
pub fn text(field: &[u8]) -> String {
    String::from_utf8_lossy(field).trim_end().to_owned()
}

macro_rules! entries {
    ($list:expr; $($name:ident),* $(,)?) => {
        vec![$( (stringify!($name), $list.$name.is_some()) ),*]
    };
}

/// Each 2.40 entry of a function list and whether it is set.
pub fn v2_entries(f: &CK_FUNCTION_LIST) -> Vec<(&'static str, bool)> {
    entries!(f;
        C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList, C_GetSlotList, C_GetSlotInfo,
        C_GetTokenInfo, C_GetMechanismList, C_GetMechanismInfo, C_InitToken, C_InitPIN,
        C_SetPIN, C_OpenSession, C_CloseSession, C_CloseAllSessions, C_GetSessionInfo,
        C_GetOperationState, C_SetOperationState, C_Login, C_Logout, C_CreateObject,
        C_CopyObject, C_DestroyObject, C_GetObjectSize, C_GetAttributeValue,
        C_SetAttributeValue, C_FindObjectsInit, C_FindObjects, C_FindObjectsFinal,
        C_EncryptInit, C_Encrypt, C_EncryptUpdate, C_EncryptFinal, C_DecryptInit, C_Decrypt,
        C_DecryptUpdate, C_DecryptFinal, C_DigestInit, C_Digest, C_DigestUpdate, C_DigestKey,
        C_DigestFinal, C_SignInit, C_Sign, C_SignUpdate, C_SignFinal, C_SignRecoverInit,
        C_SignRecover, C_VerifyInit, C_Verify, C_VerifyUpdate, C_VerifyFinal,
        C_VerifyRecoverInit, C_VerifyRecover, C_DigestEncryptUpdate, C_DecryptDigestUpdate,
        C_SignEncryptUpdate, C_DecryptVerifyUpdate, C_GenerateKey, C_GenerateKeyPair,
        C_WrapKey, C_UnwrapKey, C_DeriveKey, C_SeedRandom, C_GenerateRandom,
        C_GetFunctionStatus, C_CancelFunction, C_WaitForSlotEvent,
    )
}

/// Each entry PKCS#11 3.0 added to the function list and whether it is set.
pub fn v3_entries(f: &CK_FUNCTION_LIST_3_0) -> Vec<(&'static str, bool)> {
    entries!(f;
        C_GetInterfaceList, C_GetInterface, C_LoginUser, C_SessionCancel,
        C_MessageEncryptInit, C_EncryptMessage, C_EncryptMessageBegin, C_EncryptMessageNext,
        C_MessageEncryptFinal, C_MessageDecryptInit, C_DecryptMessage, C_DecryptMessageBegin,
        C_DecryptMessageNext, C_MessageDecryptFinal, C_MessageSignInit, C_SignMessage,
        C_SignMessageBegin, C_SignMessageNext, C_MessageSignFinal, C_MessageVerifyInit,
        C_VerifyMessage, C_VerifyMessageBegin, C_VerifyMessageNext, C_MessageVerifyFinal,
    )
}

/// A loaded module and its function list. Dropping it `dlclose`s the module.
pub struct RawModule {
    /// The table `C_GetFunctionList` returned.
    pub f: &'static CK_FUNCTION_LIST,
    _lib: libloading::Library,
}

impl RawModule {
    /// `dlopen`s `path` and asks it for its function list; the error names what failed.
    pub fn load(path: &Path) -> Result<RawModule, String> {
        // SAFETY: loading runs the module's initialisers, which is what a test asks for.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| format!("dlopen: {e}"))?;
        type GetFunctionList = unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV;
        // SAFETY: the PKCS#11 signature of this symbol.
        let get = unsafe { lib.get::<GetFunctionList>(b"C_GetFunctionList\0") }
            .map_err(|e| format!("dlsym C_GetFunctionList: {e}"))?;
        let mut list: *mut CK_FUNCTION_LIST = ptr::null_mut();
        // SAFETY: a valid out-pointer.
        let rv = unsafe { get(&mut list) };
        if rv != CKR_OK || list.is_null() {
            return Err(format!("C_GetFunctionList returned {rv:#x}"));
        }
        // SAFETY: the module keeps its table alive while it is loaded; `_lib` keeps it loaded
        // for as long as the reference is used through this struct.
        let f = unsafe { &*list };
        Ok(RawModule { f, _lib: lib })
    }

    /// The shim's `hsm_audit_flush(timeout_ms)`; `None` if the module is not the shim.
    pub fn audit_flush(&self, timeout_ms: u32) -> Option<u32> {
        // SAFETY: the signature `include/hsm_audit.h` declares.
        let f = unsafe {
            self._lib
                .get::<extern "C" fn(u32) -> u32>(b"hsm_audit_flush\0")
        };
        f.ok().map(|f| f(timeout_ms))
    }

    /// The shim's `hsm_audit_lost_events()`; `None` if the module is not the shim.
    pub fn audit_lost_events(&self) -> Option<u64> {
        // SAFETY: the signature `include/hsm_audit.h` declares.
        let f = unsafe {
            self._lib
                .get::<extern "C" fn() -> u64>(b"hsm_audit_lost_events\0")
        };
        f.ok().map(|f| f())
    }

    /// `C_Initialize(NULL)`.
    pub fn initialize(&self) -> CK_RV {
        // SAFETY: NULL is a valid argument.
        unsafe { self.f.C_Initialize.expect("C_Initialize")(ptr::null_mut()) }
    }

    /// `C_Finalize(NULL)`.
    pub fn finalize(&self) -> CK_RV {
        // SAFETY: NULL is the required argument.
        unsafe { self.f.C_Finalize.expect("C_Finalize")(ptr::null_mut()) }
    }

    /// `C_GetInfo` into a local: a cheap call that reaches the vendor.
    pub fn get_info(&self) -> CK_RV {
        // SAFETY: CK_INFO is plain data; the pointer is to a local.
        let mut info: CK_INFO = unsafe { std::mem::zeroed() };
        unsafe { self.f.C_GetInfo.expect("C_GetInfo")(&mut info) }
    }

    /// The first slot with a token, if any.
    pub fn first_token_slot(&self) -> Option<CK_SLOT_ID> {
        let mut slots = [0 as CK_SLOT_ID; 16];
        let mut n = slots.len() as CK_ULONG;
        // SAFETY: room for `n` slots.
        let rv = unsafe {
            self.f.C_GetSlotList.expect("C_GetSlotList")(CK_TRUE, slots.as_mut_ptr(), &mut n)
        };
        (rv == CKR_OK && n > 0).then(|| slots[0])
    }

    /// A read-only session on `slot`.
    pub fn open_session(&self, slot: CK_SLOT_ID) -> Result<CK_SESSION_HANDLE, CK_RV> {
        let mut session = 0;
        // SAFETY: valid out-pointer; no notify callback.
        let rv = unsafe {
            self.f.C_OpenSession.expect("C_OpenSession")(
                slot,
                CKF_SERIAL_SESSION,
                ptr::null_mut(),
                None,
                &mut session,
            )
        };
        if rv == CKR_OK {
            Ok(session)
        } else {
            Err(rv)
        }
    }
}
