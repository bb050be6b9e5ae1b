//! `syncookie rotate`: move a running shield to a new key now.

use anyhow::Context;
use syncookie::{bpf::pinned::PinnedMaps, keys::KeyMaps, observe::counters::CounterError};
use syncookie_common::maps::flags;

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
    let Some(pins) = a.target.attached("rotate")? else {
        return Err(not_attached(&a.target).into());
    };
    // Open first: on an interface without a shield this fails and leaves no lock file behind.
    let mut keys = KeyMaps::open(&pins)?;
    let f = PinnedMaps::new(&pins).config()?.get()?.flags;
    if f & flags::KERNEL_COOKIES != 0 {
        anyhow::bail!(
            "{}: the shield runs with the kernel's own cookies, whose keys the kernel keeps and \
             rotates itself: there is no key of ours to rotate",
            a.target.iface
        );
    }
    if f & flags::FLEET != 0 {
        anyhow::bail!(
            "{}: keys are fleet keys (derived from the master key file and the wall clock); a \
             random key here would not be known to the other hosts: replace the master key file \
             on every host instead",
            a.target.iface
        );
    }
    let _lock = pins.keys_lock()?;
    let epoch = keys.rotate().context("rotating keys")?;
    println!("{}: now at key epoch {epoch}", a.target.iface);
    Ok(())
}

pub(super) fn not_attached(t: &Target) -> CounterError {
    CounterError::NotAttached {
        iface: t.iface.clone(),
        path: t
            .pins()
            .map_or_else(|e| e.to_string(), |p| p.dir.display().to_string()),
    }
}
