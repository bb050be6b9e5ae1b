//! The XDP entry: classify the frame, act, and count the reason at one exit point.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use syncookie_common::{proto::*, stats::Counter};

use syncookie_ebpf::{
    ack::{self, AckCheck},
    local,
    parse::{self, Frame, Tcp},
    sock::{self, Sock},
    synack::{self, Syn},
};

use crate::{
    maps::{self, PinnedKeys, PinnedLocal},
    stats,
};

/// One verdict type inside; translated to `XDP_*` only here.
#[derive(Clone, Copy)]
enum Verdict {
    Pass,
    Drop,
    Tx,
}

#[inline(always)]
pub fn run(ctx: &XdpContext) -> u32 {
    let (v, why) = judge(ctx);
    if let Some(c) = why {
        stats::inc(c);
    }
    match v {
        Verdict::Pass => xdp_action::XDP_PASS,
        Verdict::Drop => xdp_action::XDP_DROP,
        Verdict::Tx => xdp_action::XDP_TX,
    }
}

#[inline(always)]
fn judge(ctx: &XdpContext) -> (Verdict, Option<Counter>) {
    let t = match parse::parse(ctx.data(), ctx.data_end()) {
        Frame::Tcp(t) => t,
        Frame::Other => return (Verdict::Pass, None),
        Frame::NotInspected => return (Verdict::Pass, Some(Counter::NotInspected)),
        Frame::Malformed(port) if maps::port_protected(port) => {
            return (Verdict::Drop, Some(Counter::Malformed));
        }
        Frame::Malformed(_) => return (Verdict::Pass, None),
    };
    if !maps::port_protected(t.dport) {
        return (Verdict::Pass, None);
    }
    let Some(cfg) = maps::config() else {
        return (Verdict::Pass, None);
    };
    let f = t.flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN);
    if f == TCP_SYN {
        return syn(ctx, cfg, &t);
    }
    if t.flags & (TCP_SYN | TCP_RST) == 0 && t.flags & TCP_ACK != 0 {
        return handshake_ack(ctx, &t);
    }
    // RST, SYN-ACK, bare FIN...: the kernel's business.
    (Verdict::Pass, None)
}

#[inline(always)]
fn syn(
    ctx: &XdpContext,
    cfg: &syncookie_common::maps::Config,
    t: &Tcp,
) -> (Verdict, Option<Counter>) {
    stats::inc(Counter::SynSeen);
    match synack::checksum_ok(ctx.data(), ctx.data_end(), t) {
        Some(true) => {}
        Some(false) => return (Verdict::Drop, Some(Counter::SynBadChecksum)),
        None => return (Verdict::Pass, Some(Counter::SynPassed)),
    }
    let o = parse::options(ctx.data(), ctx.data_end(), t);
    if o.kernel_only || sock::classify(ctx, t) != Sock::Listener {
        return (Verdict::Pass, Some(Counter::SynPassed));
    }
    // Locality: a wildcard listener matches any destination; answer only for this host.
    if !local::for_this_host(&PinnedLocal, ctx.data(), ctx.data_end(), t) {
        return (Verdict::Pass, Some(Counter::NotLocal));
    }
    match synack::answer(ctx, &PinnedKeys, cfg, t, &o) {
        Some(Syn::Sent) => (Verdict::Tx, Some(Counter::SynackSent)),
        Some(Syn::Pass) => (Verdict::Pass, Some(Counter::SynPassed)),
        // The frame was resized but could not be rewritten whole: never let it out half-done.
        None => (Verdict::Drop, Some(Counter::Malformed)),
    }
}

#[inline(always)]
fn handshake_ack(ctx: &XdpContext, t: &Tcp) -> (Verdict, Option<Counter>) {
    match sock::classify(ctx, t) {
        Sock::None => return (Verdict::Pass, Some(Counter::AckNoListener)),
        Sock::Other => return (Verdict::Pass, Some(Counter::AckPassedSocket)),
        Sock::Listener => {}
    }
    let o = parse::options(ctx.data(), ctx.data_end(), t);
    match ack::check(&PinnedKeys, t, &o) {
        AckCheck::Valid(m) => {
            ack::hand_to_tc(ctx, m);
            (Verdict::Pass, Some(Counter::AckValid))
        }
        // Locality: another host's flow (forwarded or bridged) is not ours to drop.
        _ if !local::for_this_host(&PinnedLocal, ctx.data(), ctx.data_end(), t) => {
            (Verdict::Pass, Some(Counter::NotLocal))
        }
        AckCheck::Expired => (Verdict::Drop, Some(Counter::AckExpired)),
        AckCheck::Bad => (Verdict::Drop, Some(Counter::AckBadCookie)),
    }
}
