//! The XDP entry of full mode: the shield's own cookies, SYN-ACKs with the client's options,
//! cookie ACKs handed to TC. The first look at a frame and the exit are `verdict`'s.

use aya_ebpf::programs::XdpContext;
use aya_log_ebpf::info;
use syncookie_common::{
    maps::{Config, Mode, flags, stage},
    stats::Counter,
};

use syncookie_ebpf::{
    ack::{self, AckCheck},
    local,
    parse::{self, Options, Tcp},
    sock::{self, Sock},
    synack::{self, Syn},
};

use crate::{
    maps::{self, PinnedKeys, PinnedLocal},
    skip::skipped,
    syn_steps,
    verdict::{self, Judged, Segment, Verdict},
};

#[inline(always)]
pub fn run(ctx: &XdpContext) -> u32 {
    verdict::exit(judge(ctx))
}

#[inline(always)]
fn judge(ctx: &XdpContext) -> Judged {
    let ipv6_off = |t: &Tcp, cfg: &Config| {
        // IPv6 is disabled on the interface: the kernel drops these, not we.
        (t.is_v6() && cfg.flags & flags::IPV6 == 0)
            .then_some((Verdict::Pass, Some(Counter::NotInspected)))
    };
    match verdict::classify(ctx, ipv6_off, |t| maps::one_state(&t)) {
        Ok((Segment::Syn(t), cfg)) => syn(ctx, cfg, &t),
        Ok((Segment::Ack(t), cfg)) => handshake_ack(ctx, cfg, &t),
        Err(j) => j,
    }
}

#[inline(always)]
fn syn(ctx: &XdpContext, cfg: &Config, t: &Tcp) -> Judged {
    match syn_checks(ctx, cfg, t) {
        Ok(o) => answer(ctx, cfg, t, &o),
        Err(j) => j,
    }
}

/// Every check before the SYN-ACK: the options it echoes, or the kernel's SYN and why.
#[inline(always)]
fn syn_checks(ctx: &XdpContext, cfg: &Config, t: &Tcp) -> Result<Options, Judged> {
    let mode = syn_steps::seen(cfg)?;
    syn_steps::checksum(ctx, t)?;
    let o = if skipped(stage::OPTIONS) {
        Options {
            mss: 1460,
            wscale: Some(7),
            sack_perm: true,
            ts: Some((1, 0)),
            ..Options::default()
        }
    } else {
        syn_steps::options(ctx, t, maps::forget)?
    };
    syn_steps::martian(ctx, t)?;
    let pass = |c| (Verdict::Pass, Some(c));
    if !skipped(stage::LOOKUP) {
        syn_steps::listener(sock::classify(ctx, t), Counter::SynPassed).map_err(pass)?;
    }
    syn_steps::for_this_host(ctx, t).map_err(pass)?;
    if mode == Mode::Monitor {
        return Err(pass(Counter::MonitorSynack));
    }
    // The client's /24 or /48: one victim of spoofed SYNs gets at most its budget of SYN-ACKs.
    if !skipped(stage::BUDGET) && !maps::take_synack_budget(cfg, maps::client_prefix(t)) {
        return Err((Verdict::Drop, Some(Counter::SynDroppedBudget)));
    }
    Ok(o)
}

#[inline(always)]
fn answer(ctx: &XdpContext, cfg: &Config, t: &Tcp, o: &Options) -> Judged {
    match synack::answer(ctx, &PinnedKeys, cfg, t, o) {
        Some(Syn::Sent) => {
            if !skipped(stage::RESEND) {
                maps::remember_synack(ctx, t);
            }
            (Verdict::Tx, Some(Counter::SynackSent))
        }
        Some(Syn::Pass) => (Verdict::Pass, Some(Counter::SynPassed)),
        Some(Syn::SmallMss) => (Verdict::Pass, Some(Counter::SynSmallMss)),
        // The frame was resized but could not be rewritten whole: never let it out half-done.
        None => (Verdict::Drop, Some(Counter::Malformed)),
    }
}

#[inline(always)]
fn handshake_ack(ctx: &XdpContext, cfg: &Config, t: &Tcp) -> Judged {
    // Held to the end: a bad ACK asks the same listener about the kernel's own cookies.
    let sk = if skipped(stage::LOOKUP) {
        None
    } else {
        let Some(sk) = sock::find(ctx, t) else {
            return (Verdict::Pass, Some(Counter::AckNoListener));
        };
        if let Err(c) = syn_steps::listener(sk.kind(), Counter::AckPassedSocket) {
            // The kernel's own handshake completes: for `auto`, one SYN answered.
            if sk.kind() == Sock::Request {
                maps::auto_completed(cfg);
            }
            return (Verdict::Pass, Some(c));
        }
        Some(sk)
    };
    let o = parse::options(ctx.data(), ctx.data_end(), t);
    let Some(o) = maps::forget(o) else {
        return (Verdict::Pass, Some(Counter::AckPassedSocket));
    };
    let dropped = match ack::check(&PinnedKeys, t, &o) {
        AckCheck::Valid(m) => {
            if !skipped(stage::RESEND) {
                maps::synack_acked(t);
            }
            // A completed handshake: its SYN-ACK is not held against the client's prefix, nor
            // counted towards `auto`'s evidence of a flood.
            if !skipped(stage::BUDGET) {
                maps::refund_synack_budget(cfg, maps::client_prefix(t));
                maps::auto_completed(cfg);
            }
            if !skipped(stage::METADATA) && !ack::hand_to_tc(ctx, m) && !maps::no_meta() {
                // Once per attach: from now on TC checks cookies itself.
                info!(
                    ctx,
                    "the driver gives XDP no room for metadata: TC will check cookie ACKs itself"
                );
                maps::set_no_meta();
            }
            return (Verdict::Pass, Some(Counter::AckValid));
        }
        AckCheck::Expired => Counter::AckExpired,
        AckCheck::Bad => Counter::AckBadCookie,
    };
    // Locality: another host's flow (forwarded or bridged) is not ours to drop.
    if !local::for_this_host(
        &PinnedLocal,
        ctx.data(),
        ctx.data_end(),
        t,
        verdict::from_lo(ctx),
    ) {
        return (Verdict::Pass, Some(Counter::NotLocal));
    }
    // Not one of ours. The kernel's own cookie (for a SYN we left to it) is its to check.
    if sk
        .as_ref()
        .is_some_and(|sk| sk.kernel_cookie_ok(ctx.data(), ctx.data_end(), t))
    {
        return (Verdict::Pass, Some(Counter::AckKernelCookie));
    }
    if cfg.mode == Mode::Monitor as u8 {
        return (Verdict::Pass, Some(Counter::MonitorDrop));
    }
    // Without us the kernel would reset it: a client with a stale cookie learns at once. Within
    // a budget only, so that an ACK flood neither reaches the stack nor makes us a reflector.
    if maps::take_reset_budget(cfg.rst_per_sec) {
        return (Verdict::Pass, Some(Counter::AckReset));
    }
    (Verdict::Drop, Some(dropped))
}
