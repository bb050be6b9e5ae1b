//! `syncookie stats`: the counters of a running shield, from any process; `--watch` refreshes
//! them every second with per-second rates, as `top` does for processes.

use std::{io::IsTerminal, time::Duration};

use anyhow::Context;
use syncookie::observe::counters::{self, Snapshot};

use super::Target;

/// Print the counters of the shield on an interface (summed over CPUs).
///
/// Example: syncookie stats --iface eth0 --watch
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// One JSON object, one field per counter (with --watch: one object per line and second,
    /// {"total": {...}, "per_sec": {...}}).
    #[arg(long)]
    json: bool,
    /// Refresh every second with per-second rates until interrupted.
    #[arg(long)]
    watch: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let Some(pins) = a.target.attached("stats")? else {
        return Err(super::rotate::not_attached(&a.target).into());
    };
    let read = || counters::read(&pins, &a.target.iface).context("reading counters");
    let mut snap = read()?;
    if !a.watch {
        if a.json {
            println!("{}", snap.to_json());
        } else {
            println!("syncookie on {}:", a.target.iface);
            print!("{}", snap.table());
        }
        return Ok(());
    }
    let tty = std::io::stdout().is_terminal();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let next = read()?;
        let rates = next.delta(&snap);
        if a.json {
            println!(
                "{}",
                serde_json::json!({"total": next.to_json(), "per_sec": rates.to_json()})
            );
        } else {
            if tty {
                // Clear the screen and go home: a live table.
                print!("\x1b[2J\x1b[H");
            }
            println!(
                "syncookie on {} (every second; Ctrl-C to stop)",
                a.target.iface
            );
            print!("{}", rate_table(&next, &rates));
        }
        snap = next;
    }
}

fn rate_table(total: &Snapshot, rates: &Snapshot) -> String {
    let mut s = format!("  {:<18} {:>12} {:>10}\n", "counter", "total", "per sec");
    for ((c, t), (_, r)) in total.iter().zip(rates.iter()) {
        s += &format!("  {:<18} {:>12} {:>10}\n", c.name(), t, r);
    }
    s
}
