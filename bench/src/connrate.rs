//! New connections per second, without a flood: a busy web service's load. `ab` (Apache's
//! benchmark client) in the client namespace opens a new connection for every request, against
//! the HTTP server on the server's CPU (one response, then close), for the kernel alone and for
//! the shield in each mode, one after another in fresh labs. The server's `tcp_max_tw_buckets`
//! is 0 so that client ports reused within seconds do not meet its TIME_WAIT sockets (which
//! would send their SYNs to the kernel and hide the handoff).
//!
//! Where the time goes: the server CPU's busy time per connection, and within it the shield's
//! programs' own run time per connection (BPF run-time statistics: XDP sees every frame of a
//! connection, TC every frame XDP passes, and TC's time includes `bpf_sk_assign_tcp_reqsk`).
//! What is left over the kernel's figure is the kernel's work on the handed-over ACK (the
//! child socket made from the request socket TC gave it) and the SYN-ACK's transmission.

use std::{collections::BTreeMap, net::SocketAddrV4, process::Command, time::Duration};

use aya::{
    programs::{SchedClassifier, Xdp},
    sys::{Stats, enable_stats},
};
use syncookie::{
    bpf::loader::{Shield, XdpModeArg},
    observe::counters,
    policy::{ModeArg, Policy},
};
use syncookie_common::{
    maps::{PROG_TC, PROG_XDP},
    stats::Counter,
};

use crate::{
    cpu,
    lab::{BenchLab, Cpus, ShieldGuard},
    server::EchoServer,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    Kernel,
    Shield(ModeArg),
}

impl Setup {
    pub const ALL: [Setup; 4] = [
        Setup::Kernel,
        Setup::Shield(ModeArg::Always),
        Setup::Shield(ModeArg::Auto),
        Setup::Shield(ModeArg::Monitor),
    ];

    pub fn short(self) -> &'static str {
        match self {
            Setup::Kernel => "kernel",
            Setup::Shield(ModeArg::Always) => "always",
            Setup::Shield(ModeArg::Auto) => "auto",
            Setup::Shield(ModeArg::Monitor) => "monitor",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Setup::Kernel => "kernel alone (tcp_syncookies=1)",
            Setup::Shield(ModeArg::Always) => "shield, `always` (default budgets)",
            Setup::Shield(ModeArg::Auto) => "shield, `auto` (default budgets)",
            Setup::Shield(ModeArg::Monitor) => "shield, `monitor`",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Params {
    pub duration: Duration,
    pub concurrency: usize,
    pub port: u16,
    pub cpus: Cpus,
    /// Record the server's CPU with `perf record -g` into `<dir>/<setup>.perf.data`.
    pub perf_dir: Option<std::path::PathBuf>,
}

#[derive(Clone, Debug, Default)]
pub struct ConnRate {
    pub setup: Option<Setup>,
    pub skipped: Option<String>,
    /// From ab: completed and failed requests, seconds taken, and the time within which 99 %
    /// of the requests were served and the longest (ms, connect to last byte).
    pub complete: u64,
    pub failed: u64,
    pub secs: f64,
    pub p99_ms: u64,
    pub max_ms: u64,
    /// Busy time of the server's CPU over the run, in ns per connection.
    pub server_ns: f64,
    /// The shield's XDP and TC programs' own run time per connection (BPF statistics).
    pub xdp_ns: Option<f64>,
    pub tc_ns: Option<f64>,
    /// The shield's counters over the run (nonzero ones).
    pub counters: BTreeMap<&'static str, u64>,
}

impl ConnRate {
    /// Adds another round of the same setup: counts and times summed, per-connection figures
    /// weighted by connections, the tail's worst kept. A skipped round skips the whole.
    pub fn add(&mut self, r: ConnRate) {
        if self.skipped.is_some() {
            return;
        }
        if r.skipped.is_some() {
            *self = r;
            return;
        }
        let (a, b) = (self.complete as f64, r.complete as f64);
        let weigh = |x: f64, y: f64| {
            if a + b > 0.0 {
                (x * a + y * b) / (a + b)
            } else {
                x
            }
        };
        self.server_ns = weigh(self.server_ns, r.server_ns);
        self.xdp_ns = self.xdp_ns.zip(r.xdp_ns).map(|(x, y)| weigh(x, y));
        self.tc_ns = self.tc_ns.zip(r.tc_ns).map(|(x, y)| weigh(x, y));
        self.complete += r.complete;
        self.failed += r.failed;
        self.secs += r.secs;
        self.p99_ms = self.p99_ms.max(r.p99_ms);
        self.max_ms = self.max_ms.max(r.max_ms);
        for (k, v) in r.counters {
            *self.counters.entry(k).or_default() += v;
        }
    }

    /// One line for the progress output.
    pub fn summary(&self) -> String {
        format!(
            "{:.0} connections/s ({} complete, {} failed in {:.1} s; 99 % within {} ms, longest \
             {} ms), server CPU {:.1} us per connection{}{}",
            self.per_sec(),
            self.complete,
            self.failed,
            self.secs,
            self.p99_ms,
            self.max_ms,
            self.server_ns / 1e3,
            self.xdp_ns
                .map_or(String::new(), |x| format!(", XDP {x:.0} ns")),
            self.tc_ns
                .map_or(String::new(), |x| format!(", TC {x:.0} ns")),
        )
    }

    pub fn per_sec(&self) -> f64 {
        if self.secs > 0.0 {
            self.complete as f64 / self.secs
        } else {
            f64::NAN
        }
    }
}

/// Run time and run count of an attached program.
fn prog_stats(s: &mut Shield, name: &str, tc: bool) -> Option<(Duration, u64)> {
    let p = s.ebpf_mut().program_mut(name)?;
    let info = if tc {
        <&mut SchedClassifier>::try_from(p).ok()?.info()
    } else {
        <&mut Xdp>::try_from(p).ok()?.info()
    };
    info.ok().map(|i| (i.run_time(), i.run_count()))
}

/// Why `ab` cannot run here, if it cannot.
fn ab_missing() -> Option<String> {
    match Command::new("ab").arg("-V").output() {
        Ok(o) if o.status.success() => None,
        _ => Some(
            "`ab` (Debian's apache2-utils) is not installed: `cargo xtask bench` installs it"
                .into(),
        ),
    }
}

/// `ab`'s report.
struct AbReport {
    complete: u64,
    failed: u64,
    secs: f64,
    p99_ms: u64,
    max_ms: u64,
}

fn parse_ab(out: &str) -> Result<AbReport, String> {
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.trim_start().strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .ok_or_else(|| format!("ab printed no `{name}`:\n{out}"))
    };
    let num = |name: &str| -> Result<f64, String> {
        field(name)?
            .parse()
            .map_err(|e| format!("ab's `{name}`: {e}"))
    };
    Ok(AbReport {
        complete: num("Complete requests:")? as u64,
        failed: num("Failed requests:")? as u64,
        secs: num("Time taken for tests:")?,
        // "  99%      4" and " 100%    212 (longest request)".
        p99_ms: num("99%")? as u64,
        max_ms: num("100%")? as u64,
    })
}

pub fn run(setup: Setup, p: &Params) -> ConnRate {
    let mut out = ConnRate {
        setup: Some(setup),
        ..ConnRate::default()
    };
    if let Some(why) = ab_missing() {
        out.skipped = Some(why);
        return out;
    }
    let mut lab = BenchLab::new();
    lab.sysctl("net.ipv4.tcp_syncookies", "1");
    lab.sysctl("net.ipv4.tcp_max_tw_buckets", "0");
    lab.client
        .sysctl("net.ipv4.ip_local_port_range", "1024 65535");
    let addr = SocketAddrV4::new(lab.server_ip, p.port);
    let _server = EchoServer::http(&lab.server, addr, 4096, p.cpus.server, 4);
    let mut guard = match setup {
        Setup::Kernel => ShieldGuard(None),
        Setup::Shield(mode) => lab.attach_shield(
            p.port,
            XdpModeArg::Native,
            Policy {
                mode,
                ..Policy::default()
            },
        ),
    };
    let shield = &mut guard.0;
    lab.pin_napi(p.cpus);
    // Statistics on for the run only (they cost time themselves): the kernel's row runs with
    // them on too, so that both pay the same.
    let stats = enable_stats(Stats::RunTime).ok();
    let stat = |s: &mut Option<Shield>, name, tc| s.as_mut().and_then(|s| prog_stats(s, name, tc));
    let (x0, t0) = (stat(shield, PROG_XDP, false), stat(shield, PROG_TC, true));
    let c0 = shield
        .as_ref()
        .map(|s| counters::read(&s.pins, &lab.server_if));
    let cpu0 = cpu::Sample::now();
    let url = format!("http://{addr}/");
    let secs = p.duration.as_secs_f64().ceil().max(1.0).to_string();
    let conc = p.concurrency.to_string();
    let attacker = p.cpus.attacker.to_string();
    // -r: go on after a failed connection (it counts as failed); -s: its timeout.
    let mut cmd = match &p.perf_dir {
        Some(dir) => {
            let mut c = Command::new("perf");
            let data = dir.join(format!("{}.perf.data", setup.short()));
            let server = p.cpus.server.to_string();
            c.args(["record", "-q", "-g", "-C", &server, "-o"])
                .arg(data)
                .args(["--", "taskset"]);
            c
        }
        None => Command::new("taskset"),
    };
    let ab = cmd
        .args(["-c", &attacker, "ip", "netns", "exec", &lab.client.name])
        .args([
            "ab", "-q", "-r", "-s", "5", "-t", &secs, "-n", "10000000", "-c", &conc, &url,
        ])
        .output();
    let cpu1 = cpu::Sample::now();
    let (x1, t1) = (stat(shield, PROG_XDP, false), stat(shield, PROG_TC, true));
    drop(stats);
    let parsed = match ab {
        Ok(o) => parse_ab(&String::from_utf8_lossy(&o.stdout))
            .map_err(|e| format!("{e}\nstderr: {}", String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => Err(format!("running ab: {e}")),
    };
    match parsed {
        Ok(r) => {
            out.complete = r.complete;
            out.failed = r.failed;
            out.secs = r.secs;
            out.p99_ms = r.p99_ms;
            out.max_ms = r.max_ms;
        }
        Err(e) => out.skipped = Some(e),
    }
    let n = out.complete.max(1) as f64;
    let (busy, _) = cpu1.busy_since(&cpu0, p.cpus.server);
    out.server_ns = busy * 1e9 / n;
    let per_conn = |a: Option<(Duration, u64)>, b: Option<(Duration, u64)>| match (a, b) {
        (Some(a), Some(b)) if b.1 > a.1 => Some((b.0 - a.0).as_nanos() as f64 / n),
        _ => None,
    };
    out.xdp_ns = per_conn(x0, x1);
    out.tc_ns = per_conn(t0, t1);
    if let (Some(Ok(c0)), Some(s)) = (c0, shield.as_ref()) {
        let c1 = counters::read(&s.pins, &lab.server_if).expect("shield counters");
        out.counters = Counter::ALL
            .iter()
            .map(|&c| (c.name(), c1.get(c).saturating_sub(c0.get(c))))
            .filter(|(_, v)| *v > 0)
            .collect();
    }
    out
}
