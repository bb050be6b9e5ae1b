//! The steps of the SYN path both XDP programs (full and kernel-cookie mode) take, each
//! returning what it leaves to the kernel and why, so that the two modes decide alike: a SYN
//! either mode passes, the other passes with the same counter.

use aya_ebpf::programs::XdpContext;
use syncookie_common::{
    maps::{Config, Mode, stage},
    stats::Counter,
};
use syncookie_ebpf::{
    local, martian,
    parse::{self, Options, Tcp},
    sock::Sock,
    synack::{self, Checksum},
};

use crate::{
    maps::{self, PinnedLocal},
    skip::skipped,
    stats,
    verdict::{self, Judged, Verdict},
};

/// Counts the SYN; the mode it is judged in, or, in `auto`'s quiet times, the kernel's own
/// handshake, untouched.
#[inline(always)]
pub fn seen(cfg: &Config) -> Result<Mode, Judged> {
    stats::inc(Counter::SynSeen);
    let mode = Mode::from_u8(cfg.mode).unwrap_or(Mode::Always);
    if mode == Mode::Auto && !maps::auto_engaged(cfg) {
        return Err((Verdict::Pass, Some(Counter::SynIdle)));
    }
    Ok(mode)
}

/// The kernel drops a SYN with a wrong checksum, and checks the ones the driver left unchecked
/// itself.
#[inline(always)]
pub fn checksum(ctx: &XdpContext, t: &Tcp) -> Result<(), Judged> {
    if skipped(stage::CHECKSUM) {
        return Ok(());
    }
    match synack::checksum(ctx.data(), ctx.data_end(), t) {
        Checksum::Valid | Checksum::Partial => Ok(()),
        Checksum::Wrong => Err((Verdict::Pass, Some(Counter::SynBadChecksum))),
        Checksum::Unchecked => Err((Verdict::Pass, Some(Counter::SynPassed))),
    }
}

/// The SYN's options, or the kernel's SYN: options only it handles (MD5, AO, MPTCP), or bytes
/// past the walk's bound. `settle` runs between the walk and the check of what it left (full
/// mode passes the options through its scratch map there; `None`: pass the SYN).
#[inline(always)]
pub fn options(
    ctx: &XdpContext,
    t: &Tcp,
    settle: impl FnOnce(Options) -> Option<Options>,
) -> Result<Options, Judged> {
    let (data, end) = (ctx.data(), ctx.data_end());
    let o = parse::options(data, end, t);
    if o.kernel_only {
        return Err((Verdict::Pass, Some(Counter::SynPassed)));
    }
    let Some(o) = settle(o) else {
        return Err((Verdict::Pass, Some(Counter::SynPassed)));
    };
    if parse::past_the_walk(data, end, t, &o) {
        return Err((Verdict::Pass, Some(Counter::SynOptionsUnwalked)));
    }
    Ok(o)
}

/// What the kernel drops before TCP (martian sources, bad IPv4 headers, source routes) or
/// answers with IP options of its own: the kernel's.
#[inline(always)]
pub fn martian(ctx: &XdpContext, t: &Tcp) -> Result<(), Judged> {
    if skipped(stage::MARTIAN) {
        return Ok(());
    }
    match martian::refused(ctx.data(), ctx.data_end(), t, verdict::from_lo(ctx)) {
        Some(why) => Err((Verdict::Pass, Some(why))),
        None => Ok(()),
    }
}

/// Whether the socket a segment found is a listener the shield answers for; else the counter
/// that says why the kernel gets it (`other`: no socket, an established one, a request).
#[inline(always)]
pub fn listener(kind: Sock, other: Counter) -> Result<(), Counter> {
    match kind {
        Sock::Listener => Ok(()),
        Sock::MptcpListener => Err(Counter::MptcpPassed),
        Sock::None | Sock::Other | Sock::Request => Err(other),
    }
}

/// Whether the SYN is this host's to answer: a wildcard listener matches any destination, so
/// the destination must be local; a remote frame may not claim a local source, nor one
/// rp_filter refuses. `Err`: the kernel's, and why.
#[inline(always)]
pub fn for_this_host(ctx: &XdpContext, t: &Tcp) -> Result<(), Counter> {
    if skipped(stage::LOCALITY) {
        return Ok(());
    }
    let from_lo = verdict::from_lo(ctx);
    if !local::for_this_host(&PinnedLocal, ctx.data(), ctx.data_end(), t, from_lo) {
        return Err(Counter::NotLocal);
    }
    if !from_lo && local::from_this_host(&PinnedLocal, t) {
        return Err(Counter::Martian);
    }
    if !from_lo && local::reverse_path_refused(&PinnedLocal, t) {
        return Err(Counter::RpFiltered);
    }
    Ok(())
}
