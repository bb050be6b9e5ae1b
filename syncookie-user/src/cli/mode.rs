//! `syncookie mode`: switch a running shield between always, auto and monitor, live (a map
//! write: nothing is re-attached, no link flaps).

use syncookie::{bpf::pinned::PinnedMaps, observe::state, policy::ModeArg};
use syncookie_common::maps::Mode;

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
        let c = PinnedMaps::new(&pins).config()?.get()?;
        let cur = Mode::from_u8(c.mode).map_or("unknown".into(), |m| {
            format!("{:?}", ModeArg::of(m)).to_lowercase()
        });
        println!("{cur}");
        return Ok(());
    };
    state::set_mode(&pins, Mode::from(new))?;
    log::info!(
        "{}: mode {}",
        a.target.iface,
        format!("{new:?}").to_lowercase()
    );
    Ok(())
}
