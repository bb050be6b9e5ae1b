//! `syncookie detach`: remove a shield whose daemon is gone (it crashed or was killed).

use syncookie::host::{netdev, privilege};

use super::Target;

/// Detach the shield from an interface when no `syncookie run` holds it any more: its pinned
/// links keep it attached after a crash. Removes the links, maps and pin directory.
///
/// Example: syncookie detach --iface eth0
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    privilege::require_pin_access("detach")?;
    let pins = a.target.pins()?;
    if !pins.exists() {
        // Pins of a deleted interface can still be removed; a misspelt name is said so.
        netdev::ifindex(&a.target.iface)?;
    }
    let lock = pins.lock()?;
    if !pins.exists() {
        println!("{}: not attached", a.target.iface);
    } else {
        // Unpinned links nobody holds are destroyed: that detaches the programs.
        syncookie::bpf::loader::remove_pinned(&pins, &a.target.iface)?;
        println!("{}: detached", a.target.iface);
    }
    drop(lock);
    pins.remove_lock();
    Ok(())
}
