//! Session management, login and the legacy parallel-function calls.

use super::forward;
use cryptoki_sys::*;
use std::ffi::c_void;

forward! {
    C_OpenSession => OpenSession(slot: CK_SLOT_ID, flags: CK_FLAGS, application: *mut c_void, notify: CK_NOTIFY, session: *mut CK_SESSION_HANDLE);
    C_CloseSession => CloseSession(session: CK_SESSION_HANDLE);
    C_CloseAllSessions => CloseAllSessions(slot: CK_SLOT_ID);
    C_GetSessionInfo => GetSessionInfo(session: CK_SESSION_HANDLE, info: *mut CK_SESSION_INFO);
    C_GetOperationState => GetOperationState(session: CK_SESSION_HANDLE, state: *mut CK_BYTE, state_len: *mut CK_ULONG);
    C_SetOperationState => SetOperationState(session: CK_SESSION_HANDLE, state: *mut CK_BYTE, state_len: CK_ULONG, encryption_key: CK_OBJECT_HANDLE, authentication_key: CK_OBJECT_HANDLE);
    C_Login => Login(session: CK_SESSION_HANDLE, user_type: CK_USER_TYPE, pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG) user = user_type;
    C_LoginUser => LoginUser(session: CK_SESSION_HANDLE, user_type: CK_USER_TYPE, pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG, username: *mut CK_UTF8CHAR, username_len: CK_ULONG) user = user_type;
    C_Logout => Logout(session: CK_SESSION_HANDLE);
    C_SessionCancel => SessionCancel(session: CK_SESSION_HANDLE, flags: CK_FLAGS);
    C_GetFunctionStatus => GetFunctionStatus(session: CK_SESSION_HANDLE);
    C_CancelFunction => CancelFunction(session: CK_SESSION_HANDLE);
}
