//! `syncookie run`: its flags and config file, made into the daemon's settings (the daemon is
//! `syncookie::daemon`), and what it prints.

use syncookie::{
    bpf::{
        loader::{Fleet, Options, XdpModeArg},
        share::{self, Actions, RunConfig},
    },
    config::{OnExit, RunFile},
    daemon::{Daemon, Settings},
    host::{kernel::Cookies, netdev, privilege},
    keys::fleet::MasterKey,
    policy::{self, ModeArg, Policy},
};
use syncookie_common::maps::kernel_cookies;

use super::Target;

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
    /// kernel: the kernel's own cookies (Linux 5.10+; on 5.x made on the listener by
    /// bpf_tcp_gen_syncookie; MSS only unless --timestamps-without-offsets, the kernel's keys,
    /// sets net.ipv4.tcp_syncookies=2). Default: own where the kernel can, else kernel.
    #[arg(long, value_enum)]
    cookies: Option<Cookies>,
    /// Kernel-cookie mode: seconds between the SYNs left to the kernel (one per local address
    /// and port) so that its cookie check keeps accepting ours (it needs one of its own in the
    /// last 120 s). Unused on 5.x, where making a cookie renews it.
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
    let opts = Options {
        iface: a.target.iface.clone(),
        ports: a.ports.clone(),
        xdp_mode: a.xdp_mode,
        pins: a.target.pins()?,
        policy: Policy {
            mode: a.mode,
            engage_per_sec: a.engage_rate,
            synack_per_sec: a.synack_rate,
            synack_per_prefix: a.synack_prefix_rate,
            rst_per_sec: a.reset_rate,
        },
        fleet,
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
    let mut daemon = Daemon::start(Settings {
        shield: opts,
        rotate_secs: a.rotate_secs,
        report_secs: a.report_secs,
        on_exit: a.on_exit,
        metrics: a.metrics,
    })?;
    // Tests and scripts wait for this line.
    println!("attached");
    let res = daemon.serve();
    if let Some(s) = daemon.stop() {
        println!("syncookie on {} (final):\n{}", a.target.iface, s.table());
    }
    Ok(res?)
}
