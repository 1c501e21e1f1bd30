//! A PKCS#11 module loaded by path and driven through its raw function table, so the
//! harness adds as little as possible to each call: the cheapest SoftHSM calls take about
//! a microsecond, and any harness overhead would dilute the differences being measured.

use cryptoki_sys::*;
use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use std::ffi::c_void;
use std::path::Path;
use std::ptr;

/// Label of the benchmark's EC key pair (both halves carry it).
pub const KEY_LABEL: &[u8] = b"bench-key";

/// DER OID of the P-256 curve, the key's `CKA_EC_PARAMS`.
const P256_OID: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// A loaded module. The library stays mapped for the life of the process.
pub struct Module {
    f: &'static CK_FUNCTION_LIST,
    _lib: Library,
}

// SAFETY: a PKCS#11 function table is plain function pointers; the module is initialised
// with CKF_OS_LOCKING_OK, so it may be called from any thread.
unsafe impl Send for Module {}
unsafe impl Sync for Module {}

pub fn check(what: &str, rv: CK_RV) -> Result<(), String> {
    if rv == CKR_OK {
        Ok(())
    } else {
        Err(format!(
            "{what}: {}",
            normalizer::names::result_signature(rv)
        ))
    }
}

macro_rules! call {
    ($m:expr, $name:ident ( $($arg:expr),* )) => {{
        let f = $m.fns().$name.expect(stringify!($name));
        // SAFETY: arguments are built by the caller per the PKCS#11 contract.
        unsafe { f($($arg),*) }
    }};
}
pub(crate) use call;

impl Module {
    pub fn load(path: &Path) -> Result<Module, String> {
        // SAFETY: loading a PKCS#11 module runs its initialisers; that is the point.
        let lib = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }
            .map_err(|e| format!("load {}: {e}", path.display()))?;
        // SAFETY: the type PKCS#11 defines for this symbol.
        let get: unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV =
            *unsafe { lib.get(b"C_GetFunctionList\0") }.map_err(|e| e.to_string())?;
        let mut list = ptr::null_mut();
        // SAFETY: a valid out-pointer.
        check("C_GetFunctionList", unsafe { get(&mut list) })?;
        // SAFETY: the module keeps its table alive while it is loaded, which is forever.
        let f = unsafe { &*list };
        Ok(Module { f, _lib: lib })
    }

    pub fn fns(&self) -> &'static CK_FUNCTION_LIST {
        self.f
    }

    /// `C_Initialize` with OS locking, so every thread may call.
    pub fn initialize(&self) -> Result<(), String> {
        let mut args = CK_C_INITIALIZE_ARGS {
            CreateMutex: None,
            DestroyMutex: None,
            LockMutex: None,
            UnlockMutex: None,
            flags: CKF_OS_LOCKING_OK,
            pReserved: ptr::null_mut(),
        };
        check(
            "C_Initialize",
            call!(self, C_Initialize(&mut args as *mut _ as *mut c_void)),
        )
    }

    pub fn finalize(&self) -> Result<(), String> {
        check("C_Finalize", call!(self, C_Finalize(ptr::null_mut())))
    }

    /// The first slot with a token.
    pub fn slot(&self) -> Result<CK_SLOT_ID, String> {
        let mut slots = [0 as CK_SLOT_ID; 8];
        let mut n = slots.len() as CK_ULONG;
        check(
            "C_GetSlotList",
            call!(self, C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut n)),
        )?;
        if n == 0 {
            return Err("no token".into());
        }
        Ok(slots[0])
    }

    pub fn open_session(&self, slot: CK_SLOT_ID) -> Result<CK_SESSION_HANDLE, String> {
        let mut s = 0;
        check(
            "C_OpenSession",
            call!(
                self,
                C_OpenSession(
                    slot,
                    CKF_SERIAL_SESSION | CKF_RW_SESSION,
                    ptr::null_mut(),
                    None,
                    &mut s
                )
            ),
        )?;
        Ok(s)
    }

    pub fn login(&self, s: CK_SESSION_HANDLE, pin: &[u8]) -> CK_RV {
        call!(
            self,
            C_Login(s, CKU_USER, pin.as_ptr() as *mut u8, pin.len() as CK_ULONG)
        )
    }

    /// Objects labelled `KEY_LABEL` (up to 4): three calls.
    pub fn find_by_label(
        &self,
        s: CK_SESSION_HANDLE,
        class: Option<CK_ULONG>,
    ) -> Vec<CK_OBJECT_HANDLE> {
        let mut class_value = class.unwrap_or(0);
        let mut template = vec![CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: KEY_LABEL.as_ptr() as *mut c_void,
            ulValueLen: KEY_LABEL.len() as CK_ULONG,
        }];
        if class.is_some() {
            template.push(CK_ATTRIBUTE {
                type_: CKA_CLASS,
                pValue: &mut class_value as *mut CK_ULONG as *mut c_void,
                ulValueLen: std::mem::size_of::<CK_ULONG>() as CK_ULONG,
            });
        }
        let mut found = [0 as CK_OBJECT_HANDLE; 4];
        let mut n: CK_ULONG = 0;
        call!(
            self,
            C_FindObjectsInit(s, template.as_mut_ptr(), template.len() as CK_ULONG)
        );
        call!(
            self,
            C_FindObjects(s, found.as_mut_ptr(), found.len() as CK_ULONG, &mut n)
        );
        call!(self, C_FindObjectsFinal(s));
        found[..n as usize].to_vec()
    }

    /// Creates the benchmark's P-256 key pair as token objects.
    pub fn generate_key(&self, s: CK_SESSION_HANDLE) -> Result<(), String> {
        let mut t = CK_TRUE;
        let mut params = P256_OID;
        let attr = |type_, p: *mut c_void, len: usize| CK_ATTRIBUTE {
            type_,
            pValue: p,
            ulValueLen: len as CK_ULONG,
        };
        let label = KEY_LABEL.as_ptr() as *mut c_void;
        let tp = &mut t as *mut CK_BBOOL as *mut c_void;
        let mut public = [
            attr(CKA_TOKEN, tp, 1),
            attr(CKA_VERIFY, tp, 1),
            attr(CKA_LABEL, label, KEY_LABEL.len()),
            attr(
                CKA_EC_PARAMS,
                params.as_mut_ptr() as *mut c_void,
                params.len(),
            ),
        ];
        let mut private = [
            attr(CKA_TOKEN, tp, 1),
            attr(CKA_SIGN, tp, 1),
            attr(CKA_PRIVATE, tp, 1),
            attr(CKA_LABEL, label, KEY_LABEL.len()),
        ];
        let mut mech = CK_MECHANISM {
            mechanism: CKM_EC_KEY_PAIR_GEN,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        let (mut pubh, mut privh) = (0, 0);
        check(
            "C_GenerateKeyPair",
            call!(
                self,
                C_GenerateKeyPair(
                    s,
                    &mut mech,
                    public.as_mut_ptr(),
                    public.len() as CK_ULONG,
                    private.as_mut_ptr(),
                    private.len() as CK_ULONG,
                    &mut pubh,
                    &mut privh
                )
            ),
        )
    }
}
