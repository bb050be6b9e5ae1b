//! VLAN tags the NIC strips before XDP: with `rx-vlan-offload` (or its 802.1ad twin)
//! on, a tagged frame reaches XDP untagged, its tag kept aside in the skb or the descriptor, and
//! the shield would answer a SYN of VLAN 10 with an untagged SYN-ACK, on the wrong VLAN. XDP can
//! read that tag only through the `bpf_xdp_metadata_rx_vlan_tag` kfunc, from a device-bound
//! program, which aya 0.14 cannot load: so `run` refuses an interface that strips tags and
//! carries VLAN devices, and says how to turn stripping off.
//!
//! - [`stripping`]: the interface's active features, through the ethtool ioctl.
//! - [`vlans_on`]: the VLAN devices on top of it, from an rtnetlink link dump.
//! - [`judge`]: what the two mean for the shield.

use std::{
    fmt,
    os::fd::{AsRawFd, OwnedFd},
};

use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};

use crate::host::local::{self, LocalError};

/// The feature names the kernel gives the two stripping offloads (`ethtool -k` shows the first
/// as `rx-vlan-offload`, its legacy name).
const CTAG_FEATURE: &str = "rx-vlan-hw-parse";
const STAG_FEATURE: &str = "rx-vlan-stag-hw-parse";
/// The VLAN devices the refusal names; the rest are counted.
const NAMED: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum VlanError {
    /// The hazard: tags stripped on an interface that carries VLANs.
    #[error("{0}")]
    Stripped(Box<Stripped>),
    #[error(
        "cannot read the features of {iface} (the ethtool ioctl {what}), needed to check that \
         VLAN tags reach XDP"
    )]
    Features {
        iface: String,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Links(#[from] LocalError),
}

/// Which rx VLAN stripping is active on an interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stripping {
    /// 802.1Q (`rx-vlan-hw-parse`, `ethtool -K IF rxvlan`).
    pub ctag: bool,
    /// 802.1ad (`rx-vlan-stag-hw-parse`).
    pub stag: bool,
}

impl Stripping {
    pub fn any(self) -> bool {
        self.ctag || self.stag
    }

    /// The active features, as `ethtool -k` names them.
    fn names(self) -> String {
        let mut v = Vec::new();
        if self.ctag {
            v.push("rx-vlan-offload");
        }
        if self.stag {
            v.push(STAG_FEATURE);
        }
        v.join(" and ")
    }

    /// The ethtool command that turns them off.
    fn fix(self, iface: &str) -> String {
        let mut cmd = format!("ethtool -K {iface}");
        if self.ctag {
            cmd.push_str(" rxvlan off");
        }
        if self.stag {
            cmd.push_str(&format!(" {STAG_FEATURE} off"));
        }
        cmd
    }
}

/// An interface that strips VLAN tags and has VLAN devices on top.
#[derive(Debug, PartialEq, Eq)]
pub struct Stripped {
    pub iface: String,
    pub stripping: Stripping,
    pub vlans: Vec<String>,
}

impl fmt::Display for Stripped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            iface,
            stripping,
            vlans,
        } = self;
        let mut named = vlans[..vlans.len().min(NAMED)].join(", ");
        if vlans.len() > NAMED {
            named.push_str(&format!(" and {} more", vlans.len() - NAMED));
        }
        write!(
            f,
            "{iface} strips VLAN tags before XDP sees them ({} on) and carries VLANs ({named}): \
             their SYNs would be answered untagged, on the wrong VLAN. Turn stripping off: `{}`",
            stripping.names(),
            stripping.fix(iface)
        )
    }
}

/// What stripping and the VLAN devices on `iface` mean for the shield: nothing (`Ok(None)`),
/// a note for the log (`Ok(Some)`: tags stripped, but no VLAN on the interface to answer), or
/// the refusal.
pub fn judge(
    iface: &str,
    stripping: Stripping,
    vlans: Vec<String>,
) -> Result<Option<String>, VlanError> {
    if !stripping.any() {
        return Ok(None);
    }
    if vlans.is_empty() {
        return Ok(Some(format!(
            "{iface} strips VLAN tags before XDP sees them ({} on): a tagged frame would look \
             untagged to the shield; {iface} has no VLAN device, so none is expected. Before \
             adding one, turn stripping off: `{}`",
            stripping.names(),
            stripping.fix(iface)
        )));
    }
    Err(VlanError::Stripped(Box::new(Stripped {
        iface: iface.into(),
        stripping,
        vlans,
    })))
}

/// Checks `iface` (index `ifindex`): refuses it when it strips tags and carries VLANs, logs a
/// note when it strips tags only.
pub fn check(iface: &str, ifindex: u32) -> Result<(), VlanError> {
    if let Some(note) = judge(iface, stripping(iface)?, vlans_on(ifindex)?)? {
        log::info!("{note}");
    }
    Ok(())
}

/// The VLAN devices (kind `vlan`, 802.1Q or 802.1ad) whose lower device is `ifindex`, in this
/// network namespace, by name.
pub fn vlans_on(ifindex: u32) -> Result<Vec<String>, VlanError> {
    Ok(vlans_of(ifindex, &local::links()?))
}

fn vlans_of(ifindex: u32, links: &[LinkMessage]) -> Vec<String> {
    links
        .iter()
        .filter(|l| {
            let a = &l.attributes;
            // IFLA_LINK_NETNSID: the lower device is in another namespace, where the index
            // names another device.
            a.contains(&LinkAttribute::Link(ifindex))
                && !a.iter().any(|a| matches!(a, LinkAttribute::LinkNetNsId(_)))
                && a.iter().any(|a| {
                    matches!(a, LinkAttribute::LinkInfo(i)
                        if i.contains(&LinkInfo::Kind(InfoKind::Vlan)))
                })
        })
        .filter_map(|l| {
            l.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            })
        })
        .collect()
}

// The ethtool ioctl (include/uapi/linux/ethtool.h): a stable ABI; the features' bit numbers
// are not (they move between kernels), so they are found by name.
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETHTOOL_GFEATURES: u32 = 0x3a;
const ETH_SS_FEATURES: u32 = 4;
const ETH_GSTRING_LEN: usize = 32;

/// `struct ethtool_sset_info` asking for one string set: its count comes back in `count`.
#[repr(C)]
struct SsetInfo {
    cmd: u32,
    reserved: u32,
    sset_mask: u64,
    count: u32,
}

/// The rx VLAN stripping active on `iface` (what `ethtool -k` shows as `rx-vlan-offload` and
/// `rx-vlan-stag-hw-parse`), in this network namespace.
pub fn stripping(iface: &str) -> Result<Stripping, VlanError> {
    let err = |what| {
        move |source| VlanError::Features {
            iface: iface.into(),
            what,
            source,
        }
    };
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| err("socket")(e.into()))?;
    let mut info = SsetInfo {
        cmd: ETHTOOL_GSSET_INFO,
        reserved: 0,
        sset_mask: 1 << ETH_SS_FEATURES,
        count: 0,
    };
    ethtool(&sock, iface, &mut info).map_err(err("ETHTOOL_GSSET_INFO"))?;
    if info.sset_mask & (1 << ETH_SS_FEATURES) == 0 {
        // Every kernel since 3.0 has the set; without it there are no such features.
        return Ok(Stripping::default());
    }
    let count = info.count as usize;
    // struct ethtool_gstrings: cmd, string_set, len, then `len` names of ETH_GSTRING_LEN bytes.
    let mut strings = vec![0u32; 3 + count * ETH_GSTRING_LEN / 4];
    strings[..3].copy_from_slice(&[ETHTOOL_GSTRINGS, ETH_SS_FEATURES, info.count]);
    ethtool(&sock, iface, strings.as_mut_slice()).map_err(err("ETHTOOL_GSTRINGS"))?;
    let names: Vec<u8> = strings[3..].iter().flat_map(|w| w.to_ne_bytes()).collect();
    let index = |want: &str| {
        names
            .chunks(ETH_GSTRING_LEN)
            .position(|n| n.split(|&b| b == 0).next() == Some(want.as_bytes()))
    };
    let (ctag, stag) = (index(CTAG_FEATURE), index(STAG_FEATURE));
    // struct ethtool_gfeatures: cmd, size (in blocks), then per block of 32 features:
    // available, requested, active, never_changed.
    let blocks = count.div_ceil(32);
    let mut features = vec![0u32; 2 + 4 * blocks];
    features[..2].copy_from_slice(&[ETHTOOL_GFEATURES, blocks as u32]);
    ethtool(&sock, iface, features.as_mut_slice()).map_err(err("ETHTOOL_GFEATURES"))?;
    let active = |i: Option<usize>| {
        // The third word of feature i's block.
        i.is_some_and(|i| features[2 + 4 * (i / 32) + 2] >> (i % 32) & 1 == 1)
    };
    Ok(Stripping {
        ctag: active(ctag),
        stag: active(stag),
    })
}

/// `ioctl(SIOCETHTOOL)` on `iface` with `data`, an ethtool command structure.
fn ethtool<T: ?Sized>(sock: &OwnedFd, iface: &str, data: &mut T) -> std::io::Result<()> {
    let mut req = crate::host::netdev::ifreq(iface);
    req.ifr_ifru.ifru_data = (data as *mut T).cast();
    // SAFETY: `req` names the interface (NUL-terminated) and points at `data`, a live ethtool
    // command structure as long as the kernel writes: GSSET_INFO asks for one set; GSTRINGS
    // writes the set's count of names, the count GSSET_INFO gave (the feature set's is fixed in
    // a running kernel); GFEATURES writes no more blocks than the size passed.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL as libc::Ioctl, &mut req) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
