//! TC's memory of the handshakes it handed to the kernel, so that a second segment of one
//! handshake in the same batch follows the first instead of making a second child.

use aya_ebpf::{helpers::bpf_ktime_get_ns, macros::map, maps::PerCpuArray};
use syncookie_common::maps::{HANDED_SLOTS, HANDED_WINDOW_NS, Handed};
use syncookie_ebpf::parse::Tcp;

/// Handshakes TC handed off on this CPU, a slot each (`syncookie_common::maps::Handed`).
#[map]
pub static SC_HANDED: PerCpuArray<Handed> = PerCpuArray::with_max_entries(HANDED_SLOTS, 0);

/// `t`'s slot in [`SC_HANDED`] and whether it holds `t`'s handshake, handed off within the
/// window. `None` only if the slot is missing (never: the index is masked).
#[inline(always)]
pub fn handed_slot(t: &Tcp) -> Option<(*mut Handed, bool)> {
    // Fibonacci hashing: the product's top bits, as many as index the slots.
    const { assert!(HANDED_SLOTS.is_power_of_two()) };
    const SHIFT: u32 = 32 - HANDED_SLOTS.trailing_zeros();
    let i = (t.saddr[3] ^ t.ack ^ ((t.sport as u32) << 16 | t.dport as u32))
        .wrapping_mul(0x9e37_79b1)
        >> SHIFT;
    let h = SC_HANDED.get_ptr_mut(i & (HANDED_SLOTS - 1))?;
    // SAFETY: this CPU's slot (see `forget`); read whole, then compared.
    let s = unsafe { &*h };
    let same = s.ack == t.ack
        && s.sport == t.sport
        && s.dport == t.dport
        && s.saddr == t.saddr
        && s.daddr == t.daddr
        // SAFETY: a helper call without arguments.
        && unsafe { bpf_ktime_get_ns() }.wrapping_sub(s.at_ns) < HANDED_WINDOW_NS;
    Some((h, same))
}

/// Notes in `slot` that `t`'s handshake was handed off now.
#[inline(always)]
pub fn note_handed(slot: *mut Handed, t: &Tcp) {
    // SAFETY: this CPU's slot from `handed_slot`, written whole.
    unsafe {
        *slot = Handed {
            at_ns: bpf_ktime_get_ns(),
            saddr: t.saddr,
            daddr: t.daddr,
            ack: t.ack,
            sport: t.sport,
            dport: t.dport,
        }
    };
}
