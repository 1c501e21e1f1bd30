//! `p11-stress SCENARIO [key=value…]`: one reliability workload, run in a process of its own
//! (the shim reads its configuration once per process). It calls the module named by
//! `P11_MODULE` through the raw function list and prints `key value` lines for the test to
//! check; `calls` is always the number of application calls that returned.
//!
//! Scenarios: `threads`, `fork`, `reload`, `exit`, `kill`, `sabotage`, `init`.

use cryptoki_sys::*;
use softhsm_tests::raw::RawModule;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Application calls that returned.
static CALLS: AtomicU64 = AtomicU64::new(0);

fn counted(rv: CK_RV) -> CK_RV {
    CALLS.fetch_add(1, Ordering::Relaxed);
    rv
}

struct Opts(HashMap<String, String>);

impl Opts {
    fn num(&self, key: &str, default: u64) -> u64 {
        self.0
            .get(key)
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{key}={v}: not a number"))
            })
            .unwrap_or(default)
    }
    fn str(&self, key: &str, default: &str) -> String {
        self.0.get(key).cloned().unwrap_or_else(|| default.into())
    }
}

fn module_path() -> PathBuf {
    PathBuf::from(std::env::var_os("P11_MODULE").expect("P11_MODULE names the module"))
}

/// Loads the module (`C_GetFunctionList` counts as a call) and initialises it.
fn start() -> RawModule {
    let m = RawModule::load(&module_path()).unwrap_or_else(|e| panic!("load: {e}"));
    counted(CKR_OK);
    let rv = counted(m.initialize());
    assert_eq!(rv, CKR_OK, "C_Initialize");
    m
}

fn calls(m: &RawModule, n: u64) {
    for _ in 0..n {
        assert_eq!(counted(m.get_info()), CKR_OK);
    }
}

fn report(key: &str, value: impl std::fmt::Display) {
    println!("{key} {value}");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().unwrap_or_default();
    let opts = Opts(
        args.filter_map(|a| a.split_once('=').map(|(k, v)| (k.into(), v.into())))
            .collect(),
    );
    match scenario.as_str() {
        "threads" => threads(&opts),
        "fork" => fork(&opts),
        "reload" => reload(&opts),
        "exit" => exit(&opts),
        "kill" => kill_target(&opts),
        "sabotage" => sabotage(&opts),
        "init" => init_only(),
        other => panic!("unknown scenario {other:?}"),
    }
}

/// `threads=T calls=N`: T threads make N calls each, then `C_Finalize`.
fn threads(o: &Opts) {
    let m = start();
    let n = o.num("calls", 1000);
    std::thread::scope(|s| {
        for _ in 0..o.num("threads", 2) {
            s.spawn(|| calls(&m, n));
        }
    });
    counted(m.finalize());
    report("calls", CALLS.load(Ordering::Relaxed));
}

/// `calls=N busy=0|1`: the parent calls, forks a child that initialises again and calls,
/// and a child that never touches PKCS#11; with `busy=1` a parent thread keeps calling
/// across both forks.
fn fork(o: &Opts) {
    let m = start();
    let n = o.num("calls", 100);
    calls(&m, n);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        if o.num("busy", 0) == 1 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(counted(m.get_info()), CKR_OK);
                }
            });
        }
        // SAFETY: the child only calls PKCS#11 and exits, as applications that fork do.
        let worker = unsafe { libc::fork() };
        if worker == 0 {
            CALLS.store(0, Ordering::Relaxed);
            // PKCS#11: a child must initialise again. SoftHSM copies its state into the
            // child and may say it is initialised already; finalise that copy first.
            let mut rv = counted(m.initialize());
            if rv == CKR_CRYPTOKI_ALREADY_INITIALIZED {
                counted(m.finalize());
                rv = counted(m.initialize());
            }
            assert_eq!(rv, CKR_OK, "child C_Initialize");
            calls(&m, n);
            counted(m.finalize());
            report("child_pid", std::process::id());
            report("child_calls", CALLS.load(Ordering::Relaxed));
            std::process::exit(0);
        }
        // SAFETY: as above; this child makes no PKCS#11 call at all.
        let idle = unsafe { libc::fork() };
        if idle == 0 {
            report("idle_pid", std::process::id());
            std::process::exit(0);
        }
        for pid in [worker, idle] {
            let mut status = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "child {pid}: status {status}"
            );
        }
        calls(&m, n);
        stop.store(true, Ordering::Relaxed);
    });
    counted(m.finalize());
    report("calls", CALLS.load(Ordering::Relaxed));
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// `cycles=C calls=N`: C times dlopen, initialise, N calls, finalise, dlclose.
fn reload(o: &Opts) {
    let mut counts = Vec::new();
    for _ in 0..o.num("cycles", 100) {
        let m = start();
        calls(&m, o.num("calls", 10));
        counted(m.finalize());
        drop(m);
        counts.push(thread_count());
    }
    report("threads_first", counts[0]);
    report("threads_max", counts.iter().max().unwrap());
    report("threads_last", counts.last().unwrap());
    report("calls", CALLS.load(Ordering::Relaxed));
}

/// `mode=finalize|no-finalize|thread-exit calls=N`: how the process ends after N calls.
fn exit(o: &Opts) {
    let m = start();
    let n = o.num("calls", 1000);
    match o.str("mode", "finalize").as_str() {
        "finalize" => {
            calls(&m, n);
            counted(m.finalize());
            report("calls", CALLS.load(Ordering::Relaxed));
        }
        "no-finalize" => {
            calls(&m, n);
            report("calls", CALLS.load(Ordering::Relaxed));
            std::process::exit(0);
        }
        "thread-exit" => {
            let m = Arc::new(m);
            let worker = m.clone();
            std::thread::spawn(move || {
                calls(&worker, n);
                report("calls", CALLS.load(Ordering::Relaxed));
                std::process::exit(0);
            });
            // The main thread is still inside the process when the other thread exits it.
            loop {
                std::thread::park();
            }
        }
        other => panic!("mode {other:?}"),
    }
}

/// `threads=T counter=PATH pause_us=P`: calls until killed (pausing P µs after each call
/// for a load below saturation); after each returned call, bumps a counter in a shared
/// mapping of PATH, which outlives a `kill -9`.
fn kill_target(o: &Opts) {
    let path = o.str("counter", "");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("counter file");
    file.set_len(8).expect("counter size");
    // SAFETY: an 8-byte shared mapping of a file we own, used only as one AtomicU64.
    let counter: &'static AtomicU64 = unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            8,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(&file),
            0,
        );
        assert_ne!(p, libc::MAP_FAILED, "mmap");
        &*(p as *const AtomicU64)
    };
    let pause = o.num("pause_us", 0);
    let m = start();
    counter.store(CALLS.load(Ordering::Relaxed), Ordering::Relaxed);
    report("ready", 1);
    std::thread::scope(|s| {
        for _ in 0..o.num("threads", 2) {
            s.spawn(|| loop {
                assert_eq!(m.get_info(), CKR_OK);
                counter.fetch_add(1, Ordering::Relaxed);
                if pause > 0 {
                    std::thread::sleep(std::time::Duration::from_micros(pause));
                }
            });
        }
    });
}

/// Today's row file of this process, as the JSON Lines sink names it.
fn own_row_file(dir: &Path) -> PathBuf {
    // SAFETY: time(NULL) and gmtime_r into a local are always valid.
    let tm = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::gmtime_r(&now, &mut tm);
        tm
    };
    dir.join(format!(
        "hsm-audit-{:04}-{:02}-{:02}-pid{}.jsonl",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        std::process::id()
    ))
}

/// `mode=devfull|rmdir calls=N`: rows cannot be written (`devfull`: our row file is a
/// symlink to /dev/full from the start; `rmdir`: the output directory is removed after the
/// first phase), then the damage is repaired. Each phase opens N sessions, so a refused call
/// visibly never reached the HSM (session handles stay consecutive).
fn sabotage(o: &Opts) {
    let out = PathBuf::from(std::env::var_os("HSM_AUDIT_OUTPUT").expect("HSM_AUDIT_OUTPUT"));
    let mode = o.str("mode", "devfull");
    let n = o.num("calls", 50);
    if mode == "devfull" {
        std::os::unix::fs::symlink("/dev/full", own_row_file(&out)).expect("symlink");
    }
    let m = start();
    let slot = m.first_token_slot().expect("a token");
    counted(CKR_OK);
    let mut opened = 0u64;
    let mut highest = 0;
    let mut phase = |name: &str, opened: &mut u64| {
        let (mut ok, mut refused) = (0, 0);
        for _ in 0..n {
            match m.open_session(slot) {
                Ok(handle) => {
                    ok += 1;
                    highest = highest.max(handle);
                }
                Err(CKR_FUNCTION_FAILED) => refused += 1,
                Err(rv) => panic!("{name}: C_OpenSession returned {rv:#x}"),
            }
            counted(CKR_OK);
        }
        *opened += ok;
        assert_eq!(m.audit_flush(5000), Some(0), "{name}: hsm_audit_flush");
        report(&format!("{name}_ok"), ok);
        report(&format!("{name}_refused"), refused);
    };
    phase("before", &mut opened);
    if mode == "rmdir" {
        std::fs::remove_dir_all(&out).expect("remove output directory");
    }
    phase("broken", &mut opened);
    if mode == "devfull" {
        std::fs::remove_file(own_row_file(&out)).expect("remove symlink");
    }
    // Repaired: under fail-closed the first calls are refused (and recorded) until the
    // writer has written a row again.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let rv = counted(m.get_info());
        assert_eq!(m.audit_flush(5000), Some(0));
        if rv == CKR_OK || attempts == 100 {
            break;
        }
    }
    report("recovery_attempts", attempts);
    phase("after", &mut opened);
    report("sessions_opened", opened);
    // SoftHSM numbers sessions 1, 2, 3… while none is closed: a refused C_OpenSession that
    // had reached it would have used a number.
    report("highest_session_handle", highest);
    // SAFETY: a slot the module listed.
    counted(unsafe { m.f.C_CloseAllSessions.expect("C_CloseAllSessions")(slot) });
    counted(m.finalize());
    report("lost_events", m.audit_lost_events().unwrap_or(u64::MAX));
    report("calls", CALLS.load(Ordering::Relaxed));
}

/// Loads and initialises the module, printing each answer: for bad configurations.
fn init_only() {
    match RawModule::load(&module_path()) {
        Ok(m) => {
            report("load", "ok");
            report("initialize", format!("{:#x}", m.initialize()));
            report("get_info", format!("{:#x}", m.get_info()));
            report("finalize", format!("{:#x}", m.finalize()));
        }
        Err(e) => report("load", e),
    }
}
