//! Kernel-cookie mode on Linux 5.x (Debian 11's 5.10, Ubuntu 22.04's 5.15), chosen by a load-time
//! constant the daemon sets where the raw cookie helpers (6.0+) are missing. There the cookie
//! comes from `bpf_tcp_gen_syncookie` on the listener the SYN path already holds, and handshake
//! ACKs are checked by `bpf_tcp_check_syncookie` alone. The verifier walks only the branch of a
//! constant, so a helper the kernel lacks (`bpf_tcp_raw_*` 6.0+, `bpf_ktime_get_coarse_ns`
//! 5.11+, `bpf_skc_to_mptcp_sock` 5.19+) is never reached, and 6.x keeps its programs as they are.
//!
//! `tcp_v4_get_syncookie()`/`tcp_v6_get_syncookie()` (net/ipv4/tcp_ipv4.c, net/ipv6/tcp_ipv6.c)
//! stamp the listener's overflow (`tcp_synq_overflow()`) with every cookie they make, so the
//! kernel takes our cookies without refresh SYNs; they make one only with tcp_syncookies=2 (the
//! daemon sets it) or a full SYN queue (`tcp_get_syncookie_mss()`).

use aya_ebpf::{
    Global,
    helpers::{bpf_ktime_get_coarse_ns, bpf_ktime_get_ns},
};

/// 1: the running kernel has no raw cookie helpers (a 5.x kernel); 0, the default: 6.0+.
#[unsafe(no_mangle)]
pub static SC_KC_LISTENER: Global<u32> = Global::new(0);

/// Whether cookies are made and checked on the listener (a 5.x kernel).
#[inline(always)]
pub fn on() -> bool {
    SC_KC_LISTENER.load() != 0
}

/// CLOCK_MONOTONIC in ns for budgets and refresh periods: the coarse clock (cheaper) where the
/// kernel has it, 5.11+.
#[inline(always)]
pub fn coarse_ns() -> u64 {
    // SAFETY: helper calls without arguments.
    unsafe {
        if on() {
            bpf_ktime_get_ns()
        } else {
            bpf_ktime_get_coarse_ns()
        }
    }
}
