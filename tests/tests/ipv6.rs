//! IPv6 end to end in network namespaces: real clients and a real server over the lab's veth,
//! the shield in between (the same checks as tests/netns.rs, over IPv6).

use std::{
    net::SocketAddr,
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use syncookie::counters;
use syncookie_common::stats::Counter;
use syncookie_tests::{
    daemon::Daemon,
    flood::Flood,
    lab::Lab,
    packets::{TCPI_OPT_SACK, TCPI_OPT_TIMESTAMPS, TCPI_OPT_WSCALE, send_raw_tcp, tcp_info},
    require_root,
};

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
    for i in 0..100u32 {
        let payload: Vec<u8> = (0..1000 + i).map(|b| (b * 7 + i) as u8).collect();
        let s = lab.echo_stream(addr, &payload).expect("echo");
        let o = tcp_info(&s).tcpi_options;
        let want = TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE;
        assert_eq!(o & want, want, "client options {o:#x}");
        let so = accepted.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(so & want, want, "server options {so:#x}");
    }
    let c = lab.counters();
    assert_eq!(
        lab.kernel_synacks(),
        0,
        "the server's own stack sent SYN-ACKs"
    );
    assert_eq!(c.get(Counter::SynackSent), 100, "{}", c.table());
    // One per connection, now and then its first data segment too (see netns.rs).
    assert!(
        (100..=200).contains(&c.get(Counter::HandoffOk)),
        "{}",
        c.table()
    );
    assert!(
        (100..=200).contains(&c.get(Counter::AckValid)),
        "{}",
        c.table()
    );
    assert_eq!(c.get(Counter::AckBadCookie), 0);
    assert_eq!(c.get(Counter::HandoffFailed), 0);
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
    let (addr, _acc) = lab.echo_server_reporting(lab.server_ip6.into(), PORT);
    let _d = daemon(&lab, &["--xdp-mode", "skb"]);
    for i in 0..20u8 {
        lab.echo_stream(addr, &[i; 3000]).expect("echo");
    }
    let c = lab.counters();
    assert_eq!(c.get(Counter::SynackSent), 20, "{}", c.table());
    assert!(
        (20..=40).contains(&c.get(Counter::HandoffOk)),
        "{}",
        c.table()
    );
    assert_eq!(lab.kernel_synacks(), 0);
}

/// Forged IPv6 handshake ACKs (random sequence and acknowledgment numbers) to the listener:
/// each is judged (dropped, or within the reset budget left to the kernel to reset), none is
/// handed off, and real clients still connect.
#[test]
fn ipv6_forged_acks_are_judged_and_counted() {
    require_root!();
    let lab = Lab::new();
    let (addr, _acc) = lab.echo_server_reporting(lab.server_ip6.into(), PORT);
    let _d = daemon(&lab, &[]);
    let forged = 50u16;
    {
        let _in = lab.client.enter();
        for i in 0..forged {
            let src = SocketAddr::from((lab.client_ip6, 40000 + i));
            send_raw_tcp(src, addr, rand::random(), rand::random(), false);
        }
    }
    let judged = |c: &counters::Snapshot| c.get(Counter::AckBadCookie) + c.get(Counter::AckReset);
    let deadline = Instant::now() + Duration::from_secs(2);
    while judged(&lab.counters()) < forged as u64 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let c = lab.counters();
    assert_eq!(judged(&c), forged as u64, "{}", c.table());
    assert_eq!(c.get(Counter::HandoffOk), 0, "{}", c.table());
    lab.echo_stream(addr, b"still here").expect("echo");
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
