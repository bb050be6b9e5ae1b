//! Everything else: other ports, UDP, ARP, IPv6 and fragments pass untouched.

use syncookie_common::stats::Counter;
use syncookie_tests::{
    frames::{NH_FRAGMENT, Segment, arp_request, fragment, ipv4_fragment, udp4},
    require_root,
};

use crate::{
    CLIENT_PORT, OTHER_PORT, PORT, XDP_PASS,
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
