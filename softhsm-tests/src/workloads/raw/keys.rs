//! Key generation (AES, RSA, EC), wrap/unwrap, ECDH derivation, random numbers and the
//! legacy parallel-function calls.

use super::crypto::cbc_encrypt;
use super::objects::Objects;
use super::{c, handle, BAD_OBJECT, BAD_SESSION, W};
use crate::canary;
use crate::raw::{fact, mech, mech_tag, mech_with, Template};
use cryptoki_sys::*;
use std::ptr::null_mut;

/// DER of the P-256 curve OID.
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Generated keys.
pub(crate) struct Keys {
    pub aes: CK_OBJECT_HANDLE,
    pub rsa_public: CK_OBJECT_HANDLE,
    pub rsa_private: CK_OBJECT_HANDLE,
    pub ec: [(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE); 2],
}

pub(crate) fn generate(w: &mut W) -> Keys {
    let rw = w.rw;
    let mut aes_template = Template::new()
        .ulong(CKA_CLASS, CKO_SECRET_KEY)
        .ulong(CKA_KEY_TYPE, CKK_AES)
        .ulong(CKA_VALUE_LEN, 32)
        .bool(CKA_TOKEN, false)
        .bool(CKA_ENCRYPT, true)
        .bool(CKA_DECRYPT, true)
        .bool(CKA_WRAP, true)
        .bool(CKA_UNWRAP, true)
        .bytes(CKA_LABEL, canary::get().key_label.as_bytes())
        .bytes(CKA_ID, canary::get().id);
    let mut m = mech(CKM_AES_KEY_GEN);
    let mut aes: CK_OBJECT_HANDLE = 0;
    c!(w, C_GenerateKey(rw, &mut m, aes_template.ptr(), aes_template.count(), &mut aes); mech_tag(m.mechanism));
    handle("object", aes);
    let mut none: CK_OBJECT_HANDLE = 0;
    c!(
        w,
        C_GenerateKey(
            rw,
            null_mut(),
            aes_template.ptr(),
            aes_template.count(),
            &mut none
        )
    );
    let mut bad = mech(0x7fff_fff0);
    c!(w, C_GenerateKey(rw, &mut bad, aes_template.ptr(), aes_template.count(), &mut none); mech_tag(bad.mechanism));
    // A key-pair mechanism is not a key mechanism.
    let mut wrong = mech(CKM_RSA_PKCS_KEY_PAIR_GEN);
    c!(w, C_GenerateKey(rw, &mut wrong, aes_template.ptr(), aes_template.count(), &mut none); mech_tag(wrong.mechanism));

    let mut public = Template::new()
        .ulong(CKA_MODULUS_BITS, 2048)
        .bytes(CKA_PUBLIC_EXPONENT, &[1, 0, 1])
        .bool(CKA_TOKEN, false)
        .bool(CKA_VERIFY, true)
        .bool(CKA_ENCRYPT, true)
        .bool(CKA_WRAP, true)
        .bytes(CKA_LABEL, canary::get().key_label.as_bytes())
        .bytes(CKA_ID, canary::get().id);
    let mut private = Template::new()
        .bool(CKA_TOKEN, false)
        .bool(CKA_PRIVATE, true)
        .bool(CKA_SENSITIVE, true)
        .bool(CKA_SIGN, true)
        .bool(CKA_DECRYPT, true)
        .bool(CKA_UNWRAP, true)
        .bytes(CKA_LABEL, canary::get().key_label.as_bytes())
        .bytes(CKA_ID, canary::get().id);
    let mut m = mech(CKM_RSA_PKCS_KEY_PAIR_GEN);
    let (mut rsa_public, mut rsa_private) = (0, 0);
    c!(w, C_GenerateKeyPair(rw, &mut m, public.ptr(), public.count(), private.ptr(), private.count(), &mut rsa_public, &mut rsa_private); mech_tag(m.mechanism));
    handle("object", rsa_public);
    handle("object", rsa_private);
    let mut modulus = Template::new()
        .buffer(CKA_MODULUS, None)
        .buffer(CKA_PRIVATE_EXPONENT, None);
    c!(w, C_GetAttributeValue(rw, rsa_public, modulus.ptr(), 1));
    fact(format!("modulus length {}", modulus.len_of(0)));
    c!(
        w,
        C_GetAttributeValue(rw, rsa_private, modulus.ptr().wrapping_add(1), 1)
    );
    fact(format!(
        "private exponent length {}",
        crate::raw::show_len(modulus.len_of(1))
    ));

    let mut ec = [(0, 0); 2];
    for pair in &mut ec {
        let mut public = Template::new()
            .bytes(CKA_EC_PARAMS, P256)
            .bool(CKA_TOKEN, false)
            .bool(CKA_VERIFY, true)
            .bytes(CKA_LABEL, canary::get().key_label.as_bytes());
        let mut private = Template::new()
            .bool(CKA_TOKEN, false)
            .bool(CKA_PRIVATE, true)
            .bool(CKA_SENSITIVE, true)
            .bool(CKA_SIGN, true)
            .bool(CKA_DERIVE, true)
            .bytes(CKA_ID, canary::get().id);
        let mut m = mech(CKM_EC_KEY_PAIR_GEN);
        c!(w, C_GenerateKeyPair(rw, &mut m, public.ptr(), public.count(), private.ptr(), private.count(), &mut pair.0, &mut pair.1); mech_tag(m.mechanism));
        handle("object", pair.0);
        handle("object", pair.1);
    }
    // An unknown curve.
    let mut public = Template::new().bytes(CKA_EC_PARAMS, &[0x06, 0x03, 0x2a, 0x03, 0x04]);
    let mut private = Template::new().bool(CKA_SIGN, true);
    let mut m = mech(CKM_EC_KEY_PAIR_GEN);
    let (mut a, mut b) = (0, 0);
    c!(w, C_GenerateKeyPair(rw, &mut m, public.ptr(), public.count(), private.ptr(), private.count(), &mut a, &mut b); mech_tag(m.mechanism));
    c!(
        w,
        C_GenerateKeyPair(
            rw,
            null_mut(),
            public.ptr(),
            public.count(),
            private.ptr(),
            private.count(),
            &mut a,
            &mut b
        )
    );
    Keys {
        aes,
        rsa_public,
        rsa_private,
        ec,
    }
}

fn unwrap_template() -> Template {
    Template::new()
        .ulong(CKA_CLASS, CKO_SECRET_KEY)
        .ulong(CKA_KEY_TYPE, CKK_AES)
        .bool(CKA_TOKEN, false)
        .bool(CKA_ENCRYPT, true)
        .bool(CKA_DECRYPT, true)
}

/// Wraps the imported key with AES key wrap and with RSA; the unwrapped keys must carry
/// the imported key's check value.
pub(crate) fn wrap_unwrap(w: &mut W, objs: &Objects, k: &Keys) {
    let rw = w.rw;
    for (m, wrapping, unwrapping) in [
        (CKM_AES_KEY_WRAP, k.aes, k.aes),
        (CKM_RSA_PKCS, k.rsa_public, k.rsa_private),
    ] {
        let mut mm = mech(m);
        let mut len: CK_ULONG = 0;
        c!(w, C_WrapKey(rw, &mut mm, wrapping, objs.aes_imported, null_mut(), &mut len); mech_tag(m));
        fact(format!("wrapped length {len}"));
        let mut wrapped = vec![0u8; len as usize];
        let mut short: CK_ULONG = 1;
        c!(w, C_WrapKey(rw, &mut mm, wrapping, objs.aes_imported, wrapped.as_mut_ptr(), &mut short); mech_tag(m));
        c!(w, C_WrapKey(rw, &mut mm, wrapping, objs.aes_imported, wrapped.as_mut_ptr(), &mut len); mech_tag(m));
        let mut template = unwrap_template();
        let mut unwrapped: CK_OBJECT_HANDLE = 0;
        c!(w, C_UnwrapKey(rw, &mut mm, unwrapping, wrapped.as_mut_ptr(), len, template.ptr(), template.count(), &mut unwrapped); mech_tag(m));
        handle("object", unwrapped);
        let theirs = cbc_encrypt(w, unwrapped);
        let ours = cbc_encrypt(w, objs.aes_imported);
        fact(format!(
            "unwrapped key encrypts as the imported key: {}",
            theirs == ours
        ));
        wrapped.iter_mut().for_each(|b| *b ^= 0x5a);
        let mut none: CK_OBJECT_HANDLE = 0;
        c!(w, C_UnwrapKey(rw, &mut mm, unwrapping, wrapped.as_mut_ptr(), len, template.ptr(), template.count(), &mut none); mech_tag(m));
    }
    let mut mm = mech(CKM_AES_KEY_WRAP);
    let mut len: CK_ULONG = 0;
    c!(w, C_WrapKey(rw, &mut mm, k.aes, BAD_OBJECT, null_mut(), &mut len); mech_tag(mm.mechanism));
    // The RSA private key is sensitive and not extractable by AES key wrap of its length.
    c!(w, C_WrapKey(rw, &mut mm, k.aes, k.rsa_private, null_mut(), &mut len); mech_tag(mm.mechanism));
    c!(
        w,
        C_WrapKey(
            rw,
            null_mut(),
            k.aes,
            objs.aes_imported,
            null_mut(),
            &mut len
        )
    );
}

/// ECDH both ways; both derived secrets must give the same HMAC.
pub(crate) fn derive(w: &mut W, k: &Keys) {
    let rw = w.rw;
    let mut points = Vec::new();
    for (public, _) in k.ec {
        let mut t = Template::new().buffer(CKA_EC_POINT, Some(128));
        c!(w, C_GetAttributeValue(rw, public, t.ptr(), t.count()));
        fact(format!("point length {}", t.len_of(0)));
        // CKA_EC_POINT is a DER OCTET STRING (04 41 04 x y); ECDH takes the raw point.
        points.push(t.value_of(0)[2..].to_vec());
    }
    let mut macs = Vec::new();
    for (i, (_, private)) in k.ec.iter().enumerate() {
        let other = &mut points[1 - i];
        let mut params = CK_ECDH1_DERIVE_PARAMS {
            kdf: CKD_NULL,
            ulSharedDataLen: 0,
            pSharedData: null_mut(),
            ulPublicDataLen: other.len() as CK_ULONG,
            pPublicData: other.as_mut_ptr(),
        };
        let mut m = mech_with(CKM_ECDH1_DERIVE, &mut params);
        let mut template = Template::new()
            .ulong(CKA_CLASS, CKO_SECRET_KEY)
            .ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET)
            .ulong(CKA_VALUE_LEN, 32)
            .bool(CKA_TOKEN, false)
            .bool(CKA_SENSITIVE, true)
            .bool(CKA_SIGN, true)
            .bytes(CKA_LABEL, canary::get().key_label.as_bytes());
        let mut secret: CK_OBJECT_HANDLE = 0;
        c!(w, C_DeriveKey(rw, &mut m, *private, template.ptr(), template.count(), &mut secret); mech_tag(m.mechanism));
        handle("object", secret);
        let mut hm = mech(CKM_SHA256_HMAC);
        c!(w, C_SignInit(rw, &mut hm, secret); mech_tag(hm.mechanism));
        let mut mac = vec![0u8; 32];
        let mut len = 32 as CK_ULONG;
        let data = canary::get().data;
        c!(
            w,
            C_Sign(
                rw,
                data.as_ptr() as *mut _,
                data.len() as CK_ULONG,
                mac.as_mut_ptr(),
                &mut len
            )
        );
        fact(format!("hmac length {len}"));
        macs.push(mac);
    }
    fact(format!(
        "both sides derived the same secret: {}",
        macs[0] == macs[1]
    ));

    let mut garbage = [0u8; 65];
    let mut params = CK_ECDH1_DERIVE_PARAMS {
        kdf: CKD_NULL,
        ulSharedDataLen: 0,
        pSharedData: null_mut(),
        ulPublicDataLen: garbage.len() as CK_ULONG,
        pPublicData: garbage.as_mut_ptr(),
    };
    let mut m = mech_with(CKM_ECDH1_DERIVE, &mut params);
    let mut template = Template::new()
        .ulong(CKA_CLASS, CKO_SECRET_KEY)
        .ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET)
        .ulong(CKA_VALUE_LEN, 32);
    let mut none: CK_OBJECT_HANDLE = 0;
    c!(w, C_DeriveKey(rw, &mut m, k.ec[0].1, template.ptr(), template.count(), &mut none); mech_tag(m.mechanism));
    c!(w, C_DeriveKey(rw, &mut m, k.rsa_private, template.ptr(), template.count(), &mut none); mech_tag(m.mechanism));
}

/// Random numbers and the functions SoftHSM does not implement.
pub(crate) fn random_and_legacy(w: &mut W) {
    let rw = w.rw;
    let seed = canary::get().seed;
    c!(
        w,
        C_SeedRandom(rw, seed.as_ptr() as *mut _, seed.len() as CK_ULONG)
    );
    c!(w, C_SeedRandom(rw, null_mut(), 4));
    let mut out = [0u8; 32];
    c!(w, C_GenerateRandom(rw, out.as_mut_ptr(), 32));
    fact(format!(
        "random bytes not all zero: {}",
        out.iter().any(|b| *b != 0)
    ));
    c!(w, C_GenerateRandom(rw, null_mut(), 32));
    c!(w, C_GenerateRandom(BAD_SESSION, out.as_mut_ptr(), 32));
    c!(w, C_GetFunctionStatus(rw));
    c!(w, C_CancelFunction(rw));
    let mut slot: CK_SLOT_ID = 0;
    c!(w, C_WaitForSlotEvent(CKF_DONT_BLOCK, &mut slot, null_mut()));
}
