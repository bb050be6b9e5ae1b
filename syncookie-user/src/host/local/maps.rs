//! The pinned `SC_LOCAL_ADDRS`, `SC_LOCAL_MACS` and `SC_RPF`, brought in line with what the
//! namespace accepts: stale entries out first (room for new ones), then new and changed entries
//! in.

use std::collections::BTreeMap;

use aya::maps::{Array, HashMap, MapData, MapError, lpm_trie::Key};
use syncookie_common::maps::{
    LOCAL_ADDRS_LEN, LOCAL_MACS_LEN, LocalHints, MAP_LOCAL_ADDRS, MAP_LOCAL_HINTS, MAP_LOCAL_MACS,
    MAP_RPF, MAP_RPF_ON, Mac, RPF_LEN,
};

use super::{Local, LocalError, Prefix, fmt_mac};
use crate::bpf::{
    pinned::{PinnedMaps, PrefixTrie as Trie},
    pins::PinDir,
};

pub(super) struct LocalMaps {
    addrs: Trie,
    macs: HashMap<MapData, Mac, u32>,
    rpf: Trie,
    rpf_on: Array<MapData, u32>,
    hints: Array<MapData, LocalHints>,
}

/// How many entries a sync added, removed and could not add (the map was full).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: usize,
    pub removed: usize,
    pub left_out: usize,
}

impl Changes {
    pub fn any(&self) -> bool {
        self.added + self.removed + self.left_out > 0
    }
}

fn update_err(name: &'static str) -> impl Fn(MapError) -> LocalError {
    move |source| LocalError::Update { name, source }
}

/// A map that cannot take one more entry: E2BIG (hash) or ENOSPC (LPM trie).
fn full(e: &MapError) -> bool {
    matches!(e, MapError::SyscallError(s)
        if matches!(s.io_error.raw_os_error(), Some(libc::E2BIG | libc::ENOSPC)))
}

impl LocalMaps {
    pub(super) fn open(pins: &PinDir) -> Result<Self, LocalError> {
        let maps = PinnedMaps::new(pins);
        Ok(Self {
            addrs: maps.local_addrs()?,
            macs: maps.local_macs()?,
            rpf: maps.rpf()?,
            rpf_on: maps.rpf_on()?,
            hints: maps.local_hints()?,
        })
    }

    /// The protected interface's MAC, compared before `SC_LOCAL_MACS` is asked (zero: none).
    pub(super) fn set_iface_mac(&mut self, mac: Mac) -> Result<(), LocalError> {
        let h = LocalHints {
            mac,
            ..LocalHints::default()
        };
        self.hints.set(0, h, 0).map_err(update_err(MAP_LOCAL_HINTS))
    }

    /// The reverse-path filter: `routes` into `SC_RPF`, then `mode` into `SC_RPF_ON` (off
    /// first when turning it off, so the program never reads a trie half emptied as on).
    pub(super) fn sync_rpf(
        &mut self,
        mode: u32,
        routes: &BTreeMap<Prefix, u32>,
    ) -> Result<Changes, LocalError> {
        if mode == 0 {
            self.rpf_on.set(0, 0, 0).map_err(update_err(MAP_RPF_ON))?;
        }
        let c = sync_trie(&mut self.rpf, MAP_RPF, routes)?;
        if c.left_out > 0 {
            // Refusing sources whose routes did not fit would drop what the kernel accepts.
            log::warn!(
                "{MAP_RPF} is full ({RPF_LEN} routes): {} routes left out; the \
                 reverse-path filter is left to the kernel alone (SYNs it refuses may be \
                 answered)",
                c.left_out
            );
            self.rpf_on.set(0, 0, 0).map_err(update_err(MAP_RPF_ON))?;
            return Ok(c);
        }
        if mode != 0 {
            self.rpf_on
                .set(0, mode, 0)
                .map_err(update_err(MAP_RPF_ON))?;
        }
        Ok(c)
    }

    pub(super) fn sync(&mut self, want: &Local) -> Result<Changes, LocalError> {
        let mut c = sync_trie(&mut self.addrs, MAP_LOCAL_ADDRS, &want.prefixes)?;
        if c.left_out > 0 {
            log::warn!(
                "{MAP_LOCAL_ADDRS} is full ({LOCAL_ADDRS_LEN} prefixes): {} local \
                 prefixes left out; SYNs to them pass to the kernel unprotected (raise \
                 LOCAL_ADDRS_LEN in syncookie-common, rebuild, and restart after `syncookie \
                 detach`)",
                c.left_out
            );
        }

        let have: BTreeMap<Mac, u32> = self
            .macs
            .iter()
            .collect::<Result<_, _>>()
            .map_err(update_err(MAP_LOCAL_MACS))?;
        for m in have.keys().filter(|m| !want.macs.contains_key(*m)) {
            self.macs.remove(m).map_err(update_err(MAP_LOCAL_MACS))?;
            log::debug!("no longer a local MAC: {}", fmt_mac(m));
            c.removed += 1;
        }
        let mut macs_left_out = 0;
        for (m, &ifindex) in &want.macs {
            if have.get(m) == Some(&ifindex) {
                continue;
            }
            match self.macs.insert(m, ifindex, 0) {
                Ok(()) => {
                    log::debug!("local MAC: {} (ifindex {ifindex})", fmt_mac(m));
                    c.added += 1;
                }
                Err(e) if full(&e) => macs_left_out += 1,
                Err(e) => return Err(update_err(MAP_LOCAL_MACS)(e)),
            }
        }
        if macs_left_out > 0 {
            log::warn!(
                "{MAP_LOCAL_MACS} is full ({LOCAL_MACS_LEN} addresses): {macs_left_out} MAC \
                 addresses of this namespace left out; frames to them pass to the kernel \
                 unprotected (raise LOCAL_MACS_LEN in syncookie-common, rebuild, and restart \
                 after `syncookie detach`)"
            );
        }
        c.left_out += macs_left_out;
        Ok(c)
    }
}

/// Brings `trie` in line with `want`; the changes (`left_out`: entries that did not fit).
fn sync_trie(
    trie: &mut Trie,
    name: &'static str,
    want: &BTreeMap<Prefix, u32>,
) -> Result<Changes, LocalError> {
    let mut c = Changes::default();
    let have: BTreeMap<Prefix, u32> = trie
        .iter()
        .map(|r| {
            r.map(|(k, v)| {
                let p = Prefix {
                    addr: k.data(),
                    len: k.prefix_len(),
                };
                (p, v)
            })
        })
        .collect::<Result<_, _>>()
        .map_err(update_err(name))?;
    for p in have.keys().filter(|p| !want.contains_key(p)) {
        trie.remove(&Key::new(p.len, p.addr))
            .map_err(update_err(name))?;
        log::debug!("{name}: {p} removed");
        c.removed += 1;
    }
    for (p, &v) in want {
        if have.get(p) == Some(&v) {
            continue;
        }
        match trie.insert(&Key::new(p.len, p.addr), v, 0) {
            Ok(()) => {
                log::debug!("{name}: {p} ({v:#x})");
                c.added += 1;
            }
            Err(e) if full(&e) => c.left_out += 1,
            Err(e) => return Err(update_err(name)(e)),
        }
    }
    Ok(c)
}
