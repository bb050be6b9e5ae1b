//! `cargo xtask bench`: the shield against the kernel's own SYN-flood defences, side by side in
//! one run, then the shield's packet paths timed with BPF_PROG_TEST_RUN beside a minimal XDP
//! reflector. Writes bench/results/results.md and bench/results/chart.svg; the method is in
//! bench/README.md. A benchmark, not a test: it prints ratios measured side by side.
//!
//! Everything happens in network namespaces it creates (a server and an attacker/client joined by
//! a veth pair); the spoofed flood never leaves them. Namespaces, programs and pins are removed
//! when it ends, also on failure; no sysctl outside its namespaces is changed (BPF run-time
//! statistics are switched on through a file descriptor, off again when it closes).

mod connrate;
mod cpu;
mod lab;
mod micro;
mod prober;
mod report;
mod scenario;
mod server;

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use clap::Parser;
use lab::Cpus;
use prober::ProbeConfig;
use report::Run;
use scenario::{Kind, Params};

/// Benchmarks: the shield against the kernel's defences (tcp_syncookies=0/1/2, SYNPROXY) under
/// the same spoofed SYN flood, and its packet paths against a bare XDP reflector.
///
/// Example: cargo xtask bench -- --duration 5 --scenarios cookies1,xdp-native
#[derive(Parser, Debug)]
struct Args {
    /// Seconds measured in each scenario (after the warm-up).
    #[arg(long, default_value_t = 6.0)]
    duration: f64,
    /// Seconds of flood before the measured window opens.
    #[arg(long, default_value_t = 1.5)]
    warmup: f64,
    /// Spoofed SYNs per second; 0: as fast as the generator can (the heaviest flood here).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Legitimate connections started per second during the window.
    #[arg(long, default_value_t = 200.0)]
    legit_rate: f64,
    /// Threads sharing the legitimate clients' schedule.
    #[arg(long, default_value_t = 32)]
    legit_threads: usize,
    /// Timeout of a legitimate connect() and of its echo, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
    /// Bytes each legitimate connection sends and reads back.
    #[arg(long, default_value_t = 1024)]
    payload: usize,
    /// The server's listen() backlog (its SYN queue: kernel cookies start when it is full).
    #[arg(long, default_value_t = 128)]
    backlog: i32,
    /// Scenarios to run, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Kind::ALL)]
    scenarios: Vec<Kind>,
    /// Skip the BPF_PROG_TEST_RUN micro-benchmarks.
    #[arg(long)]
    no_micro: bool,
    /// Seconds of `ab` per setup in the new-connection rate (0: skip it).
    #[arg(long, default_value_t = 5.0)]
    conn_seconds: f64,
    /// Rounds of the new-connection rate: every setup once per round, in turn, summed (the
    /// rate of one lab varies by a tenth from run to run).
    #[arg(long, default_value_t = 2)]
    conn_rounds: u32,
    /// Connections `ab` keeps open at once in the new-connection rate.
    #[arg(long, default_value_t = 32)]
    conn_concurrency: usize,
    /// Profile the server's CPU during each new-connection run (`perf record -g`; read with
    /// `perf report -i DIR/SETUP.perf.data`): where a connection's time goes.
    #[arg(long)]
    conn_perf: Option<PathBuf>,
    /// Repetitions per live-frames test run (SYN path, reflector).
    #[arg(long, default_value_t = 2_000_000)]
    live_repeat: u32,
    /// Repetitions per plain test run (ACK paths, established flow, pass).
    #[arg(long, default_value_t = 5_000_000)]
    plain_repeat: u32,
    /// Single runs per program for its own run time (BPF statistics).
    #[arg(long, default_value_t = 100_000)]
    stats_runs: u32,
    /// Rounds per micro-benchmark (the median is reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// TCP port of the server.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Where results.md and chart.svg go (default: bench/results in the workspace).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print only; write no files.
    #[arg(long)]
    no_write: bool,
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(String::new(), |kb| {
            format!(", {} GiB RAM", (kb + (1 << 19)) >> 20)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{} vCPUs ({model}){mem}, Linux {}, VM, no physical NIC (veth pair between two \
         namespaces)",
        cpu::online_cpus(),
        kernel.trim()
    )
}

fn now_utc() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !nix::unistd::geteuid().is_root() {
        bail!("bench: needs root (network namespaces and BPF)");
    }
    let n = cpu::online_cpus();
    if n < 2 {
        bail!("bench: needs two CPUs (one for the attacker and clients, one for the server)");
    }
    let cpus = Cpus {
        attacker: 0,
        server: n - 1,
    };
    // Every thread of ours starts on the attacker's CPU; the server's threads move themselves.
    cpu::pin(0, cpus.attacker).context("pinning the bench to CPU 0")?;
    let extra: Vec<String> = std::env::args().skip(1).collect();
    let command = if extra.is_empty() {
        "cargo xtask bench".to_string()
    } else {
        format!("cargo xtask bench -- {}", extra.join(" "))
    };
    let legit = ProbeConfig {
        rate: args.legit_rate,
        threads: args.legit_threads,
        timeout: Duration::from_millis(args.timeout_ms),
        payload: args.payload,
    };
    let params = Params {
        duration: Duration::from_secs_f64(args.duration),
        warmup: Duration::from_secs_f64(args.warmup),
        rate: args.rate,
        legit,
        backlog: args.backlog,
        port: args.port,
        cpus,
    };
    let param_text = format!(
        "flood {}; {} s measured per scenario after {} s of flood; legitimate clients {} \
         connections/s ({} threads, {} ms timeouts, {} B echoed each); listen backlog {}; \
         attacker on CPU {}, server on CPU {}; micro-benchmarks: {} live-frames / {} plain \
         repetitions, median of {} rounds; new connections: ab -c {} for {} s per setup and \
         round, {} rounds",
        if args.rate == 0 {
            "as fast as the generator can".to_string()
        } else {
            format!("{} SYN/s", args.rate)
        },
        args.duration,
        args.warmup,
        args.legit_rate,
        args.legit_threads,
        args.timeout_ms,
        args.payload,
        args.backlog,
        cpus.attacker,
        cpus.server,
        args.live_repeat,
        args.plain_repeat,
        args.rounds,
        args.conn_concurrency,
        args.conn_seconds,
        args.conn_rounds,
    );
    println!("bench: {}\nbench: {param_text}", machine());

    let micro = (!args.no_micro).then(|| {
        println!("bench: micro-benchmarks (BPF_PROG_TEST_RUN)...");
        let mp = micro::Params {
            live_repeat: args.live_repeat,
            plain_repeat: args.plain_repeat,
            stats_runs: args.stats_runs,
            rounds: args.rounds.max(1),
            port: args.port,
            cpus,
        };
        // Its own thread: it moves to the server's CPU and namespace.
        let m =
            std::thread::scope(|s| s.spawn(|| micro::run(&mp)).join()).expect("micro-benchmarks");
        for r in &m.rows {
            println!(
                "  {:<30} {:<20} {:>9.1} ns{}",
                r.path,
                r.program,
                r.ns,
                r.prog_ns
                    .map_or(String::new(), |p| format!("  (program alone {p:.1} ns)"))
            );
        }
        m
    });

    let mut scenarios = Vec::new();
    for &k in &args.scenarios {
        println!("bench: {} ...", k.label());
        let o = scenario::run(k, &params);
        match &o.skipped {
            Some(why) => println!("  not run: {why}"),
            None => println!(
                "  offered {}/s, reaching the server {}/s, SYN-ACKs {}/s, server CPU {:.0} % busy, \
                 {:.0} ns per SYN; legit {}/{} OK, p50 {:?} p99 {:?}",
                report::rate(o.rate(o.offered)),
                report::rate(o.rate(o.arrived)),
                report::rate(o.rate(o.answered)),
                100.0 * o.server_busy / o.window,
                o.cpu_per_syn(),
                o.probe.ok,
                o.probe.attempts,
                o.probe.pct(50.0).unwrap_or_default(),
                o.probe.pct(99.0).unwrap_or_default(),
            ),
        }
        scenarios.push((k, o));
    }

    let mut connrate = Vec::new();
    if args.conn_seconds > 0.0 {
        let cp = connrate::Params {
            duration: Duration::from_secs_f64(args.conn_seconds),
            concurrency: args.conn_concurrency,
            port: args.port,
            cpus,
            perf_dir: args.conn_perf.clone(),
        };
        let mut total: Vec<connrate::ConnRate> = Vec::new();
        for round in 1..=args.conn_rounds.max(1) {
            for setup in connrate::Setup::ALL {
                println!(
                    "bench: new connections/s, {} (round {round}) ...",
                    setup.label()
                );
                let r = connrate::run(setup, &cp);
                match &r.skipped {
                    Some(why) => println!("  not run: {why}"),
                    None => println!("  {}", r.summary()),
                }
                match total.iter_mut().find(|t| t.setup == Some(setup)) {
                    Some(t) => t.add(r),
                    None => total.push(r),
                }
            }
        }
        connrate = total;
    }

    let run = Run {
        command,
        machine: machine(),
        date: now_utc(),
        params: param_text,
        scenarios,
        micro,
        connrate,
    };
    println!("\n{}", run.table());
    for (goal, status, text) in run.goals() {
        println!("goal {status}: {goal}: {text}");
    }
    if !args.no_write {
        // This crate is bench/ in the workspace.
        let out = args
            .out
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results"));
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        std::fs::write(out.join("results.md"), run.markdown())?;
        std::fs::write(out.join("chart.svg"), run.svg())?;
        println!(
            "bench: wrote {} and {}",
            out.join("results.md").display(),
            out.join("chart.svg").display(),
        );
    }
    Ok(())
}
