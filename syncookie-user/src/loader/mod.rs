//! Loads the programs (kfunc calls linked), fills the maps, and attaches XDP and TC ingress to an
//! interface. Maps are pinned under the interface's pin directory; a `Shield` detaches and
//! removes everything it created.

use std::path::Path;

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData},
    programs::{
        SchedClassifier, TcAttachType, Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        tc::SchedClassifierLink,
        xdp::XdpLink,
    },
};

use syncookie_common::maps::{
    Config, GLOBAL_SKIP, KFUNC_ASSIGN_REQSK, LINK_TC, LINK_XDP, MAP_CONFIG, MAP_KC_CONF, MAP_PORTS,
    PORTS_LEN, PROG_TC, PROG_XDP, PROG_XDP_EXT, kernel_cookies, port_word,
};

mod shared;

use shared::{config_map_id, hook, share_plan};

use crate::{
    EBPF_OBJECT, btf_fix,
    kernel::{self, Cookies, KernelError},
    keys::{KeyError, Keys},
    kfunc::{self, KfuncError},
    local::{self, LocalError},
    netdev::{self, NetdevError, XdpOwner},
    pinned::PinnedMaps,
    pins::{PinDir, PinError},
    share::{self, OnHook},
    synack_config,
    sysctl::{self, Kernel, SysctlError},
    vlan::{self, VlanError},
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
    BtfFix(#[from] crate::btf_fix::BtfFixError),
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
    #[error(
        "{iface} has no native XDP (its driver does not support it): run with --xdp-mode skb \
         (generic XDP, slower)"
    )]
    NoNativeXdp { iface: String },
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
    /// carry every option (`crate::timestamps`).
    pub timestamps_2: bool,
    /// libxdp's dispatcher: whether to start one, and the shield's place in it.
    pub share: share::Settings,
}

/// A fleet's shared master key and its rotation period.
#[derive(Clone, Debug)]
pub struct Fleet {
    pub master: std::sync::Arc<crate::fleet::MasterKey>,
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

/// The errno of a failed attach, when the kernel gave one.
fn errno(e: &aya::programs::ProgramError) -> Option<nix::errno::Errno> {
    match e {
        aya::programs::ProgramError::SyscallError(s) => {
            s.io_error.raw_os_error().map(nix::errno::Errno::from_raw)
        }
        _ => None,
    }
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

/// Runs a program load, again when the verifier gave up with EAGAIN: it does when a signal
/// reaches the loading thread while it works (seen about once in 40 loads on a busy machine).
/// libbpf retries such loads; aya 0.14 does not.
pub fn load_retrying(
    mut load: impl FnMut() -> Result<(), aya::programs::ProgramError>,
) -> Result<(), aya::programs::ProgramError> {
    const ATTEMPTS: u32 = 5;
    let mut attempt = 1;
    loop {
        match load() {
            Err(aya::programs::ProgramError::LoadError { io_error, .. })
                if io_error.raw_os_error() == Some(nix::errno::Errno::EAGAIN as i32)
                    && attempt < ATTEMPTS =>
            {
                log::debug!("program load interrupted (EAGAIN), attempt {attempt}");
                attempt += 1;
            }
            res => return res,
        }
    }
}

/// The link a previous run left pinned at `path`, unpinned so that it can be handed to a program
/// (it is pinned again right after). `None` when there is none.
fn take_over(path: &Path) -> Result<Option<FdLink>, LoadError> {
    if !path.exists() {
        return Ok(None);
    }
    let link = PinnedLink::from_pin(path).map_err(LoadError::Link)?;
    link.unpin().map(Some).map_err(|source| {
        LoadError::Pin(PinError::Io {
            path: path.into(),
            source,
        })
    })
}

/// The result of taking a link over; a link that cannot be (its interface is gone) is dropped.
fn stale<T>(r: Result<T, aya::programs::ProgramError>) -> Option<T> {
    r.map_err(|e| log::warn!("a pinned link could not be taken over ({e}); attaching anew"))
        .ok()
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

fn pin(link: FdLink, path: &Path) -> Result<PinnedLink, LoadError> {
    link.pin(path)
        .map_err(|e| LoadError::LinkPin(path.into(), e))
}

pub(crate) fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> LoadError {
    move |source| LoadError::Map { name, source }
}

/// The eBPF object with its kfunc calls linked against the running kernel.
pub fn linked_object() -> Result<Vec<u8>, LoadError> {
    let ids = kfunc::kernel_btf_ids()?;
    let (mut obj, _) = kfunc::patch(EBPF_OBJECT, &[KFUNC_ASSIGN_REQSK], ids)?;
    btf_fix::sanitize(&mut obj)?;
    Ok(obj)
}

/// The object for `cookies`: linked for full mode. Kernel-cookie mode's program calls no
/// kfunc, and the TC program, which does, is not loaded then: its call is only marked as a
/// kfunc call (with an id no kernel has) so that aya, which cannot resolve the symbol, accepts
/// the object; the kernel's BTF is not read.
pub fn object_for(cookies: Cookies) -> Result<Vec<u8>, LoadError> {
    match cookies {
        Cookies::Own => linked_object(),
        Cookies::Kernel => {
            let (mut obj, _) =
                kfunc::patch(EBPF_OBJECT, &[KFUNC_ASSIGN_REQSK], |_| Some(u32::MAX))?;
            btf_fix::sanitize(&mut obj)?;
            Ok(obj)
        }
    }
}

/// Writes kernel-cookie mode's refresh period.
pub fn write_refresh(ebpf: &mut Ebpf, secs: u64) -> Result<(), LoadError> {
    let map = ebpf.map_mut(MAP_KC_CONF).expect("object has SC_KC_CONF");
    let mut arr: Array<&mut MapData, u64> = Array::try_from(map).map_err(map_err(MAP_KC_CONF))?;
    arr.set(
        kernel_cookies::KC_REFRESH_NS,
        secs.saturating_mul(1_000_000_000),
        0,
    )
    .map_err(map_err(MAP_KC_CONF))
}

/// Loads the object with its maps pinned (or reused) in `pins`.
pub fn load(pins: &PinDir) -> Result<Ebpf, LoadError> {
    load_linked(pins, &linked_object()?, 0, false)
}

/// [`load`], kernel-cookie mode making its cookies on the listener as on 5.x (the packet tests
/// run that variant on the host's kernel, which has both helpers).
pub fn load_on_listener(pins: &PinDir) -> Result<Ebpf, LoadError> {
    load_linked(pins, &linked_object()?, 0, true)
}

/// [`load`] with the `stages` (`syncookie_common::maps::stage`) left out: the bench's way of
/// pricing each stage. Never for protection.
pub fn load_skipping(pins: &PinDir, stages: u32) -> Result<Ebpf, LoadError> {
    load_linked(pins, &linked_object()?, stages, false)
}

/// Loads `obj`, an object [`linked_object`] made, with its maps pinned (or reused) in `pins`;
/// `listener`: kernel-cookie mode makes its cookies on the listener (5.x, see `kernel`).
fn load_linked(pins: &PinDir, obj: &[u8], skip: u32, listener: bool) -> Result<Ebpf, LoadError> {
    pins.create()?;
    pins.check_layout()?;
    Ok(EbpfLoader::new()
        .default_map_pin_directory(&pins.dir)
        // A constant for the verifier: log sites below this level are removed at load.
        .override_global(aya_log::LEVEL, &crate::ebpf_log::level(), true)
        .override_global(GLOBAL_SKIP, &skip, true)
        .override_global(kernel_cookies::GLOBAL_LISTENER, &u32::from(listener), true)
        .load(obj)?)
}

pub fn write_config(ebpf: &mut Ebpf, cfg: Config) -> Result<(), LoadError> {
    let map = ebpf.map_mut(MAP_CONFIG).expect("object has SC_CONFIG");
    let mut arr: Array<&mut MapData, Config> = Array::try_from(map).map_err(map_err(MAP_CONFIG))?;
    arr.set(0, cfg, 0).map_err(map_err(MAP_CONFIG))
}

pub fn write_ports(ebpf: &mut Ebpf, ports: &[u16]) -> Result<(), LoadError> {
    let map = ebpf.map_mut(MAP_PORTS).expect("object has SC_PORTS");
    let mut arr: Array<&mut MapData, u32> = Array::try_from(map).map_err(map_err(MAP_PORTS))?;
    let mut words = vec![0u32; PORTS_LEN as usize];
    for &p in ports {
        let (w, bit) = port_word(p);
        words[w as usize] |= bit;
    }
    for (i, w) in words.into_iter().enumerate() {
        arr.set(i as u32, w, 0).map_err(map_err(MAP_PORTS))?;
    }
    Ok(())
}

/// Why XDP could not be attached, in the admin's terms where the kernel's errno tells.
fn xdp_attach_error(opts: &Options, e: aya::programs::ProgramError) -> LoadError {
    use nix::errno::Errno;
    match errno(&e) {
        // Another program (or link) holds the hook; in the other mode: EEXIST.
        Some(Errno::EBUSY | Errno::EEXIST) => {
            let owner = netdev::ifindex(&opts.iface)
                .and_then(|i| netdev::xdp_owner(&opts.iface, i))
                .ok()
                .flatten();
            if let Some(o) = owner {
                return LoadError::XdpTaken(Box::new(o));
            }
        }
        Some(Errno::EOPNOTSUPP) if opts.xdp_mode == XdpModeArg::Native => {
            return LoadError::NoNativeXdp {
                iface: opts.iface.clone(),
            };
        }
        _ => {}
    }
    prog_err(format!("attaching XDP to {}", opts.iface))(e)
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
    pub fn preflight(opts: &Options, cookies: Cookies) -> Result<(Vec<u8>, Kernel), LoadError> {
        let ifindex = netdev::ifindex(&opts.iface)?;
        let obj = object_for(cookies)?;
        let kernel = Kernel::read()?;
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
            if opts.timestamps_2 && crate::timestamps::set_2(&kernel)? {
                kernel = Kernel::read()?;
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
        let mut keys = Keys::open(&opts.pins)?;
        match &opts.fleet {
            Some(f) => keys.sync_fleet(&f.master, crate::fleet::wall_epoch(f.period_secs))?,
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

    fn attach_programs(&mut self, opts: &Options, shared: Option<bool>) -> Result<(), LoadError> {
        if self.cookies == Cookies::Kernel {
            // No TC program: a full-mode run's TC link, if one was left, goes.
            drop(take_over(&self.pins.map(LINK_TC))?);
            crate::kc_tail::install(&mut self.ebpf)?;
            return match shared {
                Some(skb) => self.join(opts, kernel_cookies::PROG_XDP_EXT, skb),
                None => self.attach_xdp(opts, kernel_cookies::PROG_XDP),
            };
        }
        let iface = &opts.iface;
        let tc: &mut SchedClassifier = self
            .ebpf
            .program_mut(PROG_TC)
            .expect("object has the TC program")
            .try_into()
            .map_err(prog_err("TC program"))?;
        load_retrying(|| tc.load()).map_err(prog_err("loading the TC program"))?;
        let tc_pin = self.pins.map(LINK_TC);
        // A link left by a previous run is taken over; one whose interface has gone away (it was
        // re-created since) cannot be, and a fresh attachment replaces it.
        let taken = take_over(&tc_pin)?
            .and_then(|link| SchedClassifierLink::try_from(link).ok())
            .and_then(|link| stale(tc.attach_to_link(link)));
        let id = match taken {
            Some(id) => id,
            // TCX (Linux 6.6+): a link, no qdisc to create or leave behind.
            None => tc
                .attach(iface, TcAttachType::Ingress)
                .map_err(prog_err(format!("attaching TC ingress to {iface}")))?,
        };
        let link = tc.take_link(id).map_err(prog_err("TC link"))?;
        self.tc = Some(pin(
            FdLink::try_from(link).map_err(LoadError::Link)?,
            &tc_pin,
        )?);
        match shared {
            Some(skb) => self.join(opts, PROG_XDP_EXT, skb),
            None => self.attach_xdp(opts, PROG_XDP),
        }
    }

    /// Loads the XDP program `name` and attaches it (or swaps it into a pinned link).
    fn attach_xdp(&mut self, opts: &Options, name: &str) -> Result<(), LoadError> {
        let iface = &opts.iface;
        let xdp: &mut Xdp = self
            .ebpf
            .program_mut(name)
            .expect("object has the XDP program")
            .try_into()
            .map_err(prog_err("XDP program"))?;
        load_retrying(|| xdp.load()).map_err(prog_err("loading the XDP program"))?;
        let xdp_pin = self.pins.map(LINK_XDP);
        // A link taken over keeps the XDP mode it was made with: `syncookie detach` to change it.
        let taken = take_over(&xdp_pin)?
            .and_then(|link| XdpLink::try_from(link).ok())
            .and_then(|link| stale(xdp.attach_to_link(link)));
        let id = match taken {
            Some(id) => id,
            None => xdp
                .attach(iface, opts.xdp_mode.mode())
                .map_err(|e| xdp_attach_error(opts, e))?,
        };
        let link = xdp.take_link(id).map_err(prog_err("XDP link"))?;
        self.xdp = Some(pin(
            FdLink::try_from(link).map_err(LoadError::Link)?,
            &xdp_pin,
        )?);
        Ok(())
    }

    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Detaches both programs and removes the pins: nothing is left on the interface.
    /// Forwards the programs' own messages to the daemon's logger (see [`crate::ebpf_log`]).
    pub fn forward_logs(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        crate::ebpf_log::forward(&mut self.ebpf)
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
