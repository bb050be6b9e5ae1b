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
    Config, KFUNC_ASSIGN_REQSK, LINK_TC, LINK_XDP, MAP_CONFIG, MAP_PORTS, PORTS_LEN, PROG_TC,
    PROG_XDP, port_word,
};

use crate::{
    EBPF_OBJECT,
    keys::{KeyError, Keys},
    kfunc::{self, KfuncError},
    local::{self, LocalError},
    pins::{PinDir, PinError},
    sysctl::{self, Kernel, SysctlError},
};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    #[error(transparent)]
    Kfunc(#[from] KfuncError),
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error("loading the eBPF object: {0}")]
    Ebpf(#[from] aya::EbpfError),
    #[error("{what}: {source}{hint}")]
    Program {
        what: String,
        source: aya::programs::ProgramError,
        hint: &'static str,
    },
    #[error("map {0}: {1}")]
    Map(&'static str, aya::maps::MapError),
    #[error("taking over the pinned link: {0}")]
    Link(aya::programs::links::LinkError),
    #[error("pinning a link at {0}: {1}")]
    LinkPin(std::path::PathBuf, aya::pin::PinError),
    #[error("no interface named {0} in this network namespace")]
    NoInterface(String),
}

/// How XDP runs: in the driver (native) or on the skb (generic, any interface).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
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
}

pub struct Shield {
    ebpf: Ebpf,
    xdp: Option<PinnedLink>,
    tc: Option<PinnedLink>,
    pub pins: PinDir,
    pub config: Config,
}

fn prog_err(
    what: impl Into<String>,
    hint: &'static str,
) -> impl FnOnce(aya::programs::ProgramError) -> LoadError {
    let what = what.into();
    move |source| LoadError::Program { what, source, hint }
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

fn pin(link: FdLink, path: &Path) -> Result<PinnedLink, LoadError> {
    link.pin(path)
        .map_err(|e| LoadError::LinkPin(path.into(), e))
}

/// The eBPF object with its kfunc calls linked against the running kernel.
pub fn linked_object() -> Result<Vec<u8>, LoadError> {
    let ids = kfunc::kernel_btf_ids()?;
    let (obj, _) = kfunc::patch(EBPF_OBJECT, &[KFUNC_ASSIGN_REQSK], ids)?;
    Ok(obj)
}

/// Loads the object with its maps pinned (or reused) in `pins`.
pub fn load(pins: &PinDir) -> Result<Ebpf, LoadError> {
    pins.create()?;
    let obj = linked_object()?;
    Ok(EbpfLoader::new()
        .default_map_pin_directory(&pins.dir)
        .load(&obj)?)
}

pub fn write_config(ebpf: &mut Ebpf, cfg: Config) -> Result<(), LoadError> {
    let map = ebpf.map_mut(MAP_CONFIG).expect("object has SC_CONFIG");
    let mut arr: Array<&mut MapData, Config> =
        Array::try_from(map).map_err(|e| LoadError::Map(MAP_CONFIG, e))?;
    arr.set(0, cfg, 0)
        .map_err(|e| LoadError::Map(MAP_CONFIG, e))
}

pub fn write_ports(ebpf: &mut Ebpf, ports: &[u16]) -> Result<(), LoadError> {
    let map = ebpf.map_mut(MAP_PORTS).expect("object has SC_PORTS");
    let mut arr: Array<&mut MapData, u32> =
        Array::try_from(map).map_err(|e| LoadError::Map(MAP_PORTS, e))?;
    let mut words = vec![0u32; PORTS_LEN as usize];
    for &p in ports {
        let (w, bit) = port_word(p);
        words[w as usize] |= bit;
    }
    for (i, w) in words.into_iter().enumerate() {
        arr.set(i as u32, w, 0)
            .map_err(|e| LoadError::Map(MAP_PORTS, e))?;
    }
    Ok(())
}

impl Shield {
    /// Checks the kernel, loads, configures and attaches. Keys left by a previous run are kept.
    pub fn attach(opts: &Options) -> Result<Self, LoadError> {
        let fresh = !opts.pins.exists();
        let res = Self::attach_inner(opts);
        if res.is_err() && fresh {
            // Nothing of a previous run to keep: leave no trace of this failed one.
            let _ = opts.pins.remove();
        }
        res
    }

    fn attach_inner(opts: &Options) -> Result<Self, LoadError> {
        let kernel = Kernel::read()?;
        kernel.check()?;
        let mtu =
            sysctl::mtu(&opts.iface).map_err(|_| LoadError::NoInterface(opts.iface.clone()))?;
        let mut ebpf = load(&opts.pins)?;
        // Generic XDP may deliver no metadata to TC: let TC re-check the cookie then.
        let config = kernel.config(mtu, opts.xdp_mode == XdpModeArg::Skb);
        write_config(&mut ebpf, config)?;
        write_ports(&mut ebpf, &opts.ports)?;
        Keys::open(&opts.pins)?.ensure()?;
        // Before attaching: with empty maps nothing would be taken as local, and passed.
        local::sync(&opts.pins)?;
        let mut shield = Self {
            ebpf,
            xdp: None,
            tc: None,
            pins: opts.pins.clone(),
            config,
        };
        if let Err(e) = shield.attach_programs(opts) {
            shield.detach();
            return Err(e);
        }
        Ok(shield)
    }

    fn attach_programs(&mut self, opts: &Options) -> Result<(), LoadError> {
        let iface = &opts.iface;
        let tc: &mut SchedClassifier = self
            .ebpf
            .program_mut(PROG_TC)
            .expect("object has the TC program")
            .try_into()
            .map_err(prog_err("TC program", ""))?;
        load_retrying(|| tc.load()).map_err(prog_err("loading the TC program", ""))?;
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
                .map_err(prog_err(format!("attaching TC ingress to {iface}"), ""))?,
        };
        let link = tc.take_link(id).map_err(prog_err("TC link", ""))?;
        self.tc = Some(pin(
            FdLink::try_from(link).map_err(LoadError::Link)?,
            &tc_pin,
        )?);

        let xdp: &mut Xdp = self
            .ebpf
            .program_mut(PROG_XDP)
            .expect("object has the XDP program")
            .try_into()
            .map_err(prog_err("XDP program", ""))?;
        load_retrying(|| xdp.load()).map_err(prog_err("loading the XDP program", ""))?;
        let hint = match opts.xdp_mode {
            XdpModeArg::Native => "; if the driver has no native XDP, try --xdp-mode skb",
            XdpModeArg::Skb => "",
        };
        let xdp_pin = self.pins.map(LINK_XDP);
        // A link taken over keeps the XDP mode it was made with: `syncookie detach` to change it.
        let taken = take_over(&xdp_pin)?
            .and_then(|link| XdpLink::try_from(link).ok())
            .and_then(|link| stale(xdp.attach_to_link(link)));
        let id = match taken {
            Some(id) => id,
            None => xdp
                .attach(iface, opts.xdp_mode.mode())
                .map_err(prog_err(format!("attaching XDP to {iface}"), hint))?,
        };
        let link = xdp.take_link(id).map_err(prog_err("XDP link", ""))?;
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
    pub fn detach(mut self) {
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
