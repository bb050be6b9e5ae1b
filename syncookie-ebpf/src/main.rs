//! syncookie's eBPF programs: `syncookie_xdp` answers SYNs with cookie SYN-ACKs and checks the
//! cookie in handshake ACKs; `syncookie_tc` turns checked ACKs into kernel connections.
#![no_std]
#![no_main]
// For `parse::opaque`, an empty asm barrier that keeps LLVM from rewriting bounds checks.
#![feature(asm_experimental_arch)]

mod ack;
mod csum;
mod handoff;
mod maps;
mod parse;
mod rt;
mod sock;
mod stats;
mod synack;
mod verdict;

use aya_ebpf::{
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};

#[xdp]
pub fn syncookie_xdp(ctx: XdpContext) -> u32 {
    verdict::xdp(&ctx)
}

#[classifier]
pub fn syncookie_tc(ctx: TcContext) -> i32 {
    handoff::tc(&ctx)
}
