//! The operation catalog: which `OperationName` (and, where one is published, which
//! `Opcode`) each PKCS#11 function is recorded as.
//!
//! This is the one place the mapping lives. No public source maps PKCS#11 functions to
//! the Cloud HSM firmware's `CN_*` names, so the mapping itself is **our design
//! decision**; `Provenance` says only where the *name* comes from:
//! - `AzureGlossary`: the Azure Cloud HSM operation-logging glossary or its sample KQL;
//! - `AwsReference`: AWS CloudHSM's audit-log reference (same firmware family);
//! - `Ours`: no published name fits, so we name it after the PKCS#11 function (`P11_*`),
//!   a prefix the firmware does not use, so nobody mistakes it for a firmware name.
//!
//! `Opcode` holds the hex value AWS CloudHSM publishes for that name (e.g. `0xd` for
//! `CN_LOGIN`); that Azure Cloud HSM uses the same values is *inferred* from the shared
//! firmware family. Where no hex value is published the opcode is empty: we never invent one.

use crate::function::FunctionId;

/// Where an operation name comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Provenance {
    /// Azure Cloud HSM operation event logging glossary or sample KQL (seed 003).
    AzureGlossary,
    /// AWS CloudHSM audit log reference.
    AwsReference,
    /// Named by hsm-audit after the PKCS#11 function.
    Ours,
}

impl Provenance {
    /// Short label used in tables and docs.
    pub const fn label(self) -> &'static str {
        match self {
            Provenance::AzureGlossary => "Azure glossary",
            Provenance::AwsReference => "AWS reference",
            Provenance::Ours => "ours",
        }
    }
}

/// How one PKCS#11 function is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The function.
    pub function: FunctionId,
    /// `OperationName` column.
    pub name: &'static str,
    /// `Opcode` column: published hex, or empty.
    pub opcode: &'static str,
    /// Where `name` comes from.
    pub provenance: Provenance,
}

use FunctionId as F;
use Provenance::{AwsReference as Aws, AzureGlossary as Azure, Ours};

macro_rules! catalog {
    ($( $f:ident => $name:literal, $opcode:literal, $prov:ident; )*) => {
        /// The catalog, in `FunctionId` order (a test checks the order).
        pub const CATALOG: &[Operation] = &[
            $( Operation { function: F::$f, name: $name, opcode: $opcode, provenance: $prov }, )*
        ];
    };
}

catalog! {
    Initialize => "P11_INITIALIZE", "", Ours;
    Finalize => "CN_APP_FINALIZE", "", Aws;
    GetInfo => "P11_GET_INFO", "", Ours;
    GetFunctionList => "P11_GET_FUNCTION_LIST", "", Ours;
    GetSlotList => "CN_LIST_TOKENS", "", Azure;
    GetSlotInfo => "CN_PARTITION_INFO", "", Azure;
    GetTokenInfo => "CN_TOKEN_INFO", "", Azure;
    GetMechanismList => "P11_GET_MECHANISM_LIST", "", Ours;
    GetMechanismInfo => "P11_GET_MECHANISM_INFO", "", Ours;
    InitToken => "CN_INIT_TOKEN", "0x1", Aws;
    InitPIN => "CN_CREATE_USER", "0x3", Azure;
    SetPIN => "CN_CHANGE_PSWD", "0x9", Azure;
    OpenSession => "CN_AUTHORIZE_SESSION", "", Azure;
    CloseSession => "CN_CLOSE_SESSION", "", Aws;
    CloseAllSessions => "CN_CLOSE_SESSION", "", Aws;
    GetSessionInfo => "P11_GET_SESSION_INFO", "", Ours;
    GetOperationState => "P11_GET_OPERATION_STATE", "", Ours;
    SetOperationState => "P11_SET_OPERATION_STATE", "", Ours;
    Login => "CN_LOGIN", "0xd", Azure;
    Logout => "CN_LOGOUT", "0xe", Azure;
    CreateObject => "CN_CREATE_OBJECT", "", Aws;
    CopyObject => "CN_CREATE_OBJECT", "", Aws;
    DestroyObject => "CN_TOMBSTONE_OBJECT", "", Azure;
    GetObjectSize => "CN_GET_OBJECT_INFO", "", Azure;
    GetAttributeValue => "CN_GET_ATTRIBUTE_VALUE", "", Azure;
    SetAttributeValue => "CN_MODIFY_OBJECT", "", Azure;
    FindObjectsInit => "CN_FIND_OBJECTS_USING_COUNT", "", Azure;
    FindObjects => "CN_FIND_OBJECTS_USING_COUNT", "", Azure;
    FindObjectsFinal => "CN_FIND_OBJECTS_USING_COUNT", "", Azure;
    EncryptInit => "P11_ENCRYPT", "", Ours;
    Encrypt => "P11_ENCRYPT", "", Ours;
    EncryptUpdate => "P11_ENCRYPT", "", Ours;
    EncryptFinal => "P11_ENCRYPT", "", Ours;
    DecryptInit => "P11_DECRYPT", "", Ours;
    Decrypt => "P11_DECRYPT", "", Ours;
    DecryptUpdate => "P11_DECRYPT", "", Ours;
    DecryptFinal => "P11_DECRYPT", "", Ours;
    DigestInit => "P11_DIGEST", "", Ours;
    Digest => "P11_DIGEST", "", Ours;
    DigestUpdate => "P11_DIGEST", "", Ours;
    DigestKey => "P11_DIGEST", "", Ours;
    DigestFinal => "P11_DIGEST", "", Ours;
    SignInit => "HASH_SINGLE_CALL", "", Azure;
    Sign => "HASH_SINGLE_CALL", "", Azure;
    SignUpdate => "HASH_SINGLE_CALL", "", Azure;
    SignFinal => "HASH_SINGLE_CALL", "", Azure;
    SignRecoverInit => "HASH_SINGLE_CALL", "", Azure;
    SignRecover => "HASH_SINGLE_CALL", "", Azure;
    VerifyInit => "HASH_SINGLE_CALL", "", Azure;
    Verify => "HASH_SINGLE_CALL", "", Azure;
    VerifyUpdate => "HASH_SINGLE_CALL", "", Azure;
    VerifyFinal => "HASH_SINGLE_CALL", "", Azure;
    VerifyRecoverInit => "HASH_SINGLE_CALL", "", Azure;
    VerifyRecover => "HASH_SINGLE_CALL", "", Azure;
    DigestEncryptUpdate => "P11_DIGEST_ENCRYPT", "", Ours;
    DecryptDigestUpdate => "P11_DECRYPT_DIGEST", "", Ours;
    SignEncryptUpdate => "P11_SIGN_ENCRYPT", "", Ours;
    DecryptVerifyUpdate => "P11_DECRYPT_VERIFY", "", Ours;
    GenerateKey => "CN_GENERATE_KEY", "0x17", Azure;
    GenerateKeyPair => "CN_GENERATE_KEY_PAIR", "0x19", Azure;
    WrapKey => "CN_WRAP_KEY", "0x1a", Aws;
    UnwrapKey => "CN_UNWRAP_KEY", "0x1b", Aws;
    DeriveKey => "CN_DERIVE_KEY", "", Aws;
    SeedRandom => "P11_SEED_RANDOM", "", Ours;
    GenerateRandom => "CN_FIPS_RAND", "", Aws;
    GetFunctionStatus => "P11_GET_FUNCTION_STATUS", "", Ours;
    CancelFunction => "P11_CANCEL_FUNCTION", "", Ours;
    WaitForSlotEvent => "P11_WAIT_FOR_SLOT_EVENT", "", Ours;
    GetInterfaceList => "P11_GET_INTERFACE_LIST", "", Ours;
    GetInterface => "P11_GET_INTERFACE", "", Ours;
    LoginUser => "CN_LOGIN", "0xd", Azure;
    SessionCancel => "P11_SESSION_CANCEL", "", Ours;
    MessageEncryptInit => "P11_ENCRYPT_MESSAGE", "", Ours;
    EncryptMessage => "P11_ENCRYPT_MESSAGE", "", Ours;
    EncryptMessageBegin => "P11_ENCRYPT_MESSAGE", "", Ours;
    EncryptMessageNext => "P11_ENCRYPT_MESSAGE", "", Ours;
    MessageEncryptFinal => "P11_ENCRYPT_MESSAGE", "", Ours;
    MessageDecryptInit => "P11_DECRYPT_MESSAGE", "", Ours;
    DecryptMessage => "P11_DECRYPT_MESSAGE", "", Ours;
    DecryptMessageBegin => "P11_DECRYPT_MESSAGE", "", Ours;
    DecryptMessageNext => "P11_DECRYPT_MESSAGE", "", Ours;
    MessageDecryptFinal => "P11_DECRYPT_MESSAGE", "", Ours;
    MessageSignInit => "HASH_SINGLE_CALL", "", Azure;
    SignMessage => "HASH_SINGLE_CALL", "", Azure;
    SignMessageBegin => "HASH_SINGLE_CALL", "", Azure;
    SignMessageNext => "HASH_SINGLE_CALL", "", Azure;
    MessageSignFinal => "HASH_SINGLE_CALL", "", Azure;
    MessageVerifyInit => "HASH_SINGLE_CALL", "", Azure;
    VerifyMessage => "HASH_SINGLE_CALL", "", Azure;
    VerifyMessageBegin => "HASH_SINGLE_CALL", "", Azure;
    VerifyMessageNext => "HASH_SINGLE_CALL", "", Azure;
    MessageVerifyFinal => "HASH_SINGLE_CALL", "", Azure;
}

/// How `function` is recorded.
pub fn operation(function: FunctionId) -> &'static Operation {
    &CATALOG[function as usize]
}

/// The catalog as a Markdown table (what `hsm-audit catalog` prints and the README shows).
pub fn markdown() -> String {
    let mut out = String::from(
        "| PKCS#11 function | OperationName | Opcode | Name from |\n|---|---|---|---|\n",
    );
    for op in CATALOG {
        let opcode = if op.opcode.is_empty() {
            "—"
        } else {
            op.opcode
        };
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            op.function.name(),
            op.name,
            opcode,
            op.provenance.label()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_covers_every_function_in_order() {
        assert_eq!(CATALOG.len(), FunctionId::ALL.len());
        for (op, f) in CATALOG.iter().zip(FunctionId::ALL) {
            assert_eq!(op.function, *f);
            assert_eq!(operation(*f).function, *f);
        }
    }

    #[test]
    fn seed_queries_find_what_they_look_for() {
        let expect = [
            (F::Login, "CN_LOGIN"),
            (F::LoginUser, "CN_LOGIN"),
            (F::Logout, "CN_LOGOUT"),
            (F::OpenSession, "CN_AUTHORIZE_SESSION"),
            (F::InitPIN, "CN_CREATE_USER"),
            (F::SetPIN, "CN_CHANGE_PSWD"),
            (F::GenerateKey, "CN_GENERATE_KEY"),
            (F::GenerateKeyPair, "CN_GENERATE_KEY_PAIR"),
            (F::DestroyObject, "CN_TOMBSTONE_OBJECT"),
            (F::SetAttributeValue, "CN_MODIFY_OBJECT"),
            (F::GetAttributeValue, "CN_GET_ATTRIBUTE_VALUE"),
            (F::FindObjectsInit, "CN_FIND_OBJECTS_USING_COUNT"),
            (F::FindObjects, "CN_FIND_OBJECTS_USING_COUNT"),
            (F::FindObjectsFinal, "CN_FIND_OBJECTS_USING_COUNT"),
            (F::Sign, "HASH_SINGLE_CALL"),
            (F::VerifyFinal, "HASH_SINGLE_CALL"),
            (F::GetSlotList, "CN_LIST_TOKENS"),
            (F::GetTokenInfo, "CN_TOKEN_INFO"),
            (F::WrapKey, "CN_WRAP_KEY"),
            (F::UnwrapKey, "CN_UNWRAP_KEY"),
        ];
        for (f, name) in expect {
            assert_eq!(operation(f).name, name, "{f}");
        }
    }

    /// Opcodes are only the values AWS publishes (reference.md section 2), never invented.
    #[test]
    fn opcodes_are_only_published_values() {
        let published = [
            ("CN_INIT_TOKEN", "0x1"),
            ("CN_CREATE_USER", "0x3"),
            ("CN_CHANGE_PSWD", "0x9"),
            ("CN_LOGIN", "0xd"),
            ("CN_LOGOUT", "0xe"),
            ("CN_DESTROY_OBJECT", "0x11"),
            ("CN_SHARE_OBJECT", "0x12"),
            ("CN_GENERATE_KEY", "0x17"),
            ("CN_GENERATE_KEY_PAIR", "0x19"),
            ("CN_WRAP_KEY", "0x1a"),
            ("CN_UNWRAP_KEY", "0x1b"),
        ];
        for op in CATALOG {
            let want = published
                .iter()
                .find(|(n, _)| *n == op.name)
                .map_or("", |(_, h)| h);
            assert_eq!(op.opcode, want, "{}", op.function);
            if op.provenance == Provenance::Ours {
                assert!(op.name.starts_with("P11_"), "{}", op.name);
            } else {
                assert!(!op.name.starts_with("P11_"), "{}", op.name);
            }
        }
    }
}
