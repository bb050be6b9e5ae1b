//! The maps, pinned by name so a restarted daemon finds the same keys and counters. This file
//! holds the ones every program reads (config, keys, ports, counters, scratch); the others sit
//! with the code that uses them.

use aya_ebpf::{
    macros::map,
    maps::{Array, PerCpuArray},
};
use syncookie_common::{
    maps::{Config, KEYS_LEN, Key, PORTS_LEN},
    stats::Counter,
};
use syncookie_ebpf::{
    keys::Keys,
    parse::{self, Tcp},
};

mod budget;
mod handoff;
pub mod kernel_cookies;
mod local;
mod resend;

pub use budget::{
    auto_completed, auto_engaged, client_prefix, refund_synack_budget, take_reset_budget,
    take_synack_budget,
};
pub use handoff::{handed_slot, note_handed};
pub use local::PinnedLocal;
pub use resend::{remember_synack, synack_acked};

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

/// Scratch space per CPU for [`forget`].
#[map]
pub static SC_SCRATCH: PerCpuArray<[u64; SCRATCH_WORDS]> = PerCpuArray::with_max_entries(1, 0);
const SCRATCH_WORDS: usize = 24;

/// `v`, passed through this CPU's scratch slot: what the verifier reads back from a map is an
/// unknown value, so the paths that reach this point with different known values (which options
/// a SYN had, how many VLAN tags) merge into one, and what follows is checked once instead of
/// once per combination. Callers bound offsets again afterwards. `None` only if the slot is
/// missing (never, for an array of one entry; older verifiers still explore it).
#[inline(always)]
pub fn forget<T: Copy>(v: T) -> Option<T> {
    const { assert!(core::mem::size_of::<T>() <= SCRATCH_WORDS * 8) };
    let p = SC_SCRATCH.get_ptr_mut(0)? as *mut T;
    // SAFETY: this CPU's slot, large enough for `T` (asserted above) and 8-byte aligned; nothing
    // else uses it while we run (XDP runs in softirq context; only a PREEMPT_RT kernel could
    // preempt us between these two accesses, and a packet read back with another's values
    // stays within every bounds check).
    Some(unsafe { parse::launder(p, v) })
}

/// `t` with its offsets passed through [`forget`]: whatever the VLAN tags or IP options, the
/// verifier checks what follows once. (The SYN's options get the
/// same treatment once parsed: which of them it had is known to the verifier otherwise, and
/// every combination would be checked through the cookie code.)
#[inline(always)]
pub fn one_state(t: &Tcp) -> Option<Tcp> {
    let [l3_off, l4_off, hlen, seg_len] = forget([t.l3_off, t.l4_off, t.hlen, t.seg_len])?;
    Some(
        Tcp {
            l3_off,
            l4_off,
            hlen,
            seg_len,
            ..*t
        }
        .bounded(),
    )
}

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

/// The clock of budgets, `auto` and refresh periods: coarse (a tick's precision is plenty for
/// seconds), and cheaper than `bpf_ktime_get_ns`, where the kernel has it (see `kc_listener`).
#[inline(always)]
pub fn now_ns() -> u64 {
    crate::kc_listener::coarse_ns()
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
