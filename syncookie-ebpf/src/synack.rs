//! Turns a SYN into our SYN-ACK in place: swapped MACs (VLAN tags kept), a fresh IPv4 header
//! without options or IPv6 header without extension headers, a TCP header whose ISN is the cookie, the options the kernel would send
//! (same order as tcp_options_write()), full checksums.

use aya_ebpf::{helpers::bpf_xdp_adjust_tail, programs::XdpContext};
use syncookie_common::{
    cookie::{self, SynAttrs, WSCALE_NONE},
    maps::{Config, flags},
    proto::*,
};

use crate::{
    csum::{fold, pseudo, sum_frame, w32},
    keys::Keys,
    parse::{Options, Tcp, be16, read},
    tcpopts::OptionWords,
};

/// What the SYN path decided.
pub enum Syn {
    Sent,
    /// Not ours to answer: the kernel gets the SYN.
    Pass,
    /// An MSS below what a socket can be handed over with: the kernel gets the SYN.
    SmallMss,
}

/// What a SYN's TCP checksum field holds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// The full sum, as on any wire.
    Valid,
    /// The pseudo-header's sum only: a local sender with TX checksum offload (veth peers,
    /// containers) leaves the rest to a NIC that is not there, and the kernel accepts the skb
    /// (CHECKSUM_PARTIAL) as it is. We answer it as the kernel would.
    Partial,
    /// Neither: the kernel drops it, so it is the kernel's to drop.
    Wrong,
    /// Too long to sum here.
    Unchecked,
}

impl Checksum {
    /// Whether the SYN may be answered: a sum the kernel would accept.
    #[inline(always)]
    pub fn accepted(self) -> bool {
        matches!(self, Checksum::Valid | Checksum::Partial)
    }
}

/// The SYN's TCP checksum (pseudo-header included). Runs before anything else on the SYN path:
/// the verifier walks its loop once per distinct state, so it must not follow the option
/// parser's many states.
#[inline(always)]
pub fn checksum(data: usize, end: usize, t: &Tcp) -> Checksum {
    let Some(sum) = sum_frame(data, end, t.l4_off(), t.seg_len()) else {
        return Checksum::Unchecked;
    };
    let ph = pseudo(&t.saddr, &t.daddr, t.seg_len());
    if fold(sum + ph) == 0xffff {
        return Checksum::Valid;
    }
    // __tcp_v4_send_check()/__tcp_v6_send_check(): th->check = ~tcp_v{4,6}_check(len, s, d, 0),
    // the folded pseudo-header sum.
    match be16(data, end, t.l4_off() + 16) {
        Some(c) if c == fold(ph) => Checksum::Partial,
        _ => Checksum::Wrong,
    }
}

/// `N` bytes of the frame at a checked position, written as big-endian words. With
/// `allows-misaligned-mem-access` (see ebpf-build) each word is one store; the
/// frame's headers are only 2-byte aligned, which the verifier accepts for packet memory.
struct Span<const N: usize>(usize);

impl<const N: usize> Span<N> {
    #[inline(always)]
    fn at(data: usize, end: usize, off: usize) -> Option<Self> {
        let p = data + off;
        if p + N > end {
            return None;
        }
        Some(Self(p))
    }

    #[inline(always)]
    fn u32(&self, off: usize, v: u32) {
        if off + 4 <= N {
            // SAFETY: [off, off + 4) lies inside the span, checked against the frame's end.
            unsafe { ((self.0 + off) as *mut u32).write_unaligned(v.to_be()) };
        }
    }

    #[inline(always)]
    fn u16(&self, off: usize, v: u16) {
        if off + 2 <= N {
            // SAFETY: as for `u32`.
            unsafe { ((self.0 + off) as *mut u16).write_unaligned(v.to_be()) };
        }
    }
}

/// Writes the big-endian word `v` at `off` in the frame.
#[inline(always)]
pub fn write_word(data: usize, end: usize, off: usize, v: u32) -> Option<()> {
    Span::<4>::at(data, end, off)?.u32(0, v);
    Some(())
}

/// Swaps the MAC addresses: `macs` are the SYN's first 12 bytes (destination, source), read
/// before the frame was resized. VLAN tags after them stay as they are.
#[inline(always)]
pub fn write_macs(data: usize, end: usize, macs: &[u8; 12]) -> Option<()> {
    let eth = Span::<12>::at(data, end, 0)?;
    eth.u32(0, u32::from_be_bytes([macs[6], macs[7], macs[8], macs[9]]));
    eth.u16(4, u16::from_be_bytes([macs[10], macs[11]]));
    eth.u32(6, u32::from_be_bytes([macs[0], macs[1], macs[2], macs[3]]));
    eth.u16(10, u16::from_be_bytes([macs[4], macs[5]]));
    Some(())
}

/// The SYN-ACK's IPv4 header at the SYN's: no options, TOS 0, ID 0, DF, the kernel's TTL, the
/// SYN's addresses swapped, and its checksum, for a TCP segment of `tcp_len` bytes.
#[inline(always)]
pub fn write_ipv4(data: usize, end: usize, cfg: &Config, t: &Tcp, tcp_len: usize) -> Option<()> {
    let tot_len = (IPV4_HLEN + tcp_len) as u16;
    let ttl_proto = ((cfg.ttl as u16) << 8) | IPPROTO_TCP as u16;
    let ip_csum = !fold(
        0x4500
            + tot_len as u64
            + IP_DF as u64
            + ttl_proto as u64
            + w32(t.daddr[0])
            + w32(t.saddr[0]),
    );
    let ip = Span::<IPV4_HLEN>::at(data, end, t.l3_off())?;
    ip.u32(0, 0x4500_0000 | tot_len as u32); // version 4, IHL 5, TOS 0, total length
    ip.u32(4, IP_DF as u32); // ID 0, DF
    ip.u32(8, ((ttl_proto as u32) << 16) | ip_csum as u32);
    ip.u32(12, t.daddr[0]);
    ip.u32(16, t.saddr[0]);
    Some(())
}

/// The SYN-ACK's IPv6 header at the SYN's, for a TCP segment of `tcp_len` bytes: no extension
/// headers, the SYN's addresses swapped, the interface's hop limit.
#[inline(always)]
pub fn write_ipv6(data: usize, end: usize, cfg: &Config, t: &Tcp, tcp_len: usize) -> Option<()> {
    // Version 6, traffic class 0 (np->tclass), flow label 0: the kernel's is a hash of the
    // flow under a boot-time secret (auto_flowlabels) that we cannot reproduce; any other
    // value would differ from the connection's later packets anyway, and 0 (unlabeled,
    // RFC 6437) tells nothing about us and makes no promise the kernel then breaks.
    let ip = Span::<IPV6_HLEN>::at(data, end, t.l3_off())?;
    ip.u32(0, 0x6000_0000);
    ip.u32(
        4,
        ((tcp_len as u32) << 16) | ((IPPROTO_TCP as u32) << 8) | cfg.hop_limit as u32,
    );
    ip.u32(8, t.daddr[0]);
    ip.u32(12, t.daddr[1]);
    ip.u32(16, t.daddr[2]);
    ip.u32(20, t.daddr[3]);
    ip.u32(24, t.saddr[0]);
    ip.u32(28, t.saddr[1]);
    ip.u32(32, t.saddr[2]);
    ip.u32(36, t.saddr[3]);
    Some(())
}

/// What the SYN-ACK's fixed TCP header says besides the SYN's ports and numbers.
pub struct TcpHead {
    pub isn: u32,
    pub flags: u8,
    /// Header length with options.
    pub len: usize,
    pub window: u16,
}

/// The SYN-ACK's fixed TCP header at `l4_off`: the SYN's ports swapped, `h.isn`, ack = seq + 1,
/// the data offset and flags, the window, and the checksum over the pseudo-header, this header
/// and the options (their words' sum: `opts_sum`).
#[inline(always)]
pub fn write_tcp(
    data: usize,
    end: usize,
    l4_off: usize,
    t: &Tcp,
    h: &TcpHead,
    opts_sum: u64,
) -> Option<()> {
    let ports = ((t.dport as u32) << 16) | t.sport as u32;
    let ack = t.seq.wrapping_add(1);
    let off_flags = (((h.len / 4) as u16) << 12) | h.flags as u16;
    let sum = pseudo(&t.daddr, &t.saddr, h.len)
        + w32(ports)
        + w32(h.isn)
        + w32(ack)
        + off_flags as u64
        + h.window as u64
        + opts_sum;
    let th = Span::<TCP_HLEN>::at(data, end, l4_off)?;
    th.u32(0, ports);
    th.u32(4, h.isn);
    th.u32(8, ack);
    th.u32(12, ((off_flags as u32) << 16) | h.window as u32);
    th.u32(16, (!fold(sum) as u32) << 16); // checksum, urgent pointer 0
    Some(())
}

/// Whether the kernel would agree to ECN for this SYN (tcp_ecn_create_request()): the client
/// asks with ECE and CWR, tcp_ecn is on, and the SYN itself is not ECT-marked (unless it sets a
/// reserved bit, which the kernel takes as a newer ECN flavour).
#[inline(always)]
fn ecn_ok(cfg: &Config, t: &Tcp) -> bool {
    t.flags & (TCP_ECE | TCP_CWR) == (TCP_ECE | TCP_CWR)
        && cfg.flags & flags::ECN != 0
        && (t.ip_ecn == 0 || t.res1 != 0)
}

/// The kernel's window for a SYN: its MSS less the timestamps' room decides the rounding.
#[inline(always)]
pub fn window(cfg: &Config, v6: bool, ts: bool) -> u16 {
    match (v6, ts) {
        (false, false) => cfg.window,
        (false, true) => cfg.window_ts,
        (true, false) => cfg.window_v6,
        (true, true) => cfg.window_ts_v6,
    }
}

/// The SYN's options as far as we offer them, given the kernel's settings in `cfg`, and
/// whether we answer with timestamps.
#[inline(always)]
pub fn offered(cfg: &Config, t: &Tcp, o: &Options) -> (SynAttrs, bool) {
    // The socket gets the client's MSS, as on the kernel's normal path (tcp_openreq_init():
    // mss_clamp); without an MSS option the kernel assumes the family's minimum
    // (tcp_v6_conn_request: IPV6_MIN_MTU - 60; RFC 1122 for IPv4).
    let default_mss = if t.is_v6() {
        IPV6_DEFAULT_MSS
    } else {
        IPV4_DEFAULT_MSS
    };
    let ws = cfg.flags & flags::WSCALE != 0;
    let a = SynAttrs {
        mss: if o.mss == 0 { default_mss } else { o.mss },
        wscale: if ws {
            cookie::wscale_field(o.wscale)
        } else {
            WSCALE_NONE
        },
        sack: o.sack_perm && cfg.flags & flags::SACK != 0,
        ecn: ecn_ok(cfg, t),
    };
    (a, o.ts.is_some() && cfg.flags & flags::TIMESTAMPS != 0)
}

#[inline(always)]
pub fn answer(
    ctx: &XdpContext,
    keys: &impl Keys,
    cfg: &Config,
    t: &Tcp,
    o: &Options,
) -> Option<Syn> {
    let (data, end) = (ctx.data(), ctx.data_end());
    let epoch = keys.current_epoch();
    let Some(key) = keys.key(cookie::slot_of_epoch(epoch)) else {
        return Some(Syn::Pass);
    };
    if key.epoch != epoch || epoch == 0 {
        // No key installed yet: leave the SYN to the kernel's own defences.
        return Some(Syn::Pass);
    }
    let (a, ts) = offered(cfg, t, o);
    // bpf_sk_assign_tcp_reqsk() refuses an MSS below the family's minimum (net/core/filter.c:
    // 536, IPv6 IPV6_MIN_MTU - 60 = 1220) with -EINVAL, timestamps or not: such a handshake
    // could never be handed over, and the client would be reset. The kernel answers it with
    // the client's MSS (found by the differential test: MSS 500 with timestamps).
    let min_mss = if t.is_v6() {
        IPV6_DEFAULT_MSS
    } else {
        IPV4_DEFAULT_MSS
    };
    if a.mss < min_mss {
        return Some(Syn::SmallMss);
    }
    let flow = t.flow();
    // None: no timestamps and an MSS below the table's smallest entry (ruled out above).
    let Some(c) = cookie::encode(&key, &flow, t.seq, &a, ts) else {
        return Some(Syn::SmallMss);
    };

    let mss = if t.is_v6() { cfg.mss_v6 } else { cfg.mss_v4 };
    let wscale = (a.wscale != WSCALE_NONE).then_some(cfg.wscale);
    let stamps = if ts {
        // SAFETY: helper call without arguments.
        let now = cookie::ts_clock(unsafe { aya_ebpf::helpers::bpf_ktime_get_coarse_ns() });
        Some((cookie::tsval(now, &c), o.ts.map_or(0, |(val, _)| val)))
    } else {
        None
    };
    let opts = OptionWords::new(mss, a.sack, wscale, stamps);
    let tcp_len = TCP_HLEN + 4 * opts.words;
    let window = window(cfg, t.is_v6(), ts);
    let l3_len = if t.is_v6() { IPV6_HLEN } else { IPV4_HLEN };
    let l4_off = t.l3_off() + l3_len;
    let new_len = l4_off + tcp_len;

    let macs = read::<12>(data, end, 0)?;
    let delta = new_len as i32 - (end - data) as i32;
    // A Linux SYN and its SYN-ACK have the same length: no helper call then.
    // SAFETY: helper call on our own context; all packet pointers are re-derived below.
    if delta != 0 && unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta) } != 0 {
        return Some(Syn::Pass);
    }
    let (data, end) = (ctx.data(), ctx.data_end());
    write_macs(data, end, &macs)?;
    if t.is_v6() {
        write_ipv6(data, end, cfg, t, tcp_len)?;
    } else {
        write_ipv4(data, end, cfg, t, tcp_len)?;
    }
    let flags = TCP_SYN | TCP_ACK | if a.ecn { TCP_ECE } else { 0 };
    let head = TcpHead {
        isn: c.isn,
        flags,
        len: tcp_len,
        window,
    };
    write_tcp(data, end, l4_off, t, &head, opts.sum())?;
    opts.write(data, end, l4_off + TCP_HLEN)?;
    Some(Syn::Sent)
}
