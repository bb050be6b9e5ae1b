//! Locality: is a segment for this host? Linux takes a TCP segment only when its frame
//! is for one of its own MAC addresses and its destination routes locally (RTN_LOCAL, on any
//! interface: a weak host). `bpf_skc_lookup_tcp` finds a wildcard listener for any destination,
//! so without this check a router or a bridge host would answer for others. The maps come in
//! through [`Local`]: each object brings its own (the daemon fills the shield's).

use aya_ebpf::maps::lpm_trie::Key;
use syncookie_common::maps::{
    LOCAL_BROADCAST, LocalAddr, Mac, RPF_PASSES, V4_MAPPED_PREFIX, v4_mapped,
};

use crate::parse::{Tcp, read};

pub trait Local {
    /// Whether `mac` is the address of an interface of this namespace.
    fn mac_local(&self, mac: &Mac) -> bool;
    /// The value of the longest local or broadcast prefix covering the address `a` (words as
    /// in [`Tcp`]; [`addr_key`] makes its trie key): its interface, with [`LOCAL_BROADCAST`]
    /// for a broadcast address.
    fn addr(&self, a: &[u32; 4], v6: bool) -> Option<u32>;
    /// Whether the interface's IPv4 reverse-path filter is on (net.ipv4.conf.*.rp_filter).
    fn rp_filter_on(&self) -> bool;
    /// The longest route prefix covering the IPv4 address `a`, as the filter judges it
    /// (`RPF_PASSES` or not).
    fn reverse_path(&self, a: &[u32; 4]) -> Option<u32>;
}

/// Whether the kernel would take `t` (in the frame at `data..end`, from `lo` or not) as its own:
/// a frame for one of our MACs (broadcast and multicast are not: TCP drops them) to a local
/// destination. `lo`'s all-zero address is ours on `lo` only: on a wire, a frame to
/// 00:00:00:00:00:00 is for another host.
#[inline(always)]
pub fn for_this_host(l: &impl Local, data: usize, end: usize, t: &Tcp, from_lo: bool) -> bool {
    let Some(dst_mac) = read::<6>(data, end, 0) else {
        return false;
    };
    if !l.mac_local(&dst_mac) || (dst_mac == [0; 6] && !from_lo) {
        return false;
    }
    l.addr(&t.daddr, t.is_v6())
        .is_some_and(|v| v & LOCAL_BROADCAST == 0)
}

/// Whether `t`'s source is one of this host's addresses (or 127/8, ::1: the loopback routes
/// are in the `local` table too), which the kernel refuses from outside
/// (`fib_validate_source()`, unless `accept_local`), or a local subnet's broadcast address,
/// which it refuses with rp_filter on and answers to the broadcast MAC with rp_filter off.
#[inline(always)]
pub fn from_this_host(l: &impl Local, t: &Tcp) -> bool {
    l.addr(&t.saddr, t.is_v6()).is_some()
}

/// Whether the interface's reverse-path filter refuses `t`'s IPv4 source
/// (`fib_validate_source()` with rp_filter 1 or 2): no route back to it, a blackhole,
/// unreachable or prohibit route, or (strict) a route out of another interface. IPv6 has no
/// such filter in the kernel's input path.
#[inline(always)]
pub fn reverse_path_refused(l: &impl Local, t: &Tcp) -> bool {
    !t.is_v6() && l.rp_filter_on() && l.reverse_path(&t.saddr) != Some(RPF_PASSES)
}

/// The trie key of a full address (IPv4 as IPv4-mapped IPv6).
#[inline(always)]
pub fn addr_key(a: &[u32; 4], v6: bool) -> Key<LocalAddr> {
    if v6 {
        let [a, b, c, d] = a.map(u32::to_be_bytes);
        Key::new(
            128,
            [
                a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3], c[0], c[1], c[2], c[3], d[0], d[1],
                d[2], d[3],
            ],
        )
    } else {
        Key::new(V4_MAPPED_PREFIX + 32, v4_mapped(a[0]))
    }
}
