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
                        *list =
                            &ours.v2.0.list as *const CK_FUNCTION_LIST_3_0 as *mut CK_FUNCTION_LIST
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

/// `C_GetInterface`. Over a vendor with interface functions, a request naming "PKCS 11" is
/// answered from the interfaces our `C_GetInterfaceList` lists (so whatever we list can be
/// obtained by its name and version, even where our version label is not the vendor's); any
/// other request (no name, or a vendor-specific name) gets the vendor's answer with our table
/// in place of a "PKCS 11" one. Over a 2.x vendor, the one "PKCS 11" 2.x interface.
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
                    // A NULL `interface` is passed on: the vendor's own answer to it.
                    // SAFETY: `name` is NULL or a C string per the contract.
                    Some(_) if !interface.is_null() && unsafe { is_pkcs11(name) } => unsafe {
                        // SAFETY: the caller's contract as above.
                        listed_interface(vendor, ours, version, interface, flags)
                    },
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
        unsafe { answers(iface.pFunctionList, iface.flags, version, flags) }
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

/// Whether an interface whose function list is `list` with `list_flags` answers a
/// `C_GetInterface` request for `version` and `flags`.
///
/// What this relies on (PKCS#11 3.0 `C_GetInterface`, as this file and the tests' mock have
/// always read it; the spec text was not re-checked for this change): an interface's version
/// is the `CK_VERSION` its function list starts with; a NULL `pVersion` accepts any version
/// (the first match in list order is returned, as the mock and [`synthesized_interface`]
/// do); every bit of `flags` must be set in the interface's flags; no match is
/// `CKR_ARGUMENTS_BAD`. A NULL name means the module's default interface; only the vendor
/// knows which that is, so that case is forwarded.
///
/// # Safety
/// `list` points at a function list; `version` is NULL or readable.
unsafe fn answers(
    list: *const c_void,
    list_flags: CK_FLAGS,
    version: *const CK_VERSION,
    flags: CK_FLAGS,
) -> bool {
    // SAFETY: per the function's contract.
    let v = unsafe { list_version(list) };
    let version_ok =
        version.is_null() || unsafe { (*version).major == v.major && (*version).minor == v.minor };
    version_ok && list_flags & flags == flags
}

/// `C_GetInterface` for the name "PKCS 11" over a vendor with interface functions: the
/// first interface our `C_GetInterfaceList` lists under that name that [`answers`] the
/// request, with the flags listed for it.
///
/// Our list is the vendor's, translated: a vendor 3.1/3.2 interface is listed as our 3.0
/// table, labelled 3.0, so here it is found by version 3.0, and a request for 3.1/3.2 is
/// refused. Forwarding the request (as `forwarded_interface` does) would refuse the 3.0 we
/// list, since a 3.2-only vendor knows no 3.0. And 3.2 must stay refused: our table is a
/// `CK_FUNCTION_LIST_3_0`, so a caller trusting a 3.2 label would read the entries 3.2 adds
/// past its end.
///
/// # Safety
/// As `C_GetInterface`, with `interface` non-NULL.
unsafe fn listed_interface(
    vendor: &vendor::Vendor,
    ours: &Lists,
    version: *mut CK_VERSION,
    interface: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    let listed: Vec<CK_INTERFACE> = match vendor.get_interface_list {
        // SAFETY: the vendor's own function.
        Some(theirs) => match unsafe { vendor_interfaces(theirs) } {
            Ok(listed) => listed,
            Err(rv) => return rv,
        },
        // Without the vendor's list, ours is the synthesized one.
        None => offered(ours).copied().collect(),
    };
    let found = listed.iter().find_map(|theirs| {
        // SAFETY: entries the vendor wrote, or our own.
        let mine = unsafe { ours_for(ours, theirs) }?;
        // SAFETY: our own table; `version` per the contract.
        unsafe { answers(mine.pFunctionList, theirs.flags, version, flags) }
            .then_some((mine, theirs.flags))
    });
    match found {
        Some((mine, listed_flags)) => {
            let flagged = if listed_flags == mine.flags {
                mine
            } else {
                leak_with_flags(mine, listed_flags)
            };
            // SAFETY: non-NULL and writable per the contract.
            unsafe { *interface = flagged as *const CK_INTERFACE as *mut CK_INTERFACE };
            CKR_OK
        }
        None => CKR_ARGUMENTS_BAD,
    }
}

/// The vendor's interface list (not recorded: this is the shim asking, not the caller).
///
/// # Safety
/// `theirs` is the vendor's `C_GetInterfaceList`.
unsafe fn vendor_interfaces(
    theirs: unsafe extern "C" fn(*mut CK_INTERFACE, *mut CK_ULONG) -> CK_RV,
) -> Result<Vec<CK_INTERFACE>, CK_RV> {
    // The list is fixed in practice; retried in case it grows between the two calls.
    for _ in 0..3 {
        let mut n: CK_ULONG = 0;
        // SAFETY: a NULL list asks for the count; `n` is writable.
        let rv = unsafe { theirs(ptr::null_mut(), &mut n) };
        if rv != CKR_OK {
            return Err(rv);
        }
        let empty = CK_INTERFACE {
            pInterfaceName: ptr::null_mut(),
            pFunctionList: ptr::null_mut(),
            flags: 0,
        };
        let mut list = vec![empty; n as usize];
        // SAFETY: room for `n` entries.
        match unsafe { theirs(list.as_mut_ptr(), &mut n) } {
            CKR_OK => {
                list.truncate(n as usize);
                return Ok(list);
            }
            CKR_BUFFER_TOO_SMALL => continue,
            rv => return Err(rv),
        }
    }
    Err(CKR_GENERAL_ERROR)
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
