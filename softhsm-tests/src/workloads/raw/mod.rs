//! The raw workload: every function family SoftHSM implements, with its edge cases (NULL
//! arguments, wrong PINs, invalid handles, short buffers, calls before `C_Initialize`,
//! re-initialisation), called through the module's function list, one transcript line per
//! call. It runs against a fresh token made by [`crate::Token::canary`].

mod crypto;
mod keys;
mod lifecycle;
mod objects;
mod sessions;

use crate::raw::Module;
use cryptoki_sys::*;
use std::path::Path;

/// A slot id no SoftHSM token has (SoftHSM derives slot ids from 31-bit serial hashes).
const BAD_SLOT: CK_SLOT_ID = 0xdead_beef_0000;
/// A session handle no session has.
const BAD_SESSION: CK_SESSION_HANDLE = 0x7fff_0001;
/// An object handle no object has.
const BAD_OBJECT: CK_OBJECT_HANDLE = 0x7fff_0002;

/// Calls `$f` from the function list, prints its transcript line and returns its `CK_RV`.
/// An optional `; tag` (e.g. [`crate::raw::mech_tag`]) is appended to the line.
macro_rules! c {
    ($w:expr, $f:ident ( $($a:expr),* $(,)? ) $(; $tag:expr)?) => {{
        let func = $w.f.$f.expect(concat!(stringify!($f), " is NULL in the function list"));
        // SAFETY: each workload passes arguments valid for the call, or deliberately
        // invalid ones (NULL, bad handles) that PKCS#11 requires the module to reject.
        let rv = unsafe { func($($a),*) };
        $crate::raw::call_line(stringify!($f), rv, None $(.or(Some($tag)))?);
        rv
    }};
}
pub(crate) use c;

/// State shared by the parts of the workload.
pub(crate) struct W {
    pub m: Module,
    pub f: CK_FUNCTION_LIST,
    /// The canary token's slot.
    pub slot: CK_SLOT_ID,
    /// The slot holding SoftHSM's uninitialised token.
    pub free_slot: CK_SLOT_ID,
    /// The read-write session everything runs in.
    pub rw: CK_SESSION_HANDLE,
}

/// Prints a handle the module returned (the secrets test checks rows never carry one).
pub(crate) fn handle(kind: &str, h: CK_ULONG) {
    crate::raw::fact(format!("handle {kind} {h}"));
}

/// Runs the whole raw workload against the module at `path`.
pub fn run(path: &Path) {
    let m = Module::open(path);
    // SAFETY: CK_FUNCTION_LIST holds a version and `Option`s of function pointers; all-zero
    // is valid, and it is replaced by the module's table before use.
    let f: CK_FUNCTION_LIST = unsafe { std::mem::zeroed() };
    let mut w = W {
        m,
        f,
        slot: 0,
        free_slot: 0,
        rw: 0,
    };
    lifecycle::before_initialize(&mut w);
    lifecycle::initialize_and_slots(&mut w);
    sessions::sessions_and_pins(&mut w);
    let objs = objects::objects(&mut w);
    let k = keys::generate(&mut w);
    crypto::encrypt_decrypt(&mut w, &objs, &k);
    crypto::digest(&mut w, &objs, &k);
    crypto::sign_verify(&mut w, &k);
    keys::wrap_unwrap(&mut w, &objs, &k);
    keys::derive(&mut w, &k);
    keys::random_and_legacy(&mut w);
    lifecycle::init_token_and_finalize(&mut w);
}
