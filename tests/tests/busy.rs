//! A busy service: one client prefix (a NAT, a proxy, a load balancer) opening new connections
//! far faster than the per-prefix SYN-ACK budget, every handshake completing. The budget holds
//! only SYN-ACKs nobody answers, so it never throttles them; `auto` engages on SYNs that no
//! handshake answers, so a busy day does not engage it. A spoofed victim is still held to its
//! budget while the same prefix's real clients connect.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    thread,
    time::{Duration, Instant},
};

use syncookie_common::stats::Counter;
use syncookie_tests::{daemon::Daemon, lab::Lab, packets::spoof_syns, require_root};

const PORT: u16 = 8080;
/// Well below what the client loop reaches here (thousands per second), so that a busy prefix
/// is many times over it.
const BUDGET: u64 = 200;
const LOAD_TIME: Duration = Duration::from_secs(3);

/// New connections (connect, one echo, close) from the client, four at a time, for `time`:
/// (completed, failed).
fn load(lab: &Lab, addr: SocketAddr, time: Duration) -> (u64, u64) {
    let (ok, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let _in = lab.client.enter();
                while !stop.load(Ordering::Relaxed) {
                    let n = if echo_once(addr).is_ok() {
                        &ok
                    } else {
                        &failed
                    };
                    n.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        thread::sleep(time);
        stop.store(true, Ordering::Relaxed);
    });
    (ok.into_inner(), failed.into_inner())
}

fn echo_once(addr: SocketAddr) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"ping")?;
    let mut b = [0u8; 4];
    s.read_exact(&mut b)
}

/// A lab whose server keeps no TIME_WAIT sockets: reused client ports would otherwise meet
/// them, and such SYNs are the kernel's (`syn_passed`), which would hide the budget.
fn busy_lab() -> (Lab, SocketAddr) {
    let lab = Lab::new();
    lab.server.sysctl("net.ipv4.tcp_max_tw_buckets", "0");
    let addr = lab.echo_server(lab.server_ip.into(), PORT);
    (lab, addr)
}

/// The shield with `flags` under the client loop for [`LOAD_TIME`]: the connections made and
/// the counters; fails unless every connection succeeded at three times [`BUDGET`] or more.
fn busy_run(flags: &[&str]) -> (u64, syncookie::observe::counters::Snapshot) {
    let (lab, addr) = busy_lab();
    let port = PORT.to_string();
    let args = [&["--ports", port.as_str()], flags].concat();
    let _d = Daemon::start(&lab.server, &lab.server_if, &args);
    let (ok, failed) = load(&lab, addr, LOAD_TIME);
    let rate = ok / LOAD_TIME.as_secs();
    let c = lab.counters();
    eprintln!("{flags:?}: {ok} connections in {LOAD_TIME:?} ({rate}/s), {failed} failed");
    assert!(
        rate >= 3 * BUDGET,
        "{flags:?}: only {rate} connections/s, never past {BUDGET}/s:\n{}",
        c.table()
    );
    assert_eq!(failed, 0, "{}", c.table());
    (ok, c)
}

#[test]
fn a_busy_prefix_is_not_throttled() {
    require_root!();
    let (ok, c) = busy_run(&["--synack-prefix-rate", &BUDGET.to_string()]);
    assert_eq!(c.get(Counter::SynDroppedBudget), 0, "{}", c.table());
    // Every connection was the shield's, handed off once.
    assert_eq!(c.get(Counter::HandoffOk), ok, "{}", c.table());
    let (sent, seen) = (c.get(Counter::SynackSent), c.get(Counter::SynSeen));
    assert_eq!(sent, seen, "{}", c.table());
}

#[test]
fn auto_is_not_engaged_by_a_busy_day() {
    require_root!();
    let (_, c) = busy_run(&["--mode", "auto", "--engage-rate", &BUDGET.to_string()]);
    assert_eq!(
        c.get(Counter::SynackSent),
        0,
        "auto engaged:\n{}",
        c.table()
    );
    let (idle, seen) = (c.get(Counter::SynIdle), c.get(Counter::SynSeen));
    assert_eq!(idle, seen, "{}", c.table());
}

/// Spoofed SYNs from the client's own /24 get at most the budget while the real client in it
/// keeps connecting (its completed handshakes cost the prefix nothing).
#[test]
fn a_spoofed_victim_is_held_while_its_prefix_connects() {
    require_root!();
    let (lab, addr) = busy_lab();
    let _d = Daemon::start(
        &lab.server,
        &lab.server_if,
        &["--ports", &PORT.to_string(), "--synack-prefix-rate", "50"],
    );
    let SocketAddr::V4(dst) = addr else {
        unreachable!()
    };
    let [a, b, c, _] = lab.client_ip.octets();
    let victim = Ipv4Addr::new(a, b, c, 200);
    assert_ne!(victim, lab.client_ip);
    let start = Instant::now();
    let (ok, failed) = thread::scope(|s| {
        let real = s.spawn(|| load(&lab, addr, Duration::from_secs(2)));
        let _in = lab.client.enter();
        spoof_syns(victim, dst, 2000);
        real.join().unwrap()
    });
    let seconds = start.elapsed().as_secs() + 1;
    let c = lab.counters();
    assert_eq!(failed, 0, "{}", c.table());
    assert!(ok > 0);
    // Every SYN-ACK not answered by a handshake went to the victim.
    let to_victim = c.get(Counter::SynackSent) - c.get(Counter::HandoffOk).min(ok);
    assert!(
        to_victim <= 50 * (seconds + 1) + 4,
        "{to_victim} SYN-ACKs to the victim in {seconds} s: {}",
        c.table()
    );
    assert!(c.get(Counter::SynDroppedBudget) > 0, "{}", c.table());
}

/// A new SYN for the 4-tuple of a connection the server closed (its TIME_WAIT socket) is the
/// kernel's in every mode: the shield finds the socket and passes the SYN untouched
/// (`syn_passed`), and the kernel takes it as a new connection when its ISN and timestamp
/// are newer (tcp_timewait_state_process()), with its own SYN-ACK.
#[test]
fn a_syn_meeting_time_wait_is_the_kernels() {
    require_root!();
    for mode in ["always", "auto", "monitor"] {
        let lab = Lab::new();
        // The server speaks and closes first: the TIME_WAIT socket is the server's.
        let l = {
            let _in = lab.server.enter();
            std::net::TcpListener::bind((lab.server_ip, PORT)).expect("bind")
        };
        let addr = l.local_addr().unwrap();
        thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { break };
                let _ = s.write_all(b"bye");
            }
        });
        let _d = Daemon::start(
            &lab.server,
            &lab.server_if,
            &["--ports", &PORT.to_string(), "--mode", mode],
        );
        let _in = lab.client.enter();
        let port = 47000;
        for round in 0..2 {
            let mut s = connect_from(port, addr).unwrap_or_else(|e| panic!("{mode} {round}: {e}"));
            let mut b = Vec::new();
            s.read_to_end(&mut b).unwrap();
            assert_eq!(b, b"bye", "{mode} round {round}");
        }
        let c = lab.counters();
        assert_eq!(c.get(Counter::SynSeen), 2, "{mode}: {}", c.table());
        // `auto` while quiet leaves every SYN to the kernel before any lookup.
        let (passed, idle) = if mode == "auto" { (0, 2) } else { (1, 0) };
        assert_eq!(
            (c.get(Counter::SynPassed), c.get(Counter::SynIdle)),
            (passed, idle),
            "{mode}: the second SYN met TIME_WAIT: {}",
            c.table()
        );
        assert_eq!(
            lab.kernel_synacks(),
            1 + u64::from(mode != "always"),
            "{mode}"
        );
    }
}

/// A connection from the client's `port` (SO_REUSEADDR: the client's own TIME_WAIT aside).
fn connect_from(port: u16, to: SocketAddr) -> std::io::Result<TcpStream> {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, setsockopt, socket,
        sockopt::ReuseAddr,
    };
    let SocketAddr::V4(to) = to else {
        unreachable!()
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&fd, ReuseAddr, &true)?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)),
    )?;
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(to))?;
    Ok(TcpStream::from(fd))
}
