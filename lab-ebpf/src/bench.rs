//! Benchmark programs (`cargo xtask bench`, bench/): counters for the kernel's scenarios, the
//! reflector, and the shield's own packet code (its library, unchanged) in the orders compared.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::{TC_ACT_OK, xdp_action},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use syncookie_common::{
    cookie::{self, SynAttrs, WSCALE_NONE},
    lab::{LabCounter, SPOOFED_NET, SPOOFED_NET6, forge},
    maps::{HANDOFF_MAGIC, HandoffMeta},
    proto::*,
};
use syncookie_ebpf::{ack, keys::Keys, parse, sock, synack};

use crate::{
    lab::{ipv4_tcp, tcp_flags},
    maps::{self, LabKeys},
};

#[xdp]
pub fn lab_count_syn(ctx: XdpContext) -> u32 {
    if let Some(h) = ipv4_tcp(ctx.data(), ctx.data_end())
        && tcp_flags(&h) & (TCP_SYN | TCP_ACK | TCP_RST) == TCP_SYN
    {
        maps::inc(LabCounter::Syn);
    }
    xdp_action::XDP_PASS
}

#[xdp]
pub fn lab_sink(ctx: XdpContext) -> u32 {
    let (data, end) = (ctx.data(), ctx.data_end());
    if let Some(h) = parse::read::<{ ETH_HLEN + IPV6_HLEN + 14 }>(data, end, 0)
        && u16::from_be_bytes([h[12], h[13]]) == ETH_P_IPV6
    {
        // IPv6 to 2001:2::/48 (the IPv6 flood's sources).
        let dst = ETH_HLEN + 24;
        let net = SPOOFED_NET6.map(u16::to_be_bytes);
        if h[dst..dst + 6]
            != [
                net[0][0], net[0][1], net[1][0], net[1][1], net[2][0], net[2][1],
            ]
        {
            return xdp_action::XDP_PASS;
        }
        let f = h[ETH_HLEN + IPV6_HLEN + 13];
        return sink(
            h[ETH_HLEN + 6] == IPPROTO_TCP && f & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK,
        );
    }
    let Some(h) = parse::read::<{ ETH_HLEN + IPV4_HLEN }>(data, end, 0) else {
        return xdp_action::XDP_PASS;
    };
    let dst = ETH_HLEN + 16;
    if u16::from_be_bytes([h[12], h[13]]) != ETH_P_IP || [h[dst], h[dst + 1]] != SPOOFED_NET {
        return xdp_action::XDP_PASS;
    }
    sink(matches!(ipv4_tcp(data, end),
        Some(t) if tcp_flags(&t) & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK))
}

/// Counts a frame to the spoofed sources and drops it.
#[inline(always)]
fn sink(synack: bool) -> u32 {
    maps::inc(if synack {
        LabCounter::SinkSynack
    } else {
        LabCounter::SinkOther
    });
    xdp_action::XDP_DROP
}

/// The minimal reflector: IPv4 TCP frames go back where they came from (MACs, addresses and
/// ports swapped; both checksums stay valid), everything else passes.
#[xdp]
pub fn lab_reflect(ctx: XdpContext) -> u32 {
    reflect(&ctx)
}

#[inline(always)]
fn reflect(ctx: &XdpContext) -> u32 {
    const L: usize = ETH_HLEN + IPV4_HLEN + 4;
    let data = ctx.data();
    if data + L > ctx.data_end() {
        return xdp_action::XDP_PASS;
    }
    // SAFETY: [data, data + L) is in the frame (checked above).
    let f = unsafe { &mut *(data as *mut [u8; L]) };
    if f[12] != 0x08 || f[13] != 0x00 || f[ETH_HLEN] != 0x45 || f[ETH_HLEN + 9] != IPPROTO_TCP {
        return xdp_action::XDP_PASS;
    }
    for i in 0..6 {
        f.swap(i, 6 + i);
    }
    let ip = ETH_HLEN + 12;
    for i in 0..4 {
        f.swap(ip + i, ip + 4 + i);
    }
    let tcp = ETH_HLEN + IPV4_HLEN;
    f.swap(tcp, tcp + 2);
    f.swap(tcp + 1, tcp + 3);
    xdp_action::XDP_TX
}

/// The shield's handling of an ACK (no SYN, no RST) in one of the orders compared:
/// `LOOKUP_FIRST`: socket lookup, then the cookie only for a listener (the shield's order);
/// otherwise: the cookie first, and a lookup only when it is not valid. `META`: write the
/// handoff metadata for a valid cookie. `VALID` is the verdict for a valid cookie (XDP_DROP
/// in live-frames runs, where XDP_PASS would feed the frame to the whole stack).
#[inline(always)]
fn ack_variant<const LOOKUP_FIRST: bool, const META: bool>(ctx: &XdpContext, valid: u32) -> u32 {
    let t = match parse::parse(ctx.data(), ctx.data_end()) {
        parse::Frame::Tcp(t) => t,
        _ => return xdp_action::XDP_PASS,
    };
    if t.flags & (TCP_SYN | TCP_RST) != 0 || t.flags & TCP_ACK == 0 {
        return xdp_action::XDP_PASS;
    }
    if LOOKUP_FIRST && sock::classify(ctx, &t) != sock::Sock::Listener {
        return xdp_action::XDP_PASS;
    }
    let o = parse::options(ctx.data(), ctx.data_end(), &t);
    match ack::check(&LabKeys, &t, &o) {
        ack::AckCheck::Valid(m) => {
            if META {
                ack::hand_to_tc(ctx, m);
            }
            valid
        }
        _ if LOOKUP_FIRST => xdp_action::XDP_DROP,
        // Cookie-first: a bad cookie is dropped only if a listener, not a connection, owns it.
        _ if sock::classify(ctx, &t) == sock::Sock::Listener => xdp_action::XDP_DROP,
        _ => xdp_action::XDP_PASS,
    }
}

#[xdp]
pub fn lab_ack_lookup_first(ctx: XdpContext) -> u32 {
    ack_variant::<true, false>(&ctx, xdp_action::XDP_PASS)
}

#[xdp]
pub fn lab_ack_cookie_first(ctx: XdpContext) -> u32 {
    ack_variant::<false, false>(&ctx, xdp_action::XDP_PASS)
}

#[xdp]
pub fn lab_ack_meta(ctx: XdpContext) -> u32 {
    ack_variant::<true, true>(&ctx, xdp_action::XDP_DROP)
}

#[xdp]
pub fn lab_ack_no_meta(ctx: XdpContext) -> u32 {
    ack_variant::<true, false>(&ctx, xdp_action::XDP_DROP)
}

/// TC side of a valid ACK, as the shield's `handoff` does it short of the kfunc call:
/// `RECHECK`: no metadata, so socket lookup + cookie check again; otherwise read the metadata.
/// Both then look the listener up once more and release it, as `handoff::assign` does.
#[inline(always)]
fn tc_variant<const RECHECK: bool>(ctx: &TcContext) -> i32 {
    let t = match parse::parse(ctx.data(), ctx.data_end()) {
        parse::Frame::Tcp(t) => t,
        _ => return TC_ACT_OK,
    };
    if t.flags & (TCP_SYN | TCP_RST) != 0 || t.flags & TCP_ACK == 0 {
        return TC_ACT_OK;
    }
    let skb = ctx.skb.skb;
    let ok = if RECHECK {
        sock::classify(ctx, &t) == sock::Sock::Listener
            && matches!(
                ack::check(
                    &LabKeys,
                    &t,
                    &parse::options(ctx.data(), ctx.data_end(), &t)
                ),
                ack::AckCheck::Valid(_)
            )
    } else {
        const LEN: usize = core::mem::size_of::<HandoffMeta>();
        // SAFETY: reading the context's packet pointers.
        let (meta, data) = unsafe { ((*skb).data_meta as usize, (*skb).data as usize) };
        // SAFETY: [meta, meta + LEN) checked against data first. Test runs bring no metadata;
        // the read is then skipped and the frame counts as carrying it (what is timed is the
        // rest of the path, which is the same).
        meta + LEN > data || unsafe { (*(meta as *const HandoffMeta)).magic } == HANDOFF_MAGIC
    };
    if ok {
        let sk = sock::lookup(ctx, &t);
        if !sk.is_null() {
            // SAFETY: a referenced socket from the lookup, released once.
            unsafe { aya_ebpf::helpers::bpf_sk_release(sk as *mut c_void) };
        }
    }
    TC_ACT_OK
}

#[classifier]
pub fn lab_tc_meta(ctx: TcContext) -> i32 {
    tc_variant::<false>(&ctx)
}

#[classifier]
pub fn lab_tc_recheck(ctx: TcContext) -> i32 {
    tc_variant::<true>(&ctx)
}

/// `lab_reflect` that counts what it sends back (the reflector scenario of the benchmark, where
/// it stands in for the shield on the server's veth; the shield counts its SYNs too).
#[xdp]
pub fn lab_reflect_count(ctx: XdpContext) -> u32 {
    let v = reflect(&ctx);
    if v == xdp_action::XDP_TX {
        maps::inc(LabCounter::Reflected);
    }
    v
}

/// The shield's SYN path, step by step, from its own modules: `CSUM` verifies the SYN's
/// checksum, `LOOKUP` asks whether a listener owns the port, `ANSWER` computes the cookie and
/// rewrites the frame into the SYN-ACK (otherwise, with `MAC`, the MAC alone is computed; the
/// frame is dropped). Without counters, port bitmap or the XDP entry's classification: what remains is
/// the work each step costs.
#[inline(always)]
fn syn_steps<const CSUM: bool, const LOOKUP: bool, const ANSWER: bool, const MAC: bool>(
    ctx: &XdpContext,
) -> u32 {
    let t = match parse::parse(ctx.data(), ctx.data_end()) {
        parse::Frame::Tcp(t) => t,
        _ => return xdp_action::XDP_PASS,
    };
    if t.flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN) != TCP_SYN {
        return xdp_action::XDP_PASS;
    }
    let Some(cfg) = maps::config() else {
        return xdp_action::XDP_PASS;
    };
    if CSUM && !synack::checksum(ctx.data(), ctx.data_end(), &t).accepted() {
        return xdp_action::XDP_DROP;
    }
    let Some(o) = maps::forget(parse::options(ctx.data(), ctx.data_end(), &t)) else {
        return xdp_action::XDP_PASS;
    };
    if LOOKUP && sock::classify(ctx, &t) != sock::Sock::Listener {
        return xdp_action::XDP_PASS;
    }
    if ANSWER {
        return match synack::answer(ctx, &LabKeys, cfg, &t, &o) {
            Some(synack::Syn::Sent) => xdp_action::XDP_TX,
            _ => xdp_action::XDP_PASS,
        };
    }
    if !MAC {
        return xdp_action::XDP_DROP;
    }
    let epoch = LabKeys.current_epoch();
    let Some(key) = LabKeys.key(cookie::slot_of_epoch(epoch)) else {
        return xdp_action::XDP_PASS;
    };
    let flow = t.flow();
    let a = SynAttrs {
        mss: o.mss.max(1460),
        wscale: o.wscale.unwrap_or(WSCALE_NONE),
        sack: o.sack_perm,
        ecn: false,
    };
    let Some(c) = cookie::encode(&key, &flow, t.seq, &a, o.ts.is_some()) else {
        return xdp_action::XDP_PASS;
    };
    // Keep the MAC (the optimizer would drop an unused one): through an opaque value.
    if parse::opaque(c.isn as usize ^ c.ts_word as usize) == 0 {
        return xdp_action::XDP_PASS;
    }
    xdp_action::XDP_DROP
}

/// Parse, checksum, options, listener lookup, cookie, SYN-ACK: the shield's SYN path.
#[xdp]
pub fn lab_syn_all(ctx: XdpContext) -> u32 {
    syn_steps::<true, true, true, true>(&ctx)
}

/// The same without the listener lookup.
#[xdp]
pub fn lab_syn_no_lookup(ctx: XdpContext) -> u32 {
    syn_steps::<true, false, true, true>(&ctx)
}

/// The same without verifying the SYN's checksum.
#[xdp]
pub fn lab_syn_no_csum(ctx: XdpContext) -> u32 {
    syn_steps::<false, true, true, true>(&ctx)
}

/// Parse and options, then the cookie's MAC alone (XDP_DROP: nothing is rewritten).
#[xdp]
pub fn lab_syn_mac(ctx: XdpContext) -> u32 {
    syn_steps::<false, false, false, true>(&ctx)
}

/// Parse and options alone (XDP_DROP): the baseline of `lab_syn_mac`.
#[xdp]
pub fn lab_syn_parse(ctx: XdpContext) -> u32 {
    syn_steps::<false, false, false, false>(&ctx)
}

/// Forgery odds, counted exactly: the shield's cookie check on this ACK as it is (the positive
/// control) or with try `i` of a sweep XORed into its cookie bits or its TSecr (`map::FORGE`):
/// a sweep over all values of N checked bits must let exactly one through.
#[xdp]
pub fn lab_forge_ack(ctx: XdpContext) -> u32 {
    let mut t = match parse::parse(ctx.data(), ctx.data_end()) {
        parse::Frame::Tcp(t) => t,
        _ => return xdp_action::XDP_ABORTED,
    };
    let mut o = parse::options(ctx.data(), ctx.data_end(), &t);
    let (mode, shift, i) = maps::forge_try();
    match mode {
        forge::SWEEP_COOKIE => {
            let cookie = t.ack.wrapping_sub(1) ^ i.checked_shl(shift).unwrap_or(0);
            t.ack = cookie.wrapping_add(1);
        }
        forge::SWEEP_TSECR => o.ts = o.ts.map(|(val, ecr)| (val, ecr ^ i)),
        _ => {}
    }
    maps::inc(LabCounter::ForgeTries);
    if let ack::AckCheck::Valid(_) = ack::check(&LabKeys, &t, &o) {
        maps::inc(LabCounter::Forged);
    }
    xdp_action::XDP_DROP
}
