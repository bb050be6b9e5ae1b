//! Counter ids: one entry per reason in the per-CPU `SC_STATS` array; userspace sums the CPUs.

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal,)+) => {
        /// Why a packet got the verdict it got.
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Counter {
            $($(#[doc = $doc])* $variant,)+
        }

        impl Counter {
            pub const ALL: &[Counter] = &[$(Counter::$variant,)+];
            pub const COUNT: u32 = Self::ALL.len() as u32;

            /// The snake_case name used in `stats`, JSON and metrics.
            pub const fn name(self) -> &'static str {
                match self { $(Counter::$variant => $name,)+ }
            }

            /// One line for humans.
            pub const fn help(self) -> &'static str {
                match self { $(Counter::$variant => concat!($($doc),+),)+ }
            }
        }
    };
}

counters! {
    /// SYNs to protected ports.
    SynSeen = "syn_seen",
    /// SYN-ACKs with a cookie sent from XDP.
    SynackSent = "synack_sent",
    /// SYNs to protected ports left to the kernel (no listener, existing socket, TCP-MD5/AO).
    SynPassed = "syn_passed",
    /// SYNs left to the kernel while `auto` mode is not engaged (a quiet time).
    SynIdle = "syn_idle",
    /// SYNs dropped: the SYN-ACK budget (in all, or to the client's prefix) is spent.
    SynDroppedBudget = "syn_dropped_budget",
    /// `monitor` mode: SYNs it would have answered with a cookie (left to the kernel).
    MonitorSynack = "monitor_synack",
    /// `monitor` mode: packets it would have dropped (passed).
    MonitorDrop = "monitor_drop",
    /// SYNs whose TCP checksum is wrong (neither the full sum nor a local sender's partial one,
    /// which TX checksum offload leaves), left to the kernel, which drops them.
    SynBadChecksum = "syn_bad_checksum",
    /// SYNs and handshake ACKs for MPTCP listeners, left to the kernel (the handoff refuses them).
    MptcpPassed = "mptcp_passed",
    /// Handshake ACKs with a valid cookie, passed on to the handoff.
    AckValid = "ack_valid",
    /// Handshake ACKs dropped: the cookie is not one of ours (beyond the reset budget).
    AckBadCookie = "ack_bad_cookie",
    /// Handshake ACKs dropped: the cookie's key has been rotated out (beyond the reset budget).
    AckExpired = "ack_expired",
    /// Handshake ACKs with a bad or expired cookie passed to the kernel, which resets them, within
    /// the per-second budget.
    AckReset = "ack_reset",
    /// Handshake ACKs carrying the kernel's own SYN cookie (for SYNs left to it), passed to it.
    AckKernelCookie = "ack_kernel_cookie",
    /// ACKs to protected ports of existing connections, passed untouched.
    AckPassedSocket = "ack_passed_socket",
    /// ACKs to protected ports with no socket at all, left to the kernel (it resets them).
    AckNoListener = "ack_no_listener",
    /// Cookie ACKs handed to the kernel by bpf_sk_assign_tcp_reqsk: one per connection (two
    /// when its ACK and first data are received on two CPUs at once, as generic XDP can: the
    /// kernel keeps one, as with its own cookies).
    /// Kernel-cookie mode: cookie ACKs passed to the kernel while its check accepts them, so it
    /// makes the connection.
    HandoffOk = "handoff_ok",
    /// Cookie ACKs bpf_sk_assign_tcp_reqsk refused (no listener any more, a kernel setting
    /// changed; kernel-cookie mode: the listener's overflow stamp has expired): left to the
    /// kernel, which resets them.
    HandoffFailed = "handoff_failed",
    /// Dropped: TCP to a protected port with an inconsistent header, or a SYN-ACK not written whole.
    Malformed = "malformed",
    /// Frames we do not parse (IPv6, fragments, unknown EtherType, ...); passed untouched.
    NotInspected = "not_inspected",
    /// SYNs and ACKs to protected ports not addressed to this host (another MAC, or a
    /// destination that is not local): passed untouched.
    NotLocal = "not_local",
    /// Kernel-cookie mode: SYNs left to the kernel so that its own cookie renews the listener's
    /// overflow stamp (one per address and port every refresh period, and any while it is stale).
    SynRefresh = "syn_refresh",
    /// SYNs the kernel's routing refuses: martian sources (IPv4 0/8, 127/8, multicast,
    /// broadcast; IPv6 ::, ::1, multicast, IPv4-mapped; the host's own addresses) or loopback
    /// destinations from outside; left to the kernel, which drops them. Also SYNs from a local
    /// subnet's broadcast address, which the kernel drops (rp_filter on) or answers to the
    /// broadcast MAC (rp_filter off): its call either way.
    Martian = "martian",
    /// SYNs whose IPv4 header checksum or options are malformed: left to the kernel, which
    /// drops them.
    IpHeaderBad = "ip_header_bad",
    /// SYNs with an IPv4 source route (LSRR, SSRR): left to the kernel, which drops them
    /// (accept_source_route 0, the default) or answers them itself.
    IpSourceRoute = "ip_source_route",
    /// SYNs with IPv4 options the kernel echoes in its SYN-ACK (record route, timestamp, CIPSO):
    /// left to the kernel, which answers them itself.
    IpOptionsKernel = "ip_options_kernel",
    /// SYNs whose MSS is below the smallest a socket can be handed over with (IPv4 536, IPv6
    /// 1220: bpf_sk_assign_tcp_reqsk refuses less), timestamps or not: left to the kernel,
    /// which answers with the client's MSS.
    SynSmallMss = "syn_small_mss",
    /// SYNs with TCP options past the 8 option items the shield walks (real stacks send at
    /// most 7): left to the kernel, which reads all 40 bytes and answers with every option.
    SynOptionsUnwalked = "syn_options_unwalked",
    /// SYNs whose IPv4 source the interface's reverse-path filter refuses (rp_filter 1 or 2: no
    /// route back, a blackhole, unreachable or prohibit route; 1: a route out of another
    /// interface): left to the kernel, which drops them.
    RpFiltered = "rp_filtered",
    /// A handshake's second cookie segment (its first data, usually) in the same receive batch
    /// as the ACK just handed off: passed as it is, to the socket that ACK makes (a second
    /// handoff would make the kernel drop it).
    HandoffFollowed = "handoff_followed",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_and_names_unique() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as u32, i as u32);
            assert!(!c.help().is_empty());
        }
        for a in Counter::ALL {
            assert_eq!(
                Counter::ALL.iter().filter(|b| b.name() == a.name()).count(),
                1
            );
        }
    }
}
