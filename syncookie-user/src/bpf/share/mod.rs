//! Sharing the XDP hook through libxdp's multi-program dispatcher, as xdp-tools 1.3.1 does it
//! (lib/libxdp/protocol.org): the shield's XDP program is an `freplace` extension in one of the
//! dispatcher's slots, beside what `xdp-loader` or `xdp-filter` put there. Adding or removing
//! a program builds a new dispatcher with every program, pins it under
//! `/sys/fs/bpf/xdp/dispatch-IFINDEX-ID/` (`progN-prog`, `progN-link`), swaps it in with one
//! netlink replace and unpins the old one, all under libxdp's lock. The dispatcher is libxdp's
//! own object (libxdp1's `xdp-dispatcher.o`): the same bytes xdp-loader loads, so each side
//! reads what the other wrote.

mod config;
mod rebuild;
mod sys;

use std::path::PathBuf;

use aya::{
    maps::{Array, Map, MapData},
    programs::{Extension, ProgramError, ProgramFd, ProgramInfo},
};
pub use config::{Actions, RunConfig};
use config::{DispatcherConfig, MAGIC, MAX_PROGS, VERSION};

use crate::host::netdev::{self, XdpAttachMode};

/// The dispatcher's program name, which libxdp checks first.
const DISPATCHER: &str = "xdp_dispatcher";
/// Attempts when the hook changes under us (another libxdp user won the race).
const ATTEMPTS: u32 = 3;

/// The `run` settings of sharing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings {
    /// On an empty hook, start a dispatcher (others can join later) instead of attaching alone.
    pub create: bool,
    pub run: RunConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    #[error(
        "libxdp's dispatcher object ({}) is not installed (looked in {dirs}): install \
         libxdp1 (Debian, Ubuntu: `apt install xdp-tools`)",
        sys::DISPATCHER_OBJECT
    )]
    NoObject { dirs: String },
    #[error(
        "{iface} runs libxdp's dispatcher version {version} (program id {id}); syncookie joins \
         version 2 (xdp-tools 1.3): unload its programs (`xdp-loader unload {iface} --all`) and \
         load them again with the libxdp installed here"
    )]
    Version {
        iface: String,
        id: u32,
        version: String,
    },
    #[error(
        "libxdp's dispatcher on {iface} holds {MAX_PROGS} programs, its limit: unload one \
         (`xdp-loader status {iface}` lists them)"
    )]
    Full { iface: String },
    #[error(
        "{iface}'s XDP program (id {id}) is attached in {mode} mode: the shield joins a libxdp \
         dispatcher in native or generic mode only"
    )]
    Mode {
        iface: String,
        id: u32,
        mode: XdpAttachMode,
    },
    #[error(
        "this kernel refuses `freplace` programs (EPERM), which libxdp's dispatcher needs: run \
         the shield alone (without --xdp-share, on an interface without libxdp's dispatcher)"
    )]
    NoFreplace,
    #[error(
        "this kernel ({kernel}) lets no program that changes packets (the shield rewrites SYNs \
         into SYN-ACKs) into a slot of libxdp 1.3's dispatcher, whose slots do not: run the \
         shield alone (`xdp-loader unload {iface} --all` first, or another interface)"
    )]
    PacketData { kernel: String, iface: String },
    #[error("the XDP program on {iface} kept changing while the shield joined: try again")]
    Busy { iface: String },
    #[error("{what}")]
    Bpf {
        what: String,
        #[source]
        source: ProgramError,
    },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn bpf(what: impl Into<String>) -> impl FnOnce(ProgramError) -> ShareError {
    let what = what.into();
    move |source| ShareError::Bpf { what, source }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ShareError {
    let what = what.into();
    move |source| ShareError::Io { what, source }
}

/// The interface a dispatcher is changed on.
#[derive(Clone, Debug)]
pub struct Hook {
    pub iface: String,
    pub ifindex: u32,
}

/// Where the shield sits in a dispatcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    pub dispatcher: u32,
    pub slot: usize,
    pub of: usize,
    pub run: RunConfig,
}

/// A program of the dispatcher on the hook.
struct Component {
    ext: Extension,
    name: String,
    run: RunConfig,
    /// `program_flags`: frags support, carried over.
    flags: u32,
    maps: Vec<u32>,
}

/// The libxdp dispatcher on the hook.
struct Current {
    fd: ProgramFd,
    dir: PathBuf,
    mode: u32,
    components: Vec<Component>,
}

/// What holds the XDP hook.
pub enum OnHook {
    Empty,
    /// A libxdp dispatcher of our version, in native or generic mode (`skb`).
    Dispatcher {
        id: u32,
        skb: bool,
    },
    /// Any other program: not ours to join.
    Other,
}

/// What holds the hook, read in full.
enum Probe {
    Empty,
    Other,
    Dispatcher {
        id: u32,
        skb: bool,
        info: Box<ProgramInfo>,
        config: DispatcherConfig,
    },
}

impl Hook {
    /// What holds the hook; a dispatcher is checked for its version and mode.
    pub fn on_hook(&self) -> Result<OnHook, ShareError> {
        Ok(match self.probe()? {
            Probe::Empty => OnHook::Empty,
            Probe::Other => OnHook::Other,
            Probe::Dispatcher { id, skb, .. } => OnHook::Dispatcher { id, skb },
        })
    }

    fn probe(&self) -> Result<Probe, ShareError> {
        let Some((id, mode)) = netdev::xdp_query(self.ifindex)
            .map_err(io(format!("reading {}'s XDP program", self.iface)))?
        else {
            return Ok(Probe::Empty);
        };
        let Some(info) = aya::programs::loaded_programs()
            .filter_map(Result::ok)
            .find(|p| p.id() == id)
        else {
            return Ok(Probe::Other);
        };
        if info.name_as_str() != Some(DISPATCHER) {
            return Ok(Probe::Other);
        }
        let config = self.config(id, &info)?;
        let skb = match mode {
            XdpAttachMode::Native => false,
            XdpAttachMode::Skb => true,
            mode => {
                return Err(ShareError::Mode {
                    iface: self.iface.clone(),
                    id,
                    mode,
                });
            }
        };
        Ok(Probe::Dispatcher {
            id,
            skb,
            info: Box::new(info),
            config,
        })
    }

    /// The configuration of dispatcher `id`: version 2, as libxdp's `check_dispatcher_version()`
    /// reads it (one map, magic and version in its first bytes).
    fn config(&self, id: u32, info: &ProgramInfo) -> Result<DispatcherConfig, ShareError> {
        let version = |v: &str| ShareError::Version {
            iface: self.iface.clone(),
            id,
            version: v.into(),
        };
        let maps = info.map_ids().ok().flatten().unwrap_or_default();
        let [map] = maps[..] else {
            return Err(version("unknown (not one map)"));
        };
        let map = MapData::from_id(map).map_err(|_| version("unknown (map gone)"))?;
        // A version 1 dispatcher's map is smaller: the size check refuses it.
        let arr: Array<MapData, DispatcherConfig> = Array::try_from(Map::Array(map))
            .map_err(|_| version("1 or unknown (its configuration has another size)"))?;
        let c = arr
            .get(&0, 0)
            .map_err(|_| version("unknown (unreadable)"))?;
        if c.magic != MAGIC || c.version != VERSION {
            return Err(version(&c.version.to_string()));
        }
        Ok(c)
    }

    /// The dispatcher on the hook with its programs, opened from its pins.
    fn current(&self) -> Result<Option<Current>, ShareError> {
        let (id, skb, info, config) = match self.probe()? {
            Probe::Empty => return Ok(None),
            Probe::Dispatcher {
                id,
                skb,
                info,
                config,
            } => (id, skb, info, config),
            Probe::Other => {
                return Err(ShareError::Io {
                    what: format!("{}'s XDP program is not a libxdp dispatcher", self.iface),
                    source: std::io::ErrorKind::AlreadyExists.into(),
                });
            }
        };
        let dir = sys::dispatcher_dir(self.ifindex, id);
        let mut components = Vec::new();
        for i in 0..usize::from(config.num_progs_enabled) {
            let pin = dir.join(format!("prog{i}-prog"));
            let what = || format!("libxdp's pin {} (`xdp-loader status`)", pin.display());
            let info = ProgramInfo::from_pin(&pin).map_err(bpf(what()))?;
            components.push(Component {
                ext: Extension::from_pin(&pin).map_err(bpf(what()))?,
                name: info.name_as_str().unwrap_or_default().into(),
                run: config.run(i),
                flags: config.program_flags[i],
                maps: info.map_ids().ok().flatten().unwrap_or_default(),
            });
        }
        Ok(Some(Current {
            fd: info.fd().map_err(bpf(format!("dispatcher {id}")))?,
            dir,
            mode: if skb {
                sys::XDP_FLAGS_SKB_MODE
            } else {
                sys::XDP_FLAGS_DRV_MODE
            },
            components,
        }))
    }

    /// Puts `ext` (loaded here, or already loaded) into the dispatcher on the hook, or into a
    /// new one on an empty hook (in generic mode with `skb`), in place of an earlier program of
    /// the shield's (one using the map `ours`, the shield's configuration).
    pub fn join(
        &self,
        ext: &mut Extension,
        run: RunConfig,
        ours: u32,
        skb: bool,
    ) -> Result<Placed, ShareError> {
        let mode = if skb {
            sys::XDP_FLAGS_SKB_MODE
        } else {
            sys::XDP_FLAGS_DRV_MODE
        };
        self.rebuild(ours, Some((ext, run)), mode)
            .map(|p| p.expect("a program was added"))
    }

    /// Takes the shield's program (the one using map `ours`) out of the dispatcher; the
    /// dispatcher goes when it was the last. False when it was not there.
    pub fn leave(&self, ours: u32) -> Result<bool, ShareError> {
        if !matches!(self.on_hook()?, OnHook::Dispatcher { .. }) {
            return Ok(false);
        }
        self.rebuild(ours, None, 0).map(|p| p.is_some())
    }

    /// Where the program using map `ours` sits in the dispatcher on the hook, if it does.
    pub fn find(&self, ours: u32) -> Result<Option<Placed>, ShareError> {
        let Some((id, _)) = netdev::xdp_query(self.ifindex).ok().flatten() else {
            return Ok(None);
        };
        let Some(cur) = self.current().ok().flatten() else {
            return Ok(None);
        };
        let of = cur.components.len();
        Ok(cur
            .components
            .iter()
            .position(|c| c.maps.contains(&ours))
            .map(|slot| Placed {
                dispatcher: id,
                slot,
                of,
                run: cur.components[slot].run,
            }))
    }
}
