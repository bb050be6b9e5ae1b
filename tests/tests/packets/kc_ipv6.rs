//! Kernel-cookie mode over IPv6 (`bpf_tcp_raw_gen_syncookie_ipv6`, 6.0+): the SYN-ACK carries
//! the kernel's IPv6 cookie, its ACK passes to the kernel, a forged one is dropped; with
//! tcp_timestamps=2 the options ride in the timestamp cookie as over IPv4.

use std::net::{Ipv6Addr, TcpStream};

use etherparse::TcpOptionElement;
use syncookie_common::{
    kernel_ts,
    maps::{Config, flags},
    stats::Counter,
};
use syncookie_tests::{
    frames::{SERVER_IP6, Segment, expected_synack6, parse_synack6},
    require_root,
};

use crate::{
    CLIENT_ISN, CLIENT_PORT, CLIENT_TSVAL, CLIENT_WSCALE, CONFIG, PORT, XDP_DROP, XDP_PASS, XDP_TX,
    expect::{Want, expected_options_mss, handshake_ack, linux_syn},
    harness::{Shield, assert_action, assert_untouched},
};

/// A Linux client's SYN over IPv6: MSS 1440, SACK, timestamps, window scale 7.
pub(crate) fn linux_syn6() -> Segment {
    let mut s = linux_syn().v6();
    s.options[0] = TcpOptionElement::MaximumSegmentSize(1440);
    s
}

/// A shield (with `cfg`) whose IPv6 listener's overflow stamp is fresh: one handshake of the
/// kernel's own through `lo`, tcp_syncookies=2 as the daemon sets it.
fn stamped6(cfg: Config) -> (Shield, std::net::TcpListener, TcpStream) {
    let s = Shield::with_config(cfg);
    s.enable_v6();
    s.ns.sysctl("net.ipv4.tcp_syncookies", "2");
    let l = s.listen6();
    let c = TcpStream::connect((Ipv6Addr::from(SERVER_IP6), PORT)).expect("a kernel handshake");
    (s, l, c)
}

/// The SYN-ACK to `syn` after the refresh SYN (the kernel's), and its ISN.
fn synack6(s: &Shield, syn: &Segment) -> (Vec<u8>, u32) {
    let first = Segment::syn(CLIENT_PORT + 1, PORT, CLIENT_ISN).v6().frame();
    assert_untouched(&s.xdp_kc(&first), &first, XDP_PASS, "the refresh SYN");
    let run = s.xdp_kc(&syn.frame());
    assert_action(&run, XDP_TX, "an IPv6 SYN (stamp fresh, refresh not due)");
    let sa = parse_synack6(&run.frame).unwrap_or_else(|e| panic!("the SYN-ACK: {e}"));
    let isn = sa.tcp.sequence_number;
    (run.frame, isn)
}

#[test]
fn ipv6_syn_gets_the_kernels_cookie_and_its_ack_passes_a_forged_one_is_dropped() {
    require_root!();
    let (s, _l, _c) = stamped6(CONFIG);
    let syn = linux_syn6();
    let (frame, isn) = synack6(&s, &syn);
    let mut mss = vec![2, 4];
    mss.extend_from_slice(&CONFIG.mss_v6.to_be_bytes());
    let want = expected_synack6(&syn, isn, CONFIG.window_v6, CONFIG.hop_limit, false, &mss);
    assert_eq!(frame, want, "the SYN-ACK, byte for byte");
    let ack = handshake_ack(&syn, isn, None).frame();
    assert_untouched(&s.xdp_kc(&ack), &ack, XDP_PASS, "the ACK of our SYN-ACK");
    let forged = handshake_ack(&syn, isn ^ 0x0010_0000, None).frame();
    assert_untouched(&s.xdp_kc(&forged), &forged, XDP_DROP, "a forged ACK");
    s.assert_counters(
        &[
            (Counter::SynSeen, 2),
            (Counter::SynRefresh, 1),
            (Counter::SynackSent, 1),
            (Counter::AckValid, 1),
            (Counter::HandoffOk, 1),
            (Counter::AckBadCookie, 1),
        ],
        "refresh SYN, SYN, ACK, forged ACK over IPv6",
    );
}

#[test]
fn ipv6_with_timestamps_2_the_synack_carries_every_option() {
    require_root!();
    let cfg = Config {
        flags: CONFIG.flags | flags::KERNEL_TS,
        ..CONFIG
    };
    let (s, _l, _c) = stamped6(cfg);
    s.ns.sysctl("net.ipv4.tcp_timestamps", "2");
    let syn = linux_syn6();
    let (frame, isn) = synack6(&s, &syn);
    let sa = parse_synack6(&frame).expect("SYN-ACK");
    let Some(tsval) = sa.tcp.options_iterator().find_map(|o| match o {
        Ok(TcpOptionElement::Timestamp(val, _)) => Some(val),
        _ => None,
    }) else {
        panic!("no timestamps in the SYN-ACK: {:?}", sa.tcp)
    };
    let got = kernel_ts::decode(tsval);
    assert_eq!(
        (got.wscale, got.sack, got.ecn),
        (CLIENT_WSCALE, true, false)
    );
    let want = Want {
        ece: false,
        sack: true,
        tsecr: Some(CLIENT_TSVAL),
        wscale: true,
    };
    let opts = expected_options_mss(&want, tsval, CONFIG.mss_v6);
    let expected = expected_synack6(
        &syn,
        isn,
        CONFIG.window_ts_v6,
        CONFIG.hop_limit,
        false,
        &opts,
    );
    assert_eq!(frame, expected, "the SYN-ACK, byte for byte");
    let ack = handshake_ack(&syn, isn, Some(tsval)).frame();
    assert_untouched(
        &s.xdp_kc(&ack),
        &ack,
        XDP_PASS,
        "the ACK echoing the cookie",
    );
}
