//! The maps, pinned by name so a restarted daemon finds the same keys and counters.

use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, bpf_xdp_load_bytes},
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, lpm_trie},
    programs::XdpContext,
};
use syncookie_common::{
    maps::{
        AUTO_HOLD_NS, AutoState, Budget, Config, HANDED_SLOTS, HANDED_WINDOW_NS, Handed, KEYS_LEN,
        Key, LOCAL_ADDRS_LEN, LOCAL_MACS_LEN, LocalAddr, LocalHints, Mac, Mode, PORTS_LEN,
        PREFIX_BUDGET_ENTRIES, RESEND_ENTRIES, RESEND_FRAME, RESEND_PER_SEC, RPF_LEN, Resend,
        ResendKey,
    },
    stats::Counter,
};
use syncookie_ebpf::{
    keys::Keys,
    local::{self, Local},
    parse::{self, Tcp},
};

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

/// SYN-ACKs to send again when no ACK comes (`syncookie_common::maps::Resend`), pinned so a
/// restarted daemon finds them; the per-CPU budget of new entries, and the per-CPU slot an
/// entry is built in (too large for the stack).
#[map]
pub static SC_RESEND: LruHashMap<ResendKey, Resend> = LruHashMap::pinned(RESEND_ENTRIES, 0);
#[map]
pub static SC_RESEND_BUDGET: PerCpuArray<Budget> = PerCpuArray::with_max_entries(1, 0);
#[map]
pub static SC_RESEND_SCRATCH: PerCpuArray<Resend> = PerCpuArray::with_max_entries(1, 0);
/// The per-CPU slot its key is built in: the XDP stack is nearly full on the ACK path.
#[map]
pub static SC_RESEND_KEY: PerCpuArray<ResendKey> = PerCpuArray::with_max_entries(1, 0);

/// Handshakes TC handed off on this CPU, a slot each (`syncookie_common::maps::Handed`).
#[map]
pub static SC_HANDED: PerCpuArray<Handed> = PerCpuArray::with_max_entries(HANDED_SLOTS, 0);

/// `t`'s slot in [`SC_HANDED`] and whether it holds `t`'s handshake, handed off within the
/// window. `None` only if the slot is missing (never: the index is masked).
#[inline(always)]
pub fn handed_slot(t: &Tcp) -> Option<(*mut Handed, bool)> {
    let i = (t.saddr[3] ^ t.ack ^ ((t.sport as u32) << 16 | t.dport as u32))
        .wrapping_mul(0x9e37_79b1)
        >> 24;
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

#[inline(always)]
fn now_ns() -> u64 {
    crate::kc_listener::coarse_ns()
}

/// Takes one of this second's `per_sec` from a per-CPU budget; false when spent.
#[inline(always)]
fn take(map: &PerCpuArray<Budget>, per_sec: u32) -> bool {
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

/// `t`'s connection as a resend key, in this CPU's key slot (not on the stack).
#[inline(always)]
fn resend_key(t: &Tcp) -> Option<&'static ResendKey> {
    let k = SC_RESEND_KEY.get_ptr_mut(0)?;
    // SAFETY: this CPU's slot (see `forget`), written whole here.
    unsafe {
        *k = ResendKey {
            saddr: t.saddr,
            daddr: t.daddr,
            sport: t.sport,
            dport: t.dport,
        };
        Some(&*k)
    }
}

/// Remembers the SYN-ACK just written over `t` (the SYN) for the daemon to send again if no
/// ACK comes, within this CPU's budget of new entries (beyond it, as under a flood, the client
/// whose ACK is lost waits as with the kernel's own cookies).
#[inline(always)]
pub fn remember_synack(ctx: &XdpContext, t: &Tcp) {
    let len = ctx.data_end() - ctx.data();
    if len > RESEND_FRAME || !take(&SC_RESEND_BUDGET, RESEND_PER_SEC) {
        return;
    }
    let Some(v) = SC_RESEND_SCRATCH.get_ptr_mut(0) else {
        return;
    };
    let n = parse::opaque(len) & 0x7f;
    if n == 0 || n > RESEND_FRAME {
        return;
    }
    // SAFETY: this CPU's slot (see `forget`); the helper copies `n` <= RESEND_FRAME bytes of
    // the frame into its frame array.
    unsafe {
        if bpf_xdp_load_bytes(ctx.ctx, 0, (*v).frame.as_mut_ptr() as *mut _, n as u32) != 0 {
            return;
        }
        (*v).sent_ns = now_ns();
        (*v).ifindex = (*ctx.ctx).ingress_ifindex;
        (*v).len = n as u16;
        (*v).tries = 0;
        // A full table evicts its oldest entry: the newest SYN-ACKs are the ones kept. Key and
        // value by reference: map slots, not copies on a nearly full stack.
        if let Some(k) = resend_key(t) {
            #[allow(clippy::needless_borrows_for_generic_args)]
            let _ = SC_RESEND.insert(k, &*v, 0);
        }
    }
}

/// The handshake's ACK came (its cookie checked): nothing to send again.
#[inline(always)]
pub fn synack_acked(t: &Tcp) {
    if let Some(k) = resend_key(t) {
        let _ = SC_RESEND.remove(k);
    }
}
