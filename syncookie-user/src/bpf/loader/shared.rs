//! The shield in libxdp's dispatcher (crate::bpf::share): when it goes there, and how it joins.

use aya::{Ebpf, programs::Extension};
use syncookie_common::maps::{LINK_XDP, MAP_CONFIG};

use super::{LoadError, Options, Shield, XdpModeArg, attach::program, map_err};
use crate::{
    bpf::share::{self, OnHook},
    host::netdev,
};

pub(super) fn hook(opts: &Options, ifindex: u32) -> share::Hook {
    share::Hook {
        iface: opts.iface.clone(),
        ifindex,
    }
}

/// Whether XDP goes into libxdp's dispatcher, and then whether in generic mode: always when one
/// holds the hook (in its mode); on an empty hook with `--xdp-share`, unless a lone link of an
/// earlier run is pinned (taken over as it is: `syncookie detach` first to share).
pub(super) fn share_plan(opts: &Options) -> Result<Option<bool>, LoadError> {
    let ifindex = netdev::ifindex(&opts.iface)?;
    Ok(match hook(opts, ifindex).on_hook()? {
        OnHook::Dispatcher { skb, .. } => Some(skb),
        OnHook::Empty if opts.share.create && !opts.pins.map(LINK_XDP).exists() => {
            Some(opts.xdp_mode == XdpModeArg::Skb)
        }
        _ => None,
    })
}

/// The id of the shield's configuration map: it tells the shield's program in a dispatcher
/// from the others (it is the one that uses this map).
pub(super) fn config_map_id(ebpf: &Ebpf) -> Result<u32, LoadError> {
    match ebpf.map(MAP_CONFIG).expect("object has SC_CONFIG") {
        aya::maps::Map::Array(m) => Ok(m.info().map_err(map_err(MAP_CONFIG))?.id()),
        _ => unreachable!("SC_CONFIG is an array"),
    }
}

impl Shield {
    /// Puts the extension `name` into libxdp's dispatcher (a new one on an empty hook, in
    /// generic mode with `skb`), in place of the shield's program of an earlier run.
    pub(super) fn join(&mut self, opts: &Options, name: &str, skb: bool) -> Result<(), LoadError> {
        let ours = config_map_id(&self.ebpf)?;
        let ext: &mut Extension = program(&mut self.ebpf, name)?;
        let hook = hook(opts, netdev::ifindex(&opts.iface)?);
        let p = hook.join(ext, opts.share.run, ours, skb)?;
        log::info!(
            "in libxdp's dispatcher on {} (program id {}): slot {} of {}, priority {}, chain \
             actions {}",
            opts.iface,
            p.dispatcher,
            p.slot,
            p.of,
            p.run.priority,
            share::Actions(p.run.chain)
        );
        self.shared = Some(hook);
        Ok(())
    }
}
