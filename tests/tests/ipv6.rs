//! IPv6 end to end in network namespaces: real clients and a real server over the lab's veth,
//! the shield in between (the same checks as tests/netns.rs, over IPv6).

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use syncookie::counters;
use syncookie_common::stats::Counter;
use syncookie_tests::{
    daemon::{Daemon, pins, syncookie_in},
    flood::Flood,
    lab::Lab,
    packets::{TCPI_OPT_SACK, TCPI_OPT_TIMESTAMPS, TCPI_OPT_WSCALE, send_raw_tcp, tcp_info},
    require_root,
};

const PORT: u16 = 8080;

fn echo_server(lab: &Lab) -> (SocketAddr, std::sync::mpsc::Receiver<u8>) {
    let l = {
        let _in = lab.server.enter();
        TcpListener::bind((lab.server_ip6, PORT)).expect("bind [server]:8080")
    };
    let addr = l.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            let _ = tx.send(tcp_info(&s).tcpi_options);
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, rx)
}

fn stats(lab: &Lab) -> counters::Snapshot {
    counters::read(&pins(&lab.server, &lab.server_if), &lab.server_if).expect("counters")
}

fn exchange(lab: &Lab, addr: SocketAddr, payload: &[u8]) -> TcpStream {
    let _in = lab.client.enter();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(payload).unwrap();
    let mut back = vec![0u8; payload.len()];
    s.read_exact(&mut back).expect("echo");
    assert_eq!(back, payload);
    s
}

fn daemon(lab: &Lab, extra: &[&str]) -> Daemon {
    let mut args = vec!["--ports", "8080"];
    args.extend_from_slice(extra);
    Daemon::start(&lab.server, &lab.server_if, &args)
}

#[test]
fn ipv6_hundred_connections_through_cookies() {
    require_root!();
    let lab = Lab::new();
    let (addr, accepted) = echo_server(&lab);
    let _d = daemon(&lab, &[]);
    for i in 0..100u32 {
        let payload: Vec<u8> = (0..1000 + i).map(|b| (b * 7 + i) as u8).collect();
        let s = exchange(&lab, addr, &payload);
        let o = tcp_info(&s).tcpi_options;
        let want = TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE;
        assert_eq!(o & want, want, "client options {o:#x}");
        let so = accepted.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(so & want, want, "server options {so:#x}");
    }
    let c = stats(&lab);
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

fn rotate(lab: &Lab) {
    let out = syncookie_in(&lab.server, &["rotate", "--iface", &lab.server_if]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn connect_with_lost_ack(lab: &mut Lab, addr: SocketAddr, between: impl FnOnce(&Lab)) -> bool {
    let before = lab.dropped_acks();
    lab.drop_next_acks(1, PORT);
    let _in = lab.client.enter();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    assert_eq!(
        lab.dropped_acks(),
        before + 1,
        "the bare ACK was not dropped"
    );
    between(lab);
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(b"first data after a lost ACK").unwrap();
    let mut back = [0u8; 27];
    s.read_exact(&mut back).is_ok() && &back == b"first data after a lost ACK"
}

#[test]
fn ipv6_lost_final_ack_and_rotations() {
    require_root!();
    let mut lab = Lab::new();
    let (addr, _acc) = echo_server(&lab);
    let _d = daemon(&lab, &[]);
    assert!(
        connect_with_lost_ack(&mut lab, addr, |_| {}),
        "lost final ACK"
    );
    assert!(
        connect_with_lost_ack(&mut lab, addr, rotate),
        "one rotation must not break a handshake"
    );
    let c = stats(&lab);
    assert_eq!(c.get(Counter::HandoffOk), 2, "{}", c.table());
    assert!(
        !connect_with_lost_ack(&mut lab, addr, |l| {
            rotate(l);
            rotate(l);
        }),
        "a cookie two rotations old must be refused"
    );
    let c = stats(&lab);
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
    let (addr, _acc) = echo_server(&lab);
    let _d = daemon(&lab, &["--xdp-mode", "skb"]);
    for i in 0..20u8 {
        exchange(&lab, addr, &[i; 3000]);
    }
    let c = stats(&lab);
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
    let (addr, _acc) = echo_server(&lab);
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
    while judged(&stats(&lab)) < forged as u64 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let c = stats(&lab);
    assert_eq!(judged(&c), forged as u64, "{}", c.table());
    assert_eq!(c.get(Counter::HandoffOk), 0, "{}", c.table());
    exchange(&lab, addr, b"still here");
}

/// A spoofed IPv6 SYN flood (2001:2::/48, random sources, ports and ISNs, at up to 20,000 per
/// second) while real clients connect: every client succeeds, the flood is answered by XDP up to
/// the default budget of its /48 and dropped beyond it, and the server's kernel answers none
/// of it.
#[test]
fn ipv6_spoofed_flood_while_clients_connect() {
    require_root!();
    let lab = Lab::new();
    let (addr, _acc) = echo_server(&lab);
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
                let _in = lab.client.enter();
                let r =
                    TcpStream::connect_timeout(&addr, Duration::from_secs(3)).and_then(|mut s| {
                        s.set_read_timeout(Some(Duration::from_secs(3)))?;
                        s.write_all(b"ping")?;
                        let mut b = [0u8; 4];
                        s.read_exact(&mut b)
                    });
                if r.is_ok() { ok += 1 } else { failed += 1 }
            }
            (ok, failed)
        });
        (f.join().unwrap(), c.join().unwrap())
    });
    let c = stats(&lab);
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
