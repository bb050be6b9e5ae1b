//! Everything else: other ports, UDP, ARP, IPv6 and fragments pass untouched; so do TCP
//! segments to the protected port that are neither a SYN nor a handshake ACK.

use syncookie_common::{
    proto::{TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN},
    stats::Counter,
};
use syncookie_tests::{
    frames::{NH_FRAGMENT, Segment, arp_request, fragment, icmp4_echo, ipv4_fragment, udp4},
    require_root,
};

use crate::{
    CLIENT_PORT, OTHER_PORT, PORT, XDP_DROP, XDP_PASS, XDP_TX,
    expect::{handshake_ack, linux_syn},
    harness::{Shield, assert_untouched},
};

#[test]
fn other_ports_and_non_tcp_pass_untouched() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen();
    let _other = s.listen_on(OTHER_PORT);
    let to_other = |seg: Segment| Segment {
        dport: OTHER_PORT,
        ..seg
    };
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "a SYN to an unprotected port",
            to_other(linux_syn()).frame(),
            false,
        ),
        (
            "an ACK to an unprotected port",
            to_other(handshake_ack(&linux_syn(), 1, None)).frame(),
            false,
        ),
        (
            "UDP to the protected port",
            udp4(CLIENT_PORT, PORT, b"not tcp"),
            false,
        ),
        ("ARP", arp_request(), true),
        ("an ICMP echo request to the server", icmp4_echo(), false),
        (
            "an IPv6 first fragment of a SYN to the protected port",
            linux_syn()
                .with_ext(&[(NH_FRAGMENT, fragment(0, true))])
                .frame(),
            true,
        ),
        (
            "an IPv4 first fragment of a SYN to the protected port",
            ipv4_fragment(&linux_syn(), 0, true),
            true,
        ),
        (
            "an IPv4 last fragment to the protected port",
            ipv4_fragment(&linux_syn(), 64, false),
            true,
        ),
    ];
    let mut not_inspected = 0;
    for (what, input, counted) in &cases {
        let run = s.xdp(input);
        assert_untouched(&run, input, XDP_PASS, what);
        not_inspected += u64::from(*counted);
        s.assert_counters(&[(Counter::NotInspected, not_inspected)], what);
    }
}

/// docs/packets.md's "SYN with FIN or RST, SYN-ACK, bare RST or FIN: pass, none", over IPv4
/// and IPv6, to a listening protected port: the frame passes unchanged and no counter moves
/// (not even `syn_seen`).
#[test]
fn syn_with_fin_or_rst_synack_fin_and_rst_pass_uncounted() {
    require_root!();
    let s = Shield::new();
    s.enable_v6();
    let (_l, _l6) = (s.listen(), s.listen6());
    let cases = [
        ("SYN|FIN", TCP_SYN | TCP_FIN),
        ("SYN|RST", TCP_SYN | TCP_RST),
        ("a SYN-ACK", TCP_SYN | TCP_ACK),
        ("a bare FIN", TCP_FIN),
        ("a bare RST", TCP_RST),
    ];
    for (what, f) in cases {
        for v6 in [false, true] {
            let syn = if v6 { linux_syn().v6() } else { linux_syn() };
            let input = syn.with_flags(f).frame();
            let what = format!("{what} (IPv{})", if v6 { 6 } else { 4 });
            assert_untouched(&s.xdp(&input), &input, XDP_PASS, &what);
            s.assert_counters(&[], &what);
        }
    }
    // The positive control: the same SYN without the extra flag is answered and counted.
    let run = s.xdp(&linux_syn().frame());
    assert_eq!(run.action, XDP_TX, "the plain SYN");
    s.assert_counters(
        &[(Counter::SynSeen, 1), (Counter::SynackSent, 1)],
        "the plain SYN",
    );
}

/// docs/packets.md's "TCP with an inconsistent data offset: drop, `malformed`": a data offset
/// below the 20-byte header, or beyond the segment, over IPv4 and IPv6; the same SYN with its
/// own offset is the positive control.
#[test]
fn tcp_with_an_inconsistent_data_offset_is_dropped_as_malformed() {
    require_root!();
    let s = Shield::new();
    s.enable_v6();
    let (_l, _l6) = (s.listen(), s.listen6());
    let mut dropped = 0;
    for v6 in [false, true] {
        let syn = if v6 { linux_syn().v6() } else { linux_syn() };
        let good = syn.frame();
        // The TCP header's data offset: the high nibble of its byte 12.
        let at = 14 + if v6 { 40 } else { 20 } + 12;
        assert_eq!(good[at] >> 4, 10, "Linux's SYN: 40 bytes of TCP header");
        for words in [4u8, 15] {
            let mut bad = good.clone();
            bad[at] = (words << 4) | (bad[at] & 0xf);
            let what = format!("data offset {words} (IPv{})", if v6 { 6 } else { 4 });
            assert_untouched(&s.xdp(&bad), &bad, XDP_DROP, &what);
            dropped += 1;
            s.assert_counters(
                &[
                    (Counter::SynSeen, u64::from(v6)),
                    (Counter::SynackSent, u64::from(v6)),
                    (Counter::Malformed, dropped),
                ],
                &what,
            );
        }
        assert_eq!(s.xdp(&good).action, XDP_TX, "the SYN as it was");
    }
}
