//! Every PKCS#11 function the shim forwards, by a small integer id.
//!
//! The order is the order of `CK_FUNCTION_LIST_3_0`: the 68 functions of PKCS#11 2.40
//! followed by the 24 that 3.0 added. This is the one list of function names in the
//! project; the catalog, the shim's exports and the docs all refer to it.

macro_rules! functions {
    ($( $variant:ident = $name:literal, $since:ident; )*) => {
        /// A PKCS#11 function, in `CK_FUNCTION_LIST_3_0` order.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum FunctionId { $( #[doc = concat!("`", $name, "`")] $variant, )* }

        impl FunctionId {
            /// Every function, in `CK_FUNCTION_LIST_3_0` order.
            pub const ALL: &'static [FunctionId] = &[ $( FunctionId::$variant, )* ];

            /// The C name, e.g. `C_Sign`.
            pub const fn name(self) -> &'static str {
                match self { $( FunctionId::$variant => $name, )* }
            }

            /// The PKCS#11 version that introduced the function.
            pub const fn since(self) -> Since {
                match self { $( FunctionId::$variant => Since::$since, )* }
            }
        }
    };
}

/// The PKCS#11 version that introduced a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// PKCS#11 2.40 (or earlier).
    V2_40,
    /// PKCS#11 3.0.
    V3_0,
}

impl FunctionId {
    /// Looks a function up by its C name.
    pub fn from_name(name: &str) -> Option<FunctionId> {
        FunctionId::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// Converts back from the `repr(u8)` value carried in events.
    pub fn from_u8(v: u8) -> Option<FunctionId> {
        FunctionId::ALL.get(usize::from(v)).copied()
    }
}

impl std::fmt::Display for FunctionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

functions! {
    Initialize = "C_Initialize", V2_40;
    Finalize = "C_Finalize", V2_40;
    GetInfo = "C_GetInfo", V2_40;
    GetFunctionList = "C_GetFunctionList", V2_40;
    GetSlotList = "C_GetSlotList", V2_40;
    GetSlotInfo = "C_GetSlotInfo", V2_40;
    GetTokenInfo = "C_GetTokenInfo", V2_40;
    GetMechanismList = "C_GetMechanismList", V2_40;
    GetMechanismInfo = "C_GetMechanismInfo", V2_40;
    InitToken = "C_InitToken", V2_40;
    InitPIN = "C_InitPIN", V2_40;
    SetPIN = "C_SetPIN", V2_40;
    OpenSession = "C_OpenSession", V2_40;
    CloseSession = "C_CloseSession", V2_40;
    CloseAllSessions = "C_CloseAllSessions", V2_40;
    GetSessionInfo = "C_GetSessionInfo", V2_40;
    GetOperationState = "C_GetOperationState", V2_40;
    SetOperationState = "C_SetOperationState", V2_40;
    Login = "C_Login", V2_40;
    Logout = "C_Logout", V2_40;
    CreateObject = "C_CreateObject", V2_40;
    CopyObject = "C_CopyObject", V2_40;
    DestroyObject = "C_DestroyObject", V2_40;
    GetObjectSize = "C_GetObjectSize", V2_40;
    GetAttributeValue = "C_GetAttributeValue", V2_40;
    SetAttributeValue = "C_SetAttributeValue", V2_40;
    FindObjectsInit = "C_FindObjectsInit", V2_40;
    FindObjects = "C_FindObjects", V2_40;
    FindObjectsFinal = "C_FindObjectsFinal", V2_40;
    EncryptInit = "C_EncryptInit", V2_40;
    Encrypt = "C_Encrypt", V2_40;
    EncryptUpdate = "C_EncryptUpdate", V2_40;
    EncryptFinal = "C_EncryptFinal", V2_40;
    DecryptInit = "C_DecryptInit", V2_40;
    Decrypt = "C_Decrypt", V2_40;
    DecryptUpdate = "C_DecryptUpdate", V2_40;
    DecryptFinal = "C_DecryptFinal", V2_40;
    DigestInit = "C_DigestInit", V2_40;
    Digest = "C_Digest", V2_40;
    DigestUpdate = "C_DigestUpdate", V2_40;
    DigestKey = "C_DigestKey", V2_40;
    DigestFinal = "C_DigestFinal", V2_40;
    SignInit = "C_SignInit", V2_40;
    Sign = "C_Sign", V2_40;
    SignUpdate = "C_SignUpdate", V2_40;
    SignFinal = "C_SignFinal", V2_40;
    SignRecoverInit = "C_SignRecoverInit", V2_40;
    SignRecover = "C_SignRecover", V2_40;
    VerifyInit = "C_VerifyInit", V2_40;
    Verify = "C_Verify", V2_40;
    VerifyUpdate = "C_VerifyUpdate", V2_40;
    VerifyFinal = "C_VerifyFinal", V2_40;
    VerifyRecoverInit = "C_VerifyRecoverInit", V2_40;
    VerifyRecover = "C_VerifyRecover", V2_40;
    DigestEncryptUpdate = "C_DigestEncryptUpdate", V2_40;
    DecryptDigestUpdate = "C_DecryptDigestUpdate", V2_40;
    SignEncryptUpdate = "C_SignEncryptUpdate", V2_40;
    DecryptVerifyUpdate = "C_DecryptVerifyUpdate", V2_40;
    GenerateKey = "C_GenerateKey", V2_40;
    GenerateKeyPair = "C_GenerateKeyPair", V2_40;
    WrapKey = "C_WrapKey", V2_40;
    UnwrapKey = "C_UnwrapKey", V2_40;
    DeriveKey = "C_DeriveKey", V2_40;
    SeedRandom = "C_SeedRandom", V2_40;
    GenerateRandom = "C_GenerateRandom", V2_40;
    GetFunctionStatus = "C_GetFunctionStatus", V2_40;
    CancelFunction = "C_CancelFunction", V2_40;
    WaitForSlotEvent = "C_WaitForSlotEvent", V2_40;
    GetInterfaceList = "C_GetInterfaceList", V3_0;
    GetInterface = "C_GetInterface", V3_0;
    LoginUser = "C_LoginUser", V3_0;
    SessionCancel = "C_SessionCancel", V3_0;
    MessageEncryptInit = "C_MessageEncryptInit", V3_0;
    EncryptMessage = "C_EncryptMessage", V3_0;
    EncryptMessageBegin = "C_EncryptMessageBegin", V3_0;
    EncryptMessageNext = "C_EncryptMessageNext", V3_0;
    MessageEncryptFinal = "C_MessageEncryptFinal", V3_0;
    MessageDecryptInit = "C_MessageDecryptInit", V3_0;
    DecryptMessage = "C_DecryptMessage", V3_0;
    DecryptMessageBegin = "C_DecryptMessageBegin", V3_0;
    DecryptMessageNext = "C_DecryptMessageNext", V3_0;
    MessageDecryptFinal = "C_MessageDecryptFinal", V3_0;
    MessageSignInit = "C_MessageSignInit", V3_0;
    SignMessage = "C_SignMessage", V3_0;
    SignMessageBegin = "C_SignMessageBegin", V3_0;
    SignMessageNext = "C_SignMessageNext", V3_0;
    MessageSignFinal = "C_MessageSignFinal", V3_0;
    MessageVerifyInit = "C_MessageVerifyInit", V3_0;
    VerifyMessage = "C_VerifyMessage", V3_0;
    VerifyMessageBegin = "C_VerifyMessageBegin", V3_0;
    VerifyMessageNext = "C_VerifyMessageNext", V3_0;
    MessageVerifyFinal = "C_MessageVerifyFinal", V3_0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_count_matches_the_3_0_list() {
        assert_eq!(FunctionId::ALL.len(), 92);
        for (i, f) in FunctionId::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i);
            assert_eq!(FunctionId::from_u8(i as u8), Some(*f));
            assert_eq!(FunctionId::from_name(f.name()), Some(*f));
        }
        let v2 = FunctionId::ALL
            .iter()
            .filter(|f| f.since() == Since::V2_40)
            .count();
        assert_eq!(v2, 68);
    }
}
