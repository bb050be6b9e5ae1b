//! Kernel-cookie mode's maps: its settings, when a SYN last went to the kernel to renew the
//! listener's overflow stamp, its scratch slot and the tail call to its SYN-ACK writer.

use aya_ebpf::{
    macros::map,
    maps::{Array, LruHashMap, PerCpuArray, ProgramArray},
};
use syncookie_common::maps::kernel_cookies::{
    DEFAULT_REFRESH_SECS, KC_CONF_LEN, KC_REFRESH_NS, REFRESH_ENTRIES, refresh_key,
};
use syncookie_ebpf::parse::Tcp;

use super::now_ns;

/// `SC_KC_CONF[KC_REFRESH_NS]`: nanoseconds between refresh SYNs (0: the default).
#[map]
pub static SC_KC_CONF: Array<u64> = Array::with_max_entries(KC_CONF_LEN, 0);
/// When a SYN last went to the kernel, per destination address and port.
#[map]
pub static SC_KC_REFRESH: LruHashMap<u64, u64> = LruHashMap::with_max_entries(REFRESH_ENTRIES, 0);

/// Kernel-cookie mode's per-CPU scratch: words 0-4 the TCP header of the ACK the stamp probe
/// builds (on the stack it would not fit beside the rest: 6.1 counts 480 bytes for the program
/// and 32 for the one function LLVM leaves uninlined, at most 512 in all), word
/// [`SCRATCH_ISN`] the cookie handed to the tail call. Used within one run on one CPU.
#[map]
pub static SC_KC_SCRATCH: PerCpuArray<[u32; 6]> = PerCpuArray::with_max_entries(1, 0);
pub const SCRATCH_ISN: usize = 5;

/// `[0]`: `syncookie_kc_synack`, put there by the daemon. Pinned: a program array loses its
/// entries when no file or pin holds it any more, and the shield outlives the daemon.
#[map]
pub static SC_KC_TAIL: ProgramArray = ProgramArray::pinned(1, 0);

#[inline(always)]
fn refresh_period() -> u64 {
    match SC_KC_CONF.get(KC_REFRESH_NS) {
        Some(&ns) if ns != 0 => ns,
        _ => DEFAULT_REFRESH_SECS * 1_000_000_000,
    }
}

/// Whether a refresh SYN to this address and port is due (none passed yet, or one period ago).
#[inline(always)]
pub fn refresh_due(t: &Tcp) -> bool {
    let key = refresh_key(&t.daddr, t.dport);
    match SC_KC_REFRESH.get_ptr(key) {
        // SAFETY: a value of the map, valid while we run (another CPU may rewrite it: any time
        // it holds is a refresh's).
        Some(last) => now_ns().wrapping_sub(unsafe { *last }) >= refresh_period(),
        None => true,
    }
}

#[inline(always)]
pub fn mark_refreshed(t: &Tcp) {
    let key = refresh_key(&t.daddr, t.dport);
    // A failed insert (a race with another CPU) only means one more refresh SYN.
    let _ = SC_KC_REFRESH.insert(key, now_ns(), 0);
}
