//! Modes on a running shield: switched live with `syncookie mode`, `auto` engaging under a
//! spoofed flood and letting go after it, the SYN-ACK budget of one spoofed victim prefix.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    thread,
    time::{Duration, Instant},
};

use syncookie_common::stats::Counter;
use syncookie_tests::{
    daemon::{Daemon, bin},
    flood::Flood,
    lab::Lab,
    packets::spoof_syns,
    require_root, wait_until,
};

const PORT: u16 = 8080;

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
    let addr = lab.echo_server(lab.server_ip.into(), PORT);
    let _d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    assert!(lab.echo(addr, b"hello").is_ok());
    let before = lab.counters();
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
    assert!(
        lab.echo(addr, b"hello").is_ok(),
        "monitor: the kernel's handshake"
    );
    assert_eq!(
        lab.kernel_synacks(),
        kernel_before + 1,
        "monitor answers nothing itself"
    );
    let c = lab.counters();
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

    assert!(lab.echo(addr, b"hello").is_ok());
    assert_eq!(
        lab.kernel_synacks(),
        kernel_before + 2,
        "always: ours again"
    );
    let c = lab.counters();
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
    let addr = lab.echo_server(lab.server_ip.into(), PORT);
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
    assert!(
        lab.echo(addr, b"hello").is_ok(),
        "quiet: the kernel's handshake"
    );
    let c = lab.counters();
    assert_eq!(
        (c.get(Counter::SynIdle), c.get(Counter::SynackSent)),
        (1, 0)
    );

    let flooding = AtomicBool::new(true);
    let (ok, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    // The flood program is loaded (and verified) before the clock starts: the claim is about
    // the time from the flood's first SYN to the first SYN-ACK, not the verifier's.
    let flood = Flood::new(&lab, PORT);
    let start = Instant::now();
    let engaged_after = thread::scope(|sc| {
        sc.spawn(|| {
            let _in = lab.client.enter();
            flood.run(40_000, 20_000, Duration::from_secs(2));
            flooding.store(false, Ordering::Relaxed);
        });
        sc.spawn(|| {
            while flooding.load(Ordering::Relaxed) {
                let n = if lab.echo(addr, b"hello").is_ok() {
                    &ok
                } else {
                    &failed
                };
                n.fetch_add(1, Ordering::Relaxed);
            }
        });
        let mut engaged_after = None;
        while flooding.load(Ordering::Relaxed) {
            if engaged_after.is_none() && lab.counters().get(Counter::SynackSent) > 0 {
                engaged_after = Some(start.elapsed());
            }
            thread::sleep(Duration::from_millis(20));
        }
        engaged_after
    });
    let engaged_after = engaged_after.expect("auto never engaged under the flood");
    eprintln!("auto engaged {engaged_after:?} after the flood's start");
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
    let idle = lab.counters().get(Counter::SynIdle);
    assert!(lab.echo(addr, b"hello").is_ok());
    assert_eq!(
        lab.counters().get(Counter::SynIdle),
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
    let addr = lab.echo_server(lab.server_ip.into(), PORT);
    let _d = Daemon::start(
        &lab.server,
        &lab.server_if,
        &[
            "--ports",
            &PORT.to_string(),
            "--synack-prefix-rate",
            "50",
            // The budget in all, far above this test's rate: its packet test is policy.rs's;
            // here, that the flag reaches the shield's configuration.
            "--synack-rate",
            "1000000",
        ],
    );
    let status = lab
        .server
        .exec(&[bin().to_str().unwrap(), "status", "--iface", &lab.server_if]);
    assert!(
        status.contains("SYN-ACKs 1000000/s per CPU, 50/s per client /24;"),
        "{status}"
    );
    let SocketAddr::V4(dst) = addr else {
        unreachable!()
    };
    let victim = Ipv4Addr::new(198, 18, 7, 1);
    let drops = lab.wire_drops();
    let start = Instant::now();
    {
        let _in = lab.client.enter();
        spoof_syns(victim, dst, 2000);
    }
    let seconds = start.elapsed().as_secs() + 1;
    // Every SYN that crossed the wire is judged once (answered or dropped by the budget); those
    // the veth ring could not take are the wire's drops. Wait for the counters to hold them all.
    let lost = || lab.wire_drops() - drops;
    let judged = |c: &syncookie::observe::counters::Snapshot| {
        c.get(Counter::SynackSent) + c.get(Counter::SynDroppedBudget)
    };
    assert!(
        wait_until(Duration::from_secs(10), || judged(&lab.counters()) + lost()
            >= 2000),
        "2000 SYNs sent, {} judged, {} lost on the wire",
        judged(&lab.counters()),
        lost()
    );
    let arrived = 2000 - lost();
    assert!(lab.echo(addr, b"hello").is_ok(), "another client connects");
    let c = lab.counters();
    assert_eq!(c.get(Counter::SynSeen), arrived + 1, "{}", c.table());
    let answered = c.get(Counter::SynackSent) - 1;
    assert!(
        (1..=50 * (seconds + 1) + 2).contains(&answered),
        "{answered} SYN-ACKs to the victim /24 in {seconds} s: {}",
        c.table()
    );
    assert_eq!(
        c.get(Counter::SynDroppedBudget) + answered,
        arrived,
        "{} lost on the wire: {}",
        2000 - arrived,
        c.table()
    );
}
