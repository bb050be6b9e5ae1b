//! The same crafted SYNs answered by the kernel alone and by the shield: every header field and
//! option of the two SYN-ACKs must agree, but for what is the point of the shield (the ISN, our
//! TSval) and what follows from it (the checksums). The kernel is the oracle.

use std::{
    net::{SocketAddrV4, TcpListener},
    time::Duration,
};

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TcpOptionElement, TransportSlice};
use syncookie_tests::{
    daemon::Daemon,
    lab::Lab,
    packets::{capture, captured_synack, send_raw_ip},
    require_root,
};

const PORT: u16 = 8080;

/// One SYN to send: its options, ECN bits and IP ECN field.
struct Syn {
    name: &'static str,
    options: Vec<TcpOptionElement>,
    /// ECE and CWR set (an ECN setup SYN).
    ecn_setup: bool,
    /// The IP header's ECN field (0: not ECT, 2: ECT(0)).
    ip_ecn: u8,
}

fn cases() -> Vec<Syn> {
    use TcpOptionElement::*;
    let syn = |name, options: Vec<TcpOptionElement>| Syn {
        name,
        options,
        ecn_setup: false,
        ip_ecn: 0,
    };
    let linux = vec![
        MaximumSegmentSize(1460),
        SelectiveAcknowledgementPermitted,
        Timestamp(0x1234_5678, 0),
        Noop,
        WindowScale(7),
    ];
    vec![
        syn("Linux", linux.clone()),
        syn(
            "Windows",
            vec![
                MaximumSegmentSize(1460),
                Noop,
                WindowScale(8),
                Noop,
                Noop,
                SelectiveAcknowledgementPermitted,
            ],
        ),
        syn(
            "macOS",
            vec![
                MaximumSegmentSize(1460),
                Noop,
                WindowScale(6),
                Noop,
                Noop,
                Timestamp(0x0a0b_0c0d, 0),
                SelectiveAcknowledgementPermitted,
            ],
        ),
        syn("no options", vec![]),
        syn("odd MSS 1000", vec![MaximumSegmentSize(1000)]),
        syn(
            "MSS 536 with timestamps",
            vec![MaximumSegmentSize(536), Timestamp(7, 0)],
        ),
        syn("wscale 15", vec![MaximumSegmentSize(1460), WindowScale(15)]),
        syn(
            "SACK without timestamps",
            vec![MaximumSegmentSize(1460), SelectiveAcknowledgementPermitted],
        ),
        syn("timestamps only", vec![Timestamp(99, 0)]),
        Syn {
            ecn_setup: true,
            ..syn("ECN setup", linux.clone())
        },
        Syn {
            ecn_setup: true,
            ip_ecn: 2,
            ..syn("ECN setup, ECT(0) SYN", linux)
        },
    ]
}

/// A SYN from `src` to `dst` as an IPv4 packet (the kernel adds the link layer).
fn syn_packet(s: &Syn, src: SocketAddrV4, dst: SocketAddrV4) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src.ip().octets(), dst.ip().octets(), 64)
        .tcp(src.port(), dst.port(), 0x0bad_cafe, 64240)
        .syn();
    let b = if s.ecn_setup { b.ece().cwr() } else { b };
    let b = b.options(&s.options).expect("options");
    let mut p = Vec::new();
    b.write(&mut p, &[]).expect("SYN");
    // The IP ECN field is not in the TCP checksum; the kernel fills the IP checksum in.
    p[1] |= s.ip_ecn;
    p
}

/// What must agree between the kernel's SYN-ACK and ours.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    tos: u8,
    ip_id: u16,
    dont_fragment: bool,
    ttl: u8,
    total_len: u16,
    flags: (bool, bool, bool, bool, bool, bool, bool, bool, bool),
    ack_is_isn_plus_one: bool,
    window: u16,
    urgent: u16,
    /// Options as decoded, our TSval zeroed (TSecr kept: it echoes the client's).
    options: Vec<String>,
}

fn shape(frame: &[u8], client_isn: u32) -> Shape {
    let p = SlicedPacket::from_ethernet(frame).expect("a parsable SYN-ACK");
    let Some(NetSlice::Ipv4(ip)) = p.net else {
        panic!("not IPv4")
    };
    let Some(TransportSlice::Tcp(t)) = p.transport else {
        panic!("not TCP")
    };
    let h = ip.header();
    Shape {
        tos: (h.dcp().value() << 2) | h.ecn().value(),
        ip_id: h.identification(),
        dont_fragment: h.dont_fragment(),
        ttl: h.ttl(),
        total_len: h.total_len(),
        flags: (
            t.syn(),
            t.ack(),
            t.fin(),
            t.rst(),
            t.psh(),
            t.urg(),
            t.ece(),
            t.cwr(),
            t.ns(),
        ),
        ack_is_isn_plus_one: t.acknowledgment_number() == client_isn.wrapping_add(1),
        window: t.window_size(),
        urgent: t.urgent_pointer(),
        options: t
            .options_iterator()
            .map(|o| match o {
                Ok(TcpOptionElement::Timestamp(_, ecr)) => format!("Timestamp(_, {ecr})"),
                o => format!("{o:?}"),
            })
            .collect(),
    }
}

/// Sends every case from the client, one new source port each, and returns the SYN-ACK shapes.
fn answers(lab: &Lab, first_port: u16) -> Vec<Shape> {
    let _in = lab.client.enter();
    let cap = capture(&lab.client_if);
    let dst = SocketAddrV4::new(lab.server_ip, PORT);
    cases()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let src = SocketAddrV4::new(lab.client_ip, first_port + i as u16);
            send_raw_ip(&syn_packet(s, src, dst), lab.server_ip.into());
            shape(
                &captured_synack(&cap, PORT, src.port(), Duration::from_secs(1)),
                0x0bad_cafe,
            )
        })
        .collect()
}

#[test]
fn synacks_match_the_kernels_field_for_field() {
    require_root!();
    let lab = Lab::new();
    lab.server.sysctl("net.ipv4.tcp_ecn", "2");
    let _l = {
        let _in = lab.server.enter();
        TcpListener::bind((lab.server_ip, PORT)).expect("bind")
    };
    // The kernel alone first, then the shield, from other source ports (the kernel keeps
    // request sockets for the first ones until the client's resets reach it).
    let kernel = answers(&lab, 41000);
    let _d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    let ours = answers(&lab, 42000);
    let mut differ = Vec::new();
    for ((c, k), o) in cases().iter().zip(&kernel).zip(&ours) {
        if k != o {
            differ.push(format!("{}:\n  kernel {k:?}\n  shield {o:?}", c.name));
        }
    }
    assert!(differ.is_empty(), "SYN-ACKs differ:\n{}", differ.join("\n"));
    assert_eq!(
        lab.kernel_synacks() as usize,
        cases().len(),
        "only the first round is the kernel's"
    );
}
