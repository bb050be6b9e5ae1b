//! What this host accepts as its own, for the locality and reverse-path checks.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LpmTrie, lpm_trie},
};
use syncookie_common::maps::{
    LOCAL_ADDRS_LEN, LOCAL_MACS_LEN, LocalAddr, LocalHints, Mac, RPF_LEN,
};
use syncookie_ebpf::local::{self, Local};

use super::SC_SCRATCH;

/// What this host accepts as its own (`syncookie_common::maps::LocalAddr`, `Mac`): kept
/// current by the daemon from rtnetlink, and pinned so a restarted daemon finds them filled.
#[map]
pub static SC_LOCAL_ADDRS: LpmTrie<LocalAddr, u32> = LpmTrie::pinned(LOCAL_ADDRS_LEN, 0);
#[map]
pub static SC_LOCAL_MACS: HashMap<Mac, u32> = HashMap::pinned(LOCAL_MACS_LEN, 0);
/// The locality check's fast path (`syncookie_common::maps::LocalHints`).
#[map]
pub static SC_LOCAL_HINTS: Array<LocalHints> = Array::pinned(1, 0);
/// The interface's reverse-path filter (`syncookie_common::maps::RPF_PASSES`), kept by the
/// daemon with the local addresses.
#[map]
pub static SC_RPF: LpmTrie<LocalAddr, u32> = LpmTrie::pinned(RPF_LEN, 0);
#[map]
pub static SC_RPF_ON: Array<u32> = Array::pinned(1, 0);

/// `a`'s trie key, built in this CPU's scratch slot: on the stack, each lookup's key took a
/// slot of its own, and the programs' stacks are nearly full.
#[inline(always)]
fn scratch_key(a: &[u32; 4], v6: bool) -> Option<&'static lpm_trie::Key<LocalAddr>> {
    let p = SC_SCRATCH.get_ptr_mut(0)? as *mut lpm_trie::Key<LocalAddr>;
    // SAFETY: this CPU's slot, large enough (24 words); what `forget` laundered through it was
    // read back already, and the key is used before anything else writes the slot. The key is
    // packed: written unaligned.
    unsafe {
        p.write_unaligned(local::addr_key(a, v6));
        Some(&*p)
    }
}

/// The local addresses and MACs the daemon writes into `SC_LOCAL_ADDRS` and `SC_LOCAL_MACS`.
pub struct PinnedLocal;

impl Local for PinnedLocal {
    #[inline(always)]
    fn mac_local(&self, mac: &Mac) -> bool {
        // The interface's own MAC first (zero: not known): most frames carry it, and a
        // compare is no hash.
        SC_LOCAL_HINTS
            .get(0)
            .is_some_and(|h| h.mac == *mac && h.mac != [0; 6])
            || SC_LOCAL_MACS.get_ptr(mac).is_some()
    }

    #[inline(always)]
    fn addr(&self, a: &[u32; 4], v6: bool) -> Option<u32> {
        SC_LOCAL_ADDRS.get(scratch_key(a, v6)?).copied()
    }

    #[inline(always)]
    fn rp_filter_on(&self) -> bool {
        SC_RPF_ON.get(0).is_some_and(|v| *v != 0)
    }

    #[inline(always)]
    fn reverse_path(&self, a: &[u32; 4]) -> Option<u32> {
        SC_RPF.get(scratch_key(a, false)?).copied()
    }
}
