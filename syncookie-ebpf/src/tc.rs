//! TC ingress: a cookie ACK checked by XDP becomes a connection through
//! `bpf_sk_assign_tcp_reqsk`; the kernel builds the child in cookie_bpf_check().

use aya_ebpf::{
    bindings::{__sk_buff, TC_ACT_OK, TC_ACT_UNSPEC, bpf_sock},
    programs::TcContext,
};
use aya_log_ebpf::warn;
use syncookie_common::{
    maps::{HANDOFF_MAGIC, HandoffMeta, ReqAttrs, flags},
    proto::*,
    stats::Counter,
};

use syncookie_ebpf::{
    ack::{self, AckCheck},
    parse::{self, Frame, Tcp},
    sock,
};

use crate::{
    maps::{self, PinnedKeys},
    stats,
};

unsafe extern "C" {
    /// kfunc (net/core/filter.c, Linux 6.9+). Linked by patching the call before load: see
    /// syncookie-user's `kfunc` module.
    fn bpf_sk_assign_tcp_reqsk(
        skb: *mut __sk_buff,
        sk: *mut bpf_sock,
        attrs: *mut ReqAttrs,
        attrs_sz: i32,
    ) -> i32;
}

#[inline(always)]
pub fn run(ctx: &TcContext) -> i32 {
    let c = handoff(ctx);
    if let Some(c) = c {
        stats::inc(c);
    }
    // Never drop here: XDP judged already; what we cannot hand off goes to the kernel as is.
    // TCX_NEXT (TC_ACT_UNSPEC) for all but a handoff, so that later TCX programs and legacy
    // clsact filters on the interface still see the traffic; TC_ACT_OK would end the chain.
    if c == Some(Counter::HandoffOk) {
        TC_ACT_OK
    } else {
        TC_ACT_UNSPEC
    }
}

#[inline(always)]
fn metadata(ctx: &TcContext) -> Option<HandoffMeta> {
    const LEN: usize = core::mem::size_of::<HandoffMeta>();
    let skb = ctx.skb.skb;
    // SAFETY: reading the context's packet pointers.
    let (meta, data) = unsafe { ((*skb).data_meta as usize, (*skb).data as usize) };
    if meta + LEN > data {
        return None;
    }
    // SAFETY: [meta, meta + LEN) checked against data above.
    let m = unsafe { *(meta as *const HandoffMeta) };
    (m.magic == HANDOFF_MAGIC).then_some(m)
}

#[inline(always)]
fn handoff(ctx: &TcContext) -> Option<Counter> {
    let t = match parse::parse(ctx.data(), ctx.data_end()) {
        Frame::Tcp(t) => t,
        _ => return None,
    };
    if t.flags & (TCP_SYN | TCP_RST) != 0 || t.flags & TCP_ACK == 0 {
        return None;
    }
    let cfg = maps::config()?;
    let m = match metadata(ctx) {
        Some(m) => m,
        None if (cfg.flags & flags::TC_RECHECK != 0 || maps::no_meta())
            && maps::port_protected(t.dport) =>
        {
            // No metadata can arrive: generic XDP, or a driver that prepares its XDP buffers
            // without metadata room (bpf_xdp_adjust_meta fails there; XDP noted it). Check the
            // cookie again (the lookup first, so established traffic costs one lookup, not a
            // MAC). Elsewhere a valid ACK always brings metadata: no lookup on every segment.
            if sock::classify(ctx, &t) != sock::Sock::Listener {
                return None;
            }
            let o = parse::options(ctx.data(), ctx.data_end(), &t);
            match ack::check(&PinnedKeys, &t, &o) {
                AckCheck::Valid(m) => m,
                _ => return None,
            }
        }
        None => return None,
    };
    let mut attrs = ack::req_attrs(cfg, &m);
    Some(assign(ctx, &t, &mut attrs))
}

#[inline(always)]
fn assign(ctx: &TcContext, t: &Tcp, attrs: &mut ReqAttrs) -> Counter {
    let Some(sk) = sock::find(ctx, t) else {
        return Counter::HandoffFailed;
    };
    if !sk.listening() {
        // The connection exists already (the bare ACK made it; this is the first data).
        return Counter::AckPassedSocket;
    }
    // The same handshake's ACK was handed off a moment ago in this receive batch: the stack
    // makes its socket before it reaches this segment (see `Handed`).
    let Some((slot, followed)) = maps::handed_slot(t) else {
        return Counter::HandoffFailed;
    };
    if followed {
        return Counter::HandoffFollowed;
    }
    let ret = match sk.tcp_sock() {
        // SAFETY: the kfunc with the skb, a referenced listener (held by `sk` until the end of
        // this function) and attributes of the size passed.
        Some(tp) => unsafe {
            bpf_sk_assign_tcp_reqsk(
                ctx.skb.skb,
                tp,
                attrs,
                core::mem::size_of::<ReqAttrs>() as i32,
            )
        },
        None => -1,
    };
    if ret == 0 {
        maps::note_handed(slot, t);
        return Counter::HandoffOk;
    }
    // Rare (a listener closing, a setting changed under us): the errno says which. Compiled
    // in, but a load-time constant level below `warn` makes the verifier drop it.
    warn!(
        ctx,
        "handoff refused: bpf_sk_assign_tcp_reqsk returned {} for port {}; the ACK goes to the kernel, which resets it",
        ret,
        t.dport
    );
    Counter::HandoffFailed
}
