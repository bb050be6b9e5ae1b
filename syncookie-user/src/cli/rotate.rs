//! `syncookie rotate`: move a running shield to a new key now.

use anyhow::Context;
use syncookie::keys::Keys;

use super::Target;

/// Rotate the cookie key now: cookies of the previous epoch stay valid, older ones expire.
///
/// Example: syncookie rotate --iface eth0
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let pins = a.target.pins();
    let _lock = pins.keys_lock()?;
    let epoch = Keys::open(&pins)?.rotate().context("rotating keys")?;
    println!("{}: now at key epoch {epoch}", a.target.iface);
    Ok(())
}
