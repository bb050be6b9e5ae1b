//! Modes on a running shield: switched live with `syncookie mode`, `auto` engaging under a
//! spoofed flood and letting go after it, the SYN-ACK budget of one spoofed victim prefix.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    thread,
    time::{Duration, Instant},
};

use syncookie::counters;
use syncookie_common::stats::Counter;
use syncookie_tests::{
    daemon::{Daemon, bin, pins},
    flood::Flood,
    lab::Lab,
    packets::send_raw_tcp,
    require_root,
};

const PORT: u16 = 8080;

fn stats(lab: &Lab) -> counters::Snapshot {
    counters::read(&pins(&lab.server, &lab.server_if), &lab.server_if).expect("counters")
}

fn echo_server(lab: &Lab) -> SocketAddr {
    let l = {
        let _in = lab.server.enter();
        TcpListener::bind((lab.server_ip, PORT)).expect("bind")
    };
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            thread::spawn(move || {
                let mut b = [0u8; 256];
                while let Ok(n) = s.read(&mut b) {
                    if n == 0 || s.write_all(&b[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// One connection with an echo; false if it failed.
fn echo(lab: &Lab, addr: SocketAddr) -> bool {
    let _in = lab.client.enter();
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut b = [0u8; 5];
    s.write_all(b"hello").is_ok() && s.read_exact(&mut b).is_ok() && &b == b"hello"
}

fn set_mode(lab: &Lab, mode: &str) {
    let out = lab.server.exec(&[
        bin().to_str().unwrap(),
        "mode",
        mode,
        "--iface",
        &lab.server_if,
    ]);
    let now = lab
        .server
        .exec(&[bin().to_str().unwrap(), "mode", "--iface", &lab.server_if]);
    assert_eq!(now.trim(), mode, "{out}");
}

/// always -> monitor -> always without re-attaching: handshakes begun in one mode complete in
/// the other (both ways), and in monitor the kernel answers.
#[test]
fn mode_switches_live_and_handshakes_span_it() {
    require_root!();
    let mut lab = Lab::new();
    let addr = echo_server(&lab);
    let _d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    assert!(echo(&lab, addr));
    let before = stats(&lab);
    assert_eq!(before.get(Counter::HandoffOk), 1);

    // A handshake whose SYN-ACK is ours and whose ACK arrives in monitor mode: the ACK is
    // lost on its way, the first data segment completes it after the switch.
    lab.drop_next_acks(1, PORT);
    let s = {
        let _in = lab.client.enter();
        TcpStream::connect(addr).expect("connect")
    };
    set_mode(&lab, "monitor");
    let mut s = s;
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(b"spans").unwrap();
    let mut b = [0u8; 5];
    s.read_exact(&mut b)
        .expect("a handshake begun in always completes in monitor");

    let kernel_before = lab.kernel_synacks();
    assert!(echo(&lab, addr), "monitor: the kernel's handshake");
    assert_eq!(
        lab.kernel_synacks(),
        kernel_before + 1,
        "monitor answers nothing itself"
    );
    let c = stats(&lab);
    assert_eq!(c.get(Counter::MonitorSynack), 1, "{}", c.table());

    // The other way: a handshake the kernel answered in monitor, whose ACK is lost and whose
    // first data segment arrives in always: it finds the kernel's request socket and passes.
    lab.drop_next_acks(1, PORT);
    let s = {
        let _in = lab.client.enter();
        TcpStream::connect(addr).expect("connect")
    };
    assert_eq!(
        lab.kernel_synacks(),
        kernel_before + 2,
        "the kernel's SYN-ACK"
    );
    set_mode(&lab, "always");
    let mut s = s;
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(b"spans").unwrap();
    s.read_exact(&mut b)
        .expect("a handshake begun in monitor completes in always");

    assert!(echo(&lab, addr));
    assert_eq!(
        lab.kernel_synacks(),
        kernel_before + 2,
        "always: ours again"
    );
    let c = stats(&lab);
    assert_eq!(c.get(Counter::HandoffOk), 3, "{}", c.table());
    assert_eq!(
        c.get(Counter::AckBadCookie) + c.get(Counter::AckReset),
        0,
        "{}",
        c.table()
    );
}

/// auto: a spoofed flood engages the shield within a second, real clients succeed throughout,
/// and after the flood (and the hold time) SYNs go to the kernel again.
#[test]
fn auto_engages_under_a_flood_and_lets_go_after() {
    require_root!();
    let lab = Lab::new();
    lab.server.sysctl("net.ipv4.tcp_syncookies", "1");
    let addr = echo_server(&lab);
    let _d = Daemon::start(
        &lab.server,
        &lab.server_if,
        &[
            "--ports",
            &PORT.to_string(),
            "--mode",
            "auto",
            "--engage-rate",
            "200",
        ],
    );
    assert!(echo(&lab, addr), "quiet: the kernel's handshake");
    let c = stats(&lab);
    assert_eq!(
        (c.get(Counter::SynIdle), c.get(Counter::SynackSent)),
        (1, 0)
    );

    let flooding = AtomicBool::new(true);
    let (ok, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    let start = Instant::now();
    let engaged_after = thread::scope(|sc| {
        sc.spawn(|| {
            let f = Flood::new(&lab, PORT);
            let _in = lab.client.enter();
            f.run(40_000, 20_000, Duration::from_secs(2));
            flooding.store(false, Ordering::Relaxed);
        });
        sc.spawn(|| {
            while flooding.load(Ordering::Relaxed) {
                let n = if echo(&lab, addr) { &ok } else { &failed };
                n.fetch_add(1, Ordering::Relaxed);
            }
        });
        let mut engaged_after = None;
        while flooding.load(Ordering::Relaxed) {
            if engaged_after.is_none() && stats(&lab).get(Counter::SynackSent) > 0 {
                engaged_after = Some(start.elapsed());
            }
            thread::sleep(Duration::from_millis(20));
        }
        engaged_after
    });
    let engaged_after = engaged_after.expect("auto never engaged under the flood");
    assert!(
        engaged_after < Duration::from_secs(1),
        "engaged after {engaged_after:?}"
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "real clients failed during the flood"
    );
    assert!(ok.load(Ordering::Relaxed) > 0);

    // The hold time (10 s) after the flood, then quiet again: the kernel answers.
    thread::sleep(Duration::from_secs(11));
    let idle = stats(&lab).get(Counter::SynIdle);
    assert!(echo(&lab, addr));
    assert_eq!(
        stats(&lab).get(Counter::SynIdle),
        idle + 1,
        "auto let go after the flood"
    );
}

/// Spoofed SYNs all from one victim /24 get at most its SYN-ACK budget; another client still
/// connects.
#[test]
fn one_victim_prefix_gets_at_most_its_budget() {
    require_root!();
    let lab = Lab::new();
    let addr = echo_server(&lab);
    let _d = Daemon::start(
        &lab.server,
        &lab.server_if,
        &["--ports", &PORT.to_string(), "--synack-prefix-rate", "50"],
    );
    let SocketAddr::V4(dst) = addr else {
        unreachable!()
    };
    let victim = Ipv4Addr::new(198, 18, 7, 1);
    let start = Instant::now();
    {
        let _in = lab.client.enter();
        for i in 0..2000u16 {
            send_raw_tcp(
                SocketAddrV4::new(victim, 1024 + i),
                dst,
                rand::random(),
                0,
                true,
            );
        }
    }
    let seconds = start.elapsed().as_secs() + 1;
    thread::sleep(Duration::from_millis(300));
    assert!(echo(&lab, addr), "another client connects");
    let c = stats(&lab);
    let answered = c.get(Counter::SynackSent) - 1;
    assert!(
        (1..=50 * (seconds + 1) + 2).contains(&answered),
        "{answered} SYN-ACKs to the victim /24 in {seconds} s: {}",
        c.table()
    );
    assert_eq!(
        c.get(Counter::SynDroppedBudget) + answered,
        2000,
        "{}",
        c.table()
    );
}
