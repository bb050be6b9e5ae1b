//! Kernel-cookie mode's SYN-ACK: the one the kernel would send with its own cookie, with every
//! option in the kernel's timestamp cookie where tcp_timestamps=2 allows it. That one is written
//! by a program of its own (`syncookie_kc_synack`), tail-called with the parsed SYN and the
//! cookie: the option walk, checked by the verifier inside the main program, took it past its
//! budget on 6.1.

use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, bpf_xdp_adjust_tail},
    programs::XdpContext,
};
use syncookie_common::{
    cookie::WSCALE_NONE,
    kernel_ts,
    maps::{Config, flags},
    proto::*,
    stats::Counter,
};
use syncookie_ebpf::{
    parse::{self, Options, Tcp, read},
    synack::{self, TcpHead},
    tcpopts::OptionWords,
};

use crate::{
    maps::{
        self,
        kernel_cookies::{SC_KC_SCRATCH, SC_KC_TAIL, SCRATCH_ISN},
    },
    verdict::{self, Judged, Segment, Verdict},
};

/// Tail-calls `syncookie_kc_synack` for this SYN with the kernel's cookie `isn`; returns only
/// when that program is not there.
#[inline(always)]
pub fn hand_over(ctx: &XdpContext, isn: u32) {
    let Some(slot) = SC_KC_SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's slot, read back by the tail call within this same run.
    unsafe { (*slot)[SCRATCH_ISN] = isn };
    // SAFETY: our own context and program array; a failed call falls through.
    unsafe { SC_KC_TAIL.tail_call(ctx, 0) };
}

/// `syncookie_kc_synack`: the SYN-ACK with the options of the SYN the main program judged
/// (parsed again here: cheaper on the BPF stack than handing the parsed headers over).
#[inline(always)]
pub fn run(ctx: &XdpContext) -> u32 {
    verdict::exit(answer(ctx))
}

#[inline(always)]
fn answer(ctx: &XdpContext) -> Judged {
    let Some(isn) = SC_KC_SCRATCH.get(0).map(|s| s[SCRATCH_ISN]) else {
        return (Verdict::Pass, Some(Counter::SynPassed));
    };
    let no_filter = |_: &Tcp, _: &Config| None;
    let (t, cfg) = match verdict::classify(ctx, no_filter, |t| maps::one_state(&t)) {
        Ok((Segment::Syn(t), cfg)) => (t, cfg),
        // Not what the main program judged a SYN: never, the frame is the same.
        _ => return (Verdict::Pass, Some(Counter::SynPassed)),
    };
    // Its options' values defined on every path: 5.10's verifier needs it (see there).
    let o = parse::options_defined(ctx.data(), ctx.data_end(), &t);
    // The options as one unknown word: one path through the writer per kind of SYN-ACK.
    let Some(echo) = maps::forget(Echo::of(cfg, &t, &o)) else {
        return (Verdict::Pass, Some(Counter::SynPassed));
    };
    match write_synack(ctx, cfg, &t, echo, isn) {
        Some(true) => (Verdict::Tx, Some(Counter::SynackSent)),
        Some(false) => (Verdict::Pass, Some(Counter::SynPassed)),
        None => (Verdict::Drop, Some(Counter::Malformed)),
    }
}

/// What the SYN-ACK echoes of the SYN's options: 0 (the MSS only), or with tcp_timestamps=2
/// (`flags::KERNEL_TS`) and a client that offers timestamps, the timestamp cookie's option
/// bits (0-5), [`Echo::STAMPS`], and the client's TSval (bits 32-63).
#[derive(Clone, Copy)]
pub struct Echo(u64);

impl Echo {
    const STAMPS: u64 = 1 << 6;
    /// The MSS only, as without tcp_timestamps=2.
    pub const MSS_ONLY: Self = Self(0);

    #[inline(always)]
    pub fn of(cfg: &Config, t: &Tcp, o: &Options) -> Self {
        let (a, ts) = synack::offered(cfg, t, o);
        match o.ts {
            Some((tsval, _)) if ts && cfg.flags & flags::KERNEL_TS != 0 => {
                Self(((tsval as u64) << 32) | Self::STAMPS | kernel_ts::options(&a) as u64)
            }
            _ => Self(0),
        }
    }
}

/// Turns the SYN into the SYN-ACK the kernel would send with this cookie: the kernel's window,
/// TTL, IP ID 0, DF, full checksums, and its options: with `echo`'s timestamps every option,
/// the kernel's own timestamp cookie in TSval (`kernel_ts`), else the MSS only (the kernel
/// drops the rest of a cookie SYN's options without timestamps, `tcp_conn_request()`).
/// `Some(false)`: the frame could not be resized (untouched, the kernel gets it); `None`: it was
/// resized but not rewritten whole.
#[inline(always)]
pub fn write_synack(ctx: &XdpContext, cfg: &Config, t: &Tcp, echo: Echo, isn: u32) -> Option<bool> {
    let (data, end) = (ctx.data(), ctx.data_end());
    let macs = read::<12>(data, end, 0)?;
    let v6 = t.is_v6();
    let mss = if v6 { cfg.mss_v6 } else { cfg.mss_v4 };
    let ts = echo.0 & Echo::STAMPS != 0;
    let (opts, window, tcp_flags) = if ts {
        let bits = echo.0 as u32 & 0x3f;
        // The window scale is ours, the one cookie_v4_check()/cookie_v6_check() recompute for the listener
        // (tcp_select_initial_window(), as the kernel's own SYN-ACK has it); the cookie
        // carries the client's.
        let wscale = (bits & 0xf != WSCALE_NONE as u32).then_some(cfg.wscale);
        // SAFETY: a helper call without arguments.
        let now = unsafe { bpf_ktime_get_ns() };
        let stamps = (kernel_ts::tsval(now, bits), (echo.0 >> 32) as u32);
        let opts = OptionWords::new(mss, bits & 0x10 != 0, wscale, Some(stamps));
        let ece = if bits & 0x20 != 0 { TCP_ECE } else { 0 };
        (opts, synack::window(cfg, v6, true), TCP_SYN | TCP_ACK | ece)
    } else {
        let opts = OptionWords::new(mss, false, None, None);
        (opts, synack::window(cfg, v6, false), TCP_SYN | TCP_ACK)
    };
    let tcp_len = TCP_HLEN + 4 * opts.words;
    let l4_off = t.l3_off() + if v6 { IPV6_HLEN } else { IPV4_HLEN };
    let new_len = l4_off + tcp_len;
    let delta = new_len as i32 - (end - data) as i32;
    // SAFETY: helper call on our own context; all packet pointers are re-derived below.
    if delta != 0 && unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta) } != 0 {
        return Some(false);
    }
    let (data, end) = (ctx.data(), ctx.data_end());
    synack::write_macs(data, end, &macs)?;
    if v6 {
        synack::write_ipv6(data, end, cfg, t, tcp_len)?;
    } else {
        synack::write_ipv4(data, end, cfg, t, tcp_len)?;
    }
    let head = TcpHead {
        isn,
        flags: tcp_flags,
        len: tcp_len,
        window,
    };
    synack::write_tcp(data, end, l4_off, t, &head, opts.sum())?;
    opts.write(data, end, l4_off + TCP_HLEN)?;
    Some(true)
}
