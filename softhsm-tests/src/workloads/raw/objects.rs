//! Objects: create (data object, imported AES key), copy, destroy, sizes, attributes (short
//! buffers, sensitive values, invalid types), set attributes and searches.

use super::{c, handle, BAD_OBJECT, W};
use crate::canary;
use crate::raw::{fact, show_len, Template};
use cryptoki_sys::*;
use std::ptr::null_mut;

/// Objects the rest of the workload uses.
pub(crate) struct Objects {
    /// The AES-256 key imported with the canary key value ([`canary::Canaries::key_value`]).
    pub aes_imported: CK_OBJECT_HANDLE,
}

pub(crate) fn objects(w: &mut W) -> Objects {
    let rw = w.rw;
    let mut data = Template::new()
        .ulong(CKA_CLASS, CKO_DATA)
        .bool(CKA_TOKEN, true)
        .bytes(CKA_LABEL, canary::get().object_label.as_bytes())
        .bytes(CKA_APPLICATION, canary::get().application.as_bytes())
        .bytes(CKA_VALUE, canary::get().object_value);
    let mut obj: CK_OBJECT_HANDLE = 0;
    c!(w, C_CreateObject(rw, data.ptr(), data.count(), &mut obj));
    handle("object", obj);
    c!(w, C_CreateObject(rw, null_mut(), 1, &mut obj));
    let mut incomplete = Template::new().bytes(CKA_LABEL, canary::get().object_label.as_bytes());
    let mut none: CK_OBJECT_HANDLE = 0;
    c!(
        w,
        C_CreateObject(rw, incomplete.ptr(), incomplete.count(), &mut none)
    );

    let mut key = Template::new()
        .ulong(CKA_CLASS, CKO_SECRET_KEY)
        .ulong(CKA_KEY_TYPE, CKK_AES)
        .bool(CKA_TOKEN, true)
        .bool(CKA_PRIVATE, true)
        .bool(CKA_SENSITIVE, true)
        .bool(CKA_EXTRACTABLE, true)
        .bool(CKA_ENCRYPT, true)
        .bool(CKA_DECRYPT, true)
        .bytes(CKA_LABEL, canary::get().key_label.as_bytes())
        .bytes(CKA_ID, canary::get().id)
        .bytes(CKA_VALUE, canary::get().key_value);
    let mut aes_imported: CK_OBJECT_HANDLE = 0;
    c!(
        w,
        C_CreateObject(rw, key.ptr(), key.count(), &mut aes_imported)
    );
    handle("object", aes_imported);

    let mut size: CK_ULONG = 0;
    if c!(w, C_GetObjectSize(rw, obj, &mut size)) == CKR_OK {
        fact(format!("size {}", show_len(size)));
    }
    c!(w, C_GetObjectSize(rw, BAD_OBJECT, &mut size));
    c!(w, C_GetObjectSize(rw, obj, null_mut()));
    attributes(w, obj, aes_imported);

    let mut relabel = Template::new().bytes(CKA_LABEL, canary::get().new_label.as_bytes());
    c!(
        w,
        C_SetAttributeValue(rw, obj, relabel.ptr(), relabel.count())
    );
    let mut reclass = Template::new().ulong(CKA_CLASS, CKO_DATA);
    c!(
        w,
        C_SetAttributeValue(rw, aes_imported, reclass.ptr(), reclass.count())
    );
    c!(
        w,
        C_SetAttributeValue(rw, BAD_OBJECT, relabel.ptr(), relabel.count())
    );

    let mut copy_template = Template::new()
        .bytes(CKA_LABEL, canary::get().object_label.as_bytes())
        .bool(CKA_TOKEN, false);
    let mut copy: CK_OBJECT_HANDLE = 0;
    c!(
        w,
        C_CopyObject(
            rw,
            obj,
            copy_template.ptr(),
            copy_template.count(),
            &mut copy
        )
    );
    handle("object", copy);
    c!(
        w,
        C_CopyObject(
            rw,
            BAD_OBJECT,
            copy_template.ptr(),
            copy_template.count(),
            &mut none
        )
    );

    find(w, Template::new().ulong(CKA_CLASS, CKO_DATA), 16);
    find(
        w,
        Template::new().bytes(CKA_LABEL, canary::get().new_label.as_bytes()),
        1,
    );
    find(w, Template::new().bytes(CKA_ID, canary::get().id), 16);
    let mut found = [0 as CK_OBJECT_HANDLE; 4];
    let mut count: CK_ULONG = 0;
    c!(w, C_FindObjects(rw, found.as_mut_ptr(), 4, &mut count));
    c!(w, C_FindObjectsFinal(rw));
    let mut all = Template::new();
    c!(w, C_FindObjectsInit(rw, all.ptr(), 0));
    c!(w, C_FindObjectsInit(rw, all.ptr(), 0));
    c!(w, C_FindObjects(rw, found.as_mut_ptr(), 4, null_mut()));
    c!(w, C_FindObjectsFinal(rw));

    c!(w, C_DestroyObject(rw, copy));
    c!(w, C_DestroyObject(rw, copy));
    c!(w, C_DestroyObject(rw, BAD_OBJECT));
    Objects { aes_imported }
}

/// A search, fetching at most `batch` handles per `C_FindObjects` until none is left.
fn find(w: &mut W, mut template: Template, batch: usize) {
    let rw = w.rw;
    c!(w, C_FindObjectsInit(rw, template.ptr(), template.count()));
    let mut found = vec![0 as CK_OBJECT_HANDLE; batch];
    let mut total = 0;
    loop {
        let mut count: CK_ULONG = 0;
        let rv = c!(
            w,
            C_FindObjects(rw, found.as_mut_ptr(), batch as CK_ULONG, &mut count)
        );
        fact(format!("found {count}"));
        total += count;
        if rv != CKR_OK || count == 0 {
            break;
        }
    }
    fact(format!("found in all {total}"));
    c!(w, C_FindObjectsFinal(rw));
}

fn attributes(w: &mut W, obj: CK_OBJECT_HANDLE, key: CK_OBJECT_HANDLE) {
    let rw = w.rw;
    let kinds = [CKA_LABEL, CKA_APPLICATION, CKA_VALUE, CKA_CLASS, CKA_TOKEN];
    let mut lens = Template::new();
    for k in kinds {
        lens = lens.buffer(k, None);
    }
    c!(w, C_GetAttributeValue(rw, obj, lens.ptr(), lens.count()));
    let sizes: Vec<String> = (0..kinds.len()).map(|i| show_len(lens.len_of(i))).collect();
    fact(format!("lengths {}", sizes.join(" ")));

    let mut short = Template::new().buffer(CKA_LABEL, Some(1));
    c!(w, C_GetAttributeValue(rw, obj, short.ptr(), short.count()));
    fact(format!(
        "length after too-small buffer {}",
        show_len(short.len_of(0))
    ));

    let mut full = Template::new();
    for (i, k) in kinds.iter().enumerate() {
        full = full.buffer(*k, Some(lens.len_of(i) as usize));
    }
    c!(w, C_GetAttributeValue(rw, obj, full.ptr(), full.count()));
    fact(format!(
        "label, application and value as created: {} {} {}",
        full.value_of(0) == canary::get().object_label.as_bytes(),
        full.value_of(1) == canary::get().application.as_bytes(),
        full.value_of(2) == canary::get().object_value
    ));
    fact(format!(
        "class {} token {}",
        hex::encode(full.value_of(3)),
        hex::encode(full.value_of(4))
    ));

    // The key's value is sensitive: its length comes back unavailable, the others fill in.
    let mut secret = Template::new()
        .buffer(CKA_VALUE, Some(32))
        .buffer(CKA_LABEL, Some(64))
        .buffer(CKA_ID, Some(64))
        .buffer(CKA_VALUE_LEN, Some(8))
        .buffer(CKA_CHECK_VALUE, Some(3));
    c!(
        w,
        C_GetAttributeValue(rw, key, secret.ptr(), secret.count())
    );
    fact(format!(
        "value length {}, label {}, id {}, value_len {}, check value {}",
        show_len(secret.len_of(0)),
        secret.value_of(1) == canary::get().key_label.as_bytes(),
        secret.value_of(2) == canary::get().id,
        hex::encode(secret.value_of(3)),
        hex::encode(secret.value_of(4))
    ));
    let mut invalid = Template::new().buffer(0x7fff_0001, Some(8));
    c!(
        w,
        C_GetAttributeValue(rw, obj, invalid.ptr(), invalid.count())
    );
    fact(format!(
        "length of invalid type {}",
        show_len(invalid.len_of(0))
    ));
    c!(
        w,
        C_GetAttributeValue(rw, BAD_OBJECT, short.ptr(), short.count())
    );
    c!(w, C_GetAttributeValue(rw, obj, null_mut(), 1));
}
