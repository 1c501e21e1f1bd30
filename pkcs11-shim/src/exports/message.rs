//! PKCS#11 3.0 message-based encryption and signing.

use super::forward;
use cryptoki_sys::*;
use std::ffi::c_void;

forward! {
    C_MessageEncryptInit => MessageEncryptInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) mechanism = mechanism;
    C_EncryptMessage => EncryptMessage(session: CK_SESSION_HANDLE, parameter: *mut c_void, parameter_len: CK_ULONG, associated: *mut CK_BYTE, associated_len: CK_ULONG, plain: *mut CK_BYTE, plain_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_EncryptMessageBegin => EncryptMessageBegin(session: CK_SESSION_HANDLE, parameter: *mut c_void, parameter_len: CK_ULONG, associated: *mut CK_BYTE, associated_len: CK_ULONG);
    C_EncryptMessageNext => EncryptMessageNext(session: CK_SESSION_HANDLE, parameter: *mut c_void, parameter_len: CK_ULONG, part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG, flags: CK_FLAGS);
    C_MessageEncryptFinal => MessageEncryptFinal(session: CK_SESSION_HANDLE);
    C_MessageDecryptInit => MessageDecryptInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) mechanism = mechanism;
    C_DecryptMessage => DecryptMessage(session: CK_SESSION_HANDLE, parameter: *mut c_void, parameter_len: CK_ULONG, associated: *mut CK_BYTE, associated_len: CK_ULONG, cipher: *mut CK_BYTE, cipher_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_DecryptMessageBegin => DecryptMessageBegin(session: CK_SESSION_HANDLE, parameter: *mut c_void, parameter_len: CK_ULONG, associated: *mut CK_BYTE, associated_len: CK_ULONG);
    C_DecryptMessageNext => DecryptMessageNext(session: CK_SESSION_HANDLE, parameter: *mut c_void, parameter_len: CK_ULONG, part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG, flags: CK_FLAGS);
    C_MessageDecryptFinal => MessageDecryptFinal(session: CK_SESSION_HANDLE);
    C_MessageSignInit => MessageSignInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) mechanism = mechanism;
    C_SignMessage => SignMessage(session: CK_SESSION_HANDLE, parameter: *mut c_void, parameter_len: CK_ULONG, data: *mut CK_BYTE, data_len: CK_ULONG, signature: *mut CK_BYTE, signature_len: *mut CK_ULONG);
    C_SignMessageBegin => SignMessageBegin(session: CK_SESSION_HANDLE, parameter: *mut c_void, parameter_len: CK_ULONG);
    C_SignMessageNext => SignMessageNext(session: CK_SESSION_HANDLE, parameter: *mut c_void, parameter_len: CK_ULONG, data: *mut CK_BYTE, data_len: CK_ULONG, signature: *mut CK_BYTE, signature_len: *mut CK_ULONG);
    C_MessageSignFinal => MessageSignFinal(session: CK_SESSION_HANDLE);
    C_MessageVerifyInit => MessageVerifyInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) mechanism = mechanism;
    C_VerifyMessage => VerifyMessage(session: CK_SESSION_HANDLE, parameter: *mut c_void, parameter_len: CK_ULONG, data: *mut CK_BYTE, data_len: CK_ULONG, signature: *mut CK_BYTE, signature_len: CK_ULONG);
    C_VerifyMessageBegin => VerifyMessageBegin(session: CK_SESSION_HANDLE, parameter: *mut c_void, parameter_len: CK_ULONG);
    C_VerifyMessageNext => VerifyMessageNext(session: CK_SESSION_HANDLE, parameter: *mut c_void, parameter_len: CK_ULONG, data: *mut CK_BYTE, data_len: CK_ULONG, signature: *mut CK_BYTE, signature_len: CK_ULONG);
    C_MessageVerifyFinal => MessageVerifyFinal(session: CK_SESSION_HANDLE);
}
