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

use aya_ebpf::{
    macros::map,
    maps::{Array, LruHashMap},
    programs::XdpContext,
};
use syncookie_common::{
    maps::{
        Config, Mode, flags,
        kernel_cookies::{
            DEFAULT_REFRESH_SECS, KC_CONF_LEN, KC_REFRESH_NS, REFRESH_ENTRIES, refresh_key,
        },
    },
    stats::Counter,
};
use syncookie_ebpf::{
    local, martian,
    parse::{self, Frame, Tcp},
    sock::{self, Found, Sock},
    synack::{self, Checksum},
};

use crate::{
    kc_cookie, kc_listener,
    kc_synack::{self, Echo, write_synack},
    maps::{self, PinnedLocal},
    stats,
    verdict::{self, Judged, Segment, Verdict},
};

/// `SC_KC_CONF[KC_REFRESH_NS]`: nanoseconds between refresh SYNs (0: the default).
#[map]
pub static SC_KC_CONF: Array<u64> = Array::with_max_entries(KC_CONF_LEN, 0);
/// When a SYN last went to the kernel, per destination address and port.
#[map]
pub static SC_KC_REFRESH: LruHashMap<u64, u64> = LruHashMap::with_max_entries(REFRESH_ENTRIES, 0);

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

#[inline(always)]
fn now_ns() -> u64 {
    kc_listener::coarse_ns()
}

/// What the SYN path decided while it held the listener.
enum SynPlan {
    Answer(u32),
    Done(Verdict, Counter),
}

#[inline(always)]
fn syn<const TAIL: bool>(ctx: &XdpContext, cfg: &Config, t: &Tcp) -> Judged {
    stats::inc(Counter::SynSeen);
    let mode = Mode::from_u8(cfg.mode).unwrap_or(Mode::Always);
    if mode == Mode::Auto && !maps::auto_engaged(cfg) {
        return (Verdict::Pass, Some(Counter::SynIdle));
    }
    let (data, end) = (ctx.data(), ctx.data_end());
    match synack::checksum(data, end, t) {
        Checksum::Valid | Checksum::Partial => {}
        Checksum::Wrong => return (Verdict::Pass, Some(Counter::SynBadChecksum)),
        Checksum::Unchecked => return (Verdict::Pass, Some(Counter::SynPassed)),
    }
    // What the kernel drops before TCP, or answers with IP options of its own: the kernel's.
    if let Some(why) = martian::refused(data, end, t, verdict::from_lo(ctx)) {
        return (Verdict::Pass, Some(why));
    }
    let o = parse::options(data, end, t);
    if o.kernel_only {
        return (Verdict::Pass, Some(Counter::SynPassed));
    }
    if parse::past_the_walk(data, end, t, &o) {
        return (Verdict::Pass, Some(Counter::SynOptionsUnwalked));
    }
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

#[inline(always)]
fn syn_plan(ctx: &XdpContext, cfg: &Config, t: &Tcp, mode: Mode, sk: &Found) -> SynPlan {
    let (data, end) = (ctx.data(), ctx.data_end());
    match sk.kind_with(!kc_listener::on()) {
        Sock::Listener => {}
        Sock::MptcpListener => return SynPlan::Done(Verdict::Pass, Counter::MptcpPassed),
        Sock::None | Sock::Other | Sock::Request => {
            return SynPlan::Done(Verdict::Pass, Counter::SynPassed);
        }
    }
    if !local::for_this_host(&PinnedLocal, data, end, t, verdict::from_lo(ctx)) {
        return SynPlan::Done(Verdict::Pass, Counter::NotLocal);
    }
    if !verdict::from_lo(ctx) && local::from_this_host(&PinnedLocal, t) {
        return SynPlan::Done(Verdict::Pass, Counter::Martian);
    }
    if !verdict::from_lo(ctx) && local::reverse_path_refused(&PinnedLocal, t) {
        return SynPlan::Done(Verdict::Pass, Counter::RpFiltered);
    }
    if mode == Mode::Monitor {
        return SynPlan::Done(Verdict::Pass, Counter::MonitorSynack);
    }
    let Some(isn) = kc_cookie::make(sk.as_ptr(), data, end, t) else {
        return SynPlan::Done(Verdict::Pass, Counter::SynPassed);
    };
    // The kernel answers this one with its own cookie and renews the stamp: periodically (so it
    // never lapses under steady traffic), and whenever it would refuse our cookie now. On 5.x
    // making the cookie renewed it.
    if !kc_listener::on()
        && (refresh_due(t) || !kc_cookie::kernel_would_accept(sk.as_ptr(), data, end, t, isn))
    {
        mark_refreshed(t);
        return SynPlan::Done(Verdict::Pass, Counter::SynRefresh);
    }
    if !maps::take_synack_budget(cfg, maps::client_prefix(t)) {
        return SynPlan::Done(Verdict::Drop, Counter::SynDroppedBudget);
    }
    SynPlan::Answer(isn)
}

#[inline(always)]
fn refresh_period() -> u64 {
    match SC_KC_CONF.get(KC_REFRESH_NS) {
        Some(&ns) if ns != 0 => ns,
        _ => DEFAULT_REFRESH_SECS * 1_000_000_000,
    }
}

/// Whether a refresh SYN to this address and port is due (none passed yet, or one period ago).
#[inline(always)]
fn refresh_due(t: &Tcp) -> bool {
    let key = refresh_key(&t.daddr, t.dport);
    match SC_KC_REFRESH.get_ptr(key) {
        // SAFETY: a value of the map, valid while we run (another CPU may rewrite it: any time
        // it holds is a refresh's).
        Some(last) => now_ns().wrapping_sub(unsafe { *last }) >= refresh_period(),
        None => true,
    }
}

#[inline(always)]
fn mark_refreshed(t: &Tcp) {
    let key = refresh_key(&t.daddr, t.dport);
    // A failed insert (a race with another CPU) only means one more refresh SYN.
    let _ = SC_KC_REFRESH.insert(key, now_ns(), 0);
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
    match kind {
        Sock::Listener => {}
        Sock::MptcpListener => return AckJudged::NotListener(Counter::MptcpPassed),
        Sock::None | Sock::Other | Sock::Request => {
            return AckJudged::NotListener(Counter::AckPassedSocket);
        }
    }
    let Frame::Tcp(t) = parse::parse(data, end) else {
        return AckJudged::Bad;
    };
    let Some(accepted) = kc_cookie::check_ack(sk.as_ptr(), data, end, &t) else {
        return AckJudged::Bad;
    };
    AckJudged::Valid { accepted }
}
