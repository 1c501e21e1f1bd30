//! Interface negotiation over a PKCS#11 3.0 vendor, the mock module
//! (`softhsm-tests/mock-v3/`): `C_GetInterfaceList` and `C_GetInterface` with NULL, short
//! and real arguments, version, name and flag requests; which entries the tables have; and
//! calls through the tables the interfaces hand out, 3.0 functions included.
//!
//! Run directly on the mock and through the shim in front of it, the transcript must be the
//! same except for one word: whose table each interface points at, `vendor` (the very table
//! the vendor hands out when asked directly, in this process) or `other`. Directly every
//! table is the vendor's; through the shim the "PKCS 11" tables are the shim's and the
//! vendor-specific one is passed through.

use crate::canary;
use crate::raw::{call_line, fact, mech_tag, text, user_tag, v2_entries, v3_entries, Module};
use cryptoki_sys::*;
use std::ffi::{c_void, CStr};
use std::path::Path;
use std::ptr::null_mut;

const PKCS11: &CStr = c"PKCS 11";
/// The mock's vendor-specific interface (`mock_pkcs11_v3::VENDOR_INTERFACE`).
const VENDOR_INTERFACE: &CStr = c"Vendor MOCK";
/// The mock's vendor-specific function list (`mock_pkcs11_v3::MockFunctions`).
#[repr(C)]
struct MockFunctions {
    version: CK_VERSION,
    ping: unsafe extern "C" fn(*mut CK_ULONG) -> CK_RV,
}
/// A session handle no session has.
const BAD_SESSION: CK_SESSION_HANDLE = 0x7fff_0001;

/// The tables the vendor itself hands out, asked for directly (never through the module
/// under test, so these calls are not recorded).
struct VendorTables(Vec<*const c_void>);

impl VendorTables {
    fn of(vendor: &Module) -> VendorTables {
        let list_fn = vendor
            .get_interface_list
            .expect("vendor C_GetInterfaceList");
        let mut n: CK_ULONG = 16;
        // SAFETY: CK_INTERFACE is plain data; room for `n` entries.
        let mut list: Vec<CK_INTERFACE> = vec![unsafe { std::mem::zeroed() }; n as usize];
        assert_eq!(unsafe { list_fn(list.as_mut_ptr(), &mut n) }, CKR_OK);
        let mut tables: Vec<*const c_void> = list[..n as usize]
            .iter()
            .map(|i| i.pFunctionList as *const c_void)
            .collect();
        let mut v2: *mut CK_FUNCTION_LIST = null_mut();
        // SAFETY: a valid out-pointer.
        assert_eq!(unsafe { (vendor.get_function_list)(&mut v2) }, CKR_OK);
        tables.push(v2 as *const c_void);
        VendorTables(tables)
    }

    fn owner(&self, table: *const c_void) -> &'static str {
        if self.0.contains(&table) {
            "vendor"
        } else {
            "other"
        }
    }
}

/// Prints an interface: name, table version, flags and whose table it is.
///
/// # Safety
/// `iface` is a valid interface.
unsafe fn describe(iface: *const CK_INTERFACE, vendor: &VendorTables) {
    // SAFETY: per the contract.
    let i = unsafe { &*iface };
    // SAFETY: a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(i.pInterfaceName as *const _) }.to_string_lossy();
    // SAFETY: every function list starts with its version.
    let v = unsafe { *(i.pFunctionList as *const CK_VERSION) };
    fact(format!(
        "interface {name:?} version {}.{} flags {:#x} table {}",
        v.major,
        v.minor,
        i.flags,
        vendor.owner(i.pFunctionList)
    ));
}

/// The names of the entries that are NULL.
fn nulls(entries: Vec<(&'static str, bool)>) -> Vec<&'static str> {
    entries
        .into_iter()
        .filter(|(_, set)| !set)
        .map(|(n, _)| n)
        .collect()
}

/// Entries set in `ours` and NULL in `theirs`, then the other way round.
fn differences(
    ours: Vec<(&'static str, bool)>,
    theirs: Vec<(&'static str, bool)>,
) -> (Vec<&'static str>, Vec<&'static str>) {
    let pick = |want_ours: bool| {
        ours.iter()
            .zip(&theirs)
            .filter(|((_, o), (_, t))| *o == want_ours && *t != want_ours)
            .map(|((n, _), _)| *n)
            .collect()
    };
    (pick(true), pick(false))
}

/// Runs the workload against `path`; `vendor` is the mock (the module itself when direct).
/// Calls `$f` from `$table`, prints its call line (with an optional tag) and returns its rv.
macro_rules! call {
    ($table:expr, $f:ident ( $($a:expr),* $(,)? ) $(; $tag:expr)?) => {{
        let func = $table.$f.expect(concat!(stringify!($f), " is NULL"));
        // SAFETY: valid arguments, or deliberately bad handles the module must reject.
        let rv = unsafe { func($($a),*) };
        call_line(stringify!($f), rv, None $(.or(Some($tag)))?);
        rv
    }};
}

pub fn run(path: &Path, vendor_path: &Path) {
    let vendor = Module::open(vendor_path);
    let theirs = VendorTables::of(&vendor);
    let m = Module::open(path);
    let list_fn = m.get_interface_list.expect("C_GetInterfaceList exported");
    let get_fn = m.get_interface.expect("C_GetInterface exported");

    // --- C_GetInterfaceList ---
    // SAFETY (this block and below): arguments are valid, or the NULLs and short buffers
    // PKCS#11 says the module must reject.
    let rv = unsafe { list_fn(null_mut(), null_mut()) };
    call_line("C_GetInterfaceList", rv, Some("count=NULL".into()));
    // SAFETY: CK_INTERFACE is plain data; all-zero is valid.
    let mut list: Vec<CK_INTERFACE> = vec![unsafe { std::mem::zeroed() }; 8];
    let rv = unsafe { list_fn(list.as_mut_ptr(), null_mut()) };
    call_line("C_GetInterfaceList", rv, Some("list count=NULL".into()));
    let mut n: CK_ULONG = 0;
    let rv = unsafe { list_fn(null_mut(), &mut n) };
    call_line("C_GetInterfaceList", rv, Some("list=NULL".into()));
    fact(format!("interface count {n}"));
    let mut short = n - 1;
    let rv = unsafe { list_fn(list.as_mut_ptr(), &mut short) };
    call_line("C_GetInterfaceList", rv, Some(format!("room={}", n - 1)));
    fact(format!("count after too-small buffer {short}"));
    let mut room = list.len() as CK_ULONG;
    let rv = unsafe { list_fn(list.as_mut_ptr(), &mut room) };
    call_line(
        "C_GetInterfaceList",
        rv,
        Some(format!("room={}", list.len())),
    );
    fact(format!("count {room}"));
    for iface in &list[..room as usize] {
        unsafe { describe(iface, &theirs) };
    }
    let listed = |i: usize| list[i].pFunctionList as *const c_void;

    // --- C_GetInterface ---
    let get = |name: Option<&CStr>, version: Option<(u8, u8)>, flags: CK_FLAGS, tag: String| {
        let mut v = version.map(|(major, minor)| CK_VERSION { major, minor });
        let v_ptr = v.as_mut().map_or(null_mut(), |v| v as *mut CK_VERSION);
        let name_ptr = name.map_or(null_mut(), |n| n.as_ptr() as *mut CK_UTF8CHAR);
        let mut iface: *mut CK_INTERFACE = null_mut();
        // SAFETY: NULL or valid name and version, a valid out-pointer.
        let rv = unsafe { get_fn(name_ptr, v_ptr, &mut iface, flags) };
        call_line("C_GetInterface", rv, Some(tag));
        if rv != CKR_OK {
            return None;
        }
        // SAFETY: the module returned a valid interface.
        unsafe { describe(iface, &theirs) };
        Some(unsafe { (*iface).pFunctionList } as *const c_void)
    };
    let rv = unsafe { get_fn(null_mut(), null_mut(), null_mut(), 0) };
    call_line("C_GetInterface", rv, Some("interface=NULL".into()));
    let default = get(None, None, 0, "default".into());
    fact(format!(
        "default is listed interface 1: {}",
        default == Some(listed(0))
    ));
    let v3 = get(
        Some(PKCS11),
        Some((3, 0)),
        0,
        "name=PKCS_11 version=3.0".into(),
    );
    fact(format!("is listed interface 1: {}", v3 == Some(listed(0))));
    let v2 = get(
        Some(PKCS11),
        Some((2, 40)),
        0,
        "name=PKCS_11 version=2.40".into(),
    );
    fact(format!("is listed interface 2: {}", v2 == Some(listed(1))));
    get(Some(PKCS11), None, 0, "name=PKCS_11".into());
    get(
        Some(PKCS11),
        Some((3, 1)),
        0,
        "name=PKCS_11 version=3.1".into(),
    );
    get(
        Some(PKCS11),
        Some((2, 40)),
        CKF_INTERFACE_FORK_SAFE,
        "name=PKCS_11 version=2.40 flags=CKF_INTERFACE_FORK_SAFE".into(),
    );
    get(
        Some(PKCS11),
        None,
        CKF_INTERFACE_FORK_SAFE,
        "name=PKCS_11 flags=CKF_INTERFACE_FORK_SAFE".into(),
    );
    get(Some(c"Vendor X"), None, 0, "name=Vendor_X".into());
    let mock = get(Some(VENDOR_INTERFACE), None, 0, "name=Vendor_MOCK".into());
    fact(format!(
        "is listed interface 3: {}",
        mock == Some(listed(2))
    ));

    // --- Which entries the tables have ---
    let v3 = v3.expect("a 3.0 interface") as *const CK_FUNCTION_LIST_3_0;
    let v2 = v2.expect("a 2.40 interface") as *const CK_FUNCTION_LIST;
    let mut from_list: *mut CK_FUNCTION_LIST = null_mut();
    let rv = unsafe { (m.get_function_list)(&mut from_list) };
    call_line("C_GetFunctionList", rv, None);
    fact(format!(
        "is the 2.40 interface's table: {}",
        std::ptr::eq(from_list, v2)
    ));
    // SAFETY: tables of the versions their interfaces state; the 2.40 one is read 2.40-sized.
    let (f3, f2) = unsafe { (&*v3, &*v2) };
    fact(format!(
        "3.0 table NULL entries: {:?} + {:?}",
        nulls(v2_entries(&v3_as_v2(f3))),
        nulls(v3_entries(f3))
    ));
    fact(format!(
        "2.40 table NULL entries: {:?}",
        nulls(v2_entries(f2))
    ));
    let mut v30 = CK_VERSION { major: 3, minor: 0 };
    compare_with_vendor(&vendor, Some(v30), f3, "3.0 table");
    let mut vendor_f2: *mut CK_FUNCTION_LIST = null_mut();
    // SAFETY: the vendor's own C_GetFunctionList, directly (not recorded).
    assert_eq!(
        unsafe { (vendor.get_function_list)(&mut vendor_f2) },
        CKR_OK
    );
    let (extra, missing) = differences(v2_entries(f2), v2_entries(unsafe { &*vendor_f2 }));
    fact(format!(
        "2.40 table, set where the vendor's is NULL: {extra:?}"
    ));
    fact(format!(
        "2.40 table, NULL where the vendor's is set: {missing:?}"
    ));

    // --- Calls through the 3.0 table ---
    let mut out: *mut CK_FUNCTION_LIST = null_mut();
    call!(f3, C_GetFunctionList(&mut out));
    fact(format!(
        "is the 2.40 interface's table: {}",
        std::ptr::eq(out, v2)
    ));
    let mut iface: *mut CK_INTERFACE = null_mut();
    call!(f3, C_GetInterface(PKCS11.as_ptr() as *mut _, &mut v30, &mut iface, 0); "name=PKCS_11 version=3.0".into());
    fact(format!(
        "is the 3.0 interface's table: {}",
        std::ptr::eq(
            unsafe { (*iface).pFunctionList } as *const CK_FUNCTION_LIST_3_0,
            v3
        )
    ));
    let mut count: CK_ULONG = 0;
    call!(f3, C_GetInterfaceList(null_mut(), &mut count); "list=NULL".into());
    fact(format!("interface count {count}"));
    // The 2.40 table from the same negotiation serves the same session.
    session_calls(f3, f2);

    // --- The vendor-specific interface ---
    // SAFETY: the "Vendor MOCK" interface's table is the mock's MockFunctions.
    ping(unsafe { &*(mock.expect("the vendor interface") as *const MockFunctions) });
}

/// The calls both workloads make through a negotiated 3.0 table `f3`: initialise, open a
/// session, `C_LoginUser` (wrong PIN, then the token's), `C_SessionCancel` (good and bad
/// session), a message-encryption attempt, `C_Logout` through `f2`, close, finalise.
fn session_calls(f3: &CK_FUNCTION_LIST_3_0, f2: &CK_FUNCTION_LIST) {
    call!(f3, C_Initialize(null_mut()));
    // SAFETY: CK_INFO is plain data.
    let mut info: CK_INFO = unsafe { std::mem::zeroed() };
    call!(f3, C_GetInfo(&mut info));
    fact(format!("manufacturer {}", text(&info.manufacturerID)));
    let mut slots = [0 as CK_SLOT_ID; 8];
    let mut n = slots.len() as CK_ULONG;
    call!(f3, C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut n));
    let mut session: CK_SESSION_HANDLE = 0;
    call!(
        f3,
        C_OpenSession(
            slots[0],
            CKF_SERIAL_SESSION | CKF_RW_SESSION,
            null_mut(),
            None,
            &mut session
        )
    );
    // C_LoginUser with a user name: a wrong PIN, then the token's.
    let mut user = b"alice".to_vec();
    let (user_ptr, user_len) = (user.as_mut_ptr(), user.len() as CK_ULONG);
    for pin in [b"not-the-pin".as_slice(), canary::get().user_pin.as_bytes()] {
        let mut pin = pin.to_vec();
        let (pin_ptr, pin_len) = (pin.as_mut_ptr(), pin.len() as CK_ULONG);
        call!(f3, C_LoginUser(session, CKU_USER, pin_ptr, pin_len, user_ptr, user_len); user_tag(CKU_USER));
    }
    call!(f3, C_SessionCancel(session, CKF_FIND_OBJECTS));
    call!(f3, C_SessionCancel(BAD_SESSION, CKF_FIND_OBJECTS));
    let mut gcm = crate::raw::mech(CKM_AES_GCM);
    call!(f3, C_MessageEncryptInit(session, &mut gcm, 0); mech_tag(CKM_AES_GCM));
    call!(f3, C_MessageEncryptFinal(session));
    call!(f2, C_Logout(session));
    call!(f3, C_CloseSession(session));
    call!(f3, C_Finalize(null_mut()));
}

/// Calls the mock's vendor-specific `MOCK_Ping` through its own interface table.
fn ping(mock: &MockFunctions) {
    let mut answer: CK_ULONG = 0;
    // SAFETY: the mock's own function and a valid out-pointer.
    let rv = unsafe { (mock.ping)(&mut answer) };
    call_line("MOCK_Ping", rv, None);
    fact(format!(
        "version {}.{} answer {answer:#x}",
        mock.version.major, mock.version.minor
    ));
}

/// Prints which entries of `f3` differ from the vendor's own "PKCS 11" table of `version`
/// (its default with `None`), asked for directly (not recorded), as `label` facts.
fn compare_with_vendor(
    vendor: &Module,
    version: Option<CK_VERSION>,
    f3: &CK_FUNCTION_LIST_3_0,
    label: &str,
) {
    let mut vendor_iface: *mut CK_INTERFACE = null_mut();
    let mut version = version;
    let version_ptr = version
        .as_mut()
        .map_or(null_mut(), |v| v as *mut CK_VERSION);
    // SAFETY: the vendor's own C_GetInterface with valid pointers.
    let rv = unsafe {
        vendor.get_interface.expect("vendor C_GetInterface")(
            PKCS11.as_ptr() as *mut _,
            version_ptr,
            &mut vendor_iface,
            0,
        )
    };
    assert_eq!(rv, CKR_OK);
    // SAFETY: the vendor's 3.x table, read 3.0-sized.
    let vendor_f3 = unsafe { &*((*vendor_iface).pFunctionList as *const CK_FUNCTION_LIST_3_0) };
    let (extra, missing) = differences(v2_entries(&v3_as_v2(f3)), v2_entries(&v3_as_v2(vendor_f3)));
    let (extra3, missing3) = differences(v3_entries(f3), v3_entries(vendor_f3));
    fact(format!(
        "{label}, set where the vendor's is NULL: {extra:?} + {extra3:?}"
    ));
    fact(format!(
        "{label}, NULL where the vendor's is set: {missing:?} + {missing3:?}"
    ));
}

/// The 2.40 part of a 3.0 table (its first fields, in the same order).
fn v3_as_v2(f: &CK_FUNCTION_LIST_3_0) -> CK_FUNCTION_LIST {
    // SAFETY: CK_FUNCTION_LIST_3_0 starts with exactly CK_FUNCTION_LIST's fields.
    unsafe { std::ptr::read(f as *const CK_FUNCTION_LIST_3_0 as *const CK_FUNCTION_LIST) }
}

/// Asks `get_fn` for an interface, prints the call line (and the interface when one is
/// returned) and gives the interface's function list.
fn get_interface(
    get_fn: crate::raw::GetInterfaceFn,
    theirs: &VendorTables,
    name: Option<&CStr>,
    version: Option<CK_VERSION>,
    flags: CK_FLAGS,
    tag: String,
) -> Option<*const c_void> {
    let mut v = version;
    let v_ptr = v.as_mut().map_or(null_mut(), |v| v as *mut CK_VERSION);
    let name_ptr = name.map_or(null_mut(), |n| n.as_ptr() as *mut CK_UTF8CHAR);
    let mut iface: *mut CK_INTERFACE = null_mut();
    // SAFETY: NULL or valid name and version, a valid out-pointer.
    let rv = unsafe { get_fn(name_ptr, v_ptr, &mut iface, flags) };
    call_line("C_GetInterface", rv, Some(tag));
    if rv != CKR_OK {
        return None;
    }
    // SAFETY: the module returned a valid interface.
    unsafe { describe(iface, theirs) };
    Some(unsafe { (*iface).pFunctionList } as *const c_void)
}

/// The `interfaces-v32` workload: interface negotiation over a vendor whose only "PKCS 11"
/// interface is 3.2 (the mock with `MOCK_PKCS11_ONLY_V32=1`), then calls through the table
/// obtained by the listed name and version. Its core check is consistency: every interface
/// `C_GetInterfaceList` lists is obtained by `C_GetInterface` with that interface's name and
/// version (and with its flags), and is the listed one. The transcript prints versions as the
/// module labels them, so directly and through the shim it differs in that label (3.2 / 3.0)
/// and in which explicit version requests succeed; `interfaces_v3.rs` spells both out.
pub fn run_v32(path: &Path, vendor_path: &Path) {
    let vendor = Module::open(vendor_path);
    let theirs = VendorTables::of(&vendor);
    let m = Module::open(path);
    let list_fn = m.get_interface_list.expect("C_GetInterfaceList exported");
    let get_fn = m.get_interface.expect("C_GetInterface exported");

    // --- C_GetInterfaceList ---
    let mut n: CK_ULONG = 0;
    // SAFETY: a NULL list and a valid count.
    let rv = unsafe { list_fn(null_mut(), &mut n) };
    call_line("C_GetInterfaceList", rv, Some("list=NULL".into()));
    fact(format!("interface count {n}"));
    // SAFETY: CK_INTERFACE is plain data; all-zero is valid.
    let mut list: Vec<CK_INTERFACE> = vec![unsafe { std::mem::zeroed() }; 8];
    let mut room = list.len() as CK_ULONG;
    // SAFETY: room for `room` entries.
    let rv = unsafe { list_fn(list.as_mut_ptr(), &mut room) };
    call_line(
        "C_GetInterfaceList",
        rv,
        Some(format!("room={}", list.len())),
    );
    fact(format!("count {room}"));
    // Entries are read only when the module says it wrote them.
    list.truncate(if rv == CKR_OK { room as usize } else { 0 });
    for iface in &list {
        // SAFETY: entries the module just wrote.
        unsafe { describe(iface, &theirs) };
    }
    // Name, version and flags of each listed interface.
    let listed: Vec<(&CStr, CK_VERSION, CK_FLAGS, *const c_void)> = list
        .iter()
        .map(|i| {
            // SAFETY: valid entries: a NUL-terminated name, a table starting with its version.
            let name = unsafe { CStr::from_ptr(i.pInterfaceName as *const _) };
            let version = unsafe { *(i.pFunctionList as *const CK_VERSION) };
            (name, version, i.flags, i.pFunctionList as *const c_void)
        })
        .collect();
    let index_of = |table: Option<*const c_void>| {
        table
            .and_then(|t| listed.iter().position(|l| l.3 == t))
            .map_or("none".to_owned(), |i| (i + 1).to_string())
    };

    // --- C_GetInterface: the default, then every listed interface by name and version ---
    let default = get_interface(get_fn, &theirs, None, None, 0, "default".into());
    fact(format!("default is listed interface {}", index_of(default)));
    let mut pkcs11_table = None;
    for (i, &(name, version, flags, table)) in listed.iter().enumerate() {
        let tag = |flags: Option<CK_FLAGS>| {
            let name = name.to_string_lossy().replace(' ', "_");
            let flags = flags.map_or(String::new(), |f| format!(" flags={f:#x}"));
            format!(
                "name={name} version={}.{}{flags}",
                version.major, version.minor
            )
        };
        let got = get_interface(get_fn, &theirs, Some(name), Some(version), 0, tag(None));
        fact(format!(
            "listed interface {} obtained by its name and version: {}",
            i + 1,
            got == Some(table)
        ));
        if flags != 0 {
            let got = get_interface(
                get_fn,
                &theirs,
                Some(name),
                Some(version),
                flags,
                tag(Some(flags)),
            );
            fact(format!(
                "listed interface {} obtained by its name, version and flags: {}",
                i + 1,
                got == Some(table)
            ));
        }
        if name == PKCS11 && pkcs11_table.is_none() {
            pkcs11_table = got;
        }
    }

    // --- C_GetInterface: other "PKCS 11" requests ---
    for (major, minor) in [(3, 0), (3, 2), (2, 40)] {
        let got = get_interface(
            get_fn,
            &theirs,
            Some(PKCS11),
            Some(CK_VERSION { major, minor }),
            0,
            format!("name=PKCS_11 version={major}.{minor}"),
        );
        if got.is_some() {
            fact(format!("is listed interface {}", index_of(got)));
        }
    }
    get_interface(
        get_fn,
        &theirs,
        Some(PKCS11),
        None,
        0,
        "name=PKCS_11".into(),
    );
    get_interface(
        get_fn,
        &theirs,
        Some(PKCS11),
        None,
        CKF_INTERFACE_FORK_SAFE,
        "name=PKCS_11 flags=CKF_INTERFACE_FORK_SAFE".into(),
    );
    // A flag no listed interface has: every requested flag must be set.
    get_interface(
        get_fn,
        &theirs,
        Some(PKCS11),
        None,
        CKF_INTERFACE_FORK_SAFE | 0x2,
        "name=PKCS_11 flags=CKF_INTERFACE_FORK_SAFE|0x2".into(),
    );
    // No name (the default interface) with an explicit version.
    for (major, minor) in [(3, 0), (3, 2)] {
        get_interface(
            get_fn,
            &theirs,
            None,
            Some(CK_VERSION { major, minor }),
            0,
            format!("version={major}.{minor}"),
        );
    }

    // --- Which entries the "PKCS 11" table has (its 3.0 part) ---
    let table = pkcs11_table.expect("a listed \"PKCS 11\" interface, obtained");
    // SAFETY: a 3.x table, at least CK_FUNCTION_LIST_3_0-sized whatever 3.x label it has; only
    // the 3.0 part is read (a 3.2 label is not trusted to read past it: the shim's table is
    // 3.0-sized).
    let f3 = unsafe { &*(table as *const CK_FUNCTION_LIST_3_0) };
    fact(format!(
        "\"PKCS 11\" table NULL entries: {:?} + {:?}",
        nulls(v2_entries(&v3_as_v2(f3))),
        nulls(v3_entries(f3))
    ));
    compare_with_vendor(&vendor, None, f3, "3.0 part");

    // --- Calls through the table obtained by the listed name and version ---
    let mut iface: *mut CK_INTERFACE = null_mut();
    let mut label = listed
        .iter()
        .find(|l| l.0 == PKCS11)
        .map(|l| l.1)
        .expect("a listed \"PKCS 11\" interface");
    call!(f3, C_GetInterface(PKCS11.as_ptr() as *mut _, &mut label, &mut iface, 0);
        format!("name=PKCS_11 version={}.{}", label.major, label.minor));
    fact(format!(
        "is the same table: {}",
        // SAFETY: a returned interface.
        std::ptr::eq(unsafe { (*iface).pFunctionList } as *const c_void, table)
    ));
    let mut count: CK_ULONG = 0;
    call!(f3, C_GetInterfaceList(null_mut(), &mut count); "list=NULL".into());
    fact(format!("interface count {count}"));
    session_calls(f3, &v3_as_v2(f3));

    // --- The vendor-specific interface ---
    let (_, _, _, mock) = *listed
        .iter()
        .find(|l| l.0 == VENDOR_INTERFACE)
        .expect("the vendor interface listed");
    // SAFETY: the "Vendor MOCK" interface's table is the mock's MockFunctions.
    ping(unsafe { &*(mock as *const MockFunctions) });
}
