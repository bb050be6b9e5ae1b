//! Locality: what this host accepts as its own, kept in the shield's maps. The kernel
//! takes a TCP segment only when its frame is for one of its MAC addresses and its destination
//! routes locally (an RTN_LOCAL route of the `local` table, on any interface: Linux is a weak
//! host). A wildcard listener matches any destination, so the XDP program checks both maps before
//! it answers a SYN or drops an ACK: on a router, a bridge or a Kubernetes node it leaves other
//! hosts' traffic alone. Everything here works in the calling thread's network namespace.
//!
//! - [`dump`]: the local routes and the links' MAC addresses, from rtnetlink.
//! - [`maps`]: the pinned `SC_LOCAL_ADDRS` (LPM trie) and `SC_LOCAL_MACS`, brought in line.
//! - [`rpf`]: the interface's IPv4 reverse-path filter, mirrored into `SC_RPF`.
//! - [`watch`]: rtnetlink notifications, so that `syncookie run` re-syncs when they change.

mod dump;
mod maps;
mod rpf;
mod watch;

use std::collections::BTreeMap;

use syncookie_common::maps::{LocalAddr, Mac};

pub(crate) use dump::links;
pub use maps::Changes;
pub use watch::Watcher;

use crate::bpf::pins::PinDir;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The cause is in the message, not a `source`: a chain printer would say it twice.
    #[error(
        "rtnetlink ({what}): {cause}; the shield reads this namespace's local routes and \
         interfaces through NETLINK_ROUTE: run it as root in the namespace it protects"
    )]
    Netlink {
        what: &'static str,
        cause: std::io::Error,
    },
    #[error(
        "rtnetlink ({what}): the dump was interrupted by changes {attempts} times in a row; \
         try again when the routes settle"
    )]
    Interrupted { what: &'static str, attempts: u32 },
    #[error(transparent)]
    Pinned(#[from] crate::bpf::pinned::PinnedError),
    #[error("updating pinned map {name}: {source}")]
    Update {
        name: &'static str,
        source: aya::maps::MapError,
    },
}

/// A prefix of the `local` table, as the LPM trie keys it: IPv4 as IPv4-mapped IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Prefix {
    pub addr: LocalAddr,
    /// In bits of `addr` (an IPv4 /32 is 128).
    pub len: u32,
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = std::net::Ipv6Addr::from(self.addr);
        match a.to_ipv4_mapped() {
            Some(v4) if self.len >= syncookie_common::maps::V4_MAPPED_PREFIX => {
                write!(
                    f,
                    "{v4}/{}",
                    self.len - syncookie_common::maps::V4_MAPPED_PREFIX
                )
            }
            _ => write!(f, "{a}/{}", self.len),
        }
    }
}

/// What this namespace accepts: local prefixes and MAC addresses, each with the lowest ifindex
/// that carries it (shown by `bpftool map dump`; the XDP program only asks whether it is there).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Local {
    pub prefixes: BTreeMap<Prefix, u32>,
    pub macs: BTreeMap<Mac, u32>,
    /// Each Ethernet-like interface's MAC, by name.
    pub mac_of: BTreeMap<String, Mac>,
}

impl Local {
    /// Reads the namespace's local routes and link addresses.
    pub fn read() -> Result<Self, LocalError> {
        dump::local()
    }
}

/// Reads what this namespace accepts (and what the interface's reverse-path filter refuses)
/// and brings the shield's maps in `pins` in line with it.
pub fn sync(pins: &PinDir) -> Result<Changes, LocalError> {
    let want = Local::read()?;
    let mut maps = maps::LocalMaps::open(pins)?;
    let mut c = maps.sync(&want)?;
    maps.set_iface_mac(want.mac_of.get(&pins.iface).copied().unwrap_or_default())?;
    let mode = rpf::mode(&pins.iface);
    let ifindex = nix::net::if_::if_nametoindex(pins.iface.as_str()).unwrap_or(0);
    let r = maps.sync_rpf(mode, &rpf::want(mode, ifindex)?)?;
    c.added += r.added;
    c.removed += r.removed;
    c.left_out += r.left_out;
    Ok(c)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(m: &Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use syncookie_common::maps::{V4_MAPPED_PREFIX, v4_mapped};

    use super::Prefix;

    /// The eBPF program's keys and the daemon's agree with std on IPv4-mapped addresses.
    #[test]
    fn ipv4_keys_are_ipv4_mapped_and_shown_as_ipv4() {
        let a = Ipv4Addr::new(192, 0, 2, 7);
        assert_eq!(v4_mapped(u32::from(a)), a.to_ipv6_mapped().octets());
        let p = Prefix {
            addr: v4_mapped(u32::from(Ipv4Addr::new(127, 0, 0, 0))),
            len: V4_MAPPED_PREFIX + 8,
        };
        assert_eq!(p.to_string(), "127.0.0.0/8");
        let p = Prefix {
            addr: Ipv6Addr::LOCALHOST.octets(),
            len: 128,
        };
        assert_eq!(p.to_string(), "::1/128");
    }
}
