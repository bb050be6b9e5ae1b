//! `syncookie run`: attach, rotate keys, report; detach and clean up on SIGINT/SIGTERM.

use std::time::Duration;

use anyhow::Context;
use syncookie::{
    counters,
    keys::Keys,
    loader::{Options, Shield, XdpModeArg},
    netdev, privilege,
};
use tokio::signal::unix::{SignalKind, signal};

use super::Target;

/// Attach the shield to an interface and run in the foreground until SIGINT/SIGTERM.
///
/// Example: syncookie run --iface eth0 --ports 80,443
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// TCP ports to protect (1-65535), comma-separated.
    #[arg(long, short, value_delimiter = ',', required = true, value_parser = super::port)]
    ports: Vec<u16>,
    /// native: in the driver (fastest); skb: generic XDP, works on any interface.
    #[arg(long, value_enum, default_value = "native")]
    xdp_mode: XdpModeArg,
    /// Seconds between key rotations; a cookie is valid for one to two periods.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    rotate_secs: u64,
    /// Seconds between counter summaries in the log (0: only at exit).
    #[arg(long, default_value_t = 0)]
    report_secs: u64,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    // Before anything under /run or /sys/fs/bpf is touched.
    privilege::require_run("run")?;
    netdev::ifindex(&a.target.iface)?;
    let pins = a.target.pins();
    let lock = pins.lock()?;
    let opts = Options {
        iface: a.target.iface.clone(),
        ports: a.ports.clone(),
        xdp_mode: a.xdp_mode,
        pins: pins.clone(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Signal handlers first: a SIGTERM during the (seconds-long) load is then handled after
    // attaching, with a clean detach, instead of killing us with half-made pins.
    let signals = rt.block_on(async { Signals::new() })?;
    let shield = match Shield::attach(&opts) {
        Ok(s) => s,
        Err(e) => {
            drop(lock);
            pins.remove_lock();
            return Err(e.into());
        }
    };
    log::info!(
        "protecting TCP ports {:?} on {} (XDP {:?}); keys rotate every {} s",
        a.ports,
        opts.iface,
        a.xdp_mode,
        a.rotate_secs
    );
    // Tests and scripts wait for this line.
    println!("attached");
    let res = rt.block_on(serve(&a, &pins, signals));
    let summary = counters::read(&pins, &opts.iface);
    shield.detach();
    drop(lock);
    pins.remove_lock();
    if let Ok(s) = summary {
        println!("syncookie on {} (final):\n{}", opts.iface, s.table());
    }
    res
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }
}

async fn serve(a: &Args, pins: &syncookie::pins::PinDir, mut sig: Signals) -> anyhow::Result<()> {
    let mut keys = Keys::open(pins)?;
    let period = Duration::from_secs(a.rotate_secs);
    let mut rotate = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let report_every = Duration::from_secs(a.report_secs.max(1));
    let mut report =
        tokio::time::interval_at(tokio::time::Instant::now() + report_every, report_every);
    loop {
        tokio::select! {
            _ = sig.term.recv() => break,
            _ = sig.int.recv() => break,
            _ = rotate.tick() => {
                let _l = pins.keys_lock()?;
                let e = keys.rotate().context("rotating keys")?;
                log::info!("rotated to key epoch {e}");
            }
            _ = report.tick(), if a.report_secs > 0 => {
                if let Ok(s) = counters::read(pins, &a.target.iface) {
                    log::info!("counters:\n{}", s.table());
                }
            }
        }
    }
    log::info!("detaching");
    Ok(())
}
