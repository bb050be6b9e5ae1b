//! The reverse-path filter: with rp_filter on, the kernel drops a SYN whose source it could not
//! answer by the interface it came in on (`fib_validate_source()`): a blackhole route (admins
//! refuse ranges so), or in strict mode a route out of another interface. The shield must not
//! answer what the kernel drops. Same spoofed SYNs, first to the kernel alone, then with the
//! shield; a routed source beside them as the positive control, sent last so that its answers
//! arriving mean the others were judged. Then rp_filter turns loose while the shield runs: it
//! follows (netconf notification) and answers the source routed out of another interface.

use std::{
    net::{Ipv4Addr, SocketAddrV4, TcpListener},
    time::{Duration, Instant},
};

use syncookie::bpf::pinned::PinnedMaps;
use syncookie_common::stats::Counter;
use syncookie_tests::{daemon, daemon::Daemon, lab::Lab, packets::spoof_syns, require_root};

const PORT: u16 = 8080;
const N: u16 = 10;
const BLACKHOLED: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
/// Routed out of another interface, not the one the SYNs come in on.
const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
/// Routed back through the client: the control, one address per round (a round's request
/// sockets would meet the next round's SYNs).
const ROUTED: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 7),
    Ipv4Addr::new(192, 0, 2, 8),
    Ipv4Addr::new(192, 0, 2, 9),
];

/// Polls `f` until it returns true, or fails with `what` after five seconds.
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn spoof_all(lab: &Lab, dst: SocketAddrV4, sources: &[Ipv4Addr]) {
    let _in = lab.client.enter();
    for &s in sources {
        spoof_syns(s, dst, N);
    }
}

#[test]
fn sources_the_reverse_path_filter_refuses_are_the_kernels() {
    require_root!();
    let lab = Lab::new();
    let s = &lab.server;
    s.exec(&["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1"]);
    // The kernel's request sockets for the control must not send their SYN-ACKs again.
    s.exec(&["sysctl", "-qw", "net.ipv4.tcp_synack_retries=0"]);
    s.exec(&["ip", "route", "add", "blackhole", "198.51.100.0/24"]);
    // Another interface (a veth pair inside the server: dummy is not built into every kernel).
    s.exec(&[
        "ip", "link", "add", "scx", "type", "veth", "peer", "name", "scy",
    ]);
    s.exec(&["ip", "link", "set", "scx", "up"]);
    s.exec(&["ip", "link", "set", "scy", "up"]);
    s.exec(&["ip", "route", "add", "203.0.113.0/24", "dev", "scx"]);
    let client = lab.client_ip.to_string();
    s.exec(&["ip", "route", "add", "192.0.2.0/24", "via", &client]);
    let _l = {
        let _in = s.enter();
        TcpListener::bind((lab.server_ip, PORT)).expect("listen")
    };
    let dst = SocketAddrV4::new(lab.server_ip, PORT);

    // The kernel alone: only the routed source is answered.
    spoof_all(&lab, dst, &[BLACKHOLED, ELSEWHERE, ROUTED[0]]);
    until("the kernel's SYN-ACKs to the control", || {
        lab.kernel_synacks() >= u64::from(N)
    });
    assert_eq!(lab.kernel_synacks(), u64::from(N), "kernel alone");

    let _d = Daemon::start(s, &lab.server_if, &["--ports", &PORT.to_string()]);
    spoof_all(&lab, dst, &[BLACKHOLED, ELSEWHERE, ROUTED[1]]);
    until("the shield's SYN-ACKs to the control", || {
        lab.counters().get(Counter::SynackSent) >= u64::from(N)
    });
    let c = lab.counters();
    let n = u64::from(N);
    assert_eq!(
        (
            c.get(Counter::SynSeen),
            c.get(Counter::SynackSent),
            c.get(Counter::RpFiltered)
        ),
        (3 * n, n, 2 * n),
        "strict: {}",
        c.table()
    );
    assert_eq!(
        lab.kernel_synacks(),
        n,
        "the kernel answered none of the SYNs the shield left to it"
    );

    // Loose: a route out of another interface passes; a blackhole does not.
    s.exec(&["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=2"]);
    let pins = daemon::pins(s, &lab.server_if);
    let on = PinnedMaps::new(&pins).rpf_on().expect("pinned SC_RPF_ON");
    until("the shield to follow rp_filter=2", || {
        on.get(&0, 0).is_ok_and(|v| v == 2)
    });
    spoof_all(&lab, dst, &[BLACKHOLED, ELSEWHERE, ROUTED[2]]);
    until("the shield's SYN-ACKs in loose mode", || {
        lab.counters().get(Counter::SynackSent) >= 3 * n
    });
    let c = lab.counters();
    assert_eq!(
        (
            c.get(Counter::SynSeen),
            c.get(Counter::SynackSent),
            c.get(Counter::RpFiltered)
        ),
        (6 * n, 3 * n, 3 * n),
        "loose: {}",
        c.table()
    );
}
