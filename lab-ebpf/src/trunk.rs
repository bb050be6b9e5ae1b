//! An emulated VLAN trunk for the netns tests (this kernel has no VLAN devices): TC egress puts
//! the tags into the frame itself, as a switch port's peer would send them (a tag the kernel
//! keeps beside the frame, `bpf_skb_vlan_push`'s way, would be a NIC-stripped tag: XDP never
//! sees those); TC ingress takes them off again before the stack looks for a VLAN device.

use aya_ebpf::{
    bindings::{TC_ACT_SHOT, TC_ACT_UNSPEC, bpf_adj_room_mode::BPF_ADJ_ROOM_MAC},
    helpers::bpf_skb_vlan_pop,
    macros::classifier,
    programs::TcContext,
};
use syncookie_common::{
    lab::{LabCounter, vlan},
    proto::*,
};

use crate::maps::{self, LAB_VLAN};

#[inline(always)]
fn vid(i: u32) -> u16 {
    LAB_VLAN.get(i).map_or(0, |v| (*v & 0x0fff) as u16)
}

/// Inserts one tag (`tpid`, `vid`) right after the MAC addresses.
#[inline(always)]
fn push(ctx: &TcContext, tpid: u16, vid: u16) -> Result<(), i64> {
    let ethertype: u16 = ctx.load::<[u8; 2]>(12).map(u16::from_be_bytes)?;
    // Room between the Ethernet header and L3; then the Ethernet header's type becomes the
    // tag's TPID, and the tag (TCI, the old type) fills the room.
    ctx.adjust_room(VLAN_HLEN as i32, BPF_ADJ_ROOM_MAC, 0)?;
    let [a, b] = tpid.to_be_bytes();
    let [c, d] = vid.to_be_bytes();
    let [e, f] = ethertype.to_be_bytes();
    ctx.store(12, &[a, b, c, d, e, f], 0)
}

/// Puts the trunk's tags into every IP frame going out (inner first, so it ends up inside).
#[classifier]
pub fn lab_vlan_push(ctx: TcContext) -> i32 {
    let (outer, inner) = (vid(vlan::OUTER), vid(vlan::INNER));
    let r = if inner == 0 {
        push(&ctx, ETH_P_8021Q, outer)
    } else {
        push(&ctx, ETH_P_8021Q, inner).and_then(|()| push(&ctx, ETH_P_8021AD, outer))
    };
    // A frame the tags could not be put on must not leave untagged (on the wrong VLAN).
    if r.is_err() {
        TC_ACT_SHOT
    } else {
        TC_ACT_UNSPEC
    }
}

/// Takes the trunk's tags off what comes in (the stack moved the outer one beside the frame;
/// popping it moves the next one there), counting tagged frames and tagged SYN-ACKs. Frames
/// with other tags, or none, pass as they are.
#[classifier]
pub fn lab_vlan_pop(ctx: TcContext) -> i32 {
    let (outer, inner) = (vid(vlan::OUTER), vid(vlan::INNER));
    // SAFETY: reading fields of the context the kernel passed us.
    let tag = |ctx: &TcContext| unsafe { ((*ctx.skb.skb).vlan_present, (*ctx.skb.skb).vlan_tci) };
    let (present, tci) = tag(&ctx);
    if present == 0 || tci & 0x0fff != outer as u32 {
        return TC_ACT_UNSPEC;
    }
    // SAFETY: helper call on our own context.
    if unsafe { bpf_skb_vlan_pop(ctx.skb.skb as *mut _) } != 0 {
        return TC_ACT_SHOT;
    }
    if inner != 0 {
        let (present, tci) = tag(&ctx);
        if present == 0 || tci & 0x0fff != inner as u32 {
            return TC_ACT_SHOT;
        }
        // SAFETY: as above.
        if unsafe { bpf_skb_vlan_pop(ctx.skb.skb as *mut _) } != 0 {
            return TC_ACT_SHOT;
        }
    }
    maps::inc(LabCounter::VlanTagged);
    if is_synack(&ctx) {
        maps::inc(LabCounter::VlanSynack);
    }
    TC_ACT_UNSPEC
}

/// Whether the (untagged) frame is an IPv4 or IPv6 SYN-ACK without IP options or extension
/// headers.
#[inline(always)]
fn is_synack(ctx: &TcContext) -> bool {
    let flags_at = match ctx.load::<[u8; 2]>(12).map(u16::from_be_bytes) {
        Ok(ETH_P_IP) => ETH_HLEN + IPV4_HLEN + 13,
        Ok(ETH_P_IPV6) => ETH_HLEN + IPV6_HLEN + 13,
        _ => return false,
    };
    matches!(ctx.load::<u8>(flags_at), Ok(f) if f & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK)
}
