//! Expected cookies and replies: the SYN-ACK a SYN must get, byte for byte, and valid ACKs.

use etherparse::{Ipv4Header, TcpOptionElement};
use syncookie_common::{
    cookie::{self, Cookie, Flow, SynAttrs},
    maps::{HANDOFF_MAGIC, HandoffMeta, Key, META_SACK, META_TS},
};
use syncookie_tests::frames::{
    Segment, SynAck, ack_timestamps, expected_synack, linux_syn_options, ones_complement_sum,
    parse_synack,
};

use crate::{
    CLIENT_ISN, CLIENT_PORT, CLIENT_TSVAL, CLIENT_WSCALE, CONFIG, KEY1, MSS, PORT, XDP_TX,
    harness::{Shield, assert_action},
    window,
};

fn flow_of(seg: &Segment) -> Flow {
    Flow::v4(
        u32::from_be_bytes(seg.src),
        u32::from_be_bytes(seg.dst),
        seg.sport,
        seg.dport,
    )
}

/// A key for `epoch`, different for every epoch.
pub(crate) fn key(epoch: u64) -> Key {
    Key {
        k0: KEY1.k0 ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        k1: KEY1.k1.rotate_left(epoch as u32),
        epoch,
    }
}

/// The cookie `key` gives `syn` (`a.mss`: the client's MSS).
pub(crate) fn cookie_for(key: &Key, syn: &Segment, a: SynAttrs, ts: bool) -> Cookie {
    cookie::encode(key, &flow_of(syn), syn.seq, &a, ts).expect("an MSS a cookie can keep")
}

/// A Linux client's SYN: MSS 1460, SACK-permitted, timestamps, window scale 7.
pub(crate) fn linux_syn() -> Segment {
    Segment::syn(CLIENT_PORT, PORT, CLIENT_ISN).with_options(&linux_syn_options(
        MSS,
        CLIENT_TSVAL,
        CLIENT_WSCALE,
    ))
}

/// What the cookie keeps of [`linux_syn`]'s options.
pub(crate) fn linux_attrs() -> SynAttrs {
    SynAttrs {
        mss: MSS,
        wscale: CLIENT_WSCALE,
        sack: true,
        ecn: false,
    }
}

/// The client's ACK of our SYN-ACK (seq `synack_isn`), echoing `tsecr` when it has timestamps.
pub(crate) fn handshake_ack(syn: &Segment, synack_isn: u32, tsecr: Option<u32>) -> Segment {
    let mut ack = Segment::ack(
        syn.sport,
        syn.dport,
        syn.seq.wrapping_add(1),
        synack_isn.wrapping_add(1),
    );
    ack.vlan = syn.vlan.clone();
    ack.ip6 = syn.ip6.clone().map(|mut ip6| {
        ip6.ext.clear();
        ip6
    });
    match tsecr {
        Some(ecr) => ack.with_options(&ack_timestamps(CLIENT_TSVAL.wrapping_add(1), ecr)),
        None => ack,
    }
}

/// What a SYN-ACK must say beyond the cookie, given what the SYN offered: its options, ECE.
pub(crate) struct Want {
    pub(crate) ece: bool,
    pub(crate) sack: bool,
    /// The client's TSval, to be echoed (None: the SYN had no timestamps).
    pub(crate) tsecr: Option<u32>,
    pub(crate) wscale: bool,
}

/// The SYN-ACK a Linux SYN ([`linux_syn`]: SACK, timestamps, window scale) must get.
pub(crate) fn linux_want() -> Want {
    Want {
        ece: false,
        sack: true,
        tsecr: Some(CLIENT_TSVAL),
        wscale: true,
    }
}

/// The option bytes, in the order the kernel writes them (tcp_options_write): MSS, then
/// SACK-permitted + timestamps, NOP NOP + timestamps or NOP NOP + SACK-permitted, then NOP WS.
pub(crate) fn expected_options(w: &Want, our_tsval: u32) -> Vec<u8> {
    expected_options_mss(w, our_tsval, CONFIG.mss_v4)
}

/// [`expected_options`] with our MSS `mss` (IPv6: `CONFIG.mss_v6`).
pub(crate) fn expected_options_mss(w: &Want, our_tsval: u32, mss: u16) -> Vec<u8> {
    let mut o = vec![2, 4];
    o.extend_from_slice(&mss.to_be_bytes());
    match (w.sack, w.tsecr) {
        (sack, Some(ecr)) => {
            o.extend_from_slice(if sack { &[4, 2, 8, 10] } else { &[1, 1, 8, 10] });
            o.extend_from_slice(&our_tsval.to_be_bytes());
            o.extend_from_slice(&ecr.to_be_bytes());
        }
        (true, None) => o.extend_from_slice(&[1, 1, 4, 2]),
        (false, None) => {}
    }
    if w.wscale {
        o.extend_from_slice(&[1, 3, 3, CONFIG.wscale]);
    }
    o
}

/// The same options as etherparse decodes them.
fn expected_option_elements(w: &Want, our_tsval: u32) -> Vec<TcpOptionElement> {
    use TcpOptionElement::*;
    let mut o = vec![MaximumSegmentSize(CONFIG.mss_v4)];
    match (w.sack, w.tsecr) {
        (true, Some(ecr)) => {
            o.extend([SelectiveAcknowledgementPermitted, Timestamp(our_tsval, ecr)])
        }
        (false, Some(ecr)) => o.extend([Noop, Noop, Timestamp(our_tsval, ecr)]),
        (true, None) => o.extend([Noop, Noop, SelectiveAcknowledgementPermitted]),
        (false, None) => {}
    }
    if w.wscale {
        o.extend([Noop, WindowScale(CONFIG.wscale)]);
    }
    o
}

/// The program's TSval clock: CLOCK_MONOTONIC_COARSE (bpf_ktime_get_coarse_ns) through
/// `cookie::ts_clock`.
pub(crate) fn monotonic_ms() -> u32 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC_COARSE)
        .expect("CLOCK_MONOTONIC_COARSE");
    syncookie_common::cookie::ts_clock(ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64)
}

/// Runs `syn` through XDP and checks every byte of the SYN-ACK; returns it parsed.
pub(crate) fn assert_synack_for(s: &Shield, syn: &Segment, c: Cookie, want: &Want) -> SynAck {
    assert_synack_to(s, syn, &syn.frame(), c, want)
}

/// As [`assert_synack_for`], for `syn` sent as the frame `input` (its checksum field, say,
/// as a sender with TX offload leaves it).
pub(crate) fn assert_synack_to(
    s: &Shield,
    syn: &Segment,
    input: &[u8],
    c: Cookie,
    want: &Want,
) -> SynAck {
    let before = monotonic_ms();
    let run = s.xdp(input);
    let after = monotonic_ms();
    assert_action(&run, XDP_TX, "a SYN to a listening protected port");
    assert!(
        run.meta.is_empty(),
        "SYN-ACK with metadata {:02x?}",
        run.meta
    );
    let r = parse_synack(&run.frame)
        .unwrap_or_else(|e| panic!("the reply is not a valid SYN-ACK: {e}\n{:02x?}", run.frame));
    assert_link_and_ip(&run.frame, &r, syn);
    assert_tcp_fields(&r, syn, c, want);
    let our_tsval = assert_timestamps(&r, c, want, (before, after));
    let opts = expected_options(want, our_tsval);
    assert_eq!(r.tcp.options.as_slice(), &opts[..], "SYN-ACK option bytes");
    assert_eq!(
        r.options(),
        expected_option_elements(want, our_tsval),
        "SYN-ACK options"
    );
    let expected = expected_synack(
        syn,
        c.isn,
        window(want.tsecr.is_some()),
        CONFIG.ttl,
        want.ece,
        &opts,
    );
    assert_eq!(run.frame, expected, "the SYN-ACK, byte for byte");
    r
}

fn assert_link_and_ip(frame: &[u8], r: &SynAck, syn: &Segment) {
    assert_eq!(
        r.eth.source, syn.dst_mac,
        "source MAC: the SYN's destination"
    );
    assert_eq!(
        r.eth.destination, syn.src_mac,
        "destination MAC: the SYN's source"
    );
    let l3 = syn.l4_offset() - Ipv4Header::MIN_LEN - syn.ip_options.len();
    let syn_frame = syn.frame();
    assert_eq!(
        frame[12..l3],
        syn_frame[12..l3],
        "EtherType and VLAN tags kept"
    );
    let ip = &frame[l3..l3 + Ipv4Header::MIN_LEN];
    assert_eq!(ip[0], 0x45, "IP version 4, IHL 5 (no options)");
    assert_eq!(ip[1], 0, "TOS");
    assert_eq!(
        ones_complement_sum(ip),
        0xffff,
        "IPv4 header checksum (RFC 1071 sum)"
    );
    assert_eq!(
        r.ip.total_len as usize,
        Ipv4Header::MIN_LEN + r.tcp.header_len(),
        "IPv4 total length"
    );
    assert_eq!(r.ip.identification, 0, "IP ID");
    assert!(r.ip.dont_fragment, "DF set");
    assert_eq!(r.ip.time_to_live, CONFIG.ttl, "TTL");
    assert_eq!(r.ip.protocol, etherparse::IpNumber::TCP, "IP protocol");
    assert_eq!(r.ip.source, syn.dst, "IP source: the SYN's destination");
    assert_eq!(
        r.ip.destination, syn.src,
        "IP destination: the SYN's source"
    );
}

fn assert_tcp_fields(r: &SynAck, syn: &Segment, c: Cookie, want: &Want) {
    let ece = want.ece;
    let t = &r.tcp;
    assert_eq!(
        (t.source_port, t.destination_port),
        (syn.dport, syn.sport),
        "ports swapped"
    );
    assert_eq!(
        format!("{:#010x}", t.sequence_number),
        format!("{:#010x}", c.isn),
        "seq must be the cookie"
    );
    assert_eq!(
        t.acknowledgment_number,
        syn.seq.wrapping_add(1),
        "ack = client ISN + 1"
    );
    let f = (t.syn, t.ack, t.fin, t.rst, t.psh, t.urg, t.ece, t.cwr, t.ns);
    assert_eq!(
        f,
        (true, true, false, false, false, false, ece, false, false),
        "flags exactly SYN|ACK (ECE: {ece})"
    );
    assert_eq!(
        t.window_size,
        window(want.tsecr.is_some()),
        "window: the kernel's for this SYN"
    );
    assert_eq!(t.urgent_pointer, 0, "urgent pointer");
}

/// Checks the timestamp option (or its absence); returns our TSval (0 without timestamps).
fn assert_timestamps(r: &SynAck, c: Cookie, want: &Want, clock: (u32, u32)) -> u32 {
    let Some(ecr) = want.tsecr else {
        assert_eq!(r.timestamps(), None, "timestamps the client did not offer");
        return 0;
    };
    let (val, echoed) = r.timestamps().expect("timestamps: the client offered them");
    assert_eq!(echoed, ecr, "TSecr: the client's TSval");
    assert_our_tsval(val, c, clock);
    val
}

/// Our TSval `val` for cookie `c`: the masked MSS and the MAC byte, and the clock byte of the
/// program's clock plus the connection's offset, read between our two clock readings.
pub(crate) fn assert_our_tsval(val: u32, c: Cookie, clock: (u32, u32)) {
    assert_eq!(
        val & 0xffff_00ff,
        c.ts_word,
        "TSval: the masked MSS and the cookie's MAC byte"
    );
    let (lo, hi) = (
        cookie::tsval(clock.0, &c) >> 8 & 0xff,
        cookie::tsval(clock.1, &c) >> 8 & 0xff,
    );
    let byte = val >> 8 & 0xff;
    assert!(
        byte.wrapping_sub(lo) & 0xff <= hi.wrapping_sub(lo) & 0xff,
        "TSval {val:#x}: clock byte {byte:#x} is not the monotonic clock ({lo:#x}..{hi:#x})",
    );
}

/// The metadata a valid ACK of [`linux_syn`] must get.
pub(crate) fn linux_meta(our_tsval: u32) -> HandoffMeta {
    HandoffMeta {
        magic: HANDOFF_MAGIC,
        tsval: CLIENT_TSVAL.wrapping_add(1),
        tsecr: our_tsval,
        mss: MSS,
        snd_wscale: CLIENT_WSCALE,
        flags: META_SACK | META_TS,
    }
}

/// Sends [`linux_syn`] through XDP and returns the SYN-ACK's seq and TSval.
pub(crate) fn synack_of_linux_syn(s: &Shield) -> (u32, u32) {
    let run = s.xdp(&linux_syn().frame());
    assert_action(&run, XDP_TX, "the SYN");
    let r = parse_synack(&run.frame).unwrap_or_else(|e| panic!("SYN-ACK: {e}"));
    let (tsval, _) = r.timestamps().expect("SYN-ACK timestamps");
    (r.tcp.sequence_number, tsval)
}

/// A valid ACK of [`linux_syn`] under [`KEY1`], computed without running the SYN.
pub(crate) fn epoch1_ack() -> (Vec<u8>, HandoffMeta) {
    let syn = linux_syn();
    let c = cookie_for(&KEY1, &syn, linux_attrs(), true);
    let our_tsval = cookie::tsval(0x0012_3400, &c);
    (
        handshake_ack(&syn, c.isn, Some(our_tsval)).frame(),
        linux_meta(our_tsval),
    )
}
