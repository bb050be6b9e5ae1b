//! SYN-ACKs remembered for the daemon to send again when their ACK does not come.

use aya_ebpf::{
    helpers::bpf_xdp_load_bytes,
    macros::map,
    maps::{LruHashMap, PerCpuArray},
    programs::XdpContext,
};
use syncookie_common::maps::{
    Budget, RESEND_ENTRIES, RESEND_FRAME, RESEND_PER_SEC, Resend, ResendKey,
};
use syncookie_ebpf::parse::{self, Tcp};

use super::{budget::take, now_ns};

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
