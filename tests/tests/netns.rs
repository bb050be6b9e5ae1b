//! End to end in network namespaces: real clients, a real server, the shield in between.

use syncookie_common::stats::Counter;
use syncookie_tests::{
    daemon::{Daemon, Unpin, pins, syncookie_in},
    endtoend,
    lab::Lab,
    netns::Netns,
    require_root,
};

const PORT: u16 = 8080;

#[test]
fn hundred_connections_through_cookies() {
    require_root!();
    let lab = Lab::new();
    let (addr, accepted) = lab.echo_server_reporting(lab.server_ip.into(), PORT);
    let _d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    endtoend::hundred_connections(&lab, addr, &accepted);
    // What an admin sees (the README's sample comes from here).
    let status = syncookie_in(&lab.server, &["status", "--iface", &lab.server_if]);
    assert!(status.status.success());
    eprintln!("{}", String::from_utf8_lossy(&status.stdout));
}

#[test]
fn lost_final_ack_still_connects_with_first_data() {
    require_root!();
    let mut lab = Lab::new();
    let (addr, _acc) = lab.echo_server_reporting(lab.server_ip.into(), PORT);
    let _d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    assert!(lab.connect_with_lost_ack(addr, |_| {}));
    let c = lab.counters();
    assert_eq!(c.get(Counter::HandoffOk), 1);
    assert_eq!(c.get(Counter::AckValid), 1);
}

#[test]
fn cookie_survives_one_rotation_but_not_two() {
    require_root!();
    let mut lab = Lab::new();
    let (addr, _acc) = lab.echo_server_reporting(lab.server_ip.into(), PORT);
    let _d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    assert!(
        lab.connect_with_lost_ack(addr, Lab::rotate),
        "one rotation must not break a handshake"
    );
    let c = lab.counters();
    assert_eq!(
        (c.get(Counter::HandoffOk), c.get(Counter::AckExpired)),
        (1, 0)
    );

    assert!(
        !lab.connect_with_lost_ack(addr, |l| {
            l.rotate();
            l.rotate();
        }),
        "a cookie two rotations old must be refused"
    );
    let c = lab.counters();
    assert_eq!(c.get(Counter::HandoffOk), 1);
    // Within the reset budget the kernel gets it (and resets the client at once), beyond it
    // it is dropped as expired.
    assert!(
        c.get(Counter::AckExpired) + c.get(Counter::AckReset) >= 1,
        "expired ACKs are counted:\n{}",
        c.table()
    );
    assert_eq!(c.get(Counter::AckBadCookie), 0);
}

#[test]
fn forged_ack_is_judged_and_counted() {
    require_root!();
    let lab = Lab::new();
    let (addr, _acc) = lab.echo_server_reporting(lab.server_ip.into(), PORT);
    let _d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    endtoend::forged_acks_are_judged(&lab, lab.client_ip.into(), addr);
}

#[test]
fn run_detaches_and_leaves_no_trace() {
    require_root!();
    let lab = Lab::new();
    let pins = pins(&lab.server, &lab.server_if);
    let mut d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    assert!(pins.exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&pins.dir), 0o700, "pin directory must be private");
    assert_eq!(
        mode(&pins.map("SC_KEYS")),
        0o600,
        "the key map pin must be private"
    );
    let shown = lab.server.exec(&["ip", "link", "show", &lab.server_if]);
    assert!(shown.contains("prog/xdp"), "{shown}");
    let status = syncookie_in(&lab.server, &["status", "--iface", &lab.server_if]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains(&format!("[{PORT}]")) && status.contains("keys               epoch 1,"),
        "{status}"
    );
    assert!(d.stop(), "syncookie run exits cleanly on SIGTERM");
    assert!(!pins.exists(), "pin directory left behind");
    let status = syncookie_in(&lab.server, &["status", "--iface", &lab.server_if]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("not attached"));
    let lock = pins.lock_file();
    assert!(!lock.exists(), "lock file left behind: {}", lock.display());
    let shown = lab.server.exec(&["ip", "link", "show", &lab.server_if]);
    assert!(!shown.contains("xdp"), "XDP left attached: {shown}");
    let tc = lab.tc_ingress_left("tc");
    assert!(tc.is_empty(), "TC left behind: {tc:?}");
    let out = d.output.lock().unwrap().clone();
    assert!(
        out.contains("synack_sent"),
        "final counter summary printed:\n{out}"
    );
}

#[test]
fn generic_xdp_mode_connects_too() {
    require_root!();
    let lab = Lab::new();
    let (addr, accepted) = lab.echo_server_reporting(lab.server_ip.into(), PORT);
    let _d = Daemon::start(
        &lab.server,
        &lab.server_if,
        &["--ports", &PORT.to_string(), "--xdp-mode", "skb"],
    );
    for i in 0..20u8 {
        lab.echo_stream(addr, &[i; 3000]).expect("echo");
        accepted
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("the server accepted the connection");
    }
    let c = lab.counters();
    assert_eq!(c.get(Counter::SynackSent), 20, "{}", c.table());
    assert_eq!(
        accepted.try_iter().count(),
        0,
        "sockets beyond the 20 connections"
    );
    endtoend::handoffs_fit(&c, 20, endtoend::Handoffs::UpToTwoCpus).unwrap();
    assert_eq!(lab.kernel_synacks(), 0);
}

fn syncookie(ns: &Netns, args: &[&str]) -> String {
    let out = syncookie_in(ns, args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn crash_keeps_protection_and_restart_takes_over() {
    require_root!();
    let mut lab = Lab::new();
    // Pins outlive a killed daemon: remove them even if an assertion below fails.
    let _unpin = Unpin(pins(&lab.server, &lab.server_if));
    let (addr, _acc) = lab.echo_server_reporting(lab.server_ip.into(), PORT);
    let ports = ["--ports", "8080"];
    let mut d = Daemon::start(&lab.server, &lab.server_if, &ports);
    lab.echo_stream(addr, b"before the crash").expect("echo");
    d.kill();
    // Still attached, still answering, same keys: the links and maps are pinned.
    let shown = lab.server.exec(&["ip", "link", "show", &lab.server_if]);
    assert!(
        shown.contains("prog/xdp"),
        "XDP gone with the daemon: {shown}"
    );
    lab.echo_stream(addr, b"while no daemon runs")
        .expect("echo");
    assert_eq!(lab.counters().get(Counter::HandoffOk), 2);
    // A handshake that spans a restart: SYN-ACK from the old programs, ACK to the new ones.
    let restarted = std::cell::RefCell::new(None);
    assert!(lab.connect_with_lost_ack(addr, |l| {
        *restarted.borrow_mut() = Some(Daemon::start(&l.server, &l.server_if, &ports));
    }));
    let status = syncookie(&lab.server, &["status", "--iface", &lab.server_if]);
    assert!(
        status.contains("keys               epoch 1,"),
        "keys kept: {status}"
    );
    let c = lab.counters();
    assert_eq!(
        (c.get(Counter::HandoffOk), c.get(Counter::AckBadCookie)),
        (3, 0)
    );
    // A crash again, then `syncookie detach` cleans up.
    restarted.borrow_mut().as_mut().unwrap().kill();
    assert!(syncookie(&lab.server, &["detach", "--iface", &lab.server_if]).contains("detached"));
    let shown = lab.server.exec(&["ip", "link", "show", &lab.server_if]);
    assert!(!shown.contains("xdp"), "XDP left attached: {shown}");
    let tc = lab.tc_ingress_left("tc");
    assert!(tc.is_empty(), "TC left behind: {tc:?}");
    assert!(!pins(&lab.server, &lab.server_if).exists());
}

#[test]
fn restart_after_the_interface_was_recreated_attaches_anew() {
    require_root!();
    let mut lab = Lab::new();
    let (addr, _acc) = lab.echo_server_reporting(lab.server_ip.into(), PORT);
    let ports = ["--ports", "8080"];
    let mut d = Daemon::start(&lab.server, &lab.server_if, &ports);
    d.kill();
    // The pinned links now point at an interface that no longer exists.
    lab.recreate_wire();
    let mut d = Daemon::start(&lab.server, &lab.server_if, &ports);
    lab.echo_stream(addr, b"on the new interface")
        .expect("echo");
    let c = lab.counters();
    assert_eq!(
        (c.get(Counter::SynackSent), c.get(Counter::HandoffOk)),
        (1, 1),
        "{}",
        c.table()
    );
    assert_eq!(lab.kernel_synacks(), 0);
    assert!(d.stop());
    assert!(!pins(&lab.server, &lab.server_if).exists());
}
