//! The checks of one mode, from the host side of the tap. Counts are exact where the claim is:
//! the guest's echo server counts what it accepted, the shield's counters what it answered and
//! handed off, and the host's capture every SYN-ACK that crossed the wire, so a SYN-ACK from
//! the guest's own stack (what the shield exists to spare it) shows as one more seen than the
//! shield sent. The first check runs without the shield and must fail for that reason: the
//! negative control of the others.

use std::{
    net::{SocketAddr, SocketAddrV4},
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use syncookie_tests::{
    daemon::UNSUPPORTED,
    endtoend::{Handoffs, handoff_counts_fit},
    flood::Flood,
    flood::smoke,
    guarded,
    negotiated::{End, Negotiated, echo_large},
    packets::{echo_once, send_raw_tcp},
    wait_until,
};

use super::{GUEST_IP, GUEST_MAC, HOST_IP, PORT, ask, host::Wire};

const CONNECTIONS: u64 = 20;
const FORGED_ACKS: u16 = 20;
/// What the XDP program logs, once, when the driver refuses `bpf_xdp_adjust_meta`: TC then
/// re-checks every cookie ACK itself (syncookie-ebpf/src/xdp.rs).
const NO_META: &str = "no room for metadata";

/// `syncookie run` arguments of each mode, as the smoke suite runs them.
fn run_args(mode: &str) -> Option<&'static str> {
    match mode {
        "full" => Some("--cookies own"),
        "kernel" => Some("--cookies kernel --refresh-secs 10 --timestamps-without-offsets"),
        _ => None,
    }
}

/// Runs every check of `mode`, printing a line each and the mode's result; returns whether
/// the mode passed (or was refused by a kernel too old for it).
pub fn suite(wire: &Wire, mode: &str) -> bool {
    let Some(args) = run_args(mode) else {
        println!("virtio: {mode} result fail: unknown mode");
        return false;
    };
    let mut failed = Vec::new();
    let mut check = |name: &'static str, r: Result<String, String>| match r {
        Ok(detail) => {
            println!("virtio: {mode} {name} ok: {detail}");
            true
        }
        Err(why) => {
            println!("virtio: {mode} {name} FAIL: {}", why.replace('\n', " | "));
            failed.push(name);
            false
        }
    };
    check("unshielded", guarded(|| unshielded(wire, mode)));
    let attach = format!("attach --ports {PORT} --xdp-mode native {args}");
    let attached = match ask(&attach) {
        Err(out) if out.contains(UNSUPPORTED) => {
            let at = out.find(UNSUPPORTED).unwrap_or_default();
            let why = out[at..].lines().next().unwrap_or_default();
            println!("virtio: {mode} result unsupported: {why}");
            return true;
        }
        r => check("attach", r.and_then(|link| native(&link))),
    };
    if attached {
        check("connections", guarded(|| connections(wire, mode)));
        check("options", guarded(options));
        check("forged-acks", guarded(|| forged_acks(wire, mode)));
        check("flood", guarded(|| flood(wire, mode)));
        check("detach", guarded(detach));
    }
    if failed.is_empty() {
        println!("virtio: {mode} result pass");
        true
    } else {
        println!("virtio: {mode} result fail: {}", failed.join(", "));
        false
    }
}

/// The shield's counters, or none (all zero) while it is not attached.
fn stats() -> Value {
    ask("stats")
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

fn counter(v: &Value, name: &str) -> u64 {
    v.get(name).and_then(Value::as_u64).unwrap_or(0)
}

/// The guest's echo server: connections accepted, and each one's end (TCP_INFO).
fn served() -> Result<(u64, Vec<End>), String> {
    let v: Value = serde_json::from_str(&ask("served")?).map_err(|e| e.to_string())?;
    let ends = v["ends"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| End {
            options: e[0].as_u64().unwrap_or(0) as u8,
            snd_wscale: e[1].as_u64().unwrap_or(0) as u8,
            rcv_wscale: e[2].as_u64().unwrap_or(0) as u8,
        })
        .collect();
    Ok((v["accepted"].as_u64().unwrap_or(0), ends))
}

fn addr() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(GUEST_IP, PORT))
}

/// What `n` connections did, each judged: accepted by the guest, SYN-ACKs seen on the wire, and
/// the shield's counters before and after.
struct Round {
    n: u64,
    accepted: u64,
    seen: u64,
    before: Value,
    after: Value,
}

impl Round {
    /// `n` connections with data, one after another.
    fn run(wire: &Wire, n: u64) -> Result<Self, String> {
        let (before, (accepted0, _), seen0) = (stats(), served()?, wire.synacks());
        for i in 0..n {
            echo_once(addr(), 100 + i as usize).map_err(|e| format!("connection {i}: {e}"))?;
        }
        // Every SYN-ACK was on the wire before its client connected; the capture may lag.
        wait_until(Duration::from_secs(3), || wire.synacks() - seen0 >= n);
        Ok(Self {
            n,
            accepted: served()?.0 - accepted0,
            seen: wire.synacks() - seen0,
            before,
            after: stats(),
        })
    }

    fn d(&self, name: &str) -> u64 {
        counter(&self.after, name).saturating_sub(counter(&self.before, name))
    }

    /// Every connection accepted, answered by the shield (or, kernel mode's refresh, by its
    /// kernel on purpose), and handed off; no other SYN-ACK on the wire.
    fn judge(&self, mode: &str) -> Result<String, String> {
        let (sent, refresh) = (self.d("synack_sent"), self.d("syn_refresh"));
        let n = self.n;
        if self.accepted != n {
            return Err(format!("{} of {n} connections accepted", self.accepted));
        }
        if sent + refresh != n || self.seen != sent + refresh {
            return Err(format!(
                "{n} echoed, {} SYN-ACKs on the wire, synack_sent +{sent}, syn_refresh \
                 +{refresh}: {} from the guest's own stack unasked",
                self.seen,
                self.seen.saturating_sub(sent + refresh)
            ));
        }
        let rule = match mode {
            "kernel" => Handoffs::KernelCookies,
            _ => Handoffs::OnePerConnection,
        };
        let (ok, followed) = (self.d("handoff_ok"), self.d("handoff_followed"));
        handoff_counts_fit(ok, followed, self.d("ack_valid"), n, rule)?;
        Ok(format!(
            "{n}/{n} echoed; {} SYN-ACKs on the wire = synack_sent +{sent} + syn_refresh \
             +{refresh}; handoff_ok +{ok}",
            self.seen
        ))
    }
}

/// The negative control: with no shield the guest's kernel answers, and the connections check
/// must fail, naming those SYN-ACKs; the capture must have seen each.
fn unshielded(wire: &Wire, mode: &str) -> Result<String, String> {
    let r = Round::run(wire, 5)?;
    match r.judge(mode) {
        Ok(d) => Err(format!("passed with no shield attached: {d}")),
        Err(why) if r.accepted == 5 && r.seen == 5 => Ok(format!(
            "no shield: 5/5 echoed, 5 SYN-ACKs of the guest's kernel seen; the connections \
             check fails as it must ({why})"
        )),
        Err(why) => Err(format!("without the shield: {why}")),
    }
}

/// The attach answer holds the link: native (driver) XDP, not generic.
fn native(link: &str) -> Result<String, String> {
    let first = link.lines().take(3).collect::<Vec<_>>().join(" ");
    if link.contains("xdpgeneric") || !link.contains("prog/xdp ") {
        return Err(format!("not in native XDP: {first}"));
    }
    let nic = ask("nic")?;
    Ok(format!("native XDP on {}", nic.trim()))
}

fn connections(wire: &Wire, mode: &str) -> Result<String, String> {
    let r = Round::run(wire, CONNECTIONS)?;
    let detail = r.judge(mode).map_err(|e| format!("{e}: {}", r.after))?;
    if mode != "full" {
        return Ok(detail);
    }
    // Native XDP, TC re-check off: without metadata no handoff could have happened.
    let log = ask("log")?;
    let path = if log.contains(NO_META) {
        "handoff by the TC re-check (the driver refused bpf_xdp_adjust_meta)"
    } else {
        "handoff by XDP metadata (bpf_xdp_adjust_meta room given; TC re-check off)"
    };
    Ok(format!("{detail}; {path}"))
}

/// Two connections with 256 KB echoed each: every option on both ends (the client's TCP_INFO
/// here, the server's from the guest's echo server).
fn options() -> Result<String, String> {
    let before = stats();
    let (_, ends0) = served()?;
    let clients = (0..2)
        .map(|_| echo_large(addr()))
        .collect::<Result<Vec<_>, _>>()?;
    let (_, ends) = served()?;
    let servers = &ends[ends0.len()..];
    if servers.len() != 2 {
        return Err(format!("{} connections accepted, want 2", servers.len()));
    }
    let after = stats();
    let d = |n: &str| counter(&after, n) - counter(&before, n);
    if d("synack_sent") + d("syn_refresh") != 2 {
        return Err(format!("not answered by the shield: {after}"));
    }
    let mut seen = Vec::new();
    for (client, server) in clients.into_iter().zip(servers.iter().copied()) {
        let n = Negotiated { client, server };
        n.every_option()?;
        seen.push(n);
    }
    Ok(seen[1].to_string())
}

/// Forged handshake ACKs from the host: each dropped or left to the guest's kernel to reset,
/// none a connection; a real client connects after them (the positive control).
fn forged_acks(wire: &Wire, mode: &str) -> Result<String, String> {
    let before = stats();
    let dst = SocketAddrV4::new(GUEST_IP, PORT);
    for i in 0..FORGED_ACKS {
        let src = SocketAddrV4::new(HOST_IP, 40000 + i);
        send_raw_tcp(src, dst, rand::random(), rand::random(), false);
    }
    let judged = |c: &Value| counter(c, "ack_bad_cookie") + counter(c, "ack_reset");
    let want = judged(&before) + u64::from(FORGED_ACKS);
    wait_until(Duration::from_secs(10), || judged(&stats()) >= want);
    let after = stats();
    let handed = counter(&after, "handoff_ok") - counter(&before, "handoff_ok");
    if judged(&after) != want || handed != 0 {
        return Err(format!(
            "{} of {FORGED_ACKS} judged, {handed} handed off: {after}",
            judged(&after) - judged(&before)
        ));
    }
    let control = Round::run(wire, 1)?;
    control
        .judge(mode)
        .map_err(|e| format!("after them: {e}"))?;
    Ok(format!(
        "{FORGED_ACKS}/{FORGED_ACKS} refused (ack_bad_cookie +{}, ack_reset +{}), none handed \
         off; a real client connected after them",
        counter(&after, "ack_bad_cookie") - counter(&before, "ack_bad_cookie"),
        counter(&after, "ack_reset") - counter(&before, "ack_reset")
    ))
}

/// Spoofed SYNs from 198.18.0.0/16 onto the tap (the lab's live-frames generator, XDP_TX on
/// the tap) while real clients connect: every client served, most SYNs answered, and every
/// SYN-ACK on the wire one the shield counted.
fn flood(wire: &Wire, _mode: &str) -> Result<String, String> {
    let syns = Flood::fresh(&wire.ns, &wire.tap, GUEST_MAC, GUEST_IP, PORT);
    let (before, seen0, again0) = (stats(), wire.synacks(), wire.again());
    let flooding = AtomicBool::new(true);
    let started = Instant::now();
    let (sent, clients) = thread::scope(|s| {
        let f = s.spawn(|| {
            let n = syns.run(smoke::SYNS, smoke::RATE, smoke::MAX);
            flooding.store(false, Ordering::Relaxed);
            n
        });
        let c = s.spawn(|| {
            let (mut ok, mut errors) = (0u64, Vec::new());
            while flooding.load(Ordering::Relaxed) || ok + (errors.len() as u64) < 5 {
                match echo_once(addr(), 100) {
                    Ok(()) => ok += 1,
                    Err(e) => errors.push(e),
                }
            }
            (ok, errors)
        });
        (f.join(), c.join())
    });
    let secs = started.elapsed().as_secs_f64();
    let sent = sent.map_err(|_| "the flood generator panicked".to_string())?;
    let (ok, errors) = clients.map_err(|_| "the clients panicked".to_string())?;
    if let Some(first) = errors.first() {
        return Err(format!(
            "{} of {} clients failed during the flood (first: {first})",
            errors.len(),
            ok + errors.len() as u64
        ));
    }
    // The guest works through its receive ring after the generator stops.
    let answered_by = |c: &Value| counter(c, "synack_sent") + counter(c, "syn_refresh");
    let want = answered_by(&before) + ok + sent / 2;
    wait_until(Duration::from_secs(10), || answered_by(&stats()) >= want);
    let shield = answered_by(&stats()) - answered_by(&before);
    wait_until(Duration::from_secs(5), || wire.synacks() - seen0 >= shield);
    let after = stats();
    let answered = answered_by(&after) - answered_by(&before);
    let seen = wire.synacks() - seen0;
    if answered < ok + sent / 2 || seen != answered {
        return Err(format!(
            "{sent} spoofed SYNs and {ok} clients: {answered} answered by the shield, {seen} \
             SYN-ACKs on the wire: {after}"
        ));
    }
    Ok(format!(
        "{sent} spoofed SYNs in {secs:.1} s, {} answered, {seen} distinct SYN-ACKs on the wire \
         (each counted by the shield; {} sent again meanwhile, the daemon's resends); {ok}/{ok} \
         clients echoed meanwhile",
        answered - ok,
        wire.again() - again0
    ))
}

/// SIGTERM to the daemon: a clean exit, no XDP left on the NIC, no counters to read.
fn detach() -> Result<String, String> {
    let link = ask("detach")?;
    if link.contains("xdp") {
        return Err(format!("XDP left on the NIC: {link}"));
    }
    if ask("stats").is_ok() {
        return Err("counters still readable after the detach".into());
    }
    Ok("clean exit; no XDP on the NIC; `syncookie stats`: not attached".into())
}
