//! What the daemon tells the programs about this host: its addresses and MACs, and the
//! reverse-path filter.

/// `SC_LOCAL_ADDRS`: an LPM trie of the destinations this host accepts as its own (the RTN_LOCAL
/// routes of its `local` table, on any interface: Linux is a weak host), filled by the daemon
/// from rtnetlink. The key's data is an IPv6 address, IPv4 as IPv4-mapped (`::ffff:a.b.c.d`,
/// prefix length + [`V4_MAPPED_PREFIX`]), so one trie serves both families; the value is the
/// route's interface (informative), with [`LOCAL_BROADCAST`] set for the `local` table's
/// RTN_BROADCAST routes (a subnet's broadcast address: never a destination the shield answers
/// for, and a source it leaves to the kernel).
pub type LocalAddr = [u8; 16];
/// `SC_RPF`: while the interface's IPv4 rp_filter is on (`SC_RPF_ON[0]` 1 strict, 2 loose), the
/// routes of the `main` and `default` tables as an LPM trie keyed as `SC_LOCAL_ADDRS`; the value
/// says whether a source in that prefix passes the filter on this interface ([`RPF_PASSES`]: a
/// unicast route, out of this interface when strict) or not (a route out of another interface
/// when strict; blackhole, unreachable, prohibit). No route at all: refused, as the kernel does.
pub const RPF_LEN: u32 = 65536;
pub const RPF_PASSES: u32 = 1;
/// `SC_LOCAL_HINTS[0]`: the locality check's fast path. The frame's destination MAC is
/// compared with `mac` (the protected interface's own) before `SC_LOCAL_MACS` is asked: most
/// frames carry it, and a compare costs less than a hash lookup.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalHints {
    pub mac: Mac,
    pub _pad: [u8; 2],
}
const _: () = assert!(size_of::<LocalHints>() == 8);
/// In an `SC_LOCAL_ADDRS` value: the prefix is a broadcast address, not a local one.
pub const LOCAL_BROADCAST: u32 = 1 << 31;
/// Kubernetes nodes with IPVS hold one local address per service: room for many.
pub const LOCAL_ADDRS_LEN: u32 = 65536;
/// Bits of an IPv4-mapped IPv6 address in front of the IPv4 address.
pub const V4_MAPPED_PREFIX: u32 = 96;

/// `addr` (host order) as the IPv4-mapped IPv6 address `::ffff:a.b.c.d`.
#[inline(always)]
pub const fn v4_mapped(addr: u32) -> LocalAddr {
    let [a, b, c, d] = addr.to_be_bytes();
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d]
}

/// `SC_LOCAL_MACS`: the MAC addresses of every interface of the namespace (a frame on an
/// enslaved bridge port is for this host when it carries the bridge's MAC) -> the lowest
/// ifindex with that address.
pub type Mac = [u8; 6];
/// One MAC per interface: a node with hundreds of pods' veth ends fits.
pub const LOCAL_MACS_LEN: u32 = 4096;
