//! IPv6: the SYN-ACK byte for byte (its checksum checked by etherparse and by an RFC 1071 sum of
//! our own, the cookie by the codec), ACKs valid, bad and expired, extension headers walked or
//! not, fragments passed, VLAN tags kept, and the SYNs never answered.

use syncookie_common::{
    cookie::{self, Cookie, Flow, SynAttrs, WSCALE_NONE},
    maps::{Config, HANDOFF_MAGIC, HandoffMeta, Key, META_SACK, META_TS, flags},
    stats::Counter,
};
use syncookie_tests::{
    frames::{
        NH_DSTOPTS, NH_FRAGMENT, NH_HOPOPTS, NH_ROUTING, Segment, SynAck6, expected_synack6,
        fragment, pad_options, parse_synack6, routing,
    },
    require_root,
};

use crate::{
    CLIENT_ISN, CLIENT_PORT, CLIENT_TSVAL, CLIENT_WSCALE, CONFIG, KEY1, XDP_DROP, XDP_PASS, XDP_TX,
    expect::{
        Want, assert_our_tsval, expected_options_mss, handshake_ack, key, linux_syn, linux_want,
        monotonic_ms,
    },
    harness::{Shield, assert_action, assert_untouched, ne_u32},
};

/// Extension headers: (type, bytes after the first two).
type Chain = Vec<(u8, Vec<u8>)>;

fn flow6(seg: &Segment) -> Flow {
    let ip6 = seg.ip6.as_ref().expect("IPv6");
    let w = |a: &[u8; 16]| {
        [0, 4, 8, 12].map(|i| u32::from_be_bytes(a[i..i + 4].try_into().expect("4 bytes")))
    };
    Flow::v6(w(&ip6.src), w(&ip6.dst), seg.sport, seg.dport)
}

fn cookie6(key: &Key, syn: &Segment, a: SynAttrs, ts: bool) -> Cookie {
    cookie::encode(key, &flow6(syn), syn.seq, &a, ts).expect("an MSS a cookie can keep")
}

/// A Linux client's SYN over IPv6: MSS 1440, SACK, timestamps, window scale 7.
fn linux_syn6() -> Segment {
    let mut s = linux_syn().v6();
    s.options[0] = etherparse::TcpOptionElement::MaximumSegmentSize(1440);
    s
}

fn linux_attrs6() -> SynAttrs {
    SynAttrs {
        mss: 1440,
        wscale: CLIENT_WSCALE,
        sack: true,
        ecn: false,
    }
}

fn shield6() -> (Shield, std::net::TcpListener) {
    let s = Shield::new();
    s.enable_v6();
    let l = s.listen6();
    (s, l)
}

fn window6(ts: bool) -> u16 {
    if ts {
        CONFIG.window_ts_v6
    } else {
        CONFIG.window_v6
    }
}

/// Runs `syn` through XDP and checks every byte of the IPv6 SYN-ACK; returns it parsed.
fn assert_synack6(s: &Shield, syn: &Segment, c: Cookie, want: &Want) -> SynAck6 {
    assert_synack6_to(s, syn, &syn.frame(), c, want)
}

/// As [`assert_synack6`], for `syn` sent as the frame `input`.
fn assert_synack6_to(s: &Shield, syn: &Segment, input: &[u8], c: Cookie, want: &Want) -> SynAck6 {
    let before = monotonic_ms();
    let run = s.xdp(input);
    let after = monotonic_ms();
    assert_action(&run, XDP_TX, "an IPv6 SYN to a listening protected port");
    assert!(run.meta.is_empty(), "metadata on a SYN-ACK");
    let r = parse_synack6(&run.frame)
        .unwrap_or_else(|e| panic!("not a valid IPv6 SYN-ACK: {e}\n{:02x?}", run.frame));
    assert_eq!(r.tcp.sequence_number, c.isn, "seq must be the cookie");
    assert_eq!(r.ip.hop_limit, CONFIG.hop_limit, "hop limit");
    assert_eq!(
        (r.ip.traffic_class, r.ip.flow_label.value()),
        (0, 0),
        "class, label"
    );
    let tsval = match want.tsecr {
        Some(ecr) => {
            let (val, echoed) = r.timestamps().expect("timestamps");
            assert_eq!(echoed, ecr, "TSecr");
            assert_our_tsval(val, c, (before, after));
            val
        }
        None => {
            assert_eq!(r.timestamps(), None, "no timestamps");
            0
        }
    };
    let opts = expected_options_mss(want, tsval, CONFIG.mss_v6);
    let expected = expected_synack6(
        syn,
        c.isn,
        window6(want.tsecr.is_some()),
        CONFIG.hop_limit,
        want.ece,
        &opts,
    );
    assert_eq!(run.frame, expected, "the IPv6 SYN-ACK, byte for byte");
    r
}

/// A sender with TX checksum offload leaves the IPv6 pseudo-header sum in the field
/// (__tcp_v6_send_check()); the kernel accepts it, and so do we.
#[test]
fn ipv6_syn_with_partial_checksum_is_answered() {
    require_root!();
    let (s, _l) = shield6();
    let syn = linux_syn6();
    let input = syn.frame_with_partial_checksum();
    assert_ne!(
        input,
        syn.frame(),
        "the partial sum differs from the full one"
    );
    let c = cookie6(&KEY1, &syn, linux_attrs6(), true);
    assert_synack6_to(&s, &syn, &input, c, &linux_want());
    s.assert_counters(
        &[(Counter::SynSeen, 1), (Counter::SynackSent, 1)],
        "an IPv6 SYN with a partial checksum",
    );
}

#[test]
fn ipv6_syn_gets_synack_with_cookie() {
    require_root!();
    let (s, _l) = shield6();
    let syn = linux_syn6();
    assert_synack6(
        &s,
        &syn,
        cookie6(&KEY1, &syn, linux_attrs6(), true),
        &linux_want(),
    );
    // No options: the kernel's IPv6 default MSS (1220), nothing offered back.
    let bare = Segment::syn(CLIENT_PORT + 1, crate::PORT, 0xfedc_ba98).v6();
    let a = SynAttrs {
        mss: 1220,
        wscale: WSCALE_NONE,
        sack: false,
        ecn: false,
    };
    let none = Want {
        ece: false,
        sack: false,
        tsecr: None,
        wscale: false,
    };
    assert_synack6(&s, &bare, cookie6(&KEY1, &bare, a, false), &none);
    // Jumbo MSS without timestamps: the IPv6 table's largest entry not above the client's.
    let big = Segment::syn(CLIENT_PORT + 2, crate::PORT, 7)
        .v6()
        .with_options(&[etherparse::TcpOptionElement::MaximumSegmentSize(9000)]);
    let a = SynAttrs { mss: 9000, ..a };
    assert_synack6(&s, &big, cookie6(&KEY1, &big, a, false), &none);
    s.assert_counters(
        &[(Counter::SynSeen, 3), (Counter::SynackSent, 3)],
        "three IPv6 SYNs",
    );
}

/// `bpf_sk_assign_tcp_reqsk` refuses an IPv6 MSS below 1220 (IPV6_MIN_MTU - 60): such a SYN
/// is the kernel's, with timestamps too (the shield once answered it, and the client was reset
/// when the handoff failed).
#[test]
fn ipv6_syn_with_mss_below_1220_goes_to_the_kernel() {
    require_root!();
    let (s, _l) = shield6();
    use etherparse::TcpOptionElement::*;
    for (i, mss) in [1200u16, 88].into_iter().enumerate() {
        let input = Segment::syn(CLIENT_PORT + i as u16, crate::PORT, CLIENT_ISN)
            .v6()
            .with_options(&[MaximumSegmentSize(mss), Noop, Noop, Timestamp(9, 0)])
            .frame();
        let what = format!("an IPv6 SYN with MSS {mss} and timestamps");
        assert_untouched(&s.xdp(&input), &input, XDP_PASS, &what);
    }
    s.assert_counters(
        &[(Counter::SynSeen, 2), (Counter::SynSmallMss, 2)],
        "IPv6 SYNs with MSS 1200 and 88, timestamps on",
    );
}

/// Any extension header makes an IPv6 SYN the kernel's: before a listener, it checks each
/// header's TLVs (padding at most 7 bytes, unknown options by their action bits, a count limit)
/// and refuses segment-routing headers unless enabled, by per-namespace settings. The positive
/// control: the same SYN without them is answered.
#[test]
fn ipv6_extension_headers_are_the_kernels() {
    require_root!();
    let (s, _l) = shield6();
    let c = cookie6(&KEY1, &linux_syn6(), linux_attrs6(), true);
    let run = s.xdp(&linux_syn6().frame());
    assert_action(&run, XDP_TX, "the SYN without extension headers");
    let r = parse_synack6(&run.frame).unwrap_or_else(|e| panic!("control: {e}"));
    assert_eq!(r.tcp.sequence_number, c.isn, "control: cookie");
    let chains: Vec<(&str, Chain)> = vec![
        ("hop-by-hop (PadN)", vec![(NH_HOPOPTS, pad_options(1))]),
        (
            "destination options with 14 bytes of padding (the kernel drops: over 7)",
            vec![(NH_DSTOPTS, pad_options(2))],
        ),
        (
            "hop-by-hop, destination options, routing (done), destination options",
            vec![
                (NH_HOPOPTS, pad_options(2)),
                (NH_DSTOPTS, pad_options(1)),
                (NH_ROUTING, routing(0)),
                (NH_DSTOPTS, pad_options(3)),
            ],
        ),
        ("a first fragment", vec![(NH_FRAGMENT, fragment(0, true))]),
        (
            "an atomic fragment",
            vec![(NH_FRAGMENT, fragment(0, false))],
        ),
        (
            "a routing header with segments left (forwarded, not ours)",
            vec![(NH_ROUTING, routing(1))],
        ),
    ];
    let mut n = 0;
    for (what, ext) in chains {
        let input = linux_syn6().with_ext(&ext).frame();
        assert_untouched(&s.xdp(&input), &input, XDP_PASS, what);
        n += 1;
        s.assert_counters(
            &[
                (Counter::SynSeen, 1),
                (Counter::SynackSent, 1),
                (Counter::NotInspected, n),
            ],
            what,
        );
    }
    // A cut-short extension header, and a payload length past the frame.
    let mut short = linux_syn6()
        .with_ext(&[(NH_HOPOPTS, pad_options(1))])
        .frame();
    let l3 = 14;
    short.truncate(l3 + 40 + 4);
    short[l3 + 4..l3 + 6].copy_from_slice(&4u16.to_be_bytes());
    assert_untouched(
        &s.xdp(&short),
        &short,
        XDP_PASS,
        "a cut-short hop-by-hop header",
    );
    let mut long = linux_syn6().frame();
    long[l3 + 4..l3 + 6].copy_from_slice(&2000u16.to_be_bytes());
    assert_untouched(
        &s.xdp(&long),
        &long,
        XDP_PASS,
        "payload length past the frame",
    );
}

#[test]
fn ipv6_vlan_tags_are_kept() {
    require_root!();
    let (s, _l) = shield6();
    for ids in [&[7u16][..], &[100, 200][..]] {
        let syn = linux_syn6().with_vlans(ids);
        let c = cookie6(&KEY1, &syn, linux_attrs6(), true);
        let r = assert_synack6(&s, &syn, c, &linux_want());
        assert_eq!(r.vlan.len(), ids.len(), "tags on the reply");
        for (tag, id) in r.vlan.iter().zip(ids) {
            assert_eq!(tag.vlan_id.value(), *id, "VLAN id");
        }
    }
}

/// Decodes `HandoffMeta` (repr(C), native endian).
fn meta(b: &[u8]) -> HandoffMeta {
    assert_eq!(b.len(), size_of::<HandoffMeta>(), "metadata {b:02x?}");
    HandoffMeta {
        magic: ne_u32(b, 0),
        tsval: ne_u32(b, 4),
        tsecr: ne_u32(b, 8),
        mss: u16::from_ne_bytes([b[12], b[13]]),
        snd_wscale: b[14],
        flags: b[15],
    }
}

#[test]
fn ipv6_acks_valid_bad_and_expired() {
    require_root!();
    let (s, _l) = shield6();
    let syn = linux_syn6();
    let run = s.xdp(&syn.frame());
    assert_action(&run, XDP_TX, "the SYN");
    let r = parse_synack6(&run.frame).expect("SYN-ACK");
    let (tsval, _) = r.timestamps().expect("timestamps");
    let isn = r.tcp.sequence_number;
    let ack = handshake_ack(&syn, isn, Some(tsval)).frame();
    let run = s.xdp(&ack);
    assert_action(&run, XDP_PASS, "a valid IPv6 ACK");
    assert_eq!(run.frame, ack, "the ACK after its metadata");
    assert_eq!(
        meta(&run.meta),
        HandoffMeta {
            magic: HANDOFF_MAGIC,
            tsval: CLIENT_TSVAL.wrapping_add(1),
            tsecr: tsval,
            mss: 1440,
            snd_wscale: CLIENT_WSCALE,
            flags: META_SACK | META_TS,
        },
        "HandoffMeta: the IPv6 MSS table"
    );
    // The same cookie on an IPv4 flow with the same ports is not valid (the family is MACed).
    let bad = handshake_ack(&syn, isn ^ 0x8000_0000, Some(tsval)).frame();
    assert_untouched(&s.xdp(&bad), &bad, XDP_DROP, "a forged IPv6 ACK");
    s.assert_counters(
        &[
            (Counter::SynSeen, 1),
            (Counter::SynackSent, 1),
            (Counter::AckValid, 1),
            (Counter::AckBadCookie, 1),
        ],
        "valid and forged IPv6 ACKs",
    );
    // One rotation: still valid; two: expired.
    s.install(key(2));
    let run = s.xdp(&ack);
    assert_action(&run, XDP_PASS, "a valid IPv6 ACK after one rotation");
    s.install(key(3));
    assert_untouched(
        &s.xdp(&ack),
        &ack,
        XDP_DROP,
        "an IPv6 ACK two rotations old",
    );
    s.assert_counters(
        &[
            (Counter::SynSeen, 1),
            (Counter::SynackSent, 1),
            (Counter::AckValid, 2),
            (Counter::AckBadCookie, 1),
            (Counter::AckExpired, 1),
        ],
        "after two rotations",
    );
}

/// (SYN|FIN, SYN|RST, SYN-ACK, bare FIN and RST: passthrough.rs, IPv4 and IPv6.)
#[test]
fn ipv6_syn_with_data_answered_bad_checksum_passed() {
    require_root!();
    let (s, _l) = shield6();
    // A SYN with data (TFO): answered, without the data.
    let mut syn = linux_syn6();
    syn.payload = b"GET / HTTP/1.0\r\n\r\n".to_vec();
    let c = cookie6(&KEY1, &syn, linux_attrs6(), true);
    assert_synack6(&s, &syn, c, &linux_want());
    // A bad checksum: the kernel decides.
    let input = linux_syn6().frame_with_bad_checksum();
    assert_untouched(
        &s.xdp(&input),
        &input,
        XDP_PASS,
        "an IPv6 SYN with a bad checksum",
    );
}

#[test]
fn ipv6_disabled_is_not_protected() {
    require_root!();
    let cfg = Config {
        flags: CONFIG.flags & !flags::IPV6,
        ..CONFIG
    };
    let s = Shield::with_config(cfg);
    s.enable_v6();
    let _l = s.listen6();
    let input = linux_syn6().frame();
    assert_untouched(&s.xdp(&input), &input, XDP_PASS, "IPv6 SYN, IPv6 off");
    s.assert_counters(&[(Counter::NotInspected, 1)], "IPv6 off");
}

#[test]
fn ipv6_not_for_this_host_passes() {
    require_root!();
    let s = Shield::new();
    s.enable_v6();
    let _any = std::net::TcpListener::bind(("::", crate::PORT)).expect("[::] listener");
    let mut syn = linux_syn6();
    syn.ip6.as_mut().expect("v6").dst[15] = 9;
    let input = syn.frame();
    assert_untouched(
        &s.xdp(&input),
        &input,
        XDP_PASS,
        "a SYN for fd00::9 (not local)",
    );
    s.assert_counters(
        &[(Counter::SynSeen, 1), (Counter::NotLocal, 1)],
        "a SYN for another host",
    );
    let _ = CLIENT_ISN;
}
