//! The shield's pinned maps, typed: the one place userspace opens a map by its pin (what
//! bpf2go's generated `bpfMaps` struct is in cilium/ebpf). Names come from
//! `syncookie_common::maps`; a map that cannot be opened is named, with its pin and what to check.

use std::path::PathBuf;

use aya::maps::{
    Array, HashMap, IterableMap, Map, MapData, MapError, PerCpuArray, lpm_trie::LpmTrie,
};
use syncookie_common::maps::{
    AutoState, Config, Key, LocalAddr, LocalHints, MAP_AUTO, MAP_CONFIG, MAP_EPOCH, MAP_KEYS,
    MAP_LOCAL_ADDRS, MAP_LOCAL_HINTS, MAP_LOCAL_MACS, MAP_PORTS, MAP_RESEND, MAP_RPF, MAP_RPF_ON,
    MAP_STATS, Mac, Resend, ResendKey,
};

use crate::bpf::pins::PinDir;

#[derive(Debug, thiserror::Error)]
pub enum PinnedError {
    #[error(
        "cannot open the shield's pinned map {name} ({}): is `syncookie run` attached to \
         {iface}? `syncookie status --iface {iface}` tells",
        path.display()
    )]
    Open {
        name: &'static str,
        path: PathBuf,
        iface: String,
        /// Boxed: the error stays small enough to return everywhere (clippy's
        /// `result_large_err`).
        source: Box<MapError>,
    },
    #[error("pinned map {name} ({})", path.display())]
    Access {
        name: &'static str,
        path: PathBuf,
        source: Box<MapError>,
    },
}

/// An LPM trie of local prefixes (`SC_LOCAL_ADDRS`, `SC_RPF`): IPv4 as IPv4-mapped IPv6.
pub type PrefixTrie = LpmTrie<MapData, LocalAddr, u32>;

/// The pinned maps of the shield on one interface. Each map is opened when asked for, so a
/// command opens only what it reads.
#[derive(Clone, Copy)]
pub struct PinnedMaps<'a> {
    pins: &'a PinDir,
}

impl<'a> PinnedMaps<'a> {
    pub fn new(pins: &'a PinDir) -> Self {
        Self { pins }
    }

    /// `kind` says which map type to read the pin as: a pin does not say it to aya.
    fn open<M>(&self, name: &'static str, kind: fn(MapData) -> Map) -> Result<M, PinnedError>
    where
        M: TryFrom<Map, Error = MapError>,
    {
        let path = self.pins.map(name);
        let err = |source| PinnedError::Open {
            name,
            path: path.clone(),
            iface: self.pins.iface.clone(),
            source: Box::new(source),
        };
        let data = MapData::from_pin(&path).map_err(err)?;
        M::try_from(kind(data)).map_err(err)
    }

    pub fn config(&self) -> Result<ConfigMap, PinnedError> {
        Ok(ConfigMap {
            map: self.open(MAP_CONFIG, Map::Array)?,
            path: self.pins.map(MAP_CONFIG),
        })
    }

    /// `SC_PORTS`: the protected ports, one bit each, 32 to a word.
    pub fn ports(&self) -> Result<Array<MapData, u32>, PinnedError> {
        self.open(MAP_PORTS, Map::Array)
    }

    /// `SC_KEYS`: the cookie keys, by slot.
    pub fn keys(&self) -> Result<Array<MapData, Key>, PinnedError> {
        self.open(MAP_KEYS, Map::Array)
    }

    /// `SC_EPOCH`: the current key epoch, in entry 0.
    pub fn epoch(&self) -> Result<Array<MapData, u64>, PinnedError> {
        self.open(MAP_EPOCH, Map::Array)
    }

    /// `SC_STATS`: one counter per `syncookie_common::stats::Counter`, per CPU.
    pub fn stats(&self) -> Result<PerCpuArray<MapData, u64>, PinnedError> {
        self.open(MAP_STATS, Map::PerCpuArray)
    }

    /// `SC_AUTO`: `auto` mode's state, per CPU.
    pub fn auto(&self) -> Result<PerCpuArray<MapData, AutoState>, PinnedError> {
        self.open(MAP_AUTO, Map::PerCpuArray)
    }

    pub fn local_addrs(&self) -> Result<PrefixTrie, PinnedError> {
        self.open(MAP_LOCAL_ADDRS, Map::LpmTrie)
    }

    /// `SC_LOCAL_MACS`: MAC address to ifindex.
    pub fn local_macs(&self) -> Result<HashMap<MapData, Mac, u32>, PinnedError> {
        self.open(MAP_LOCAL_MACS, Map::HashMap)
    }

    pub fn local_hints(&self) -> Result<Array<MapData, LocalHints>, PinnedError> {
        self.open(MAP_LOCAL_HINTS, Map::Array)
    }

    /// `SC_RPF`: the reverse-path filter's routes.
    pub fn rpf(&self) -> Result<PrefixTrie, PinnedError> {
        self.open(MAP_RPF, Map::LpmTrie)
    }

    /// `SC_RPF_ON`: the reverse-path filter's mode, in entry 0.
    pub fn rpf_on(&self) -> Result<Array<MapData, u32>, PinnedError> {
        self.open(MAP_RPF_ON, Map::Array)
    }

    /// `SC_RESEND`: the SYN-ACKs XDP sent and whose ACK has not come (an LRU hash).
    pub fn resend(&self) -> Result<HashMap<MapData, ResendKey, Resend>, PinnedError> {
        self.open(MAP_RESEND, Map::LruHashMap)
    }
}

/// `SC_CONFIG`: the shield's configuration, one entry.
pub struct ConfigMap {
    map: Array<MapData, Config>,
    path: PathBuf,
}

impl ConfigMap {
    fn err(&self) -> impl FnOnce(MapError) -> PinnedError + '_ {
        |source| PinnedError::Access {
            name: MAP_CONFIG,
            path: self.path.clone(),
            source: Box::new(source),
        }
    }

    pub fn get(&self) -> Result<Config, PinnedError> {
        self.map.get(&0, 0).map_err(self.err())
    }

    pub fn set(&mut self, c: Config) -> Result<(), PinnedError> {
        let r = self.map.set(0, c, 0);
        r.map_err(self.err())
    }

    /// The map's kernel id: it tells the shield's program in libxdp's dispatcher from the
    /// others (it is the one that uses this map).
    pub fn id(&self) -> Result<u32, PinnedError> {
        self.map.map().info().map(|i| i.id()).map_err(self.err())
    }
}
