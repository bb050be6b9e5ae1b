//! Bounds-checked parsing of Ethernet (up to two VLAN tags), IPv4, IPv6 (without extension
//! headers) and TCP, over the raw `data..data_end` range that both XDP and TC give us. Every read
//! checks its end first.

use syncookie_common::{cookie::Flow, proto::*};

mod options;

pub use options::{Options, options, options_defined, past_the_walk};

/// Reads `N` bytes at `data + off`, or `None` past the end of the frame.
#[inline(always)]
pub fn read<const N: usize>(data: usize, end: usize, off: usize) -> Option<[u8; N]> {
    let p = data + off;
    if p + N > end {
        return None;
    }
    // SAFETY: [p, p + N) lies inside the frame, checked just above.
    Some(unsafe { *(p as *const [u8; N]) })
}

/// Hides `x` from the optimizer (no instruction emitted). In loops, LLVM's loop strength
/// reduction turns `data + off + N > end` into `data + off > end - N`, and the verifier rejects
/// any arithmetic on `data_end`; an opaque offset keeps the check in the form it accepts.
#[inline(always)]
pub fn opaque(mut x: usize) -> usize {
    // SAFETY: an empty asm block that only claims to modify `x`.
    unsafe { core::arch::asm!("/* {0} */", inout(reg) x, options(pure, nomem, nostack)) };
    x
}

/// As [`opaque`], but never merged with another call on the same value (the asm is not
/// `pure`): each result is a register of its own for the verifier.
#[inline(always)]
pub fn fresh(mut x: usize) -> usize {
    // SAFETY: an empty asm block that only claims to modify `x`.
    unsafe { core::arch::asm!("/* {0} */", inout(reg) x, options(nomem, nostack)) };
    x
}

/// `v`, written to and read back from `slot` (a per-CPU map value): what the verifier reads
/// back from a map is an unknown value, so the paths that reach this point with different
/// known values merge into one. Callers bound offsets again afterwards.
///
/// # Safety
/// `slot` must be valid for a `T` and not used by anything else between the two accesses (a
/// per-CPU map value: XDP runs in softirq context).
#[inline(always)]
pub unsafe fn launder<T: Copy>(slot: *mut T, v: T) -> T {
    // SAFETY: the caller's promise; volatile, so that LLVM does not forward the store.
    unsafe {
        slot.write_volatile(v);
        slot.read_volatile()
    }
}

/// A 16-bit field read from the packet, as an offset or length the verifier knows is below
/// 2^16. The 6.12 verifier gives the result of a byte swap (BPF_END) no bounds at all, and
/// rejects `data + swapped` ("math between pkt pointer and register with unbounded min
/// value"; 6.18 tracks them). LLVM drops a plain `& 0xffff` after a 16-bit swap as a no-op;
/// behind [`opaque`] the mask stays and bounds the value for every verifier.
#[inline(always)]
pub fn len16(v: u16) -> usize {
    opaque(v as usize) & 0xffff
}

#[inline(always)]
pub fn be16(data: usize, end: usize, off: usize) -> Option<u16> {
    read::<2>(data, end, off).map(u16::from_be_bytes)
}

#[inline(always)]
pub fn be32(data: usize, end: usize, off: usize) -> Option<u32> {
    read::<4>(data, end, off).map(u32::from_be_bytes)
}

/// A TCP segment over IPv4 or IPv6. Addresses are big-endian words (IPv4 in `[0]`, the rest
/// zero), numbers in host order.
#[derive(Clone, Copy)]
pub struct Tcp {
    /// Offsets from `data`: the IP header, the TCP header. Between them: the IPv4 header with
    /// its options, or the IPv6 header. 16 bits each, read as `usize` through the methods of
    /// the same names: a `Tcp` is copied several times on the programs' nearly full stacks.
    pub l3_off: u16,
    pub l4_off: u16,
    /// TCP header length (data offset × 4) and header + payload length (from the IP header).
    pub hlen: u16,
    pub seg_len: u16,
    pub saddr: [u32; 4],
    pub daddr: [u32; 4],
    pub v6: bool,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// The TCP header's four reserved bits (the low nibble of the data-offset byte).
    pub res1: u8,
    /// The ECN field of the IP header (IPv4 TOS & 3, IPv6 traffic class & 3).
    pub ip_ecn: u8,
}

impl Tcp {
    // Masked again at each read (the ranges `bounded` and [`parse`] guarantee): a 16-bit
    // value spilled to the stack comes back to the verifier without its bounds.
    #[inline(always)]
    pub fn l3_off(&self) -> usize {
        self.l3_off as usize & 0x1f
    }

    #[inline(always)]
    pub fn l4_off(&self) -> usize {
        self.l4_off as usize & 0x7f
    }

    #[inline(always)]
    pub fn hlen(&self) -> usize {
        self.hlen as usize & 0x3c
    }

    #[inline(always)]
    pub fn seg_len(&self) -> usize {
        self.seg_len as usize
    }

    /// Bounds the offsets and lengths again, for a `Tcp` whose values the verifier no longer
    /// knows (after `forget`): the ranges [`parse`] guarantees, as masks.
    #[inline(always)]
    pub fn bounded(mut self) -> Self {
        self.l3_off &= 0x1f;
        self.l4_off &= 0x7f;
        self.hlen &= 0x3c;
        self.res1 &= 0x0f;
        self.ip_ecn &= IP_ECN_MASK;
        self
    }

    /// Whether the segment is IPv6, as a fresh value at each call. The verifier remembers which
    /// way a branch went in the register it tested: a branch on `self.v6` itself would keep
    /// the two families apart in everything after it (the option walk, the MAC), checked
    /// twice. Each call tests a new register and leaves `v6` unknown for the code that follows.
    #[inline(always)]
    pub fn is_v6(&self) -> bool {
        fresh(self.v6 as usize) & 1 != 0
    }

    /// The connection, as the cookie sees it.
    #[inline(always)]
    pub fn flow(&self) -> Flow {
        Flow {
            saddr: self.saddr,
            daddr: self.daddr,
            sport: self.sport,
            dport: self.dport,
            v6: self.is_v6(),
        }
    }
}

pub enum Frame {
    Tcp(Tcp),
    /// IP, but not a TCP segment we judge (UDP, ICMP, ...).
    Other,
    /// Not parsed: non-IP, fragments, more VLAN tags than we walk, IPv6 extension headers.
    NotInspected,
    /// TCP to this destination port whose data offset is inconsistent.
    Malformed(u16),
}

/// Walks Ethernet and up to [`MAX_VLAN_TAGS`] 802.1Q/802.1ad tags; returns the EtherType and the
/// offset of the L3 header.
#[inline(always)]
fn ethernet(data: usize, end: usize) -> Option<(u16, usize)> {
    let mut proto = be16(data, end, 12)?;
    let mut off = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
            break;
        }
        proto = be16(data, end, off + 2)?;
        off += VLAN_HLEN;
    }
    Some((proto, off))
}

/// What the IP layer gives the TCP parse: where TCP starts, how long the segment is, the
/// addresses and the ECN bits.
struct Ip {
    l4_off: usize,
    seg_len: usize,
    saddr: [u32; 4],
    daddr: [u32; 4],
    v6: bool,
    ecn: u8,
}

#[inline(always)]
fn word(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// IPv4: the header (with options), not a fragment, lengths consistent with the frame.
#[inline(always)]
fn ipv4(data: usize, end: usize, l3_off: usize) -> Result<Ip, Frame> {
    let Some(ip) = read::<IPV4_HLEN>(data, end, l3_off) else {
        return Err(Frame::NotInspected);
    };
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    let tot_len = len16(u16::from_be_bytes([ip[2], ip[3]]));
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    if ip[0] >> 4 != 4 || ihl < IPV4_HLEN || tot_len < ihl || data + l3_off + tot_len > end {
        // The kernel drops these itself; they are not ours to judge.
        return Err(Frame::NotInspected);
    }
    if frag & (IP_MF | IP_OFFSET) != 0 {
        return Err(Frame::NotInspected);
    }
    if ip[9] != IPPROTO_TCP {
        return Err(Frame::Other);
    }
    Ok(Ip {
        l4_off: l3_off + ihl,
        seg_len: tot_len - ihl,
        saddr: [word(&ip, 12), 0, 0, 0],
        daddr: [word(&ip, 16), 0, 0, 0],
        v6: false,
        ecn: ip[1] & IP_ECN_MASK,
    })
}

/// IPv6: the fixed header, TCP right after it. Any extension header (hop-by-hop, routing,
/// destination options, fragment, AH) makes the frame the kernel's: before a listener sees
/// the segment, it checks each header's TLVs (padding at most 7 bytes and all zero, unknown
/// options by their action bits, a maximum count), refuses segment routing and RPL headers
/// unless enabled and walks jumbograms, each by per-namespace settings (`ip6_parse_tlv()`,
/// `ipv6_rthdr_rcv()`). No client needs them on a SYN; the kernel judges them exactly.
#[inline(always)]
fn ipv6(data: usize, end: usize, l3_off: usize) -> Result<Ip, Frame> {
    let Some(ip) = read::<IPV6_HLEN>(data, end, l3_off) else {
        return Err(Frame::NotInspected);
    };
    let payload_len = len16(u16::from_be_bytes([ip[4], ip[5]]));
    if ip[0] >> 4 != 6 || payload_len == 0 || data + l3_off + IPV6_HLEN + payload_len > end {
        return Err(Frame::NotInspected);
    }
    if ip[6] != IPPROTO_TCP {
        return Err(match ip[6] {
            IPV6_NH_HOPOPTS | IPV6_NH_ROUTING | IPV6_NH_DSTOPTS | IPV6_NH_FRAGMENT | IPV6_NH_AH => {
                Frame::NotInspected
            }
            _ => Frame::Other,
        });
    }
    let w = |at: usize| {
        [
            word(&ip, at),
            word(&ip, at + 4),
            word(&ip, at + 8),
            word(&ip, at + 12),
        ]
    };
    Ok(Ip {
        l4_off: l3_off + IPV6_HLEN,
        seg_len: payload_len,
        saddr: w(8),
        daddr: w(24),
        v6: true,
        ecn: (u16::from_be_bytes([ip[0], ip[1]]) >> 4) as u8 & IP_ECN_MASK,
    })
}

#[inline(always)]
pub fn parse(data: usize, end: usize) -> Frame {
    let Some((proto, l3_off)) = ethernet(data, end) else {
        return Frame::NotInspected;
    };
    let ip = match proto {
        ETH_P_IP => ipv4(data, end, l3_off),
        ETH_P_IPV6 => ipv6(data, end, l3_off),
        _ => return Frame::NotInspected,
    };
    let ip = match ip {
        Ok(ip) => ip,
        Err(f) => return f,
    };
    // From here on the two families share the code, and the verifier would check it once per
    // family (IPv4's addresses have known zero words, its offsets other ranges): behind
    // `opaque` their states are the same, and the second is pruned. Bounds again after it: the
    // TCP header lies at most 82 bytes in (two VLAN tags and an IPv4 header of 60).
    let l4_off = opaque(ip.l4_off) & 0x7f;
    let seg_len = opaque(ip.seg_len) & 0xffff;
    let v6 = opaque(ip.v6 as usize) & 1 != 0;
    let w = |a: [u32; 4]| a.map(|x| opaque(x as usize) as u32);
    let (saddr, daddr) = (w(ip.saddr), w(ip.daddr));
    let ecn = (opaque(ip.ecn as usize) & IP_ECN_MASK as usize) as u8;
    let Some(th) = read::<TCP_HLEN>(data, end, l4_off) else {
        // Cut short before the ports: nothing says it is ours; the kernel drops it.
        return Frame::NotInspected;
    };
    let hlen = ((th[12] >> 4) as usize) * 4;
    if hlen < TCP_HLEN || hlen > seg_len {
        return Frame::Malformed(u16::from_be_bytes([th[2], th[3]]));
    }
    Frame::Tcp(Tcp {
        l3_off: l3_off as u16,
        l4_off: l4_off as u16,
        hlen: hlen as u16,
        seg_len: seg_len as u16,
        saddr,
        daddr,
        v6,
        sport: u16::from_be_bytes([th[0], th[1]]),
        dport: u16::from_be_bytes([th[2], th[3]]),
        seq: word(&th, 4),
        ack: word(&th, 8),
        flags: th[13],
        res1: th[12] & 0x0f,
        ip_ecn: ecn,
    })
}
