//! `syncookie run`: attach, rotate keys, report; detach and clean up on SIGINT/SIGTERM.

use std::time::Duration;

use anyhow::Context;
use syncookie::{
    counters,
    keys::Keys,
    loader::{Options, Shield, XdpModeArg},
    local,
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
    /// TCP ports to protect, comma-separated.
    #[arg(long, short, value_delimiter = ',', required = true)]
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
    let shield = Shield::attach(&opts).context(format!("attaching to {}", opts.iface))?;
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
    // Subscribed first, then synced: what changed since `attach` synced is not missed.
    let mut changes = local::Watcher::new().context("following local addresses")?;
    sync_local(pins);
    loop {
        tokio::select! {
            _ = sig.term.recv() => break,
            _ = sig.int.recv() => break,
            _ = rotate.tick() => {
                let _l = pins.keys_lock()?;
                let e = keys.rotate().context("rotating keys")?;
                log::info!("rotated to key epoch {e}");
            }
            r = changes.changed() => {
                r.context("following local addresses")?;
                sync_local(pins);
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

/// Brings the local addresses and MACs up to date. A failure keeps the last ones (and is tried
/// again at the next change): the shield goes on protecting what it knew.
fn sync_local(pins: &syncookie::pins::PinDir) {
    match local::sync(pins) {
        Ok(c) if c.any() => log::debug!(
            "local addresses and MACs: {} added, {} removed, {} left out",
            c.added,
            c.removed,
            c.left_out
        ),
        Ok(_) => {}
        Err(e) => log::warn!("{e}"),
    }
}
