//! Live-frames programs (`BPF_PROG_TEST_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES`): the spoofed
//! SYN flood, and a fresh SYN in front of a rewriting program being timed. Live-frames pages
//! are recycled with whatever the last program and receiver left in them (a SYN answered with
//! XDP_TX comes back as our SYN-ACK): only the frame's bounds are reset, not its bytes, so
//! both write the whole SYN template every time.

use aya_ebpf::{
    bindings::xdp_action, helpers::bpf_get_prandom_u32, macros::xdp, programs::XdpContext,
};
use syncookie_common::{
    lab::{LabCounter, SYN_LEN, SYN6_LEN},
    proto::*,
};
use syncookie_ebpf::csum::fold;

use crate::maps::{self, LAB_JMP, LAB_TEMPLATE};

/// Writes the first `N` bytes of SYN template `at` over the frame; returns the frame's start.
#[inline(always)]
fn restore_syn<const N: usize>(ctx: &XdpContext, at: u32) -> Option<usize> {
    let data = ctx.data();
    if data + N > ctx.data_end() {
        return None;
    }
    let t = LAB_TEMPLATE.get(at)?;
    const { assert!(N <= syncookie_common::lab::TEMPLATE_SIZE) };
    // SAFETY: [data, data + N) is in the frame (checked above); the template is a map value of
    // at least N bytes (asserted).
    unsafe { *(data as *mut [u8; N]) = *(t.as_ptr() as *const [u8; N]) };
    Some(data)
}

/// RFC 1624 incremental update of checksum `c` for a 16-bit field changing from `old` to `new`.
#[inline(always)]
fn csum_update(c: u16, old: u16, new: u16) -> u16 {
    !fold(!c as u64 + !old as u64 + new as u64)
}

/// The flood: every frame sent is the SYN template with a random source address (in the
/// template's /16), port and ISN.
#[xdp]
pub fn lab_flood_syn(ctx: XdpContext) -> u32 {
    let Some(data) = restore_syn::<SYN_LEN>(&ctx, 0) else {
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
    maps::inc(LabCounter::Flood);
    xdp_action::XDP_TX
}

/// The IPv6 flood: the IPv6 SYN template with a random low 32 bits of the source address, a
/// random port and ISN (no IP checksum in IPv6; the TCP one is updated for each).
#[xdp]
pub fn lab_flood_syn6(ctx: XdpContext) -> u32 {
    let Some(data) = restore_syn::<SYN6_LEN>(&ctx, 0) else {
        return xdp_action::XDP_ABORTED;
    };
    const IP: usize = ETH_HLEN;
    const TCP: usize = ETH_HLEN + IPV6_HLEN;
    // SAFETY: restore_syn checked [data, data + SYN6_LEN), which covers both headers.
    let f = unsafe { &mut *(data as *mut [u8; SYN6_LEN]) };
    // SAFETY: helper calls without arguments.
    let (r, r2, r3) = unsafe {
        (
            bpf_get_prandom_u32(),
            bpf_get_prandom_u32(),
            bpf_get_prandom_u32(),
        )
    };
    let mut tc = u16::from_be_bytes([f[TCP + 16], f[TCP + 17]]);
    // (offset, new value): the source address's last 32 bits, source port, the ISN.
    let fields = [
        (IP + 20, (r >> 16) as u16),
        (IP + 22, r as u16),
        (TCP, (r3 as u16) | 1024),
        (TCP + 4, r2 as u16),
        (TCP + 6, (r2 >> 16) as u16),
    ];
    for (at, new) in fields {
        let old = u16::from_be_bytes([f[at], f[at + 1]]);
        tc = csum_update(tc, old, new);
        [f[at], f[at + 1]] = new.to_be_bytes();
    }
    [f[TCP + 16], f[TCP + 17]] = tc.to_be_bytes();
    maps::inc(LabCounter::Flood);
    xdp_action::XDP_TX
}

/// For timing a rewriting program in live-frames mode: restores the SYN template, then
/// tail-calls `LAB_JMP[0]` (the shield's XDP program, or `lab_reflect`).
#[xdp]
pub fn lab_syn_fresh(ctx: XdpContext) -> u32 {
    fresh::<SYN_LEN>(&ctx, 0)
}

/// [`lab_syn_fresh`] with the IPv6 SYN (template 1).
#[xdp]
pub fn lab_syn_fresh6(ctx: XdpContext) -> u32 {
    fresh::<SYN6_LEN>(&ctx, 1)
}

#[inline(always)]
fn fresh<const N: usize>(ctx: &XdpContext, at: u32) -> u32 {
    if restore_syn::<N>(ctx, at).is_none() {
        return xdp_action::XDP_ABORTED;
    }
    // SAFETY: a tail call with our own context; it does not return on success.
    unsafe { LAB_JMP.tail_call(ctx, 0) };
    xdp_action::XDP_ABORTED
}
