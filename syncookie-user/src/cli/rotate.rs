//! `syncookie rotate`: move a running shield to a new key now.

use anyhow::Context;
use syncookie::{counters::CounterError, keys::Keys, privilege};

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
    privilege::require_pin_access("rotate")?;
    let Some(pins) = a.target.attached()? else {
        return Err(not_attached(&a.target).into());
    };
    // Open first: on an interface without a shield this fails and leaves no lock file behind.
    let mut keys = Keys::open(&pins)?;
    let _lock = pins.keys_lock()?;
    let epoch = keys.rotate().context("rotating keys")?;
    println!("{}: now at key epoch {epoch}", a.target.iface);
    Ok(())
}

pub(super) fn not_attached(t: &Target) -> CounterError {
    CounterError::NotAttached {
        iface: t.iface.clone(),
        path: t.pins().dir.display().to_string(),
    }
}
