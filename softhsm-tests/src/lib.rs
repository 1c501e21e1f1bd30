//! Test harness: a real SoftHSM2 token in a temporary directory, the built shim, and
//! helpers to read the rows it wrote.
//!
//! The shim reads its configuration once per process, and SoftHSM reads `SOFTHSM2_CONF` at
//! `C_Initialize`, so every workload runs in a child process with its own environment
//! ([`Token::command`]); tests compare what those children print and write.
//!
//! - [`workloads`]: what the `p11-client` binary runs (raw function-list calls, `cryptoki`,
//!   interface negotiation, threads), printing transcripts ([`raw`], [`transcript`]).
//! - [`client`]: running it against SoftHSM directly or through the shim.
//! - [`mock_v3_path`]: a PKCS#11 3.0 vendor module (`mock-v3/`, SoftHSM2 plus interface
//!   negotiation) for the shim's 3.x path, which SoftHSM 2.6 cannot exercise.
//! - [`rows`]: checks on the rows the shim wrote; [`canary`]: the secrets that must not leak.

pub mod canary;
pub mod client;
pub mod raw;
pub mod rows;
pub mod transcript;
pub mod workloads;

use normalizer::row::{parse_line, Row};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// SoftHSM2's module, `SOFTHSM2_MODULE` or the Debian path.
pub fn softhsm_module() -> PathBuf {
    let path = std::env::var_os("SOFTHSM2_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
    assert!(
        path.exists(),
        "SoftHSM2 module {} not found: install softhsm2 (apt-get install softhsm2) or set SOFTHSM2_MODULE",
        path.display()
    );
    path
}

/// The directory cargo writes this profile's artifacts to (`target/debug` or `target/release`).
fn profile_dir() -> PathBuf {
    // Test and bench executables live in `<profile>/deps/`, binaries in `<profile>/`.
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("exe dir");
    if dir.ends_with("deps") {
        dir.parent().expect("profile dir").to_owned()
    } else {
        dir.to_owned()
    }
}

/// Cargo's target directory for this build (the parent of the profile directory).
pub fn target_dir() -> PathBuf {
    profile_dir().parent().expect("target dir").to_owned()
}

/// The built shim, `libhsm_audit_pkcs11.so`, built first if needed (same profile as the tests).
pub fn shim_path() -> &'static Path {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| match std::env::var_os("HSM_AUDIT_SHIM") {
        Some(p) => PathBuf::from(p),
        None => build_cdylib("pkcs11-shim", "libhsm_audit_pkcs11.so"),
    })
}

/// The mock PKCS#11 3.0 vendor, `libmock_pkcs11_v3.so` (`softhsm-tests/mock-v3/`: SoftHSM2
/// plus interface negotiation), built first if needed (same profile as the tests).
pub fn mock_v3_path() -> &'static Path {
    static MOCK: OnceLock<PathBuf> = OnceLock::new();
    MOCK.get_or_init(|| build_cdylib("mock-pkcs11-v3", "libmock_pkcs11_v3.so"))
}

/// Builds `package`'s cdylib and returns the path of `file` in the profile directory.
fn build_cdylib(package: &str, file: &str) -> PathBuf {
    // A cdylib is not built for a dependent crate, so build it here; cargo makes this a
    // no-op when it is current.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", package]);
    // Cargo describes the running test's package to it (CARGO_MANIFEST_DIR, CARGO_PKG_NAME…);
    // ring's build script tracks some of those, so passing them on would rebuild ring and
    // everything above it here, and again on the next plain `cargo build`.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(is_package_var) {
            cmd.env_remove(key);
        }
    }
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("run cargo build -p {package}: {e}"));
    assert!(status.success(), "cargo build -p {package} failed");
    let path = profile_dir().join(file);
    assert!(path.exists(), "{} missing after build", path.display());
    path
}

/// Whether `key` is one of the variables cargo sets to describe the package being run.
fn is_package_var(key: &str) -> bool {
    [
        "CARGO_MANIFEST_",
        "CARGO_PKG_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
    ]
    .iter()
    .any(|prefix| key.starts_with(prefix))
        || key == "CARGO_PRIMARY_PACKAGE"
        || key == "CARGO_TARGET_TMPDIR"
}

/// A binary of this crate (built by cargo alongside the tests).
pub fn bin_path(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(
        path.exists(),
        "{} not built (cargo builds bins for integration tests)",
        path.display()
    );
    path
}

/// A SoftHSM2 token of its own, in a temporary directory, with an output directory for rows.
pub struct Token {
    dir: tempfile::TempDir,
    /// Token label.
    pub label: String,
    /// User PIN.
    pub user_pin: String,
    /// Security officer PIN.
    pub so_pin: String,
    /// The seed of the random canaries the token was made with, passed to the workloads
    /// ([`canary::SEED_ENV`]); `None` for the fixed ones.
    pub canary_seed: Option<u64>,
}

impl Token {
    /// Creates and initialises a token with the given label and PINs.
    pub fn new(label: &str, user_pin: &str, so_pin: &str) -> Token {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("tokens")).expect("token dir");
        std::fs::create_dir_all(dir.path().join("out")).expect("out dir");
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .expect("softhsm2.conf");
        // An empty config file, so a host's /etc/hsm-audit/hsm-audit.toml never applies.
        std::fs::write(dir.path().join("hsm-audit.toml"), "").expect("hsm-audit.toml");
        let token = Token {
            dir,
            label: label.into(),
            user_pin: user_pin.into(),
            so_pin: so_pin.into(),
            canary_seed: None,
        };
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", token.softhsm_conf())
            .args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                user_pin,
                "--so-pin",
                so_pin,
            ])
            .output()
            .expect("softhsm2-util not found: install softhsm2");
        assert!(
            out.status.success(),
            "softhsm2-util: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        token
    }

    /// A token labelled and protected with the canary values the workloads expect.
    pub fn canary() -> Token {
        Token::new(canary::TOKEN_LABEL, canary::USER_PIN, canary::SO_PIN)
    }

    /// A token made with the random canaries of `seed` ([`canary::Canaries::from_seed`]);
    /// its [`Token::command`]s hand the seed to the workloads, which derive the same set.
    pub fn random_canary(seed: u64) -> Token {
        let c = canary::Canaries::from_seed(seed);
        let mut token = Token::new(c.token_label, c.user_pin, c.so_pin);
        token.canary_seed = Some(seed);
        token
    }

    /// A token with ordinary test values.
    pub fn default_test() -> Token {
        Token::new("hsm-audit-test", "1234", "12345678")
    }

    /// The token's `SOFTHSM2_CONF`.
    pub fn softhsm_conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// Where the shim writes rows for this token's workloads.
    pub fn out_dir(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// The temporary directory (for extra files a test needs).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A command with this token's environment: `SOFTHSM2_CONF`, and the shim pointed at
    /// SoftHSM with rows going to [`Token::out_dir`]. Inherited `HSM_AUDIT_*` variables
    /// are cleared so the developer's environment cannot leak in.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("HSM_AUDIT_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("SOFTHSM2_CONF", self.softhsm_conf())
            .env("HSM_AUDIT_CONFIG", self.dir.path().join("hsm-audit.toml"))
            .env("HSM_AUDIT_MODULE", softhsm_module())
            .env("HSM_AUDIT_OUTPUT", self.out_dir());
        if let Some(seed) = self.canary_seed {
            cmd.env(canary::SEED_ENV, seed.to_string());
        }
        cmd
    }
}

/// Every row in `dir`'s row files, in file then line order.
pub fn read_rows(dir: &Path) -> Vec<Row<'static>> {
    let mut rows = Vec::new();
    for file in normalizer::sink::jsonl::row_files(dir).unwrap_or_default() {
        let text = std::fs::read_to_string(&file).expect("read row file");
        for (i, line) in text.lines().enumerate() {
            let row = parse_line(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}: {line}", file.display(), i + 1));
            rows.push(row.into_owned());
        }
    }
    rows
}

/// Every byte the shim wrote under `dir` (all files, recursively), for secret scans.
pub fn all_output_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.push((p, bytes));
            }
        }
    }
    out
}

/// What a `p11-stress` run printed: `key value` lines, and its standard error.
pub struct Report {
    /// Each `key value` line of standard output.
    pub values: std::collections::HashMap<String, String>,
    /// Standard error, for diagnostics.
    pub stderr: String,
}

impl Report {
    /// A numeric value the run printed.
    pub fn num(&self, key: &str) -> u64 {
        let v = self
            .values
            .get(key)
            .unwrap_or_else(|| panic!("no `{key}` in the report; stderr: {}", self.stderr));
        v.parse()
            .unwrap_or_else(|_| panic!("`{key}` is {v:?}, not a number"))
    }
}

/// Runs `cmd` to completion, asserting it succeeded, and parses what it printed.
pub fn run_report(cmd: &mut Command) -> Report {
    let out = cmd.output().expect("run workload");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {stderr}",
        out.status
    );
    let values = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Report { values, stderr }
}

/// `p11-stress` with a token's environment, calling the shim.
pub fn stress(token: &Token) -> Command {
    let mut cmd = token.command(bin_path("p11-stress"));
    cmd.env("P11_MODULE", shim_path());
    cmd
}

/// Rows grouped by `WriterId`, in file order.
pub fn by_writer(rows: &[Row<'static>]) -> std::collections::BTreeMap<String, Vec<Row<'static>>> {
    let mut map = std::collections::BTreeMap::<String, Vec<Row<'static>>>::new();
    for row in rows {
        map.entry(row.writer_id.to_string())
            .or_default()
            .push(row.clone());
    }
    map
}

/// Checks one writer's stream: `SequenceNo` strictly increasing from 1, and the numbers
/// missing add up exactly to the `LostRows` its gap rows report. Returns that count.
pub fn check_stream(rows: &[Row<'static>]) -> u64 {
    let mut expected = 1;
    let mut missing = 0;
    for row in rows {
        assert!(
            row.sequence_no >= expected,
            "writer {}: SequenceNo {} after {}",
            row.writer_id,
            row.sequence_no,
            expected - 1
        );
        missing += row.sequence_no - expected;
        expected = row.sequence_no + 1;
    }
    let reported: u64 = rows.iter().map(|r| r.lost_rows).sum();
    assert_eq!(
        missing, reported,
        "writer {}: missing SequenceNo values vs LostRows",
        rows[0].writer_id
    );
    missing
}

/// Rows of calls the application made (refused ones included), not the shim's own.
pub fn application_rows(rows: &[Row<'static>]) -> usize {
    rows.iter()
        .filter(|r| r.call_origin == "application" || r.call_origin == "refused")
        .count()
}

/// Rows in `dir` after the writing process was killed: a final line without its newline (a
/// write cut short by `kill -9`) is left out and counted. Returns the rows and that count.
pub fn read_rows_after_kill(dir: &Path) -> (Vec<Row<'static>>, usize) {
    let mut rows = Vec::new();
    let mut fragments = 0;
    for file in normalizer::sink::jsonl::row_files(dir).unwrap_or_default() {
        let text = std::fs::read_to_string(&file).expect("read row file");
        let complete = match text.rfind('\n') {
            Some(end) => &text[..=end],
            None => "",
        };
        if complete.len() < text.len() {
            fragments += 1;
        }
        for line in complete.lines() {
            let row =
                parse_line(line).unwrap_or_else(|e| panic!("{}: {e}: {line}", file.display()));
            rows.push(row.into_owned());
        }
    }
    (rows, fragments)
}
