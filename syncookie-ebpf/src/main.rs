//! syncookie's eBPF programs: `syncookie_xdp` answers SYNs with cookie SYN-ACKs and checks the
//! cookie in handshake ACKs; `syncookie_tc` turns checked ACKs into kernel connections. The
//! packet code they share with the lab lives in the library (`src/lib.rs`).
#![no_std]
#![no_main]

mod kc_cookie;
mod kc_listener;
mod kc_synack;
mod kernel_cookies;
mod maps;
mod skip;
mod stats;
mod syn_steps;
mod tc;
mod verdict;
mod xdp;

use aya_ebpf::{
    bindings::xdp_md,
    macros::classifier,
    programs::{TcContext, XdpContext},
};

syncookie_ebpf::license!();

// Each XDP program twice: as itself, and as an `freplace` extension for a slot of libxdp's
// multi-program dispatcher (the kernel checks that an extension's signature matches the
// function it replaces, `int prog0(struct xdp_md *ctx)`; aya-ebpf 0.2 has no macro for the
// section). Both entries call one out-of-line body, as `#[xdp]`'s entry does: with the body
// inlined twice, LLVM outlined a closure of the ACK path and the XDP program went over the
// verifier's stack limit ("combined stack size of 3 calls is 544").

#[unsafe(no_mangle)]
#[unsafe(link_section = "xdp")]
pub fn syncookie_xdp(ctx: *mut xdp_md) -> u32 {
    shield(ctx)
}

#[unsafe(no_mangle)]
#[unsafe(link_section = "freplace")]
pub fn syncookie_ext(ctx: *mut xdp_md) -> u32 {
    shield(ctx)
}

#[inline(never)]
fn shield(ctx: *mut xdp_md) -> u32 {
    xdp::run(&XdpContext::new(ctx))
}

/// Kernel-cookie mode (kernels without the kfunc): the kernel's own cookies, no TC program.
#[unsafe(no_mangle)]
#[unsafe(link_section = "xdp")]
pub fn syncookie_kc_xdp(ctx: *mut xdp_md) -> u32 {
    kernel_cookies::run::<true>(&XdpContext::new(ctx))
}

#[unsafe(no_mangle)]
#[unsafe(link_section = "freplace")]
pub fn syncookie_kcext(ctx: *mut xdp_md) -> u32 {
    // Inlined into both entries, as `#[xdp]` left it: out of line, Linux 6.1 counted one call
    // level more and refused it ("combined stack size of 3 calls is 544").
    kernel_cookies::run::<false>(&XdpContext::new(ctx))
}

/// Kernel-cookie mode's SYN-ACK with every option, tail-called from `syncookie_kc_xdp`.
#[unsafe(no_mangle)]
#[unsafe(link_section = "xdp")]
pub fn syncookie_kc_synack(ctx: *mut xdp_md) -> u32 {
    kc_synack::run(&XdpContext::new(ctx))
}

#[classifier]
pub fn syncookie_tc(ctx: TcContext) -> i32 {
    tc::run(&ctx)
}
