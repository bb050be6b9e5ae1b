//! The maps, pinned by name so a restarted daemon finds the same keys and counters.

use aya_ebpf::{
    macros::map,
    maps::{Array, PerCpuArray},
};
use syncookie_common::{
    maps::{Budget, Config, KEYS_LEN, Key, PORTS_LEN},
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
/// `[0]` != 0: XDP could not write metadata on this interface (the driver prepares its buffers
/// without room for it), so TC must re-check cookies. Learned again after a restart.
#[map]
pub static SC_NO_META: Array<u32> = Array::with_max_entries(1, 0);
/// The reset budget's state (not pinned: a restart may start a fresh second).
#[map]
pub static SC_BUDGET: PerCpuArray<Budget> = PerCpuArray::with_max_entries(1, 0);

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

/// Takes one of this second's `per_sec` bad ACKs that may go to the kernel; false when spent.
#[inline(always)]
pub fn take_reset_budget(per_sec: u32) -> bool {
    let Some(b) = SC_BUDGET.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: a helper call without arguments.
    let second = unsafe { aya_ebpf::helpers::bpf_ktime_get_coarse_ns() } >> 30;
    // SAFETY: this CPU's slot; nothing else writes it while we run.
    let b = unsafe { &mut *b };
    if b.second != second {
        b.second = second;
        b.used = 0;
    }
    if b.used >= per_sec as u64 {
        return false;
    }
    b.used += 1;
    true
}

#[inline(always)]
pub fn no_meta() -> bool {
    matches!(SC_NO_META.get(0), Some(v) if *v != 0)
}

#[inline(always)]
pub fn set_no_meta() {
    if let Some(v) = SC_NO_META.get_ptr_mut(0) {
        // SAFETY: a map value; a plain store of the same value from any CPU is harmless.
        unsafe { *v = 1 };
    }
}
