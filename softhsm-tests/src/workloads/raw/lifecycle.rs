//! `C_GetFunctionList`, calls before `C_Initialize`, initialisation with arguments, slot,
//! token and mechanism queries; at the end `C_InitToken`, `C_Finalize` and re-initialisation.

use super::{c, handle, BAD_SLOT, W};
use crate::canary;
use crate::raw::{call_line, fact, mech_tag, show_len, text};
use cryptoki_sys::*;
use std::ffi::c_void;
use std::ptr::null_mut;

/// `C_GetFunctionList` (NULL, then for real) and calls that must fail before `C_Initialize`.
pub(crate) fn before_initialize(w: &mut W) {
    // SAFETY: the exported entry point; NULL is the edge case the module must reject.
    let rv = unsafe { (w.m.get_function_list)(null_mut()) };
    call_line("C_GetFunctionList", rv, None);
    let mut list: *mut CK_FUNCTION_LIST = null_mut();
    // SAFETY: a valid out-pointer.
    let rv = unsafe { (w.m.get_function_list)(&mut list) };
    call_line("C_GetFunctionList", rv, None);
    assert!(rv == CKR_OK && !list.is_null(), "no function list");
    // SAFETY: the module returned a CK_FUNCTION_LIST; only its 2.40 size is read.
    w.f = unsafe { *list };
    table_facts(&w.f);

    let mut info: CK_INFO = zeroed();
    c!(w, C_GetInfo(&mut info));
    let mut n: CK_ULONG = 0;
    c!(w, C_GetSlotList(CK_TRUE, null_mut(), &mut n));
    let mut s: CK_SESSION_HANDLE = 0;
    c!(
        w,
        C_OpenSession(0, CKF_SERIAL_SESSION, null_mut(), None, &mut s)
    );
    c!(w, C_Finalize(null_mut()));
}

/// Which entries of the 2.40 table are set.
pub(crate) fn table_facts(f: &CK_FUNCTION_LIST) {
    let entries = crate::raw::v2_entries(f);
    let set = entries.iter().filter(|(_, set)| *set).count();
    let null: Vec<&str> = entries
        .iter()
        .filter(|(_, set)| !set)
        .map(|(n, _)| *n)
        .collect();
    fact(format!(
        "table version {}.{}, {set} entries set, NULL: {null:?}",
        f.version.major, f.version.minor
    ));
}

/// All-zero plain C data.
pub(crate) fn zeroed<T: Copy>() -> T {
    // SAFETY: only used for PKCS#11 info structs made of integers and byte arrays.
    unsafe { std::mem::zeroed() }
}

/// `C_Initialize` with bad and good arguments, `C_GetInfo`, slots, tokens and mechanisms.
pub(crate) fn initialize_and_slots(w: &mut W) {
    let mut reserved = 0u8;
    let mut args = CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags: CKF_OS_LOCKING_OK,
        pReserved: &mut reserved as *mut u8 as *mut c_void,
    };
    // pReserved must be NULL.
    c!(w, C_Initialize(&mut args as *mut _ as *mut c_void));
    args.pReserved = null_mut();
    c!(w, C_Initialize(&mut args as *mut _ as *mut c_void));
    c!(w, C_Initialize(null_mut()));

    c!(w, C_GetInfo(null_mut()));
    let mut info: CK_INFO = zeroed();
    if c!(w, C_GetInfo(&mut info)) == CKR_OK {
        fact(format!(
            "cryptoki {}.{}, manufacturer {:?}, library {:?} {}.{}, flags {:#x}",
            info.cryptokiVersion.major,
            info.cryptokiVersion.minor,
            text(&info.manufacturerID),
            text(&info.libraryDescription),
            info.libraryVersion.major,
            info.libraryVersion.minor,
            info.flags
        ));
    }

    c!(w, C_GetSlotList(CK_FALSE, null_mut(), null_mut()));
    let mut n: CK_ULONG = 0;
    c!(w, C_GetSlotList(CK_FALSE, null_mut(), &mut n));
    fact(format!("slot count {n}"));
    let mut slots = vec![0 as CK_SLOT_ID; n as usize];
    let mut short: CK_ULONG = 0;
    c!(w, C_GetSlotList(CK_FALSE, slots.as_mut_ptr(), &mut short));
    fact(format!("count after too-small buffer {short}"));
    c!(w, C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut n));
    slots.truncate(n as usize);
    for &slot in &slots {
        let mut t: CK_TOKEN_INFO = zeroed();
        if c!(w, C_GetTokenInfo(slot, &mut t)) != CKR_OK {
            continue;
        }
        token_facts(&t);
        if text(&t.label) == canary::get().token_label {
            w.slot = slot;
        } else if t.flags & CKF_TOKEN_INITIALIZED == 0 {
            w.free_slot = slot;
        }
    }
    assert!(
        w.slot != 0 || slots.contains(&0),
        "no token labelled with the canary label"
    );
    c!(w, C_GetTokenInfo(w.slot, null_mut()));
    c!(w, C_GetTokenInfo(BAD_SLOT, &mut zeroed()));

    let mut si: CK_SLOT_INFO = zeroed();
    if c!(w, C_GetSlotInfo(w.slot, &mut si)) == CKR_OK {
        // SoftHSM names the slot after its id, which differs per token directory.
        let description = text(&si.slotDescription).replace(&format!("{:#x}", w.slot), "<id>");
        fact(format!(
            "slot {description:?} by {:?}, flags {:#x}, hw {}.{}, fw {}.{}",
            text(&si.manufacturerID),
            si.flags,
            si.hardwareVersion.major,
            si.hardwareVersion.minor,
            si.firmwareVersion.major,
            si.firmwareVersion.minor
        ));
    }
    c!(w, C_GetSlotInfo(BAD_SLOT, &mut si));
    c!(w, C_GetSlotInfo(w.slot, null_mut()));

    mechanisms(w);
}

/// Token facts that are the same for two tokens made alike (not the serial or the clock).
fn token_facts(t: &CK_TOKEN_INFO) {
    fact(format!(
        "token {:?} by {:?} model {:?}, flags {:#x}, sessions {}/{} rw {}/{}, pin {}..{}, \
         memory {} {} {} {}, hw {}.{}, fw {}.{}",
        text(&t.label),
        text(&t.manufacturerID),
        text(&t.model),
        t.flags,
        show_len(t.ulSessionCount),
        show_len(t.ulMaxSessionCount),
        show_len(t.ulRwSessionCount),
        show_len(t.ulMaxRwSessionCount),
        t.ulMinPinLen,
        t.ulMaxPinLen,
        show_len(t.ulTotalPublicMemory),
        show_len(t.ulFreePublicMemory),
        show_len(t.ulTotalPrivateMemory),
        show_len(t.ulFreePrivateMemory),
        t.hardwareVersion.major,
        t.hardwareVersion.minor,
        t.firmwareVersion.major,
        t.firmwareVersion.minor
    ));
}

fn mechanisms(w: &mut W) {
    let mut n: CK_ULONG = 0;
    c!(w, C_GetMechanismList(w.slot, null_mut(), null_mut()));
    c!(w, C_GetMechanismList(w.slot, null_mut(), &mut n));
    fact(format!("mechanism count {n}"));
    let mut list = vec![0 as CK_MECHANISM_TYPE; n as usize];
    let mut short: CK_ULONG = 1;
    c!(w, C_GetMechanismList(w.slot, list.as_mut_ptr(), &mut short));
    fact(format!("count after too-small buffer {short}"));
    if c!(w, C_GetMechanismList(w.slot, list.as_mut_ptr(), &mut n)) == CKR_OK {
        let names: Vec<&str> = list[..n as usize]
            .iter()
            .map(|m| normalizer::names::mechanism_name(*m))
            .collect();
        fact(format!("mechanisms {}", names.join(" ")));
    }
    c!(w, C_GetMechanismList(BAD_SLOT, list.as_mut_ptr(), &mut n));
    for m in [
        CKM_AES_KEY_GEN,
        CKM_AES_GCM,
        CKM_RSA_PKCS_KEY_PAIR_GEN,
        CKM_EC_KEY_PAIR_GEN,
        CKM_ECDSA,
        CKM_SHA256,
        0x7fff_fff0,
    ] {
        let mut mi: CK_MECHANISM_INFO = zeroed();
        if c!(w, C_GetMechanismInfo(w.slot, m, &mut mi); mech_tag(m)) == CKR_OK {
            fact(format!(
                "key sizes {}..{}, flags {:#x}",
                mi.ulMinKeySize, mi.ulMaxKeySize, mi.flags
            ));
        }
    }
    c!(w, C_GetMechanismInfo(w.slot, CKM_SHA256, null_mut()); mech_tag(CKM_SHA256));
}

/// `C_InitToken` on the free slot, session teardown, `C_Finalize` and re-initialisation.
pub(crate) fn init_token_and_finalize(w: &mut W) {
    let pin = canary::get().so_pin;
    let mut label = [b' '; 32];
    label[..canary::get().token_label.len()].copy_from_slice(canary::get().token_label.as_bytes());
    // Sessions are open on our token.
    c!(
        w,
        C_InitToken(
            w.slot,
            pin.as_ptr() as *mut _,
            pin.len() as CK_ULONG,
            label.as_mut_ptr()
        )
    );
    c!(w, C_Logout(w.rw));
    c!(w, C_CloseAllSessions(w.slot));
    c!(w, C_CloseAllSessions(BAD_SLOT));
    let mut si: CK_SESSION_INFO = zeroed();
    c!(w, C_GetSessionInfo(w.rw, &mut si));

    let mut label = [b' '; 32];
    label[..canary::get().init_token_label.len()]
        .copy_from_slice(canary::get().init_token_label.as_bytes());
    let pin = canary::get().init_token_so_pin;
    c!(
        w,
        C_InitToken(
            w.free_slot,
            pin.as_ptr() as *mut _,
            pin.len() as CK_ULONG,
            label.as_mut_ptr()
        )
    );
    let mut t: CK_TOKEN_INFO = zeroed();
    if c!(w, C_GetTokenInfo(w.free_slot, &mut t)) == CKR_OK {
        fact(format!(
            "new token labelled as asked: {}, initialized: {}",
            text(&t.label) == canary::get().init_token_label,
            t.flags & CKF_TOKEN_INITIALIZED != 0
        ));
    }

    let mut reserved = 0u8;
    c!(w, C_Finalize(&mut reserved as *mut u8 as *mut c_void));
    c!(w, C_Finalize(null_mut()));
    c!(w, C_GetInfo(&mut zeroed()));
    c!(w, C_Initialize(null_mut()));
    let mut n: CK_ULONG = 0;
    c!(w, C_GetSlotList(CK_TRUE, null_mut(), &mut n));
    fact(format!("slot count after re-initialisation {n}"));
    let mut s: CK_SESSION_HANDLE = 0;
    c!(
        w,
        C_OpenSession(w.slot, CKF_SERIAL_SESSION, null_mut(), None, &mut s)
    );
    handle("session", s);
    c!(w, C_Finalize(null_mut()));
}
