//! The pinned `SC_LOCAL_ADDRS` and `SC_LOCAL_MACS`, brought in line with what the namespace
//! accepts: stale entries out first (room for new ones), then new and changed entries in.

use std::collections::BTreeMap;

use aya::maps::{
    HashMap, Map, MapData, MapError,
    lpm_trie::{Key, LpmTrie},
};
use syncookie_common::maps::{
    LOCAL_ADDRS_LEN, LOCAL_MACS_LEN, LocalAddr, MAP_LOCAL_ADDRS, MAP_LOCAL_MACS, Mac,
};

use super::{Local, LocalError, Prefix, fmt_mac};
use crate::pins::PinDir;

pub(super) struct LocalMaps {
    addrs: LpmTrie<MapData, LocalAddr, u32>,
    macs: HashMap<MapData, Mac, u32>,
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

fn open_err(name: &'static str) -> impl Fn(MapError) -> LocalError {
    move |source| LocalError::Open { name, source }
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
        let data = |name| MapData::from_pin(pins.map(name)).map_err(open_err(name));
        Ok(Self {
            addrs: LpmTrie::try_from(Map::LpmTrie(data(MAP_LOCAL_ADDRS)?))
                .map_err(open_err(MAP_LOCAL_ADDRS))?,
            macs: HashMap::try_from(Map::HashMap(data(MAP_LOCAL_MACS)?))
                .map_err(open_err(MAP_LOCAL_MACS))?,
        })
    }

    pub(super) fn sync(&mut self, want: &Local) -> Result<Changes, LocalError> {
        let mut c = Changes::default();
        let have: BTreeMap<Prefix, u32> = self
            .addrs
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
            .map_err(update_err(MAP_LOCAL_ADDRS))?;
        for p in have.keys().filter(|p| !want.prefixes.contains_key(p)) {
            self.addrs
                .remove(&Key::new(p.len, p.addr))
                .map_err(update_err(MAP_LOCAL_ADDRS))?;
            log::debug!("no longer local: {p}");
            c.removed += 1;
        }
        for (p, &ifindex) in &want.prefixes {
            if have.get(p) == Some(&ifindex) {
                continue;
            }
            match self.addrs.insert(&Key::new(p.len, p.addr), ifindex, 0) {
                Ok(()) => {
                    log::debug!("local: {p} (ifindex {ifindex})");
                    c.added += 1;
                }
                Err(e) if full(&e) => c.left_out += 1,
                Err(e) => return Err(update_err(MAP_LOCAL_ADDRS)(e)),
            }
        }
        if c.left_out > 0 {
            log::warn!(
                "{MAP_LOCAL_ADDRS} is full ({LOCAL_ADDRS_LEN} prefixes): {} local prefixes left \
                 out; SYNs to them pass to the kernel unprotected (raise LOCAL_ADDRS_LEN in \
                 syncookie-common, rebuild, and restart after `syncookie detach`)",
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
