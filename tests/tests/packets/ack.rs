//! ACKs: a valid cookie passes with handoff metadata; bad, expired or foreign ones do not.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};

use etherparse::TcpOptionElement;
use syncookie_common::{
    cookie::{self, SynAttrs, WSCALE_NONE},
    maps::{HANDOFF_MAGIC, HandoffMeta},
    stats::Counter,
};
use syncookie_tests::{
    frames::{SERVER_IP, Segment},
    require_root,
};

use crate::{
    CLIENT_ISN, CLIENT_PORT, KEY1, PORT, XDP_DROP, XDP_PASS,
    expect::{
        cookie_for, epoch1_ack, handshake_ack, key, linux_attrs, linux_meta, linux_syn,
        synack_of_linux_syn,
    },
    harness::{Shield, XdpRun, assert_action, assert_untouched, ne_u32},
};

/// Decodes `HandoffMeta` (repr(C), native endian) from the metadata bytes.
fn handoff_meta(b: &[u8]) -> HandoffMeta {
    assert_eq!(
        b.len(),
        size_of::<HandoffMeta>(),
        "metadata length: {b:02x?}"
    );
    HandoffMeta {
        magic: ne_u32(b, 0),
        tsval: ne_u32(b, 4),
        tsecr: ne_u32(b, 8),
        mss: u16::from_ne_bytes([b[12], b[13]]),
        snd_wscale: b[14],
        flags: b[15],
    }
}

#[track_caller]
fn assert_valid_ack(run: &XdpRun, input: &[u8], meta: HandoffMeta) {
    assert_action(run, XDP_PASS, "an ACK with a valid cookie");
    assert_eq!(run.frame, input, "the ACK after its metadata");
    assert_eq!(handoff_meta(&run.meta), meta, "HandoffMeta for TC");
}

#[test]
fn valid_ack_passes_with_metadata() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen();
    let (isn, our_tsval) = synack_of_linux_syn(&s);
    let input = handshake_ack(&linux_syn(), isn, Some(our_tsval)).frame();
    // BPF_PROG_TEST_RUN copies out from data_meta: the 16 metadata bytes precede the frame.
    let run = s.xdp(&input);
    assert_valid_ack(&run, &input, linux_meta(our_tsval));
    s.assert_counters(
        &[
            (Counter::SynSeen, 1),
            (Counter::SynackSent, 1),
            (Counter::AckValid, 1),
        ],
        "SYN and valid ACK",
    );
}

#[test]
fn valid_ack_without_timestamps_passes_with_metadata() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen();
    let syn = Segment::syn(CLIENT_PORT, PORT, CLIENT_ISN)
        .with_options(&[TcpOptionElement::MaximumSegmentSize(1300)]);
    let a = SynAttrs {
        mss: 1300,
        wscale: WSCALE_NONE,
        sack: false,
        ecn: false,
    };
    let c = cookie_for(&KEY1, &syn, a, false);
    let input = handshake_ack(&syn, c.isn, None).frame();
    let run = s.xdp(&input);
    let meta = HandoffMeta {
        magic: HANDOFF_MAGIC,
        tsval: 0,
        tsecr: 0,
        mss: 1300,
        snd_wscale: WSCALE_NONE,
        flags: 0,
    };
    assert_valid_ack(&run, &input, meta);
    s.assert_counters(&[(Counter::AckValid, 1)], "a valid ACK without timestamps");
}

#[test]
fn bad_ack_is_dropped() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen();
    let syn = linux_syn();
    let c = cookie_for(&KEY1, &syn, linux_attrs(), true);
    let good_ts = cookie::tsval(0x0055_5500, &c);
    let mut random_isn = rand::random::<u32>();
    if random_isn == c.isn {
        random_isn ^= 1;
    }
    let cases = [
        (
            "a random ack number",
            handshake_ack(&syn, random_isn, Some(good_ts)),
        ),
        (
            "the MAC bits of TSecr wrong",
            handshake_ack(&syn, c.isn, Some(good_ts ^ 0x80)),
        ),
        ("the timestamps stripped", handshake_ack(&syn, c.isn, None)),
    ];
    for (i, (what, ack)) in cases.iter().enumerate() {
        let input = ack.frame();
        let run = s.xdp(&input);
        assert_untouched(&run, &input, XDP_DROP, &format!("an ACK with {what}"));
        s.assert_counters(&[(Counter::AckBadCookie, i as u64 + 1)], what);
    }
}

#[test]
fn ack_after_one_rotation_passes() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen();
    let (input, meta) = epoch1_ack();
    s.install(key(2));
    let run = s.xdp(&input);
    assert_valid_ack(&run, &input, meta);
    s.assert_counters(&[(Counter::AckValid, 1)], "an epoch-1 ACK in epoch 2");
}

#[test]
fn expired_ack_is_dropped() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen();
    let (input, _) = epoch1_ack();
    s.install(key(2));
    s.install(key(3));
    let run = s.xdp(&input);
    assert_untouched(&run, &input, XDP_DROP, "an epoch-1 ACK in epoch 3");
    s.assert_counters(&[(Counter::AckExpired, 1)], "an epoch-1 ACK in epoch 3");
}

#[test]
fn ack_without_socket_passes() {
    require_root!();
    let s = Shield::new();
    let (input, _) = epoch1_ack();
    let run = s.xdp(&input);
    assert_untouched(&run, &input, XDP_PASS, "an ACK with no socket");
    s.assert_counters(&[(Counter::AckNoListener, 1)], "an ACK with no socket");
}

#[test]
fn ack_of_established_connection_passes() {
    require_root!();
    let s = Shield::new();
    let l = s.listen();
    let client = TcpStream::connect((Ipv4Addr::from(SERVER_IP), PORT)).expect("connect");
    let _server = l.accept().expect("accept");
    let SocketAddr::V4(local) = client.local_addr().expect("local address") else {
        panic!("IPv4 client");
    };
    // A segment of that connection with a bogus ack: it is the socket's business, not ours.
    let mut ack = Segment::ack(local.port(), PORT, 1, 0x7777_7777);
    ack.src = local.ip().octets();
    let input = ack.frame();
    let run = s.xdp(&input);
    assert_untouched(
        &run,
        &input,
        XDP_PASS,
        "an ACK of an established connection",
    );
    s.assert_counters(
        &[(Counter::AckPassedSocket, 1)],
        "an established connection's ACK",
    );
}

/// The socket gets the client's MSS: exactly with timestamps (the TSval carries it) from 536
/// up (below, the handoff refuses it and the SYN is the kernel's: see
/// `syn_with_mss_below_the_handoffs_minimum_goes_to_the_kernel`), the MSS table's entry at or
/// below it without (never above the client's). Checked end to end: the
/// SYN through XDP, its SYN-ACK taken apart, the client's ACK through XDP, the metadata's MSS.
#[test]
fn the_handoff_carries_the_clients_mss() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen();
    use TcpOptionElement::*;
    let cases: [(u16, bool, u16); 9] = [
        (1460, true, 1460),
        (1000, true, 1000),
        (536, true, 536),
        (9000, true, 9000),
        (65535, true, 65535),
        (1460, false, 1460),
        (1399, false, 1360),
        (9000, false, 8960),
        (536, false, 536),
    ];
    for (i, (client_mss, ts, want)) in cases.into_iter().enumerate() {
        let mut opts = vec![MaximumSegmentSize(client_mss)];
        if ts {
            opts.extend([Noop, Noop, Timestamp(1000 + i as u32, 0)]);
        }
        let syn = Segment::syn(CLIENT_PORT + i as u16, PORT, CLIENT_ISN).with_options(&opts);
        let run = s.xdp(&syn.frame());
        assert_action(&run, crate::XDP_TX, "the SYN");
        let r = syncookie_tests::frames::parse_synack(&run.frame).expect("a SYN-ACK");
        let tsecr = r.timestamps().map(|(val, _)| val);
        assert_eq!(tsecr.is_some(), ts, "timestamps as offered");
        let ack = handshake_ack(&syn, r.tcp.sequence_number, tsecr).frame();
        let run = s.xdp(&ack);
        assert_action(&run, XDP_PASS, "the ACK");
        assert_eq!(
            handoff_meta(&run.meta).mss,
            want,
            "MSS {client_mss}, timestamps {ts}"
        );
    }
    let n = cases.len() as u64;
    s.assert_counters(
        &[
            (Counter::SynSeen, n),
            (Counter::SynackSent, n),
            (Counter::AckValid, n),
        ],
        "SYNs and ACKs",
    );
}
