//! The daemon's loop: one tokio task that rotates keys, follows the host's changes, sends
//! SYN-ACKs again, reports, until SIGINT or SIGTERM.

use std::time::Duration;

use super::{
    DaemonError, Settings, Signals,
    iface::{Change, Presence, guard_vlans},
};
use crate::{
    bpf::{
        loader::{Fleet, Shield},
        pins::PinDir,
    },
    daemon::resend::{self, Resender},
    host::local,
    keys::{
        KeyMaps,
        fleet::{secs_to_next_epoch, wall_epoch},
    },
    observe::counters,
};

/// How often the daemon looks for SYN-ACKs to send again: their due times (1 s, 3 s) are kept
/// within a quarter of a second.
const RESEND_TICK: Duration = Duration::from_millis(250);

pub(super) async fn serve(
    settings: &Settings,
    shield: &mut Shield,
    fleet: Option<Fleet>,
    own_keys: bool,
    sig: &mut Signals,
) -> Result<(), DaemonError> {
    let opts = &settings.shield;
    let pins = &opts.pins;
    let mut logs = shield.forward_logs();
    let mut iface = Presence::new(&opts.iface);
    let mut keys = KeyMaps::open(pins)?;
    let period = Duration::from_secs(settings.rotate_secs);
    let mut rotate = timer(period);
    let report_every = Duration::from_secs(settings.report_secs.max(1));
    let mut report = timer(report_every);
    // Subscribed first, then synced: what changed since `attach` synced is not missed.
    let mut changes = local::Watcher::new().map_err(DaemonError::Local)?;
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
                let e = keys.rotate().map_err(DaemonError::Rotate)?;
                log::info!("rotated to key epoch {e}");
            }
            // Fleet keys change at the wall clock's epoch boundaries, on every host at once.
            _ = fleet_tick(fleet.as_ref()), if fleet.is_some() => {
                let f = fleet.as_ref().expect("fleet mode");
                let _l = pins.keys_lock()?;
                let e = keys
                    .sync_fleet(&f.master, wall_epoch(f.period_secs))
                    .map_err(DaemonError::FleetKey)?;
                log::info!("fleet key epoch {e}");
            }
            // Addresses, routes and links changed: the local maps follow; the interface may
            // have gone away (a driver reload, a re-created veth...) and come back, with its
            // XDP and TC attachments gone: attach again; VLANs on it are checked again.
            r = changes.changed() => {
                r.map_err(DaemonError::Local)?;
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
            _ = report.tick(), if settings.report_secs > 0 => {
                if let Ok(c) = counters::read(pins, &opts.iface) {
                    log::info!("counters:\n{}", c.table());
                }
            }
        }
    }
    log::info!("detaching");
    Ok(())
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

/// Brings the local addresses and MACs (and the rp_filter mirror) up to date. A failure keeps
/// the last ones (and is tried again at the next change): the shield goes on protecting what it
/// knew.
fn sync_local(pins: &PinDir) {
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
