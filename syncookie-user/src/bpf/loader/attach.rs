//! Attaching the programs: each through the link a previous run left pinned when there is one
//! (its program swapped in atomically, no moment unprotected), else anew; the link then pinned so
//! the shield outlives the daemon.

use std::path::Path;

use aya::{
    Ebpf,
    programs::{
        Program, ProgramError, SchedClassifier, TcAttachType, Xdp,
        links::{FdLink, PinnedLink},
        tc::SchedClassifierLink,
        xdp::XdpLink,
    },
};
use syncookie_common::maps::{LINK_TC, LINK_XDP, PROG_TC, PROG_XDP, PROG_XDP_EXT, kernel_cookies};

use super::{LoadError, Options, Shield, XdpModeArg, object::load_retrying, prog_err};
use crate::{
    bpf::pins::PinError,
    host::{kernel::Cookies, netdev},
};

/// A program that attaches through a link: XDP or TC.
trait Attach {
    type Link: TryFrom<FdLink>;
    type Id;
    const WHAT: &str;
    fn load_it(&mut self) -> Result<(), ProgramError>;
    /// Swaps the program into a link taken over.
    fn swap_into(&mut self, link: Self::Link) -> Result<Self::Id, ProgramError>;
    fn attach_new(&mut self, opts: &Options) -> Result<Self::Id, LoadError>;
    fn fd_link(&mut self, id: Self::Id) -> Result<FdLink, LoadError>;
}

/// The parts aya's XDP and TC programs spell alike.
macro_rules! link_ops {
    ($what:literal, $link:ty, $id:ty) => {
        type Link = $link;
        type Id = $id;
        const WHAT: &str = $what;
        fn load_it(&mut self) -> Result<(), ProgramError> {
            self.load()
        }
        fn swap_into(&mut self, link: $link) -> Result<$id, ProgramError> {
            self.attach_to_link(link)
        }
        fn fd_link(&mut self, id: $id) -> Result<FdLink, LoadError> {
            let link = self
                .take_link(id)
                .map_err(prog_err(concat!($what, " link")))?;
            FdLink::try_from(link).map_err(LoadError::Link)
        }
    };
}

impl Attach for Xdp {
    link_ops!("XDP", XdpLink, aya::programs::xdp::XdpLinkId);
    fn attach_new(&mut self, opts: &Options) -> Result<Self::Id, LoadError> {
        // A link taken over keeps the XDP mode it was made with: `syncookie detach` to change it.
        self.attach(&opts.iface, opts.xdp_mode.mode())
            .map_err(|e| xdp_attach_error(opts, e))
    }
}

impl Attach for SchedClassifier {
    link_ops!(
        "TC",
        SchedClassifierLink,
        aya::programs::tc::SchedClassifierLinkId
    );
    fn attach_new(&mut self, opts: &Options) -> Result<Self::Id, LoadError> {
        // TCX (Linux 6.6+): a link, no qdisc to create or leave behind.
        let iface = &opts.iface;
        self.attach(iface, TcAttachType::Ingress)
            .map_err(prog_err(format!("attaching TC ingress to {iface}")))
    }
}

/// The object's program `name`, of its type (every name is the object's own: a missing one is a
/// build's bug).
pub(super) fn program<'a, P>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut P, LoadError>
where
    &'a mut P: TryFrom<&'a mut Program, Error = ProgramError>,
{
    let p = ebpf
        .program_mut(name)
        .unwrap_or_else(|| panic!("the object has no program {name}"));
    p.try_into().map_err(prog_err(format!("program {name}")))
}

/// Loads `prog` and attaches it: into the link pinned at `pin` by a previous run, or anew when
/// there is none or it cannot be taken over (its interface was re-created since); pins the link.
fn attach_or_take_over<P: Attach>(
    prog: &mut P,
    pin_path: &Path,
    opts: &Options,
) -> Result<PinnedLink, LoadError> {
    load_retrying(|| prog.load_it())
        .map_err(prog_err(format!("loading the {} program", P::WHAT)))?;
    let taken = take_over(pin_path)?
        .and_then(|link| P::Link::try_from(link).ok())
        .and_then(|link| stale(prog.swap_into(link)));
    let id = match taken {
        Some(id) => id,
        None => prog.attach_new(opts)?,
    };
    pin(prog.fd_link(id)?, pin_path)
}

impl Shield {
    pub(super) fn attach_programs(
        &mut self,
        opts: &Options,
        shared: Option<bool>,
    ) -> Result<(), LoadError> {
        if self.cookies == Cookies::Kernel {
            // No TC program: a full-mode run's TC link, if one was left, goes.
            drop(take_over(&self.pins.map(LINK_TC))?);
            crate::bpf::kc_tail::install(&mut self.ebpf)?;
            return match shared {
                Some(skb) => self.join(opts, kernel_cookies::PROG_XDP_EXT, skb),
                None => self.attach_xdp(opts, kernel_cookies::PROG_XDP),
            };
        }
        let tc: &mut SchedClassifier = program(&mut self.ebpf, PROG_TC)?;
        self.tc = Some(attach_or_take_over(tc, &self.pins.map(LINK_TC), opts)?);
        match shared {
            Some(skb) => self.join(opts, PROG_XDP_EXT, skb),
            None => self.attach_xdp(opts, PROG_XDP),
        }
    }

    /// Loads the XDP program `name` and attaches it (or swaps it into a pinned link).
    fn attach_xdp(&mut self, opts: &Options, name: &str) -> Result<(), LoadError> {
        let xdp: &mut Xdp = program(&mut self.ebpf, name)?;
        self.xdp = Some(attach_or_take_over(xdp, &self.pins.map(LINK_XDP), opts)?);
        Ok(())
    }
}

/// The link a previous run left pinned at `path`, unpinned so that it can be handed to a program
/// (it is pinned again right after). `None` when there is none.
pub(super) fn take_over(path: &Path) -> Result<Option<FdLink>, LoadError> {
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

/// The errno of a failed attach, when the kernel gave one.
fn errno(e: &aya::programs::ProgramError) -> Option<nix::errno::Errno> {
    match e {
        aya::programs::ProgramError::SyscallError(s) => {
            s.io_error.raw_os_error().map(nix::errno::Errno::from_raw)
        }
        _ => None,
    }
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
                driver: netdev::driver(&opts.iface),
            };
        }
        _ => {}
    }
    prog_err(format!("attaching XDP to {}", opts.iface))(e)
}
