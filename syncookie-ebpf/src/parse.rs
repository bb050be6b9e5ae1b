//! Bounds-checked parsing of Ethernet (up to two VLAN tags), IPv4 and TCP, over the raw
//! `data..data_end` range that both XDP and TC give us. Every read checks its end first.

use syncookie_common::proto::*;

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

/// An IPv4 TCP segment. Addresses and numbers in host order.
#[derive(Clone, Copy)]
pub struct Tcp {
    /// Offsets from `data`: the IP header, the TCP header.
    pub l3_off: usize,
    pub l4_off: usize,
    /// TCP header length (data offset × 4) and header + payload length (from the IP header).
    pub hlen: usize,
    pub seg_len: usize,
    pub saddr: u32,
    pub daddr: u32,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// The TCP header's four reserved bits (the low nibble of the data-offset byte).
    pub res1: u8,
    /// The ECN field of the IP header (TOS & 3).
    pub ip_ecn: u8,
}

pub enum Frame {
    Tcp(Tcp),
    /// IP, but not a TCP segment we judge (UDP, ICMP, ...).
    Other,
    /// Not parsed: non-IP, IPv6, fragments, more VLAN tags than we walk.
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

#[inline(always)]
pub fn parse(data: usize, end: usize) -> Frame {
    let Some((proto, l3_off)) = ethernet(data, end) else {
        return Frame::NotInspected;
    };
    if proto != ETH_P_IP {
        return Frame::NotInspected;
    }
    let Some(ip) = read::<IPV4_HLEN>(data, end, l3_off) else {
        return Frame::NotInspected;
    };
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    let tot_len = len16(u16::from_be_bytes([ip[2], ip[3]]));
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    if ip[0] >> 4 != 4 || ihl < IPV4_HLEN || tot_len < ihl || data + l3_off + tot_len > end {
        // The kernel drops these itself; they are not ours to judge.
        return Frame::NotInspected;
    }
    if frag & (IP_MF | IP_OFFSET) != 0 {
        return Frame::NotInspected;
    }
    if ip[9] != IPPROTO_TCP {
        return Frame::Other;
    }
    let l4_off = l3_off + ihl;
    let seg_len = tot_len - ihl;
    let Some(th) = read::<TCP_HLEN>(data, end, l4_off) else {
        // Cut short before the ports: nothing says it is ours; the kernel drops it.
        return Frame::NotInspected;
    };
    let hlen = ((th[12] >> 4) as usize) * 4;
    if hlen < TCP_HLEN || hlen > seg_len {
        return Frame::Malformed(u16::from_be_bytes([th[2], th[3]]));
    }
    Frame::Tcp(Tcp {
        l3_off,
        l4_off,
        hlen,
        seg_len,
        saddr: u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]),
        daddr: u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]),
        sport: u16::from_be_bytes([th[0], th[1]]),
        dport: u16::from_be_bytes([th[2], th[3]]),
        seq: u32::from_be_bytes([th[4], th[5], th[6], th[7]]),
        ack: u32::from_be_bytes([th[8], th[9], th[10], th[11]]),
        flags: th[13],
        res1: th[12] & 0x0f,
        ip_ecn: ip[1] & IP_ECN_MASK,
    })
}

/// The TCP options we act on.
#[derive(Clone, Copy, Default)]
pub struct Options {
    /// 0 when absent.
    pub mss: u16,
    pub wscale: Option<u8>,
    pub sack_perm: bool,
    /// (TSval, TSecr)
    pub ts: Option<(u32, u32)>,
    /// TCP-MD5, TCP-AO or MPTCP: the kernel's business.
    pub kernel_only: bool,
}

/// Option items we walk (a NOP pair counts as one). Real SYNs have at most 7 that way (macOS:
/// MSS, NOP, WS, NOP NOP, TS, SACK-perm, EOL). The verifier walks every item count separately;
/// 8 keeps it well inside its budget, 10 does not fit.
const MAX_OPTION_ITEMS: usize = 8;

#[inline(always)]
pub fn options(data: usize, end: usize, t: &Tcp) -> Options {
    let mut o = Options::default();
    let opt_len = t.hlen - TCP_HLEN;
    let base = t.l4_off + TCP_HLEN;
    let mut i = 0usize;
    for _ in 0..MAX_OPTION_ITEMS {
        if i >= opt_len || i >= TCP_MAX_OPTLEN {
            break;
        }
        let at = opaque(base + i);
        // Two bytes even for a NOP: the verifier gives no range to a 1-byte read checked as
        // `p >= end`, which is what LLVM makes of `p + 1 > end`. A NOP or EOL as the frame's
        // very last byte ends nothing we need.
        let Some([kind, len]) = read::<2>(data, end, at) else {
            break;
        };
        if kind == TCPOPT_EOL {
            break;
        }
        if kind == TCPOPT_NOP {
            i += if len == TCPOPT_NOP { 2 } else { 1 };
            continue;
        }
        let len = len as usize;
        if len < 2 || i + len > opt_len {
            break;
        }
        match (kind, len) {
            (TCPOPT_MSS, 4) => {
                // Linux ignores an MSS of 0 (tcp_parse_options()), so do we.
                if let Some(v) = be16(data, end, at + 2)
                    && v != 0
                {
                    o.mss = v;
                }
            }
            (TCPOPT_WSCALE, 3) => {
                if let Some([_, _, s]) = read::<3>(data, end, at) {
                    o.wscale = Some(s);
                }
            }
            (TCPOPT_SACK_PERM, 2) => o.sack_perm = true,
            (TCPOPT_TIMESTAMP, 10) => {
                if let (Some(val), Some(ecr)) = (be32(data, end, at + 2), be32(data, end, at + 6)) {
                    o.ts = Some((val, ecr));
                }
            }
            (TCPOPT_MD5SIG | TCPOPT_AO | TCPOPT_MPTCP, _) => o.kernel_only = true,
            _ => {}
        }
        i += len;
    }
    o
}
