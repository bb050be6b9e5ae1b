//! Programs for the test lab, never attached by the shield itself:
//! - `lab_pass`: XDP pass-all for the veth peer (XDP_TX on a veth needs a program on the peer);
//! - `lab_drop_ack`: TC egress that drops the next N bare ACKs to a port (a lost handshake ACK);
//! - `lab_count_synack`: TC egress that counts the SYN-ACKs a host's own stack sends (XDP_TX
//!   frames never pass TC egress, so this sees only the kernel's);
//! - `lab_flood_syn` (below): XDP for live-frames test runs: writes a SYN template over the frame,
//!   randomizes its source address, port and ISN and transmits it (a spoofed SYN flood, only
//!   inside the lab).
//!
//! Benchmark programs (`cargo xtask bench`), in `bench.rs`:
//! - `lab_count_syn`: XDP pass-all that counts the SYNs arriving (kernel scenarios);
//! - `lab_sink`: XDP on the attacker's side: drops what is sent back to the spoofed range
//!   (198.18.0.0/16) and counts the SYN-ACKs among it;
//! - `lab_reflect`: the minimal XDP reflector (swap MACs, addresses, ports; XDP_TX) the SYN
//!   path is compared with;
//! - `lab_ack_*`, `lab_tc_*`: the shield's own parse / socket-lookup / cookie-check code (its
//!   modules, included unchanged) arranged in the orders the benchmark compares: lookup-first
//!   against cookie-first for ACKs, XDP metadata against a second cookie check in TC.
#![no_std]
#![no_main]
// For the included `parse::opaque`, an empty asm barrier (see syncookie-ebpf/src/parse.rs).
#![feature(asm_experimental_arch)]

use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_SHOT, xdp_action},
    macros::{classifier, map, xdp},
    maps::Array,
    programs::{TcContext, XdpContext},
};
use syncookie_common::proto::*;

#[xdp]
pub fn lab_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// `[0]`: bare ACKs still to drop; `[1]`: their destination port; `[2]`: how many were dropped.
#[map]
static LAB_DROP: Array<u32> = Array::with_max_entries(3, 0);

#[inline(always)]
fn read<const N: usize>(data: usize, end: usize, off: usize) -> Option<[u8; N]> {
    if data + off + N > end {
        return None;
    }
    // SAFETY: bounds checked above.
    Some(unsafe { *((data + off) as *const [u8; N]) })
}

#[classifier]
pub fn lab_drop_ack(ctx: TcContext) -> i32 {
    let (data, end) = (ctx.data(), ctx.data_end());
    let Some(eth) = read::<14>(data, end, 0) else {
        return TC_ACT_OK;
    };
    let Some(ip) = read::<20>(data, end, ETH_HLEN) else {
        return TC_ACT_OK;
    };
    if u16::from_be_bytes([eth[12], eth[13]]) != ETH_P_IP || ip[9] != IPPROTO_TCP {
        return TC_ACT_OK;
    }
    let ihl = ((ip[0] & 0xf) as usize) * 4;
    let tot = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    if ihl != IPV4_HLEN {
        return TC_ACT_OK;
    }
    let Some(th) = read::<20>(data, end, ETH_HLEN + IPV4_HLEN) else {
        return TC_ACT_OK;
    };
    let hlen = ((th[12] >> 4) as usize) * 4;
    let bare_ack = th[13] == TCP_ACK && tot == ihl + hlen;
    let (Some(left), Some(port)) = (LAB_DROP.get_ptr_mut(0), LAB_DROP.get(1)) else {
        return TC_ACT_OK;
    };
    // SAFETY: map values of this array.
    unsafe {
        if bare_ack && *left > 0 && u16::from_be_bytes([th[2], th[3]]) as u32 == *port {
            *left -= 1;
            if let Some(n) = LAB_DROP.get_ptr_mut(2) {
                *n += 1;
            }
            return TC_ACT_SHOT;
        }
    }
    TC_ACT_OK
}

/// `[0]`: SYN-ACKs seen by `lab_count_synack`.
#[map]
static LAB_SYNACKS: Array<u64> = Array::with_max_entries(1, 0);

#[classifier]
pub fn lab_count_synack(ctx: TcContext) -> i32 {
    let (data, end) = (ctx.data(), ctx.data_end());
    // One read covering Ethernet, a 20-byte IPv4 header and the TCP flags (no Options kept
    // across branches: LLVM may then read an uninitialized register, which the verifier refuses).
    let Some(h) = read::<{ ETH_HLEN + IPV4_HLEN + 14 }>(data, end, 0) else {
        return TC_ACT_OK;
    };
    let ip = ETH_HLEN;
    let is_tcp =
        u16::from_be_bytes([h[12], h[13]]) == ETH_P_IP && h[ip] == 0x45 && h[ip + 9] == IPPROTO_TCP;
    let flags = h[ETH_HLEN + IPV4_HLEN + 13];
    if is_tcp
        && flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK
        && let Some(n) = LAB_SYNACKS.get_ptr_mut(0)
    {
        // SAFETY: map value of this array.
        unsafe { *n += 1 };
    }
    TC_ACT_OK
}

#[path = "../../rt.rs"]
mod rt;

mod bench;

// The shield's own modules, unchanged: the variants below differ from it only in order.
#[allow(dead_code)]
#[path = "../../ack.rs"]
mod ack;
#[allow(dead_code)]
#[path = "../../csum.rs"]
mod csum;
#[allow(dead_code)]
#[path = "../../parse.rs"]
mod parse;
#[allow(dead_code)]
#[path = "../../sock.rs"]
mod sock;
#[allow(dead_code)]
#[path = "../../synack.rs"]
mod synack;

/// What `ack.rs` reads from the shield's maps, from maps of the lab's own (not pinned: the
/// tests load this object too). The bench fills them as the daemon fills `SC_KEYS`/`SC_EPOCH`.
mod maps {
    use aya_ebpf::{macros::map, maps::Array};
    use syncookie_common::maps::{Config, KEYS_LEN, Key};

    #[map]
    pub static LAB_CONFIG: Array<Config> = Array::with_max_entries(1, 0);
    #[map]
    pub static LAB_KEYS: Array<Key> = Array::with_max_entries(KEYS_LEN, 0);
    #[map]
    pub static LAB_EPOCH: Array<u64> = Array::with_max_entries(1, 0);

    #[inline(always)]
    pub fn config() -> Option<&'static Config> {
        LAB_CONFIG.get(0)
    }

    #[inline(always)]
    pub fn current_epoch() -> u64 {
        LAB_EPOCH.get(0).copied().unwrap_or(0)
    }

    #[inline(always)]
    pub fn key(slot: u32) -> Option<Key> {
        LAB_KEYS.get(slot).copied()
    }
}
