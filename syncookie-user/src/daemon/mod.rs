//! `syncookie run`'s daemon: attach the shield, then one tokio task keeps it working (key
//! rotation, the host's changes, SYN-ACK resends, reports, metrics) until SIGINT/SIGTERM, and
//! detaches or keeps it. The CLI turns flags into [`Settings`] and prints; the work is here.
//!
//! - [`serve`]: the loop and its timers.
//! - [`iface`]: the protected interface gone and back, VLANs added on it.

mod iface;
pub mod resend;
mod serve;

use std::{fs::File, net::SocketAddr};

use nix::fcntl::Flock;
use tokio::{
    net::TcpListener,
    signal::unix::{Signal, SignalKind, signal},
};

use crate::{
    bpf::{
        loader::{LoadError, Options, Shield},
        pins::PinError,
    },
    config::OnExit,
    host::{kernel::Cookies, local::LocalError},
    keys::KeyError,
    observe::counters::{self, Snapshot},
};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("starting the daemon's runtime")]
    Runtime(#[source] std::io::Error),
    #[error("handling SIGTERM and SIGINT")]
    Signals(#[source] std::io::Error),
    #[error("--metrics {addr}: cannot listen there")]
    Metrics {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("rotating keys")]
    Rotate(#[source] KeyError),
    #[error("deriving the fleet key")]
    FleetKey(#[source] KeyError),
    #[error("following local addresses")]
    Local(#[source] LocalError),
}

/// What the daemon runs: the shield to attach and how to keep it.
pub struct Settings {
    pub shield: Options,
    /// Seconds between key rotations (fleet keys: between epochs).
    pub rotate_secs: u64,
    /// Seconds between counter summaries in the log (0: only at exit).
    pub report_secs: u64,
    pub on_exit: OnExit,
    /// Serve Prometheus metrics here.
    pub metrics: Option<SocketAddr>,
}

/// A shield attached and its daemon's resources: [`Daemon::serve`] runs it, [`Daemon::stop`]
/// detaches or keeps it.
pub struct Daemon {
    settings: Settings,
    rt: tokio::runtime::Runtime,
    signals: Signals,
    /// Bound at start, served from [`Daemon::serve`] on.
    metrics: Option<TcpListener>,
    shield: Shield,
    /// One daemon per interface, held until [`Daemon::stop`].
    lock: Flock<File>,
}

struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }
}

impl Daemon {
    /// Takes the interface's lock and attaches the shield.
    pub fn start(settings: Settings) -> Result<Self, DaemonError> {
        let opts = &settings.shield;
        let pins = &opts.pins;
        let lock = pins.lock()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(DaemonError::Runtime)?;
        // Signal handlers first: a SIGTERM during the (seconds-long) load is then handled after
        // attaching, with a clean detach, instead of killing us with half-made pins.
        let signals = rt
            .block_on(async { Signals::new() })
            .map_err(DaemonError::Signals)?;
        // Bound before attaching: a taken port fails the command before it changes anything.
        let metrics = match settings.metrics {
            Some(addr) => Some(
                rt.block_on(TcpListener::bind(addr))
                    .map_err(|source| DaemonError::Metrics { addr, source })?,
            ),
            None => None,
        };
        let shield = match Shield::attach(opts) {
            Ok(s) => s,
            Err(e) => {
                drop(lock);
                pins.remove_lock();
                return Err(e.into());
            }
        };
        match shield.cookies {
            Cookies::Own => log::info!(
                "protecting TCP ports {:?} on {} (XDP {:?}, own cookies); keys rotate every {} s",
                opts.ports,
                opts.iface,
                opts.xdp_mode,
                settings.rotate_secs
            ),
            Cookies::Kernel => log::info!(
                "protecting TCP ports {:?} on {} (XDP {:?}, kernel cookies: {}, no TC \
                 program); the kernel's cookie keys are its own and rotate by themselves, so \
                 --rotate-secs, --master-key-file and `syncookie rotate` change nothing; one SYN \
                 per address and port goes to the kernel every {} s",
                opts.ports,
                opts.iface,
                opts.xdp_mode,
                crate::host::timestamps::carried(&shield.config),
                opts.refresh_secs
            ),
        }
        Ok(Self {
            settings,
            rt,
            signals,
            metrics,
            shield,
            lock,
        })
    }

    /// Runs the shield's tasks until SIGINT or SIGTERM.
    pub fn serve(&mut self) -> Result<(), DaemonError> {
        let opts = &self.settings.shield;
        if let Some(l) = self.metrics.take() {
            let addr = l.local_addr().map_err(|source| DaemonError::Metrics {
                addr: self.settings.metrics.expect("bound from it"),
                source,
            })?;
            log::info!("metrics on http://{addr}/metrics");
            self.rt.spawn(crate::observe::metrics::serve(
                l,
                opts.pins.clone(),
                opts.iface.clone(),
            ));
        }
        // Kernel-cookie mode: the kernel's keys; the shield's key timers have nothing to do.
        let own_keys = self.shield.cookies == Cookies::Own;
        let fleet = opts.fleet.clone().filter(|_| own_keys);
        self.rt.block_on(serve::serve(
            &self.settings,
            &mut self.shield,
            fleet,
            own_keys,
            &mut self.signals,
        ))
    }

    /// Detaches the shield, or leaves it working (`--on-exit keep`), and lets the interface's
    /// lock go. Returns the counters as they stood before.
    pub fn stop(self) -> Option<Snapshot> {
        let Self {
            settings,
            shield,
            lock,
            ..
        } = self;
        let opts = &settings.shield;
        let summary = counters::read(&opts.pins, &opts.iface).ok();
        match settings.on_exit {
            OnExit::Detach => shield.detach(),
            OnExit::Keep => log::info!(
                "leaving the shield on {} with its keys (the next run takes it over; \
                 `syncookie detach --iface {}` removes it)",
                opts.iface,
                opts.iface
            ),
        }
        drop(lock);
        opts.pins.remove_lock();
        summary
    }
}
