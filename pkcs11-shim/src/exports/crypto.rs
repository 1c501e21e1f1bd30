//! Encryption, decryption, digest, sign, verify and the dual-function updates.

use super::forward;
use cryptoki_sys::*;

forward! {
    C_EncryptInit => EncryptInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) mechanism = mechanism;
    C_Encrypt => Encrypt(session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_EncryptUpdate => EncryptUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_EncryptFinal => EncryptFinal(session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_DecryptInit => DecryptInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) mechanism = mechanism;
    C_Decrypt => Decrypt(session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_DecryptUpdate => DecryptUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_DecryptFinal => DecryptFinal(session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_DigestInit => DigestInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM) mechanism = mechanism;
    C_Digest => Digest(session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_DigestUpdate => DigestUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG);
    C_DigestKey => DigestKey(session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE);
    C_DigestFinal => DigestFinal(session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_SignInit => SignInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) mechanism = mechanism;
    C_Sign => Sign(session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG, signature: *mut CK_BYTE, signature_len: *mut CK_ULONG);
    C_SignUpdate => SignUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG);
    C_SignFinal => SignFinal(session: CK_SESSION_HANDLE, signature: *mut CK_BYTE, signature_len: *mut CK_ULONG);
    C_SignRecoverInit => SignRecoverInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) mechanism = mechanism;
    C_SignRecover => SignRecover(session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG, signature: *mut CK_BYTE, signature_len: *mut CK_ULONG);
    C_VerifyInit => VerifyInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) mechanism = mechanism;
    C_Verify => Verify(session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG, signature: *mut CK_BYTE, signature_len: CK_ULONG);
    C_VerifyUpdate => VerifyUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG);
    C_VerifyFinal => VerifyFinal(session: CK_SESSION_HANDLE, signature: *mut CK_BYTE, signature_len: CK_ULONG);
    C_VerifyRecoverInit => VerifyRecoverInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) mechanism = mechanism;
    C_VerifyRecover => VerifyRecover(session: CK_SESSION_HANDLE, signature: *mut CK_BYTE, signature_len: CK_ULONG, data: *mut CK_BYTE, data_len: *mut CK_ULONG);
    C_DigestEncryptUpdate => DigestEncryptUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_DecryptDigestUpdate => DecryptDigestUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_SignEncryptUpdate => SignEncryptUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_DecryptVerifyUpdate => DecryptVerifyUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
}
