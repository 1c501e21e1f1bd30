//! `p11-bench`: the same PKCS#11 workload against SoftHSM2 directly, through the hsm-audit
//! shim (every row written, default configuration) and through OpenSC's pkcs11-spy (logging
//! to a file), interleaved round by round so that machine drift cancels out.
//!
//! Every measurement is one child process (`p11-bench worker …`) loading one module; the
//! parent runs, per round, each (operation, threads) for every module back to back, in an
//! order rotated each round. Ratios are taken within a round, then summarised over rounds.
//! `scripts/bench.sh` is the one command that builds everything and runs this.

mod p11;
mod report;
mod worker;

use clap::{Args, Parser, Subcommand};
use report::Line;
use softhsm_tests::{shim_path, softhsm_module, Token};
use std::path::{Path, PathBuf};
use std::process::Command;
use worker::Op;

#[derive(Parser)]
#[command(
    name = "p11-bench",
    about = "PKCS#11 throughput: SoftHSM2 direct vs hsm-audit shim vs pkcs11-spy"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args)]
struct RunArgs {
    /// Rounds; each measures every module once per (operation, threads).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Timed window of each measurement, seconds.
    #[arg(long, default_value_t = 2.0)]
    secs: f64,
    /// Warm-up before each window, seconds.
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Thread counts.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Operations.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Op::ALL.to_vec())]
    ops: Vec<Op>,
    /// Modules to compare with SoftHSM2 directly.
    #[arg(long, value_delimiter = ',', default_value = "shim,spy")]
    compare: Vec<String>,
    /// Calls in the memory burst (0 skips the memory measurement).
    #[arg(long, default_value_t = 10_000_000)]
    memory_calls: u64,
    /// Seconds of steady load for the latency measurement (0 skips it).
    #[arg(long, default_value_t = 10.0)]
    latency_secs: f64,
    /// Where results.md, results.json and ratios.svg go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// pkcs11-spy module.
    #[arg(long, default_value = "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so")]
    spy: PathBuf,
}

#[derive(Subcommand)]
enum Cmd {
    /// (internal) One throughput measurement; prints one JSON line.
    Worker {
        #[arg(long)]
        module: PathBuf,
        #[arg(long, value_enum)]
        op: Op,
        #[arg(long)]
        threads: usize,
        #[arg(long)]
        warmup: f64,
        #[arg(long)]
        secs: f64,
        #[arg(long)]
        pin: String,
    },
    /// (internal) Creates the key pair on the token.
    Setup {
        #[arg(long)]
        module: PathBuf,
        #[arg(long)]
        pin: String,
    },
    /// (internal) A burst of calls, watching resident memory.
    Memory {
        #[arg(long)]
        module: PathBuf,
        #[arg(long)]
        calls: u64,
        #[arg(long, default_value_t = 0)]
        stall_ms: u64,
        #[arg(long)]
        pin: String,
    },
    /// (internal) Steady load, watching how long rows take to reach the file.
    Latency {
        #[arg(long)]
        module: PathBuf,
        #[arg(long)]
        secs: f64,
        #[arg(long, default_value_t = 0)]
        rate: u64,
        #[arg(long)]
        pin: String,
    },
}

fn print_json<T: serde::Serialize>(r: Result<T, String>) {
    match r {
        Ok(v) => println!("{}", serde_json::to_string(&v).expect("serialise")),
        Err(e) => {
            eprintln!("p11-bench worker: {e}");
            std::process::exit(1);
        }
    }
}

fn main() {
    let cli = Cli::parse();
    match cli.cmd {
        Some(Cmd::Worker {
            module,
            op,
            threads,
            warmup,
            secs,
            pin,
        }) => print_json(worker::throughput(&module, op, threads, warmup, secs, &pin)),
        Some(Cmd::Setup { module, pin }) => print_json(worker::setup(&module, &pin)),
        Some(Cmd::Memory {
            module,
            calls,
            stall_ms,
            pin,
        }) => print_json(worker::memory(&module, calls, stall_ms, &pin)),
        Some(Cmd::Latency {
            module,
            secs,
            rate,
            pin,
        }) => print_json(worker::latency(&module, secs, rate, &pin)),
        None => {
            if let Err(e) = run(&cli.run) {
                eprintln!("p11-bench: {e}");
                std::process::exit(1);
            }
        }
    }
}

/// A module under test, and the environment that makes it forward to SoftHSM2.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Direct,
    Shim,
    Spy,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Shim => "shim",
            Kind::Spy => "spy",
        }
    }
}

struct Bench<'a> {
    token: Token,
    exe: PathBuf,
    args: &'a RunArgs,
    /// Scratch directory per measurement (row files, spy log), removed after it.
    scratch: PathBuf,
}

impl Bench<'_> {
    fn module(&self, kind: Kind) -> PathBuf {
        match kind {
            Kind::Direct => softhsm_module(),
            Kind::Shim => shim_path().to_owned(),
            Kind::Spy => self.args.spy.clone(),
        }
    }

    /// Runs `p11-bench <sub> …` against `kind` and parses its JSON line.
    fn child<T: serde::de::DeserializeOwned>(
        &self,
        kind: Kind,
        sub: &[&str],
    ) -> Result<(T, u64), String> {
        let _ = std::fs::remove_dir_all(&self.scratch);
        std::fs::create_dir_all(&self.scratch).map_err(|e| e.to_string())?;
        let mut cmd: Command = self.token.command(&self.exe);
        cmd.env_remove("PKCS11SPY").env_remove("PKCS11SPY_OUTPUT");
        cmd.env("HSM_AUDIT_OUTPUT", self.scratch.join("rows"));
        if kind == Kind::Spy {
            cmd.env("PKCS11SPY", softhsm_module())
                .env("PKCS11SPY_OUTPUT", self.scratch.join("spy.log"));
        }
        cmd.args(sub)
            .arg("--module")
            .arg(self.module(kind))
            .args(["--pin", &self.token.user_pin]);
        let out = cmd.output().map_err(|e| format!("run worker: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{} worker {:?} failed: {}",
                kind.name(),
                sub,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().ok_or("worker printed nothing")?;
        let value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
        let rows = count_rows(&self.scratch.join("rows"));
        let _ = std::fs::remove_dir_all(&self.scratch);
        Ok((value, rows))
    }
}

/// Lines in the row files under `dir`.
fn count_rows(dir: &Path) -> u64 {
    let mut n = 0;
    for f in normalizer::sink::jsonl::row_files(dir).unwrap_or_default() {
        if let Ok(bytes) = std::fs::read(&f) {
            n += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        }
    }
    n
}

fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let mem = read("/proc/meminfo")
        .lines()
        .next()
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(String::new(), |kb| {
            format!("{:.0} GiB", kb as f64 / 1048576.0)
        });
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let version = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    format!(
        "{cpu}, {cores} cores, {mem}; Linux {}; SoftHSM2 {}; OpenSC {}",
        read("/proc/sys/kernel/osrelease").trim(),
        version("softhsm2-util", &["--version"]),
        version("dpkg-query", &["-W", "-f=${Version}", "opensc"]),
    )
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn run(args: &RunArgs) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut compare = Vec::new();
    for c in &args.compare {
        compare.push(match c.as_str() {
            "shim" => Kind::Shim,
            "spy" => Kind::Spy,
            other => return Err(format!("--compare: unknown module {other}")),
        });
    }
    if compare.contains(&Kind::Spy) && !args.spy.exists() {
        return Err(format!(
            "pkcs11-spy not found at {} (apt-get install opensc, or pass --spy)",
            args.spy.display()
        ));
    }
    let token = Token::default_test();
    let scratch = token.path().join("scratch");
    let bench = Bench {
        token,
        exe,
        args,
        scratch,
    };
    let machine = machine();
    let load_start = loadavg();
    eprintln!("p11-bench on {machine}; load average {load_start}");
    eprintln!("shim: {}", shim_path().display());
    bench.child::<()>(Kind::Direct, &["setup"])?;

    let mut modules = vec![Kind::Direct];
    modules.extend(compare.iter().copied());
    let mut lines: Vec<Line> = Vec::new();
    for &threads in &args.threads {
        for &op in &args.ops {
            lines.push(Line {
                op: op.name(),
                threads,
                direct: vec![],
                shim: vec![],
                spy: vec![],
                cpu_direct: vec![],
                cpu_shim: vec![],
                cpu_spy: vec![],
            });
        }
    }
    let started = std::time::Instant::now();
    for round in 0..args.rounds {
        for line in lines.iter_mut() {
            let op = Op::ALL
                .iter()
                .copied()
                .find(|o| o.name() == line.op)
                .expect("op");
            // Rotate the order each round so no module always runs first (or last).
            let mut order = modules.clone();
            let n = order.len();
            order.rotate_left(round % n);
            for kind in order {
                let threads = line.threads.to_string();
                let (warmup, secs) = (args.warmup.to_string(), args.secs.to_string());
                let (o, rows): (worker::Outcome, u64) = bench.child(
                    kind,
                    &[
                        "worker",
                        "--op",
                        op.name(),
                        "--threads",
                        &threads,
                        "--warmup",
                        &warmup,
                        "--secs",
                        &secs,
                    ],
                )?;
                if o.errors > 0 {
                    return Err(format!(
                        "{} {} x{}: {} operations failed",
                        kind.name(),
                        op.name(),
                        threads,
                        o.errors
                    ));
                }
                if kind == Kind::Shim && rows < o.total_ops * op.calls() {
                    return Err(format!(
                        "shim {} x{}: {} rows on disk for {} calls",
                        op.name(),
                        threads,
                        rows,
                        o.total_ops * op.calls()
                    ));
                }
                eprintln!(
                    "round {}/{} {:>7} x{} {:>6}: {:>9.0} ops/s, {:.2} CPU µs/op (finalize {:.1} ms{})",
                    round + 1,
                    args.rounds,
                    op.name(),
                    threads,
                    kind.name(),
                    o.rate,
                    o.cpu_us_per_op,
                    o.finalize_secs * 1000.0,
                    if kind == Kind::Shim {
                        format!(", {rows} rows")
                    } else {
                        String::new()
                    }
                );
                let (rates, cpu) = match kind {
                    Kind::Direct => (&mut line.direct, &mut line.cpu_direct),
                    Kind::Shim => (&mut line.shim, &mut line.cpu_shim),
                    Kind::Spy => (&mut line.spy, &mut line.cpu_spy),
                };
                rates.push(o.rate);
                cpu.push(o.cpu_us_per_op);
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();

    let memory = if args.memory_calls > 0 && compare.contains(&Kind::Shim) {
        let calls = args.memory_calls.to_string();
        let mut rows = Vec::new();
        for (kind, stall) in [(Kind::Direct, 0), (Kind::Shim, 0), (Kind::Shim, 3000)] {
            let stall_s = stall.to_string();
            let (m, written): (worker::MemoryOutcome, u64) =
                bench.child(kind, &["memory", "--calls", &calls, "--stall-ms", &stall_s])?;
            eprintln!(
                "memory {} stall {stall} ms: {m:?}, {written} rows",
                kind.name()
            );
            rows.push((kind, stall, m, written));
        }
        Some(rows)
    } else {
        None
    };

    let latency = if args.latency_secs > 0.0 && compare.contains(&Kind::Shim) {
        let secs = args.latency_secs.to_string();
        let mut rows = Vec::new();
        for rate in [0u64, 10_000] {
            let rate_s = rate.to_string();
            let (l, written): (worker::LatencyOutcome, u64) =
                bench.child(Kind::Shim, &["latency", "--secs", &secs, "--rate", &rate_s])?;
            eprintln!("latency rate {rate}: {l:?}, {written} rows");
            rows.push((rate, l));
        }
        Some(rows)
    } else {
        None
    };

    let load_end = loadavg();
    let mut md = String::new();
    md.push_str(&format!(
        "Machine: {machine}. Load average at start {load_start}, at end {load_end}.\n\n\
         {} rounds × {} s timed window (after {} s warm-up) per module, operation and thread count; \
         {:.0} s of measurements in all.\n\n",
        args.rounds, args.secs, args.warmup, elapsed
    ));
    md.push_str(&report::markdown(&lines, args.rounds));
    md.push_str("\nCPU time of the whole process (all threads, the shim's writer included) per operation, median of the rounds:\n\n");
    md.push_str(&report::cpu_markdown(&lines));
    md.push_str("\nOperations:\n\n");
    for op in &args.ops {
        md.push_str(&format!("- `{}`: {}\n", op.name(), op.describe()));
    }
    if let Some(m) = &memory {
        md.push_str("\n| memory burst (C_GenerateRandom, 1 thread) | calls | seconds | RSS before burst (MB) | peak RSS (MB) | added by burst (MB) | peak above direct (MB) | rows in files |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
        let direct_peak = m
            .iter()
            .find(|r| r.0 == Kind::Direct)
            .map_or(0, |r| r.2.peak_rss_kb);
        for (kind, stall, o, written) in m {
            let what = match (kind, stall) {
                (Kind::Shim, 0) => "shim".to_owned(),
                (Kind::Shim, s) => format!("shim, row file a FIFO unread for {s} ms"),
                _ => kind.name().to_owned(),
            };
            let written = if *stall > 0 {
                "(to the FIFO)".to_owned()
            } else {
                written.to_string()
            };
            md.push_str(&format!(
                "| {what} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {written} |\n",
                o.calls,
                o.secs,
                o.base_rss_kb as f64 / 1024.0,
                o.peak_rss_kb as f64 / 1024.0,
                o.peak_rss_kb.saturating_sub(o.base_rss_kb) as f64 / 1024.0,
                o.peak_rss_kb.saturating_sub(direct_peak) as f64 / 1024.0
            ));
        }
    }
    if let Some(l) = &latency {
        md.push_str("\n| row latency (shim, C_GenerateRandom) | calls | p50 (ms) | p99 (ms) | max (ms) | polls |\n|---|---:|---:|---:|---:|---:|\n");
        for (rate, o) in l {
            let what = if *rate == 0 {
                "one thread, flat out".to_owned()
            } else {
                format!("paced, {rate} calls/s")
            };
            md.push_str(&format!(
                "| {what} | {} | {:.1} | {:.1} | {:.1} | {} |\n",
                o.calls, o.p50_ms, o.p99_ms, o.max_ms, o.polls
            ));
        }
    }
    println!("{md}");
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    std::fs::write(args.out.join("results.md"), &md).map_err(|e| e.to_string())?;
    std::fs::write(
        args.out.join("ratios.svg"),
        report::svg(
            &lines,
            "Throughput relative to SoftHSM2 directly (higher is better)",
        ),
    )
    .map_err(|e| e.to_string())?;
    let json = serde_json::json!({
        "machine": machine,
        "load_start": load_start,
        "load_end": load_end,
        "rounds": args.rounds,
        "secs": args.secs,
        "warmup": args.warmup,
        "lines": lines.iter().map(|l| serde_json::json!({
            "op": l.op, "threads": l.threads, "direct": l.direct, "shim": l.shim, "spy": l.spy,
            "cpu_us_per_op": {"direct": l.cpu_direct, "shim": l.cpu_shim, "spy": l.cpu_spy},
            "shim_ratio": l.shim_ratio(), "spy_ratio": l.spy_ratio(), "target": l.target(),
        })).collect::<Vec<_>>(),
    });
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&json).expect("json"),
    )
    .map_err(|e| e.to_string())?;
    eprintln!(
        "wrote {}/results.md, results.json, ratios.svg",
        args.out.display()
    );
    Ok(())
}
