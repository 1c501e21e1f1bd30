//! What runs in each child process: one module, one operation, one measurement.
//!
//! Each measurement runs in a fresh process so that every module gets its own SoftHSM
//! instance, the shim reads its configuration and starts its writer exactly as it would in
//! an application, and nothing (a writer's backlog, a spy's open log) leaks from one
//! module's measurement into the next.

use crate::p11::{call, check, Module, KEY_LABEL};
use cryptoki_sys::*;
use std::ffi::c_void;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// The workload's operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Op {
    /// `C_GenerateRandom`, 32 bytes.
    Random,
    /// `C_DigestInit` (SHA-256) + `C_Digest` of 64 bytes.
    Digest,
    /// `C_SignInit` (ECDSA) + `C_Sign` of 32 bytes with a P-256 key.
    Sign,
    /// `C_FindObjectsInit` (by label) + `C_FindObjects` + `C_FindObjectsFinal`.
    Find,
    /// `C_GetAttributeValue(CKA_CLASS)`.
    Getattr,
    /// `C_Login` + `C_Logout` (user).
    Login,
}

impl Op {
    pub const ALL: [Op; 6] = [
        Op::Random,
        Op::Digest,
        Op::Sign,
        Op::Find,
        Op::Getattr,
        Op::Login,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Random => "random",
            Op::Digest => "digest",
            Op::Sign => "sign",
            Op::Find => "find",
            Op::Getattr => "getattr",
            Op::Login => "login",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Op::Random => "C_GenerateRandom 32 B",
            Op::Digest => "SHA-256 digest of 64 B (init + digest)",
            Op::Sign => "ECDSA P-256 sign of 32 B (init + sign)",
            Op::Find => "find objects by label (init + find + final)",
            Op::Getattr => "C_GetAttributeValue(CKA_CLASS)",
            Op::Login => "C_Login + C_Logout",
        }
    }

    /// PKCS#11 calls (so rows, through the shim) per operation.
    pub fn calls(self) -> u64 {
        match self {
            Op::Random | Op::Getattr => 1,
            Op::Digest | Op::Sign | Op::Login => 2,
            Op::Find => 3,
        }
    }
}

/// One thread's counter, on its own cache line so threads never share one.
#[repr(align(128))]
#[derive(Default)]
struct Counter(AtomicU64);

/// What the parent reads back (one JSON line on stdout).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    /// Operations completed inside the timed window.
    pub window_ops: u64,
    pub window_secs: f64,
    /// Time `C_Finalize` took: for the shim, writing every pending row.
    pub finalize_secs: f64,
    /// Operations completed in all, warm-up included.
    pub total_ops: u64,
    /// Operations that returned something other than `CKR_OK`.
    pub errors: u64,
    /// `window_ops / (window_secs + finalize_secs)`.
    pub rate: f64,
    /// CPU time (user + system, all threads: the shim's writer included) the process used
    /// during the window, per operation, microseconds. Unlike `rate`, this hardly depends
    /// on what else the machine runs.
    pub cpu_us_per_op: f64,
}

/// User + system CPU time of the whole process, seconds.
fn process_cpu_secs() -> f64 {
    // SAFETY: getrusage writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(u.ru_utime) + secs(u.ru_stime)
}

struct Prepared {
    module: Module,
    sessions: Vec<CK_SESSION_HANDLE>,
    private_key: CK_OBJECT_HANDLE,
    public_key: CK_OBJECT_HANDLE,
}

fn prepare(module: &Path, threads: usize, pin: &str, login: bool) -> Result<Prepared, String> {
    let module = Module::load(module)?;
    module.initialize()?;
    let slot = module.slot()?;
    let sessions = (0..threads)
        .map(|_| module.open_session(slot))
        .collect::<Result<Vec<_>, _>>()?;
    let (mut private_key, mut public_key) = (0, 0);
    if login {
        check("C_Login", module.login(sessions[0], pin.as_bytes()))?;
        private_key = *module
            .find_by_label(sessions[0], Some(CKO_PRIVATE_KEY))
            .first()
            .ok_or("no private key labelled bench-key: run setup")?;
        public_key = *module
            .find_by_label(sessions[0], Some(CKO_PUBLIC_KEY))
            .first()
            .ok_or("no public key labelled bench-key")?;
    }
    Ok(Prepared {
        module,
        sessions,
        private_key,
        public_key,
    })
}

/// Creates the key pair every worker uses (run once per token, against SoftHSM directly).
pub fn setup(module: &Path, pin: &str) -> Result<(), String> {
    let p = prepare(module, 1, pin, false)?;
    check("C_Login", p.module.login(p.sessions[0], pin.as_bytes()))?;
    p.module.generate_key(p.sessions[0])?;
    p.module.finalize()
}

/// Serialises login/logout pairs across threads: login state is per token, so two threads
/// logging in and out at once would fail each other's calls, and the modules would then be
/// compared on different mixes of successes and errors.
static LOGIN_PAIR: Mutex<()> = Mutex::new(());

/// Runs `op` on one session until `stop`; returns (operations, errors).
fn spin(
    p: &Prepared,
    op: Op,
    session: CK_SESSION_HANDLE,
    pin: &[u8],
    stop: &AtomicBool,
    counter: &Counter,
) -> u64 {
    let f = p.module.fns();
    let mut n = 0u64;
    let mut errors = 0u64;
    let mut data = [0x5au8; 64];
    let mut out = [0u8; 128];
    let mut done = |ok: bool, n: &mut u64| {
        *n += 1;
        errors += u64::from(!ok);
        counter.0.store(*n, Ordering::Relaxed);
    };
    macro_rules! p11 {
        ($name:ident ( $($arg:expr),* )) => {
            // SAFETY: valid session, buffers and lengths built above.
            unsafe { (f.$name.expect(stringify!($name)))($($arg),*) }
        };
    }
    while !stop.load(Ordering::Relaxed) {
        let ok = match op {
            Op::Random => p11!(C_GenerateRandom(session, out.as_mut_ptr(), 32)) == CKR_OK,
            Op::Digest => {
                let mut mech = CK_MECHANISM {
                    mechanism: CKM_SHA256,
                    pParameter: std::ptr::null_mut(),
                    ulParameterLen: 0,
                };
                let mut len = out.len() as CK_ULONG;
                p11!(C_DigestInit(session, &mut mech)) == CKR_OK
                    && p11!(C_Digest(
                        session,
                        data.as_mut_ptr(),
                        64,
                        out.as_mut_ptr(),
                        &mut len
                    )) == CKR_OK
            }
            Op::Sign => {
                let mut mech = CK_MECHANISM {
                    mechanism: CKM_ECDSA,
                    pParameter: std::ptr::null_mut(),
                    ulParameterLen: 0,
                };
                let mut len = out.len() as CK_ULONG;
                p11!(C_SignInit(session, &mut mech, p.private_key)) == CKR_OK
                    && p11!(C_Sign(
                        session,
                        data.as_mut_ptr(),
                        32,
                        out.as_mut_ptr(),
                        &mut len
                    )) == CKR_OK
            }
            Op::Find => {
                let mut template = CK_ATTRIBUTE {
                    type_: CKA_LABEL,
                    pValue: KEY_LABEL.as_ptr() as *mut c_void,
                    ulValueLen: KEY_LABEL.len() as CK_ULONG,
                };
                let mut found = [0 as CK_OBJECT_HANDLE; 4];
                let mut count: CK_ULONG = 0;
                let a = p11!(C_FindObjectsInit(session, &mut template, 1));
                let b = p11!(C_FindObjects(session, found.as_mut_ptr(), 4, &mut count));
                let c = p11!(C_FindObjectsFinal(session));
                a == CKR_OK && b == CKR_OK && c == CKR_OK && count == 2
            }
            Op::Getattr => {
                let mut class: CK_ULONG = 0;
                let mut template = CK_ATTRIBUTE {
                    type_: CKA_CLASS,
                    pValue: &mut class as *mut CK_ULONG as *mut c_void,
                    ulValueLen: std::mem::size_of::<CK_ULONG>() as CK_ULONG,
                };
                p11!(C_GetAttributeValue(session, p.public_key, &mut template, 1)) == CKR_OK
                    && class == CKO_PUBLIC_KEY
            }
            Op::Login => {
                let _pair = LOGIN_PAIR.lock().unwrap_or_else(|e| e.into_inner());
                let a = p11!(C_Login(
                    session,
                    CKU_USER,
                    pin.as_ptr() as *mut u8,
                    pin.len() as CK_ULONG
                ));
                let b = p11!(C_Logout(session));
                a == CKR_OK && b == CKR_OK
            }
        };
        done(ok, &mut n);
    }
    errors
}

/// Runs `op` on `threads` threads: warm-up, then a timed window, then `C_Finalize`.
pub fn throughput(
    module: &Path,
    op: Op,
    threads: usize,
    warmup: f64,
    secs: f64,
    pin: &str,
) -> Result<Outcome, String> {
    let p = prepare(module, threads, pin, op != Op::Login)?;
    let stop = AtomicBool::new(false);
    let counters: Vec<Counter> = (0..threads).map(|_| Counter::default()).collect();
    let barrier = Barrier::new(threads + 1);
    let sum = |c: &[Counter]| c.iter().map(|c| c.0.load(Ordering::Relaxed)).sum::<u64>();
    let (window_ops, window_secs, cpu_secs, errors) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (p, stop, counter, barrier) = (&p, &stop, &counters[i], &barrier);
                s.spawn(move || {
                    barrier.wait();
                    spin(p, op, p.sessions[i], pin.as_bytes(), stop, counter)
                })
            })
            .collect();
        barrier.wait();
        std::thread::sleep(Duration::from_secs_f64(warmup));
        let (c1, t1, cpu1) = (sum(&counters), Instant::now(), process_cpu_secs());
        std::thread::sleep(Duration::from_secs_f64(secs));
        let (c2, t2, cpu2) = (sum(&counters), Instant::now(), process_cpu_secs());
        stop.store(true, Ordering::Relaxed);
        let errors: u64 = handles
            .into_iter()
            .map(|h| h.join().expect("worker thread"))
            .sum();
        (c2 - c1, (t2 - t1).as_secs_f64(), cpu2 - cpu1, errors)
    });
    let total_ops = sum(&counters);
    let t = Instant::now();
    p.module.finalize()?;
    let finalize_secs = t.elapsed().as_secs_f64();
    Ok(Outcome {
        window_ops,
        window_secs,
        finalize_secs,
        total_ops,
        errors,
        rate: window_ops as f64 / (window_secs + finalize_secs),
        cpu_us_per_op: cpu_secs * 1e6 / window_ops.max(1) as f64,
    })
}

/// Resident set size of this process, kB.
fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct MemoryOutcome {
    pub calls: u64,
    pub secs: f64,
    /// RSS after initialisation and 1000 warm-up calls (the shim's writer is running).
    pub base_rss_kb: u64,
    /// Highest RSS seen during the burst (sampled every 2 ms) and at its end.
    pub peak_rss_kb: u64,
}

/// Today's row file name for this process, as the shim's JSON Lines sink will choose it.
fn todays_row_file(dir: &Path) -> PathBuf {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64;
    let mut t = String::new();
    normalizer::transform::format_time(now, &mut t);
    dir.join(normalizer::sink::jsonl::JsonlSink::file_name(
        &t[..10],
        std::process::id(),
        1,
    ))
}

/// A burst of `calls` `C_GenerateRandom` calls on one thread, watching resident memory.
/// With `stall_ms`, the shim's row file is a FIFO nobody reads for that long, then drained:
/// a disk that stops completely, then comes back.
pub fn memory(
    module: &Path,
    calls: u64,
    stall_ms: u64,
    pin: &str,
) -> Result<MemoryOutcome, String> {
    let mut reader = None;
    if stall_ms > 0 {
        let dir =
            PathBuf::from(std::env::var_os("HSM_AUDIT_OUTPUT").ok_or("HSM_AUDIT_OUTPUT unset")?);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let fifo = todays_row_file(&dir);
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path.
        if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
            return Err(format!(
                "mkfifo {}: {}",
                fifo.display(),
                std::io::Error::last_os_error()
            ));
        }
        reader = Some(std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(stall_ms));
            let mut f = std::fs::File::open(&fifo).expect("open fifo");
            let mut buf = vec![0u8; 1 << 20];
            while matches!(f.read(&mut buf), Ok(n) if n > 0) {}
        }));
    }
    let p = prepare(module, 1, pin, false)?;
    let s = p.sessions[0];
    let mut out = [0u8; 32];
    let mut random = || {
        let rv = call!(p.module, C_GenerateRandom(s, out.as_mut_ptr(), 32));
        assert_eq!(rv, CKR_OK);
    };
    for _ in 0..1000 {
        random();
    }
    let base_rss_kb = rss_kb();
    let peak = Arc::new(AtomicU64::new(base_rss_kb));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kb(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let t = Instant::now();
    for _ in 0..calls {
        random();
    }
    let secs = t.elapsed().as_secs_f64();
    peak.fetch_max(rss_kb(), Ordering::Relaxed);
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    p.module.finalize()?;
    // The reader is not joined: it sees end-of-file only when the shim closes its row file,
    // which it does at exit.
    drop(reader);
    Ok(MemoryOutcome {
        calls,
        secs,
        base_rss_kb,
        peak_rss_kb: peak.load(Ordering::Relaxed),
    })
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct LatencyOutcome {
    pub calls: u64,
    pub secs: f64,
    /// Polls that found new rows.
    pub polls: u64,
    /// Per poll: age of the oldest row that appeared since the previous poll, ms.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// `TimeGenerated` (`2025-11-21T22:03:23.123456Z`) as microseconds since the Unix epoch.
fn parse_time_us(s: &str) -> Option<i64> {
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + n(11..13)? * 3600 + n(14..16)? * 60 + n(17..19)?;
    Some(secs * 1_000_000 + n(20..26)?)
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as i64
}

/// Watches the shim's row files: every 5 ms, reads the first row written since the last
/// look and records how old its call is. That row is the oldest newly visible one, so its
/// age bounds how long any row of that interval took to reach the file.
struct Tail {
    dir: PathBuf,
    file: Option<(PathBuf, std::fs::File)>,
    /// Offset just past the last complete line seen.
    boundary: u64,
    ages_ms: Vec<f64>,
}

impl Tail {
    fn first_line_after(file: &mut std::fs::File, at: u64) -> Option<String> {
        let mut buf = vec![0u8; 4096];
        file.seek(SeekFrom::Start(at)).ok()?;
        let n = file.read(&mut buf).ok()?;
        let end = buf[..n].iter().position(|&b| b == b'\n')?;
        String::from_utf8(buf[..end].to_vec()).ok()
    }

    fn last_boundary(file: &mut std::fs::File, size: u64) -> u64 {
        let from = size.saturating_sub(8192);
        let mut buf = vec![0u8; (size - from) as usize];
        if file.seek(SeekFrom::Start(from)).is_err() || file.read_exact(&mut buf).is_err() {
            return from;
        }
        buf.iter()
            .rposition(|&b| b == b'\n')
            .map_or(from, |i| from + i as u64 + 1)
    }

    /// Examines the current file from `boundary`.
    fn look(&mut self, now: i64) {
        let Some((_, file)) = self.file.as_mut() else {
            return;
        };
        let size = file.metadata().map_or(0, |m| m.len());
        if size <= self.boundary {
            return;
        }
        if let Some(line) = Self::first_line_after(file, self.boundary) {
            if let Some(t) = line
                .find("\"TimeGenerated\":\"")
                .and_then(|i| parse_time_us(&line[i + 17..]))
            {
                self.ages_ms.push((now - t) as f64 / 1000.0);
            }
        }
        self.boundary = Self::last_boundary(file, size);
    }

    fn poll(&mut self) {
        let now = now_us();
        self.look(now);
        // Rotation: finish the old part above, then follow the newest one.
        let newest = normalizer::sink::jsonl::row_files(&self.dir)
            .unwrap_or_default()
            .into_iter()
            .max_by_key(|p| (p.to_string_lossy().len(), p.clone()));
        if let Some(newest) = newest {
            if self.file.as_ref().is_none_or(|(p, _)| *p != newest) {
                if let Ok(mut f) = std::fs::File::open(&newest) {
                    let first = self.file.is_none();
                    self.boundary = 0;
                    if first {
                        // Rows written before the watcher started say nothing about delay.
                        let size = f.metadata().map_or(0, |m| m.len());
                        self.boundary = Self::last_boundary(&mut f, size);
                    }
                    self.file = Some((newest, f));
                    if !first {
                        self.look(now);
                    }
                }
            }
        }
    }
}

/// Steady load for `secs` (at most `rate` calls per second, 0 = as fast as one thread can)
/// while a second thread watches when rows reach the file.
pub fn latency(module: &Path, secs: f64, rate: u64, pin: &str) -> Result<LatencyOutcome, String> {
    let dir = PathBuf::from(std::env::var_os("HSM_AUDIT_OUTPUT").ok_or("HSM_AUDIT_OUTPUT unset")?);
    let p = prepare(module, 1, pin, false)?;
    let s = p.sessions[0];
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut tail = Tail {
                dir,
                file: None,
                boundary: 0,
                ages_ms: Vec::new(),
            };
            while !done.load(Ordering::Relaxed) {
                tail.poll();
                std::thread::sleep(Duration::from_millis(5));
            }
            tail.ages_ms
        })
    };
    let mut out = [0u8; 32];
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        let rv = call!(p.module, C_GenerateRandom(s, out.as_mut_ptr(), 32));
        assert_eq!(rv, CKR_OK);
        calls += 1;
        if rate > 0 {
            let due = Duration::from_secs_f64(calls as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    // Let the last interval's rows arrive before the watcher stops.
    std::thread::sleep(Duration::from_millis(1500));
    done.store(true, Ordering::Relaxed);
    let mut ages = watcher.join().map_err(|_| "watcher panicked")?;
    p.module.finalize()?;
    ages.sort_by(f64::total_cmp);
    let q = |f: f64| {
        ages.get(((ages.len() as f64 - 1.0) * f).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok(LatencyOutcome {
        calls,
        secs,
        polls: ages.len() as u64,
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        max_ms: ages.last().copied().unwrap_or(f64::NAN),
    })
}

#[cfg(test)]
mod tests {
    use super::parse_time_us;

    #[test]
    fn parses_time_generated() {
        assert_eq!(
            parse_time_us("1970-01-01T00:00:01.000002Z"),
            Some(1_000_002)
        );
        assert_eq!(
            parse_time_us("2025-11-21T22:03:23.123456Z"),
            Some(1_763_762_603_123_456)
        );
    }
}
