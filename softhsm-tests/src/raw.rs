//! A PKCS#11 module loaded with `dlopen` and called through its raw function list, as a C
//! application would: no wrapper checks arguments, so tests can pass garbage.

use cryptoki_sys::*;
use libloading::Library;
use std::path::Path;
use std::ptr;

/// A loaded module and its function list. Dropping it `dlclose`s the module.
pub struct RawModule {
    /// The table `C_GetFunctionList` returned.
    pub f: &'static CK_FUNCTION_LIST,
    _lib: Library,
}

impl RawModule {
    /// `dlopen`s `path` and asks it for its function list; the error names what failed.
    pub fn load(path: &Path) -> Result<RawModule, String> {
        // SAFETY: loading runs the module's initialisers, which is what a test asks for.
        let lib = unsafe { Library::new(path) }.map_err(|e| format!("dlopen: {e}"))?;
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
