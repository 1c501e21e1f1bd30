//! Canary values: every secret-ish value the workloads hand to the module (PINs, labels,
//! IDs, data, key material). None may ever appear in anything the shim writes.

/// The token's label (given to `softhsm2-util`, read back through `C_GetTokenInfo`).
pub const TOKEN_LABEL: &str = "cAnAry-ToKeN-LaBeL-a1";
/// The user PIN the token is created with.
pub const USER_PIN: &str = "cAnAry-UsEr-PiN-5c1e";
/// The security officer PIN the token is created with.
pub const SO_PIN: &str = "cAnAry-So-PiN-e4f2";
/// A wrong PIN, tried once.
pub const WRONG_PIN: &str = "cAnAry-WrOnG-PiN-9d";
/// The user PIN the SO sets with `C_InitPIN`.
pub const INIT_PIN: &str = "cAnAry-InIt-PiN-77a0";
/// The user PIN the user sets with `C_SetPIN`.
pub const SET_PIN: &str = "cAnAry-SeT-PiN-0b9d";
/// SO PIN and label of the token `C_InitToken` creates in the free slot.
pub const INIT_TOKEN_SO_PIN: &str = "cAnAry-InitTok-So-31";
/// Label of the token `C_InitToken` creates in the free slot.
pub const INIT_TOKEN_LABEL: &str = "cAnAry-SeCoNd-ToKeN-b2";
/// `CKA_LABEL` of data objects.
pub const OBJECT_LABEL: &str = "cAnAry-ObJ-LaBeL-c3";
/// `CKA_LABEL` of keys.
pub const KEY_LABEL: &str = "cAnAry-KeY-LaBeL-d4";
/// The label `C_SetAttributeValue` writes.
pub const NEW_LABEL: &str = "cAnAry-ReLaBeL-e5";
/// `CKA_APPLICATION` of data objects.
pub const APPLICATION: &str = "cAnAry-ApP-f0";
/// `CKA_ID` of keys and objects.
pub const ID: &[u8] = b"cAnAry-Id-f6";
/// `CKA_VALUE` of the data object.
pub const OBJECT_VALUE: &[u8] = b"cAnAry-DaTa-ObJeCt-VaLuE-77";
/// Data signed, digested and encrypted.
pub const DATA: &[u8] = b"cAnAry-DaTa-To-SiGn-And-EnCrYpT-0123456789";
/// `CKA_VALUE` of the imported AES-256 key.
pub const KEY_VALUE: &[u8; 32] = b"cAnAry-AeS-KeY-VaLuE-0123456789!";
/// Seed for `C_SeedRandom`.
pub const SEED: &[u8] = b"cAnAry-SeEd-8e";

/// Every canary, as bytes.
pub fn all() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("TOKEN_LABEL", TOKEN_LABEL.as_bytes()),
        ("USER_PIN", USER_PIN.as_bytes()),
        ("SO_PIN", SO_PIN.as_bytes()),
        ("WRONG_PIN", WRONG_PIN.as_bytes()),
        ("INIT_PIN", INIT_PIN.as_bytes()),
        ("SET_PIN", SET_PIN.as_bytes()),
        ("INIT_TOKEN_SO_PIN", INIT_TOKEN_SO_PIN.as_bytes()),
        ("INIT_TOKEN_LABEL", INIT_TOKEN_LABEL.as_bytes()),
        ("OBJECT_LABEL", OBJECT_LABEL.as_bytes()),
        ("KEY_LABEL", KEY_LABEL.as_bytes()),
        ("NEW_LABEL", NEW_LABEL.as_bytes()),
        ("APPLICATION", APPLICATION.as_bytes()),
        ("ID", ID),
        ("OBJECT_VALUE", OBJECT_VALUE),
        ("DATA", DATA),
        ("KEY_VALUE", KEY_VALUE),
        ("SEED", SEED),
    ]
}
