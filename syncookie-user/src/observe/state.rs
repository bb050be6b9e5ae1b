//! A running shield's state as its pins show it: configuration, mode and whether `auto` is
//! engaged, key epoch and source, protected ports. Read by `status` and the metrics; the mode is
//! also switched here (`syncookie mode`, the daemon's VLAN guard).

use aya::maps::MapError;
use syncookie_common::maps::{Config, Mode, flags};

use crate::{
    bpf::{
        pinned::{PinnedError, PinnedMaps},
        pins::{PinDir, PinError},
    },
    keys::KeyMaps,
};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("reading the shield's pinned maps: {0}")]
    Map(#[from] MapError),
    #[error(transparent)]
    Pinned(#[from] PinnedError),
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    #[error(transparent)]
    Pin(#[from] PinError),
}

#[derive(Clone, Debug)]
pub struct State {
    pub config: Config,
    pub mode: Option<Mode>,
    /// Cookies are being sent: always in `always`, never in `monitor`, in `auto` while some CPU
    /// is engaged.
    pub engaged: bool,
    pub epoch: u64,
    pub fleet: bool,
    pub ports: Vec<u16>,
}

/// Whether `auto` is engaged on any CPU now (the programs' clock: CLOCK_MONOTONIC_COARSE).
fn auto_engaged(maps: PinnedMaps) -> Result<bool, StateError> {
    let m = maps.auto()?;
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC_COARSE).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    });
    Ok(m.get(&0, 0)?.iter().any(|s| s.engaged_until > now))
}

pub fn read(pins: &PinDir) -> Result<State, StateError> {
    let maps = PinnedMaps::new(pins);
    let config = maps.config()?.get()?;
    let mut ports = Vec::new();
    let m = maps.ports()?;
    for (w, bits) in m.iter().enumerate() {
        let bits = bits?;
        ports.extend(
            (0..32)
                .filter(|b| bits & (1 << b) != 0)
                .map(|b| (w * 32 + b) as u16),
        );
    }
    let mode = Mode::from_u8(config.mode);
    let engaged = match mode {
        Some(Mode::Always) => true,
        Some(Mode::Auto) => auto_engaged(maps)?,
        _ => false,
    };
    Ok(State {
        config,
        mode,
        engaged,
        epoch: KeyMaps::open(pins)?.current_epoch()?,
        fleet: config.flags & flags::FLEET != 0,
        ports,
    })
}

/// Switches the running shield whose pins are `pins` to `mode`: a map write, so nothing is
/// re-attached and no link flaps. Under the keys lock: `SC_CONFIG` is read and written whole.
pub fn set_mode(pins: &PinDir, mode: Mode) -> Result<(), StateError> {
    // Opened before the lock is taken: on an interface without a shield no lock file is left.
    let mut m = PinnedMaps::new(pins).config()?;
    let _lock = pins.keys_lock()?;
    let mut c = m.get()?;
    c.mode = mode as u8;
    m.set(c)?;
    Ok(())
}
