//! The protected interface while the daemon runs: gone and back (attach again), and VLANs
//! added on it (switch to `monitor`).

use syncookie_common::maps::Mode;

use crate::{
    bpf::loader::Options,
    host::{
        netdev,
        vlan::{self, VlanError},
    },
    observe::state,
};

/// Whether the interface is there, by its index (a re-created interface gets a new one).
pub(super) struct Presence {
    name: String,
    index: Option<u32>,
}

pub(super) enum Change {
    None,
    Gone,
    Back,
}

impl Presence {
    pub(super) fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            index: nix::net::if_::if_nametoindex(name).ok(),
        }
    }

    pub(super) fn poll(&mut self) -> Change {
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

/// A VLAN device added on the interface, or tag stripping turned on, while the shield runs (link
/// events): its SYNs would be answered untagged, on the wrong VLAN. What `run` refuses at start
/// it cannot undo here, so the shield goes to `monitor` (answers and drops nothing), once, and
/// says how to come back.
pub(super) fn guard_vlans(opts: &Options, done: &mut bool) {
    if *done {
        return;
    }
    let Ok(ifindex) = netdev::ifindex(&opts.iface) else {
        return;
    };
    let judged = vlan::stripping(&opts.iface).and_then(|s| {
        let vlans = vlan::vlans_on(ifindex)?;
        vlan::judge(&opts.iface, s, vlans)
    });
    let Err(e @ VlanError::Stripped(_)) = judged else {
        return;
    };
    *done = true;
    match state::set_mode(&opts.pins, Mode::Monitor) {
        Ok(()) => log::error!(
            "{e}. Switched to monitor mode: the shield answers and drops nothing until then; \
             after the fix: `syncookie mode always --iface {}`",
            opts.iface
        ),
        Err(err) => log::error!("{e}. Switching to monitor mode failed: {err:#}"),
    }
}
