//! Sessions, login and logout (wrong PIN, SO), `C_InitPIN` and `C_SetPIN`.

use super::lifecycle::zeroed;
use super::{c, handle, BAD_SESSION, BAD_SLOT, W};
use crate::canary;
use crate::raw::{fact, user_tag};
use cryptoki_sys::*;
use std::ptr::null_mut;

fn pin(p: &str) -> (*mut CK_UTF8CHAR, CK_ULONG) {
    (p.as_ptr() as *mut CK_UTF8CHAR, p.len() as CK_ULONG)
}

fn session_facts(w: &mut W, s: CK_SESSION_HANDLE) {
    let mut si: CK_SESSION_INFO = zeroed();
    if c!(w, C_GetSessionInfo(s, &mut si)) == CKR_OK {
        fact(format!(
            "state {}, flags {:#x}, device error {}, own slot {}",
            si.state,
            si.flags,
            si.ulDeviceError,
            si.slotID == w.slot
        ));
    }
}

/// Leaves `w.rw` open, logged in as the user with the canary `set_pin`.
pub(crate) fn sessions_and_pins(w: &mut W) {
    let rw_flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
    let mut s: CK_SESSION_HANDLE = 0;
    c!(w, C_OpenSession(w.slot, 0, null_mut(), None, &mut s));
    c!(
        w,
        C_OpenSession(w.slot, rw_flags, null_mut(), None, null_mut())
    );
    c!(
        w,
        C_OpenSession(BAD_SLOT, rw_flags, null_mut(), None, &mut s)
    );
    c!(
        w,
        C_OpenSession(w.slot, rw_flags, null_mut(), None, &mut w.rw)
    );
    handle("session", w.rw);
    let mut ro: CK_SESSION_HANDLE = 0;
    c!(
        w,
        C_OpenSession(w.slot, CKF_SERIAL_SESSION, null_mut(), None, &mut ro)
    );
    handle("session", ro);
    session_facts(w, w.rw);
    session_facts(w, ro);
    session_facts(w, BAD_SESSION);
    c!(w, C_GetSessionInfo(w.rw, null_mut()));

    let rw = w.rw;
    let (p, n) = pin(canary::get().wrong_pin);
    c!(w, C_Login(rw, CKU_USER, p, n); user_tag(CKU_USER));
    // An SO cannot log in while a read-only session exists.
    let (p, n) = pin(canary::get().so_pin);
    c!(w, C_Login(rw, CKU_SO, p, n); user_tag(CKU_SO));
    c!(w, C_CloseSession(ro));
    c!(w, C_CloseSession(ro));
    c!(w, C_Login(rw, CKU_SO, p, n); user_tag(CKU_SO));
    session_facts(w, rw);
    let (ip, il) = pin(canary::get().init_pin);
    c!(w, C_InitPIN(rw, ip, il));
    c!(w, C_Logout(rw));
    c!(w, C_Logout(rw));
    // The PIN the token was made with no longer works.
    let (p, n) = pin(canary::get().user_pin);
    c!(w, C_Login(rw, CKU_USER, p, n); user_tag(CKU_USER));
    c!(w, C_Login(rw, CKU_USER, ip, il); user_tag(CKU_USER));
    let (wp, wl) = pin(canary::get().wrong_pin);
    let (sp, sl) = pin(canary::get().set_pin);
    c!(w, C_SetPIN(rw, wp, wl, sp, sl));
    c!(w, C_SetPIN(rw, ip, il, sp, sl));
    c!(w, C_Logout(rw));
    c!(w, C_Login(rw, CKU_USER, sp, sl); user_tag(CKU_USER));
    c!(w, C_Login(rw, CKU_USER, sp, sl); user_tag(CKU_USER));
    c!(w, C_Login(rw, 7, sp, sl); user_tag(7));
    c!(w, C_Login(rw, CKU_USER, null_mut(), 4); user_tag(CKU_USER));
    session_facts(w, rw);
}
