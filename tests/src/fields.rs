//! Field-by-field views of what became of a SYN (a [`Outcome`]): the verdicts, every SYN-ACK
//! field that must be the kernel's, and the accepted socket's TCP_INFO, each as (name, value),
//! for the differential test to compare and report.

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

use crate::{
    handshakes::{Outcome, SockInfo},
    synspace::SynCase,
};

/// Every field of a SYN-ACK that must be the kernel's, by name. Left out, as what legitimately
/// differs: the ISN (the cookie: the point of the shield) and the TSval (ours carries cookie
/// bits, the kernel's a per-connection offset), hence the TCP checksum; the IPv4 header checksum
/// (it follows from the TOS and ID only, which are compared); the IPv6 flow label (the kernel's
/// is a hash of the connection, or of the client's; the shield sends 0, which RFC 6437 allows)
/// and the client's port (each round sends from its own ports). The IPv4 ID is compared: the
/// kernel sends 0 with DF on a SYN-ACK (`ip_build_and_send_pkt()`), and so must we.
pub fn synack_fields(frame: &[u8], case: &SynCase) -> Vec<(&'static str, String)> {
    let p = SlicedPacket::from_ethernet(frame).expect("a parsable SYN-ACK");
    let eth = p
        .link
        .as_ref()
        .and_then(|l| l.to_header())
        .expect("Ethernet");
    let mut f: Vec<(&'static str, String)> = Vec::new();
    let mut put = |k, v: String| f.push((k, v));
    if let etherparse::LinkHeader::Ethernet2(e) = eth {
        put("eth.src", format!("{:x?}", e.source));
        put("eth.dst", format!("{:x?}", e.destination));
    }
    match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            put("ip.src", h.source_addr().to_string());
            put("ip.dst", h.destination_addr().to_string());
            put(
                "ip.tos",
                format!("{:#04x}", (h.dcp().value() << 2) | h.ecn().value()),
            );
            put("ip.id", h.identification().to_string());
            put("ip.df", h.dont_fragment().to_string());
            put("ip.mf", h.more_fragments().to_string());
            put("ip.frag_offset", h.fragments_offset().value().to_string());
            put("ip.ttl", h.ttl().to_string());
            put("ip.total_len", h.total_len().to_string());
            put("ip.options", format!("{:02x?}", ip_options(h.options())));
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            put("ip6.src", h.source_addr().to_string());
            put("ip6.dst", h.destination_addr().to_string());
            put("ip6.traffic_class", format!("{:#04x}", h.traffic_class()));
            put("ip6.hop_limit", h.hop_limit().to_string());
            put("ip6.payload_len", h.payload_length().to_string());
            put("ip6.next_header", format!("{:?}", h.next_header()));
        }
        n => panic!("a SYN-ACK over neither IPv4 nor IPv6: {n:?}"),
    }
    let Some(TransportSlice::Tcp(t)) = &p.transport else {
        panic!("a SYN-ACK without TCP")
    };
    put("tcp.src", t.source_port().to_string());
    put(
        "tcp.ack - client isn",
        t.acknowledgment_number().wrapping_sub(case.isn).to_string(),
    );
    put(
        "tcp.flags",
        [
            (t.ns(), "NS"),
            (t.cwr(), "CWR"),
            (t.ece(), "ECE"),
            (t.urg(), "URG"),
            (t.ack(), "ACK"),
            (t.psh(), "PSH"),
            (t.rst(), "RST"),
            (t.syn(), "SYN"),
            (t.fin(), "FIN"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join("|"),
    );
    put("tcp.window", t.window_size().to_string());
    put("tcp.urgent", t.urgent_pointer().to_string());
    put("tcp.data_offset", t.data_offset().to_string());
    put("tcp.options", options(t.options()));
    put("tcp.payload_len", t.payload().len().to_string());
    f
}

/// IPv4 options with the times an IP timestamp option (68) carries zeroed: the kernel fills
/// them in (milliseconds since midnight) when it echoes the option, in both rounds (the shield
/// leaves such SYNs to the kernel), so only the time differs.
fn ip_options(b: &[u8]) -> Vec<u8> {
    let mut v = b.to_vec();
    let mut i = 0;
    while i + 1 < v.len() {
        match v[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let len = usize::from(v[i + 1]).max(2);
                if kind == 68 {
                    let end = (i + len).min(v.len());
                    v[(i + 4).min(end)..end].fill(0);
                }
                i += len;
            }
        }
    }
    v
}

/// TCP options decoded, the TSval left out.
fn options(b: &[u8]) -> String {
    let mut v = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let len = usize::from(b.get(i + 1).copied().unwrap_or(0));
        let body = |n: usize| b.get(i + 2..i + 2 + n).unwrap_or_default();
        match b[i] {
            0 => v.push("eol".into()),
            1 => v.push("nop".into()),
            2 => v.push(format!("mss {:?}", body(2))),
            3 => v.push(format!("wscale {:?}", body(1))),
            4 => v.push("sackOK".into()),
            8 => v.push(format!("ts _ ecr {:02x?}", body(8).get(4..))),
            k => v.push(format!("kind {k} {:02x?}", body(len.saturating_sub(2)))),
        }
        i += if b[i] <= 1 { 1 } else { len.max(2) };
    }
    v.join(", ")
}

/// The accepted socket's TCP_INFO, field by field.
pub fn socket_fields(s: &SockInfo) -> Vec<(&'static str, String)> {
    vec![
        ("tcpi_options", format!("{:#04x}", s.options)),
        ("tcpi_snd_wscale", s.snd_wscale.to_string()),
        ("tcpi_rcv_wscale", s.rcv_wscale.to_string()),
        ("tcpi_snd_mss", s.snd_mss.to_string()),
        ("tcpi_rcv_mss", s.rcv_mss.to_string()),
        ("tcpi_advmss", s.advmss.to_string()),
    ]
}

/// Everything compared for one case: the verdicts, then the SYN-ACK's and the socket's fields.
pub fn fields(o: &Outcome, case: &SynCase) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("answered", o.synack.is_some().to_string()),
        ("accepted", o.socket.is_some().to_string()),
    ];
    if let Some(s) = &o.synack {
        f.extend(synack_fields(s, case));
    }
    if let Some(s) = &o.socket {
        f.extend(socket_fields(s));
    }
    f
}
