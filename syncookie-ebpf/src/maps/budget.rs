//! Budgets (SYN-ACKs in all and per client prefix, resets, resend entries) and `auto` mode's
//! evidence of a flood.

use aya_ebpf::{
    macros::map,
    maps::{Array, LruHashMap, PerCpuArray},
};
use syncookie_common::maps::{
    AUTO_HOLD_NS, AutoState, Budget, Config, Mode, PREFIX_BUDGET_ENTRIES,
};
use syncookie_ebpf::parse::Tcp;

use super::now_ns;

/// `auto` mode's state per CPU (pinned: `status` and metrics read whether it is engaged).
#[map]
pub static SC_AUTO: PerCpuArray<AutoState> = PerCpuArray::pinned(1, 0);
/// The SYN-ACK budget in all, per CPU, and per client prefix (not pinned: budgets restart).
#[map]
pub static SC_SYNACK_BUDGET: PerCpuArray<Budget> = PerCpuArray::with_max_entries(1, 0);
#[map]
pub static SC_PREFIX_BUDGET: LruHashMap<u64, Budget> =
    LruHashMap::with_max_entries(PREFIX_BUDGET_ENTRIES, 0);
/// The reset budget's state (not pinned: a restart may start a fresh second).
#[map]
pub static SC_BUDGET: PerCpuArray<Budget> = PerCpuArray::with_max_entries(1, 0);

/// Takes one of this second's `per_sec` from a per-CPU budget; false when spent.
#[inline(always)]
pub(super) fn take(map: &PerCpuArray<Budget>, per_sec: u32) -> bool {
    let Some(b) = map.get_ptr_mut(0) else {
        return false;
    };
    let second = now_ns() >> 30;
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

/// Takes one of this second's bad ACKs that may go to the kernel; false when spent.
#[inline(always)]
pub fn take_reset_budget(per_sec: u32) -> bool {
    take(&SC_BUDGET, per_sec)
}

/// The client's prefix for the SYN-ACK budget, as one word (a short key hashes faster): an
/// IPv4 /24 in the low 24 bits, an IPv6 /48 in the low 48 with the top bit set, so the two
/// never collide.
#[inline(always)]
pub fn client_prefix(t: &Tcp) -> u64 {
    if t.is_v6() {
        1 << 63 | (t.saddr[0] as u64) << 16 | (t.saddr[1] >> 16) as u64
    } else {
        (t.saddr[0] >> 8) as u64
    }
}

/// Takes one SYN-ACK from the budget in all and from `prefix`'s; false when either is spent.
#[inline(always)]
pub fn take_synack_budget(cfg: &Config, prefix: u64) -> bool {
    if cfg.synack_per_sec != 0 && !take(&SC_SYNACK_BUDGET, cfg.synack_per_sec) {
        return false;
    }
    if cfg.synack_per_prefix == 0 {
        return true;
    }
    let second = now_ns() >> 30;
    let Some(b) = SC_PREFIX_BUDGET.get_ptr_mut(prefix) else {
        // First SYN from this prefix (or evicted): a fresh second. Insert failures (a race
        // with another CPU) only cost this one SYN-ACK its accounting.
        let _ = SC_PREFIX_BUDGET.insert(prefix, Budget { second, used: 1 }, 0);
        return true;
    };
    // SAFETY: a value of the hash map, valid while we run; other CPUs may update it at the same
    // time (see below).
    let b = unsafe { &mut *b };
    if b.second != second {
        b.second = second;
        b.used = 0;
    }
    if b.used >= cfg.synack_per_prefix as u64 {
        return false;
    }
    // Not atomic (the BPF target has no atomic read-modify-write in Rust's core): CPUs racing
    // on one prefix may count one SYN-ACK each as one, a small excess over the budget.
    b.used += 1;
    true
}

/// `auto` mode's evidence of a flood, shared by the CPUs: SYNs to protected ports this second
/// that no completed handshake has answered yet (a SYN and its ACK may be seen on different
/// CPUs). Not atomic: CPUs racing lose a count now and then, which a threshold tolerates.
#[map]
pub static SC_AUTO_UNANSWERED: Array<Budget> = Array::with_max_entries(1, 0);

/// `auto` mode: counts this SYN as unanswered; whether the shield is engaged on this CPU. It
/// engages when the SYNs that no handshake completes pass `engage_per_sec` in a second (a
/// spoofed flood: its SYN-ACKs never come back), not on the rate alone (a busy service whose
/// clients all complete their handshakes never engages it); once engaged, half of it keeps
/// it up (hysteresis), and [`AUTO_HOLD_NS`] after.
#[inline(always)]
pub fn auto_engaged(cfg: &Config) -> bool {
    let (Some(s), Some(u)) = (SC_AUTO.get_ptr_mut(0), SC_AUTO_UNANSWERED.get_ptr_mut(0)) else {
        return true;
    };
    let now = now_ns();
    let second = now >> 30;
    // SAFETY: this CPU's slot, and the shared slot (see above); plain loads and stores.
    let (s, u) = unsafe { (&mut *s, &mut *u) };
    if u.second != second {
        u.second = second;
        u.used = 0;
    }
    u.used += 1;
    // `syns`: this CPU's SYNs this second, for `status` and the metrics.
    if s.second != second {
        s.second = second;
        s.syns = 0;
    }
    s.syns += 1;
    let engaged = now < s.engaged_until;
    let keep = if engaged {
        cfg.engage_per_sec / 2
    } else {
        cfg.engage_per_sec
    };
    if u.used >= keep as u64 {
        s.engaged_until = now + AUTO_HOLD_NS;
        return true;
    }
    engaged
}

/// `auto` mode: a handshake completed (the kernel's, or ours), so one SYN was answered.
#[inline(always)]
pub fn auto_completed(cfg: &Config) {
    if cfg.mode != Mode::Auto as u8 {
        return;
    }
    if let Some(u) = SC_AUTO_UNANSWERED.get_ptr_mut(0) {
        // SAFETY: the shared slot; plain loads and stores (see above).
        let u = unsafe { &mut *u };
        if u.second == now_ns() >> 30 && u.used > 0 {
            u.used -= 1;
        }
    }
}

/// A handshake with the client's prefix completed: the SYN-ACK it cost is given back, so that
/// the prefix budget holds only SYN-ACKs nobody answers (a spoofed victim's) and a busy prefix
/// whose clients complete their handshakes (a NAT, a proxy) is never throttled.
#[inline(always)]
pub fn refund_synack_budget(cfg: &Config, prefix: u64) {
    if cfg.synack_per_prefix == 0 {
        return;
    }
    if let Some(b) = SC_PREFIX_BUDGET.get_ptr_mut(prefix) {
        // SAFETY: a value of the hash map, valid while we run (races: see take_synack_budget).
        let b = unsafe { &mut *b };
        if b.second == now_ns() >> 30 && b.used > 0 {
            b.used -= 1;
        }
    }
}
