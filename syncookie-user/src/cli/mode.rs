//! `syncookie mode`: switch a running shield between always, auto and monitor, live (a map
//! write: nothing is re-attached, no link flaps).

use anyhow::Context;
use aya::maps::{Array, Map, MapData};
use syncookie::{pins::PinDir, policy::ModeArg};
use syncookie_common::maps::{Config, MAP_CONFIG, Mode};

use super::Target;

/// Show or switch the mode of the shield on an interface.
///
/// Example: syncookie mode auto --iface eth0
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// The new mode; without it, print the current one.
    #[arg(value_enum)]
    mode: Option<ModeArg>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let pins = a.target.pins()?;
    let Some(new) = a.mode else {
        let c = config_map(&pins, &a.target.iface)?.get(&0, 0)?;
        let cur = Mode::from_u8(c.mode).map_or("unknown".into(), |m| {
            format!("{:?}", ModeArg::of(m)).to_lowercase()
        });
        println!("{cur}");
        return Ok(());
    };
    set(&pins, &a.target.iface, Mode::from(new))?;
    log::info!(
        "{}: mode {}",
        a.target.iface,
        format!("{new:?}").to_lowercase()
    );
    Ok(())
}

fn config_map(pins: &PinDir, iface: &str) -> anyhow::Result<Array<MapData, Config>> {
    let path = pins.map(MAP_CONFIG);
    let data = MapData::from_pin(&path).with_context(|| {
        format!(
            "syncookie is not attached to {iface} (no {}): start it with `syncookie run`",
            path.display()
        )
    })?;
    Ok(Array::<MapData, Config>::try_from(Map::Array(data))?)
}

/// Switches the running shield whose pins are `pins` to `mode` (a map write).
pub fn set(pins: &PinDir, iface: &str, mode: Mode) -> anyhow::Result<()> {
    let mut m = config_map(pins, iface)?;
    let _lock = pins.keys_lock()?;
    let mut c = m.get(&0, 0)?;
    c.mode = mode as u8;
    m.set(0, c, 0)?;
    Ok(())
}
