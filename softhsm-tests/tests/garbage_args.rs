//! Garbage and NULL arguments through the raw function list: the shim never crashes and
//! returns exactly what SoftHSM returns when called directly.
//!
//! SoftHSM is loaded twice in one process, directly and through the shim; `dlopen` hands both
//! the same instance. Each generated call goes to the shim with one session and to SoftHSM
//! with another, so both sessions see the same calls and stay in the same state. The test
//! re-runs itself in a child process with the token's environment (the shim reads its
//! configuration once per process). `PROPTEST_CASES` sets the number of cases (default 256).

use cryptoki_sys::*;
use proptest::prelude::*;
use softhsm_tests::raw::RawModule;
use softhsm_tests::*;
use std::ptr;

const CHILD: &str = "GARBAGE_ARGS_CHILD";
const SHIM: &str = "GARBAGE_ARGS_SHIM";

/// A session: the module's own valid one, or a number that is not a session.
#[derive(Clone, Copy, Debug)]
enum Session {
    Valid,
    Raw(u64),
}

/// A claimed length: small, exact, or absurd.
fn length() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 1u64..64, Just(1 << 31), Just(u64::MAX)]
}

/// Bytes behind a pointer, or NULL.
fn bytes() -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..48))
}

/// A mechanism pointer: NULL, or a struct with any type and a parameter that is NULL, a
/// real buffer, or a pointer into unmapped memory (as an uninitialised struct would hold).
#[derive(Clone, Debug)]
enum Mech {
    Null,
    Some { ty: u64, param: Param, len: u64 },
}

#[derive(Clone, Debug)]
enum Param {
    Null,
    Bytes(Vec<u8>),
    Unmapped,
}

fn mech() -> impl Strategy<Value = Mech> {
    let ty = prop_oneof![
        Just(CKM_SHA256),
        Just(CKM_AES_CBC),
        Just(CKM_AES_GCM),
        Just(CKM_RSA_PKCS),
        Just(CKM_ECDSA),
        any::<u64>()
    ];
    let param = prop_oneof![
        Just(Param::Null),
        proptest::collection::vec(any::<u8>(), 0..32).prop_map(Param::Bytes),
        Just(Param::Unmapped)
    ];
    prop_oneof![
        Just(Mech::Null),
        (ty, param, length()).prop_map(|(ty, param, len)| Mech::Some { ty, param, len })
    ]
}

#[derive(Clone, Debug)]
enum Op {
    GetSlotList {
        present: bool,
        buf: bool,
        count: Option<u64>,
    },
    GetSlotInfo {
        slot: Option<u64>,
        out: bool,
    },
    GetTokenInfo {
        slot: Option<u64>,
        out: bool,
    },
    GetMechanismList {
        slot: Option<u64>,
        buf: bool,
        count: Option<u64>,
    },
    GetMechanismInfo {
        slot: Option<u64>,
        ty: u64,
        out: bool,
    },
    GetSessionInfo {
        session: Session,
        out: bool,
    },
    Init {
        kind: u8,
        session: Session,
        mech: Mech,
        key: u64,
    },
    Digest {
        session: Session,
        data: Option<Vec<u8>>,
        out_len: Option<u64>,
    },
    GenerateRandom {
        session: Session,
        out: bool,
        len: u64,
    },
    FindObjectsInit {
        session: Session,
        template: Option<Vec<(u64, Vec<u8>)>>,
        count: u64,
    },
    FindObjects {
        session: Session,
        out: bool,
        max: u64,
        count: bool,
    },
    Login {
        session: Session,
        user: u64,
        pin: Option<Vec<u8>>,
    },
    CreateObjectNull {
        session: Session,
        count: u64,
    },
}

fn session() -> impl Strategy<Value = Session> {
    prop_oneof![
        Just(Session::Valid),
        Just(Session::Raw(0)),
        (1000u64..).prop_map(Session::Raw)
    ]
}

fn slot() -> impl Strategy<Value = Option<u64>> {
    // None: the token's real slot.
    prop_oneof![Just(None), any::<u64>().prop_map(Some)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<bool>(), any::<bool>(), proptest::option::of(length())).prop_map(
            |(present, buf, count)| Op::GetSlotList {
                present,
                buf,
                count
            }
        ),
        (slot(), any::<bool>()).prop_map(|(slot, out)| Op::GetSlotInfo { slot, out }),
        (slot(), any::<bool>()).prop_map(|(slot, out)| Op::GetTokenInfo { slot, out }),
        (slot(), any::<bool>(), proptest::option::of(length()))
            .prop_map(|(slot, buf, count)| Op::GetMechanismList { slot, buf, count }),
        (slot(), any::<u64>(), any::<bool>()).prop_map(|(slot, ty, out)| Op::GetMechanismInfo {
            slot,
            ty,
            out
        }),
        (session(), any::<bool>()).prop_map(|(session, out)| Op::GetSessionInfo { session, out }),
        (0u8..5, session(), mech(), any::<u64>()).prop_map(|(kind, session, mech, key)| Op::Init {
            kind,
            session,
            mech,
            key
        }),
        (session(), bytes(), proptest::option::of(length())).prop_map(
            |(session, data, out_len)| Op::Digest {
                session,
                data,
                out_len
            }
        ),
        (session(), any::<bool>(), 0u64..256).prop_map(|(session, out, len)| Op::GenerateRandom {
            session,
            out,
            len
        }),
        (
            session(),
            proptest::option::of(proptest::collection::vec(
                (any::<u64>(), proptest::collection::vec(any::<u8>(), 0..16)),
                0..4
            )),
            length()
        )
            .prop_map(|(session, template, count)| Op::FindObjectsInit {
                session,
                template,
                count
            }),
        (session(), any::<bool>(), length(), any::<bool>()).prop_map(
            |(session, out, max, count)| Op::FindObjects {
                session,
                out,
                max,
                count
            }
        ),
        (session(), any::<u64>(), bytes()).prop_map(|(session, user, pin)| Op::Login {
            session,
            user,
            pin
        }),
        (session(), length()).prop_map(|(session, count)| Op::CreateObjectNull { session, count }),
    ]
}

/// One module with its own session.
struct Side {
    m: RawModule,
    session: CK_SESSION_HANDLE,
    slot: CK_SLOT_ID,
}

/// Room for any answer SoftHSM gives here; claimed lengths never exceed what it writes.
const OUT: usize = 64 * 1024;

fn ptr_or_null<T>(v: &mut Option<Vec<T>>) -> *mut T {
    v.as_mut().map_or(ptr::null_mut(), |v| v.as_mut_ptr())
}

/// Calls `op` on one side; returns the return value and any length the module wrote back.
fn call(side: &Side, op: &Op) -> (CK_RV, Option<u64>) {
    let f = side.m.f;
    let s = |s: &Session| match s {
        Session::Valid => side.session,
        Session::Raw(h) => *h,
    };
    let slot = |o: &Option<u64>| o.unwrap_or(side.slot);
    let mut out = vec![0u8; OUT];
    let out_ptr = |want: bool, out: &mut Vec<u8>| {
        if want {
            out.as_mut_ptr()
        } else {
            ptr::null_mut()
        }
    };
    // SAFETY, for every call below: each pointer is NULL or points at a live buffer at least
    // as large as the length passed with it (out-buffers are OUT bytes, more than SoftHSM
    // writes for these calls), except `Param::Unmapped`, which no module may read before it
    // has found the (never valid) key; the test checks exactly that the shim reads it neither.
    unsafe {
        match op {
            Op::GetSlotList {
                present,
                buf,
                count,
            } => {
                let mut n = count.unwrap_or(0);
                let n_ptr = if count.is_some() {
                    &mut n as *mut u64
                } else {
                    ptr::null_mut()
                };
                let rv = f.C_GetSlotList.unwrap()(
                    CK_BBOOL::from(*present),
                    out_ptr(*buf, &mut out) as *mut CK_SLOT_ID,
                    n_ptr,
                );
                (rv, count.map(|_| n))
            }
            Op::GetSlotInfo { slot: sl, out: o } => (
                f.C_GetSlotInfo.unwrap()(slot(sl), out_ptr(*o, &mut out) as *mut _),
                None,
            ),
            Op::GetTokenInfo { slot: sl, out: o } => (
                f.C_GetTokenInfo.unwrap()(slot(sl), out_ptr(*o, &mut out) as *mut _),
                None,
            ),
            Op::GetMechanismList {
                slot: sl,
                buf,
                count,
            } => {
                let mut n = count.unwrap_or(0);
                let n_ptr = if count.is_some() {
                    &mut n as *mut u64
                } else {
                    ptr::null_mut()
                };
                let rv = f.C_GetMechanismList.unwrap()(
                    slot(sl),
                    out_ptr(*buf, &mut out) as *mut CK_MECHANISM_TYPE,
                    n_ptr,
                );
                (rv, count.map(|_| n))
            }
            Op::GetMechanismInfo {
                slot: sl,
                ty,
                out: o,
            } => (
                f.C_GetMechanismInfo.unwrap()(slot(sl), *ty, out_ptr(*o, &mut out) as *mut _),
                None,
            ),
            Op::GetSessionInfo { session, out: o } => (
                f.C_GetSessionInfo.unwrap()(s(session), out_ptr(*o, &mut out) as *mut _),
                None,
            ),
            Op::Init {
                kind,
                session,
                mech,
                key,
            } => {
                let mut param_bytes;
                let mut m;
                let m_ptr: *mut CK_MECHANISM = match mech {
                    Mech::Null => ptr::null_mut(),
                    Mech::Some { ty, param, len } => {
                        let (p, l) = match param {
                            Param::Null => (ptr::null_mut(), *len),
                            Param::Bytes(b) => {
                                param_bytes = b.clone();
                                (param_bytes.as_mut_ptr() as *mut _, param_bytes.len() as u64)
                            }
                            Param::Unmapped => (16 as *mut std::ffi::c_void, *len),
                        };
                        m = CK_MECHANISM {
                            mechanism: *ty,
                            pParameter: p,
                            ulParameterLen: l,
                        };
                        &mut m
                    }
                };
                let init = match kind {
                    0 => f.C_EncryptInit,
                    1 => f.C_DecryptInit,
                    2 => f.C_SignInit,
                    _ => f.C_VerifyInit,
                };
                let rv = if *kind == 4 {
                    f.C_DigestInit.unwrap()(s(session), m_ptr)
                } else {
                    init.unwrap()(s(session), m_ptr, *key)
                };
                (rv, None)
            }
            Op::Digest {
                session,
                data,
                out_len,
            } => {
                let mut data = data.clone();
                let len = data.as_ref().map_or(0, |d| d.len() as u64);
                let mut n = out_len.unwrap_or(0).min(OUT as u64);
                let n_ptr = if out_len.is_some() {
                    &mut n as *mut u64
                } else {
                    ptr::null_mut()
                };
                let rv = f.C_Digest.unwrap()(
                    s(session),
                    ptr_or_null(&mut data),
                    len,
                    out.as_mut_ptr(),
                    n_ptr,
                );
                (rv, out_len.map(|_| n))
            }
            Op::GenerateRandom {
                session,
                out: o,
                len,
            } => (
                f.C_GenerateRandom.unwrap()(s(session), out_ptr(*o, &mut out), *len),
                None,
            ),
            Op::FindObjectsInit {
                session,
                template,
                count,
            } => {
                let mut values: Vec<Vec<u8>> =
                    template.iter().flatten().map(|(_, v)| v.clone()).collect();
                let mut attrs: Option<Vec<CK_ATTRIBUTE>> = template.as_ref().map(|t| {
                    t.iter()
                        .zip(values.iter_mut())
                        .map(|((ty, _), v)| CK_ATTRIBUTE {
                            type_: *ty,
                            pValue: v.as_mut_ptr() as *mut _,
                            ulValueLen: v.len() as u64,
                        })
                        .collect()
                });
                // A real template is passed with its true count; NULL with any count.
                let n = attrs.as_ref().map_or(*count, |a| a.len() as u64);
                (
                    f.C_FindObjectsInit.unwrap()(s(session), ptr_or_null(&mut attrs), n),
                    None,
                )
            }
            Op::FindObjects {
                session,
                out: o,
                max,
                count,
            } => {
                let mut found = 0u64;
                let found_ptr = if *count {
                    &mut found as *mut u64
                } else {
                    ptr::null_mut()
                };
                let max = if *o {
                    (*max).min((OUT / 8) as u64)
                } else {
                    *max
                };
                let rv = f.C_FindObjects.unwrap()(
                    s(session),
                    out_ptr(*o, &mut out) as *mut CK_OBJECT_HANDLE,
                    max,
                    found_ptr,
                );
                (rv, count.then_some(found))
            }
            Op::Login { session, user, pin } => {
                let mut pin = pin.clone();
                let len = pin.as_ref().map_or(0, |p| p.len() as u64);
                (
                    f.C_Login.unwrap()(s(session), *user, ptr_or_null(&mut pin), len),
                    None,
                )
            }
            Op::CreateObjectNull { session, count } => {
                let mut handle = 0;
                (
                    f.C_CreateObject.unwrap()(s(session), ptr::null_mut(), *count, &mut handle),
                    None,
                )
            }
        }
    }
}

fn side(m: RawModule, slot: CK_SLOT_ID) -> Side {
    let session = m.open_session(slot).expect("open session");
    Side { m, session, slot }
}

#[test]
fn garbage_arguments_get_the_vendors_answer() {
    if std::env::var_os(CHILD).is_none() {
        let token = Token::default_test();
        let out = token
            .command(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "garbage_arguments_get_the_vendors_answer",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .env(SHIM, shim_path())
            .output()
            .expect("run child");
        assert!(
            out.status.success(),
            "child failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Every call was recorded and every row file parses.
        assert!(!read_rows(&token.out_dir()).is_empty());
        return;
    }
    let direct = RawModule::load(&softhsm_module()).expect("load SoftHSM");
    let shim =
        RawModule::load(std::path::Path::new(&std::env::var_os(SHIM).unwrap())).expect("load shim");
    assert_eq!(direct.initialize(), CKR_OK);
    let slot = direct.first_token_slot().expect("token");
    let direct = side(direct, slot);
    let shim = side(shim, slot);
    let config = ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..8))| {
        for op in &ops {
            let through_shim = call(&shim, op);
            let direct_answer = call(&direct, op);
            prop_assert_eq!(through_shim, direct_answer, "{:?}", op);
        }
    });
}
