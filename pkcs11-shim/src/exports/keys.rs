//! Key generation, wrapping, derivation and random numbers.

use super::forward;
use cryptoki_sys::*;

forward! {
    C_GenerateKey => GenerateKey(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, template: *mut CK_ATTRIBUTE, count: CK_ULONG, key: *mut CK_OBJECT_HANDLE) mechanism = mechanism;
    C_GenerateKeyPair => GenerateKeyPair(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, public_template: *mut CK_ATTRIBUTE, public_count: CK_ULONG, private_template: *mut CK_ATTRIBUTE, private_count: CK_ULONG, public_key: *mut CK_OBJECT_HANDLE, private_key: *mut CK_OBJECT_HANDLE) mechanism = mechanism;
    C_WrapKey => WrapKey(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, wrapping_key: CK_OBJECT_HANDLE, key: CK_OBJECT_HANDLE, wrapped: *mut CK_BYTE, wrapped_len: *mut CK_ULONG) mechanism = mechanism;
    C_UnwrapKey => UnwrapKey(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, unwrapping_key: CK_OBJECT_HANDLE, wrapped: *mut CK_BYTE, wrapped_len: CK_ULONG, template: *mut CK_ATTRIBUTE, count: CK_ULONG, key: *mut CK_OBJECT_HANDLE) mechanism = mechanism;
    C_DeriveKey => DeriveKey(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, base_key: CK_OBJECT_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG, key: *mut CK_OBJECT_HANDLE) mechanism = mechanism;
    C_SeedRandom => SeedRandom(session: CK_SESSION_HANDLE, seed: *mut CK_BYTE, seed_len: CK_ULONG);
    C_GenerateRandom => GenerateRandom(session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: CK_ULONG);
}
