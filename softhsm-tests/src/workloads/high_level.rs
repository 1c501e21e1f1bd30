//! The `cryptoki` workload: what an ordinary Rust application does, one transcript line per
//! high-level operation (`cryptoki` may make several PKCS#11 calls for one). Through the
//! shim `cryptoki` negotiates via `C_GetInterface`; directly via `C_GetFunctionList`.

use crate::canary;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use std::path::Path;

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Prints `what ok` or `what error <error>` and passes the value on.
fn step<T>(what: &str, result: cryptoki::error::Result<T>) -> Option<T> {
    match result {
        Ok(v) => {
            println!("{what} ok");
            Some(v)
        }
        Err(e) => {
            println!("{what} error {e}");
            None
        }
    }
}

fn pin(p: &str) -> AuthPin {
    AuthPin::from(p)
}

fn value(attrs: &[Attribute], i: usize) -> Vec<u8> {
    match attrs.get(i) {
        Some(
            Attribute::Label(v)
            | Attribute::Value(v)
            | Attribute::Application(v)
            | Attribute::Id(v),
        ) => v.clone(),
        _ => Vec::new(),
    }
}

/// Runs the workload against the module at `path` (a fresh [`crate::Token::canary`] token).
pub fn run(path: &Path) {
    let pkcs11 = step("load", Pkcs11::new(path)).expect("module loads");
    step(
        "initialize",
        pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)),
    );
    step(
        "initialize again",
        pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)),
    );
    if let Some(info) = step("library info", pkcs11.get_library_info()) {
        println!(
            "  cryptoki {} by {:?}: {:?} {}",
            info.cryptoki_version(),
            info.manufacturer_id(),
            info.library_description(),
            info.library_version()
        );
    }
    let slots = step("slots with token", pkcs11.get_slots_with_token()).unwrap_or_default();
    println!("  {} slots", slots.len());
    let mut slot = None;
    for s in &slots {
        if let Some(t) = step("token info", pkcs11.get_token_info(*s)) {
            println!(
                "  {:?} {:?} {:?} initialized {} login {} user pin {} pin {}..{}",
                t.label(),
                t.manufacturer_id(),
                t.model(),
                t.token_initialized(),
                t.login_required(),
                t.user_pin_initialized(),
                t.min_pin_length(),
                t.max_pin_length()
            );
            if t.label() == canary::get().token_label {
                slot = Some(*s);
            }
        }
    }
    let slot = slot.expect("canary token present");
    if let Some(list) = step("mechanism list", pkcs11.get_mechanism_list(slot)) {
        let names: Vec<String> = list.iter().map(|m| m.to_string()).collect();
        println!("  {}", names.join(" "));
    }
    if let Some(mi) = step(
        "mechanism info",
        pkcs11.get_mechanism_info(slot, MechanismType::RSA_PKCS_KEY_PAIR_GEN),
    ) {
        println!("  key sizes {}..{}", mi.min_key_size(), mi.max_key_size());
    }

    let session = step("open session", pkcs11.open_rw_session(slot)).expect("session");
    login_and_pins(&session);
    let imported = objects(&session);
    crypto(&session, imported);
    step("logout", session.logout());
    step("close session", session.close());
    step("finalize", pkcs11.finalize());
}

fn login_and_pins(session: &Session) {
    step(
        "login wrong pin",
        session.login(UserType::User, Some(&pin(canary::get().wrong_pin))),
    );
    step(
        "login so",
        session.login(UserType::So, Some(&pin(canary::get().so_pin))),
    );
    step("init pin", session.init_pin(&pin(canary::get().init_pin)));
    step("logout", session.logout());
    step(
        "login user",
        session.login(UserType::User, Some(&pin(canary::get().init_pin))),
    );
    step(
        "set pin",
        session.set_pin(&pin(canary::get().init_pin), &pin(canary::get().set_pin)),
    );
    step("logout", session.logout());
    step(
        "login user",
        session.login(UserType::User, Some(&pin(canary::get().set_pin))),
    );
    if let Some(info) = step("session info", session.get_session_info()) {
        println!("  {:?} rw {}", info.session_state(), info.read_write());
    }
}

/// Data object and imported AES key: create, read, modify, copy, find, destroy.
fn objects(session: &Session) -> ObjectHandle {
    let data = step(
        "create data object",
        session.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Label(canary::get().object_label.into()),
            Attribute::Application(canary::get().application.into()),
            Attribute::Value(canary::get().object_value.into()),
        ]),
    )
    .expect("data object");
    if let Some(attrs) = step(
        "read data object",
        session.get_attributes(
            data,
            &[
                AttributeType::Label,
                AttributeType::Application,
                AttributeType::Value,
            ],
        ),
    ) {
        println!(
            "  as created: {} {} {}",
            value(&attrs, 0) == canary::get().object_label.as_bytes(),
            value(&attrs, 1) == canary::get().application.as_bytes(),
            value(&attrs, 2) == canary::get().object_value
        );
    }
    step(
        "relabel",
        session.update_attributes(data, &[Attribute::Label(canary::get().new_label.into())]),
    );
    let copy = step(
        "copy",
        session.copy_object(data, &[Attribute::Token(false)]),
    );
    if let Some(found) = step(
        "find data objects",
        session.find_objects(&[Attribute::Class(ObjectClass::DATA)]),
    ) {
        println!("  found {}", found.len());
    }
    if let Some(copy) = copy {
        step("destroy copy", session.destroy_object(copy));
        step("destroy copy again", session.destroy_object(copy));
    }
    let key = step(
        "import aes key",
        session.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(true),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Label(canary::get().key_label.into()),
            Attribute::Id(canary::get().id.into()),
            Attribute::Value(canary::get().key_value.to_vec()),
        ]),
    )
    .expect("imported key");
    if let Some(attrs) = step(
        "read key",
        session.get_attributes(key, &[AttributeType::Value, AttributeType::Id]),
    ) {
        // The sensitive value is left out; the ID comes back.
        println!(
            "  {} attributes, id as created {}",
            attrs.len(),
            attrs
                .iter()
                .any(|a| matches!(a, Attribute::Id(v) if v == canary::get().id))
        );
    }
    if let Some(found) = step(
        "find by id",
        session.find_objects(&[Attribute::Id(canary::get().id.into())]),
    ) {
        println!("  found {}", found.len());
    }
    key
}

fn crypto(session: &Session, imported: ObjectHandle) {
    let aes = step(
        "generate aes key",
        session.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(32.into()),
                Attribute::Token(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
                Attribute::Label(canary::get().key_label.into()),
            ],
        ),
    )
    .expect("aes key");
    let (rsa_pub, rsa_priv) = step(
        "generate rsa key pair",
        session.generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::ModulusBits(2048.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
                Attribute::Token(false),
                Attribute::Verify(true),
            ],
            &[
                Attribute::Token(false),
                Attribute::Sign(true),
                Attribute::Sensitive(true),
            ],
        ),
    )
    .expect("rsa key pair");
    let mut ec = Vec::new();
    for _ in 0..2 {
        ec.push(
            step(
                "generate ec key pair",
                session.generate_key_pair(
                    &Mechanism::EccKeyPairGen,
                    &[
                        Attribute::EcParams(P256.into()),
                        Attribute::Token(false),
                        Attribute::Verify(true),
                    ],
                    &[
                        Attribute::Token(false),
                        Attribute::Sign(true),
                        Attribute::Derive(true),
                        Attribute::Sensitive(true),
                    ],
                ),
            )
            .expect("ec key pair"),
        );
    }

    let cbc = Mechanism::AesCbcPad(*b"fixed-iv-16bytes");
    if let Some(c) = step(
        "encrypt aes-cbc-pad",
        session.encrypt(&cbc, imported, canary::get().data),
    ) {
        println!("  ciphertext {}", hex::encode(&c));
        if let Some(p) = step("decrypt aes-cbc-pad", session.decrypt(&cbc, imported, &c)) {
            println!("  decrypts to the data: {}", p == canary::get().data);
        }
    }
    let mut iv = [7u8; 12];
    let gcm =
        Mechanism::AesGcm(GcmParams::new(&mut iv, b"associated", 128.into()).expect("gcm params"));
    if let Some(mut c) = step(
        "encrypt aes-gcm",
        session.encrypt(&gcm, imported, canary::get().data),
    ) {
        println!("  ciphertext {}", hex::encode(&c));
        if let Some(p) = step("decrypt aes-gcm", session.decrypt(&gcm, imported, &c)) {
            println!("  decrypts to the data: {}", p == canary::get().data);
        }
        c[0] ^= 1;
        step(
            "decrypt tampered aes-gcm",
            session.decrypt(&gcm, imported, &c),
        );
    }
    if let Some(d) = step(
        "digest sha256",
        session.digest(&Mechanism::Sha256, canary::get().data),
    ) {
        println!("  {}", hex::encode(d));
    }
    step("digest init", session.digest_init(&Mechanism::Sha256));
    step("digest update", session.digest_update(canary::get().data));
    if let Some(d) = step("digest final", session.digest_final()) {
        println!("  {}", hex::encode(d));
    }

    for (what, mech, private, public, data) in [
        (
            "rsa",
            Mechanism::Sha256RsaPkcs,
            rsa_priv,
            rsa_pub,
            canary::get().data,
        ),
        (
            "ecdsa",
            Mechanism::Ecdsa,
            ec[0].1,
            ec[0].0,
            &canary::get().data[..32],
        ),
    ] {
        if let Some(mut sig) = step(&format!("sign {what}"), session.sign(&mech, private, data)) {
            println!("  signature length {}", sig.len());
            step(
                &format!("verify {what}"),
                session.verify(&mech, public, data, &sig),
            );
            sig[3] ^= 0x10;
            step(
                &format!("verify bad {what}"),
                session.verify(&mech, public, data, &sig),
            );
        }
    }

    if let Some(wrapped) = step(
        "wrap",
        session.wrap_key(&Mechanism::AesKeyWrap, aes, imported),
    ) {
        println!("  wrapped length {}", wrapped.len());
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Encrypt(true),
        ];
        if let Some(k) = step(
            "unwrap",
            session.unwrap_key(&Mechanism::AesKeyWrap, aes, &wrapped, &template),
        ) {
            let a = session.encrypt(&cbc, k, canary::get().data).ok();
            let b = session.encrypt(&cbc, imported, canary::get().data).ok();
            println!(
                "  unwrapped key encrypts as the imported key: {}",
                a.is_some() && a == b
            );
        }
    }

    let mut macs = Vec::new();
    for i in 0..2 {
        let point = session
            .get_attributes(ec[1 - i].0, &[AttributeType::EcPoint])
            .ok()
            .and_then(|a| match a.first() {
                Some(Attribute::EcPoint(p)) => Some(p[2..].to_vec()),
                _ => None,
            })
            .unwrap_or_default();
        let derive = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &point));
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::ValueLen(32.into()),
            Attribute::Token(false),
            Attribute::Sign(true),
        ];
        if let Some(secret) = step(
            "derive ecdh",
            session.derive_key(&derive, ec[i].1, &template),
        ) {
            macs.push(
                session
                    .sign(&Mechanism::Sha256Hmac, secret, canary::get().data)
                    .ok(),
            );
        }
    }
    println!(
        "  both sides derived the same secret: {}",
        macs.len() == 2 && macs[0].is_some() && macs[0] == macs[1]
    );

    step("seed random", session.seed_random(canary::get().seed));
    if let Some(r) = step("generate random", session.generate_random_vec(32)) {
        println!("  {} bytes", r.len());
    }
}
