//! Benchmark programs (`cargo xtask bench`, tests/src/bin/bench.rs): counters for the kernel's
//! scenarios, the reflector, the flood, and the shield's own modules in the orders compared.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_get_prandom_u32,
    macros::{classifier, map, xdp},
    maps::Array,
    programs::{TcContext, XdpContext},
};
use syncookie_common::proto::*;

use crate::{ack, maps, parse, read, sock, synack};

use aya_ebpf::{bindings::TC_ACT_OK as TC_OK, maps::PerCpuArray};
use syncookie_common::maps::{HANDOFF_MAGIC, HandoffMeta};

/// Per-CPU bench counters (indices `BENCH_*`).
#[map]
static LAB_BENCH: PerCpuArray<u64> = PerCpuArray::with_max_entries(8, 0);
/// SYNs seen by `lab_count_syn`.
const BENCH_SYN: u32 = 0;
/// SYN-ACKs to the spoofed range dropped by `lab_sink`.
const BENCH_SINK_SYNACK: u32 = 1;
/// Other frames to the spoofed range dropped by `lab_sink` (RSTs, retransmissions...).
const BENCH_SINK_OTHER: u32 = 2;
/// SYNs sent by `lab_flood_syn`.
const BENCH_FLOOD: u32 = 3;
/// Frames sent back by `lab_reflect_count`.
const BENCH_REFLECT: u32 = 4;

#[inline(always)]
fn bench_inc(i: u32) {
    if let Some(p) = LAB_BENCH.get_ptr_mut(i) {
        // SAFETY: this CPU's slot; nothing else writes it while we run.
        unsafe { *p += 1 };
    }
}

/// Ethernet + 20-byte IPv4 + the first 14 bytes of TCP (through the flags), read at once.
const HDR: usize = ETH_HLEN + IPV4_HLEN + 14;

#[inline(always)]
fn ipv4_tcp(h: &[u8; HDR]) -> bool {
    u16::from_be_bytes([h[12], h[13]]) == ETH_P_IP
        && h[ETH_HLEN] == 0x45
        && h[ETH_HLEN + 9] == IPPROTO_TCP
}

#[xdp]
pub fn lab_count_syn(ctx: XdpContext) -> u32 {
    if let Some(h) = read::<HDR>(ctx.data(), ctx.data_end(), 0)
        && ipv4_tcp(&h)
        && h[HDR - 1] & (TCP_SYN | TCP_ACK | TCP_RST) == TCP_SYN
    {
        bench_inc(BENCH_SYN);
    }
    xdp_action::XDP_PASS
}

#[xdp]
pub fn lab_sink(ctx: XdpContext) -> u32 {
    let Some(h) = read::<HDR>(ctx.data(), ctx.data_end(), 0) else {
        return xdp_action::XDP_PASS;
    };
    let ip = ETH_HLEN;
    if u16::from_be_bytes([h[12], h[13]]) != ETH_P_IP || h[ip + 16] != 198 || h[ip + 17] != 18 {
        return xdp_action::XDP_PASS;
    }
    let synack = ipv4_tcp(&h) && h[HDR - 1] & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK;
    bench_inc(if synack {
        BENCH_SINK_SYNACK
    } else {
        BENCH_SINK_OTHER
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
    let c = ctx.ctx as *mut c_void;
    if LOOKUP_FIRST && sock::classify(c, &t) != sock::Sock::Listener {
        return xdp_action::XDP_PASS;
    }
    let o = parse::options(ctx.data(), ctx.data_end(), &t);
    match ack::check(&t, &o) {
        ack::AckCheck::Valid(m) => {
            if META {
                ack::hand_to_tc(ctx, m);
            }
            valid
        }
        _ if LOOKUP_FIRST => xdp_action::XDP_DROP,
        // Cookie-first: a bad cookie is dropped only if a listener, not a connection, owns it.
        _ if sock::classify(c, &t) == sock::Sock::Listener => xdp_action::XDP_DROP,
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
        _ => return TC_OK,
    };
    if t.flags & (TCP_SYN | TCP_RST) != 0 || t.flags & TCP_ACK == 0 {
        return TC_OK;
    }
    let skb = ctx.skb.skb;
    let ok = if RECHECK {
        sock::classify(skb as *mut c_void, &t) == sock::Sock::Listener
            && matches!(
                ack::check(&t, &parse::options(ctx.data(), ctx.data_end(), &t)),
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
        let sk = sock::lookup(skb as *mut c_void, &t);
        if !sk.is_null() {
            // SAFETY: a referenced socket from the lookup, released once.
            unsafe { aya_ebpf::helpers::bpf_sk_release(sk as *mut c_void) };
        }
    }
    TC_OK
}

#[classifier]
pub fn lab_tc_meta(ctx: TcContext) -> i32 {
    tc_variant::<false>(&ctx)
}

#[classifier]
pub fn lab_tc_recheck(ctx: TcContext) -> i32 {
    tc_variant::<true>(&ctx)
}

/// Length of the SYN template (`tests/src/flood.rs` `syn_template`: Ethernet, IPv4, TCP with
/// MSS, SACK-permitted, timestamps, NOP, window scale).
const SYN_LEN: usize = ETH_HLEN + IPV4_HLEN + TCP_HLEN + 20;

/// `[0]`: the SYN template, written by userspace (the first `SYN_LEN` bytes count).
#[map]
static LAB_TEMPLATE: Array<[u8; 80]> = Array::with_max_entries(1, 0);

/// `[0]`: the program `lab_syn_fresh` hands the fresh SYN to.
#[map]
static LAB_JMP: aya_ebpf::maps::ProgramArray = aya_ebpf::maps::ProgramArray::with_max_entries(1, 0);

/// Writes the whole SYN template over the frame. In live-frames test runs the pages are
/// recycled with whatever the last program and receiver left in them (a SYN answered with
/// XDP_TX comes back as our SYN-ACK): only the frame's bounds are reset, not its bytes.
#[inline(always)]
fn restore_syn(ctx: &XdpContext) -> Option<usize> {
    let data = ctx.data();
    if data + SYN_LEN > ctx.data_end() {
        return None;
    }
    let t = LAB_TEMPLATE.get(0)?;
    // SAFETY: [data, data + SYN_LEN) is in the frame (checked above); the template is a map
    // value of at least SYN_LEN bytes.
    unsafe { *(data as *mut [u8; SYN_LEN]) = *(t.as_ptr() as *const [u8; SYN_LEN]) };
    Some(data)
}

/// The flood: every frame sent is the SYN template with a random source address (in the
/// template's /16), port and ISN, whatever the page held before (live-frames pages come back
/// with the receiver's reply in them).
#[xdp]
pub fn lab_flood_syn(ctx: XdpContext) -> u32 {
    let Some(data) = restore_syn(&ctx) else {
        return xdp_action::XDP_ABORTED;
    };
    const IP: usize = ETH_HLEN;
    const TCP: usize = ETH_HLEN + IPV4_HLEN;
    // SAFETY: restore_syn checked [data, data + SYN_LEN), which covers both headers.
    let f = unsafe { &mut *(data as *mut [u8; SYN_LEN]) };
    // SAFETY: helper calls without arguments.
    let (r, r2) = unsafe { (bpf_get_prandom_u32(), bpf_get_prandom_u32()) };
    let be = |f: &[u8; SYN_LEN], i: usize| u16::from_be_bytes([f[i], f[i + 1]]);
    let put = |f: &mut [u8; SYN_LEN], i: usize, v: u16| {
        let [a, b] = v.to_be_bytes();
        f[i] = a;
        f[i + 1] = b;
    };
    let mut ipc = be(f, IP + 10);
    let mut tc = be(f, TCP + 16);
    // (offset, new value): source address low half, source port, the two ISN halves.
    let fields = [
        (IP + 14, (r >> 16) as u16),
        (TCP, (r as u16) | 1024),
        (TCP + 4, r2 as u16),
        (TCP + 6, (r2 >> 16) as u16),
    ];
    for (k, (at, new)) in fields.into_iter().enumerate() {
        let old = be(f, at);
        if k == 0 {
            ipc = csum_update(ipc, old, new);
        }
        tc = csum_update(tc, old, new);
        put(f, at, new);
    }
    put(f, IP + 10, ipc);
    put(f, TCP + 16, tc);
    bench_inc(BENCH_FLOOD);
    xdp_action::XDP_TX
}

/// For timing a rewriting program in live-frames mode: restores the SYN template, then
/// tail-calls `LAB_JMP[0]` (the shield's XDP program, or `lab_reflect`).
#[xdp]
pub fn lab_syn_fresh(ctx: XdpContext) -> u32 {
    if restore_syn(&ctx).is_none() {
        return xdp_action::XDP_ABORTED;
    }
    // SAFETY: a tail call with our own context; it does not return on success.
    unsafe { LAB_JMP.tail_call(&ctx, 0) };
    xdp_action::XDP_ABORTED
}

/// `lab_reflect` that counts what it sends back (the reflector scenario of the benchmark, where
/// it stands in for the shield on the server's veth; the shield counts its SYNs too).
#[xdp]
pub fn lab_reflect_count(ctx: XdpContext) -> u32 {
    let v = reflect(&ctx);
    if v == xdp_action::XDP_TX {
        bench_inc(BENCH_REFLECT);
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
    if CSUM && synack::checksum_ok(ctx.data(), ctx.data_end(), &t) != Some(true) {
        return xdp_action::XDP_DROP;
    }
    let o = parse::options(ctx.data(), ctx.data_end(), &t);
    if LOOKUP && sock::classify(ctx.ctx as *mut c_void, &t) != sock::Sock::Listener {
        return xdp_action::XDP_PASS;
    }
    if ANSWER {
        return match synack::answer(ctx, cfg, &t, &o) {
            Some(synack::Syn::Sent) => xdp_action::XDP_TX,
            _ => xdp_action::XDP_PASS,
        };
    }
    if !MAC {
        return xdp_action::XDP_DROP;
    }
    let epoch = maps::current_epoch();
    let slot = syncookie_common::cookie::slot_of_epoch(epoch);
    let Some(key) = maps::key(slot) else {
        return xdp_action::XDP_PASS;
    };
    let flow = syncookie_common::cookie::Flow::v4(t.saddr, t.daddr, t.sport, t.dport);
    let a = syncookie_common::cookie::SynAttrs {
        mss_idx: 3,
        wscale: o.wscale.unwrap_or(syncookie_common::cookie::WSCALE_NONE),
        sack: o.sack_perm,
        ecn: false,
    };
    let c = syncookie_common::cookie::encode(&key, slot, &flow, t.seq, &a, o.ts.is_some());
    // Keep the MAC (the optimizer would drop an unused one): through an opaque value.
    if parse::opaque(c.isn as usize ^ c.ts_bits as usize) == 0 {
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

#[inline(always)]
fn fold(mut s: u32) -> u16 {
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// RFC 1624 incremental update of checksum `c` for a 16-bit field changing from `old` to `new`.
#[inline(always)]
fn csum_update(c: u16, old: u16, new: u16) -> u16 {
    !fold(!c as u32 + !old as u32 + new as u32)
}
