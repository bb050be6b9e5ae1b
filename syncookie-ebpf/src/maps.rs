//! The maps, pinned by name so a restarted daemon finds the same keys and counters.

use aya_ebpf::{
    macros::map,
    maps::{Array, PerCpuArray},
};
use syncookie_common::{
    maps::{Config, KEYS_LEN, Key, PORTS_LEN},
    stats::Counter,
};
use syncookie_ebpf::keys::Keys;

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
