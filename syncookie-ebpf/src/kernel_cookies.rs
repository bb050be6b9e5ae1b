//! Kernel-cookie mode (`syncookie_kc_xdp`), for kernels without `bpf_sk_assign_tcp_reqsk`
//! (6.0-6.8): SYNs are answered with the kernel's own SYN cookies
//! (`bpf_tcp_raw_gen_syncookie_ipv4`), handshake ACKs are checked with
//! `bpf_tcp_raw_check_syncookie_ipv4` (forged ones dropped before the stack, as in full mode),
//! and valid ones go to the kernel, which makes the connection itself in `cookie_v4_check()`.
//!
//! That check refuses cookies unless the listener's overflow stamp is under two minutes old
//! (`tcp_synq_no_recent_overflow()`), and only the kernel's own cookie path renews it
//! (`cookie_init_sequence()`; with tcp_syncookies=2, for every SYN it answers). So one SYN per
//! local address and port every refresh period goes to the kernel, and so does any SYN while the
//! stamp is stale: `bpf_tcp_check_syncookie` on the listener, given the ACK the client would
//! send for our cookie, says exactly whether the kernel would take it (a new listener after a
//! service restart has no stamp yet: its first SYNs go to the kernel until it has one).
//!
//! The kernel's cookies carry only the MSS unless timestamps carry the rest, and it reads them
//! back from TSecr less a per-host-pair offset XDP cannot know, except with tcp_timestamps=2,
//! where the offset is 0: then (`flags::KERNEL_TS`, set by the daemon when the admin allows it)
//! our SYN-ACK carries every option in the kernel's own timestamp cookie; else the MSS only.
//!
//! On 5.x ([`kc_listener`]) the cookie is made on the listener, which stamps it: no refresh
//! SYNs, and MPTCP listeners are taken as plain ones (their clients fall back to plain TCP).

use aya_ebpf::programs::XdpContext;
use syncookie_common::{
    maps::{Config, Mode, flags},
    stats::Counter,
};
use syncookie_ebpf::{
    local,
    parse::{self, Frame, Tcp},
    sock::{self, Found, Sock},
};

use crate::{
    kc_cookie, kc_listener,
    kc_synack::{self, Echo, write_synack},
    maps::{self, PinnedLocal, kernel_cookies as kc_maps},
    stats, syn_steps,
    verdict::{self, Judged, Segment, Verdict},
};

#[inline(always)]
/// `TAIL`: whether SYN-ACKs with every option go through the tail call to
/// `syncookie_kc_synack`. Not in libxdp's dispatcher: the kernel refuses an `freplace` program
/// with a tail call (BPF_PROG_LOAD EINVAL on 6.1), so there the SYN-ACK carries the MSS only.
pub fn run<const TAIL: bool>(ctx: &XdpContext) -> u32 {
    verdict::exit(judge::<TAIL>(ctx))
}

#[inline(always)]
fn judge<const TAIL: bool>(ctx: &XdpContext) -> Judged {
    let ipv6_off = |t: &Tcp, cfg: &Config| {
        // IPv6 is disabled on the interface: the kernel drops these, not we.
        (t.is_v6() && cfg.flags & flags::IPV6 == 0)
            .then_some((Verdict::Pass, Some(Counter::NotInspected)))
    };
    match verdict::classify(ctx, ipv6_off, |t| maps::one_state(&t)) {
        Ok((Segment::Syn(t), cfg)) => syn::<TAIL>(ctx, cfg, &t),
        Ok((Segment::Ack(t), cfg)) => handshake_ack(ctx, cfg, &t),
        Err(j) => j,
    }
}

/// What the SYN path decided while it held the listener.
enum SynPlan {
    Answer(u32),
    Done(Verdict, Counter),
}

#[inline(always)]
fn syn<const TAIL: bool>(ctx: &XdpContext, cfg: &Config, t: &Tcp) -> Judged {
    let mode = match syn_checks(ctx, cfg, t) {
        Ok(mode) => mode,
        Err(j) => return j,
    };
    let Some(sk) = sock::find(ctx, t) else {
        return (Verdict::Pass, Some(Counter::SynPassed));
    };
    let plan = syn_plan(ctx, cfg, t, mode, &sk);
    // Released before the SYN-ACK is written.
    drop(sk);
    let isn = match plan {
        SynPlan::Answer(isn) => isn,
        SynPlan::Done(v, c) => return (v, Some(c)),
    };
    if TAIL && cfg.flags & flags::KERNEL_TS != 0 {
        // The options ride in the timestamp cookie: `syncookie_kc_synack` writes that SYN-ACK.
        // It does not return; if it cannot be called, the kernel answers the SYN.
        kc_synack::hand_over(ctx, isn);
        return (Verdict::Pass, Some(Counter::SynPassed));
    }
    match write_synack(ctx, cfg, t, Echo::MSS_ONLY, isn) {
        Some(true) => (Verdict::Tx, Some(Counter::SynackSent)),
        Some(false) => (Verdict::Pass, Some(Counter::SynPassed)),
        None => (Verdict::Drop, Some(Counter::Malformed)),
    }
}

/// The checks before the listener's: the mode, or the kernel's SYN and why. The options are
/// read again where the SYN-ACK is written.
#[inline(always)]
fn syn_checks(ctx: &XdpContext, cfg: &Config, t: &Tcp) -> Result<Mode, Judged> {
    let mode = syn_steps::seen(cfg)?;
    syn_steps::checksum(ctx, t)?;
    syn_steps::martian(ctx, t)?;
    syn_steps::options(ctx, t, Some)?;
    Ok(mode)
}

#[inline(always)]
fn syn_plan(ctx: &XdpContext, cfg: &Config, t: &Tcp, mode: Mode, sk: &Found) -> SynPlan {
    let (data, end) = (ctx.data(), ctx.data_end());
    let done = |c| SynPlan::Done(Verdict::Pass, c);
    if let Err(c) = syn_steps::listener(sk.kind_with(!kc_listener::on()), Counter::SynPassed)
        .and_then(|()| syn_steps::for_this_host(ctx, t))
    {
        return done(c);
    }
    if mode == Mode::Monitor {
        return done(Counter::MonitorSynack);
    }
    let Some(isn) = kc_cookie::make(sk.as_ptr(), data, end, t) else {
        return done(Counter::SynPassed);
    };
    // The kernel answers this one with its own cookie and renews the stamp: periodically (so it
    // never lapses under steady traffic), and whenever it would refuse our cookie now. On 5.x
    // making the cookie renewed it.
    if !kc_listener::on()
        && (kc_maps::refresh_due(t)
            || !kc_cookie::kernel_would_accept(sk.as_ptr(), data, end, t, isn))
    {
        kc_maps::mark_refreshed(t);
        return done(Counter::SynRefresh);
    }
    if !maps::take_synack_budget(cfg, maps::client_prefix(t)) {
        return SynPlan::Done(Verdict::Drop, Counter::SynDroppedBudget);
    }
    SynPlan::Answer(isn)
}

#[inline(always)]
fn handshake_ack(ctx: &XdpContext, cfg: &Config, t: &Tcp) -> Judged {
    let (data, end) = (ctx.data(), ctx.data_end());
    let Some(sk) = sock::find(ctx, t) else {
        return (Verdict::Pass, Some(Counter::AckNoListener));
    };
    let kind = sk.kind_with(!kc_listener::on());
    let judged = ack_with_listener(&sk, kind, data, end);
    drop(sk);
    match judged {
        AckJudged::NotListener(c) => {
            // The kernel's own handshake completes: for `auto`, one SYN answered.
            if kind == Sock::Request {
                maps::auto_completed(cfg);
            }
            return (Verdict::Pass, Some(c));
        }
        AckJudged::Valid { accepted } => {
            maps::auto_completed(cfg);
            stats::inc(if accepted {
                Counter::HandoffOk
            } else {
                Counter::HandoffFailed
            });
            return (Verdict::Pass, Some(Counter::AckValid));
        }
        AckJudged::Bad => {}
    }
    if !local::for_this_host(&PinnedLocal, data, end, t, verdict::from_lo(ctx)) {
        return (Verdict::Pass, Some(Counter::NotLocal));
    }
    if cfg.mode == Mode::Monitor as u8 {
        return (Verdict::Pass, Some(Counter::MonitorDrop));
    }
    if maps::take_reset_budget(cfg.rst_per_sec) {
        return (Verdict::Pass, Some(Counter::AckReset));
    }
    (Verdict::Drop, Some(Counter::AckBadCookie))
}

enum AckJudged {
    NotListener(Counter),
    /// A valid kernel cookie; `accepted`: the kernel's own check takes it now.
    Valid {
        accepted: bool,
    },
    Bad,
}

#[inline(always)]
fn ack_with_listener(sk: &Found, kind: Sock, data: usize, end: usize) -> AckJudged {
    if let Err(c) = syn_steps::listener(kind, Counter::AckPassedSocket) {
        return AckJudged::NotListener(c);
    }
    let Frame::Tcp(t) = parse::parse(data, end) else {
        return AckJudged::Bad;
    };
    let Some(accepted) = kc_cookie::check_ack(sk.as_ptr(), data, end, &t) else {
        return AckJudged::Bad;
    };
    AckJudged::Valid { accepted }
}
