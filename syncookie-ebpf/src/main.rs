//! syncookie's eBPF programs: `syncookie_xdp` answers SYNs with cookie SYN-ACKs and checks the
//! cookie in handshake ACKs; `syncookie_tc` turns checked ACKs into kernel connections. The
//! packet code they share with the lab lives in the library (`src/lib.rs`).
#![no_std]
#![no_main]

mod kc_cookie;
mod kc_synack;
mod kernel_cookies;
mod maps;
mod stats;
mod tc;
mod verdict;
mod xdp;

use aya_ebpf::{
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};

syncookie_ebpf::license!();

#[xdp]
pub fn syncookie_xdp(ctx: XdpContext) -> u32 {
    xdp::run(&ctx)
}

/// Kernel-cookie mode (kernels without the kfunc): the kernel's own cookies, no TC program.
#[xdp]
pub fn syncookie_kc_xdp(ctx: XdpContext) -> u32 {
    kernel_cookies::run(&ctx)
}

/// Kernel-cookie mode's SYN-ACK with every option, tail-called from `syncookie_kc_xdp`.
#[xdp]
pub fn syncookie_kc_synack(ctx: XdpContext) -> u32 {
    kc_synack::run(&ctx)
}

#[classifier]
pub fn syncookie_tc(ctx: TcContext) -> i32 {
    tc::run(&ctx)
}
