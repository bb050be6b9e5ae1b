//! A running shield's state as its pins show it: configuration, mode and whether `auto` is
//! engaged, key epoch and source, protected ports. Read by `status` and the metrics.

use aya::maps::{Array, Map, MapData, MapError, PerCpuArray};
use syncookie_common::maps::{AutoState, Config, MAP_AUTO, MAP_CONFIG, MAP_PORTS, Mode, flags};

use crate::{keys::Keys, pins::PinDir};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("reading the shield's pinned maps: {0}")]
    Map(#[from] MapError),
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
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

fn open(pins: &PinDir, name: &str) -> Result<MapData, MapError> {
    MapData::from_pin(pins.map(name))
}

/// Whether `auto` is engaged on any CPU now (the programs' clock: CLOCK_MONOTONIC_COARSE).
fn auto_engaged(pins: &PinDir) -> Result<bool, MapError> {
    let m = PerCpuArray::<MapData, AutoState>::try_from(Map::PerCpuArray(open(pins, MAP_AUTO)?))?;
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC_COARSE).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    });
    Ok(m.get(&0, 0)?.iter().any(|s| s.engaged_until > now))
}

pub fn read(pins: &PinDir) -> Result<State, StateError> {
    let config =
        Array::<MapData, Config>::try_from(Map::Array(open(pins, MAP_CONFIG)?))?.get(&0, 0)?;
    let mut ports = Vec::new();
    let m = Array::<MapData, u32>::try_from(Map::Array(open(pins, MAP_PORTS)?))?;
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
        Some(Mode::Auto) => auto_engaged(pins)?,
        _ => false,
    };
    Ok(State {
        config,
        mode,
        engaged,
        epoch: Keys::open(pins)?.current_epoch()?,
        fleet: config.flags & flags::FLEET != 0,
        ports,
    })
}
