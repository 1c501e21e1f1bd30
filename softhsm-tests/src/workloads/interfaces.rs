//! Interface negotiation as a PKCS#11 3.0 caller sees it: `C_GetInterfaceList` and
//! `C_GetInterface` with NULL and real arguments, version and name requests, and the
//! tables they hand out compared with `C_GetFunctionList`'s and the vendor's.
//!
//! Meant for the shim (SoftHSM 2.6 exports neither function: the workload then says so and
//! stops). It reads the 3.0 part of the shim's 2.x table, which the shim allocates 3.0-sized
//! so that callers trusting a version label read zeros rather than past the end.

use crate::raw::{call_line, fact, v2_entries, v3_entries, Module};
use cryptoki_sys::*;
use std::ffi::CStr;
use std::path::Path;
use std::ptr::null_mut;

const PKCS11: &[u8] = b"PKCS 11\0";

/// Prints an interface: name, table version and flags.
///
/// # Safety
/// `iface` is a valid interface.
unsafe fn describe(iface: *const CK_INTERFACE) {
    // SAFETY: per the contract.
    let i = unsafe { &*iface };
    let name = if i.pInterfaceName.is_null() {
        "<NULL>".to_owned()
    } else {
        // SAFETY: a NUL-terminated name.
        unsafe { CStr::from_ptr(i.pInterfaceName as *const _) }
            .to_string_lossy()
            .into_owned()
    };
    // SAFETY: every function list starts with its version.
    let v = unsafe { *(i.pFunctionList as *const CK_VERSION) };
    fact(format!(
        "interface {name:?} version {}.{} flags {:#x}",
        v.major, v.minor, i.flags
    ));
}

/// Runs the workload against `path`; `vendor` is the module the shim forwards to.
pub fn run(path: &Path, vendor: &Path) {
    let m = Module::open(path);
    let (Some(list_fn), Some(get_fn)) = (m.get_interface_list, m.get_interface) else {
        println!(
            "C_GetInterfaceList exported: {}, C_GetInterface exported: {}",
            m.get_interface_list.is_some(),
            m.get_interface.is_some()
        );
        return;
    };
    // SAFETY (this block and below): arguments are valid or the NULLs PKCS#11 says the
    // module must reject.
    let rv = unsafe { list_fn(null_mut(), null_mut()) };
    call_line("C_GetInterfaceList", rv, None);
    let mut n: CK_ULONG = 0;
    let rv = unsafe { list_fn(null_mut(), &mut n) };
    call_line("C_GetInterfaceList", rv, None);
    fact(format!("interface count {n}"));
    // SAFETY: CK_INTERFACE is plain data; all-zero is valid.
    let mut list: Vec<CK_INTERFACE> = vec![unsafe { std::mem::zeroed() }; n as usize + 1];
    let mut short: CK_ULONG = 0;
    let rv = unsafe { list_fn(list.as_mut_ptr(), &mut short) };
    call_line("C_GetInterfaceList", rv, None);
    fact(format!("count after too-small buffer {short}"));
    let mut room = list.len() as CK_ULONG;
    let rv = unsafe { list_fn(list.as_mut_ptr(), &mut room) };
    call_line("C_GetInterfaceList", rv, None);
    for iface in &list[..room as usize] {
        unsafe { describe(iface) };
    }

    let rv = unsafe { get_fn(null_mut(), null_mut(), null_mut(), 0) };
    call_line("C_GetInterface", rv, None);
    let mut default: *mut CK_INTERFACE = null_mut();
    let rv = unsafe { get_fn(null_mut(), null_mut(), &mut default, 0) };
    call_line("C_GetInterface", rv, None);
    assert!(rv == CKR_OK && !default.is_null(), "no default interface");
    unsafe { describe(default) };
    let table = unsafe { (*default).pFunctionList } as *const CK_FUNCTION_LIST;
    fact(format!(
        "default is the listed interface's table: {}",
        room > 0 && list[0].pFunctionList as *const CK_FUNCTION_LIST == table
    ));

    let name = PKCS11.as_ptr() as *mut CK_UTF8CHAR;
    for (major, minor) in [(3, 0), (2, 40), (3, 2)] {
        let mut version = CK_VERSION { major, minor };
        let mut iface: *mut CK_INTERFACE = null_mut();
        let rv = unsafe { get_fn(name, &mut version, &mut iface, 0) };
        call_line(
            "C_GetInterface",
            rv,
            Some(format!("version={major}.{minor}")),
        );
        if rv == CKR_OK {
            unsafe { describe(iface) };
        }
    }
    let mut iface: *mut CK_INTERFACE = null_mut();
    let rv = unsafe { get_fn(c"Vendor X".as_ptr() as *mut _, null_mut(), &mut iface, 0) };
    call_line("C_GetInterface", rv, Some("name=Vendor-X".into()));
    let rv = unsafe { get_fn(name, null_mut(), &mut iface, CKF_INTERFACE_FORK_SAFE) };
    call_line(
        "C_GetInterface",
        rv,
        Some("flags=CKF_INTERFACE_FORK_SAFE".into()),
    );

    let mut from_list: *mut CK_FUNCTION_LIST = null_mut();
    let rv = unsafe { (m.get_function_list)(&mut from_list) };
    call_line("C_GetFunctionList", rv, None);
    fact(format!(
        "C_GetFunctionList gives the same table: {}",
        std::ptr::eq(from_list, table)
    ));

    // SAFETY: the shim's tables are CK_FUNCTION_LIST_3_0-sized whatever their version.
    let ours = unsafe { *(table as *const CK_FUNCTION_LIST_3_0) };
    let v3_set: Vec<&str> = v3_entries(&ours)
        .into_iter()
        .filter(|(_, s)| *s)
        .map(|(n, _)| n)
        .collect();
    fact(format!("3.0 entries set in the 2.x table: {v3_set:?}"));

    let vendor = Module::open(vendor);
    let mut theirs: *mut CK_FUNCTION_LIST = null_mut();
    // SAFETY: a valid out-pointer; the vendor's own C_GetFunctionList (not recorded).
    assert_eq!(unsafe { (vendor.get_function_list)(&mut theirs) }, CKR_OK);
    // SAFETY: both are 2.40 tables; only the 2.40 part is read.
    let (ours, theirs) = unsafe { (v2_entries(&*table), v2_entries(&*theirs)) };
    let extra: Vec<&str> = ours
        .iter()
        .zip(&theirs)
        .filter(|((_, o), (_, t))| *o && !*t)
        .map(|((n, _), _)| *n)
        .collect();
    let missing: Vec<&str> = ours
        .iter()
        .zip(&theirs)
        .filter(|((_, o), (_, t))| !*o && *t)
        .map(|((n, _), _)| *n)
        .collect();
    fact(format!("set in ours but NULL in the vendor's: {extra:?}"));
    fact(format!("set in the vendor's but NULL in ours: {missing:?}"));

    // The table the interface hands out works.
    // SAFETY: a valid table; NULL arguments are allowed for these calls.
    let f = unsafe { &*table };
    let rv = unsafe { f.C_Initialize.expect("C_Initialize")(null_mut()) };
    call_line("C_Initialize", rv, None);
    // SAFETY: CK_INFO is plain data.
    let mut info: CK_INFO = unsafe { std::mem::zeroed() };
    let rv = unsafe { f.C_GetInfo.expect("C_GetInfo")(&mut info) };
    call_line("C_GetInfo", rv, None);
    fact(format!(
        "cryptoki {}.{}",
        info.cryptokiVersion.major, info.cryptokiVersion.minor
    ));
    let rv = unsafe { f.C_Finalize.expect("C_Finalize")(null_mut()) };
    call_line("C_Finalize", rv, None);
}
