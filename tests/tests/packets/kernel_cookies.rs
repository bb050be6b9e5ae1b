//! Kernel-cookie mode (`syncookie_kc_xdp`): SYN-ACKs carry the kernel's own cookie (which only
//! the kernel can check: the program's ACK path asks `bpf_tcp_raw_check_syncookie_ipv4`), with
//! the MSS option only; forged ACKs are dropped; SYNs go to the kernel while its listener's
//! overflow stamp is stale, and periodically. With tcp_timestamps=2 (`flags::KERNEL_TS`), a
//! timestamp client's SYN-ACK carries every option, in the kernel's own timestamp cookie.

use std::net::{Ipv4Addr, TcpStream};

use syncookie_common::{
    cookie::SynAttrs,
    kernel_ts,
    maps::{Config, flags},
    proto::{TCP_CWR, TCP_ECE, TCP_SYN},
    stats::Counter,
};
use syncookie_tests::{
    frames::{SERVER_IP, Segment, expected_synack, parse_synack, udp4},
    require_root,
};

use crate::{
    CLIENT_ISN, CLIENT_PORT, CLIENT_TSVAL, CLIENT_WSCALE, CONFIG, OTHER_PORT, PORT, XDP_DROP,
    XDP_PASS, XDP_TX,
    expect::{Want, expected_options, handshake_ack, linux_syn},
    harness::{Shield, XdpRun, assert_action, assert_untouched},
};

/// A shield in a namespace with tcp_syncookies=2 (as the daemon sets it in this mode) and a
/// listener whose overflow stamp is fresh: one handshake through `lo`, which the kernel
/// answered with its own cookie.
fn stamped() -> (Shield, std::net::TcpListener, TcpStream) {
    stamped_with(CONFIG)
}

fn stamped_with(cfg: Config) -> (Shield, std::net::TcpListener, TcpStream) {
    let s = Shield::with_config(cfg);
    s.ns.sysctl("net.ipv4.tcp_syncookies", "2");
    let l = s.listen();
    let c = TcpStream::connect((Ipv4Addr::from(SERVER_IP), PORT)).expect("a kernel handshake");
    (s, l, c)
}

/// Kernel-cookie mode's SYN-ACK to [`linux_syn`] (after the refresh SYN, which the first SYN
/// to an address and port is: the kernel's), and its ISN, the kernel's own cookie.
fn kernels_synack(s: &Shield) -> (XdpRun, u32) {
    kernels_synack_to(s, &linux_syn())
}

fn kernels_synack_to(s: &Shield, syn: &Segment) -> (XdpRun, u32) {
    let first = Segment::syn(CLIENT_PORT + 1, PORT, CLIENT_ISN).frame();
    assert_untouched(&s.xdp_kc(&first), &first, XDP_PASS, "the refresh SYN");
    let run = s.xdp_kc(&syn.frame());
    assert_action(&run, XDP_TX, "a SYN (stamp fresh, refresh not due)");
    let sa = parse_synack(&run.frame).unwrap_or_else(|e| panic!("the SYN-ACK: {e}"));
    let isn = sa.tcp.sequence_number;
    (run, isn)
}

#[test]
fn syn_gets_the_kernels_cookie_and_its_ack_passes_a_forged_one_is_dropped() {
    require_root!();
    let (s, _l, _c) = stamped();
    let syn = linux_syn();
    let (run, isn) = kernels_synack(&s);
    // Everything but the cookie is fixed: MSS only (no timestamps, so no SACK, window scaling
    // or ECN), the kernel's window, TTL, IP ID 0, DF; etherparse computes the checksums.
    let mut mss = vec![2, 4];
    mss.extend_from_slice(&CONFIG.mss_v4.to_be_bytes());
    let want = expected_synack(&syn, isn, CONFIG.window, CONFIG.ttl, false, &mss);
    assert_eq!(run.frame, want, "the SYN-ACK, byte for byte");

    // The client's ACK: the kernel's raw check accepts the ISN, and so would cookie_v4_check.
    let ack = handshake_ack(&syn, isn, None).frame();
    assert_untouched(&s.xdp_kc(&ack), &ack, XDP_PASS, "the ACK of our SYN-ACK");
    // So does its first data segment (the ACK lost).
    let mut data = handshake_ack(&syn, isn, None);
    data.payload = b"GET / HTTP/1.0\r\n\r\n".to_vec();
    let data = data.frame();
    assert_untouched(
        &s.xdp_kc(&data),
        &data,
        XDP_PASS,
        "data carrying the cookie",
    );

    // A cookie with a hash bit off (not a low bit: the kernel's check accepts a neighbouring
    // MSS index, so `isn ^ 1` may pass), and one for another client port: forged.
    for (i, forged) in [
        handshake_ack(&syn, isn ^ 0x0010_0000, None),
        Segment::ack(CLIENT_PORT + 2, PORT, CLIENT_ISN + 1, isn.wrapping_add(1)),
    ]
    .iter()
    .enumerate()
    {
        let f = forged.frame();
        assert_untouched(&s.xdp_kc(&f), &f, XDP_DROP, &format!("forged ACK {i}"));
    }
    s.assert_counters(
        &[
            (Counter::SynSeen, 2),
            (Counter::SynRefresh, 1),
            (Counter::SynackSent, 1),
            (Counter::AckValid, 2),
            (Counter::HandoffOk, 2),
            (Counter::AckBadCookie, 2),
        ],
        "refresh SYN, SYN, ACK, data, two forged ACKs",
    );
}

/// CLOCK_MONOTONIC in ms: the kernel's TCP clock (`tcp_clock_ns()`), the timestamp cookie's.
fn monotonic_ms() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("clock");
    t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000
}

#[test]
fn with_timestamps_2_the_synack_carries_every_option_in_the_kernels_timestamp_cookie() {
    require_root!();
    // tcp_ecn on: the client's ECE|CWR asks for ECN, which the cookie keeps too.
    let cfg = Config {
        flags: CONFIG.flags | flags::KERNEL_TS | flags::ECN,
        ..CONFIG
    };
    let (s, _l, _c) = stamped_with(cfg);
    s.ns.sysctl("net.ipv4.tcp_timestamps", "2");
    // A Linux SYN asking for ECN (ECE|CWR): SACK, timestamps, window scale 7.
    let syn = linux_syn().with_flags(TCP_SYN | TCP_ECE | TCP_CWR);
    let before = monotonic_ms();
    let (run, isn) = kernels_synack_to(&s, &syn);
    let after = monotonic_ms();
    let sa = parse_synack(&run.frame).unwrap_or_else(|e| panic!("the SYN-ACK: {e}"));
    let Some(tsval) = sa.tcp.options_iterator().find_map(|o| match o {
        Ok(etherparse::TcpOptionElement::Timestamp(val, _)) => Some(val),
        _ => None,
    }) else {
        panic!("no timestamps in the SYN-ACK: {:?}", sa.tcp)
    };
    // The kernel's cookie_init_timestamp(): the options in the low 6 bits, the clock above,
    // at most one period behind it.
    let sent = SynAttrs {
        mss: 0,
        wscale: CLIENT_WSCALE,
        sack: true,
        ecn: true,
    };
    assert_eq!(kernel_ts::decode(tsval), sent, "TSval {tsval:#x}: options");
    let lo = ((before & !63) as u32).wrapping_sub(64);
    assert!(
        tsval.wrapping_sub(lo) <= (after as u32).wrapping_sub(lo),
        "TSval {tsval} outside the clock's {lo}..={after} ms"
    );
    // Every byte: the kernel's options in its order, ECE, the window with timestamps.
    let want = Want {
        ece: true,
        sack: true,
        tsecr: Some(CLIENT_TSVAL),
        wscale: true,
    };
    let expected = expected_synack(
        &syn,
        isn,
        CONFIG.window_ts,
        CONFIG.ttl,
        true,
        &expected_options(&want, tsval),
    );
    assert_eq!(run.frame, expected, "the SYN-ACK, byte for byte");
    // The client's ACK echoes it: the kernel's own check takes the cookie.
    let ack = handshake_ack(&syn, isn, Some(tsval)).frame();
    assert_untouched(
        &s.xdp_kc(&ack),
        &ack,
        XDP_PASS,
        "the ACK echoing the cookie",
    );
    s.assert_counters(
        &[
            (Counter::SynSeen, 2),
            (Counter::SynRefresh, 1),
            (Counter::SynackSent, 1),
            (Counter::AckValid, 1),
            (Counter::HandoffOk, 1),
        ],
        "refresh SYN, SYN with every option, its ACK",
    );
    // Without timestamps, the MSS only, as without tcp_timestamps=2.
    let bare = Segment::syn(CLIENT_PORT + 3, PORT, CLIENT_ISN);
    let run = s.xdp_kc(&bare.frame());
    assert_action(&run, XDP_TX, "a SYN without options");
    let isn = parse_synack(&run.frame)
        .expect("SYN-ACK")
        .tcp
        .sequence_number;
    let mut mss = vec![2, 4];
    mss.extend_from_slice(&CONFIG.mss_v4.to_be_bytes());
    let want = expected_synack(&bare, isn, CONFIG.window, CONFIG.ttl, false, &mss);
    assert_eq!(run.frame, want, "a SYN-ACK to a SYN without timestamps");
}

#[test]
fn syns_go_to_the_kernel_while_its_stamp_is_stale() {
    require_root!();
    let s = Shield::new();
    s.ns.sysctl("net.ipv4.tcp_syncookies", "2");
    let _l = s.listen();
    // No handshake of the kernel's yet (a new listener, or two quiet minutes): the kernel would
    // refuse our cookies, so every SYN is its own, not only the periodic one.
    for sport in [CLIENT_PORT, CLIENT_PORT + 1, CLIENT_PORT + 2] {
        let syn = Segment::syn(sport, PORT, CLIENT_ISN).frame();
        assert_untouched(&s.xdp_kc(&syn), &syn, XDP_PASS, "a SYN, stamp stale");
    }
    let forged = Segment::ack(CLIENT_PORT, PORT, CLIENT_ISN + 1, 0xdead_beef).frame();
    assert_untouched(&s.xdp_kc(&forged), &forged, XDP_DROP, "a forged ACK");
    s.assert_counters(
        &[
            (Counter::SynSeen, 3),
            (Counter::SynRefresh, 3),
            (Counter::AckBadCookie, 1),
        ],
        "three SYNs and a forged ACK, stamp stale",
    );
}

#[test]
fn other_traffic_is_left_alone() {
    require_root!();
    let (s, _l, _c) = stamped();
    let _other = s.listen_on(OTHER_PORT);
    let frames = [
        (
            "a SYN to an unprotected port",
            Segment::syn(CLIENT_PORT, OTHER_PORT, 1).frame(),
        ),
        (
            "an ACK to an unprotected port",
            Segment::ack(CLIENT_PORT, OTHER_PORT, 1, 2).frame(),
        ),
        (
            "UDP to the protected port",
            udp4(CLIENT_PORT, PORT, b"hello"),
        ),
        (
            "an RST to the protected port",
            Segment::ack(CLIENT_PORT, PORT, 1, 2)
                .with_flags(0x14)
                .frame(),
        ),
    ];
    for (what, f) in &frames {
        assert_untouched(&s.xdp_kc(f), f, XDP_PASS, what);
    }
    s.assert_counters(&[], "traffic the shield does not judge");
    // A SYN without a listener is the kernel's (it resets it).
    drop(_l);
    let syn = Segment::syn(CLIENT_PORT, PORT, CLIENT_ISN).frame();
    assert_untouched(&s.xdp_kc(&syn), &syn, XDP_PASS, "a SYN without a listener");
}

/// Full mode (`syncookie_xdp`), docs/packets.md's "ACK carrying the kernel's own SYN cookie:
/// pass, `ack_kernel_cookie`" (a SYN the shield left to the kernel, answered with its cookie):
/// the ACK of a cookie the kernel made (`bpf_tcp_raw_gen_syncookie_ipv4` in kernel-cookie
/// mode's program) passes untouched and is counted; the same ACK with the cookie off by one is
/// the control (a bad cookie).
#[test]
fn full_mode_passes_acks_with_the_kernels_own_cookie() {
    require_root!();
    let (s, _l, _c) = stamped();
    let syn = linux_syn();
    let (_, isn) = kernels_synack(&s);
    let before = s.counters();
    let ack = handshake_ack(&syn, isn, None).frame();
    assert_untouched(
        &s.xdp(&ack),
        &ack,
        XDP_PASS,
        "the ACK of the kernel's cookie",
    );
    let c = s.counters();
    assert_eq!(
        c.get(Counter::AckKernelCookie) - before.get(Counter::AckKernelCookie),
        1,
        "{}",
        c.table()
    );
    let bad = handshake_ack(&syn, isn.wrapping_add(1 << 12), None).frame();
    s.xdp(&bad);
    assert_eq!(
        s.counters().get(Counter::AckKernelCookie),
        c.get(Counter::AckKernelCookie),
        "a cookie off by one counted as the kernel's"
    );
}
