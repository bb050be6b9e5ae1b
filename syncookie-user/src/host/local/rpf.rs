//! The interface's IPv4 reverse-path filter, mirrored for the XDP program. With rp_filter on
//! (`max(conf.all, conf.IFACE)`: 1 strict, 2 loose), the kernel drops a segment whose source it
//! could not answer by the interface it came in on (`fib_validate_source()`): no route back, a
//! blackhole, unreachable or prohibit route, or (strict) a route out of another interface. Admins
//! use this with blackhole routes to refuse whole ranges. The program must not answer what the
//! kernel drops, so it looks the source up in `SC_RPF`: the routes of the `main` and `default`
//! tables (the tables of the kernel's default rules after `local`), each marked as passing the
//! filter on this interface or not.

use std::{collections::BTreeMap, net::Ipv4Addr};

use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    route::{RouteAddress, RouteAttribute, RouteMessage, RouteType},
};
use syncookie_common::maps::{RPF_PASSES, V4_MAPPED_PREFIX, v4_mapped};

use super::{LocalError, Prefix, dump};

/// `RT_TABLE_MAIN`, `RT_TABLE_DEFAULT`: looked up in this order after `local`.
const TABLE_MAIN: u32 = 254;
const TABLE_DEFAULT: u32 = 253;

/// The filter's mode on `iface` (0 off, 1 strict, 2 loose), read from this namespace's sysctls;
/// 0 when the interface is not in this namespace (nothing to mirror).
pub fn mode(iface: &str) -> u32 {
    let read = |dev: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{dev}/rp_filter"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
    };
    match read(iface) {
        Some(dev) => dev.max(read("all").unwrap_or(0)).min(2),
        None => 0,
    }
}

/// Whether a source routed by `r` passes the filter of `mode` on `ifindex`.
fn passes(r: &RouteMessage, mode: u32, ifindex: u32) -> bool {
    if r.header.kind != RouteType::Unicast {
        return false;
    }
    if mode != 1 {
        return true;
    }
    r.attributes.iter().any(|a| match a {
        RouteAttribute::Oif(i) => *i == ifindex,
        RouteAttribute::MultiPath(hops) => hops.iter().any(|h| h.interface_index == ifindex),
        _ => false,
    })
}

/// An IPv4 route of `main` or `default`: its prefix and table.
fn route_prefix(r: &RouteMessage) -> Option<(Prefix, u32)> {
    if r.header.address_family != AddressFamily::Inet {
        return None;
    }
    let mut table = u32::from(r.header.table);
    let mut dst = Ipv4Addr::UNSPECIFIED;
    for a in &r.attributes {
        match a {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = *d,
            _ => {}
        }
    }
    (table == TABLE_MAIN || table == TABLE_DEFAULT).then_some((
        Prefix {
            addr: v4_mapped(u32::from(dst)),
            len: V4_MAPPED_PREFIX + u32::from(r.header.destination_prefix_length),
        },
        table,
    ))
}

/// The trie `SC_RPF` should hold for `iface` (`ifindex`) under `mode` (empty when off): each
/// route's prefix -> `RPF_PASSES` or 0; `main`'s route wins over `default`'s for one prefix.
pub(super) fn want(mode: u32, ifindex: u32) -> Result<BTreeMap<Prefix, u32>, LocalError> {
    let mut out = BTreeMap::new();
    if mode == 0 {
        return Ok(out);
    }
    let mut from_default = BTreeMap::new();
    for m in dump::dump(
        "routes",
        RouteNetlinkMessage::GetRoute(RouteMessage::default()),
    )? {
        let RouteNetlinkMessage::NewRoute(r) = m else {
            continue;
        };
        let Some((p, table)) = route_prefix(&r) else {
            continue;
        };
        let v = if passes(&r, mode, ifindex) {
            RPF_PASSES
        } else {
            0
        };
        // Several routes for one prefix (metrics, TOS): any that passes lets it pass.
        let slot = if table == TABLE_MAIN {
            &mut out
        } else {
            &mut from_default
        };
        let e = slot.entry(p).or_insert(v);
        *e = (*e).max(v);
    }
    for (p, v) in from_default {
        out.entry(p).or_insert(v);
    }
    Ok(out)
}
