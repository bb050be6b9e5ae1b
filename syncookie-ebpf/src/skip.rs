//! The stages a benchmark build leaves out (`syncookie_common::maps::stage`): a load-time
//! constant, 0 unless the bench sets it, so the verifier prunes every check of it.

use aya_ebpf::Global;

#[unsafe(no_mangle)]
pub static SC_SKIP: Global<u32> = Global::new(0);

/// Whether `stage` is left out.
#[inline(always)]
pub fn skipped(stage: u32) -> bool {
    SC_SKIP.load() & stage != 0
}
