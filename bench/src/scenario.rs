//! One scenario: a fresh lab, one defence, the same spoofed SYN flood and the same legitimate
//! clients; counters and CPU time read at the start and the end of a fixed window.

use std::{
    collections::BTreeMap,
    io::Write,
    net::{SocketAddr, SocketAddrV4},
    process::{Command, Stdio},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    thread,
    time::Duration,
};

use syncookie::{
    bpf::{loader::XdpModeArg, pins::PinDir},
    observe::counters::{self, Snapshot},
    policy::Policy,
};
use syncookie_common::stats::Counter;
use syncookie_tests::flood::Flood;

use crate::{
    cpu,
    lab::{BenchLab, Cpus},
    prober::{self, ProbeConfig, ProbeStats},
    server::EchoServer,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// tcp_syncookies=0: the kernel's SYN queue alone.
    None,
    /// tcp_syncookies=1: kernel cookies once the listener's SYN queue is full.
    Cookies1,
    /// tcp_syncookies=2: kernel cookies for every SYN.
    Cookies2,
    /// netfilter SYNPROXY (nftables) in front of the listener.
    Synproxy,
    /// The shield, XDP in the driver (veth native XDP).
    XdpNative,
    /// The shield, generic XDP (skb mode).
    XdpSkb,
    /// No defence but a bare XDP reflector (`lab_reflect`) on the server's veth: the floor of
    /// any XDP answer here (no legitimate clients: it would reflect them too).
    Reflector,
    /// The shield, native XDP, the same legitimate clients and no flood: the quiet connect
    /// latency the flooded one is measured against.
    XdpQuiet,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::None,
        Kind::Cookies1,
        Kind::Cookies2,
        Kind::Synproxy,
        Kind::XdpNative,
        Kind::XdpSkb,
        Kind::Reflector,
        Kind::XdpQuiet,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::None => "no defence (tcp_syncookies=0)",
            Kind::Cookies1 => "kernel SYN cookies (tcp_syncookies=1)",
            Kind::Cookies2 => "kernel SYN cookies (tcp_syncookies=2)",
            Kind::Synproxy => "netfilter SYNPROXY (nftables)",
            Kind::XdpNative => "syncookie, native XDP",
            Kind::XdpSkb => "syncookie, generic XDP (skb)",
            Kind::Reflector => "bare XDP reflector (floor, no clients)",
            Kind::XdpQuiet => "syncookie, native XDP, no flood",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Kind::None => "none",
            Kind::Cookies1 => "cookies=1",
            Kind::Cookies2 => "cookies=2",
            Kind::Synproxy => "SYNPROXY",
            Kind::XdpNative => "XDP native",
            Kind::XdpSkb => "XDP skb",
            Kind::Reflector => "reflector",
            Kind::XdpQuiet => "XDP quiet",
        }
    }

    fn shield(self) -> Option<XdpModeArg> {
        match self {
            Kind::XdpNative | Kind::XdpQuiet => Some(XdpModeArg::Native),
            Kind::XdpSkb => Some(XdpModeArg::Skb),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Params {
    pub duration: Duration,
    pub warmup: Duration,
    /// Spoofed SYNs per second; 0: as fast as the generator can.
    pub rate: u64,
    pub legit: ProbeConfig,
    pub backlog: i32,
    pub port: u16,
    pub cpus: Cpus,
}

#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub skipped: Option<String>,
    /// Seconds between the two snapshots.
    pub window: f64,
    /// SYNs the generator sent, SYNs that reached the server (its first program saw them),
    /// SYN-ACKs the server sent, SYN-ACKs that reached the attacker.
    pub offered: u64,
    pub arrived: u64,
    pub answered: u64,
    pub sunk: u64,
    /// Busy seconds of the server's and the attacker's CPU.
    pub server_busy: f64,
    pub attacker_busy: f64,
    /// Seconds the server's NAPI thread ran (its schedstat), a cross-check of `server_busy`.
    pub napi_busy: f64,
    pub probe: ProbeStats,
    /// Kernel or shield counters over the window.
    pub counters: BTreeMap<String, i64>,
    /// NAPI threads found (server, client).
    pub napi: (usize, usize),
}

impl Outcome {
    pub fn rate(&self, n: u64) -> f64 {
        if self.window > 0.0 {
            n as f64 / self.window
        } else {
            0.0
        }
    }

    /// Server CPU time per SYN that reached it, in ns.
    pub fn cpu_per_syn(&self) -> f64 {
        if self.arrived == 0 {
            return f64::NAN;
        }
        self.server_busy * 1e9 / self.arrived as f64
    }
}

/// `name value` pairs of the TcpExt/Tcp lines of /proc/net/{netstat,snmp} and SYNPROXY's
/// /proc/net/stat/synproxy, for the calling thread's namespace.
fn kernel_counters() -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for f in ["netstat", "snmp"] {
        let s = std::fs::read_to_string(format!("/proc/thread-self/net/{f}")).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        for pair in lines.chunks(2) {
            let [h, v] = pair else { continue };
            let (mut hs, mut vs) = (h.split_whitespace(), v.split_whitespace());
            let prefix = hs.next().unwrap_or("").trim_end_matches(':').to_string();
            vs.next();
            if prefix != "TcpExt" && prefix != "Tcp" {
                continue;
            }
            for (k, v) in hs.zip(vs) {
                const KEEP: &[&str] = &[
                    "SyncookiesSent",
                    "SyncookiesRecv",
                    "SyncookiesFailed",
                    "ListenOverflows",
                    "ListenDrops",
                    "TCPReqQFullDrop",
                    "TCPReqQFullDoCookies",
                    "InSegs",
                    "OutSegs",
                    "RetransSegs",
                ];
                if KEEP.contains(&k) {
                    out.insert(format!("{prefix}.{k}"), v.parse().unwrap_or(0));
                }
            }
        }
    }
    // entries syn_received cookie_invalid cookie_valid cookie_retrans conn_reopened (hex, per CPU)
    let sp = std::fs::read_to_string("/proc/thread-self/net/stat/synproxy").unwrap_or_default();
    let names = ["syn_received", "cookie_invalid", "cookie_valid"];
    for l in sp.lines().skip(1) {
        for (i, v) in l.split_whitespace().skip(1).take(3).enumerate() {
            *out.entry(format!("synproxy.{}", names[i])).or_insert(0) +=
                i64::from_str_radix(v, 16).unwrap_or(0);
        }
    }
    out
}

struct Snap {
    cpu: cpu::Sample,
    napi_ns: u64,
    sent: u64,
    syn: u64,
    synack: u64,
    sink: u64,
    counters: BTreeMap<String, i64>,
}

fn shield_counters(s: &Snapshot) -> BTreeMap<String, i64> {
    s.iter()
        .map(|(c, v)| (c.name().to_string(), v as i64))
        .collect()
}

fn snap(lab: &BenchLab, pins: Option<&PinDir>, flood: &Flood) -> Snap {
    let cpu = cpu::Sample::now();
    let napi_ns = cpu::run_ns(&lab.server_napi);
    let sent = flood.frames_sent();
    let (syn, synack, counters) = match pins {
        Some(p) => {
            let c = counters::read(p, &lab.server_if).expect("shield counters");
            (
                c.get(Counter::SynSeen),
                c.get(Counter::SynackSent),
                shield_counters(&c),
            )
        }
        None => {
            let k = {
                let _in = lab.server.enter();
                kernel_counters()
            };
            match lab.reflected() {
                Some(n) => (n, n, k),
                None => (lab.syns_seen(), lab.kernel_synacks(), k),
            }
        }
    };
    Snap {
        cpu,
        napi_ns,
        sent,
        syn,
        synack,
        sink: lab.sink_synacks(),
        counters,
    }
}

/// Whether SYNPROXY can be set up: the `nft` command (the kernel side is checked by applying
/// the rules).
pub fn synproxy_missing() -> Option<String> {
    let ok = Command::new("nft")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!ok).then(|| {
        "the `nft` command is missing (Debian package nftables: apt-get install nftables); \
         the kernel has SYNPROXY built in (CONFIG_NFT_SYNPROXY)"
            .to_string()
    })
}

/// SYNPROXY in the server's namespace, the nftables way (nft(8), "SYNPROXY"): SYNs to the port
/// are not tracked, the synproxy statement answers them and the ACKs that carry its cookies.
fn synproxy(lab: &BenchLab, port: u16) -> Result<(), String> {
    lab.sysctl("net.netfilter.nf_conntrack_tcp_loose", "0");
    let rules = format!(
        "table ip scbench {{
  chain pre {{
    type filter hook prerouting priority raw; policy accept;
    tcp dport {port} tcp flags & (fin|syn|rst|ack) == syn notrack
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    tcp dport {port} ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm
    ct state invalid drop
  }}
}}
"
    );
    let mut child = Command::new("nsenter")
        .arg(format!("--net={}", lab.server.path()))
        .args(["nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "nft refused the SYNPROXY rules: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

pub fn run(kind: Kind, p: &Params) -> Outcome {
    if kind == Kind::Synproxy
        && let Some(why) = synproxy_missing()
    {
        return Outcome {
            skipped: Some(why),
            ..Outcome::default()
        };
    }
    let mut lab = BenchLab::new();
    lab.sysctl(
        "net.ipv4.tcp_syncookies",
        match kind {
            Kind::None => "0",
            Kind::Cookies2 => "2",
            _ => "1",
        },
    );
    let addr = SocketAddrV4::new(lab.server_ip, p.port);
    let _server = EchoServer::start(&lab.server, addr, p.backlog, p.cpus.server, 4);
    // The flood comes from 256 /24s of the spoofed range, each far above the default per-prefix
    // budget: measure SYN-ACK generation itself.
    let shield = kind.shield().map(|mode| {
        lab.attach_shield(
            p.port,
            mode,
            Policy {
                synack_per_prefix: 0,
                ..Policy::default()
            },
        )
    });
    let pins = shield
        .as_ref()
        .and_then(|g| g.0.as_ref())
        .map(|s| s.pins.clone());
    match kind {
        Kind::Reflector => lab.attach_reflector(),
        k if k.shield().is_none() => lab.attach_kernel_counters(),
        _ => {}
    }
    if kind == Kind::Synproxy
        && let Err(why) = synproxy(&lab, p.port)
    {
        return Outcome {
            skipped: Some(why),
            ..Outcome::default()
        };
    }
    let napi = lab.pin_napi(p.cpus);

    let flood = Flood::fresh(
        &lab.client,
        &lab.client_if,
        lab.server_mac,
        lab.server_ip,
        p.port,
    );
    let stop = AtomicBool::new(false);
    let bound = p.warmup + p.duration + p.legit.timeout * 4 + Duration::from_secs(10);
    let (s0, s1, probe) = thread::scope(|s| {
        let flooding = (kind != Kind::XdpQuiet).then(|| {
            s.spawn(|| {
                let _ = cpu::pin(0, p.cpus.attacker);
                let _in = lab.client.enter();
                flood.run_until(u64::MAX, p.rate, bound, &stop, &AtomicU64::new(0))
            })
        });
        thread::sleep(p.warmup);
        let s0 = snap(&lab, pins.as_ref(), &flood);
        let clients = s.spawn(|| {
            if kind == Kind::Reflector {
                return ProbeStats::default();
            }
            prober::run(
                &lab.client,
                SocketAddr::V4(addr),
                &p.legit,
                p.duration,
                p.cpus.attacker,
            )
        });
        thread::sleep(p.duration);
        let s1 = snap(&lab, pins.as_ref(), &flood);
        // The flood goes on until the last legitimate connection has finished.
        let probe = clients.join().expect("clients");
        stop.store(true, Ordering::Relaxed);
        if let Some(f) = flooding {
            f.join().expect("flood");
        }
        (s0, s1, probe)
    });
    let (server_busy, window) = s1.cpu.busy_since(&s0.cpu, p.cpus.server);
    let (attacker_busy, _) = s1.cpu.busy_since(&s0.cpu, p.cpus.attacker);
    let counters = s1
        .counters
        .iter()
        .map(|(k, v)| (k.clone(), v - s0.counters.get(k).copied().unwrap_or(0)))
        .collect();
    Outcome {
        skipped: None,
        window,
        offered: s1.sent - s0.sent,
        arrived: s1.syn - s0.syn,
        answered: s1.synack - s0.synack,
        sunk: s1.sink - s0.sink,
        server_busy,
        attacker_busy,
        napi_busy: (s1.napi_ns - s0.napi_ns) as f64 / 1e9,
        probe,
        counters,
        napi,
    }
}
