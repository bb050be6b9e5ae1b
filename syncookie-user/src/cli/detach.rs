//! `syncookie detach`: remove a shield whose daemon is gone (it crashed or was killed).

use anyhow::Context;

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
    let pins = a.target.pins()?;
    let lock = pins.lock().with_context(|| {
        format!(
            "`syncookie run` is active on {}: stop it with SIGTERM instead",
            a.target.iface
        )
    })?;
    if !pins.exists() {
        println!("{}: not attached", a.target.iface);
    } else {
        // Unpinned links nobody holds are destroyed: that detaches the programs.
        syncookie::loader::remove_pinned(&pins)?;
        println!("{}: detached", a.target.iface);
    }
    drop(lock);
    pins.remove_lock();
    Ok(())
}
