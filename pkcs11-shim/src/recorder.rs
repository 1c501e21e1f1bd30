//! The per-call recorder: times a call, then sends one `Event` to this process's writer.
//!
//! Hot path: two clock reads (`normalizer::clock`), a few atomic loads and a push into the
//! calling thread's lane (`normalizer::lanes`); no allocation, no lock (in
//! `durability = "sync"` the call then waits for its row). The writer starts on the first
//! recorded call of each process:
//! after `fork` the child's first call starts its own writer (the parent's thread does not
//! exist in the child), and a child that makes no call starts nothing.

use cryptoki_sys::*;
use normalizer::config::WriteFailurePolicy;
use normalizer::writer::{flush_through, Msg};
use normalizer::{clock, Event, FunctionId, Origin, Writer};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::Once;
use std::time::Duration;

/// Scalar arguments worth recording.
#[derive(Clone, Copy, Debug)]
pub struct Scalars {
    /// `CK_MECHANISM_TYPE`.
    pub mechanism: Option<u64>,
    /// `CK_USER_TYPE`.
    pub user_type: Option<u64>,
}

impl Scalars {
    /// Nothing to record.
    pub const NONE: Scalars = Scalars {
        mechanism: None,
        user_type: None,
    };
}

/// The mechanism type of `mechanism`, read only when the vendor's answer shows the vendor
/// itself read a valid mechanism: success, or an error about the mechanism. A NULL, dangling
/// or uninitialised pointer rejected earlier is never touched, and `pParameter` never is.
///
/// # Safety
/// When `rv` is one of those answers, `mechanism` was valid for the vendor.
#[inline]
pub unsafe fn mechanism_type(mechanism: *const CK_MECHANISM, rv: CK_RV) -> Option<u64> {
    let vendor_read_it = matches!(
        rv,
        CKR_OK | CKR_MECHANISM_INVALID | CKR_MECHANISM_PARAM_INVALID | CKR_KEY_TYPE_INCONSISTENT
    );
    if mechanism.is_null() || !vendor_read_it {
        return None;
    }
    // SAFETY: see above; read_unaligned because the caller owns the layout.
    Some(unsafe { std::ptr::addr_of!((*mechanism).mechanism).read_unaligned() })
}

/// One call being timed.
pub struct Call {
    function: FunctionId,
    origin: Origin,
    start: u64,
}

impl Call {
    /// An application call. Timing starts at [`Call::begin`], right before the vendor is
    /// called, so the first call's one-off work (loading the vendor, starting the writer)
    /// is not counted as HSM time.
    #[inline]
    pub fn start(function: FunctionId) -> Call {
        Call {
            function,
            origin: Origin::Application,
            start: 0,
        }
    }

    /// Starts the clock: the vendor is called next.
    #[inline]
    pub fn begin(&mut self) {
        self.start = clock::now();
    }

    /// Starts timing a call the shim makes itself.
    pub fn start_own(function: FunctionId) -> Call {
        Call {
            function,
            origin: Origin::Shim,
            start: clock::now(),
        }
    }

    /// Whether the call may go on to the vendor. Under `on_write_failure = "fail-closed"`,
    /// while rows cannot be written (or no writer could start) it may not: the call is then
    /// recorded as refused and returns [`REFUSED`].
    #[inline]
    pub fn admit(&mut self) -> Result<(), CK_RV> {
        let admitted = match active() {
            Some(a) => !a.fail_closed || a.writer.health().writable(),
            None => !crate::settings::config().is_ok_and(fail_closed),
        };
        if admitted {
            Ok(())
        } else {
            self.origin = Origin::Refused;
            Err(REFUSED)
        }
    }

    /// Records the call's outcome and returns `rv` unchanged.
    #[inline]
    pub fn finish(self, rv: CK_RV, scalars: Scalars) -> CK_RV {
        let end = clock::now();
        // Never begun: the shim answered without calling the vendor, in no time.
        let start = if self.start == 0 { end } else { self.start };
        record(Event {
            function: self.function,
            origin: self.origin,
            rv,
            start_unix_ns: clock::to_unix_ns(start),
            duration_ns: clock::ns_between(start, end),
            mechanism: scalars.mechanism,
            user_type: scalars.user_type,
        });
        rv
    }
}

/// What a call refused under `fail-closed` returns: PKCS#11's universal "the function could
/// not be performed", which (unlike `CKR_GENERAL_ERROR`) does not tell the application that
/// the library is unusable for good: calls succeed again once rows can be written.
pub const REFUSED: CK_RV = CKR_FUNCTION_FAILED;

fn fail_closed(config: &normalizer::Config) -> bool {
    config.on_write_failure == WriteFailurePolicy::FailClosed
}

/// This process's writer.
struct Active {
    /// The fork generation it was started in.
    generation: u64,
    writer: Writer,
    /// `on_write_failure = "fail-closed"`.
    fail_closed: bool,
}

/// Bumped in the child after every `fork`; a writer of another generation is the parent's.
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// The current writer; replaced (never freed) when a new generation starts its own.
static ACTIVE: AtomicPtr<Active> = AtomicPtr::new(std::ptr::null_mut());
/// Held while a writer starts. An atomic rather than a mutex so the child after `fork` can
/// reset it (a lock held by a parent thread at fork time would stay held forever).
static STARTING: AtomicBool = AtomicBool::new(false);
/// Generation whose writer could not start (so the failure is logged once, and retried only
/// by `C_Initialize`).
static FAILED_GENERATION: AtomicU64 = AtomicU64::new(u64::MAX);
/// Events that could not be handed to a writer.
static LOST: AtomicU64 = AtomicU64::new(0);

/// Rows this process lost: calls made while no writer could start, plus what the current
/// writer could not write.
pub fn lost() -> u64 {
    let generation = GENERATION.load(Ordering::Acquire);
    // SAFETY: as in `active`.
    let current = match unsafe { ACTIVE.load(Ordering::Acquire).as_ref() } {
        Some(a) if a.generation == generation => a.writer.health().lost(),
        _ => 0,
    };
    LOST.load(Ordering::Relaxed) + current
}

/// Starts this process's writer if it is not running, retrying one that failed to start
/// (`C_Initialize` calls this: an output directory that cannot be created is a
/// configuration error the application must hear about). The reason was logged.
pub fn require_writer() -> Result<(), CK_RV> {
    let generation = GENERATION.load(Ordering::Acquire);
    // SAFETY: as in `active`.
    match unsafe { ACTIVE.load(Ordering::Acquire).as_ref() } {
        Some(a) if a.generation == generation => Ok(()),
        _ => start_locking(generation)
            .map(|_| ())
            .ok_or(CKR_GENERAL_ERROR),
    }
}

#[inline]
fn active() -> Option<&'static Active> {
    let generation = GENERATION.load(Ordering::Acquire);
    let p = ACTIVE.load(Ordering::Acquire);
    // SAFETY: ACTIVE only ever holds null or a leaked, never-freed Active.
    match unsafe { p.as_ref() } {
        Some(a) if a.generation == generation => Some(a),
        _ => start(generation),
    }
}

#[inline]
fn record(event: Event) {
    match active() {
        // Blocks only when this thread's lane is full: back-pressure instead of loss. An
        // event that cannot be handed over is counted by the writer's health.
        Some(a) => {
            a.writer.record(event);
        }
        None => {
            LOST.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cold]
fn start(generation: u64) -> Option<&'static Active> {
    // Calls other than C_Initialize do not retry a writer that failed to start.
    if FAILED_GENERATION.load(Ordering::Acquire) == generation {
        return None;
    }
    start_locking(generation)
}

fn start_locking(generation: u64) -> Option<&'static Active> {
    while STARTING
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::thread::yield_now();
    }
    let result = start_locked(generation);
    STARTING.store(false, Ordering::Release);
    result
}

fn start_locked(generation: u64) -> Option<&'static Active> {
    // SAFETY: as in `active`.
    if let Some(a) = unsafe { ACTIVE.load(Ordering::Acquire).as_ref() } {
        if a.generation == generation {
            return Some(a);
        }
    }
    let config = crate::settings::config().ok()?;
    match Writer::spawn(config) {
        Ok(writer) => {
            install_process_hooks();
            let active: &'static Active = Box::leak(Box::new(Active {
                generation,
                writer,
                fail_closed: fail_closed(config),
            }));
            // The previous Active (the parent's, after a fork) is left alone: its thread is
            // gone in this process and dropping it would try to join it.
            ACTIVE.store(active as *const Active as *mut Active, Ordering::Release);
            Some(active)
        }
        Err(e) => {
            // One line per process (and fork generation), however often it is retried.
            if FAILED_GENERATION.swap(generation, Ordering::AcqRel) != generation {
                crate::diag::error(format_args!(
                    "cannot record PKCS#11 calls (config `output`): {e}"
                ));
            }
            None
        }
    }
}

/// Waits until every event recorded so far in this process is written, or `timeout`.
pub fn flush(timeout: Duration) -> bool {
    let generation = GENERATION.load(Ordering::Acquire);
    // SAFETY: as in `active`.
    match unsafe { ACTIVE.load(Ordering::Acquire).as_ref() } {
        Some(a) if a.generation == generation => flush_through(a.writer.sender(), timeout),
        _ => true,
    }
}

/// Asks the vendor for its description (`C_GetInfo`, recorded as the shim's own call) so
/// rows can carry `ClientSdkPackageVersion`.
pub fn learn_vendor_version() {
    let Ok(get_info) = crate::vendor::function(|f| f.C_GetInfo) else {
        return;
    };
    let call = Call::start_own(FunctionId::GetInfo);
    // SAFETY: CK_INFO is plain data; all-zero is valid and the vendor fills it.
    let mut info: CK_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer to a local.
    let rv = call.finish(unsafe { get_info(&mut info) }, Scalars::NONE);
    if rv != CKR_OK {
        return;
    }
    let text = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .trim_end_matches([' ', '\0'])
            .to_owned()
    };
    let version = format!(
        "{} {}.{} ({})",
        text(&info.libraryDescription),
        info.libraryVersion.major,
        info.libraryVersion.minor,
        text(&info.manufacturerID)
    );
    if let Some(a) = active() {
        let _ = a.writer.sender().send(Msg::SdkVersion(version));
    }
}

static HOOKS: Once = Once::new();

fn install_process_hooks() {
    HOOKS.call_once(|| {
        // SAFETY: both handlers are `extern "C"` functions of this library, which is never
        // unloaded (linked with -z nodelete), so they stay valid until exit.
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
            libc::atexit(at_exit);
        }
    });
}

/// In the child after `fork`: only async-signal-safe work (two atomic stores). The child's
/// first recorded call then starts a writer of its own.
extern "C" fn after_fork_in_child() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
    STARTING.store(false, Ordering::Release);
}

/// At `exit()` (from any thread, with or without `C_Finalize`): write every pending row.
extern "C" fn at_exit() {
    let _ = std::panic::catch_unwind(|| flush(Duration::from_secs(5)));
}
