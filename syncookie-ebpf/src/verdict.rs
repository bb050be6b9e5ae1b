//! What both XDP programs (full and kernel-cookie mode) share: the verdict, the single exit point
//! that counts its reason, and the first look at a frame (parsed, to a protected port, a SYN or
//! a handshake ACK) before each mode's own judgement.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use syncookie_common::{
    maps::{Config, Mode, stage},
    proto::*,
    stats::Counter,
};
use syncookie_ebpf::parse::{self, Frame, Tcp};

use crate::{maps, skip::skipped, stats};

/// One verdict type inside; translated to `XDP_*` only in [`exit`]. A word wide: as a byte,
/// LLVM may merge its store with a neighbour's into one misaligned stack store, which the
/// verifier refuses.
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum Verdict {
    Pass,
    Drop,
    Tx,
}

/// A verdict and the counter that says why (none for frames that are not ours to count).
pub type Judged = (Verdict, Option<Counter>);

/// The program's exit: counts the reason (once per packet, only here) and returns the action.
#[inline(always)]
pub fn exit((v, why): Judged) -> u32 {
    if let Some(c) = why
        && !skipped(stage::COUNTERS)
    {
        stats::inc(c);
    }
    match v {
        Verdict::Pass => xdp_action::XDP_PASS,
        Verdict::Drop => xdp_action::XDP_DROP,
        Verdict::Tx => xdp_action::XDP_TX,
    }
}

/// A segment to a protected port that the mode judges itself.
pub enum Segment {
    Syn(Tcp),
    /// ACK without SYN or RST: a handshake's last step, or any later segment.
    Ack(Tcp),
}

/// The first look at a frame: the segment and the config for the mode to judge, or the
/// verdict already (not TCP, another port, malformed, RST/SYN-ACK/bare FIN, or what `family`
/// refuses: the mode's IP families). `prepare` turns the segment into what the mode judges
/// (`None`: pass it), before SYNs and ACKs part ways.
#[inline(always)]
pub fn classify(
    ctx: &XdpContext,
    family: impl FnOnce(&Tcp, &Config) -> Option<Judged>,
    prepare: impl FnOnce(Tcp) -> Option<Tcp>,
) -> Result<(Segment, &'static Config), Judged> {
    let t = match parse::parse(ctx.data(), ctx.data_end()) {
        Frame::Tcp(t) => t,
        Frame::Other => return Err((Verdict::Pass, None)),
        Frame::NotInspected => return Err((Verdict::Pass, Some(Counter::NotInspected))),
        Frame::Malformed(port) if maps::port_protected(port) => {
            return Err(match maps::config() {
                Some(c) if c.mode == Mode::Monitor as u8 => {
                    (Verdict::Pass, Some(Counter::MonitorDrop))
                }
                _ => (Verdict::Drop, Some(Counter::Malformed)),
            });
        }
        Frame::Malformed(_) => return Err((Verdict::Pass, None)),
    };
    if !maps::port_protected(t.dport) {
        return Err((Verdict::Pass, None));
    }
    let Some(cfg) = maps::config() else {
        return Err((Verdict::Pass, None));
    };
    if let Some(j) = family(&t, cfg) {
        return Err(j);
    }
    let Some(t) = prepare(t) else {
        return Err((Verdict::Pass, None));
    };
    if t.flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN) == TCP_SYN {
        return Ok((Segment::Syn(t), cfg));
    }
    if t.flags & (TCP_SYN | TCP_RST) == 0 && t.flags & TCP_ACK != 0 {
        return Ok((Segment::Ack(t), cfg));
    }
    // RST, SYN-ACK, bare FIN...: the kernel's business.
    Err((Verdict::Pass, None))
}

/// Whether the frame came in on the loopback device: the kernel routes none of its traffic on
/// input, so its sources are never martian.
#[inline(always)]
pub fn from_lo(ctx: &XdpContext) -> bool {
    // SAFETY: a read of the context's own field.
    unsafe { (*ctx.ctx).ingress_ifindex == LOOPBACK_IFINDEX }
}
