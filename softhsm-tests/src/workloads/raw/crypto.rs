//! Encryption (AES-CBC-PAD, AES-GCM, RSA), digests (single, multi-part, key, operation
//! state), signatures (RSA PKCS#1, PSS, ECDSA, bad signatures) and the functions SoftHSM
//! leaves unimplemented (sign/verify-recover, dual-function updates).

use super::keys::Keys;
use super::objects::Objects;
use super::{c, BAD_OBJECT, BAD_SESSION, W};
use crate::canary;
use crate::raw::{fact, mech, mech_tag, mech_with, show_len, Template};
use cryptoki_sys::*;
use std::ptr::null_mut;

const IV: [u8; 16] = *b"fixed-iv-16bytes";

fn data() -> (*mut u8, CK_ULONG) {
    (
        canary::get().data.as_ptr() as *mut u8,
        canary::get().data.len() as CK_ULONG,
    )
}

/// The key's `CKA_CHECK_VALUE`, hex.
pub(crate) fn check_value(w: &mut W, key: CK_OBJECT_HANDLE) -> String {
    let rw = w.rw;
    let mut t = Template::new().buffer(CKA_CHECK_VALUE, Some(3));
    c!(w, C_GetAttributeValue(rw, key, t.ptr(), t.count()));
    hex::encode(t.value_of(0))
}

/// One-shot encryption then decryption under `m`; ciphertext printed when `deterministic`.
fn round_trip(
    w: &mut W,
    m: &mut CK_MECHANISM,
    enc: CK_OBJECT_HANDLE,
    dec: CK_OBJECT_HANDLE,
    deterministic: bool,
) -> Vec<u8> {
    let rw = w.rw;
    let tag = mech_tag(m.mechanism);
    let (d, dl) = data();
    c!(w, C_EncryptInit(rw, m, enc); tag.clone());
    let mut len: CK_ULONG = 0;
    c!(w, C_Encrypt(rw, d, dl, null_mut(), &mut len));
    fact(format!("ciphertext length {len}"));
    let mut out = vec![0u8; len as usize];
    let mut short: CK_ULONG = 1;
    c!(w, C_Encrypt(rw, d, dl, out.as_mut_ptr(), &mut short));
    c!(w, C_Encrypt(rw, d, dl, out.as_mut_ptr(), &mut len));
    out.truncate(len as usize);
    if deterministic {
        fact(format!("ciphertext {}", hex::encode(&out)));
    }
    c!(w, C_DecryptInit(rw, m, dec); tag);
    let mut plain = vec![0u8; out.len() + 16];
    let mut plain_len = plain.len() as CK_ULONG;
    c!(
        w,
        C_Decrypt(
            rw,
            out.as_mut_ptr(),
            out.len() as CK_ULONG,
            plain.as_mut_ptr(),
            &mut plain_len
        )
    );
    fact(format!(
        "decrypts to the data: {}",
        &plain[..plain_len as usize] == canary::get().data
    ));
    out
}

pub(crate) fn encrypt_decrypt(w: &mut W, objs: &Objects, k: &Keys) {
    let rw = w.rw;
    fact(format!(
        "imported key check value {}",
        check_value(w, objs.aes_imported)
    ));
    let mut iv = IV;
    let mut cbc = mech_with(CKM_AES_CBC_PAD, &mut iv);
    cbc.ulParameterLen = 16;
    round_trip(w, &mut cbc, objs.aes_imported, objs.aes_imported, true);

    // Multi-part with the generated key.
    let (d, _) = data();
    c!(w, C_EncryptInit(rw, &mut cbc, k.aes); mech_tag(CKM_AES_CBC_PAD));
    let mut cipher = vec![0u8; 128];
    let mut at = 0usize;
    for part in canary::get().data.chunks(20) {
        let mut len = (cipher.len() - at) as CK_ULONG;
        c!(
            w,
            C_EncryptUpdate(
                rw,
                part.as_ptr() as *mut _,
                part.len() as CK_ULONG,
                cipher[at..].as_mut_ptr(),
                &mut len
            )
        );
        fact(format!("part out {len}"));
        at += len as usize;
    }
    let mut len = (cipher.len() - at) as CK_ULONG;
    c!(w, C_EncryptFinal(rw, cipher[at..].as_mut_ptr(), &mut len));
    fact(format!("final out {len}"));
    at += len as usize;
    cipher.truncate(at);
    c!(w, C_EncryptFinal(rw, cipher.as_mut_ptr(), &mut len));
    c!(w, C_DecryptInit(rw, &mut cbc, k.aes); mech_tag(CKM_AES_CBC_PAD));
    let mut plain = [0u8; 128];
    let mut at = 0usize;
    for part in cipher.chunks(16) {
        let mut len = (plain.len() - at) as CK_ULONG;
        c!(
            w,
            C_DecryptUpdate(
                rw,
                part.as_ptr() as *mut _,
                part.len() as CK_ULONG,
                plain[at..].as_mut_ptr(),
                &mut len
            )
        );
        at += len as usize;
    }
    let mut len = (plain.len() - at) as CK_ULONG;
    c!(w, C_DecryptFinal(rw, plain[at..].as_mut_ptr(), &mut len));
    at += len as usize;
    fact(format!(
        "multi-part decrypts to the data: {}",
        &plain[..at] == canary::get().data
    ));
    let _ = d;

    // GCM, then a tampered ciphertext.
    let mut nonce = [7u8; 12];
    let mut aad = *b"associated";
    let mut gcm = CK_GCM_PARAMS {
        pIv: nonce.as_mut_ptr(),
        ulIvLen: 12,
        ulIvBits: 96,
        pAAD: aad.as_mut_ptr(),
        ulAADLen: aad.len() as CK_ULONG,
        ulTagBits: 128,
    };
    let mut gm = mech_with(CKM_AES_GCM, &mut gcm);
    let mut out = round_trip(w, &mut gm, objs.aes_imported, objs.aes_imported, true);
    out[0] ^= 1;
    c!(w, C_DecryptInit(rw, &mut gm, objs.aes_imported); mech_tag(CKM_AES_GCM));
    let mut plain = vec![0u8; out.len()];
    let mut plain_len = plain.len() as CK_ULONG;
    c!(
        w,
        C_Decrypt(
            rw,
            out.as_mut_ptr(),
            out.len() as CK_ULONG,
            plain.as_mut_ptr(),
            &mut plain_len
        )
    );

    // RSA PKCS#1 v1.5 encryption (random padding).
    let mut rsa = mech(CKM_RSA_PKCS);
    round_trip(w, &mut rsa, k.rsa_public, k.rsa_private, false);

    // Errors: no operation, bad key, NULL and malformed mechanisms, wrong key type.
    let (d, dl) = data();
    let mut len: CK_ULONG = 64;
    let mut buf = [0u8; 64];
    c!(w, C_Encrypt(rw, d, dl, buf.as_mut_ptr(), &mut len));
    c!(w, C_Decrypt(rw, d, dl, buf.as_mut_ptr(), &mut len));
    c!(w, C_EncryptInit(rw, &mut cbc, BAD_OBJECT); mech_tag(CKM_AES_CBC_PAD));
    c!(w, C_EncryptInit(rw, null_mut(), objs.aes_imported));
    let mut short_iv = mech_with(CKM_AES_CBC_PAD, &mut iv);
    short_iv.ulParameterLen = 8;
    c!(w, C_EncryptInit(rw, &mut short_iv, objs.aes_imported); mech_tag(CKM_AES_CBC_PAD));
    c!(w, C_EncryptInit(rw, &mut cbc, k.rsa_public); mech_tag(CKM_AES_CBC_PAD));
    c!(w, C_EncryptInit(BAD_SESSION, &mut cbc, objs.aes_imported); mech_tag(CKM_AES_CBC_PAD));
    c!(w, C_EncryptInit(rw, &mut cbc, objs.aes_imported); mech_tag(CKM_AES_CBC_PAD));
    c!(w, C_EncryptInit(rw, &mut cbc, objs.aes_imported); mech_tag(CKM_AES_CBC_PAD));
    let mut len: CK_ULONG = 64;
    c!(w, C_Encrypt(rw, d, dl, buf.as_mut_ptr(), &mut len));
}

pub(crate) fn digest(w: &mut W, objs: &Objects, k: &Keys) {
    let rw = w.rw;
    let (d, dl) = data();
    let mut sha = mech(CKM_SHA256);
    c!(w, C_DigestInit(rw, &mut sha); mech_tag(CKM_SHA256));
    let mut len: CK_ULONG = 0;
    c!(w, C_Digest(rw, d, dl, null_mut(), &mut len));
    fact(format!("digest length {len}"));
    let mut one = [0u8; 32];
    c!(w, C_Digest(rw, d, dl, one.as_mut_ptr(), &mut len));
    fact(format!("sha256 {}", hex::encode(one)));

    c!(w, C_DigestInit(rw, &mut sha); mech_tag(CKM_SHA256));
    for part in canary::get().data.chunks(10) {
        c!(
            w,
            C_DigestUpdate(rw, part.as_ptr() as *mut _, part.len() as CK_ULONG)
        );
    }
    let mut multi = [0u8; 32];
    let mut len: CK_ULONG = 32;
    c!(w, C_DigestFinal(rw, multi.as_mut_ptr(), &mut len));
    fact(format!("multi-part equals single: {}", multi == one));

    for key in [k.aes, objs.aes_imported] {
        c!(w, C_DigestInit(rw, &mut sha); mech_tag(CKM_SHA256));
        c!(w, C_DigestKey(rw, key));
        let mut out = [0u8; 32];
        let mut len: CK_ULONG = 32;
        c!(w, C_DigestFinal(rw, out.as_mut_ptr(), &mut len));
    }

    let mut len: CK_ULONG = 32;
    c!(w, C_Digest(rw, d, dl, one.as_mut_ptr(), &mut len));
    c!(w, C_DigestInit(rw, &mut sha); mech_tag(CKM_SHA256));
    c!(w, C_DigestInit(rw, &mut sha); mech_tag(CKM_SHA256));
    c!(w, C_DigestUpdate(rw, d, dl));
    let mut state_len: CK_ULONG = 0;
    let rv = c!(w, C_GetOperationState(rw, null_mut(), &mut state_len));
    let mut state = vec![0u8; if rv == CKR_OK { state_len as usize } else { 16 }];
    fact(format!("state length {}", show_len(state_len)));
    c!(
        w,
        C_GetOperationState(rw, state.as_mut_ptr(), &mut state_len)
    );
    c!(
        w,
        C_SetOperationState(rw, state.as_mut_ptr(), state.len() as CK_ULONG, 0, 0)
    );
    let mut len: CK_ULONG = 32;
    c!(w, C_DigestFinal(rw, one.as_mut_ptr(), &mut len));
    let mut bad = mech(CKM_AES_CBC);
    c!(w, C_DigestInit(rw, &mut bad); mech_tag(CKM_AES_CBC));

    // SoftHSM implements none of the dual-function updates.
    let mut out = [0u8; 64];
    let mut len: CK_ULONG = 64;
    c!(
        w,
        C_DigestEncryptUpdate(rw, d, dl, out.as_mut_ptr(), &mut len)
    );
    c!(
        w,
        C_DecryptDigestUpdate(rw, d, dl, out.as_mut_ptr(), &mut len)
    );
    c!(
        w,
        C_SignEncryptUpdate(rw, d, dl, out.as_mut_ptr(), &mut len)
    );
    c!(
        w,
        C_DecryptVerifyUpdate(rw, d, dl, out.as_mut_ptr(), &mut len)
    );
}

/// Signs `data` with `m` and `private`, verifies with `public`, then verifies a corrupted
/// signature and one of the wrong length.
fn sign_and_verify(
    w: &mut W,
    m: &mut CK_MECHANISM,
    private: CK_OBJECT_HANDLE,
    public: CK_OBJECT_HANDLE,
    data: &[u8],
) {
    let rw = w.rw;
    let tag = mech_tag(m.mechanism);
    let (d, dl) = (data.as_ptr() as *mut u8, data.len() as CK_ULONG);
    c!(w, C_SignInit(rw, m, private); tag.clone());
    let mut len: CK_ULONG = 0;
    c!(w, C_Sign(rw, d, dl, null_mut(), &mut len));
    fact(format!("signature length {len}"));
    let mut sig = vec![0u8; len as usize];
    c!(w, C_Sign(rw, d, dl, sig.as_mut_ptr(), &mut len));
    c!(w, C_VerifyInit(rw, m, public); tag.clone());
    c!(w, C_Verify(rw, d, dl, sig.as_mut_ptr(), len));
    if sig.len() < 10 {
        return;
    }
    sig[4] ^= 0x40;
    c!(w, C_VerifyInit(rw, m, public); tag.clone());
    c!(w, C_Verify(rw, d, dl, sig.as_mut_ptr(), len));
    c!(w, C_VerifyInit(rw, m, public); tag);
    c!(w, C_Verify(rw, d, dl, sig.as_mut_ptr(), 10));
}

pub(crate) fn sign_verify(w: &mut W, k: &Keys) {
    let rw = w.rw;
    let mut pkcs = mech(CKM_SHA256_RSA_PKCS);
    sign_and_verify(
        w,
        &mut pkcs,
        k.rsa_private,
        k.rsa_public,
        canary::get().data,
    );
    let mut pss_params = CK_RSA_PKCS_PSS_PARAMS {
        hashAlg: CKM_SHA256,
        mgf: CKG_MGF1_SHA256,
        sLen: 32,
    };
    let mut pss = mech_with(CKM_SHA256_RSA_PKCS_PSS, &mut pss_params);
    sign_and_verify(w, &mut pss, k.rsa_private, k.rsa_public, canary::get().data);
    let mut ecdsa = mech(CKM_ECDSA);
    let digest = [0x42u8; 32];
    sign_and_verify(w, &mut ecdsa, k.ec[0].1, k.ec[0].0, &digest);
    sign_and_verify(
        w,
        &mut ecdsa,
        k.ec[1].1,
        k.ec[1].0,
        &canary::get().data[..32],
    );
    // SoftHSM 2.6 has no hash-and-ECDSA mechanisms.
    let mut ecdsa_sha = mech(CKM_ECDSA_SHA256);
    c!(w, C_SignInit(rw, &mut ecdsa_sha, k.ec[1].1); mech_tag(CKM_ECDSA_SHA256));

    // Multi-part RSA.
    c!(w, C_SignInit(rw, &mut pkcs, k.rsa_private); mech_tag(CKM_SHA256_RSA_PKCS));
    for part in canary::get().data.chunks(16) {
        c!(
            w,
            C_SignUpdate(rw, part.as_ptr() as *mut _, part.len() as CK_ULONG)
        );
    }
    let mut sig = [0u8; 256];
    let mut len: CK_ULONG = 256;
    c!(w, C_SignFinal(rw, sig.as_mut_ptr(), &mut len));
    c!(w, C_VerifyInit(rw, &mut pkcs, k.rsa_public); mech_tag(CKM_SHA256_RSA_PKCS));
    for part in canary::get().data.chunks(16) {
        c!(
            w,
            C_VerifyUpdate(rw, part.as_ptr() as *mut _, part.len() as CK_ULONG)
        );
    }
    c!(w, C_VerifyFinal(rw, sig.as_mut_ptr(), len));
    c!(w, C_VerifyInit(rw, &mut pkcs, k.rsa_public); mech_tag(CKM_SHA256_RSA_PKCS));
    c!(w, C_VerifyUpdate(rw, sig.as_mut_ptr(), 16));
    c!(w, C_VerifyFinal(rw, sig.as_mut_ptr(), len));
    c!(w, C_SignFinal(rw, sig.as_mut_ptr(), &mut len));

    // Errors: NULL mechanism, bad session, bad key.
    c!(w, C_SignInit(rw, null_mut(), k.rsa_private));
    c!(w, C_SignInit(BAD_SESSION, &mut pkcs, k.rsa_private); mech_tag(CKM_SHA256_RSA_PKCS));
    c!(w, C_VerifyInit(rw, &mut pkcs, BAD_OBJECT); mech_tag(CKM_SHA256_RSA_PKCS));

    // Recover variants: SoftHSM does not implement them.
    let mut raw = mech(CKM_RSA_PKCS);
    let (d, dl) = data();
    c!(w, C_SignRecoverInit(rw, &mut raw, k.rsa_private); mech_tag(CKM_RSA_PKCS));
    let mut len: CK_ULONG = 256;
    c!(w, C_SignRecover(rw, d, dl, sig.as_mut_ptr(), &mut len));
    c!(w, C_VerifyRecoverInit(rw, &mut raw, k.rsa_public); mech_tag(CKM_RSA_PKCS));
    let mut out = [0u8; 256];
    let mut out_len: CK_ULONG = 256;
    c!(
        w,
        C_VerifyRecover(rw, sig.as_mut_ptr(), 256, out.as_mut_ptr(), &mut out_len)
    );

    // SoftHSM accepts ECDSA with an AES key at init and fails at the signature, which
    // also ends the operation.
    c!(w, C_SignInit(rw, &mut ecdsa, k.aes); mech_tag(CKM_ECDSA));
    let mut len: CK_ULONG = 256;
    c!(
        w,
        C_Sign(
            rw,
            digest.as_ptr() as *mut _,
            32,
            sig.as_mut_ptr(),
            &mut len
        )
    );
}

/// The canary `data` encrypted with AES-CBC-PAD under `key` and a fixed IV.
pub(crate) fn cbc_encrypt(w: &mut W, key: CK_OBJECT_HANDLE) -> Vec<u8> {
    let rw = w.rw;
    let mut iv = IV;
    let mut cbc = mech_with(CKM_AES_CBC_PAD, &mut iv);
    cbc.ulParameterLen = 16;
    let (d, dl) = data();
    c!(w, C_EncryptInit(rw, &mut cbc, key); mech_tag(CKM_AES_CBC_PAD));
    let mut out = vec![0u8; 64];
    let mut len = out.len() as CK_ULONG;
    c!(w, C_Encrypt(rw, d, dl, out.as_mut_ptr(), &mut len));
    out.truncate(len as usize);
    out
}
