//! What the kernel drops before a listener sees a SYN, so that we never answer it: a bad IPv4
//! header checksum (`ip_rcv_core()`), malformed IPv4 options (`ip_options_compile()`), source
//! routes (`ip_rcv_options()` with `accept_source_route` 0, the default), martian sources
//! (`ip_route_input_slow()`: 0/8, 127/8, multicast, limited broadcast; `fib_validate_source()`:
//! the host's own addresses; IPv6 `ipv6_rcv()`: multicast, loopback, IPv4-mapped). Each such SYN
//! goes to the kernel untouched: it drops it, or answers it where a setting lets it
//! (`route_localnet`, `accept_local`, `accept_source_route`), which is then its business too.
//! Options the kernel echoes in its SYN-ACK (record route, timestamp, CIPSO) also go to it: our
//! SYN-ACK carries no IP options.

use syncookie_common::{proto::*, stats::Counter};

use crate::{
    csum::{fold, w32},
    parse::{Tcp, opaque, read},
};

/// Option items walked (a run of up to four NOPs counts as one): 40 bytes of NOPs fit; a header
/// with more items goes to the kernel.
const MAX_IP_OPTION_ITEMS: usize = 10;

/// Why the kernel would not let `t` (a SYN) reach a listener, by the fixed patterns of its
/// addresses and its IPv4 header; `None`: it would. The host's own addresses as a source are
/// [`crate::local::from_this_host`]'s. `from_lo`: received on the loopback device, whose
/// traffic the kernel does not route on input (its sources are this host's own addresses).
#[inline(always)]
pub fn refused(data: usize, end: usize, t: &Tcp, from_lo: bool) -> Option<Counter> {
    if from_lo {
        return if t.is_v6() {
            None
        } else {
            ipv4_header(data, end, t)
        };
    }
    // Tested on copies: a branch on the address itself would leave the verifier knowing
    // several ranges of it, and everything after (the MAC) checked once per range.
    let [a, b, c, d] = t.saddr.map(|w| opaque(w as usize) as u32);
    let [da, db, dc, dd] = t.daddr.map(|w| opaque(w as usize) as u32);
    if t.is_v6() {
        // Sources ff00::/8 (multicast), ::ffff:0:0/96 (IPv4-mapped), :: and ::1; the
        // destination ::1 (loopback, from outside).
        let multicast = a >> 24 == 0xff;
        let mapped = a == 0 && b == 0 && c == 0xffff;
        let low = a == 0 && b == 0 && c == 0 && d <= 1;
        let to_lo = da == 0 && db == 0 && dc == 0 && dd == 1;
        return (multicast || mapped || low || to_lo).then_some(Counter::Martian);
    }
    let first = a >> 24;
    // Sources 0/8, 127/8, 224/4 (multicast) and 255.255.255.255 (limited broadcast);
    // destinations 0/8 and 127/8 (loopback, from outside: route_localnet is 0 by default).
    if first == 0 || first == 127 || a >> 28 == 0xe || a == u32::MAX {
        return Some(Counter::Martian);
    }
    if da >> 24 == 0 || da >> 24 == 127 {
        return Some(Counter::Martian);
    }
    ipv4_header(data, end, t)
}

/// The IPv4 header's checksum and options. A function of its own (a BPF-to-BPF call): its
/// loops' states end at its return, instead of multiplying those of the code after it.
#[inline(never)]
fn ipv4_header(data: usize, end: usize, t: &Tcp) -> Option<Counter> {
    let Some(h) = read::<IPV4_HLEN>(data, end, t.l3_off()) else {
        return Some(Counter::IpHeaderBad);
    };
    let mut sum = 0u64;
    let mut i = 0;
    while i < IPV4_HLEN {
        sum += u16::from_be_bytes([h[i], h[i + 1]]) as u64;
        i += 2;
    }
    // The options: between the fixed header and TCP (ihl > 5 is rare: one branch otherwise).
    let opt_len = opaque(t.l4_off() - t.l3_off() - IPV4_HLEN) & 0x3f;
    if opt_len == 0 {
        return (fold(sum) != 0xffff).then_some(Counter::IpHeaderBad);
    }
    let base = t.l3_off() + IPV4_HLEN;
    let mut w = 0usize;
    for _ in 0..10 {
        if w >= opt_len {
            break;
        }
        let Some(b) = read::<4>(data, end, opaque(base + w)) else {
            return Some(Counter::IpHeaderBad);
        };
        sum += w32(u32::from_be_bytes(b));
        w += 4;
    }
    if fold(sum) != 0xffff {
        return Some(Counter::IpHeaderBad);
    }
    ipv4_options(data, end, base, opt_len)
}

/// ip_options_compile()'s verdict on receive, as far as it matters to us: malformed lengths
/// are refused; options the kernel echoes or acts on are its own to answer.
#[inline(always)]
fn ipv4_options(data: usize, end: usize, base: usize, opt_len: usize) -> Option<Counter> {
    let mut i = 0usize;
    for _ in 0..MAX_IP_OPTION_ITEMS {
        // Each way through an item leaves `i` another known value, and the verifier would
        // walk the next item once per value: behind `opaque` they are one range.
        i = opaque(i) & 0x3f;
        if i >= opt_len {
            return None;
        }
        // Four bytes at a time: the TCP header follows the options, so they are in the frame,
        // and a run of NOPs (the usual padding) is one step.
        let Some([kind, len, c, d]) = read::<4>(data, end, opaque(base + i)) else {
            return Some(Counter::IpHeaderBad);
        };
        if kind == IPOPT_END {
            return None;
        }
        if kind == IPOPT_NOOP {
            i += if len != IPOPT_NOOP {
                1
            } else if c != IPOPT_NOOP {
                2
            } else if d != IPOPT_NOOP {
                3
            } else {
                4
            };
            continue;
        }
        let len = len as usize;
        if len < 2 || i + len > opt_len {
            return Some(Counter::IpHeaderBad);
        }
        match kind {
            IPOPT_LSRR | IPOPT_SSRR => return Some(Counter::IpSourceRoute),
            IPOPT_RR | IPOPT_TS | IPOPT_CIPSO => return Some(Counter::IpOptionsKernel),
            IPOPT_RA if len != 4 => return Some(Counter::IpHeaderBad),
            _ => {}
        }
        i += len;
    }
    // More items than we walk: the kernel's to judge.
    (i < opt_len).then_some(Counter::IpOptionsKernel)
}
