//! Loads the programs (kfunc calls linked), fills the maps, and attaches XDP and TC ingress to an
//! interface. Maps are pinned under the interface's pin directory; a `Shield` detaches and
//! removes everything it created. The object and its maps: `object`; attaching alone, through
//! pinned links: `attach`; in libxdp's dispatcher: `shared`.

use aya::{
    Ebpf,
    programs::{XdpMode, links::PinnedLink},
};
use syncookie_common::maps::{Config, LINK_TC, LINK_XDP, PROG_XDP};

mod attach;
mod object;
mod shared;

use attach::take_over;
use object::load_linked;
pub use object::{
    linked_object, load, load_on_listener, load_retrying, load_skipping, object_for, write_config,
    write_ports, write_refresh,
};
use shared::{config_map_id, hook, share_plan};

use crate::{
    bpf::{
        kfunc::KfuncError,
        pinned::PinnedMaps,
        pins::{PinDir, PinError},
        share::{self, OnHook},
    },
    host::{
        kernel::{self, Cookies, KernelError},
        local::{self, LocalError},
        netdev::{self, NetdevError, XdpOwner},
        synack_config,
        sysctl::{self, SysctlError, TcpSettings},
        vlan::{self, VlanError},
    },
    keys::{KeyError, KeyMaps},
};

// Each variant either names its cause in its message or gives it as its `source`, never both:
// the CLI prints the chain of sources after the message.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Netdev(#[from] NetdevError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    #[error(transparent)]
    Kfunc(#[from] KfuncError),
    #[error(transparent)]
    BtfFix(#[from] crate::bpf::btf_fix::BtfFixError),
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error(transparent)]
    Share(#[from] share::ShareError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Local(#[from] LocalError),
    /// The interface strips VLAN tags and carries VLANs (or its features cannot be read).
    #[error(transparent)]
    Vlan(#[from] VlanError),
    #[error("loading the eBPF object")]
    Ebpf(#[from] aya::EbpfError),
    #[error("{what}")]
    Program {
        what: String,
        source: aya::programs::ProgramError,
    },
    #[error("map {name}")]
    Map {
        name: &'static str,
        source: aya::maps::MapError,
    },
    #[error("taking over the pinned link")]
    Link(#[source] aya::programs::links::LinkError),
    #[error("pinning a link at {}", .0.display())]
    LinkPin(std::path::PathBuf, #[source] aya::pin::PinError),
    /// Another program holds the interface's XDP hook: which, and how to remove it.
    #[error("{0}")]
    XdpTaken(Box<XdpOwner>),
    #[error("{}", no_native_xdp(iface, driver.as_deref()))]
    NoNativeXdp {
        iface: String,
        /// The NIC's driver; `None` for a virtual interface without one (a bridge, a bond).
        driver: Option<String>,
    },
}

/// Why native XDP was refused, with the fix: virtio_net refuses it while the host keeps receive
/// offloads on that the guest may not switch off (qemu's `ctrl_guest_offloads=off` with any
/// `guest_*` offload on), a case worth its own advice since KVM clouds run it.
fn no_native_xdp(iface: &str, driver: Option<&str>) -> String {
    const SKB: &str = "run with --xdp-mode skb (generic XDP, slower)";
    match driver {
        Some("virtio_net") => format!(
            "{iface} (virtio_net) refused native XDP: the host must let the guest switch receive \
             offloads off (qemu's ctrl_guest_offloads, on by default) or switch them off itself \
             (guest_tso4, guest_tso6, guest_ecn, guest_ufo, guest_uso4, guest_uso6, guest_csum); \
             or {SKB}"
        ),
        Some(d) => format!(
            "{iface} has no native XDP (its driver {d} does not support it, or refused it: the \
             kernel log says why): {SKB}"
        ),
        None => format!("{iface} has no native XDP (its driver does not support it): {SKB}"),
    }
}

/// How XDP runs: in the driver (native) or on the skb (generic, any interface).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpModeArg {
    Native,
    Skb,
}

impl XdpModeArg {
    fn mode(self) -> XdpMode {
        match self {
            Self::Native => XdpMode::Driver,
            Self::Skb => XdpMode::Skb,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub iface: String,
    pub ports: Vec<u16>,
    pub xdp_mode: XdpModeArg,
    pub pins: PinDir,
    pub policy: crate::policy::Policy,
    /// Fleet keys (derived from a master key and the wall clock) instead of random ones.
    pub fleet: Option<Fleet>,
    /// Whose cookies: `None` picks by what the kernel has (own where the kfunc is).
    pub cookies: Option<Cookies>,
    /// Kernel-cookie mode: seconds between the SYNs left to the kernel to renew its overflow
    /// stamp, per local address and port.
    pub refresh_secs: u64,
    /// Kernel-cookie mode: the admin allows net.ipv4.tcp_timestamps=2, which lets SYN-ACKs
    /// carry every option (`crate::host::timestamps`).
    pub timestamps_2: bool,
    /// libxdp's dispatcher: whether to start one, and the shield's place in it.
    pub share: share::Settings,
}

/// A fleet's shared master key and its rotation period.
#[derive(Clone, Debug)]
pub struct Fleet {
    pub master: std::sync::Arc<crate::keys::fleet::MasterKey>,
    pub period_secs: u64,
}

pub struct Shield {
    ebpf: Ebpf,
    xdp: Option<PinnedLink>,
    /// In libxdp's dispatcher on this interface (the dispatcher's pins hold the program).
    shared: Option<share::Hook>,
    tc: Option<PinnedLink>,
    pub pins: PinDir,
    pub config: Config,
    /// The mode running.
    pub cookies: Cookies,
}

pub(crate) fn prog_err(
    what: impl Into<String>,
) -> impl FnOnce(aya::programs::ProgramError) -> LoadError {
    let what = what.into();
    move |source| LoadError::Program { what, source }
}

/// Another program's XDP on the interface: the shield's own (a pinned link of a previous run of
/// this pin directory, which `run` takes over) does not count. Without CAP_SYS_ADMIN the name
/// is unknown: the attach then tells whether the hook was free.
fn foreign_xdp(opts: &Options, ifindex: u32) -> Result<Option<XdpOwner>, LoadError> {
    let owner = netdev::xdp_owner(&opts.iface, ifindex)?;
    let ours = |o: &XdpOwner| {
        opts.pins.map(LINK_XDP).exists() && o.name.as_deref().is_none_or(|n| n == PROG_XDP)
    };
    Ok(owner.filter(|o| !ours(o)))
}

/// Removes a shield whose daemon is gone: its links, then its maps and pins. Each link is opened
/// before its pin goes, and closed after: a link whose last reference goes with its pin is freed
/// later, from a kernel work queue, and its program would stay attached for a moment after
/// `syncookie detach` said it was gone; closing the last file does it at once.
pub fn remove_pinned(pins: &PinDir, iface: &str) -> Result<(), LoadError> {
    if let Ok(ifindex) = netdev::ifindex(iface)
        && let Ok(id) = PinnedMaps::new(pins).config().and_then(|m| m.id())
    {
        share::Hook {
            iface: iface.into(),
            ifindex,
        }
        .leave(id)?;
    }
    for name in [LINK_XDP, LINK_TC] {
        drop(take_over(&pins.map(name))?);
    }
    Ok(pins.remove()?)
}

pub(crate) fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> LoadError {
    move |source| LoadError::Map { name, source }
}

impl Shield {
    /// Checks the kernel, loads, configures and attaches. Keys left by a previous run are kept.
    pub fn attach(opts: &Options) -> Result<Self, LoadError> {
        // First: on a kernel that cannot run us, say which feature it lacks, before a missing
        // sysctl or the verifier says something less useful.
        let cookies = kernel::choose(opts.cookies)?;
        let fresh = !opts.pins.exists();
        let res = Self::attach_inner(opts, cookies);
        if res.is_err() && fresh {
            // Nothing of a previous run to keep: leave no trace of this failed one.
            let _ = opts.pins.remove();
        }
        res
    }

    /// Everything that can be told before the first change: the interface, the kernel (BTF,
    /// the kfunc, its settings), pins of another version, another program on the XDP hook, VLAN
    /// tags the NIC would hide from XDP. Runs again at each re-attach (`run`, when the interface
    /// comes back). Returns the linked object and the kernel's settings.
    pub fn preflight(
        opts: &Options,
        cookies: Cookies,
    ) -> Result<(Vec<u8>, TcpSettings), LoadError> {
        let ifindex = netdev::ifindex(&opts.iface)?;
        let obj = object_for(cookies)?;
        let kernel = TcpSettings::read()?;
        kernel.check()?;
        opts.pins.check_layout()?;
        if let Some(owner) = foreign_xdp(opts, ifindex)? {
            // libxdp's dispatcher is joined: one of a version we know, in a mode we can join.
            if !owner.is_libxdp_dispatcher()
                || matches!(hook(opts, ifindex).on_hook()?, OnHook::Other)
            {
                return Err(LoadError::XdpTaken(Box::new(owner)));
            }
        }
        vlan::check(&opts.iface, ifindex)?;
        Ok((obj, kernel))
    }

    fn attach_inner(opts: &Options, cookies: Cookies) -> Result<Self, LoadError> {
        let (obj, mut kernel) = Self::preflight(opts, cookies)?;
        let mtu = synack_config::mtu(&opts.iface)?;
        if cookies == Cookies::Kernel {
            // The kernel renews a listener's overflow stamp only when it answers a SYN with a
            // cookie itself: at 2 it does for every SYN we leave to it.
            sysctl::set_syncookies_2(kernel.syncookies)?;
            if opts.timestamps_2 && crate::host::timestamps::set_2(&kernel)? {
                kernel = TcpSettings::read()?;
            }
        }
        let listener = cookies == Cookies::Kernel && kernel::listener_cookies();
        if listener {
            log::info!("{}", kernel::LISTENER_NOTE);
        }
        let mut ebpf = load_linked(&opts.pins, &obj, 0, listener)?;
        let shared = share_plan(opts)?;
        // Generic XDP may deliver no metadata to TC: let TC re-check the cookie then (in a
        // dispatcher: in the dispatcher's mode).
        let skb = shared.unwrap_or(opts.xdp_mode == XdpModeArg::Skb);
        let mut config = kernel.config(mtu, skb);
        let ipv6 = sysctl::Ipv6::read(&opts.iface)?;
        if !ipv6.enabled {
            log::warn!(
                "IPv6 is disabled on {} (no IPv6 in this namespace, or \
                 net.ipv6.conf.{{all,{}}}.disable_ipv6=1): only IPv4 is protected; IPv6 frames \
                 pass untouched",
                opts.iface,
                opts.iface
            );
        }
        ipv6.apply(&mut config);
        opts.policy.apply(&mut config);
        if opts.fleet.is_some() {
            config.flags |= syncookie_common::maps::flags::FLEET;
        }
        if cookies == Cookies::Kernel {
            config.flags |= syncookie_common::maps::flags::KERNEL_COOKIES;
            // Set by the admin or by us: the options ride in the kernel's timestamp cookie.
            if kernel.timestamps_2 {
                config.flags |= syncookie_common::maps::flags::KERNEL_TS;
            }
            write_refresh(&mut ebpf, opts.refresh_secs)?;
        }
        write_config(&mut ebpf, config)?;
        write_ports(&mut ebpf, &opts.ports)?;
        let mut keys = KeyMaps::open(&opts.pins)?;
        match &opts.fleet {
            Some(f) => keys.sync_fleet(&f.master, crate::keys::fleet::wall_epoch(f.period_secs))?,
            None => keys.ensure()?,
        };
        // Before attaching: with empty maps nothing would be taken as local, and passed.
        local::sync(&opts.pins)?;
        let mut shield = Self {
            ebpf,
            xdp: None,
            shared: None,
            tc: None,
            pins: opts.pins.clone(),
            config,
            cookies,
        };
        if let Err(e) = shield.attach_programs(opts, shared) {
            shield.detach();
            return Err(e);
        }
        Ok(shield)
    }

    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Detaches both programs and removes the pins: nothing is left on the interface.
    /// Forwards the programs' own messages to the daemon's logger (see [`crate::bpf::ebpf_log`]).
    pub fn forward_logs(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        crate::bpf::ebpf_log::forward(&mut self.ebpf)
    }

    pub fn detach(mut self) {
        // Out of the dispatcher first: the other programs keep running.
        if let Some(hook) = self.shared.take()
            && let Err(e) = config_map_id(&self.ebpf).and_then(|id| Ok(hook.leave(id)?))
        {
            log::warn!("leaving libxdp's dispatcher on {}: {e}", hook.iface);
        }
        // Unpinned and dropped, a link is gone and its program detached.
        for link in [self.xdp.take(), self.tc.take()].into_iter().flatten() {
            if let Err(e) = link.unpin() {
                log::warn!("unpinning a link: {e}");
            }
        }
        let pins = self.pins.clone();
        drop(self.ebpf);
        if let Err(e) = pins.remove() {
            log::warn!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::no_native_xdp;

    /// The refusal names the fix that applies: the host's offloads on virtio_net, else skb mode.
    #[test]
    fn no_native_xdp_advice_follows_the_driver() {
        let virtio = no_native_xdp("eth0", Some("virtio_net"));
        assert!(virtio.contains("ctrl_guest_offloads") && virtio.contains("guest_csum"));
        assert!(virtio.ends_with("or run with --xdp-mode skb (generic XDP, slower)"));
        let other = no_native_xdp("eth1", Some("r8169"));
        assert!(other.contains("its driver r8169 does not support it"));
        assert!(!other.contains("ctrl_guest_offloads"));
        assert_eq!(
            no_native_xdp("br0", None),
            "br0 has no native XDP (its driver does not support it): run with --xdp-mode skb \
             (generic XDP, slower)"
        );
    }
}
