//! Per-CPU counters: one increment per packet, at the verdict's single exit point.

use syncookie_common::stats::Counter;

use crate::maps::SC_STATS;

#[inline(always)]
pub fn inc(c: Counter) {
    if let Some(p) = SC_STATS.get_ptr_mut(c as u32) {
        // SAFETY: a per-CPU slot, only this CPU writes it while we run.
        unsafe { *p += 1 };
    }
}
