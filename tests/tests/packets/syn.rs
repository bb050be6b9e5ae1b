//! SYNs: the SYN-ACK with its cookie and options, and the SYNs the program leaves to the kernel.

use etherparse::TcpOptionElement;
use syncookie_common::{
    cookie::{SynAttrs, WSCALE_NONE},
    maps::{Config, flags},
    proto::{TCP_CWR, TCP_ECE, TCP_SYN},
    stats::Counter,
};
use syncookie_tests::{
    frames::{SERVER_IP, Segment, md5_syn_options},
    packets::listen_stream,
    require_root,
};

use crate::{
    CLIENT_ISN, CLIENT_PORT, CLIENT_TSVAL, CONFIG, KEY1, MSS, PORT, XDP_PASS, XDP_TX,
    expect::{
        Want, assert_synack_for, assert_synack_to, cookie_for, handshake_ack, linux_attrs,
        linux_syn,
    },
    harness::{Shield, assert_untouched},
};

#[test]
fn syn_gets_synack_with_cookie() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen();

    let syn = linux_syn();
    let c = cookie_for(&KEY1, &syn, linux_attrs(), true);
    let want = answer(true, Some(CLIENT_TSVAL), true);
    assert_synack_for(&s, &syn, c, &want);
    s.assert_counters(
        &[(Counter::SynSeen, 1), (Counter::SynackSent, 1)],
        "a Linux SYN",
    );

    // No options at all: MSS 536 assumed (RFC 9293), nothing else offered back.
    let bare = Segment::syn(CLIENT_PORT + 1, PORT, 0xfedc_ba98);
    let a = SynAttrs {
        mss: 536,
        wscale: WSCALE_NONE,
        sack: false,
        ecn: false,
    };
    let c = cookie_for(&KEY1, &bare, a, false);
    let want = answer(false, None, false);
    assert_synack_for(&s, &bare, c, &want);
    s.assert_counters(
        &[(Counter::SynSeen, 2), (Counter::SynackSent, 2)],
        "a SYN without options",
    );
}

/// What the cookie keeps of a SYN without ECN (`mss`: the client's).
fn attrs(mss: u16, wscale: u8, sack: bool) -> SynAttrs {
    SynAttrs {
        mss,
        wscale,
        sack,
        ecn: false,
    }
}

/// A SYN-ACK without ECE offering back `sack`, timestamps echoing `tsecr`, and `wscale`.
fn answer(sack: bool, tsecr: Option<u32>, wscale: bool) -> Want {
    Want {
        ece: false,
        sack,
        tsecr,
        wscale,
    }
}

#[test]
fn syn_options_are_answered_as_offered() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen();
    use TcpOptionElement::*;
    let none = WSCALE_NONE;
    let cases: Vec<(&str, Vec<TcpOptionElement>, Want, SynAttrs)> = vec![
        (
            "timestamps without SACK",
            vec![MaximumSegmentSize(1400), Noop, Noop, Timestamp(77, 0)],
            answer(false, Some(77), false),
            attrs(1400, none, false),
        ),
        (
            "SACK and window scale without timestamps (Windows order)",
            vec![
                MaximumSegmentSize(9000),
                Noop,
                WindowScale(2),
                Noop,
                Noop,
                SelectiveAcknowledgementPermitted,
            ],
            answer(true, None, true),
            attrs(9000, 2, true),
        ),
        (
            "macOS order (EOL padding)",
            vec![
                MaximumSegmentSize(1460),
                Noop,
                WindowScale(6),
                Noop,
                Noop,
                Timestamp(5, 0),
                SelectiveAcknowledgementPermitted,
            ],
            answer(true, Some(5), true),
            attrs(1460, 6, true),
        ),
        (
            "window scale 20, clamped to 14 (RFC 7323)",
            vec![MaximumSegmentSize(1459), Noop, WindowScale(20)],
            answer(false, None, true),
            attrs(1459, 14, false),
        ),
        (
            "MSS between table entries, with timestamps: kept exactly in the TSval",
            vec![MaximumSegmentSize(1000), Noop, Noop, Timestamp(9, 0)],
            answer(false, Some(9), false),
            attrs(1000, none, false),
        ),
    ];
    for (i, (what, opts, want, attrs)) in cases.iter().enumerate() {
        let syn = Segment::syn(CLIENT_PORT + i as u16, PORT, 1000 * i as u32).with_options(opts);
        let c = cookie_for(&KEY1, &syn, *attrs, want.tsecr.is_some());
        eprintln!("{what}");
        assert_synack_for(&s, &syn, c, want);
    }
    let n = cases.len() as u64;
    s.assert_counters(
        &[(Counter::SynSeen, n), (Counter::SynackSent, n)],
        "the SYNs",
    );
}

/// IPv4 options and a payload (TCP Fast Open data) are not carried into the SYN-ACK.
#[test]
fn syn_with_ip_options_and_payload_gets_plain_synack() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen();
    let mut syn = linux_syn();
    syn.ip_options = vec![1, 1, 1, 0]; // NOP NOP NOP EOL
    syn.payload = b"GET / HTTP/1.0\r\n\r\n".to_vec();
    let c = cookie_for(&KEY1, &syn, linux_attrs(), true);
    assert_synack_for(&s, &syn, c, &answer(true, Some(CLIENT_TSVAL), true));
    s.assert_counters(
        &[(Counter::SynSeen, 1), (Counter::SynackSent, 1)],
        "a SYN with IP options and data",
    );
}

#[test]
fn vlan_tagged_syns_get_tagged_synacks() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen();
    let want = answer(true, Some(CLIENT_TSVAL), true);
    for tags in [&[100u16][..], &[200, 100]] {
        let syn = linux_syn().with_vlans(tags);
        let c = cookie_for(&KEY1, &syn, linux_attrs(), true);
        let r = assert_synack_for(&s, &syn, c, &want);
        assert_eq!(r.vlan.len(), tags.len(), "VLAN tags on the SYN-ACK");
    }
    s.assert_counters(
        &[(Counter::SynSeen, 2), (Counter::SynackSent, 2)],
        "tagged SYNs",
    );
}

/// A sender with TX checksum offload (a veth peer, a container) leaves only the pseudo-header
/// sum in the field, and the kernel accepts the SYN (CHECKSUM_PARTIAL): so do we, with the
/// same SYN-ACK as for a full sum (IPv6: packets/ipv6.rs). (Before: passed as a bad checksum, and such
/// clients were never protected.)
#[test]
fn syn_with_partial_checksum_is_answered() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen();
    let syn = linux_syn();
    let input = syn.frame_with_partial_checksum();
    assert_ne!(
        input,
        syn.frame(),
        "the partial sum differs from the full one"
    );
    let c = cookie_for(&KEY1, &syn, linux_attrs(), true);
    assert_synack_to(&s, &syn, &input, c, &answer(true, Some(CLIENT_TSVAL), true));
    s.assert_counters(
        &[(Counter::SynSeen, 1), (Counter::SynackSent, 1)],
        "a SYN with a partial checksum",
    );
}

/// Any other sum that does not verify: the kernel drops the SYN, so it is the kernel's.
#[test]
fn syn_with_bad_checksum_goes_to_the_kernel() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen();
    let input = linux_syn().frame_with_bad_checksum();
    let run = s.xdp(&input);
    assert_untouched(&run, &input, XDP_PASS, "a SYN with a bad TCP checksum");
    s.assert_counters(
        &[(Counter::SynSeen, 1), (Counter::SynBadChecksum, 1)],
        "a SYN with a bad checksum",
    );
}

/// A socket must never get more than the client's MSS, and `bpf_sk_assign_tcp_reqsk` refuses
/// less than 536 (IPv6 1220) with -EINVAL: below that the SYN is the kernel's, timestamps or
/// not, which answers with the client's MSS (the kernel's own cookies would give it 536). With
/// timestamps the shield once answered, and the handoff then failed: the client was reset
/// (found by the differential test, tests/tests/differential.rs).
#[test]
fn syn_with_mss_below_the_handoffs_minimum_goes_to_the_kernel() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen();
    use TcpOptionElement::*;
    let small = [88u16, 535, 500, 100];
    for (i, mss) in small.into_iter().enumerate() {
        // The last two with timestamps.
        let opts = if i < 2 {
            vec![MaximumSegmentSize(mss)]
        } else {
            vec![MaximumSegmentSize(mss), Noop, Noop, Timestamp(9, 0)]
        };
        let input = Segment::syn(CLIENT_PORT + i as u16, PORT, CLIENT_ISN)
            .with_options(&opts)
            .frame();
        let run = s.xdp(&input);
        assert_untouched(&run, &input, XDP_PASS, &format!("a SYN with MSS {mss}"));
    }
    // The smallest entry itself is answered, without timestamps and with them.
    let syn =
        Segment::syn(CLIENT_PORT + 4, PORT, CLIENT_ISN).with_options(&[MaximumSegmentSize(536)]);
    let c = cookie_for(&KEY1, &syn, attrs(536, WSCALE_NONE, false), false);
    assert_synack_for(&s, &syn, c, &answer(false, None, false));
    let syn = Segment::syn(CLIENT_PORT + 5, PORT, CLIENT_ISN).with_options(&[
        MaximumSegmentSize(536),
        Noop,
        Noop,
        Timestamp(9, 0),
    ]);
    let c = cookie_for(&KEY1, &syn, attrs(536, WSCALE_NONE, false), true);
    assert_synack_for(&s, &syn, c, &answer(false, Some(9), false));
    s.assert_counters(
        &[
            (Counter::SynSeen, 6),
            (Counter::SynSmallMss, 4),
            (Counter::SynackSent, 2),
        ],
        "SYNs with MSS 88 and 535 without timestamps, 500 and 100 with them, 536 both ways",
    );
}

/// The kernel reads all 40 option bytes; the shield walks 8 items (real stacks send at most 7).
/// An option past the 8th item (SACK-perm, MD5) would be lost or ignored, so such a SYN is the
/// kernel's, untouched. The control: SACK-perm as the 8th item (then EOL padding) is answered
/// with SACK.
#[test]
fn syn_with_options_past_the_walk_goes_to_the_kernel() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen();
    // MSS 1460, then `n` experimental options (kind 253, length 2: the kernel skips them).
    let items = |n: usize, last: &[u8]| {
        let mut o = vec![2, 4, 0x05, 0xb4];
        (0..n).for_each(|_| o.extend([253, 2]));
        o.extend(last);
        while o.len() % 4 != 0 {
            o.push(0);
        }
        o
    };
    let past = [
        ("SACK-perm as the 9th item", items(7, &[4, 2])),
        (
            "TCP-MD5 as the 9th item",
            items(7, &md5_syn_options(0)[6..]),
        ),
        ("a 9th item of no meaning", items(8, &[])),
    ];
    for (i, (what, opts)) in past.iter().enumerate() {
        let input = Segment::syn(CLIENT_PORT + i as u16, PORT, CLIENT_ISN)
            .with_raw_options(opts)
            .frame();
        let run = s.xdp(&input);
        assert_untouched(&run, &input, XDP_PASS, what);
    }
    let syn = Segment::syn(CLIENT_PORT + 3, PORT, CLIENT_ISN).with_raw_options(&items(6, &[4, 2]));
    let c = cookie_for(&KEY1, &syn, attrs(1460, WSCALE_NONE, true), false);
    assert_synack_for(&s, &syn, c, &answer(true, None, false));
    s.assert_counters(
        &[
            (Counter::SynSeen, 4),
            (Counter::SynOptionsUnwalked, 3),
            (Counter::SynackSent, 1),
        ],
        "three SYNs with a 9th option item, one with SACK-perm as the 8th",
    );
}

#[test]
fn syn_without_listener_passes() {
    require_root!();
    let s = Shield::new();
    let input = linux_syn().frame();
    let run = s.xdp(&input);
    assert_untouched(&run, &input, XDP_PASS, "a SYN with no listener");
    s.assert_counters(
        &[(Counter::SynSeen, 1), (Counter::SynPassed, 1)],
        "a SYN with no listener",
    );
}

/// ECE|CWR on a SYN asks for ECN: the SYN-ACK carries ECE (and the cookie says ECN) only when
/// the kernel accepts ECN (flags::ECN); otherwise a plain SYN|ACK.
#[test]
fn ecn_syn_gets_ece_only_when_configured() {
    require_root!();
    let syn = linux_syn().with_flags(TCP_SYN | TCP_ECE | TCP_CWR);
    for ecn in [false, true] {
        let cfg_flags = if ecn {
            CONFIG.flags | flags::ECN
        } else {
            CONFIG.flags
        };
        let s = Shield::with_config(Config {
            flags: cfg_flags,
            ..CONFIG
        });
        let _l = s.listen();
        let a = SynAttrs {
            ecn,
            ..linux_attrs()
        };
        let c = cookie_for(&KEY1, &syn, a, true);
        let want = Want {
            ece: ecn,
            sack: true,
            tsecr: Some(CLIENT_TSVAL),
            wscale: true,
        };
        assert_synack_for(&s, &syn, c, &want);
        s.assert_counters(
            &[(Counter::SynSeen, 1), (Counter::SynackSent, 1)],
            "an ECN SYN",
        );
    }
}

/// Before the daemon's first key (epoch 0) SYNs are the kernel's: no cookie without a key.
#[test]
fn syn_without_key_passes() {
    require_root!();
    let s = Shield::unkeyed(CONFIG);
    let _l = s.listen();
    let input = linux_syn().frame();
    let run = s.xdp(&input);
    assert_untouched(&run, &input, XDP_PASS, "a SYN with no key installed");
    s.assert_counters(
        &[(Counter::SynSeen, 1), (Counter::SynPassed, 1)],
        "a SYN with no key installed",
    );
}

#[test]
fn syn_with_md5_option_passes() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen();
    let input = Segment::syn(CLIENT_PORT, PORT, CLIENT_ISN)
        .with_raw_options(&md5_syn_options(MSS))
        .frame();
    let run = s.xdp(&input);
    assert_untouched(&run, &input, XDP_PASS, "a SYN with TCP-MD5");
    s.assert_counters(
        &[(Counter::SynSeen, 1), (Counter::SynPassed, 1)],
        "a SYN with TCP-MD5",
    );
}

/// docs/packets.md's "SYN to an MPTCP listener: pass, `mptcp_passed`" (the handoff refuses
/// MPTCP listeners): its SYN and a handshake ACK go to the kernel, counted; the same SYN to a
/// plain TCP listener is the positive control.
#[test]
fn syn_and_ack_to_an_mptcp_listener_pass() {
    require_root!();
    let s = Shield::new();
    let addr = std::net::SocketAddrV4::new(SERVER_IP.into(), PORT);
    let l = listen_stream(addr, true);
    let syn = linux_syn();
    let input = syn.frame();
    assert_untouched(
        &s.xdp(&input),
        &input,
        XDP_PASS,
        "a SYN to an MPTCP listener",
    );
    let ack = handshake_ack(&syn, 0x1234_5678, None).frame();
    assert_untouched(&s.xdp(&ack), &ack, XDP_PASS, "an ACK to an MPTCP listener");
    s.assert_counters(
        &[(Counter::SynSeen, 1), (Counter::MptcpPassed, 2)],
        "an MPTCP listener",
    );
    drop(l);
    let _tcp = listen_stream(addr, false);
    assert_eq!(s.xdp(&input).action, XDP_TX, "the SYN to a TCP listener");
}
