//! IPv6 end to end in network namespaces: real clients and a real server over the lab's veth,
//! the shield in between (the same checks as tests/netns.rs, over IPv6).

use std::{
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::Duration,
};

use syncookie_common::stats::Counter;
use syncookie_tests::{daemon::Daemon, endtoend, flood::Flood, lab::Lab, require_root};

const PORT: u16 = 8080;

fn daemon(lab: &Lab, extra: &[&str]) -> Daemon {
    let mut args = vec!["--ports", "8080"];
    args.extend_from_slice(extra);
    Daemon::start(&lab.server, &lab.server_if, &args)
}

#[test]
fn ipv6_hundred_connections_through_cookies() {
    require_root!();
    let lab = Lab::new();
    let (addr, accepted) = lab.echo_server_reporting(lab.server_ip6.into(), PORT);
    let _d = daemon(&lab, &[]);
    endtoend::hundred_connections(&lab, addr, &accepted);
}

#[test]
fn ipv6_lost_final_ack_and_rotations() {
    require_root!();
    let mut lab = Lab::new();
    let (addr, _acc) = lab.echo_server_reporting(lab.server_ip6.into(), PORT);
    let _d = daemon(&lab, &[]);
    assert!(lab.connect_with_lost_ack(addr, |_| {}), "lost final ACK");
    assert!(
        lab.connect_with_lost_ack(addr, Lab::rotate),
        "one rotation must not break a handshake"
    );
    let c = lab.counters();
    assert_eq!(c.get(Counter::HandoffOk), 2, "{}", c.table());
    assert!(
        !lab.connect_with_lost_ack(addr, |l| {
            l.rotate();
            l.rotate();
        }),
        "a cookie two rotations old must be refused"
    );
    let c = lab.counters();
    assert_eq!(c.get(Counter::HandoffOk), 2);
    assert!(
        c.get(Counter::AckExpired) + c.get(Counter::AckReset) >= 1,
        "{}",
        c.table()
    );
}

#[test]
fn ipv6_generic_xdp_mode_connects_too() {
    require_root!();
    let lab = Lab::new();
    let (addr, accepted) = lab.echo_server_reporting(lab.server_ip6.into(), PORT);
    let _d = daemon(&lab, &["--xdp-mode", "skb"]);
    for i in 0..20u8 {
        lab.echo_stream(addr, &[i; 3000]).expect("echo");
    }
    let c = lab.counters();
    assert_eq!(c.get(Counter::SynackSent), 20, "{}", c.table());
    assert_eq!(accepted.try_iter().count(), 20, "connections accepted");
    endtoend::handoffs_fit(&c, 20, endtoend::Handoffs::UpToTwoCpus).unwrap();
    assert_eq!(lab.kernel_synacks(), 0);
}

/// Forged IPv6 handshake ACKs: each judged, none handed off, real clients still connect.
#[test]
fn ipv6_forged_acks_are_judged_and_counted() {
    require_root!();
    let lab = Lab::new();
    let (addr, _acc) = lab.echo_server_reporting(lab.server_ip6.into(), PORT);
    let _d = daemon(&lab, &[]);
    endtoend::forged_acks_are_judged(&lab, lab.client_ip6.into(), addr);
}

/// A spoofed IPv6 SYN flood (2001:2::/48, random sources, ports and ISNs, at up to 20,000 per
/// second) while real clients connect: every client succeeds, the flood is answered by XDP up to
/// the default budget of its /48 and dropped beyond it, and the server's kernel answers none
/// of it.
#[test]
fn ipv6_spoofed_flood_while_clients_connect() {
    require_root!();
    let lab = Lab::new();
    let (addr, _acc) = lab.echo_server_reporting(lab.server_ip6.into(), PORT);
    let _d = daemon(&lab, &[]);
    let flood = Flood::v6(&lab, PORT);
    let flooding = AtomicBool::new(true);
    let (sent, (ok, failed)) = thread::scope(|sc| {
        let f = sc.spawn(|| {
            let _in = lab.client.enter();
            let n = flood.run(40_000, 20_000, Duration::from_secs(3));
            flooding.store(false, Ordering::Relaxed);
            n
        });
        let c = sc.spawn(|| {
            let (mut ok, mut failed) = (0u32, 0u32);
            while flooding.load(Ordering::Relaxed) || ok + failed < 10 {
                if lab.echo(addr, b"ping").is_ok() {
                    ok += 1
                } else {
                    failed += 1
                }
            }
            (ok, failed)
        });
        (f.join().unwrap(), c.join().unwrap())
    });
    let c = lab.counters();
    assert_eq!(
        failed,
        0,
        "{failed} of {} clients failed: {}",
        ok + failed,
        c.table()
    );
    let judged = c.get(Counter::SynackSent) + c.get(Counter::SynDroppedBudget);
    // The veth ring may drop some of each burst; most must arrive and be judged.
    assert!(
        judged >= sent / 2,
        "{sent} sent, {judged} judged: {}",
        c.table()
    );
    assert!(
        c.get(Counter::SynDroppedBudget) > 0,
        "one /48 over its budget: {}",
        c.table()
    );
    assert_eq!(
        lab.kernel_synacks(),
        0,
        "the kernel answered: {}",
        c.table()
    );
}
