//! Object management: create, copy, destroy, attributes, search.

use super::forward;
use cryptoki_sys::*;

forward! {
    C_CreateObject => CreateObject(session: CK_SESSION_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG, object: *mut CK_OBJECT_HANDLE);
    C_CopyObject => CopyObject(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG, new_object: *mut CK_OBJECT_HANDLE);
    C_DestroyObject => DestroyObject(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE);
    C_GetObjectSize => GetObjectSize(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE, size: *mut CK_ULONG);
    C_GetAttributeValue => GetAttributeValue(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG);
    C_SetAttributeValue => SetAttributeValue(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG);
    C_FindObjectsInit => FindObjectsInit(session: CK_SESSION_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG);
    C_FindObjects => FindObjects(session: CK_SESSION_HANDLE, objects: *mut CK_OBJECT_HANDLE, max: CK_ULONG, count: *mut CK_ULONG);
    C_FindObjectsFinal => FindObjectsFinal(session: CK_SESSION_HANDLE);
}
