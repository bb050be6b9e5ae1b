//! `syncookie run`: attach, rotate keys, report; detach and clean up on SIGINT/SIGTERM.

use std::time::Duration;

use anyhow::Context;
use syncookie::{
    config::{OnExit, RunFile},
    counters,
    fleet::{MasterKey, secs_to_next_epoch, wall_epoch},
    kernel::Cookies,
    keys::Keys,
    loader::Fleet,
    loader::{Options, Shield, XdpModeArg},
    local, netdev,
    policy::{self, ModeArg, Policy},
    privilege,
    resend::{self, Resender},
    share::{self, Actions, RunConfig},
};
use syncookie_common::maps::kernel_cookies;
use tokio::signal::unix::{SignalKind, signal};

use super::Target;

/// How often the daemon looks for SYN-ACKs to send again: their due times (1 s, 3 s) are kept
/// within a quarter of a second.
const RESEND_TICK: Duration = Duration::from_millis(250);

/// Attach the shield to an interface and run in the foreground until SIGINT/SIGTERM.
///
/// Example: syncookie run --iface eth0 --ports 80,443
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// TCP ports to protect (1-65535), comma-separated (here or in the config file).
    #[arg(long, short, value_delimiter = ',', value_parser = super::port)]
    ports: Vec<u16>,
    /// A TOML file with any of these flags by their long names (e.g. `ports = [80, 443]`,
    /// `mode = "auto"`); flags given here override it. See packaging/syncookie.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// native: in the driver (fastest); skb: generic XDP, works on any interface.
    #[arg(long, value_enum, default_value = "native")]
    xdp_mode: XdpModeArg,
    /// Start libxdp's multi-program dispatcher on an interface with no XDP program, so that
    /// `xdp-loader` and `xdp-filter` can add theirs later. Without it the shield attaches alone
    /// there; on an interface where libxdp already runs programs it always joins them.
    #[arg(long)]
    xdp_share: bool,
    /// In libxdp's dispatcher: the shield's run priority (lower runs first; xdp-filter runs
    /// at 10, before the shield).
    #[arg(long, value_name = "N", default_value_t = RunConfig::default().priority)]
    xdp_priority: u32,
    /// In libxdp's dispatcher: the shield's verdicts after which the next program runs
    /// (aborted, drop, pass, tx, redirect); any other ends the chain. E.g. --xdp-chain pass
    #[arg(long, value_name = "ACTIONS", default_value = "pass")]
    xdp_chain: Actions,
    /// Seconds between key rotations; a cookie is valid for one to two periods.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    rotate_secs: u64,
    /// Seconds between counter summaries in the log (0: only at exit).
    #[arg(long, default_value_t = 0)]
    report_secs: u64,
    /// always: cookies for every SYN; auto: only while more SYNs than --engage-rate go
    /// unanswered (no handshake completes them);
    /// monitor: answer and drop nothing, count what would be done. `syncookie mode` switches
    /// a running shield.
    #[arg(long, value_enum, default_value = "always")]
    mode: ModeArg,
    /// auto mode: SYNs per second to protected ports that no handshake completes (a spoofed
    /// flood's) that engage the shield; a busy service whose clients complete their
    /// handshakes never engages it.
    #[arg(long, value_name = "SYNS", default_value_t = policy::DEFAULT_ENGAGE_PER_SEC)]
    engage_rate: u32,
    /// SYN-ACKs per second and CPU in all; beyond it SYNs are dropped (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 0)]
    synack_rate: u32,
    /// SYN-ACKs per second to one client /24 that no handshake answers: a spoofed victim gets
    /// no more; completed handshakes cost the prefix nothing (0: no limit).
    #[arg(long, value_name = "N", default_value_t = policy::DEFAULT_SYNACK_PER_PREFIX)]
    synack_prefix_rate: u32,
    /// Bad-cookie ACKs per second and CPU left to the kernel to reset; the rest are dropped.
    #[arg(long, value_name = "N", default_value_t = policy::DEFAULT_RST_PER_SEC)]
    reset_rate: u32,
    /// At SIGINT/SIGTERM: detach (remove the programs, maps and pins), or keep the shield
    /// working with its keys for the next `run` to take over (what a service restart wants;
    /// `syncookie detach` removes it later).
    #[arg(long, value_enum, default_value = "detach")]
    on_exit: OnExit,
    /// Fleet keys: derive each epoch's key from this shared secret (32+ random bytes, mode
    /// 0600) and take the epoch from the wall clock, so hosts behind ECMP or anycast check each
    /// other's cookies. Needs synchronized clocks and the same --rotate-secs on every host.
    #[arg(long, value_name = "FILE")]
    master_key_file: Option<std::path::PathBuf>,
    /// Serve Prometheus metrics on this address (GET /metrics), e.g. 127.0.0.1:9813.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// own: the shield's keyed cookies, handed over with bpf_sk_assign_tcp_reqsk (Linux 6.9+);
    /// kernel: the kernel's own cookies (Linux 6.0+; MSS only unless
    /// --timestamps-without-offsets, the kernel's keys, sets
    /// net.ipv4.tcp_syncookies=2). Default: own where the kernel can, else kernel.
    #[arg(long, value_enum)]
    cookies: Option<Cookies>,
    /// Kernel-cookie mode: seconds between the SYNs left to the kernel (one per local address
    /// and port) so that its cookie check keeps accepting ours (it needs one of its own in the
    /// last 120 s).
    #[arg(long, value_name = "SECS", default_value_t = kernel_cookies::DEFAULT_REFRESH_SECS,
          value_parser = clap::value_parser!(u64).range(1..=100))]
    refresh_secs: u64,
    /// Kernel-cookie mode: set net.ipv4.tcp_timestamps=2 (timestamps without random offsets)
    /// so that SYN-ACKs to timestamp clients carry window scaling, SACK and ECN in the kernel's
    /// own timestamp cookie. The cost: every TSval of this network namespace shows the host's
    /// uptime to its peer. Already 2: the options are carried without this flag.
    #[arg(long)]
    timestamps_without_offsets: bool,
}

/// Takes from the config file what the command line did not set.
fn merge(mut a: Args, m: &clap::ArgMatches) -> anyhow::Result<Args> {
    let Some(path) = a.config.clone() else {
        return Ok(a);
    };
    let f = RunFile::read(&path)?;
    let unset = |id: &str| m.value_source(id) != Some(clap::parser::ValueSource::CommandLine);
    macro_rules! take {
        ($($field:ident),+) => {$(
            if unset(stringify!($field)) && let Some(v) = f.$field {
                a.$field = v;
            }
        )+};
    }
    take!(
        ports,
        on_exit,
        xdp_mode,
        xdp_share,
        xdp_priority,
        xdp_chain,
        mode,
        engage_rate,
        synack_rate,
        synack_prefix_rate,
        reset_rate,
        rotate_secs,
        report_secs,
        refresh_secs
    );
    if unset("timestamps_without_offsets")
        && let Some(v) = f.timestamps_without_offsets
    {
        a.timestamps_without_offsets = v;
    }
    if unset("cookies") && f.cookies.is_some() {
        a.cookies = f.cookies;
    }
    if unset("metrics") && f.metrics.is_some() {
        a.metrics = f.metrics;
    }
    if unset("master_key_file") && f.master_key_file.is_some() {
        a.master_key_file = f.master_key_file;
    }
    Ok(a)
}

pub fn run(a: Args, m: &clap::ArgMatches) -> anyhow::Result<()> {
    let a = merge(a, m)?;
    if a.ports.is_empty() {
        anyhow::bail!(
            "no ports to protect: name them with --ports 80,443 or `ports = [80, 443]` in the config file"
        );
    }
    // Read before anything changes: a bad key file stops the command here.
    let fleet = match &a.master_key_file {
        Some(p) => Some(Fleet {
            master: std::sync::Arc::new(MasterKey::read(p)?),
            period_secs: a.rotate_secs,
        }),
        None => None,
    };
    // Before anything under /run or /sys/fs/bpf is touched.
    privilege::require_run("run")?;
    netdev::ifindex(&a.target.iface)?;
    let pins = a.target.pins()?;
    let lock = pins.lock()?;
    let opts = Options {
        iface: a.target.iface.clone(),
        ports: a.ports.clone(),
        xdp_mode: a.xdp_mode,
        pins: pins.clone(),
        policy: Policy {
            mode: a.mode,
            engage_per_sec: a.engage_rate,
            synack_per_sec: a.synack_rate,
            synack_per_prefix: a.synack_prefix_rate,
            rst_per_sec: a.reset_rate,
        },
        fleet: fleet.clone(),
        cookies: a.cookies,
        refresh_secs: a.refresh_secs,
        timestamps_2: a.timestamps_without_offsets,
        share: share::Settings {
            create: a.xdp_share,
            run: RunConfig {
                priority: a.xdp_priority,
                chain: a.xdp_chain.0,
            },
        },
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Signal handlers first: a SIGTERM during the (seconds-long) load is then handled after
    // attaching, with a clean detach, instead of killing us with half-made pins.
    let signals = rt.block_on(async { Signals::new() })?;
    // Bound before attaching: a taken port fails the command before it changes anything.
    let metrics = match a.metrics {
        Some(addr) => Some(
            rt.block_on(tokio::net::TcpListener::bind(addr))
                .with_context(|| format!("--metrics {addr}: cannot listen there"))?,
        ),
        None => None,
    };
    let shield = match Shield::attach(&opts) {
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
            a.ports,
            opts.iface,
            a.xdp_mode,
            a.rotate_secs
        ),
        Cookies::Kernel => log::info!(
            "protecting TCP ports {:?} on {} (XDP {:?}, kernel cookies: {}, no TC \
             program); the kernel's cookie keys are its own and rotate by themselves, so \
             --rotate-secs, --master-key-file and `syncookie rotate` change nothing; one SYN per \
             address and port goes to the kernel every {} s",
            a.ports,
            opts.iface,
            a.xdp_mode,
            syncookie::timestamps::carried(&shield.config),
            a.refresh_secs
        ),
    }
    // Tests and scripts wait for this line.
    println!("attached");
    if let Some(l) = metrics {
        log::info!("metrics on http://{}/metrics", l.local_addr()?);
        rt.spawn(syncookie::metrics::serve(
            l,
            pins.clone(),
            opts.iface.clone(),
        ));
    }
    let mut shield = shield;
    // Kernel-cookie mode: the kernel's keys; the shield's key timers have nothing to do.
    let fleet = fleet.filter(|_| shield.cookies == Cookies::Own);
    let own_keys = shield.cookies == Cookies::Own;
    let res = rt.block_on(serve(&a, &opts, &mut shield, fleet, own_keys, signals));
    let summary = counters::read(&pins, &opts.iface);
    match a.on_exit {
        OnExit::Detach => shield.detach(),
        OnExit::Keep => log::info!(
            "leaving the shield on {} with its keys (the next run takes it over; \
             `syncookie detach --iface {}` removes it)",
            opts.iface,
            opts.iface
        ),
    }
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

async fn serve(
    a: &Args,
    opts: &Options,
    shield: &mut Shield,
    fleet: Option<Fleet>,
    own_keys: bool,
    mut sig: Signals,
) -> anyhow::Result<()> {
    let pins = &opts.pins;
    let mut logs = shield.forward_logs();
    let mut iface = Presence::new(&opts.iface);
    let mut keys = Keys::open(pins)?;
    let period = Duration::from_secs(a.rotate_secs);
    let mut rotate = timer(period);
    let report_every = Duration::from_secs(a.report_secs.max(1));
    let mut report = timer(report_every);
    // Subscribed first, then synced: what changed since `attach` synced is not missed.
    let mut changes = local::Watcher::new().context("following local addresses")?;
    sync_local(pins);
    let mut vlans_guarded = false;
    // Without it (no CAP_NET_RAW) the shield still protects; a lost third ACK then costs what
    // it costs with the kernel's own cookies.
    let mut resender = Resender::open(pins)
        .map_err(|e| {
            log::warn!(
                "{e:#}: SYN-ACKs whose ACK is lost are not sent again; give the daemon \
                 CAP_NET_RAW"
            )
        })
        .ok();
    let mut resend = timer(RESEND_TICK);
    loop {
        tokio::select! {
            _ = sig.term.recv() => break,
            _ = sig.int.recv() => break,
            _ = rotate.tick(), if fleet.is_none() && own_keys => {
                let _l = pins.keys_lock()?;
                let e = keys.rotate().context("rotating keys")?;
                log::info!("rotated to key epoch {e}");
            }
            // Fleet keys change at the wall clock's epoch boundaries, on every host at once.
            _ = fleet_tick(fleet.as_ref()), if fleet.is_some() => {
                let f = fleet.as_ref().expect("fleet mode");
                let _l = pins.keys_lock()?;
                let e = keys
                    .sync_fleet(&f.master, wall_epoch(f.period_secs))
                    .context("deriving the fleet key")?;
                log::info!("fleet key epoch {e}");
            }
            // Addresses, routes and links changed: the local maps follow; the interface may
            // have gone away (a driver reload, a re-created veth...) and come back, with its
            // XDP and TC attachments gone: attach again; VLANs on it are checked again.
            r = changes.changed() => {
                r.context("following local addresses")?;
                sync_local(pins);
                match iface.poll() {
                    Change::Gone => {
                        log::warn!("{} disappeared; waiting for it to come back", opts.iface)
                    }
                    Change::Back => {
                        log::warn!("{} is back: attaching again", opts.iface);
                        match Shield::attach(opts) {
                            Ok(s) => {
                                *shield = s;
                                if let Some(old) = logs.take() {
                                    old.abort();
                                }
                                logs = shield.forward_logs();
                                log::info!("attached to {} again", opts.iface);
                            }
                            Err(e) => log::error!("attaching to {} again: {e:#}", opts.iface),
                        }
                    }
                    Change::None => {}
                }
                guard_vlans(opts, &mut vlans_guarded);
            }
            // SYN-ACKs whose ACK did not come: sent again, as the kernel does for its own.
            _ = resend.tick(), if resender.is_some() => {
                let r = resender.as_mut().expect("checked by the branch's condition");
                match r.pass(resend::monotonic_ns()) {
                    Ok(p) if p.sent > 0 => log::debug!("sent {} SYN-ACKs again", p.sent),
                    Ok(_) => {}
                    Err(e) => log::warn!("{e:#}"),
                }
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

/// Whether the interface is there, by its index (a re-created interface gets a new one).
struct Presence {
    name: String,
    index: Option<u32>,
}

enum Change {
    None,
    Gone,
    Back,
}

impl Presence {
    fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            index: nix::net::if_::if_nametoindex(name).ok(),
        }
    }

    fn poll(&mut self) -> Change {
        let now = nix::net::if_::if_nametoindex(self.name.as_str()).ok();
        let change = match (self.index, now) {
            (Some(_), None) => Change::Gone,
            (None, Some(_)) => Change::Back,
            (Some(a), Some(b)) if a != b => Change::Back,
            _ => Change::None,
        };
        self.index = now;
        change
    }
}

/// Sleeps until just after the next fleet epoch starts (recomputed from the wall clock each
/// time, so a stall or a clock step costs at most one late change).
async fn fleet_tick(f: Option<&Fleet>) {
    let secs = f.map_or(1.0, |f| secs_to_next_epoch(f.period_secs)) + 0.01;
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
}

/// A timer whose first tick is one period from now. After a stall (SIGSTOP, a frozen cgroup, a
/// suspended VM) it ticks once and starts its period again from there, never back to back: a
/// burst of the missed rotations would expire at once cookies issued a moment earlier (a cookie
/// lives in its key epoch and the next one only), and a burst of reports says nothing new.
fn timer(period: Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

/// A VLAN device added on the interface, or tag stripping turned on, while the shield runs (link
/// events): its SYNs would be answered untagged, on the wrong VLAN. What `run` refuses at start
/// it cannot undo here, so the shield goes to `monitor` (answers and drops nothing), once, and
/// says how to come back.
fn guard_vlans(opts: &Options, done: &mut bool) {
    if *done {
        return;
    }
    let Ok(ifindex) = syncookie::netdev::ifindex(&opts.iface) else {
        return;
    };
    let judged = syncookie::vlan::stripping(&opts.iface).and_then(|s| {
        let vlans = syncookie::vlan::vlans_on(ifindex)?;
        syncookie::vlan::judge(&opts.iface, s, vlans)
    });
    let Err(e @ syncookie::vlan::VlanError::Stripped(_)) = judged else {
        return;
    };
    *done = true;
    match syncookie::state::set_mode(&opts.pins, syncookie_common::maps::Mode::Monitor) {
        Ok(()) => log::error!(
            "{e}. Switched to monitor mode: the shield answers and drops nothing until then; \
             after the fix: `syncookie mode always --iface {}`",
            opts.iface
        ),
        Err(err) => log::error!("{e}. Switching to monitor mode failed: {err:#}"),
    }
}

/// Brings the local addresses and MACs (and the rp_filter mirror) up to date. A failure keeps
/// the last ones (and is tried again at the next change): the shield goes on protecting what it
/// knew.
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
