//! The lab's maps (names in `syncookie_common::lab::map`). None is pinned: tests load the lab
//! beside a running shield, many times over.

use aya_ebpf::{
    macros::map,
    maps::{Array, PerCpuArray, ProgramArray},
};
use syncookie_common::{
    lab::{LabCounter, TEMPLATE_SIZE, drop_ack, forge, vlan},
    maps::{Config, KEYS_LEN, Key},
};
use syncookie_ebpf::keys::Keys;

#[map]
pub static LAB_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(LabCounter::COUNT, 0);
#[map]
pub static LAB_DROP: Array<u32> = Array::with_max_entries(drop_ack::LEN, 0);
#[map]
pub static LAB_SYNACKS: Array<u64> = Array::with_max_entries(1, 0);
#[map]
pub static LAB_TEMPLATE: Array<[u8; TEMPLATE_SIZE]> = Array::with_max_entries(2, 0);
#[map]
pub static LAB_JMP: ProgramArray = ProgramArray::with_max_entries(1, 0);
#[map]
pub static LAB_CONFIG: Array<Config> = Array::with_max_entries(1, 0);
#[map]
pub static LAB_KEYS: Array<Key> = Array::with_max_entries(KEYS_LEN, 0);
#[map]
pub static LAB_EPOCH: Array<u64> = Array::with_max_entries(1, 0);
#[map]
pub static LAB_VLAN: Array<u32> = Array::with_max_entries(vlan::LEN, 0);
#[map]
pub static LAB_FORGE: Array<u32> = Array::with_max_entries(forge::LEN, 0);
/// Per-CPU scratch for [`forget`], as the shield's `SC_SCRATCH`.
#[map]
pub static LAB_SCRATCH: PerCpuArray<[u64; 8]> = PerCpuArray::with_max_entries(1, 0);

/// The shield's `forget`: `v` through this CPU's scratch slot, so that the SYN paths' many
/// option states merge into one for what follows (the cookie, the SYN-ACK writer).
#[inline(always)]
pub fn forget<T: Copy>(v: T) -> Option<T> {
    const { assert!(core::mem::size_of::<T>() <= 64) };
    let p = LAB_SCRATCH.get_ptr_mut(0)? as *mut T;
    // SAFETY: this CPU's slot, large enough and 8-byte aligned; nothing else uses it meanwhile.
    Some(unsafe { syncookie_ebpf::parse::launder(p, v) })
}

#[inline(always)]
pub fn inc(c: LabCounter) {
    if let Some(p) = LAB_COUNTERS.get_ptr_mut(c as u32) {
        // SAFETY: this CPU's slot; nothing else writes it while we run.
        unsafe { *p += 1 };
    }
}

/// `map::FORGE`'s mode and shift, and this try's number (counted up for the next).
#[inline(always)]
pub fn forge_try() -> (u32, u32, u32) {
    let get = |i| LAB_FORGE.get(i).copied().unwrap_or(0);
    let i = get(forge::NEXT);
    if let Some(p) = LAB_FORGE.get_ptr_mut(forge::NEXT) {
        // SAFETY: the slot exists; the test runs one try at a time.
        unsafe { *p = i.wrapping_add(1) };
    }
    (get(forge::MODE), get(forge::SHIFT), i)
}

#[inline(always)]
pub fn config() -> Option<&'static Config> {
    LAB_CONFIG.get(0)
}

/// The bench's keys, filled by the bench as the daemon fills the shield's.
pub struct LabKeys;

impl Keys for LabKeys {
    #[inline(always)]
    fn key(&self, slot: u32) -> Option<Key> {
        LAB_KEYS.get(slot).copied()
    }

    #[inline(always)]
    fn current_epoch(&self) -> u64 {
        LAB_EPOCH.get(0).copied().unwrap_or(0)
    }
}
