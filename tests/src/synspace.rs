//! Seeded random SYNs over the space real clients send: TCP option sets in any order with NOP
//! and EOL padding, odd MSS values (below 536, above 1460, jumbo), window scales 0-15, with and
//! without SACK and timestamps, ECN setup flags with and without an ECT IP field, TOS, TTL,
//! IPv4 options (NOP padding, router alert, sometimes record route, timestamp, source routes or
//! malformed ones), IPv6 extension headers, data in the SYN (TFO-like); and the martians, SYNs
//! the kernel drops before any listener sees them. Built as whole Ethernet frames with
//! [`Segment`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom, seq::SliceRandom};

use crate::frames::{Ip6, NH_DSTOPTS, NH_HOPOPTS, Segment, fix_ipv4_tcp_checksums, pad_options};

/// One SYN of the differential: everything but the ports and MAC addresses, which the run
/// fills in.
#[derive(Clone, Debug)]
pub struct SynCase {
    /// What kind of SYN this is, for reports ("random", "martian 224.0.0.1", "Windows"...).
    pub what: String,
    pub v6: bool,
    /// A spoofed source instead of the client's own address (the martian cases).
    pub spoofed: Option<IpAddr>,
    pub isn: u32,
    pub window: u16,
    /// TCP option bytes, a multiple of 4, at most 40.
    pub options: Vec<u8>,
    /// ECE, CWR, PSH bits (`syncookie_common::proto`) besides SYN.
    pub flags: u8,
    /// IPv4 TOS or IPv6 traffic class, ECN field included.
    pub tos: u8,
    pub ttl: u8,
    /// IPv4 options (a multiple of 4, at most 40).
    pub ip_options: Vec<u8>,
    /// IPv6 extension headers in front of TCP (see [`Ip6::ext`]).
    pub ext: Vec<(u8, Vec<u8>)>,
    pub flow_label: u32,
    pub payload: Vec<u8>,
    /// The IPv4 header checksum off by one.
    pub bad_ip_checksum: bool,
}

/// The addresses and MACs of the two ends, as the lab has them.
#[derive(Clone, Copy, Debug)]
pub struct Ends {
    pub client_mac: [u8; 6],
    pub server_mac: [u8; 6],
    pub client_ip: Ipv4Addr,
    pub server_ip: Ipv4Addr,
    pub client_ip6: Ipv6Addr,
    pub server_ip6: Ipv6Addr,
}

impl Ends {
    /// The client's address in `v6`'s family.
    pub fn client(&self, v6: bool) -> IpAddr {
        if v6 {
            self.client_ip6.into()
        } else {
            self.client_ip.into()
        }
    }
}

/// TCP option kinds.
const EOL: u8 = 0;
const NOP: u8 = 1;
const MSS: u8 = 2;
const WSCALE: u8 = 3;
const SACK_PERM: u8 = 4;
const TIMESTAMP: u8 = 8;
const MD5: u8 = 19;
const MPTCP: u8 = 30;
const FASTOPEN: u8 = 34;
/// RFC 6994's experimental kind, as stacks trying something new send it.
const EXPERIMENT: u8 = 254;

/// MSS values real SYNs carry, and the edges around the kernel's cookie tables.
const MSS_VALUES: &[u16] = &[
    1, 48, 64, 88, 200, 500, 512, 535, 536, 537, 1000, 1200, 1220, 1240, 1280, 1300, 1360, 1380,
    1400, 1420, 1440, 1452, 1460, 1461, 1480, 1500, 4000, 8940, 8960, 9000, 16344, 65495, 65535,
];

/// The DSCP/ECN byte of IPv4 and IPv6 ECN fields: not ECT, ECT(1), ECT(0), CE.
const ECN_MASK: u8 = 3;

impl SynCase {
    /// A seeded random SYN of `v6`'s family from the client's own address.
    pub fn random(rng: &mut StdRng, v6: bool) -> Self {
        let mut c = Self {
            what: "random".into(),
            v6,
            spoofed: None,
            isn: rng.random(),
            window: *[64240, 65535, 29200, 8192, 14600, 1024, 0]
                .choose(rng)
                .unwrap(),
            options: random_options(rng),
            flags: 0,
            tos: 0,
            ttl: *[64, 128, 255, 1, rng.random_range(2..=254)]
                .choose(rng)
                .unwrap(),
            ip_options: Vec::new(),
            ext: Vec::new(),
            flow_label: rng.random_range(0..1 << 20),
            payload: Vec::new(),
            bad_ip_checksum: false,
        };
        use syncookie_common::proto::{TCP_CWR, TCP_ECE, TCP_PSH};
        c.flags = match rng.random_range(0..20) {
            0..=5 => TCP_ECE | TCP_CWR,
            6 => TCP_ECE,
            7 => TCP_CWR,
            8 => TCP_PSH,
            _ => 0,
        };
        if rng.random_bool(0.3) {
            c.tos = rng.random::<u8>() & !ECN_MASK;
        }
        if rng.random_bool(if c.flags != 0 { 0.5 } else { 0.1 }) {
            c.tos |= rng.random_range(1..=3);
        }
        if v6 {
            if rng.random_bool(0.15) {
                c.ext = random_ext(rng);
            }
        } else if rng.random_bool(0.25) {
            c.ip_options = random_ip_options(rng);
        }
        if rng.random_bool(0.1) {
            let n = rng.random_range(1..=200);
            c.payload = (0..n).map(|_| rng.random()).collect();
        }
        if !v6 && rng.random_bool(0.01) {
            c.bad_ip_checksum = true;
        }
        c
    }

    /// The segment from `sport` to `dport`, as sent.
    fn segment(&self, ends: &Ends, sport: u16, dport: u16) -> Segment {
        let mut s = Segment::syn(sport, dport, self.isn)
            .with_raw_options(&self.options)
            .with_flags(syncookie_common::proto::TCP_SYN | self.flags);
        s.src_mac = ends.client_mac;
        s.dst_mac = ends.server_mac;
        s.window = self.window;
        s.payload = self.payload.clone();
        let src = self.spoofed.unwrap_or(ends.client(self.v6));
        match src {
            IpAddr::V4(src) => {
                s.src = src.octets();
                s.dst = ends.server_ip.octets();
                s.ttl = self.ttl;
                s.ip_options = self.ip_options.clone();
            }
            IpAddr::V6(src) => {
                s.ip6 = Some(Ip6 {
                    src: src.octets(),
                    dst: ends.server_ip6.octets(),
                    hop_limit: self.ttl,
                    traffic_class: self.tos,
                    flow_label: self.flow_label,
                    ext: self.ext.clone(),
                });
            }
        }
        s
    }

    /// The whole Ethernet frame from `sport` to `dport`.
    pub fn frame(&self, ends: &Ends, sport: u16, dport: u16) -> Vec<u8> {
        let s = self.segment(ends, sport, dport);
        let mut f = s.frame();
        if s.ip6.is_none() {
            let l3 = s.l3_offset();
            f[l3 + 1] = self.tos;
            fix_ipv4_tcp_checksums(&mut f);
            if self.bad_ip_checksum {
                f[l3 + 11] ^= 1;
            }
        }
        f
    }

    /// The client's TSval, when the SYN offers timestamps.
    pub fn tsval(&self) -> Option<u32> {
        let mut i = 0;
        while i < self.options.len() {
            match self.options[i] {
                EOL => break,
                NOP => i += 1,
                TIMESTAMP if i + 10 <= self.options.len() => {
                    let b = &self.options[i + 2..i + 6];
                    return Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                }
                _ => i += usize::from(self.options.get(i + 1).copied().unwrap_or(1).max(2)),
            }
        }
        None
    }
}

/// A random option set in a random order: MSS, SACK-permitted, timestamps and window scale each
/// likely, NOPs between them, sometimes a TFO cookie request or cookie, an experimental option,
/// TCP-MD5 or MPTCP; padded to 4 bytes with NOPs or EOLs.
fn random_options(rng: &mut StdRng) -> Vec<u8> {
    let mut opts: Vec<Vec<u8>> = Vec::new();
    if rng.random_bool(0.85) {
        let mss = if rng.random_bool(0.8) {
            *MSS_VALUES.choose(rng).unwrap()
        } else {
            rng.random_range(1..=u16::MAX)
        };
        opts.push([&[MSS, 4][..], &mss.to_be_bytes()].concat());
    }
    if rng.random_bool(0.7) {
        opts.push(vec![SACK_PERM, 2]);
    }
    if rng.random_bool(0.7) {
        let tsecr: u32 = if rng.random_bool(0.8) {
            0
        } else {
            rng.random()
        };
        let tsval: u32 = rng.random();
        opts.push(
            [
                &[TIMESTAMP, 10][..],
                &tsval.to_be_bytes(),
                &tsecr.to_be_bytes(),
            ]
            .concat(),
        );
    }
    if rng.random_bool(0.7) {
        let ws = if rng.random_bool(0.97) {
            rng.random_range(0..=15)
        } else {
            rng.random()
        };
        opts.push(vec![WSCALE, 3, ws]);
    }
    match rng.random_range(0..40) {
        0..=2 => opts.push(vec![FASTOPEN, 2]),
        3 => {
            let cookie: [u8; 8] = rng.random();
            opts.push([&[FASTOPEN, 10][..], &cookie].concat());
        }
        4 => opts.push(vec![EXPERIMENT, 4, 0xf9, 0x89]),
        5 => opts.push([&[MD5, 18][..], &rng.random::<[u8; 16]>()].concat()),
        6 => opts.push(vec![MPTCP, 4, 0x01, 0x01]),
        _ => {}
    }
    opts.shuffle(rng);
    let mut out = Vec::new();
    for o in opts {
        let nops = *[0, 0, 1, 2].choose(rng).unwrap();
        if out.len() + nops + o.len() > 40 {
            continue;
        }
        out.extend(std::iter::repeat_n(NOP, nops));
        out.extend(o);
    }
    let pad = if rng.random_bool(0.5) { NOP } else { EOL };
    while !out.len().is_multiple_of(4) {
        out.push(pad);
    }
    out
}

/// IPv4 options: NOP padding and router alert mostly; record route, timestamp, loose and strict
/// source routes and malformed options sometimes.
fn random_ip_options(rng: &mut StdRng) -> Vec<u8> {
    let some_addr = [192, 0, 2, rng.random()];
    let mut o = match rng.random_range(0..20) {
        0..=4 => vec![NOP; 4],
        5..=9 => vec![148, 4, 0, 0],
        10 => [&[NOP, 7, 7, 4][..], &[0; 4]].concat(),
        11 => [&[68, 12, 5, 0][..], &[0; 8]].concat(),
        12 => [&[NOP, 131, 7, 4][..], &some_addr].concat(),
        13 => [&[NOP, 137, 7, 4][..], &some_addr].concat(),
        // An option longer than the header, and one shorter than its own header.
        14 => vec![148, 8, 0, 0],
        15 => vec![7, 2, 4, 0],
        16 => vec![EOL; 4],
        _ => [&[148, 4, 0, 0][..], &[NOP; 4]].concat(),
    };
    o.truncate(40);
    o
}

/// IPv6 extension headers: hop-by-hop or destination options of PadN, or both.
fn random_ext(rng: &mut StdRng) -> Vec<(u8, Vec<u8>)> {
    match rng.random_range(0..3) {
        0 => vec![(NH_HOPOPTS, pad_options(1))],
        1 => vec![(NH_DSTOPTS, pad_options(rng.random_range(1..=2)))],
        _ => vec![(NH_HOPOPTS, pad_options(1)), (NH_DSTOPTS, pad_options(1))],
    }
}

/// Options as Linux, Windows and macOS send them, IPv4 and IPv6: always among the cases.
fn real_clients() -> Vec<(&'static str, Vec<u8>)> {
    let ts = |v: u32| [&[TIMESTAMP, 10][..], &v.to_be_bytes(), &[0; 4]].concat();
    let linux = [
        &[MSS, 4, 0x05, 0xb4, SACK_PERM, 2][..],
        &ts(0x1234_5678),
        &[NOP, WSCALE, 3, 7],
    ]
    .concat();
    let windows = vec![
        MSS, 4, 0x05, 0xb4, NOP, WSCALE, 3, 8, NOP, NOP, SACK_PERM, 2,
    ];
    let macos = [
        &[MSS, 4, 0x05, 0xb4, NOP, WSCALE, 3, 6, NOP, NOP][..],
        &ts(0x0a0b_0c0d),
        &[SACK_PERM, 2, EOL, EOL],
    ]
    .concat();
    vec![
        ("Linux", linux),
        ("Windows", windows),
        ("macOS", macos),
        ("no options", vec![]),
    ]
}

/// The sources the kernel never answers (`ip_route_input_slow()`'s martians, the host's own
/// address via `fib_validate_source()`, `ipv6_rcv()`'s multicast source, loopback, and
/// `tcp_v6_conn_request()`'s v4-mapped sources), each with Linux's options.
fn martians(ends: &Ends) -> Vec<IpAddr> {
    let [a, b, c, _] = ends.server_ip.octets();
    let mut v: Vec<IpAddr> = [
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::new(0, 1, 2, 3),
        Ipv4Addr::LOCALHOST,
        Ipv4Addr::new(127, 0, 0, 2),
        Ipv4Addr::new(224, 0, 0, 1),
        Ipv4Addr::new(239, 1, 2, 3),
        Ipv4Addr::BROADCAST,
        Ipv4Addr::new(a, b, c, 255),
        ends.server_ip,
    ]
    .into_iter()
    .map(IpAddr::from)
    .collect();
    v.extend(
        [
            Ipv6Addr::LOCALHOST,
            "ff02::1".parse().unwrap(),
            "ff0e::1".parse().unwrap(),
            ends.server_ip6,
            ends.client_ip.to_ipv6_mapped(),
        ]
        .into_iter()
        .map(IpAddr::from),
    );
    v
}

/// The cases of one run: real clients' SYNs and the martians first, then `random` random SYNs
/// (half IPv6), all from `seed`.
pub fn cases(seed: u64, random: usize, ends: &Ends) -> Vec<SynCase> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut v = Vec::new();
    for v6 in [false, true] {
        for (name, options) in real_clients() {
            v.push(SynCase {
                what: name.into(),
                options,
                flags: 0,
                tos: 0,
                ip_options: Vec::new(),
                ext: Vec::new(),
                payload: Vec::new(),
                bad_ip_checksum: false,
                ..SynCase::random(&mut rng, v6)
            });
        }
    }
    for src in martians(ends) {
        let base = SynCase::random(&mut rng, src.is_ipv6());
        v.push(SynCase {
            what: format!("martian source {src}"),
            spoofed: Some(src),
            options: real_clients()[0].1.clone(),
            bad_ip_checksum: false,
            ..base
        });
    }
    v.push(SynCase {
        what: "wrong IPv4 header checksum".into(),
        bad_ip_checksum: true,
        ..SynCase::random(&mut rng, false)
    });
    for i in 0..random {
        v.push(SynCase::random(&mut rng, i % 2 == 1));
    }
    v
}
