//! Frames for the BPF_PROG_TEST_RUN packet tests, built and checked with `etherparse`: an oracle
//! independent of the eBPF program's own parser and checksum code.
//!
//! [`Segment`] builds client-to-server IPv4 TCP frames (optionally 802.1Q/802.1ad tagged) with
//! correct checksums; there are builders for the frames the program must leave alone (UDP, ARP,
//! IPv6, an IPv4 fragment); [`parse_synack`] takes a frame apart and checks everything any
//! SYN-ACK must get right, and [`expected_synack`] builds the exact reply a SYN should get.

use etherparse::{
    DoubleVlanHeader, EtherType, Ethernet2Header, IpFragOffset, IpHeaders, IpNumber, Ipv4Header,
    Ipv4Options, Ipv6Header, LinkExtHeader, NetHeaders, PacketBuilder, PacketHeaders,
    SingleVlanHeader, TcpHeader, TcpOptionElement, TransportHeader, VlanHeader, VlanId,
};
use syncookie_common::proto::{
    TCP_ACK, TCP_CWR, TCP_ECE, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG,
};

/// Serializes a finished builder; a refusal is a bug in the test itself.
macro_rules! build {
    ($b:expr, $payload:expr) => {{
        let mut v = Vec::new();
        $b.write(&mut v, $payload)
            .expect("etherparse refused to build the frame");
        v
    }};
}

/// The client (sender of the SYN) and the server (the host the shield protects). Both are
/// loopback addresses: `BPF_PROG_TEST_RUN` runs XDP as if the frame came in on `lo`, and socket
/// lookups then find sockets bound to 127.0.0.1 in the caller's network namespace.
pub const CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
pub const SERVER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
/// `lo`'s own address: frames injected into the stack on `lo` must carry it to count as ours.
pub const LO_MAC: [u8; 6] = [0; 6];
pub const CLIENT_IP: [u8; 4] = [127, 0, 0, 2];
pub const SERVER_IP: [u8; 4] = [127, 0, 0, 1];
pub const CLIENT_IP6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
pub const SERVER_IP6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// The window a client announces in its SYN (Linux's, for MSS 1460 with timestamps).
pub const CLIENT_WINDOW: u16 = 64240;
pub const ETH_HLEN: usize = 14;
pub const VLAN_HLEN: usize = 4;

/// A TCP segment from the client to the server over IPv4, field by field.
#[derive(Clone, Debug)]
pub struct Segment {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// 802.1Q (one tag) or 802.1ad + 802.1Q (two tags).
    pub vlan: Option<VlanHeader>,
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub ttl: u8,
    /// IPv4 options (a multiple of 4 bytes, at most 40).
    pub ip_options: Vec<u8>,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// `TCP_*` bits from `syncookie_common::proto`.
    pub flags: u8,
    pub window: u16,
    pub options: Vec<TcpOptionElement>,
    /// Option bytes etherparse has no element for (TCP-MD5...); used instead of `options`.
    pub raw_options: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    /// IPv6 instead of IPv4 (`src`, `dst`, `ttl` and `ip_options` are then unused).
    pub ip6: Option<Ip6>,
}

/// The IPv6 part of a [`Segment`]: addresses, hop limit, traffic class, flow label, and
/// extension headers in front of TCP, each `(its type, its bytes after the first two)` (the
/// builder writes next header and length; a header is 8n bytes long, so 8n - 2 here).
#[derive(Clone, Debug)]
pub struct Ip6 {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub hop_limit: u8,
    pub traffic_class: u8,
    pub flow_label: u32,
    pub ext: Vec<(u8, Vec<u8>)>,
}

impl Default for Ip6 {
    fn default() -> Self {
        Self {
            src: CLIENT_IP6,
            dst: SERVER_IP6,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
            ext: Vec::new(),
        }
    }
}

/// IPv6 extension header types (RFC 8200).
pub const NH_HOPOPTS: u8 = 0;
pub const NH_ROUTING: u8 = 43;
pub const NH_FRAGMENT: u8 = 44;
pub const NH_DSTOPTS: u8 = 60;

/// A hop-by-hop or destination options header's body: `n` PadN-filled 8-byte units.
pub fn pad_options(units: usize) -> Vec<u8> {
    let len = 8 * units - 2;
    let mut b = vec![1, (len - 2) as u8];
    b.resize(len, 0);
    b
}

/// A routing header (type 4, segment routing) body with `segs_left` and one segment address.
pub fn routing(segs_left: u8) -> Vec<u8> {
    let mut b = vec![4, segs_left, 0, 0, 0, 0];
    b.extend_from_slice(&SERVER_IP6);
    b
}

/// A fragment header body: offset (8-byte units), more fragments, id.
pub fn fragment(offset: u16, more: bool) -> Vec<u8> {
    let mut b = vec![];
    b.extend_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
    b.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    b
}

impl Segment {
    fn new(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8) -> Self {
        Self {
            src_mac: CLIENT_MAC,
            dst_mac: SERVER_MAC,
            vlan: None,
            src: CLIENT_IP,
            dst: SERVER_IP,
            ttl: 64,
            ip_options: Vec::new(),
            sport,
            dport,
            seq,
            ack,
            flags,
            window: CLIENT_WINDOW,
            options: Vec::new(),
            raw_options: None,
            payload: Vec::new(),
            ip6: None,
        }
    }

    /// The same segment over IPv6 (CLIENT_IP6 to SERVER_IP6, no extension headers).
    pub fn v6(mut self) -> Self {
        self.ip6 = Some(Ip6::default());
        self
    }

    /// Over IPv6 with these extension headers.
    pub fn with_ext(mut self, ext: &[(u8, Vec<u8>)]) -> Self {
        self.ip6.get_or_insert_with(Ip6::default).ext = ext.to_vec();
        self
    }

    /// A bare SYN (no options) from the client.
    pub fn syn(sport: u16, dport: u16, isn: u32) -> Self {
        Self::new(sport, dport, isn, 0, TCP_SYN)
    }

    /// A bare ACK from the client.
    pub fn ack(sport: u16, dport: u16, seq: u32, ack: u32) -> Self {
        Self::new(sport, dport, seq, ack, TCP_ACK)
    }

    pub fn with_options(mut self, options: &[TcpOptionElement]) -> Self {
        self.options = options.to_vec();
        self
    }

    pub fn with_raw_options(mut self, options: &[u8]) -> Self {
        self.raw_options = Some(options.to_vec());
        self
    }

    pub fn with_flags(mut self, flags: u8) -> Self {
        self.flags = flags;
        self
    }

    /// Tags the frame: one id gives 802.1Q, two give 802.1ad (outer) + 802.1Q (inner).
    pub fn with_vlans(mut self, ids: &[u16]) -> Self {
        let tag = |id: u16| SingleVlanHeader {
            vlan_id: VlanId::try_new(id).expect("VLAN id"),
            ..Default::default()
        };
        self.vlan = match ids {
            [] => None,
            [id] => Some(VlanHeader::Single(tag(*id))),
            [outer, inner] => Some(VlanHeader::Double(DoubleVlanHeader {
                outer: tag(*outer),
                inner: tag(*inner),
            })),
            _ => panic!("at most two VLAN tags"),
        };
        self
    }

    pub fn tcp_header(&self) -> TcpHeader {
        let f = |bit: u8| self.flags & bit != 0;
        let mut h = TcpHeader {
            source_port: self.sport,
            destination_port: self.dport,
            sequence_number: self.seq,
            acknowledgment_number: self.ack,
            fin: f(TCP_FIN),
            syn: f(TCP_SYN),
            rst: f(TCP_RST),
            psh: f(TCP_PSH),
            ack: f(TCP_ACK),
            urg: f(TCP_URG),
            ece: f(TCP_ECE),
            cwr: f(TCP_CWR),
            window_size: self.window,
            ..Default::default()
        };
        match &self.raw_options {
            Some(raw) => h.set_options_raw(raw),
            None => h.set_options(&self.options),
        }
        .unwrap_or_else(|e| panic!("TCP options {:?}: {e}", self.options));
        h
    }

    /// IPv4 (DF, ID 0, TOS 0, `ip_options`); length, protocol and checksum are filled in on
    /// write.
    pub fn ipv4_header(&self) -> Ipv4Header {
        Ipv4Header {
            source: self.src,
            destination: self.dst,
            time_to_live: self.ttl,
            options: Ipv4Options::try_from(&self.ip_options[..]).expect("IPv4 options"),
            ..Default::default()
        }
    }

    /// The whole frame, all checksums correct.
    pub fn frame(&self) -> Vec<u8> {
        if let Some(ip6) = &self.ip6 {
            return self.frame6(ip6);
        }
        eth_ipv4_tcp(
            (self.src_mac, self.dst_mac),
            self.vlan.clone(),
            self.ipv4_header(),
            self.tcp_header(),
            &self.payload,
        )
    }

    /// Offset of the IP header in [`Self::frame`].
    pub fn l3_offset(&self) -> usize {
        let tags = match self.vlan {
            None => 0,
            Some(VlanHeader::Single(_)) => 1,
            Some(VlanHeader::Double(_)) => 2,
        };
        ETH_HLEN + VLAN_HLEN * tags
    }

    /// Offset of the TCP header in [`Self::frame`].
    pub fn l4_offset(&self) -> usize {
        match &self.ip6 {
            Some(ip6) => {
                self.l3_offset() + 40 + ip6.ext.iter().map(|(_, b)| b.len() + 2).sum::<usize>()
            }
            None => self.l3_offset() + Ipv4Header::MIN_LEN + self.ip_options.len(),
        }
    }

    /// The IPv6 frame, built by hand (etherparse for the link headers and the TCP header and
    /// its checksum, over the pseudo-header of RFC 8200 8.1).
    fn frame6(&self, ip6: &Ip6) -> Vec<u8> {
        // The link headers as etherparse writes them for IPv4, with the IPv6 EtherType.
        let v4 = Segment {
            ip6: None,
            ip_options: Vec::new(),
            payload: Vec::new(),
            ..self.clone()
        };
        let l3 = self.l3_offset();
        let mut f = v4.frame()[..l3].to_vec();
        f[l3 - 2..l3].copy_from_slice(&0x86ddu16.to_be_bytes());
        let mut tcp = self.tcp_header();
        tcp.checksum = tcp
            .calc_checksum_ipv6_raw(ip6.src, ip6.dst, &self.payload)
            .expect("TCP checksum");
        let tcp = tcp.to_bytes();
        let ext_len: usize = ip6.ext.iter().map(|(_, b)| b.len() + 2).sum();
        let payload_len = ext_len + tcp.len() + self.payload.len();
        let first = ip6.ext.first().map_or(6, |(t, _)| *t);
        let w0 = (6u32 << 28) | (u32::from(ip6.traffic_class) << 20) | (ip6.flow_label & 0xfffff);
        f.extend_from_slice(&w0.to_be_bytes());
        f.extend_from_slice(&(payload_len as u16).to_be_bytes());
        f.extend_from_slice(&[first, ip6.hop_limit]);
        f.extend_from_slice(&ip6.src);
        f.extend_from_slice(&ip6.dst);
        for (i, (_, body)) in ip6.ext.iter().enumerate() {
            let next = ip6.ext.get(i + 1).map_or(6, |(t, _)| *t);
            let len = body.len() + 2;
            assert_eq!(len % 8, 0, "extension headers are 8n bytes long");
            f.extend_from_slice(&[next, (len / 8 - 1) as u8]);
            f.extend_from_slice(body);
        }
        f.extend_from_slice(&tcp);
        f.extend_from_slice(&self.payload);
        f
    }

    /// The frame with its TCP checksum off by one.
    pub fn frame_with_bad_checksum(&self) -> Vec<u8> {
        let mut f = self.frame();
        let at = self.l4_offset() + 16;
        let c = u16::from_be_bytes([f[at], f[at + 1]]).wrapping_add(1);
        f[at..at + 2].copy_from_slice(&c.to_be_bytes());
        f
    }

    /// The frame as a sender with TX checksum offload hands it over (CHECKSUM_PARTIAL): the
    /// TCP checksum field holds only the folded pseudo-header sum (__tcp_v4_send_check()).
    pub fn frame_with_partial_checksum(&self) -> Vec<u8> {
        let mut f = self.frame();
        let (l3, l4) = (self.l3_offset(), self.l4_offset());
        let addrs = if self.ip6.is_some() {
            &f[l3 + 8..l3 + 40]
        } else {
            &f[l3 + 12..l3 + 20]
        };
        let mut sum: u32 = addrs
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        sum += 6 + (f.len() - l4) as u32;
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        f[l4 + 16..l4 + 18].copy_from_slice(&(sum as u16).to_be_bytes());
        f
    }
}

fn eth_ipv4_tcp(
    (src_mac, dst_mac): ([u8; 6], [u8; 6]),
    vlan: Option<VlanHeader>,
    ip: Ipv4Header,
    tcp: TcpHeader,
    payload: &[u8],
) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(src_mac, dst_mac);
    let ip = IpHeaders::Ipv4(ip, Default::default());
    match vlan {
        None => build!(eth.ip(ip).tcp_header(tcp), payload),
        Some(v) => build!(eth.vlan(v).ip(ip).tcp_header(tcp), payload),
    }
}

/// A Linux client's SYN options, in Linux's order: MSS, SACK-permitted, timestamps, NOP, WS.
pub fn linux_syn_options(mss: u16, tsval: u32, wscale: u8) -> Vec<TcpOptionElement> {
    vec![
        TcpOptionElement::MaximumSegmentSize(mss),
        TcpOptionElement::SelectiveAcknowledgementPermitted,
        TcpOptionElement::Timestamp(tsval, 0),
        TcpOptionElement::Noop,
        TcpOptionElement::WindowScale(wscale),
    ]
}

/// The options of an ACK with timestamps, as Linux sends them: NOP, NOP, TS.
pub fn ack_timestamps(tsval: u32, tsecr: u32) -> Vec<TcpOptionElement> {
    vec![
        TcpOptionElement::Noop,
        TcpOptionElement::Noop,
        TcpOptionElement::Timestamp(tsval, tsecr),
    ]
}

/// A TCP-MD5 signature option (RFC 2385: kind 19, length 18) padded with two NOPs, after MSS.
pub fn md5_syn_options(mss: u16) -> Vec<u8> {
    let mut o = vec![2, 4];
    o.extend_from_slice(&mss.to_be_bytes());
    o.extend_from_slice(&[1, 1, 19, 18]);
    o.extend_from_slice(&[0xa5; 16]);
    o
}

/// A UDP datagram from the client to `dport`.
pub fn udp4(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, SERVER_MAC)
        .ipv4(CLIENT_IP, SERVER_IP, 64)
        .udp(sport, dport);
    build!(b, payload)
}

/// An ICMP echo request from the client to the server.
pub fn icmp4_echo() -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, SERVER_MAC)
        .ipv4(CLIENT_IP, SERVER_IP, 64)
        .icmpv4_echo_request(1, 1);
    build!(b, b"ping")
}

/// An IPv6 TCP segment (no extension headers) built from `seg`'s TCP fields.
pub fn tcp6(seg: &Segment) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, SERVER_MAC)
        .ipv6(CLIENT_IP6, SERVER_IP6, 64)
        .tcp_header(seg.tcp_header());
    build!(b, &seg.payload)
}

/// An ARP request (who has SERVER_IP, tell CLIENT_IP), broadcast, padded to 60 bytes as on
/// the wire.
pub fn arp_request() -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&0x0806u16.to_be_bytes());
    // htype Ethernet, ptype IPv4, hlen 6, plen 4, op request.
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&CLIENT_IP);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&SERVER_IP);
    f.resize(60, 0);
    f
}

/// A fragment of an IPv4 datagram that carries `seg`'s TCP header: `offset` in 8-byte units,
/// More Fragments set if `more`. The first fragment (offset 0, MF) of a SYN to a protected port
/// is still not something the program may judge.
pub fn ipv4_fragment(seg: &Segment, offset: u16, more: bool) -> Vec<u8> {
    let mut ip = seg.ipv4_header();
    ip.more_fragments = more;
    ip.dont_fragment = false;
    ip.identification = 0x1234;
    ip.fragment_offset = IpFragOffset::try_new(offset).expect("fragment offset");
    eth_ipv4_tcp(
        (seg.src_mac, seg.dst_mac),
        None,
        ip,
        seg.tcp_header(),
        &seg.payload,
    )
}

/// A SYN-ACK taken apart by etherparse.
#[derive(Clone, Debug)]
pub struct SynAck {
    pub eth: Ethernet2Header,
    pub vlan: Vec<SingleVlanHeader>,
    pub ip: Ipv4Header,
    pub tcp: TcpHeader,
}

impl SynAck {
    /// The TCP options, decoded by etherparse (already checked well-formed by the parser).
    pub fn options(&self) -> Vec<TcpOptionElement> {
        tcp_options(&self.tcp)
    }

    /// (TSval, TSecr) of the timestamp option, if any.
    pub fn timestamps(&self) -> Option<(u32, u32)> {
        tcp_timestamps(&self.tcp)
    }
}

/// The Ethernet header and the VLAN tags of a parsed frame (nothing else on the link layer).
fn link_headers(p: &PacketHeaders) -> Result<(Ethernet2Header, Vec<SingleVlanHeader>), String> {
    let Some(etherparse::LinkHeader::Ethernet2(eth)) = p.link.clone() else {
        return Err("no Ethernet header".into());
    };
    let mut vlan = Vec::new();
    for ext in &p.link_exts {
        match ext {
            LinkExtHeader::Vlan(v) => vlan.push(v.clone()),
            other => return Err(format!("unexpected link header {other:?}")),
        }
    }
    Ok((eth, vlan))
}

fn tcp_options(tcp: &TcpHeader) -> Vec<TcpOptionElement> {
    tcp.options_iterator().filter_map(Result::ok).collect()
}

fn tcp_timestamps(tcp: &TcpHeader) -> Option<(u32, u32)> {
    tcp_options(tcp).into_iter().find_map(|o| match o {
        TcpOptionElement::Timestamp(v, e) => Some((v, e)),
        _ => None,
    })
}

/// Parses `frame` as an IPv4 TCP SYN-ACK (VLAN tags allowed) and checks what any SYN-ACK we send
/// must satisfy: IPv4 without options and not fragmented, the frame exactly as long as the
/// datagram, IPv4 header and TCP checksums right, flags SYN|ACK (ECE allowed), no payload,
/// well-formed options.
pub fn parse_synack(frame: &[u8]) -> Result<SynAck, String> {
    let p = PacketHeaders::from_ethernet_slice(frame).map_err(|e| format!("etherparse: {e}"))?;
    let (eth, vlan) = link_headers(&p)?;
    let inner_type = vlan.last().map_or(eth.ether_type, |v| v.ether_type);
    if inner_type != EtherType::IPV4 {
        return Err(format!("not IPv4: {inner_type:?}"));
    }
    let Some(NetHeaders::Ipv4(ip, _)) = p.net.clone() else {
        return Err(format!("no IPv4 header: {:?}", p.net));
    };
    let Some(TransportHeader::Tcp(tcp)) = p.transport.clone() else {
        return Err(format!("no TCP header: {:?}", p.transport));
    };
    check_ipv4(&ip, frame.len() - ETH_HLEN - VLAN_HLEN * vlan.len())?;
    check_tcp(&ip, &tcp, p.payload.slice())?;
    Ok(SynAck { eth, vlan, ip, tcp })
}

fn check_ipv4(ip: &Ipv4Header, l3_len: usize) -> Result<(), String> {
    if ip.ihl() != 5 {
        return Err(format!("IPv4 IHL {} (options in a SYN-ACK)", ip.ihl()));
    }
    if ip.more_fragments || ip.fragment_offset.value() != 0 {
        return Err("fragmented SYN-ACK".into());
    }
    if ip.total_len as usize != l3_len {
        return Err(format!(
            "IPv4 total length {} with {l3_len} bytes after the link headers",
            ip.total_len
        ));
    }
    let want = ip.calc_header_checksum();
    if ip.header_checksum != want {
        return Err(format!(
            "IPv4 header checksum {:#06x}, want {want:#06x}",
            ip.header_checksum
        ));
    }
    Ok(())
}

fn check_tcp(ip: &Ipv4Header, tcp: &TcpHeader, payload: &[u8]) -> Result<(), String> {
    if ip.protocol != IpNumber::TCP {
        return Err(format!("IP protocol {:?}", ip.protocol));
    }
    let want = tcp
        .calc_checksum_ipv4(ip, payload)
        .map_err(|e| format!("TCP checksum: {e}"))?;
    check_synack_tcp(tcp, payload, want)
}

/// What any SYN-ACK's TCP header must be, either family: flags SYN|ACK (ECE allowed), no
/// payload, the checksum `want`, well-formed options.
fn check_synack_tcp(tcp: &TcpHeader, payload: &[u8], want: u16) -> Result<(), String> {
    let flags = (
        tcp.syn, tcp.ack, tcp.fin, tcp.rst, tcp.psh, tcp.urg, tcp.cwr, tcp.ns,
    );
    if flags != (true, true, false, false, false, false, false, false) {
        return Err(format!("TCP flags not SYN|ACK: {tcp:?}"));
    }
    if !payload.is_empty() {
        return Err(format!("SYN-ACK with {} bytes of payload", payload.len()));
    }
    if tcp.checksum != want {
        return Err(format!(
            "TCP checksum {:#06x}, want {want:#06x}",
            tcp.checksum
        ));
    }
    if let Some(Err(e)) = tcp.options_iterator().find(Result::is_err) {
        return Err(format!("TCP option: {e:?}"));
    }
    Ok(())
}

/// The exact SYN-ACK frame expected for `syn`: MACs, addresses and ports swapped, VLAN tags
/// kept, IPv4 with DF, ID 0, TOS 0 and `ttl`; seq `isn`, ack = the SYN's seq + 1, flags SYN|ACK,
/// `window`, ECE if `ece`, `options` as raw bytes. etherparse computes both checksums.
pub fn expected_synack(
    syn: &Segment,
    isn: u32,
    window: u16,
    ttl: u8,
    ece: bool,
    options: &[u8],
) -> Vec<u8> {
    let ip = Ipv4Header {
        source: syn.dst,
        destination: syn.src,
        time_to_live: ttl,
        ..Default::default()
    };
    let mut tcp = TcpHeader::new(syn.dport, syn.sport, isn, window);
    tcp.syn = true;
    tcp.ack = true;
    tcp.ece = ece;
    tcp.acknowledgment_number = syn.seq.wrapping_add(1);
    tcp.set_options_raw(options).expect("SYN-ACK options");
    eth_ipv4_tcp((syn.dst_mac, syn.src_mac), syn.vlan.clone(), ip, tcp, &[])
}

/// RFC 1071: the one's-complement sum of `bytes` (a header including its checksum field sums to
/// 0xffff). Checks the IPv4 header independently of both etherparse and the program.
pub fn ones_complement_sum(bytes: &[u8]) -> u16 {
    let mut s: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Offset of the IPv4 header in a frame with up to two 802.1Q/802.1ad tags, if it is IPv4.
pub fn ipv4_offset(frame: &[u8]) -> Option<usize> {
    let mut off = ETH_HLEN;
    let mut ty = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    for _ in 0..2 {
        if ty != 0x8100 && ty != 0x88a8 {
            break;
        }
        ty = u16::from_be_bytes([*frame.get(off + 2)?, *frame.get(off + 3)?]);
        off += VLAN_HLEN;
    }
    (ty == 0x0800).then_some(off)
}

/// Rewrites the IPv4 header checksum and the TCP checksum of an IPv4 TCP frame in place (after
/// a test changed its bytes on purpose), computing both from scratch.
pub fn fix_ipv4_tcp_checksums(frame: &mut [u8]) {
    let l3 = ipv4_offset(frame).expect("IPv4 frame");
    let ihl = usize::from(frame[l3] & 0x0f) * 4;
    let tot = usize::from(u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]));
    frame[l3 + 10..l3 + 12].fill(0);
    let c = !ones_complement_sum(&frame[l3..l3 + ihl]);
    frame[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    let l4 = l3 + ihl;
    let seg_len = tot - ihl;
    frame[l4 + 16..l4 + 18].fill(0);
    let mut pseudo = Vec::with_capacity(12 + seg_len);
    pseudo.extend_from_slice(&frame[l3 + 12..l3 + 20]);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(seg_len as u16).to_be_bytes());
    pseudo.extend_from_slice(&frame[l4..l4 + seg_len]);
    let c = !ones_complement_sum(&pseudo);
    frame[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
}

/// An IPv6 SYN-ACK taken apart by etherparse.
#[derive(Clone, Debug)]
pub struct SynAck6 {
    pub eth: Ethernet2Header,
    pub vlan: Vec<SingleVlanHeader>,
    pub ip: Ipv6Header,
    pub tcp: TcpHeader,
}

impl SynAck6 {
    pub fn options(&self) -> Vec<TcpOptionElement> {
        tcp_options(&self.tcp)
    }

    pub fn timestamps(&self) -> Option<(u32, u32)> {
        tcp_timestamps(&self.tcp)
    }
}

/// Parses `frame` as an IPv6 TCP SYN-ACK and checks what any IPv6 SYN-ACK we send must
/// satisfy: no extension headers, the frame exactly as long as the packet, the TCP checksum
/// right (etherparse's, and an RFC 1071 sum over the pseudo-header of our own), flags SYN|ACK
/// (ECE allowed), no payload, well-formed options.
pub fn parse_synack6(frame: &[u8]) -> Result<SynAck6, String> {
    let p = PacketHeaders::from_ethernet_slice(frame).map_err(|e| format!("etherparse: {e}"))?;
    let (eth, vlan) = link_headers(&p)?;
    let Some(NetHeaders::Ipv6(ip, exts)) = p.net.clone() else {
        return Err(format!("no IPv6 header: {:?}", p.net));
    };
    if exts.header_len() != 0 {
        return Err(format!("extension headers in a SYN-ACK: {exts:?}"));
    }
    let Some(TransportHeader::Tcp(tcp)) = p.transport.clone() else {
        return Err(format!("no TCP header: {:?}", p.transport));
    };
    let l3 = ETH_HLEN + VLAN_HLEN * vlan.len();
    if usize::from(ip.payload_length) + 40 != frame.len() - l3 {
        return Err(format!(
            "IPv6 payload length {} with {} bytes after the IPv6 header",
            ip.payload_length,
            frame.len() - l3 - 40
        ));
    }
    if ip.next_header != IpNumber::TCP {
        return Err(format!("next header {:?}", ip.next_header));
    }
    let payload = p.payload.slice();
    let want = tcp
        .calc_checksum_ipv6(&ip, payload)
        .map_err(|e| format!("TCP checksum: {e}"))?;
    check_synack_tcp(&tcp, payload, want)?;
    // Independently: the pseudo-header (addresses, 32-bit length, next header) and the
    // segment sum to 0xffff.
    let seg = &frame[l3 + 40..];
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&frame[l3 + 8..l3 + 40]);
    pseudo.extend_from_slice(&(seg.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 6]);
    pseudo.extend_from_slice(seg);
    if ones_complement_sum(&pseudo) != 0xffff {
        return Err(
            "TCP checksum: the RFC 1071 sum over the IPv6 pseudo-header is not 0xffff".into(),
        );
    }
    Ok(SynAck6 { eth, vlan, ip, tcp })
}

/// The exact IPv6 SYN-ACK frame expected for `syn`: MACs, addresses and ports swapped, VLAN
/// tags kept, no extension headers, traffic class 0, flow label 0, `hop_limit`; seq `isn`,
/// ack = the SYN's seq + 1, SYN|ACK (ECE if `ece`), `window`, `options` as raw bytes.
pub fn expected_synack6(
    syn: &Segment,
    isn: u32,
    window: u16,
    hop_limit: u8,
    ece: bool,
    options: &[u8],
) -> Vec<u8> {
    let ip6 = syn.ip6.clone().expect("an IPv6 SYN");
    let reply = Segment {
        src_mac: syn.dst_mac,
        dst_mac: syn.src_mac,
        vlan: syn.vlan.clone(),
        sport: syn.dport,
        dport: syn.sport,
        seq: isn,
        ack: syn.seq.wrapping_add(1),
        flags: TCP_SYN | TCP_ACK | if ece { TCP_ECE } else { 0 },
        window,
        options: Vec::new(),
        raw_options: Some(options.to_vec()),
        payload: Vec::new(),
        ip6: Some(Ip6 {
            src: ip6.dst,
            dst: ip6.src,
            hop_limit,
            traffic_class: 0,
            flow_label: 0,
            ext: Vec::new(),
        }),
        ..syn.clone()
    };
    reply.frame()
}
