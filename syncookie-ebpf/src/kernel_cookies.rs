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
//! back from TSecr less a per-host-pair offset XDP cannot know: our SYN-ACK offers the MSS only.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::{iphdr, tcphdr},
    helpers::{
        bpf_ktime_get_coarse_ns, bpf_sk_release, bpf_skc_to_mptcp_sock, bpf_tcp_check_syncookie,
        bpf_tcp_raw_check_syncookie_ipv4, bpf_tcp_raw_gen_syncookie_ipv4, bpf_xdp_adjust_tail,
    },
    macros::map,
    maps::{Array, LruHashMap},
    programs::XdpContext,
};
use syncookie_common::{
    maps::{
        Config, Mode,
        kernel_cookies::{
            DEFAULT_REFRESH_SECS, KC_CONF_LEN, KC_REFRESH_NS, REFRESH_ENTRIES, refresh_key,
        },
    },
    proto::*,
    stats::Counter,
};
use syncookie_ebpf::{
    csum::w32,
    local, martian,
    parse::{self, Frame, Tcp, opaque, read},
    sock::{self, TCP_NEW_SYN_RECV},
    synack::{self, Checksum, TcpHead},
};

use crate::{
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
pub fn run(ctx: &XdpContext) -> u32 {
    verdict::exit(judge(ctx))
}

#[inline(always)]
fn judge(ctx: &XdpContext) -> Judged {
    // The kernel's cookie helpers used here are IPv4's: IPv6 is left to the kernel.
    let ipv4_only = |t: &Tcp, _: &Config| {
        t.is_v6()
            .then_some((Verdict::Pass, Some(Counter::NotInspected)))
    };
    match verdict::classify(ctx, ipv4_only, Some) {
        Ok((Segment::Syn(t), cfg)) => syn(ctx, cfg, &t),
        Ok((Segment::Ack(t), cfg)) => handshake_ack(ctx, cfg, &t),
        Err(j) => j,
    }
}

#[inline(always)]
fn now_ns() -> u64 {
    // SAFETY: a helper call without arguments.
    unsafe { bpf_ktime_get_coarse_ns() }
}

/// What the SYN path decided while it held the listener.
enum SynPlan {
    Answer(u32),
    Done(Verdict, Counter),
}

#[inline(always)]
fn syn(ctx: &XdpContext, cfg: &Config, t: &Tcp) -> Judged {
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
    let sk = sock::lookup(ctx, t);
    if sk.is_null() {
        return (Verdict::Pass, Some(Counter::SynPassed));
    }
    let plan = syn_plan(ctx, cfg, t, mode, sk);
    // SAFETY: the reference the lookup took, released once.
    unsafe { bpf_sk_release(sk as *mut c_void) };
    let isn = match plan {
        SynPlan::Answer(isn) => isn,
        SynPlan::Done(v, c) => return (v, Some(c)),
    };
    match write_synack(ctx, cfg, t, isn) {
        Some(true) => (Verdict::Tx, Some(Counter::SynackSent)),
        Some(false) => (Verdict::Pass, Some(Counter::SynPassed)),
        None => (Verdict::Drop, Some(Counter::Malformed)),
    }
}

#[inline(always)]
fn syn_plan(
    ctx: &XdpContext,
    cfg: &Config,
    t: &Tcp,
    mode: Mode,
    sk: *mut aya_ebpf::bindings::bpf_sock,
) -> SynPlan {
    let (data, end) = (ctx.data(), ctx.data_end());
    // SAFETY: a non-null socket from the lookup, still referenced.
    if unsafe { (*sk).state } != TCP_LISTEN {
        return SynPlan::Done(Verdict::Pass, Counter::SynPassed);
    }
    // SAFETY: a referenced socket; the cast's result is only tested for null.
    if unsafe { !bpf_skc_to_mptcp_sock(sk as *mut c_void).is_null() } {
        return SynPlan::Done(Verdict::Pass, Counter::MptcpPassed);
    }
    if !local::for_this_host(&PinnedLocal, data, end, t) {
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
    let Some(isn) = gen_cookie(data, end, t) else {
        return SynPlan::Done(Verdict::Pass, Counter::SynPassed);
    };
    // The kernel answers this one with its own cookie and renews the stamp: periodically (so it
    // never lapses under steady traffic), and whenever it would refuse our cookie now.
    if refresh_due(t) || !kernel_would_accept(sk, data, end, t, isn) {
        mark_refreshed(t);
        return SynPlan::Done(Verdict::Pass, Counter::SynRefresh);
    }
    if !maps::take_synack_budget(cfg, maps::client_prefix(t)) {
        return SynPlan::Done(Verdict::Drop, Counter::SynDroppedBudget);
    }
    SynPlan::Answer(isn)
}

/// The kernel's cookie for the SYN `t`, computed as `tcp_conn_request()` would (from the
/// client's MSS option). `bpf_tcp_raw_gen_syncookie_ipv4` reads `th_len` bytes of header, a
/// length the verifier must know: one call per possible TCP header length.
#[inline(always)]
fn gen_cookie(data: usize, end: usize, t: &Tcp) -> Option<u32> {
    let (ip, th) = (opaque(data + t.l3_off), opaque(data + t.l4_off));
    if ip + IPV4_HLEN > end {
        return None;
    }
    macro_rules! by_len {
        ($($n:literal)+) => {
            match t.hlen {
                $($n => {
                    if th + $n > end {
                        return None;
                    }
                    // SAFETY: both headers lie inside the frame (checked above) and `$n` is the
                    // TCP header's own length, as the helper requires.
                    unsafe {
                        bpf_tcp_raw_gen_syncookie_ipv4(ip as *mut iphdr, th as *mut tcphdr, $n)
                    }
                })+
                _ => return None,
            }
        };
    }
    let v = by_len!(20 24 28 32 36 40 44 48 52 56 60);
    // The cookie is in the low 32 bits, the MSS it encodes above; negative: no SYN cookies.
    if v < 0 { None } else { Some(v as u32) }
}

/// Whether the kernel would take the ACK the client sends for `isn` now:
/// `bpf_tcp_check_syncookie` runs `cookie_v4_check()`'s own tests (tcp_syncookies, the
/// listener's overflow stamp, the cookie) on that ACK, built on the stack from the SYN.
#[inline(always)]
fn kernel_would_accept(
    sk: *mut aya_ebpf::bindings::bpf_sock,
    data: usize,
    end: usize,
    t: &Tcp,
    isn: u32,
) -> bool {
    let (Some(mut ip), Some(mut th)) = (
        read::<IPV4_HLEN>(data, end, t.l3_off),
        read::<TCP_HLEN>(data, end, t.l4_off),
    ) else {
        return false;
    };
    th[4..8].copy_from_slice(&t.seq.wrapping_add(1).to_be_bytes());
    th[8..12].copy_from_slice(&isn.wrapping_add(1).to_be_bytes());
    th[12] = ((TCP_HLEN / 4) as u8) << 4;
    th[13] = TCP_ACK;
    // SAFETY: a referenced listener; both headers are stack buffers of the sizes passed.
    let r = unsafe {
        bpf_tcp_check_syncookie(
            sk as *mut c_void,
            ip.as_mut_ptr() as *mut c_void,
            IPV4_HLEN as u32,
            th.as_mut_ptr() as *mut tcphdr,
            TCP_HLEN as u32,
        )
    };
    r == 0
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
    let key = refresh_key(t.daddr[0], t.dport);
    match SC_KC_REFRESH.get_ptr(key) {
        // SAFETY: a value of the map, valid while we run (another CPU may rewrite it: any time
        // it holds is a refresh's).
        Some(last) => now_ns().wrapping_sub(unsafe { *last }) >= refresh_period(),
        None => true,
    }
}

#[inline(always)]
fn mark_refreshed(t: &Tcp) {
    let key = refresh_key(t.daddr[0], t.dport);
    // A failed insert (a race with another CPU) only means one more refresh SYN.
    let _ = SC_KC_REFRESH.insert(key, now_ns(), 0);
}

#[inline(always)]
fn handshake_ack(ctx: &XdpContext, cfg: &Config, t: &Tcp) -> Judged {
    let (data, end) = (ctx.data(), ctx.data_end());
    let sk = sock::lookup(ctx, t);
    if sk.is_null() {
        return (Verdict::Pass, Some(Counter::AckNoListener));
    }
    // SAFETY: a non-null socket from the lookup, still referenced.
    let completes = unsafe { (*sk).state } == TCP_NEW_SYN_RECV;
    let judged = ack_with_listener(sk, data, end);
    // SAFETY: the reference the lookup took, released once.
    unsafe { bpf_sk_release(sk as *mut c_void) };
    match judged {
        AckJudged::NotListener(c) => {
            if completes {
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
    if !local::for_this_host(&PinnedLocal, data, end, t) {
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
fn ack_with_listener(sk: *mut aya_ebpf::bindings::bpf_sock, data: usize, end: usize) -> AckJudged {
    // SAFETY: a non-null socket from the lookup, still referenced.
    if unsafe { (*sk).state } != TCP_LISTEN {
        return AckJudged::NotListener(Counter::AckPassedSocket);
    }
    // SAFETY: a referenced socket; the cast's result is only tested for null.
    if unsafe { !bpf_skc_to_mptcp_sock(sk as *mut c_void).is_null() } {
        return AckJudged::NotListener(Counter::MptcpPassed);
    }
    let Frame::Tcp(t) = parse::parse(data, end) else {
        return AckJudged::Bad;
    };
    // Opaque: the bounds check must be made on the very registers passed to the helpers.
    let (ip, th) = (opaque(data + t.l3_off), opaque(data + t.l4_off));
    if ip + IPV4_HLEN > end || th + TCP_HLEN > end {
        return AckJudged::Bad;
    }
    // SAFETY: both headers lie inside the frame, checked above, with the helpers' fixed sizes.
    if unsafe { bpf_tcp_raw_check_syncookie_ipv4(ip as *mut iphdr, th as *mut tcphdr) } != 0 {
        return AckJudged::Bad;
    }
    // SAFETY: a referenced listener; headers as above.
    let accepted = unsafe {
        bpf_tcp_check_syncookie(
            sk as *mut c_void,
            ip as *mut c_void,
            IPV4_HLEN as u32,
            th as *mut tcphdr,
            TCP_HLEN as u32,
        )
    } == 0;
    AckJudged::Valid { accepted }
}

/// Turns the SYN into the SYN-ACK the kernel would send with this cookie when it cannot encode
/// options in timestamps: MSS only, the kernel's window, TTL, IP ID 0, DF, full checksums.
/// `Some(false)`: the frame could not be resized (untouched, the kernel gets it); `None`: it was
/// resized but not rewritten whole.
#[inline(always)]
fn write_synack(ctx: &XdpContext, cfg: &Config, t: &Tcp, isn: u32) -> Option<bool> {
    let (data, end) = (ctx.data(), ctx.data_end());
    let macs = read::<12>(data, end, 0)?;
    let tcp_len = TCP_HLEN + 4;
    let l4_off = t.l3_off + IPV4_HLEN;
    let new_len = l4_off + tcp_len;
    let delta = new_len as i32 - (end - data) as i32;
    // SAFETY: helper call on our own context; all packet pointers are re-derived below.
    if delta != 0 && unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta) } != 0 {
        return Some(false);
    }
    let (data, end) = (ctx.data(), ctx.data_end());
    synack::write_macs(data, end, &macs)?;
    synack::write_ipv4(data, end, cfg, t, tcp_len)?;
    let mss = 0x0204_0000 | cfg.mss_v4 as u32;
    let head = TcpHead {
        isn,
        flags: TCP_SYN | TCP_ACK,
        len: tcp_len,
        window: cfg.window,
    };
    synack::write_tcp(data, end, l4_off, t, &head, w32(mss))?;
    synack::write_word(data, end, l4_off + TCP_HLEN, mss)?;
    Some(true)
}
