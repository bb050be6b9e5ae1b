//! Programs for the test lab, never attached by the shield itself:
//! - `lab_pass`: XDP pass-all for the veth peer (XDP_TX on a veth needs a program on the peer);
//! - `lab_drop_ack`: TC egress that drops the next N bare ACKs to a port (a lost handshake ACK);
//! - `lab_count_synack`: TC egress that counts the SYN-ACKs a host's own stack sends (XDP_TX
//!   frames never pass TC egress, so this sees only the kernel's);
//! - `lab_flood`: XDP for live-frames test runs: rewrites a SYN template's source address,
//!   port and ISN from the PRNG and transmits it (a spoofed SYN flood, only inside the lab).
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_SHOT, xdp_action},
    helpers::bpf_get_prandom_u32,
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

#[xdp]
pub fn lab_flood(ctx: XdpContext) -> u32 {
    let (data, end) = (ctx.data(), ctx.data_end());
    const IP: usize = ETH_HLEN;
    const TCP: usize = ETH_HLEN + IPV4_HLEN;
    if data + TCP + TCP_HLEN > end {
        return xdp_action::XDP_ABORTED;
    }
    // SAFETY: [data, data + TCP + 20) is in the frame (checked above).
    unsafe {
        let r = bpf_get_prandom_u32();
        let r2 = bpf_get_prandom_u32();
        let ip = (data + IP) as *mut u8;
        let tcp = (data + TCP) as *mut u8;
        // Source address: keep the template's /16, randomize the host part.
        let old_lo = u16::from_be_bytes([*ip.add(14), *ip.add(15)]);
        let new_lo = (r >> 16) as u16;
        *ip.add(14) = (new_lo >> 8) as u8;
        *ip.add(15) = new_lo as u8;
        let ipc = u16::from_be_bytes([*ip.add(10), *ip.add(11)]);
        let ipc = csum_update(ipc, old_lo, new_lo);
        *ip.add(10) = (ipc >> 8) as u8;
        *ip.add(11) = ipc as u8;
        let mut tc = u16::from_be_bytes([*tcp.add(16), *tcp.add(17)]);
        tc = csum_update(tc, old_lo, new_lo);
        // Source port and ISN.
        let old_port = u16::from_be_bytes([*tcp, *tcp.add(1)]);
        let new_port = (r as u16) | 1024;
        *tcp = (new_port >> 8) as u8;
        *tcp.add(1) = new_port as u8;
        tc = csum_update(tc, old_port, new_port);
        for k in 0..2usize {
            let old = u16::from_be_bytes([*tcp.add(4 + 2 * k), *tcp.add(5 + 2 * k)]);
            let new = (r2 >> (16 * k)) as u16;
            *tcp.add(4 + 2 * k) = (new >> 8) as u8;
            *tcp.add(5 + 2 * k) = new as u8;
            tc = csum_update(tc, old, new);
        }
        *tcp.add(16) = (tc >> 8) as u8;
        *tcp.add(17) = tc as u8;
    }
    xdp_action::XDP_TX
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
