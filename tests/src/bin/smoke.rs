//! The smoke suite: a short end-to-end run of the shield, the same on the host and inside a
//! booted kernel (`cargo xtask test-kernels`: a busybox initramfs, no cargo test harness, no
//! network). Two namespaces joined by a veth pair, `syncookie run` on the server's end; then:
//! connections with data, forged ACKs, a short spoofed-SYN flood with clients still connecting,
//! and a detach that leaves nothing behind. Counters are read with `syncookie stats --json`.
//!
//! After the detach, with VLAN devices (8021q) on the kernel: a VLAN on the server's veth, whose
//! rx VLAN stripping is on, must make `run` refuse with the fix, and the fix must let it attach.
//!
//! With `--image IMAGE`, every `syncookie` command of the suite runs from that OCI image under
//! podman (`syncookie_tests::container`): privileged, or with `--unprivileged` as the DaemonSet
//! runs it, with `--config FILE` as its ConfigMap; `cargo xtask test-packages` does both.
//!
//! Prints one `smoke: <mode> <check> ok|FAIL|skipped: ...` line per check and closes each mode with
//! `smoke: <mode> result pass|fail|unsupported: <why>`; the matrix reads those lines. Exits 0
//! when every mode passed, 2 when some were unsupported (and none failed), 1 on any failure.

use std::{
    io::{Read, Write},
    net::{IpAddr, SocketAddr, SocketAddrV4, TcpListener},
    path::{Path, PathBuf},
    process::ExitCode,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    thread,
    time::{Duration, Instant},
};

use syncookie::bpf::pins::DEFAULT_ROOT;
use syncookie_common::maps::{PROG_XDP_EXT, kernel_cookies};
use syncookie_tests::{
    container,
    daemon::{Daemon, UNSUPPORTED, command_in, syncookie_in},
    endtoend,
    flood::{Flood, smoke},
    guarded,
    lab::Lab,
    negotiated,
    packets::{echo_once, send_raw_tcp, serve_echo},
    share::{self, Shared},
};

const PORT: u16 = 8080;
const CONNECTIONS: u32 = 20;
const FORGED_ACKS: u16 = 20;

/// A second protected port, whose listener starts late (kernel mode's stamp check).
const LATE_PORT: u16 = 8081;
/// The share check's port that an xdp-filter rule drops.
const SHARE_DROPPED_PORT: u16 = 8082;
/// Kernel mode's refresh period here: short, so that the suite sees a periodic refresh.
const REFRESH_SECS: u64 = 10;
/// A third protected port, for the options check's own listener.
const OPTIONS_PORT: u16 = 8082;

/// How the shield makes and checks its cookies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CookieMode {
    /// Own keys, the kfunc handoff (Linux 6.9+).
    Full,
    /// The kernel's own cookies (Linux 6.0+).
    Kernel,
}

impl CookieMode {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "full" => Some(Self::Full),
            "kernel" => Some(Self::Kernel),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Kernel => "kernel",
        }
    }

    /// Kernel mode leaves SYNs to the kernel to renew its listener's overflow stamp; not on
    /// 5.x, where making a cookie on the listener renews it (`bpf_tcp_gen_syncookie`).
    fn refreshes(self) -> bool {
        self == Self::Kernel && !syncookie::host::kernel::listener_cookies()
    }

    /// `syncookie run` arguments beyond the interface and ports.
    fn run_args(self) -> &'static [&'static str] {
        match self {
            Self::Full => &["--cookies", "own"],
            // With the options (tcp_timestamps=2): the `options` check shows them.
            Self::Kernel => &[
                "--cookies",
                "kernel",
                "--refresh-secs",
                "10",
                "--timestamps-without-offsets",
            ],
        }
    }
}

/// A check on the attached shield: what it saw, or why it failed.
type Check = fn(&Lab, SocketAddr, CookieMode) -> Result<String, String>;

enum Outcome {
    Pass,
    Fail(Vec<&'static str>),
    Unsupported(String),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut modes = vec![CookieMode::Full, CookieMode::Kernel];
    let mut image = None;
    let mut config = None;
    let mut security = container::Security::Privileged;
    let mut args = args.as_slice();
    while !args.is_empty() {
        if args[0] == "--unprivileged" {
            // With --image: the DaemonSet's securityContext instead of --privileged.
            security = container::Security::Capabilities;
            args = &args[1..];
            continue;
        }
        let (pair, rest) = args.split_at(args.len().min(2));
        args = rest;
        match pair {
            [flag, list] if flag == "--modes" => {
                match list
                    .split(',')
                    .map(CookieMode::parse)
                    .collect::<Option<Vec<_>>>()
                {
                    Some(m) => modes = m,
                    None => return usage(),
                }
            }
            [flag, v] if flag == "--vlan" && v == "absent" => {
                VLAN_ABSENT.store(true, Ordering::SeqCst)
            }
            [flag, v] if flag == "--vlan" && v == "required" => {}
            // Every `syncookie` command of the suite runs from this OCI image (podman, the
            // host network of the lab's server namespace) instead of the binary beside us.
            [flag, name] if flag == "--image" => image = Some(name.clone()),
            // With --image: `run --config` with this file, mounted where the DaemonSet
            // mounts its ConfigMap (the suite's --ports override the file's).
            [flag, file] if flag == "--config" => config = Some(file.clone()),
            _ => return usage(),
        }
    }
    if let Some(image) = image {
        container::use_image(container::Setup {
            image,
            security,
            config,
        });
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("smoke: needs root (network namespaces and BPF)");
        return ExitCode::FAILURE;
    }
    let (mut failed, mut unsupported) = (false, false);
    for mode in modes {
        let m = mode.name();
        match suite(mode) {
            Outcome::Pass => println!("smoke: {m} result pass"),
            Outcome::Fail(checks) => {
                failed = true;
                println!("smoke: {m} result fail: {}", checks.join(", "));
            }
            Outcome::Unsupported(why) => {
                unsupported = true;
                println!("smoke: {m} result unsupported: {why}");
            }
        }
    }
    match (failed, unsupported) {
        (true, _) => ExitCode::FAILURE,
        (false, true) => ExitCode::from(2),
        (false, false) => ExitCode::SUCCESS,
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: smoke [--modes full,kernel] [--vlan required|absent] \
         [--image IMAGE [--unprivileged] [--config FILE]]"
    );
    ExitCode::FAILURE
}

/// Prints a check's line; returns whether it passed.
fn report(mode: CookieMode, check: &str, r: Result<String, String>) -> bool {
    let m = mode.name();
    match r {
        Ok(detail) => {
            println!("smoke: {m} {check} ok: {detail}");
            true
        }
        Err(why) => {
            println!("smoke: {m} {check} FAIL: {}", why.replace('\n', " | "));
            false
        }
    }
}

fn suite(mode: CookieMode) -> Outcome {
    let started = Instant::now();
    let lab = match guarded(|| Ok(Lab::new())) {
        Ok(lab) => lab,
        Err(why) => {
            report(mode, "lab", Err(why));
            return Outcome::Fail(vec!["lab"]);
        }
    };
    let lab_ready = started.elapsed();
    let addr = echo_server(&lab, PORT);
    let mut args = vec!["--ports", "8080,8081,8082"];
    args.extend_from_slice(mode.run_args());
    args.extend_from_slice(container::run_args());
    let daemon = match Daemon::try_start(&lab.server, &lab.server_if, &args) {
        Ok(d) => d,
        Err(out) => {
            // A kernel that cannot run this mode must say so, naming what it lacks.
            if let Some(at) = out.find(UNSUPPORTED) {
                let why = out[at..].lines().next().unwrap_or_default().to_string();
                println!("smoke: {} attach unsupported: {why}", mode.name());
                return Outcome::Unsupported(why);
            }
            report(mode, "attach", Err(out));
            return Outcome::Fail(vec!["attach"]);
        }
    };
    let attached = format!(
        "{} (lab made in {lab_ready:.1?}, attached {:.1?} later)",
        lab.server_if,
        started.elapsed() - lab_ready
    );
    // From an image, the daemon must be running in a container of it.
    let attached = match container::image() {
        None => Ok(attached),
        Some(image) => match container::containers(image).as_slice() {
            [one] => Ok(format!("{attached}, in container {one}")),
            other => Err(format!("{attached}, but containers of {image}: {other:?}")),
        },
    };
    if !report(mode, "attach", attached) {
        return Outcome::Fail(vec!["attach"]);
    }
    let mut failed = Vec::new();
    let mut checks: Vec<(&'static str, Check)> = vec![
        ("connections", connections),
        ("options", options),
        ("forged-acks", forged_acks),
        ("flood", flood),
    ];
    if mode == CookieMode::Kernel {
        checks.push(("stamp", stamp));
    }
    for (name, check) in checks {
        if !report(mode, name, guarded(|| check(&lab, addr, mode))) {
            failed.push(name);
        }
    }
    if !report(mode, "detach", guarded(|| detach(&lab, daemon))) {
        failed.push("detach");
    }
    share_check(&lab, addr, mode, &mut failed);
    match guarded(|| vlan_offload(&lab, mode)) {
        Ok(Vlan::Skipped(why)) => println!("smoke: {} vlan-offload skipped: {why}", mode.name()),
        r => {
            let r = r.map(|v| match v {
                Vlan::Checked(detail) | Vlan::Skipped(detail) => detail,
            });
            if !report(mode, "vlan-offload", r) {
                failed.push("vlan-offload");
            }
        }
    }
    if failed.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail(failed)
    }
}

/// The shield in libxdp's dispatcher beside xdp-filter and xdp-loader (tests/src/share.rs).
fn share_check(lab: &Lab, addr: SocketAddr, mode: CookieMode, failed: &mut Vec<&'static str>) {
    let m = mode.name();
    if container::image().is_some() {
        println!("smoke: {m} share skipped: the image has no libxdp dispatcher object");
        return;
    }
    let dropped = echo_server(lab, SHARE_DROPPED_PORT);
    let ext = match mode {
        CookieMode::Full => PROG_XDP_EXT,
        CookieMode::Kernel => kernel_cookies::PROG_XDP_EXT,
    };
    let ports = format!("{PORT},{SHARE_DROPPED_PORT}");
    let mut args = vec!["--ports", ports.as_str()];
    args.extend_from_slice(mode.run_args());
    match guarded(|| share::both_orders(lab, addr, dropped, ext, &args)) {
        Ok(Shared::Skipped(why)) => println!("smoke: {m} share skipped: {why}"),
        r => {
            let r = r.map(|s| match s {
                Shared::Checked(d) | Shared::Skipped(d) => d,
            });
            if !report(mode, "share", r) {
                failed.push("share");
            }
        }
    }
}

/// `--vlan absent`: the kernel has no 8021q (known when the test image was built), so the
/// vlan-offload check says "skipped"; by default a VLAN device that cannot be made fails it.
static VLAN_ABSENT: AtomicBool = AtomicBool::new(false);

/// An echo server in the server's namespace.
fn echo_server(lab: &Lab, port: u16) -> SocketAddr {
    let l = {
        let _in = lab.server.enter();
        TcpListener::bind((lab.server_ip, port)).expect("bind the echo server")
    };
    let addr = l.local_addr().unwrap();
    serve_echo(l, |_| {
        ACCEPTED.fetch_add(1, Ordering::SeqCst);
    });
    addr
}

/// Connections the smoke's echo servers accepted (the checks run one at a time).
static ACCEPTED: AtomicU64 = AtomicU64::new(0);

/// `syncookie ARGS` in the server's network namespace, as an admin there would run it (pins
/// may be kept per namespace).
fn syncookie(lab: &Lab, args: &[&str]) -> Result<std::process::Output, String> {
    command_in(&lab.server, args)
        .output()
        .map_err(|e| format!("syncookie {}: {e}", args.join(" ")))
}

/// The shield's counters, as an admin reads them: `syncookie stats --json`.
fn stats(lab: &Lab) -> Result<serde_json::Value, String> {
    let out = syncookie(lab, &["stats", "--iface", &lab.server_if, "--json"])?;
    if !out.status.success() {
        return Err(format!(
            "syncookie stats: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("syncookie stats --json: {e}"))
}

fn counter(v: &serde_json::Value, name: &str) -> u64 {
    v.get(name).and_then(serde_json::Value::as_u64).unwrap_or(0)
}

fn connections(lab: &Lab, addr: SocketAddr, mode: CookieMode) -> Result<String, String> {
    let accepted_before = ACCEPTED.load(Ordering::SeqCst);
    {
        let _in = lab.client.enter();
        for i in 0..CONNECTIONS {
            echo_once(addr, 1000 + i as usize).map_err(|e| format!("connection {i}: {e}"))?;
        }
    }
    let c = stats(lab)?;
    let (sent, ok) = (counter(&c, "synack_sent"), counter(&c, "handoff_ok"));
    // Kernel mode leaves a SYN now and then to the kernel, which answers it with its own cookie
    // (the first one at least); those must be the only SYN-ACKs of the server's own stack.
    let refresh = counter(&c, "syn_refresh");
    let kernel = lab.kernel_synacks();
    let accepted = ACCEPTED.load(Ordering::SeqCst) - accepted_before;
    if accepted != u64::from(CONNECTIONS) {
        return Err(format!(
            "{accepted} connections accepted, want {CONNECTIONS}"
        ));
    }
    endtoend::handoff_counts_fit(
        ok,
        counter(&c, "handoff_followed"),
        counter(&c, "ack_valid"),
        u64::from(CONNECTIONS),
        if mode == CookieMode::Kernel {
            endtoend::Handoffs::KernelCookies
        } else {
            endtoend::Handoffs::OnePerConnection
        },
    )
    .map_err(|e| format!("{e}: {c}"))?;
    if sent + refresh != u64::from(CONNECTIONS)
        || kernel != refresh
        || mode.refreshes() != (refresh >= 1)
    {
        return Err(format!(
            "{CONNECTIONS} echoed, but synack_sent {sent}, syn_refresh {refresh}, handoff_ok \
             {ok}, SYN-ACKs from the server's own stack {kernel} (want {CONNECTIONS} in all, \
             {CONNECTIONS}, the refreshes): {c}"
        ));
    }
    Ok(format!(
        "{CONNECTIONS}/{CONNECTIONS} echoed; synack_sent {sent}, syn_refresh {refresh}, \
         handoff_ok {ok}"
    ))
}

/// Two connections to a new listener, 256 KB each way, over IPv4 and over IPv6: timestamps,
/// SACK, window scaling and ECN on both ends, with the window scales they agree on (the matrix
/// prints them). In kernel mode the first SYN is the kernel's (a new listener's stamp; on 5.x
/// ours too) and the second ours, its options in the kernel's timestamp cookie.
fn options(lab: &Lab, _addr: SocketAddr, mode: CookieMode) -> Result<String, String> {
    let mut seen = Vec::new();
    for (family, ip) in [
        ("IPv4", IpAddr::V4(lab.server_ip)),
        ("IPv6", IpAddr::V6(lab.server_ip6)),
    ] {
        let before = stats(lab)?;
        let kernel_before = lab.kernel_synacks();
        let conns =
            negotiated::connect(lab, ip, OPTIONS_PORT, 2).map_err(|e| format!("{family}: {e}"))?;
        let c = stats(lab)?;
        let d = |n: &str| counter(&c, n) - counter(&before, n);
        let (refresh, sent) = (d("syn_refresh"), d("synack_sent"));
        let kernel = lab.kernel_synacks() - kernel_before;
        let want_refresh = u64::from(mode.refreshes());
        if refresh != want_refresh || sent != 2 - want_refresh || kernel != refresh {
            return Err(format!(
                "{family}: syn_refresh +{refresh}, synack_sent +{sent}, SYN-ACKs of the server's \
                 stack +{kernel} (want {want_refresh}, {}, {want_refresh}): {c}",
                2 - want_refresh
            ));
        }
        for n in &conns {
            n.every_option().map_err(|e| format!("{family}: {e}"))?;
        }
        seen.push(format!("{family} {}", conns[1]));
    }
    Ok(seen.join("; "))
}

/// Kernel mode: the kernel takes our cookies only while its listener's overflow stamp is
/// recent (120 s). A listener started now has none, as after two quiet minutes: after a service
/// restart within the refresh period, its first SYN must still go to the kernel (the stamp
/// probe), and every connection succeed; a refresh period later one more SYN goes to the kernel.
/// On 5.x no SYN goes to the kernel: making the first cookie on the new listener stamps it.
fn stamp(lab: &Lab, _addr: SocketAddr, mode: CookieMode) -> Result<String, String> {
    let to_kernel = u64::from(mode.refreshes());
    let d = |a: &serde_json::Value, b: &serde_json::Value, n: &str| counter(a, n) - counter(b, n);
    let run = |addr: SocketAddr, n: u32| -> Result<(), String> {
        let _in = lab.client.enter();
        for i in 0..n {
            echo_once(addr, 100 + i as usize).map_err(|e| format!("connection {i}: {e}"))?;
        }
        Ok(())
    };
    // The service, once: its first SYN to this port is a periodic refresh.
    let (addr, first) = echo_n(lab, LATE_PORT, 1);
    run(addr, 1)?;
    first.join().map_err(|_| "the first echo server panicked")?;
    // Restarted: a new listener, no stamp, though a SYN went to the kernel a moment ago.
    let (addr, second) = echo_n(lab, LATE_PORT, 10);
    let before = stats(lab)?;
    run(addr, 5)?;
    let mid = stats(lab)?;
    let (refreshed, sent) = (
        d(&mid, &before, "syn_refresh"),
        d(&mid, &before, "synack_sent"),
    );
    if refreshed != to_kernel || sent != 5 - to_kernel || d(&mid, &before, "handoff_failed") != 0 {
        return Err(format!(
            "a restarted listener: syn_refresh +{refreshed}, synack_sent +{sent} (want {to_kernel}, \
             {}): {mid}",
            5 - to_kernel
        ));
    }
    thread::sleep(Duration::from_secs(REFRESH_SECS + 1));
    run(addr, 5)?;
    second
        .join()
        .map_err(|_| "the second echo server panicked")?;
    let end = stats(lab)?;
    let (refreshed, sent) = (d(&end, &mid, "syn_refresh"), d(&end, &mid, "synack_sent"));
    if (refreshed >= 1) != mode.refreshes()
        || refreshed + sent != 5
        || d(&end, &before, "handoff_failed") != 0
    {
        return Err(format!(
            "after the refresh period: syn_refresh +{refreshed}, synack_sent +{sent} (want \
             {}, 5 in all): {end}",
            if mode.refreshes() { "1+" } else { "0" }
        ));
    }
    Ok(format!(
        "restarted listener: {to_kernel} SYN to the kernel, {} ours; {REFRESH_SECS} s later \
         {refreshed} refresh SYN, {sent} ours; 11/11 echoed, handoff_failed 0",
        5 - to_kernel
    ))
}

/// An echo server on `port` that serves `n` connections one after another, then closes its
/// listener (a service that stops).
fn echo_n(lab: &Lab, port: u16, n: usize) -> (SocketAddr, thread::JoinHandle<()>) {
    let l = {
        let _in = lab.server.enter();
        TcpListener::bind((lab.server_ip, port)).expect("bind the echo server")
    };
    let addr = l.local_addr().unwrap();
    let h = thread::spawn(move || {
        for s in l.incoming().take(n) {
            let Ok(mut s) = s else { break };
            let mut buf = [0u8; 4096];
            while let Ok(k) = s.read(&mut buf) {
                if k == 0 || s.write_all(&buf[..k]).is_err() {
                    break;
                }
            }
        }
    });
    (addr, h)
}

fn forged_acks(lab: &Lab, addr: SocketAddr, _mode: CookieMode) -> Result<String, String> {
    let SocketAddr::V4(dst) = addr else {
        return Err("the lab is IPv4".into());
    };
    let before = stats(lab)?;
    {
        let _in = lab.client.enter();
        for i in 0..FORGED_ACKS {
            let src = SocketAddrV4::new(lab.client_ip, 40000 + i);
            send_raw_tcp(src, dst, rand::random(), rand::random(), false);
        }
    }
    // Each is dropped, or (within the reset budget) left to the kernel to reset.
    let judged = |c: &serde_json::Value| counter(c, "ack_bad_cookie") + counter(c, "ack_reset");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let c = stats(lab)?;
        let n = judged(&c) - judged(&before);
        let handed = counter(&c, "handoff_ok") - counter(&before, "handoff_ok");
        if handed != 0 {
            return Err(format!("{handed} forged ACKs became connections: {c}"));
        }
        if n >= u64::from(FORGED_ACKS) {
            return Ok(format!(
                "{FORGED_ACKS}/{FORGED_ACKS} refused (ack_bad_cookie {}, ack_reset {})",
                counter(&c, "ack_bad_cookie"),
                counter(&c, "ack_reset")
            ));
        }
        if Instant::now() > deadline {
            return Err(format!("{n}/{FORGED_ACKS} forged ACKs judged: {c}"));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// A bounded spoofed-SYN flood from 198.18.0.0/16 (inside the lab only) while clients connect.
fn flood(lab: &Lab, addr: SocketAddr, _mode: CookieMode) -> Result<String, String> {
    let before = stats(lab)?;
    // A route back to the spoofed sources, as a real host has (its default route): a kernel
    // mode refresh SYN may be a spoofed one, and the kernel's SYN-ACK to it must leave, to be
    // counted with the others.
    let client = lab.client_ip.to_string();
    lab.server.try_exec(&[
        &tool("ip"),
        "route",
        "replace",
        "198.18.0.0/16",
        "via",
        &client,
    ])?;
    let flood = Flood::new(lab, PORT);
    let flooding = AtomicBool::new(true);
    let (sent, clients) = thread::scope(|s| {
        let f = s.spawn(|| {
            let _in = lab.client.enter();
            let n = flood.run(smoke::SYNS, smoke::RATE, smoke::MAX);
            flooding.store(false, Ordering::Relaxed);
            n
        });
        let c = s.spawn(|| {
            let _in = lab.client.enter();
            let (mut ok, mut errors) = (0u64, Vec::new());
            while flooding.load(Ordering::Relaxed) || ok + (errors.len() as u64) < 10 {
                match echo_once(addr, 100) {
                    Ok(()) => ok += 1,
                    Err(e) => errors.push(e),
                }
            }
            (ok, errors)
        });
        (f.join(), c.join())
    });
    let sent = sent.map_err(|_| "the flood generator panicked".to_string())?;
    let (ok, errors) = clients.map_err(|_| "the clients panicked".to_string())?;
    let c = stats(lab)?;
    // Kernel mode's refresh SYNs (a client's or a spoofed one) are answered by the kernel.
    let d = |n: &str| counter(&c, n) - counter(&before, n);
    let answered = (d("synack_sent") + d("syn_refresh")).saturating_sub(ok);
    if !errors.is_empty() {
        return Err(format!(
            "{} of {} clients failed during the flood (first: {}): {c}",
            errors.len(),
            ok + errors.len() as u64,
            errors[0]
        ));
    }
    // The veth ring may drop some of each burst; most must arrive and be answered.
    if answered < sent / 2 {
        return Err(format!(
            "{sent} spoofed SYNs sent, only {answered} answered: {c}"
        ));
    }
    let kernel = lab.kernel_synacks();
    let refreshes = counter(&c, "syn_refresh");
    if kernel != refreshes {
        return Err(format!(
            "the server's own stack sent {kernel} SYN-ACKs ({refreshes} refresh SYNs left to it)"
        ));
    }
    Ok(format!(
        "{sent} spoofed SYNs, {answered} answered ({} by the kernel); {ok}/{ok} clients echoed \
         meanwhile",
        d("syn_refresh")
    ))
}

/// Directories named `iface` anywhere under the pin root (however pins are laid out; the
/// lab's interface names are unique).
fn pins_named(root: &Path, iface: &str) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for e in dir.filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            if e.file_name() == iface {
                found.push(p);
            } else {
                found.extend(pins_named(&p, iface));
            }
        }
    }
    found
}

/// SIGTERM to the daemon: it must exit cleanly and leave no XDP program, no TC program or
/// qdisc, and no pins.
fn detach(lab: &Lab, mut daemon: Daemon) -> Result<String, String> {
    if !daemon.stop() {
        return Err(format!(
            "syncookie run did not exit cleanly on SIGTERM:\n{}",
            daemon.output.lock().unwrap()
        ));
    }
    let mut left = pins_named(Path::new(DEFAULT_ROOT), &lab.server_if)
        .into_iter()
        .map(|p| format!("pins at {}", p.display()))
        .collect::<Vec<_>>();
    let status = syncookie(lab, &["status", "--iface", &lab.server_if])?;
    let status = String::from_utf8_lossy(&status.stdout);
    if !status.contains("not attached") {
        left.push(format!("syncookie status: {}", status.trim()));
    }
    let link = lab
        .server
        .exec(&["ip", "link", "show", "dev", &lab.server_if]);
    if link.contains("xdp") {
        left.push(format!("XDP: {}", link.trim()));
    }
    left.extend(lab.tc_ingress_left(&tool("tc")));
    if let Some(image) = container::image() {
        // `podman run --rm`: the stopped daemon's container is gone too.
        let containers = container::containers(image);
        if !containers.is_empty() {
            left.push(format!("containers of {image}: {containers:?}"));
        }
    }
    if left.is_empty() {
        Ok(match container::image() {
            Some(_) => "no XDP, no TC program or qdisc, no pins, no container".into(),
            None => "no XDP, no TC program or qdisc, no pins".into(),
        })
    } else {
        Err(format!("left behind: {}", left.join("; ")))
    }
}

/// A host tool (iproute2, ethtool) by its path: busybox's nsenter (in the initramfs) prefers its
/// own, smaller, applets (`ip` without VLAN devices, `tc`) to a name.
fn tool(name: &str) -> String {
    ["/usr/sbin", "/sbin", "/usr/bin"]
        .into_iter()
        .map(|dir| format!("{dir}/{name}"))
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| name.into())
}

enum Vlan {
    Checked(String),
    /// The kernel or the tools cannot make a VLAN device here: why.
    Skipped(String),
}

/// A VLAN device on the server's veth with its rx VLAN stripping on (both kinds, as veth and
/// many NICs have them by default): `run` must refuse with the fix, before changing anything;
/// after the fix it must attach. Needs 8021q: skipped, loudly, only with `--vlan absent`.
fn vlan_offload(lab: &Lab, mode: CookieMode) -> Result<Vlan, String> {
    let (ip, ethtool) = (tool("ip"), tool("ethtool"));
    let iface = lab.server_if.as_str();
    let vlan = format!("{iface}.10");
    let add = [
        &ip, "link", "add", "link", iface, "name", &vlan, "type", "vlan", "id", "10",
    ];
    if let Err(e) = lab.server.try_exec(&add) {
        if VLAN_ABSENT.load(Ordering::SeqCst) {
            return Ok(Vlan::Skipped(format!(
                "this kernel has no 8021q (--vlan absent): NOT CHECKED: {e}"
            )));
        }
        return Err(format!(
            "no VLAN device could be made, though this kernel has 8021q: {e}"
        ));
    }
    let on = [
        &ethtool,
        "-K",
        iface,
        "rxvlan",
        "on",
        "rx-vlan-stag-hw-parse",
        "on",
    ];
    lab.server.try_exec(&on)?;
    let mut args = vec!["--ports", "8080"];
    args.extend_from_slice(mode.run_args());
    args.extend_from_slice(container::run_args());
    let refusal = match Daemon::try_start(&lab.server, iface, &args) {
        Ok(mut d) => {
            d.stop();
            return Err(format!("attached with {vlan} on {iface}, stripping on"));
        }
        Err(out) => out,
    };
    let fix = format!("ethtool -K {iface} rxvlan off rx-vlan-stag-hw-parse off");
    let want = format!(
        "syncookie: {iface} strips VLAN tags before XDP sees them (rx-vlan-offload and \
         rx-vlan-stag-hw-parse on) and carries VLANs ({vlan}): their SYNs would be answered \
         untagged, on the wrong VLAN. Turn stripping off: `{fix}`"
    );
    if !refusal.lines().any(|l| l == want) {
        return Err(format!("refused otherwise than with `{want}`: {refusal}"));
    }
    let link = lab.server.exec(&[&ip, "link", "show", "dev", iface]);
    let pins = pins_named(Path::new(DEFAULT_ROOT), iface);
    if link.contains("xdp") || !pins.is_empty() {
        return Err(format!(
            "the refusal left XDP ({}) or pins ({pins:?})",
            link.trim()
        ));
    }
    // The advice works.
    let mut cmd: Vec<&str> = fix.split_whitespace().collect();
    cmd[0] = &ethtool;
    lab.server.try_exec(&cmd)?;
    let mut d = Daemon::try_start(&lab.server, iface, &args)
        .map_err(|out| format!("after `{fix}`: {out}"))?;
    // Stripping turned on again while the shield runs: it must stop answering (monitor), and
    // say so at error level.
    d.expect_error("Switched to monitor mode");
    lab.server.try_exec(&on)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mode = || {
        let out = syncookie_in(&lab.server, &["mode", "--iface", iface]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    while mode() != "monitor" {
        if Instant::now() > deadline {
            return Err(format!(
                "stripping turned on while running: still {}:\n{}",
                mode(),
                d.output.lock().unwrap()
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
    if !d
        .output
        .lock()
        .unwrap()
        .contains("Switched to monitor mode")
    {
        return Err(format!(
            "monitor without saying so:\n{}",
            d.output.lock().unwrap()
        ));
    }
    if !d.stop() {
        return Err(format!(
            "after `{fix}`: syncookie run did not exit cleanly:\n{}",
            d.output.lock().unwrap()
        ));
    }
    lab.server.try_exec(&[&ip, "link", "del", "dev", &vlan])?;
    Ok(Vlan::Checked(format!(
        "refused with {vlan} on {iface} and stripping on, naming them and the fix; attached \
         after `{fix}`; stripping turned on while running: monitor mode"
    )))
}
