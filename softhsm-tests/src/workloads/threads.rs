//! Many threads, each on its own session, calling `C_GenerateRandom`, `C_DigestInit` and
//! `C_Digest`; prints how many calls of each function were made and how many failed.

use crate::canary;
use crate::raw::Module;
use cryptoki_sys::*;
use std::ffi::c_void;
use std::path::Path;
use std::ptr::null_mut;

/// Runs `waves` waves, one after the other, of `threads` threads of `iterations` rounds
/// (three calls each) against `path`. Each wave's threads end before the next wave's start,
/// so the shim sees threads come and go (each thread's lane to the writer opens and closes).
pub fn run(path: &Path, threads: usize, iterations: usize, waves: usize) {
    let m = Module::open(path);
    let mut list: *mut CK_FUNCTION_LIST = null_mut();
    // SAFETY: a valid out-pointer.
    assert_eq!(unsafe { (m.get_function_list)(&mut list) }, CKR_OK);
    // SAFETY: a 2.40 table, read at its size.
    let f = unsafe { *list };
    let mut args = CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags: CKF_OS_LOCKING_OK,
        pReserved: null_mut(),
    };
    // SAFETY: valid arguments (threads use the module concurrently, so OS locking).
    assert_eq!(
        unsafe { f.C_Initialize.unwrap()(&mut args as *mut _ as *mut c_void) },
        CKR_OK
    );
    let mut n: CK_ULONG = 0;
    // SAFETY: a count query, then room for `n` slots.
    assert_eq!(
        unsafe { f.C_GetSlotList.unwrap()(CK_TRUE, null_mut(), &mut n) },
        CKR_OK
    );
    let mut slots = vec![0 as CK_SLOT_ID; n as usize];
    assert_eq!(
        unsafe { f.C_GetSlotList.unwrap()(CK_TRUE, slots.as_mut_ptr(), &mut n) },
        CKR_OK
    );
    // SoftHSM lists initialised tokens first, the free slot last.
    let slot = slots[0];

    let wave = || -> usize {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(move || {
                        let mut s: CK_SESSION_HANDLE = 0;
                        // SAFETY: valid arguments throughout; each thread has its own session.
                        unsafe {
                            assert_eq!(
                                f.C_OpenSession.unwrap()(
                                    slot,
                                    CKF_SERIAL_SESSION,
                                    null_mut(),
                                    None,
                                    &mut s
                                ),
                                CKR_OK
                            );
                            let mut failed = 0;
                            let mut buf = [0u8; 32];
                            for _ in 0..iterations {
                                let mut mech = crate::raw::mech(CKM_SHA256);
                                let mut len: CK_ULONG = 32;
                                let rvs = [
                                    f.C_GenerateRandom.unwrap()(s, buf.as_mut_ptr(), 32),
                                    f.C_DigestInit.unwrap()(s, &mut mech),
                                    f.C_Digest.unwrap()(
                                        s,
                                        canary::get().data.as_ptr() as *mut _,
                                        canary::get().data.len() as CK_ULONG,
                                        buf.as_mut_ptr(),
                                        &mut len,
                                    ),
                                ];
                                failed += rvs.iter().filter(|rv| **rv != CKR_OK).count();
                            }
                            assert_eq!(f.C_CloseSession.unwrap()(s), CKR_OK);
                            failed
                        }
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().expect("worker")).sum()
        })
    };
    let failures: usize = (0..waves).map(|_| wave()).sum();
    let threads = threads * waves;
    // SAFETY: no argument.
    assert_eq!(unsafe { f.C_Finalize.unwrap()(null_mut()) }, CKR_OK);
    let each = (threads * iterations) as u64;
    println!("count C_GetFunctionList 1");
    println!("count C_Initialize 1");
    println!("count C_GetSlotList 2");
    println!("count C_OpenSession {threads}");
    for function in ["C_GenerateRandom", "C_DigestInit", "C_Digest"] {
        println!("count {function} {each}");
    }
    println!("count C_CloseSession {threads}");
    println!("count C_Finalize 1");
    println!("failed calls {failures}");
}
