//! Slot and token management.

use super::forward;
use cryptoki_sys::*;
use std::ffi::c_void;

forward! {
    C_GetSlotList => GetSlotList(token_present: CK_BBOOL, slot_list: *mut CK_SLOT_ID, count: *mut CK_ULONG);
    C_GetSlotInfo => GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO);
    C_GetTokenInfo => GetTokenInfo(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO);
    C_GetMechanismList => GetMechanismList(slot: CK_SLOT_ID, list: *mut CK_MECHANISM_TYPE, count: *mut CK_ULONG);
    C_GetMechanismInfo => GetMechanismInfo(slot: CK_SLOT_ID, kind: CK_MECHANISM_TYPE, info: *mut CK_MECHANISM_INFO) mechanism_type = kind;
    C_InitToken => InitToken(slot: CK_SLOT_ID, pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG, label: *mut CK_UTF8CHAR);
    C_InitPIN => InitPIN(session: CK_SESSION_HANDLE, pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG);
    C_SetPIN => SetPIN(session: CK_SESSION_HANDLE, old: *mut CK_UTF8CHAR, old_len: CK_ULONG, new: *mut CK_UTF8CHAR, new_len: CK_ULONG);
    C_WaitForSlotEvent => WaitForSlotEvent(flags: CK_FLAGS, slot: *mut CK_SLOT_ID, reserved: *mut c_void);
}
