//! Protocol constants (IEEE 802, RFC 791/8200, RFC 9293 and the TCP option registry).

pub const ETH_HLEN: usize = 14;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
pub const VLAN_HLEN: usize = 4;
pub const MAX_VLAN_TAGS: usize = 2;

pub const IPPROTO_TCP: u8 = 6;
pub const IPV4_HLEN: usize = 20;
pub const IPV6_HLEN: usize = 40;
/// IPv6 extension headers (RFC 8200): a frame with any of them is the kernel's.
pub const IPV6_NH_HOPOPTS: u8 = 0;
pub const IPV6_NH_ROUTING: u8 = 43;
pub const IPV6_NH_FRAGMENT: u8 = 44;
pub const IPV6_NH_AH: u8 = 51;
pub const IPV6_NH_DSTOPTS: u8 = 60;
/// The kernel's MSS for an IPv6 SYN without an MSS option (IPV6_MIN_MTU - 60).
pub const IPV6_DEFAULT_MSS: u16 = 1220;
/// RFC 1122's default MSS for an IPv4 SYN without an MSS option.
pub const IPV4_DEFAULT_MSS: u16 = 536;
/// IPv4 flags/fragment-offset field: Don't Fragment, More Fragments, offset mask.
pub const IP_DF: u16 = 0x4000;
pub const IP_MF: u16 = 0x2000;
pub const IP_OFFSET: u16 = 0x1fff;

pub const TCP_HLEN: usize = 20;
pub const TCP_MAX_OPTLEN: usize = 40;
pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;
pub const TCP_URG: u8 = 0x20;
pub const TCP_ECE: u8 = 0x40;
pub const TCP_CWR: u8 = 0x80;

pub const TCPOPT_EOL: u8 = 0;
pub const TCPOPT_NOP: u8 = 1;
pub const TCPOPT_MSS: u8 = 2;
pub const TCPOPT_WSCALE: u8 = 3;
pub const TCPOPT_SACK_PERM: u8 = 4;
pub const TCPOPT_TIMESTAMP: u8 = 8;
pub const TCPOPT_MD5SIG: u8 = 19;
pub const TCPOPT_AO: u8 = 29;
pub const TCPOPT_MPTCP: u8 = 30;

/// The kernel's TCP socket states we look at (include/net/tcp_states.h).
pub const TCP_LISTEN: u32 = 10;

/// The windows Linux advertises on a SYN-ACK with its default receive buffer and MTU 1500:
/// 65536 rounded down to a multiple of 1460 (64240), or of 1448 with timestamps (65160).
pub const DEFAULT_WINDOW: u16 = 64240;
pub const DEFAULT_WINDOW_TS: u16 = 65160;
/// The TCP timestamps option's room in a segment (TCPOLEN_TSTAMP_ALIGNED).
pub const TCPOLEN_TSTAMP_ALIGNED: u16 = 12;
/// The ECN field of the IPv4 TOS / IPv6 traffic class: not ECT.
pub const IP_ECN_MASK: u8 = 0x03;
pub const DEFAULT_TTL: u8 = 64;
/// The kernel's windows for IPv6 at MTU 1500 (MSS 1440): 64800, or 64260 with timestamps.
pub const DEFAULT_WINDOW_V6: u16 = 64800;
pub const DEFAULT_WINDOW_TS_V6: u16 = 64260;

/// IPv4 options (RFC 791) the kernel acts on when it receives them.
pub const IPOPT_END: u8 = 0;
pub const IPOPT_NOOP: u8 = 1;
/// Record route, timestamp: the kernel's SYN-ACK echoes them (ip_options_echo()).
pub const IPOPT_RR: u8 = 7;
pub const IPOPT_TS: u8 = 68;
/// Loose and strict source routes: dropped with accept_source_route 0, echoed otherwise.
pub const IPOPT_LSRR: u8 = 131;
pub const IPOPT_SSRR: u8 = 137;
/// CIPSO: validated by the kernel's NetLabel code, and echoed.
pub const IPOPT_CIPSO: u8 = 134;
/// Router alert: exactly 4 bytes, or ip_options_compile() refuses the packet.
pub const IPOPT_RA: u8 = 148;

/// The loopback device's ifindex, the same in every network namespace.
pub const LOOPBACK_IFINDEX: u32 = 1;
