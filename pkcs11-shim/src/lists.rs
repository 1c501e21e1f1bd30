//! The function tables and interfaces the shim hands out: its own exports, offered exactly
//! where the vendor offers the same function.

use crate::vendor::{self, empty_list, v2_fields, v3_fields, Vendor, PKCS11_INTERFACE};
use cryptoki_sys::*;
use std::sync::OnceLock;

/// A table or interface that lives in a static and is read by C callers.
pub struct Shared<T>(pub T);
// SAFETY: the wrapped tables hold function pointers and pointers to other statics; they
// are written once before being published and never mutated afterwards.
unsafe impl<T> Sync for Shared<T> {}
unsafe impl<T> Send for Shared<T> {}

/// One of our function tables, followed by zeros up to the size of PKCS#11 3.2's list. A
/// table carries the vendor's version label, which can say 3.1 or 3.2 (SoftHSM 2.7 labels
/// its `C_GetFunctionList` table 3.2); a caller that trusts the label then reads NULL
/// entries for the functions we do not wrap, never past the end of the allocation.
#[repr(C)]
pub struct Table {
    /// The table callers are handed.
    pub list: CK_FUNCTION_LIST_3_0,
    tail: [u8; TAIL],
}

const TAIL: usize =
    std::mem::size_of::<CK_FUNCTION_LIST_3_2>() - std::mem::size_of::<CK_FUNCTION_LIST_3_0>();

// Whatever the label says (up to 3.2), every entry a caller may read is inside the table.
const _: () = assert!(std::mem::size_of::<Table>() >= std::mem::size_of::<CK_FUNCTION_LIST_3_2>());

impl Table {
    fn new(list: CK_FUNCTION_LIST_3_0) -> Table {
        Table {
            list,
            tail: [0; TAIL],
        }
    }
}

/// The interfaces and tables the shim offers.
pub struct Lists {
    /// `C_GetFunctionList`'s table and the 2.x interface: the vendor's 2.40 functions, with
    /// the vendor's version. The 3.0 part is empty and a 3.2-sized tail of zeros follows
    /// ([`Table`]), so a caller that trusts a version label reads zeros rather than past
    /// the end.
    pub v2: &'static Shared<Table>,
    /// The 3.0 table, when the vendor offers a 3.x interface.
    pub v3: Option<&'static Shared<Table>>,
    /// The "PKCS 11" interfaces, 2.x first then 3.0.
    pub v2_interface: &'static Shared<CK_INTERFACE>,
    /// The 3.0 "PKCS 11" interface, when offered.
    pub v3_interface: Option<&'static Shared<CK_INTERFACE>>,
}

static LISTS: OnceLock<Lists> = OnceLock::new();

/// Our tables, built from the vendor's on first use.
pub fn get() -> Result<&'static Lists, CK_RV> {
    let vendor = vendor::get()?;
    Ok(LISTS.get_or_init(|| build(vendor)))
}

fn leak<T>(value: T) -> &'static Shared<T> {
    // Built once per process; the tables must outlive every caller holding a pointer.
    Box::leak(Box::new(Shared(value)))
}

fn interface(list: &'static Shared<Table>, flags: CK_FLAGS) -> &'static Shared<CK_INTERFACE> {
    leak(CK_INTERFACE {
        pInterfaceName: PKCS11_INTERFACE.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &list.0.list as *const CK_FUNCTION_LIST_3_0 as *mut std::ffi::c_void,
        flags,
    })
}

fn build(vendor: &Vendor) -> Lists {
    let v2 = leak(Table::new(ours_where_vendor_has(
        vendor,
        vendor.v2_version,
        false,
    )));
    let v3 = vendor.has_v3.then(|| {
        leak(Table::new(ours_where_vendor_has(
            vendor,
            CK_VERSION { major: 3, minor: 0 },
            true,
        )))
    });
    Lists {
        v2,
        v3,
        v2_interface: interface(v2, 0),
        v3_interface: v3.map(|l| interface(l, 0)),
    }
}

/// Our table with an entry exactly where the vendor's table has one.
fn ours_where_vendor_has(
    vendor: &Vendor,
    version: CK_VERSION,
    with_v3: bool,
) -> CK_FUNCTION_LIST_3_0 {
    let theirs = &vendor.fns;
    let mut list = empty_list(version);
    macro_rules! offer {
        ($($f:ident),*) => { $( if theirs.$f.is_some() { list.$f = Some(crate::exports::$f); } )* };
    }
    v2_fields!(offer);
    // Every module has C_GetFunctionList (we were handed the table through it).
    list.C_GetFunctionList = Some(crate::exports::C_GetFunctionList);
    if with_v3 {
        v3_fields!(offer);
        // A 3.0 table always carries the interface functions: we answer them.
        list.C_GetInterfaceList = Some(crate::exports::C_GetInterfaceList);
        list.C_GetInterface = Some(crate::exports::C_GetInterface);
    }
    list
}
