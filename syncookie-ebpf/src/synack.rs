//! Turns a SYN into our SYN-ACK in place: swapped MACs (VLAN tags kept), a fresh IPv4 header
//! without options, a TCP header whose ISN is the cookie, the options the kernel would send
//! (same order as tcp_options_write()), full checksums.

use aya_ebpf::{helpers::bpf_xdp_adjust_tail, programs::XdpContext};
use syncookie_common::{
    cookie::{self, Flow, SynAttrs, WSCALE_NONE},
    maps::{Config, flags},
    proto::*,
};

use crate::{
    csum::{fold, pseudo_v4, sum_frame, w32},
    maps,
    parse::{Options, Tcp, read},
};

/// What the SYN path decided.
pub enum Syn {
    Sent,
    /// Not ours to answer: the kernel gets the SYN.
    Pass,
}

/// Whether the SYN's TCP checksum (pseudo-header included) is right; `None` when the segment is
/// too long to check here. Runs before anything else on the SYN path: the verifier walks its
/// loop once per distinct state, so it must not follow the option parser's many states.
#[inline(always)]
pub fn checksum_ok(data: usize, end: usize, t: &Tcp) -> Option<bool> {
    let sum = sum_frame(data, end, t.l4_off, t.seg_len)?;
    Some(fold(sum + pseudo_v4(t.saddr, t.daddr, t.seg_len)) == 0xffff)
}

/// Writes `N` bytes at `data + off`, or `None` past the end of the frame.
#[inline(always)]
fn write<const N: usize>(data: usize, end: usize, off: usize, v: [u8; N]) -> Option<()> {
    let p = data + off;
    if p + N > end {
        return None;
    }
    // SAFETY: [p, p + N) lies inside the frame, checked just above.
    unsafe { *(p as *mut [u8; N]) = v };
    Some(())
}

/// The SYN's options as far as we offer them, given the kernel's settings in `cfg`.
#[inline(always)]
fn offered(cfg: &Config, t: &Tcp, o: &Options) -> (SynAttrs, bool) {
    let client_mss = if o.mss == 0 { 536 } else { o.mss };
    let mss = if client_mss < cfg.mss_v4 {
        client_mss
    } else {
        cfg.mss_v4
    };
    let ws = cfg.flags & flags::WSCALE != 0;
    let a = SynAttrs {
        mss_idx: cookie::mss_index(false, mss),
        wscale: if ws {
            cookie::wscale_field(o.wscale)
        } else {
            WSCALE_NONE
        },
        sack: o.sack_perm && cfg.flags & flags::SACK != 0,
        ecn: t.flags & (TCP_ECE | TCP_CWR) == (TCP_ECE | TCP_CWR) && cfg.flags & flags::ECN != 0,
    };
    (a, o.ts.is_some() && cfg.flags & flags::TIMESTAMPS != 0)
}

#[inline(always)]
pub fn answer(ctx: &XdpContext, cfg: &Config, t: &Tcp, o: &Options) -> Option<Syn> {
    let (data, end) = (ctx.data(), ctx.data_end());
    let epoch = maps::current_epoch();
    let slot = cookie::slot_of_epoch(epoch);
    let Some(key) = maps::key(slot) else {
        return Some(Syn::Pass);
    };
    if key.epoch != epoch || epoch == 0 {
        // No key installed yet: leave the SYN to the kernel's own defences.
        return Some(Syn::Pass);
    }
    let (a, ts) = offered(cfg, t, o);
    let flow = Flow::v4(t.saddr, t.daddr, t.sport, t.dport);
    let c = cookie::encode(&key, slot, &flow, t.seq, &a, ts);

    // Options as 32-bit words, in the kernel's order: MSS, [SACK-perm|NOP NOP] TS, or NOP NOP
    // SACK-perm, then NOP WS. Absent words are zero and add nothing to the checksum.
    let opt0 = 0x0204_0000 | cfg.mss_v4 as u32;
    let (mut opt1, mut opt2, mut opt3, mut opt4) = (0u32, 0u32, 0u32, 0u32);
    let mut words = 1usize;
    if ts {
        // SAFETY: helper call without arguments.
        let now = cookie::ts_clock(unsafe { aya_ebpf::helpers::bpf_ktime_get_coarse_ns() });
        opt1 = if a.sack { 0x0402_080a } else { 0x0101_080a };
        opt2 = cookie::tsval(now, c.ts_bits);
        opt3 = o.ts.map_or(0, |(val, _)| val);
        words = 4;
    } else if a.sack {
        opt1 = 0x0101_0402;
        words = 2;
    }
    if a.wscale != WSCALE_NONE {
        let w = 0x0103_0300 | cfg.wscale as u32;
        if words == 4 {
            opt4 = w;
        } else if words == 2 {
            opt2 = w;
        } else {
            opt1 = w;
        }
        words += 1;
    }
    let tcp_len = TCP_HLEN + 4 * words;
    let l4_off = t.l3_off + IPV4_HLEN;
    let new_len = l4_off + tcp_len;

    let macs = read::<12>(data, end, 0)?;
    let delta = new_len as i32 - (end - data) as i32;
    // A Linux SYN and its SYN-ACK have the same length: no helper call then.
    // SAFETY: helper call on our own context; all packet pointers are re-derived below.
    if delta != 0 && unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta) } != 0 {
        return Some(Syn::Pass);
    }
    let (data, end) = (ctx.data(), ctx.data_end());

    write(
        data,
        end,
        0,
        [macs[6], macs[7], macs[8], macs[9], macs[10], macs[11]],
    )?;
    write(
        data,
        end,
        6,
        [macs[0], macs[1], macs[2], macs[3], macs[4], macs[5]],
    )?;

    let tot_len = (IPV4_HLEN + tcp_len) as u16;
    let ttl_proto = ((cfg.ttl as u16) << 8) | IPPROTO_TCP as u16;
    let ip_csum = !fold(
        0x4500 + tot_len as u64 + IP_DF as u64 + ttl_proto as u64 + w32(t.daddr) + w32(t.saddr),
    );
    let [l0, l1] = tot_len.to_be_bytes();
    let [tp0, tp1] = ttl_proto.to_be_bytes();
    let [c0, c1] = ip_csum.to_be_bytes();
    let [s0, s1, s2, s3] = t.daddr.to_be_bytes();
    let [d0, d1, d2, d3] = t.saddr.to_be_bytes();
    write(
        data,
        end,
        t.l3_off,
        [
            0x45, 0, l0, l1, 0, 0, 0x40, 0, tp0, tp1, c0, c1, s0, s1, s2, s3, d0, d1, d2, d3,
        ],
    )?;

    let ports = ((t.dport as u32) << 16) | t.sport as u32;
    let ack = t.seq.wrapping_add(1);
    let flags = TCP_SYN | TCP_ACK | if a.ecn { TCP_ECE } else { 0 };
    let off_flags = (((tcp_len / 4) as u16) << 12) | flags as u16;
    let sum = pseudo_v4(t.daddr, t.saddr, tcp_len)
        + w32(ports)
        + w32(c.isn)
        + w32(ack)
        + off_flags as u64
        + cfg.window as u64
        + w32(opt0)
        + w32(opt1)
        + w32(opt2)
        + w32(opt3)
        + w32(opt4);
    let tcp_csum = !fold(sum);
    let [p0, p1, p2, p3] = ports.to_be_bytes();
    let [q0, q1, q2, q3] = c.isn.to_be_bytes();
    let [a0, a1, a2, a3] = ack.to_be_bytes();
    let [f0, f1] = off_flags.to_be_bytes();
    let [w0, w1] = cfg.window.to_be_bytes();
    let [k0, k1] = tcp_csum.to_be_bytes();
    write(
        data,
        end,
        l4_off,
        [
            p0, p1, p2, p3, q0, q1, q2, q3, a0, a1, a2, a3, f0, f1, w0, w1, k0, k1, 0, 0,
        ],
    )?;
    let opts = l4_off + TCP_HLEN;
    write(data, end, opts, opt0.to_be_bytes())?;
    if words > 1 {
        write(data, end, opts + 4, opt1.to_be_bytes())?;
    }
    if words > 2 {
        write(data, end, opts + 8, opt2.to_be_bytes())?;
    }
    if words > 3 {
        write(data, end, opts + 12, opt3.to_be_bytes())?;
    }
    if words > 4 {
        write(data, end, opts + 16, opt4.to_be_bytes())?;
    }
    Some(Syn::Sent)
}
