//! Locality end to end: the server forwards (a router, a host bridging VMs, a
//! Kubernetes node) and listens on the wildcard address. The shield must answer only what the
//! server itself would accept: its own addresses, kept current from rtnetlink by `syncookie
//! run`, and never a destination it would forward.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    thread,
    time::{Duration, Instant},
};

use aya::maps::lpm_trie::Key;
use syncookie::bpf::{pinned::PinnedMaps, pins::PinDir};
use syncookie_common::{
    maps::{V4_MAPPED_PREFIX, v4_mapped},
    stats::Counter,
};
use syncookie_tests::{daemon::Daemon, lab::Lab, require_root};

const PORT: u16 = 8080;
/// How soon a change of the server's addresses must reach the shield, timed from the moment
/// `ip addr` has returned: the daemon follows rtnetlink's events (about 100 ms measured here,
/// twice over in a run); 2 s keeps a loaded two-CPU machine's scheduling delays out of it.
const SYNC_WITHIN: Duration = Duration::from_secs(2);

fn pins(lab: &Lab) -> PinDir {
    syncookie_tests::daemon::pins(&lab.server, &lab.server_if)
}

/// A forwarding server with a wildcard listener, and a client that routes `far`'s /24 through
/// it: `far` is another host as far as the server is concerned.
fn router_lab() -> (Lab, TcpListener, Ipv4Addr) {
    let lab = Lab::new();
    lab.server.sysctl("net.ipv4.ip_forward", "1");
    let listener = {
        let _in = lab.server.enter();
        TcpListener::bind((Ipv4Addr::UNSPECIFIED, PORT)).expect("bind 0.0.0.0")
    };
    // 10.99.x.0/24, never the lab's own network.
    let far = Ipv4Addr::new(10, 99, lab.server_ip.octets()[2].wrapping_add(1), 5);
    let [a, b, c, _] = far.octets();
    lab.client.exec(&[
        "ip",
        "route",
        "add",
        &format!("{a}.{b}.{c}.0/24"),
        "via",
        &lab.server_ip.to_string(),
    ]);
    (lab, listener, far)
}

/// A connect from the client namespace.
fn connect(lab: &Lab, to: Ipv4Addr, timeout: Duration) -> std::io::Result<TcpStream> {
    let _in = lab.client.enter();
    TcpStream::connect_timeout(&SocketAddr::from((to, PORT)), timeout)
}

/// Waits until `SC_LOCAL_ADDRS` says whether `addr` is local as `want`; the time it took.
fn wait_local(lab: &Lab, addr: Ipv4Addr, want: bool) -> Duration {
    let trie = PinnedMaps::new(&pins(lab))
        .local_addrs()
        .expect("pinned SC_LOCAL_ADDRS");
    let key = Key::new(V4_MAPPED_PREFIX + 32, v4_mapped(u32::from(addr)));
    let start = Instant::now();
    loop {
        let local = trie.get(&key, 0).is_ok();
        if local == want || start.elapsed() > SYNC_WITHIN * 3 {
            let took = start.elapsed();
            assert_eq!(
                local, want,
                "{addr} local in the shield's map after {took:?}"
            );
            return took;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_forwarded_syn_is_not_answered() {
    require_root!();
    let (lab, _l, far) = router_lab();
    let _d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);

    // The server has no route to `far`: the kernel, given the SYN, says so (or stays silent).
    let r = connect(&lab, far, Duration::from_secs(2));
    assert!(
        r.is_err(),
        "a connect to {far}, which does not exist, succeeded: the shield answered for it"
    );
    let c = lab.counters();
    assert_eq!(
        c.get(Counter::SynackSent),
        0,
        "SYN-ACKs for {far}:\n{}",
        c.table()
    );
    assert!(c.get(Counter::NotLocal) >= 1, "not_local:\n{}", c.table());

    // The server's own address still goes through the shield.
    let s = connect(&lab, lab.server_ip, Duration::from_secs(5)).expect("connect to the server");
    drop(s);
    let c = lab.counters();
    assert_eq!(c.get(Counter::SynackSent), 1, "{}", c.table());
    assert_eq!(c.get(Counter::HandoffOk), 1, "{}", c.table());
    assert_eq!(
        lab.kernel_synacks(),
        0,
        "the server's own stack sent SYN-ACKs"
    );
}

#[test]
fn addresses_added_and_removed_are_followed() {
    require_root!();
    let (lab, _l, far) = router_lab();
    let _d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    wait_local(&lab, far, false);

    // Added after the daemon started, on another interface (a weak host takes it anywhere).
    let cidr = format!("{far}/32");
    lab.server.exec(&["ip", "addr", "add", &cidr, "dev", "lo"]);
    let took = wait_local(&lab, far, true);
    eprintln!("{far} local in the shield's map {took:?} after `ip addr add`");
    assert!(
        took <= SYNC_WITHIN,
        "{far} became local in the map after {took:?}"
    );
    let s = connect(&lab, far, Duration::from_secs(5)).expect("connect to the added address");
    drop(s);
    let c = lab.counters();
    assert_eq!(c.get(Counter::SynackSent), 1, "{}", c.table());
    assert_eq!(c.get(Counter::HandoffOk), 1, "{}", c.table());

    // Removed: no longer answered.
    lab.server.exec(&["ip", "addr", "del", &cidr, "dev", "lo"]);
    let took = wait_local(&lab, far, false);
    eprintln!("{far} out of the shield's map {took:?} after `ip addr del`");
    assert!(took <= SYNC_WITHIN, "{far} left the map after {took:?}");
    let r = connect(&lab, far, Duration::from_secs(2));
    assert!(r.is_err(), "a connect to the removed {far} succeeded");
    let c = lab.counters();
    assert_eq!(c.get(Counter::SynackSent), 1, "{}", c.table());
    assert!(c.get(Counter::NotLocal) >= 1, "{}", c.table());
}
