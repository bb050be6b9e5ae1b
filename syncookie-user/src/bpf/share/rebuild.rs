//! libxdp's add and remove (protocol.org, "Adding or removing programs from an existing
//! dispatcher"): a new dispatcher with every program, in run order, pinned, swapped in with one
//! netlink replace; the old one unpinned.

use std::{os::fd::AsFd, path::Path};

use aya::{
    EbpfLoader,
    programs::{Extension, ProgramError, ProgramFd, Xdp, links::FdLink},
};

use super::{
    ATTEMPTS, DISPATCHER, Hook, Placed, RunConfig, ShareError, bpf,
    config::{DispatcherConfig, MAX_PROGS},
    io, sys,
};

impl Hook {
    /// libxdp's add/remove: a new dispatcher with the programs kept (and `add`), in run order,
    /// pinned, then swapped in for the old one, which is unpinned. Returns where `add` went
    /// (None without it, or when the shield was not there to remove).
    pub(super) fn rebuild(
        &self,
        ours: u32,
        mut add: Option<(&mut Extension, RunConfig)>,
        empty_mode: u32,
    ) -> Result<Option<Placed>, ShareError> {
        let lockdir = sys::xdp_dir();
        let _lock = sys::lock(&lockdir)
            .map_err(io(format!("taking libxdp's lock ({})", lockdir.display())))?;
        for _ in 0..ATTEMPTS {
            let cur = self.current()?;
            let (old_fd, old_dir, mode, all) = match cur {
                Some(c) => (Some(c.fd), Some(c.dir), c.mode, c.components),
                None => (None, None, empty_mode, Vec::new()),
            };
            let (mine, mut kept): (Vec<_>, Vec<_>) =
                all.into_iter().partition(|c| c.maps.contains(&ours));
            let removed = !mine.is_empty();
            if add.is_none() && !removed {
                return Ok(None);
            }
            let n = kept.len() + usize::from(add.is_some());
            if n > MAX_PROGS {
                return Err(ShareError::Full {
                    iface: self.iface.clone(),
                });
            }
            // libxdp's order (cmp_xdp_programs): priority, then name.
            let ours_key = add.as_ref().map(|(e, r)| (r.priority, name_of(e)));
            let mut order: Vec<Option<usize>> = (0..kept.len()).map(Some).collect();
            order.push(None);
            order.retain(|o| o.is_some() || add.is_some());
            order.sort_by_key(|o| match o {
                Some(i) => (kept[*i].run.priority, kept[*i].name.clone()),
                None => ours_key.clone().expect("only with add"),
            });
            if n == 0 {
                // The shield was the last: no dispatcher is left (libxdp's detach).
                sys::set_xdp(self.ifindex, None, old_fd.as_ref().map(|f| f.as_fd()), mode)
                    .map_err(io(format!(
                        "detaching libxdp's dispatcher from {}",
                        self.iface
                    )))?;
                remove_dir(old_dir.as_deref());
                return Ok(None);
            }
            let slots: Vec<(RunConfig, u32)> = order
                .iter()
                .map(|o| match o {
                    Some(i) => (kept[*i].run, kept[*i].flags),
                    None => (add.as_ref().expect("only with add").1, 0),
                })
                .collect();
            let mut ebpf = load_dispatcher(DispatcherConfig::new(&slots))?;
            let disp: &mut Xdp = ebpf
                .program_mut(DISPATCHER)
                .ok_or_else(no_dispatcher_program)?
                .try_into()
                .map_err(bpf("libxdp's dispatcher"))?;
            crate::bpf::loader::load_retrying(|| disp.load())
                .map_err(bpf("loading libxdp's dispatcher"))?;
            let dfd = disp
                .fd()
                .map_err(bpf("dispatcher"))?
                .try_clone()
                .map_err(io("dispatcher"))?;
            let new_id = disp.info().map_err(bpf("dispatcher"))?.id();
            let dir = sys::dispatcher_dir(self.ifindex, new_id);
            std::fs::create_dir(&dir).map_err(io(format!("creating {}", dir.display())))?;
            let mut placed = None;
            for (slot, o) in order.iter().enumerate() {
                let target = if n == 1 {
                    DISPATCHER.to_string()
                } else {
                    format!("prog{slot}")
                };
                let ext = match o {
                    Some(i) => &mut kept[*i].ext,
                    None => {
                        placed = Some(Placed {
                            dispatcher: new_id,
                            slot,
                            of: n,
                            run: slots[slot].0,
                        });
                        &mut *add.as_mut().expect("only with add").0
                    }
                };
                if let Err(mut e) = link(ext, &dfd, &target, &dir, slot) {
                    remove_dir(Some(&dir));
                    if let ShareError::PacketData { iface, .. } = &mut e {
                        iface.clone_from(&self.iface);
                    }
                    return Err(e);
                }
            }
            match sys::set_xdp(
                self.ifindex,
                Some(dfd.as_fd()),
                old_fd.as_ref().map(|f| f.as_fd()),
                mode,
            ) {
                Ok(()) => {
                    remove_dir(old_dir.as_deref());
                    return Ok(placed);
                }
                // The hook changed since we read it (EEXIST: another program; EBUSY: one came).
                Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::EBUSY)) => {
                    log::debug!("{}'s XDP program changed meanwhile: again", self.iface);
                    remove_dir(Some(&dir));
                }
                Err(e) => {
                    remove_dir(Some(&dir));
                    return Err(io(format!(
                        "attaching libxdp's dispatcher to {}",
                        self.iface
                    ))(e));
                }
            }
        }
        Err(ShareError::Busy {
            iface: self.iface.clone(),
        })
    }
}

fn no_dispatcher_program() -> ShareError {
    ShareError::Io {
        what: format!("{} has no program {DISPATCHER}", sys::DISPATCHER_OBJECT),
        source: std::io::ErrorKind::NotFound.into(),
    }
}

/// The program's name as the kernel keeps it (libxdp sorts by it).
fn name_of(ext: &Extension) -> String {
    ext.info()
        .ok()
        .and_then(|i| i.name_as_str().map(String::from))
        .unwrap_or_else(|| syncookie_common::maps::PROG_XDP_EXT.into())
}

/// Loads libxdp's dispatcher object with `config` in its `.rodata`.
fn load_dispatcher(config: DispatcherConfig) -> Result<aya::Ebpf, ShareError> {
    let path = sys::dispatcher_object().map_err(|dirs| ShareError::NoObject { dirs })?;
    let bytes = std::fs::read(&path).map_err(io(format!("reading {}", path.display())))?;
    EbpfLoader::new()
        .override_global("conf", &config, true)
        .load(&bytes)
        .map_err(|e| ShareError::Io {
            what: format!("loading {}", path.display()),
            source: std::io::Error::other(e),
        })
}

/// Attaches `ext` to `target` of the dispatcher `dfd` (loading it there first if it is not
/// loaded yet) and pins the link and the program as slot `slot` in `dir`.
fn link(
    ext: &mut Extension,
    dfd: &ProgramFd,
    target: &str,
    dir: &Path,
    slot: usize,
) -> Result<(), ShareError> {
    let what = || format!("putting a program in slot {slot} of libxdp's dispatcher");
    let id = if ext.fd().is_ok() {
        ext.attach_to_program(dfd, target).map_err(bpf(what()))?
    } else {
        let fd = dfd.try_clone().map_err(io(what()))?;
        crate::bpf::loader::load_retrying(|| ext.load(fd.try_clone()?, target)).map_err(|e| {
            match &e {
                // Seen on a custom 6.18 VM kernel, where libxdp falls back to one program too.
                ProgramError::LoadError { io_error, .. }
                    if io_error.raw_os_error() == Some(libc::EPERM) =>
                {
                    ShareError::NoFreplace
                }
                // kernel/bpf/verifier.c, bpf_check_attach_target() (Linux 6.13, backported to
                // 6.12.y: Debian's 6.12.118 has it).
                ProgramError::LoadError { verifier_log, .. }
                    if verifier_log.to_string().contains("changes packet data") =>
                {
                    ShareError::PacketData {
                        kernel: crate::bpf::kfunc::kernel_release(),
                        iface: String::new(), // the caller names it
                    }
                }
                _ => bpf(what())(e),
            }
        })?;
        ext.attach().map_err(bpf(what()))?
    };
    let link = FdLink::from(ext.take_link(id).map_err(bpf(what()))?);
    let pin = dir.join(format!("prog{slot}-link"));
    link.pin(&pin).map_err(|e| ShareError::Io {
        what: format!("pinning {}", pin.display()),
        source: std::io::Error::other(e),
    })?;
    let pin = dir.join(format!("prog{slot}-prog"));
    ext.pin(&pin).map_err(|e| ShareError::Io {
        what: format!("pinning {}", pin.display()),
        source: std::io::Error::other(e),
    })
}

/// Unpins a dispatcher's directory: its links go with the last reference.
fn remove_dir(dir: Option<&Path>) {
    if let Some(d) = dir
        && let Err(e) = std::fs::remove_dir_all(d)
    {
        log::warn!("removing {}: {e}", d.display());
    }
}
