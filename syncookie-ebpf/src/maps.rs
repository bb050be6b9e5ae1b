//! The maps, pinned by name so a restarted daemon finds the same keys and counters.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LpmTrie, PerCpuArray, lpm_trie},
};
use syncookie_common::{
    maps::{Config, KEYS_LEN, Key, LOCAL_ADDRS_LEN, LOCAL_MACS_LEN, LocalAddr, Mac, PORTS_LEN},
    stats::Counter,
};
use syncookie_ebpf::{keys::Keys, local::Local};

#[map]
pub static SC_CONFIG: Array<Config> = Array::pinned(1, 0);
/// `[0]`: the current key epoch; its key is in slot `epoch & 1`.
#[map]
pub static SC_EPOCH: Array<u64> = Array::pinned(1, 0);
#[map]
pub static SC_KEYS: Array<Key> = Array::pinned(KEYS_LEN, 0);
#[map]
pub static SC_PORTS: Array<u32> = Array::pinned(PORTS_LEN, 0);
#[map]
pub static SC_STATS: PerCpuArray<u64> = PerCpuArray::pinned(Counter::COUNT, 0);
/// What this host accepts as its own (`syncookie_common::maps::LocalAddr`, `Mac`): kept
/// current by the daemon from rtnetlink, and pinned so a restarted daemon finds them filled.
#[map]
pub static SC_LOCAL_ADDRS: LpmTrie<LocalAddr, u32> = LpmTrie::pinned(LOCAL_ADDRS_LEN, 0);
#[map]
pub static SC_LOCAL_MACS: HashMap<Mac, u32> = HashMap::pinned(LOCAL_MACS_LEN, 0);

#[inline(always)]
pub fn config() -> Option<&'static Config> {
    SC_CONFIG.get(0)
}

/// The keys the daemon writes into `SC_KEYS` and `SC_EPOCH`.
pub struct PinnedKeys;

impl Keys for PinnedKeys {
    #[inline(always)]
    fn key(&self, slot: u32) -> Option<Key> {
        SC_KEYS.get(slot).copied()
    }

    #[inline(always)]
    fn current_epoch(&self) -> u64 {
        SC_EPOCH.get(0).copied().unwrap_or(0)
    }
}

#[inline(always)]
pub fn port_protected(port: u16) -> bool {
    let (word, bit) = syncookie_common::maps::port_word(port);
    matches!(SC_PORTS.get(word), Some(w) if w & bit != 0)
}

/// The local addresses and MACs the daemon writes into `SC_LOCAL_ADDRS` and `SC_LOCAL_MACS`.
pub struct PinnedLocal;

impl Local for PinnedLocal {
    #[inline(always)]
    fn mac_local(&self, mac: &Mac) -> bool {
        SC_LOCAL_MACS.get_ptr(mac).is_some()
    }

    #[inline(always)]
    fn addr_local(&self, key: &lpm_trie::Key<LocalAddr>) -> bool {
        SC_LOCAL_ADDRS.get(key).is_some()
    }
}
