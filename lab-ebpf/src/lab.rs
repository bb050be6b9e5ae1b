//! The test lab's wire: `lab_pass` on the client's veth (XDP_TX on a veth needs a program on
//! the receiving peer), `lab_drop_ack` (a lost handshake ACK), `lab_count_tc` (TCP seen after
//! the shield on TC ingress), `lab_count_synack` (SYN-ACKs
//! from the server's own stack: XDP_TX frames never pass TC egress, so it sees only those, and
//! the shield's SYN-ACKs the daemon sends again through a packet socket, counted apart).

use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_SHOT, TC_ACT_UNSPEC, xdp_action},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use syncookie_common::{
    lab::{LabCounter, drop_ack},
    proto::*,
};
use syncookie_ebpf::parse::read;

use crate::maps::{self, LAB_DROP, LAB_SYNACKS};

#[xdp]
pub fn lab_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// Ethernet, a 20-byte IPv4 header and the TCP header through the flags, read at once (no
/// Options kept across branches: LLVM may then read an uninitialized register, which the
/// verifier refuses).
const HDR: usize = ETH_HLEN + IPV4_HLEN + 14;

/// The headers of an IPv4 TCP frame without IP options, or `None`.
#[inline(always)]
pub fn ipv4_tcp(data: usize, end: usize) -> Option<[u8; HDR]> {
    let h = read::<HDR>(data, end, 0)?;
    let ok = u16::from_be_bytes([h[12], h[13]]) == ETH_P_IP
        && h[ETH_HLEN] == 0x45
        && h[ETH_HLEN + 9] == IPPROTO_TCP;
    ok.then_some(h)
}

/// The TCP flags of headers returned by [`ipv4_tcp`].
#[inline(always)]
pub const fn tcp_flags(h: &[u8; HDR]) -> u8 {
    h[HDR - 1]
}

/// Ethernet, the IPv6 header and the TCP header through the flags.
const HDR6: usize = ETH_HLEN + IPV6_HLEN + 14;

/// TCP flags, destination port and whether the segment carries no data, of an IPv4 frame
/// without IP options or an IPv6 frame without extension headers.
#[inline(always)]
fn tcp_any(data: usize, end: usize) -> Option<(u8, u16, bool)> {
    if let Some(h) = ipv4_tcp(data, end) {
        let th = ETH_HLEN + IPV4_HLEN;
        let tot = u16::from_be_bytes([h[ETH_HLEN + 2], h[ETH_HLEN + 3]]) as usize;
        let hlen = ((h[th + 12] >> 4) as usize) * 4;
        let dport = u16::from_be_bytes([h[th + 2], h[th + 3]]);
        return Some((tcp_flags(&h), dport, tot == IPV4_HLEN + hlen));
    }
    let h = read::<HDR6>(data, end, 0)?;
    if u16::from_be_bytes([h[12], h[13]]) != ETH_P_IPV6 || h[ETH_HLEN + 6] != IPPROTO_TCP {
        return None;
    }
    let th = ETH_HLEN + IPV6_HLEN;
    let plen = u16::from_be_bytes([h[ETH_HLEN + 4], h[ETH_HLEN + 5]]) as usize;
    let hlen = ((h[th + 12] >> 4) as usize) * 4;
    let dport = u16::from_be_bytes([h[th + 2], h[th + 3]]);
    Some((h[HDR6 - 1], dport, plen == hlen))
}

#[classifier]
pub fn lab_drop_ack(ctx: TcContext) -> i32 {
    let (data, end) = (ctx.data(), ctx.data_end());
    let Some((flags, dport, bare)) = tcp_any(data, end) else {
        return TC_ACT_OK;
    };
    let bare_ack = flags == TCP_ACK && bare;
    let dport = dport as u32;
    let (Some(left), Some(port)) = (
        LAB_DROP.get_ptr_mut(drop_ack::LEFT),
        LAB_DROP.get(drop_ack::PORT),
    ) else {
        return TC_ACT_OK;
    };
    // SAFETY: map values of this array.
    unsafe {
        if bare_ack && *left > 0 && dport == *port {
            *left -= 1;
            if let Some(n) = LAB_DROP.get_ptr_mut(drop_ack::DROPPED) {
                *n += 1;
            }
            return TC_ACT_SHOT;
        }
    }
    TC_ACT_OK
}

/// `AF_PACKET`: the family of the socket that owns a frame a packet socket sent.
const AF_PACKET: u32 = 17;

#[classifier]
pub fn lab_count_synack(ctx: TcContext) -> i32 {
    let Some((flags, _, _)) = tcp_any(ctx.data(), ctx.data_end()) else {
        return TC_ACT_UNSPEC;
    };
    if flags & (TCP_SYN | TCP_ACK) != TCP_SYN | TCP_ACK {
        return TC_ACT_UNSPEC;
    }
    // SAFETY: a read of the context's socket field; the socket is only read if non-null.
    let resent = unsafe {
        let sk = (*ctx.skb.skb).__bindgen_anon_2.sk;
        !sk.is_null() && (*sk).family == AF_PACKET
    };
    if resent {
        maps::inc(LabCounter::ResentSynack);
    } else if let Some(n) = LAB_SYNACKS.get_ptr_mut(0) {
        // SAFETY: map value of this array.
        unsafe { *n += 1 };
    }
    // TCX_NEXT: programs after it on egress (the trunk's tagging) still run.
    TC_ACT_UNSPEC
}

/// Counts the IPv4 TCP segments it sees, and leaves them to the next program (or the stack).
#[classifier]
pub fn lab_count_tc(ctx: TcContext) -> i32 {
    if ipv4_tcp(ctx.data(), ctx.data_end()).is_some() {
        maps::inc(LabCounter::TcSeen);
    }
    TC_ACT_UNSPEC
}
