//! Dumps through rtnetlink: the RTN_LOCAL and RTN_BROADCAST routes of the `local` table and
//! every link's MAC.

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{LinkAttribute, LinkMessage},
    route::{RouteAddress, RouteAttribute, RouteMessage, RouteType},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use syncookie_common::maps::{LOCAL_BROADCAST, V4_MAPPED_PREFIX, v4_mapped};

use super::{Local, LocalError, Prefix};

/// `RT_TABLE_LOCAL`: where the kernel keeps the addresses it accepts as its own.
const TABLE_LOCAL: u32 = 255;
/// A dump that changes under way is flagged (NLM_F_DUMP_INTR) and read again, this many times.
const ATTEMPTS: u32 = 5;
/// One datagram of a dump: the kernel fills at most 32 KiB (netlink_dump()).
const RECV_BUF: usize = 64 * 1024;

pub(super) fn local() -> Result<Local, LocalError> {
    let mut l = Local::default();
    for m in dump(
        "local routes",
        RouteNetlinkMessage::GetRoute(RouteMessage::default()),
    )? {
        if let RouteNetlinkMessage::NewRoute(r) = m
            && let Some((p, ifindex)) = local_prefix(&r)
        {
            keep_lowest(l.prefixes.entry(p).or_insert(ifindex), ifindex);
        }
    }
    for link in links()? {
        let ifindex = link.header.index;
        let (mut name, mut addr) = (None, None);
        for a in link.attributes {
            match a {
                // Ethernet-like links only: tunnels and other L3 devices have no 6-byte
                // address. `lo`'s is all zero: the programs take that one on `lo` only.
                LinkAttribute::Address(mac) => addr = <[u8; 6]>::try_from(mac.as_slice()).ok(),
                LinkAttribute::IfName(n) => name = Some(n),
                _ => {}
            }
        }
        if let Some(mac) = addr {
            keep_lowest(l.macs.entry(mac).or_insert(ifindex), ifindex);
            if let Some(n) = name {
                l.mac_of.insert(n, mac);
            }
        }
    }
    Ok(l)
}

/// Every link of the namespace.
pub(crate) fn links() -> Result<Vec<LinkMessage>, LocalError> {
    Ok(dump(
        "links",
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
    )?
    .into_iter()
    .filter_map(|m| match m {
        RouteNetlinkMessage::NewLink(link) => Some(link),
        _ => None,
    })
    .collect())
}

/// Several links or routes can carry the same MAC or prefix: the lowest ifindex, so that the
/// map does not change with the order of the dump.
fn keep_lowest(slot: &mut u32, ifindex: u32) {
    *slot = (*slot).min(ifindex);
}

/// The prefix of an RTN_LOCAL or RTN_BROADCAST route of the `local` table, and its interface
/// (with [`LOCAL_BROADCAST`] for a broadcast one).
fn local_prefix(r: &RouteMessage) -> Option<(Prefix, u32)> {
    let flag = match r.header.kind {
        RouteType::Local => 0,
        RouteType::Broadcast => LOCAL_BROADCAST,
        _ => return None,
    };
    let mut table = u32::from(r.header.table);
    let (mut dst, mut oif) = (None, 0);
    for a in &r.attributes {
        match a {
            // Tables above 255 are only in the attribute.
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(d) => dst = Some(d),
            RouteAttribute::Oif(i) => oif = *i,
            _ => {}
        }
    }
    if table != TABLE_LOCAL {
        return None;
    }
    let len = u32::from(r.header.destination_prefix_length);
    let p = match dst? {
        RouteAddress::Inet(a) => Prefix {
            addr: v4_mapped(u32::from(*a)),
            len: V4_MAPPED_PREFIX + len,
        },
        RouteAddress::Inet6(a) => Prefix {
            addr: a.octets(),
            len,
        },
        _ => return None,
    };
    Some((p, oif | flag))
}

fn nl_err(what: &'static str) -> impl FnOnce(std::io::Error) -> LocalError {
    move |cause| LocalError::Netlink { what, cause }
}

/// Every message of a dump, read again from the start when the kernel says it changed under way.
pub(super) fn dump(
    what: &'static str,
    req: RouteNetlinkMessage,
) -> Result<Vec<RouteNetlinkMessage>, LocalError> {
    for _ in 0..ATTEMPTS {
        if let Some(msgs) = dump_once(what, req.clone())? {
            return Ok(msgs);
        }
        log::debug!("rtnetlink dump of {what} interrupted by a change; reading it again");
    }
    Err(LocalError::Interrupted {
        what,
        attempts: ATTEMPTS,
    })
}

/// One dump; `None` when it was interrupted (NLM_F_DUMP_INTR).
fn dump_once(
    what: &'static str,
    req: RouteNetlinkMessage,
) -> Result<Option<Vec<RouteNetlinkMessage>>, LocalError> {
    let mut sock = Socket::new(NETLINK_ROUTE).map_err(nl_err(what))?;
    sock.bind_auto().map_err(nl_err(what))?;
    sock.connect(&SocketAddr::new(0, 0)).map_err(nl_err(what))?;
    let mut hdr = NetlinkHeader::default();
    hdr.flags = NLM_F_REQUEST | NLM_F_DUMP;
    hdr.sequence_number = 1;
    let mut msg = NetlinkMessage::new(hdr, NetlinkPayload::from(req));
    msg.finalize();
    let mut out = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut out);
    sock.send(&out, 0).map_err(nl_err(what))?;

    let mut msgs = Vec::new();
    let mut interrupted = false;
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        // More than the buffer only if truncated (MSG_TRUNC): the rest is lost either way.
        let n = sock
            .recv(&mut &mut buf[..], 0)
            .map_err(nl_err(what))?
            .min(buf.len());
        let mut off = 0;
        while off + 4 <= n {
            let len = u32::from_ne_bytes(buf[off..off + 4].try_into().expect("4 bytes")) as usize;
            if len == 0 || off + len > n {
                break;
            }
            match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..off + len]) {
                Ok(m) => {
                    interrupted |= m.header.flags & NLM_F_DUMP_INTR != 0;
                    match m.payload {
                        NetlinkPayload::Done(_) => return Ok((!interrupted).then_some(msgs)),
                        NetlinkPayload::Error(e) if e.code.is_some() => {
                            return Err(LocalError::Netlink {
                                what,
                                cause: e.to_io(),
                            });
                        }
                        NetlinkPayload::InnerMessage(m) => msgs.push(m),
                        _ => {}
                    }
                }
                // One entry the crate cannot read (a kernel newer than it): what it names is
                // left out of the maps, and its traffic passes to the kernel unprotected.
                Err(e) => log::warn!("skipping an rtnetlink message of the {what} dump: {e}"),
            }
            // NLMSG_ALIGN
            off += (len + 3) & !3;
        }
    }
}
