//! Setups common on production hosts that the lab's defaults hide: clients with TX checksum
//! offload, MPTCP listeners and clients, the kernel's own cookies, another TC program after
//! ours, forged ACKs that the kernel would reset, VLAN trunks.

use std::{
    io::{Read, Write},
    net::{SocketAddr, SocketAddrV4, TcpStream},
    thread,
    time::{Duration, Instant},
};

use syncookie::observe::counters;
use syncookie_common::stats::Counter;
use syncookie_tests::{
    daemon::Daemon,
    endtoend,
    lab::Lab,
    packets::{Accepted, listen_stream, send_raw_tcp, serve_echo, stream_socket},
    require_root, wait_until,
};

const PORT: u16 = 8080;
/// An echo server on the server's address, on a TCP or an MPTCP listener.
fn echo_server(lab: &Lab, mptcp: bool) -> (SocketAddr, Accepted) {
    let _in = lab.server.enter();
    let addr = SocketAddrV4::new(lab.server_ip, PORT);
    let l = listen_stream(addr, mptcp);
    let accepted = serve_echo(l, |_| {});
    (SocketAddr::V4(addr), accepted)
}

/// Connects from the client (TCP or MPTCP), echoes `payload`; panics on failure.
fn exchange(lab: &Lab, addr: SocketAddr, mptcp: bool, payload: &[u8]) {
    let _in = lab.client.enter();
    let fd = stream_socket(mptcp);
    let SocketAddr::V4(a) = addr else {
        unreachable!()
    };
    nix::sys::socket::connect(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &nix::sys::socket::SockaddrIn::from(a),
    )
    .unwrap_or_else(|e| panic!("connect to {addr} (MPTCP client: {mptcp}): {e}"));
    let mut s = TcpStream::from(fd);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(payload).unwrap();
    let mut back = vec![0u8; payload.len()];
    s.read_exact(&mut back).expect("echo");
    assert_eq!(back, payload);
}

/// Containers and veth peers send with TX checksum offload on: their SYNs carry only the
/// pseudo-header sum, which the kernel accepts (CHECKSUM_PARTIAL), and so does the shield: they
/// get cookies like any client (first: 0 of 20 connected; then: all left to the kernel,
/// unprotected). Every other netns test runs with offload on too; this one checks the counts,
/// and that clients with full sums (offload off, as from a wire) are answered the same.
#[test]
fn clients_with_and_without_tx_checksum_offload_get_cookies() {
    require_root!();
    for lab in [Lab::new(), Lab::with_full_checksums()] {
        let (addr, accepted) = echo_server(&lab, false);
        let _d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
        for i in 0..20u8 {
            exchange(&lab, addr, false, &[i; 100]);
        }
        let c = lab.counters();
        assert_eq!(c.get(Counter::SynackSent), 20, "{}", c.table());
        assert_eq!(c.get(Counter::SynBadChecksum), 0, "{}", c.table());
        assert_eq!(c.get(Counter::AckBadCookie), 0, "{}", c.table());
        accepted.assert_exactly(20);
        endtoend::handoffs_fit(&c, 20, endtoend::Handoffs::OnePerConnection).unwrap();
    }
}

/// MPTCP listeners (Go 1.24+ listens with MPTCP by default): the handoff refuses them, so their
/// handshakes stay the kernel's, for plain TCP clients (before: 0 of 5) and MPTCP ones alike.
#[test]
fn mptcp_listener_serves_tcp_and_mptcp_clients() {
    require_root!();
    let lab = Lab::new();
    for ns in [&lab.server, &lab.client] {
        ns.sysctl("net.mptcp.enabled", "1");
    }
    let (addr, _) = echo_server(&lab, true);
    let _d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    for i in 0..5u8 {
        exchange(&lab, addr, false, &[i; 100]);
        exchange(&lab, addr, true, &[i; 100]);
    }
    let c = lab.counters();
    assert_eq!(c.get(Counter::HandoffFailed), 0, "{}", c.table());
    assert_eq!(c.get(Counter::SynackSent), 0, "{}", c.table());
    // Plain clients' SYNs: left to the kernel for the MPTCP listener (their ACKs then find the
    // kernel's request socket); MPTCP clients' SYNs carry MP_CAPABLE, the kernel's anyway.
    assert_eq!(c.get(Counter::MptcpPassed), 5, "{}", c.table());
    assert_eq!(c.get(Counter::SynPassed), 5, "{}", c.table());
}

/// An MPTCP client's SYN (MP_CAPABLE) to a plain listener is the kernel's; with
/// tcp_syncookies=2 the kernel answers it with its own cookie, and the ACK (after the client's
/// fallback to TCP) must reach the kernel, not be dropped as a bad cookie of ours.
#[test]
fn acks_with_the_kernels_own_cookie_reach_the_kernel() {
    require_root!();
    let lab = Lab::new();
    lab.server.sysctl("net.ipv4.tcp_syncookies", "2");
    for ns in [&lab.server, &lab.client] {
        ns.sysctl("net.mptcp.enabled", "1");
    }
    let (addr, _) = echo_server(&lab, false);
    let _d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    for i in 0..5u8 {
        exchange(&lab, addr, true, &[i; 100]);
    }
    let c = lab.counters();
    assert_eq!(c.get(Counter::AckKernelCookie), 5, "{}", c.table());
    assert_eq!(c.get(Counter::AckBadCookie), 0, "{}", c.table());
}

/// TCX: the shield leaves every packet but a handoff to the next program (TCX_NEXT); a handoff
/// ends the chain (TC_ACT_OK: the packet is the kernel's to turn into a connection). So the
/// next program sees exactly the TCP segments the server's stack received less the handoffs
/// (before: it saw nothing).
#[test]
fn a_tc_program_after_the_shield_sees_all_but_the_handoffs() {
    require_root!();
    let mut lab = Lab::new();
    let (addr, accepted) = echo_server(&lab, false);
    let _d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    lab.count_tc_after_shield();
    let in_segs = lab.tcp_mib("InSegs");
    for i in 0..5u8 {
        exchange(&lab, addr, false, &[i; 100]);
    }
    accepted.assert_exactly(5);
    // The closing segments arrive after the echoes: wait until every segment TCP took in is
    // accounted for (the TC program counts before TCP does).
    let (mut segs, mut seen, mut handed) = (0, 0, 0);
    let settled = wait_until(Duration::from_secs(5), || {
        segs = lab.tcp_mib("InSegs") - in_segs;
        seen = lab.tc_seen();
        handed = lab.counters().get(Counter::HandoffOk);
        segs >= 25 && seen + handed == segs
    });
    assert!(
        settled,
        "TCP took in {segs} segments; the next TC program saw {seen}, the shield handed {handed} \
         over"
    );
    endtoend::handoffs_fit(&lab.counters(), 5, endtoend::Handoffs::OnePerConnection).unwrap();
}

fn out_rsts(lab: &Lab) -> u64 {
    lab.tcp_mib("OutRsts")
}

/// Forged (or expired) cookie ACKs: as many as the budget allows go to the kernel, which resets
/// them as it would without us; the rest of a flood is dropped before the stack.
#[test]
fn bad_acks_are_reset_within_the_budget_and_dropped_beyond() {
    require_root!();
    let lab = Lab::new();
    let (addr, _) = echo_server(&lab, false);
    let _d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    let SocketAddr::V4(dst) = addr else {
        unreachable!()
    };
    let rsts_before = out_rsts(&lab);
    let forged = 1000u64;
    let start = Instant::now();
    {
        let _in = lab.client.enter();
        for i in 0..forged {
            let src = SocketAddrV4::new(lab.client_ip, 20000 + i as u16);
            send_raw_tcp(src, dst, rand::random(), rand::random(), false);
        }
    }
    let seconds = start.elapsed().as_secs() + 1;
    let deadline = Instant::now() + Duration::from_secs(3);
    let judged = |c: &counters::Snapshot| c.get(Counter::AckBadCookie) + c.get(Counter::AckReset);
    while judged(&lab.counters()) < forged && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let c = lab.counters();
    assert_eq!(judged(&c), forged, "{}", c.table());
    let reset = c.get(Counter::AckReset);
    let budget = syncookie::policy::DEFAULT_RST_PER_SEC as u64;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    assert!(reset >= 1, "no bad ACK reached the kernel: {}", c.table());
    assert!(
        reset <= budget * cpus * (seconds + 1),
        "{reset} bad ACKs passed in {seconds} s: {}",
        c.table()
    );
    // The kernel answered those it got with resets.
    let rsts = out_rsts(&lab) - rsts_before;
    assert!(rsts >= reset, "{rsts} resets for {reset} bad ACKs passed");
    assert_eq!(c.get(Counter::HandoffOk), 0);
}

/// A VLAN trunk (tags in the frames, as a switch port sends them): one 802.1Q tag, then 802.1ad
/// around 802.1Q; IPv4 and IPv6. The shield's SYN-ACKs go back with the same tags (the client
/// counts them tagged), the handshakes complete through the handoff, and the kernel answers
/// no SYN itself. The double tag runs in generic XDP, where TC checks the cookie again: the
/// lab's untagging of the inner tag (bpf_skb_vlan_pop on the frame) moves the MAC header
/// without the XDP metadata in front of it (a real stack untags it in a second round, after TC).
#[test]
fn vlan_trunk_synacks_keep_the_tags() {
    require_root!();
    for (outer, inner, mode) in [(42, 0, "native"), (100, 7, "skb")] {
        let mut lab = Lab::new();
        lab.trunk(outer, inner);
        let (v4, accepted4) = lab.echo_server_reporting(lab.server_ip.into(), PORT);
        let (v6, accepted6) = lab.echo_server_reporting(lab.server_ip6.into(), PORT);
        let args = ["--ports", &PORT.to_string(), "--xdp-mode", mode];
        let _d = Daemon::start(&lab.server, &lab.server_if, &args);
        for i in 0..10u8 {
            for addr in [v4, v6] {
                lab.echo(addr, &[i; 300])
                    .unwrap_or_else(|e| panic!("tags {outer}/{inner}, {addr}: {e}"));
            }
        }
        let c = lab.counters();
        let what = format!("tags {outer}/{inner}: {}", c.table());
        assert_eq!(c.get(Counter::SynackSent), 20, "{what}");
        let accepted = accepted4.try_iter().count() + accepted6.try_iter().count();
        assert_eq!(accepted, 20, "connections accepted, {what}");
        let rule = if mode == "skb" {
            endtoend::Handoffs::UpToTwoCpus
        } else {
            endtoend::Handoffs::OnePerConnection
        };
        endtoend::handoffs_fit(&c, 20, rule).unwrap();
        let (tagged, synacks) = lab.client_tagged();
        assert_eq!(synacks, 20, "tagged SYN-ACKs at the client, {what}");
        assert!(tagged >= 60, "{tagged} tagged frames at the client, {what}");
        assert!(lab.server_tagged() >= 60, "{what}");
        assert_eq!(lab.kernel_synacks(), 0, "{what}");
    }
}

/// A refused handoff is rare and says why, from the TC program itself (aya-log): with tcp_sack
/// turned off after the shield read it, bpf_sk_assign_tcp_reqsk refuses a SACK connection
/// (-EINVAL) and the daemon's log has the errno, at `warn`. With `RUST_LOG=error` the message
/// is not written at all (the level is a load-time constant: the verifier drops the site) and
/// only `handoff_failed` tells.
#[test]
fn refused_handoff_is_logged_with_its_errno() {
    require_root!();
    for (rust_log, logged) in [("info", true), ("error", false)] {
        let lab = Lab::new();
        let (addr, _) = echo_server(&lab, false);
        let d = Daemon::start_with_log(
            &lab.server,
            &lab.server_if,
            &["--ports", &PORT.to_string()],
            rust_log,
        );
        lab.server.sysctl("net.ipv4.tcp_sack", "0");
        assert!(
            lab.echo(addr, b"refused").is_err(),
            "the kernel made the connection"
        );
        let deadline = Instant::now() + Duration::from_secs(3);
        let line = "handoff refused: bpf_sk_assign_tcp_reqsk returned -22 for port 8080";
        while Instant::now() < deadline && logged && !d.output.lock().unwrap().contains(line) {
            thread::sleep(Duration::from_millis(20));
        }
        let out = d.output.lock().unwrap().clone();
        assert_eq!(out.contains(line), logged, "RUST_LOG={rust_log}:\n{out}");
        let c = lab.counters();
        assert!(c.get(Counter::HandoffFailed) >= 1, "{}", c.table());
        assert_eq!(c.get(Counter::HandoffOk), 0, "{}", c.table());
    }
}
