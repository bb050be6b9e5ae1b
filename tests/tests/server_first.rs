//! Server-first protocols (SSH, SMTP, FTP, IMAP, MySQL) after a lost third ACK. The client is
//! established once it has sent its ACK; the server speaks first, so without the ACK it never
//! learns of the connection. The kernel alone re-sends its SYN-ACK after 1 s and the client's
//! repeated ACK completes the handshake; the shield must do no worse in any mode, and under a
//! flood no worse than the kernel's own cookies.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    thread,
    time::{Duration, Instant},
};

use syncookie_common::stats::Counter;
use syncookie_tests::{daemon::Daemon, flood::Flood, lab::Lab, require_root};

const PORT: u16 = 2222;
const BANNER: &[u8] = b"SSH-2.0-syncookie-test\r\n";
/// The kernel's first SYN-ACK retransmit comes after 1 s; the shield's within a tick (250 ms)
/// of that. A client that hangs waits this long before the test says so.
const WAIT: Duration = Duration::from_secs(6);

/// A server that writes its banner on accept, as sshd does.
fn banner_server(lab: &Lab) -> SocketAddr {
    let l = {
        let _in = lab.server.enter();
        TcpListener::bind((lab.server_ip, PORT)).expect("bind")
    };
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            let _ = s.write_all(BANNER);
        }
    });
    addr
}

/// Connects with the client's bare third ACK dropped, sends nothing, and waits for the banner:
/// how long it took, or None if it never came.
fn banner_after_lost_ack(lab: &mut Lab, addr: SocketAddr) -> Option<Duration> {
    let before = lab.dropped_acks();
    lab.drop_next_acks(1, PORT);
    banner_wait(lab, addr, before)
}

/// [`banner_after_lost_ack`] once the drop is armed (`before`: ACKs dropped until then).
fn banner_wait(lab: &Lab, addr: SocketAddr, before: u32) -> Option<Duration> {
    let _in = lab.client.enter();
    let t = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).expect("connect");
    assert_eq!(
        lab.dropped_acks(),
        before + 1,
        "the third ACK was not dropped"
    );
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut b = vec![0u8; BANNER.len()];
    s.read_exact(&mut b).ok()?;
    assert_eq!(b, BANNER);
    Some(t.elapsed())
}

#[track_caller]
fn assert_banner_within(got: Option<Duration>, limit: Duration, what: &str) {
    let Some(d) = got else {
        panic!("{what}: no banner within {WAIT:?}: the client hangs")
    };
    assert!(d <= limit, "{what}: banner after {d:?} (limit {limit:?})");
    eprintln!("{what}: banner after {d:?}");
}

/// The kernel alone: its SYN-ACK retransmit brings the banner after about 1 s (the reference).
#[test]
fn kernel_alone_sends_the_banner_after_a_lost_ack() {
    require_root!();
    let mut lab = Lab::new();
    let addr = banner_server(&lab);
    let d = banner_after_lost_ack(&mut lab, addr);
    assert_banner_within(d, Duration::from_secs(3), "kernel alone");
    assert!(
        d.unwrap() >= Duration::from_millis(900),
        "the ACK was lost: not at once"
    );
}

/// `always` (the default): the shield's SYN-ACK is sent again, the repeated ACK's cookie checks.
#[test]
fn always_sends_the_synack_again() {
    require_root!();
    let mut lab = Lab::new();
    let addr = banner_server(&lab);
    let _d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    let d = banner_after_lost_ack(&mut lab, addr);
    assert_banner_within(d, Duration::from_secs(3), "always");
    let c = lab.counters();
    assert_eq!(c.get(Counter::SynackSent), 1, "{}", c.table());
    assert_eq!(c.get(Counter::HandoffOk), 1, "{}", c.table());
    assert_eq!(c.get(Counter::SynPassed), 0, "the kernel never saw the SYN");
    assert_eq!(lab.kernel_synacks(), 0, "every SYN-ACK was the shield's");
    assert_eq!(lab.resent_synacks(), 1, "one SYN-ACK sent again");
}

/// `auto` while quiet and `monitor`: the kernel's own handshake, with its own retransmit.
#[test]
fn auto_and_monitor_leave_it_to_the_kernel() {
    require_root!();
    for mode in ["auto", "monitor"] {
        let mut lab = Lab::new();
        let addr = banner_server(&lab);
        let _d = Daemon::start(
            &lab.server,
            &lab.server_if,
            &["--ports", &PORT.to_string(), "--mode", mode],
        );
        let d = banner_after_lost_ack(&mut lab, addr);
        assert_banner_within(d, Duration::from_secs(3), mode);
        assert_eq!(lab.counters().get(Counter::SynackSent), 0, "{mode}");
    }
}

/// Under a spoofed flood that engages `auto` (and in `always`), within the table's budget: the
/// lost ACK still costs about a second.
#[test]
fn under_a_flood_the_synack_is_sent_again() {
    require_root!();
    for mode in ["always", "auto"] {
        let mut lab = Lab::new();
        let addr = banner_server(&lab);
        let _d = Daemon::start(
            &lab.server,
            &lab.server_if,
            &[
                "--ports",
                &PORT.to_string(),
                "--mode",
                mode,
                "--engage-rate",
                "100",
            ],
        );
        let before = lab.dropped_acks();
        lab.drop_next_acks(1, PORT);
        let f = Flood::new(&lab, PORT);
        let lab = &lab;
        let got = thread::scope(|s| {
            let flood = s.spawn(|| {
                let _in = lab.client.enter();
                f.run(5_000, 1_000, Duration::from_secs(5))
            });
            // Let the flood engage `auto` first.
            thread::sleep(Duration::from_millis(500));
            let d = banner_wait(lab, addr, before);
            flood.join().unwrap();
            d
        });
        assert_banner_within(
            got,
            Duration::from_secs(3),
            &format!("{mode} under a flood"),
        );
        let c = lab.counters();
        assert!(
            c.get(Counter::SynackSent) > 1000,
            "{mode}: the flood was answered by the shield:\n{}",
            c.table()
        );
    }
}
