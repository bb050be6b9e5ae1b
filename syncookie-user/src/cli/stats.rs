//! `syncookie stats`: the counters of a running shield, from any process.

use anyhow::Context;
use syncookie::{counters, privilege};

use super::Target;

/// Print the counters of the shield on an interface (summed over CPUs).
///
/// Example: syncookie stats --iface eth0 --json
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// One JSON object, one field per counter.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    privilege::require_pin_access("stats")?;
    let Some(pins) = a.target.attached()? else {
        return Err(super::rotate::not_attached(&a.target).into());
    };
    let snap = counters::read(&pins, &a.target.iface).context("reading counters")?;
    if a.json {
        println!("{}", snap.to_json());
    } else {
        println!("syncookie on {}:", a.target.iface);
        print!("{}", snap.table());
    }
    Ok(())
}
