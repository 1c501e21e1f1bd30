//! General-purpose functions and interface negotiation: `C_Initialize`, `C_Finalize`,
//! `C_GetInfo`, `C_GetFunctionList`, `C_GetInterfaceList`, `C_GetInterface`.

use super::forward;
use crate::boundary::guard;
use crate::lists::{self, Lists};
use crate::recorder::{self, Call, Scalars};
use crate::vendor::{self, PKCS11_INTERFACE};
use cryptoki_sys::*;
use normalizer::FunctionId;
use std::ffi::{c_void, CStr};
use std::ptr;
use std::time::Duration;

/// How long `C_Finalize` waits for the writer to put every row on disk.
const FINALIZE_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

forward! {
    C_GetInfo => GetInfo(info: *mut CK_INFO);
}

/// `C_Initialize`, forwarded with its arguments exactly as given.
///
/// # Safety
/// `init_args` is NULL or a `CK_C_INITIALIZE_ARGS` as PKCS#11 requires; the vendor reads it.
#[no_mangle]
pub unsafe extern "C" fn C_Initialize(init_args: *mut c_void) -> CK_RV {
    guard(|| {
        let mut call = Call::start(FunctionId::Initialize);
        // The writer must be able to start: an output directory that cannot be created is a
        // configuration error, reported here whatever `on_write_failure` says.
        let ready = recorder::require_writer().and_then(|()| call.admit());
        let rv = match ready.and_then(|()| vendor::function(|f| f.C_Initialize)) {
            Ok(f) => {
                call.begin();
                // SAFETY: the caller's argument, passed on untouched.
                unsafe { f(init_args) }
            }
            Err(rv) => rv,
        };
        call.finish(rv, Scalars::NONE);
        if rv == CKR_OK {
            recorder::learn_vendor_version();
        }
        rv
    })
}

/// `C_Finalize`, forwarded; then every pending row is written before returning.
///
/// # Safety
/// `reserved` must be NULL per PKCS#11; the vendor checks it.
#[no_mangle]
pub unsafe extern "C" fn C_Finalize(reserved: *mut c_void) -> CK_RV {
    guard(|| {
        let mut call = Call::start(FunctionId::Finalize);
        let rv = match vendor::function(|f| f.C_Finalize) {
            Ok(f) => {
                call.begin();
                // SAFETY: the caller's argument, passed on untouched.
                unsafe { f(reserved) }
            }
            Err(rv) => rv,
        };
        call.finish(rv, Scalars::NONE);
        recorder::flush(FINALIZE_FLUSH_TIMEOUT);
        rv
    })
}

/// `C_GetFunctionList`: the vendor's answer, with our table in place of the vendor's.
///
/// # Safety
/// `list` is NULL or writable, as PKCS#11 requires.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    guard(|| {
        let mut call = Call::start(FunctionId::GetFunctionList);
        let rv = match vendor::get().and_then(|v| Ok((v, lists::get()?))) {
            Ok((vendor, ours)) => {
                call.begin();
                let mut theirs: *mut CK_FUNCTION_LIST = ptr::null_mut();
                // Ask the vendor with the caller's NULL, so a NULL gets the vendor's own answer.
                let out = if list.is_null() {
                    ptr::null_mut()
                } else {
                    &mut theirs as *mut _
                };
                // SAFETY: `out` is NULL or points at a local.
                let rv = unsafe { (vendor.get_function_list)(out) };
                if rv == CKR_OK && !list.is_null() {
                    // SAFETY: non-NULL, writable per the caller's contract.
                    unsafe {
                        *list = &ours.v2.0 as *const CK_FUNCTION_LIST_3_0 as *mut CK_FUNCTION_LIST
                    };
                }
                rv
            }
            Err(rv) => rv,
        };
        call.finish(rv, Scalars::NONE)
    })
}

/// `C_GetInterfaceList`: the vendor's list with our tables in place of its "PKCS 11"
/// tables; over a 2.x vendor, one "PKCS 11" 2.x interface.
///
/// # Safety
/// `list` is NULL or has room for `*count` entries; `count` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterfaceList(
    list: *mut CK_INTERFACE,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let mut call = Call::start(FunctionId::GetInterfaceList);
        let rv = match vendor::get().and_then(|v| Ok((v, lists::get()?))) {
            Ok((vendor, ours)) => {
                call.begin();
                match vendor.get_interface_list {
                    Some(theirs) => {
                        // SAFETY: the caller's arguments, passed on untouched.
                        let rv = unsafe { theirs(list, count) };
                        if rv == CKR_OK && !list.is_null() && !count.is_null() {
                            // SAFETY: the vendor filled `*count` entries of `list`.
                            let entries =
                                unsafe { std::slice::from_raw_parts_mut(list, *count as usize) };
                            for entry in entries {
                                // SAFETY: entries the vendor just wrote.
                                unsafe { translate(ours, entry) };
                            }
                        }
                        rv
                    }
                    // SAFETY: the caller's contract as above.
                    None => unsafe { synthesized_list(ours, list, count) },
                }
            }
            Err(rv) => rv,
        };
        call.finish(rv, Scalars::NONE)
    })
}

/// `C_GetInterface`: the vendor's answer with our table in its place; over a 2.x vendor,
/// the one "PKCS 11" 2.x interface.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `version` NULL or readable; `interface`
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterface(
    name: *mut CK_UTF8CHAR,
    version: *mut CK_VERSION,
    interface: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    guard(|| {
        let mut call = Call::start(FunctionId::GetInterface);
        let rv = match vendor::get().and_then(|v| Ok((v, lists::get()?))) {
            Ok((vendor, ours)) => {
                call.begin();
                match vendor.get_interface {
                    // SAFETY: the caller's arguments, passed on untouched.
                    Some(theirs) => unsafe {
                        forwarded_interface(ours, theirs, name, version, interface, flags)
                    },
                    // SAFETY: the caller's contract as above.
                    None => unsafe { synthesized_interface(ours, name, version, interface, flags) },
                }
            }
            Err(rv) => rv,
        };
        call.finish(rv, Scalars::NONE)
    })
}

/// The interfaces we offer over a vendor without interface functions.
fn offered(ours: &Lists) -> impl Iterator<Item = &'static CK_INTERFACE> {
    std::iter::once(&ours.v2_interface.0).chain(ours.v3_interface.map(|i| &i.0))
}

/// The version a function list carries.
///
/// # Safety
/// `list` points at a PKCS#11 function list.
unsafe fn list_version(list: *const c_void) -> CK_VERSION {
    // SAFETY: every function list starts with its CK_VERSION.
    unsafe { *(list as *const CK_VERSION) }
}

/// Whether `name` is the standard interface name.
///
/// # Safety
/// `name` is a NUL-terminated string.
unsafe fn is_pkcs11(name: *const CK_UTF8CHAR) -> bool {
    // SAFETY: per the function's contract.
    !name.is_null()
        && unsafe { CStr::from_ptr(name as *const _) }.to_bytes_with_nul() == PKCS11_INTERFACE
}

/// Our interface standing for a vendor "PKCS 11" interface, if we offer one.
///
/// # Safety
/// `theirs` is a valid interface.
unsafe fn ours_for(ours: &Lists, theirs: &CK_INTERFACE) -> Option<&'static CK_INTERFACE> {
    // SAFETY: per the function's contract.
    if theirs.pFunctionList.is_null() || !unsafe { is_pkcs11(theirs.pInterfaceName) } {
        return None;
    }
    // SAFETY: a non-NULL function list of a valid interface.
    match unsafe { list_version(theirs.pFunctionList) }.major {
        2 => Some(&ours.v2_interface.0),
        3 => ours.v3_interface.map(|i| &i.0),
        _ => None,
    }
}

/// Replaces a vendor "PKCS 11" interface entry with ours, keeping the vendor's flags.
/// Vendor-specific interfaces pass through unchanged (and unaudited).
///
/// # Safety
/// `entry` is a valid interface.
unsafe fn translate(ours: &Lists, entry: &mut CK_INTERFACE) {
    // SAFETY: per the function's contract.
    if let Some(mine) = unsafe { ours_for(ours, entry) } {
        entry.pInterfaceName = mine.pInterfaceName;
        entry.pFunctionList = mine.pFunctionList;
    }
}

/// # Safety
/// As `C_GetInterfaceList`.
unsafe fn synthesized_list(ours: &Lists, list: *mut CK_INTERFACE, count: *mut CK_ULONG) -> CK_RV {
    if count.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    let n = offered(ours).count();
    // SAFETY: non-NULL `count`, readable and writable per the contract.
    let room = unsafe { *count } as usize;
    unsafe { *count = n as CK_ULONG };
    if list.is_null() {
        return CKR_OK;
    }
    if room < n {
        return CKR_BUFFER_TOO_SMALL;
    }
    for (i, iface) in offered(ours).enumerate() {
        // SAFETY: `list` has room for `room >= n` entries.
        unsafe { list.add(i).write(*iface) };
    }
    CKR_OK
}

/// # Safety
/// As `C_GetInterface`.
unsafe fn synthesized_interface(
    ours: &Lists,
    name: *mut CK_UTF8CHAR,
    version: *mut CK_VERSION,
    interface: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    if interface.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    // SAFETY: `name` is NULL or a C string per the contract.
    if !name.is_null() && !unsafe { is_pkcs11(name) } {
        return CKR_ARGUMENTS_BAD;
    }
    let found = offered(ours).find(|iface| {
        // SAFETY: our own interfaces point at our own tables; `version` per the contract.
        let v = unsafe { list_version(iface.pFunctionList) };
        let version_ok = version.is_null()
            || unsafe { (*version).major == v.major && (*version).minor == v.minor };
        version_ok && iface.flags & flags == flags
    });
    match found {
        Some(iface) => {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { *interface = iface as *const CK_INTERFACE as *mut CK_INTERFACE };
            CKR_OK
        }
        None => CKR_ARGUMENTS_BAD,
    }
}

/// # Safety
/// As `C_GetInterface`.
unsafe fn forwarded_interface(
    ours: &Lists,
    theirs: unsafe extern "C" fn(
        *mut CK_UTF8CHAR,
        *mut CK_VERSION,
        *mut *mut CK_INTERFACE,
        CK_FLAGS,
    ) -> CK_RV,
    name: *mut CK_UTF8CHAR,
    version: *mut CK_VERSION,
    interface: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    // SAFETY: the caller's arguments, passed on untouched.
    let rv = unsafe { theirs(name, version, interface, flags) };
    if rv != CKR_OK || interface.is_null() || unsafe { (*interface).is_null() } {
        return rv;
    }
    // SAFETY: the vendor returned a valid interface.
    let vendors = unsafe { &**interface };
    // SAFETY: as above.
    if let Some(mine) = unsafe { ours_for(ours, vendors) } {
        // SAFETY: our own table.
        let offered_version = unsafe { list_version(mine.pFunctionList) };
        // We offer PKCS#11 3.0 at most: an explicit request for a later version is not met.
        if !version.is_null()
            && unsafe {
                (*version).major != offered_version.major
                    || (*version).minor != offered_version.minor
            }
        {
            return CKR_ARGUMENTS_BAD;
        }
        // Keep the vendor's flags: its interface is what actually serves the calls.
        let flagged = if vendors.flags == mine.flags {
            mine
        } else {
            leak_with_flags(mine, vendors.flags)
        };
        // SAFETY: non-NULL and writable per the contract.
        unsafe { *interface = flagged as *const CK_INTERFACE as *mut CK_INTERFACE };
    }
    rv
}

/// Our interface with other flags; a vendor reports a handful of flag sets, each leaked once.
fn leak_with_flags(mine: &'static CK_INTERFACE, flags: CK_FLAGS) -> &'static CK_INTERFACE {
    use parking_lot::Mutex;
    static FLAGGED: Mutex<Vec<&'static lists::Shared<CK_INTERFACE>>> = Mutex::new(Vec::new());
    let mut flagged = FLAGGED.lock();
    if let Some(found) = flagged
        .iter()
        .find(|i| i.0.pFunctionList == mine.pFunctionList && i.0.flags == flags)
    {
        return &found.0;
    }
    let new: &'static lists::Shared<CK_INTERFACE> =
        Box::leak(Box::new(lists::Shared(CK_INTERFACE { flags, ..*mine })));
    flagged.push(new);
    &new.0
}
