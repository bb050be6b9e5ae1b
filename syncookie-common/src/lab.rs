//! The lab's programs (lab-ebpf/: test and benchmark helpers, never part of the shield): their
//! program and map names and map indices, used by the eBPF side and by the tests and the bench,
//! so no name or index is typed twice. Behind the `lab` feature: the shield does not see it.

/// Program names (the functions in lab-ebpf/src).
pub mod prog {
    /// XDP pass-all for the veth peer (XDP_TX on a veth needs a program on the receiving peer).
    pub const PASS: &str = "lab_pass";
    /// TC egress: drops the next N bare ACKs to a port (a lost handshake ACK).
    pub const DROP_ACK: &str = "lab_drop_ack";
    /// TC egress: counts the SYN-ACKs a host's own stack sends (XDP_TX frames skip TC egress).
    pub const COUNT_SYNACK: &str = "lab_count_synack";
    /// TC ingress, attached after the shield: counts the TCP segments it gets (the shield must
    /// leave the TCX chain to later programs).
    pub const COUNT_TC: &str = "lab_count_tc";
    /// TC egress: puts VLAN tags into the frame (`map::VLAN`), as a trunk port's sender does.
    pub const VLAN_PUSH: &str = "lab_vlan_push";
    /// TC ingress, first: takes the tags (`map::VLAN`) off again, counting tagged SYN-ACKs.
    pub const VLAN_POP: &str = "lab_vlan_pop";
    /// XDP for live-frames test runs: the spoofed SYN flood, IPv4 and IPv6.
    pub const FLOOD_SYN: &str = "lab_flood_syn";
    pub const FLOOD_SYN6: &str = "lab_flood_syn6";
    /// XDP for live-frames test runs: writes a fresh SYN (IPv4: `map::TEMPLATE[0]`, IPv6:
    /// `[1]`), then tail-calls `map::JMP[0]`.
    pub const SYN_FRESH: &str = "lab_syn_fresh";
    pub const SYN_FRESH6: &str = "lab_syn_fresh6";
    /// XDP pass-all that counts arriving SYNs (the kernel's scenarios of the bench).
    pub const COUNT_SYN: &str = "lab_count_syn";
    /// XDP on the attacker's side: drops what comes back to the spoofed range, counting SYN-ACKs.
    pub const SINK: &str = "lab_sink";
    /// The minimal XDP reflector (swap MACs, addresses, ports; XDP_TX): the bench's floor.
    pub const REFLECT: &str = "lab_reflect";
    /// `REFLECT` that counts what it sends back.
    pub const REFLECT_COUNT: &str = "lab_reflect_count";
    /// The shield's ACK handling in the orders the bench compares.
    pub const ACK_LOOKUP_FIRST: &str = "lab_ack_lookup_first";
    pub const ACK_COOKIE_FIRST: &str = "lab_ack_cookie_first";
    pub const ACK_META: &str = "lab_ack_meta";
    pub const ACK_NO_META: &str = "lab_ack_no_meta";
    /// TC handoff with XDP metadata, or with a second cookie check.
    pub const TC_META: &str = "lab_tc_meta";
    pub const TC_RECHECK: &str = "lab_tc_recheck";
    /// XDP: the shield's cookie check on the frame's ACK, altered as `map::FORGE` says (the
    /// genuine ACK, or try `i` of a sweep over cookie or TSecr bits): forgery odds, counted in
    /// `Forged` out of `ForgeTries`.
    pub const FORGE_ACK: &str = "lab_forge_ack";
    /// The shield's SYN path step by step.
    pub const SYN_ALL: &str = "lab_syn_all";
    pub const SYN_NO_LOOKUP: &str = "lab_syn_no_lookup";
    pub const SYN_NO_CSUM: &str = "lab_syn_no_csum";
    pub const SYN_MAC: &str = "lab_syn_mac";
    pub const SYN_PARSE: &str = "lab_syn_parse";

    pub const ALL: &[&str] = &[
        PASS,
        DROP_ACK,
        COUNT_SYNACK,
        COUNT_TC,
        VLAN_PUSH,
        VLAN_POP,
        FLOOD_SYN,
        FLOOD_SYN6,
        SYN_FRESH,
        SYN_FRESH6,
        COUNT_SYN,
        SINK,
        REFLECT,
        REFLECT_COUNT,
        ACK_LOOKUP_FIRST,
        ACK_COOKIE_FIRST,
        ACK_META,
        ACK_NO_META,
        TC_META,
        TC_RECHECK,
        FORGE_ACK,
        SYN_ALL,
        SYN_NO_LOOKUP,
        SYN_NO_CSUM,
        SYN_MAC,
        SYN_PARSE,
    ];
}

/// Map names (the statics in lab-ebpf/src/maps.rs).
pub mod map {
    /// Per-CPU `u64` counters, indexed by [`super::LabCounter`].
    pub const COUNTERS: &str = "LAB_COUNTERS";
    /// `lab_drop_ack`'s state, indexed by `super::drop_ack::*`.
    pub const DROP: &str = "LAB_DROP";
    /// `[0]`: SYN-ACKs seen by `lab_count_synack`.
    pub const SYNACKS: &str = "LAB_SYNACKS";
    /// The SYN templates written over live frames ([`super::TEMPLATE_SIZE`] bytes): `[0]` the
    /// flood's or the IPv4 bench SYN, `[1]` the IPv6 bench SYN.
    pub const TEMPLATE: &str = "LAB_TEMPLATE";
    /// `[0]`: the program `lab_syn_fresh` tail-calls.
    pub const JMP: &str = "LAB_JMP";
    /// What the shield's ACK and SYN code reads in the bench programs (as `SC_CONFIG`,
    /// `SC_KEYS`, `SC_EPOCH`; not pinned, so the lab can be loaded beside a running shield).
    pub const CONFIG: &str = "LAB_CONFIG";
    pub const KEYS: &str = "LAB_KEYS";
    pub const EPOCH: &str = "LAB_EPOCH";
    /// The trunk's tags, `u32`s indexed by `super::vlan::*`.
    pub const VLAN: &str = "LAB_VLAN";
    /// `lab_forge_ack`'s sweep, `u32`s indexed by `super::forge::*`.
    pub const FORGE: &str = "LAB_FORGE";
    /// Per-CPU scratch: the bench's SYN paths pass the parsed options through it.
    pub const SCRATCH: &str = "LAB_SCRATCH";

    pub const ALL: &[&str] = &[
        COUNTERS, DROP, SYNACKS, TEMPLATE, JMP, CONFIG, KEYS, EPOCH, VLAN, FORGE, SCRATCH,
    ];
}

/// Indices of `map::VLAN`: the VLAN IDs of the emulated trunk (0: no such tag).
pub mod vlan {
    /// The outer tag (802.1ad when there is an inner one, 802.1Q alone).
    pub const OUTER: u32 = 0;
    /// The inner tag (802.1Q), or 0 for a single tag.
    pub const INNER: u32 = 1;
    pub const LEN: u32 = 2;
}

/// Indices of `map::FORGE`, and its modes: try `i` (`NEXT`, counted up by the program) XORs
/// `i` into the ACK's cookie (`ack - 1`) at bit `SHIFT`, or into its TSecr; `GENUINE` leaves
/// the ACK as it is (the positive control).
pub mod forge {
    pub const MODE: u32 = 0;
    pub const SHIFT: u32 = 1;
    pub const NEXT: u32 = 2;
    pub const LEN: u32 = 3;

    pub const GENUINE: u32 = 0;
    pub const SWEEP_COOKIE: u32 = 1;
    pub const SWEEP_TSECR: u32 = 2;
}

/// Indices of `LAB_COUNTERS`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabCounter {
    /// SYNs seen by `lab_count_syn`.
    Syn,
    /// SYN-ACKs to the spoofed range dropped by `lab_sink`.
    SinkSynack,
    /// Other frames to the spoofed range dropped by `lab_sink` (RSTs, retransmissions...).
    SinkOther,
    /// SYNs sent by `lab_flood_syn`.
    Flood,
    /// Frames sent back by `lab_reflect_count`.
    Reflected,
    /// TCP segments seen by `lab_count_tc`.
    TcSeen,
    /// ACKs tried by `lab_forge_ack`, and those whose cookie passed.
    ForgeTries,
    Forged,
    /// `lab_vlan_pop`: frames that came in with the trunk's tags, and the SYN-ACKs among them.
    VlanTagged,
    VlanSynack,
    /// SYN-ACKs `lab_count_synack` saw leave through a packet socket: the daemon's second
    /// sends of the shield's own (not the kernel's).
    ResentSynack,
}

impl LabCounter {
    pub const COUNT: u32 = 11;
}

/// Indices of `LAB_DROP`.
pub mod drop_ack {
    /// Bare ACKs still to drop.
    pub const LEFT: u32 = 0;
    /// Their destination port.
    pub const PORT: u32 = 1;
    /// How many were dropped.
    pub const DROPPED: u32 = 2;
    pub const LEN: u32 = 3;
}

/// The SYN template's length: Ethernet, IPv4, TCP with MSS, SACK-permitted, timestamps, NOP
/// and window scale (Linux's SYN).
pub const SYN_LEN: usize = 14 + 20 + 20 + 20;
/// The same SYN over IPv6 (no extension headers).
pub const SYN6_LEN: usize = 14 + 40 + 20 + 20;
/// The template map's value size (room for `SYN6_LEN`).
pub const TEMPLATE_SIZE: usize = 96;
/// Spoofed floods come from 198.18.0.0/16 (RFC 2544's benchmarking range); `lab_sink` drops
/// what is sent back there.
pub const SPOOFED_NET: [u8; 2] = [198, 18];
/// IPv6 floods come from 2001:2::/48 (RFC 5180's benchmarking range), the last 32 bits random:
/// one /48, as a single attacker's network would be.
pub const SPOOFED_NET6: [u16; 3] = [0x2001, 0x0002, 0];
