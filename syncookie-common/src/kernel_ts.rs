//! The kernel's own timestamp cookie, which kernel-cookie mode writes into its SYN-ACKs when
//! net.ipv4.tcp_timestamps is 2.
//!
//! `cookie_init_timestamp()` (net/ipv4/syncookies.c) puts the SYN's options in the low 6 bits of
//! the SYN-ACK's TSval: window scale (0xf: none), SACK (bit 4), ECN (bit 5), over the
//! millisecond clock (`tcp_clock_ns()`: CLOCK_MONOTONIC, `bpf_ktime_get_ns`'s clock), and adds
//! the per-host-pair offset `secure_tcp_ts_off()`. `cookie_v4_check()`/`cookie_v6_check()`
//! subtract that offset from the ACK's TSecr and `cookie_timestamp_decode()` reads the options
//! back. The offset is 0 whenever tcp_timestamps is not 1 (2: "timestamps without random
//! offsets", Linux 5.10 to 6.19 alike), and then XDP can write the cookie itself: TSvals then
//! show the host's uptime to every peer, which is the price.

use crate::cookie::{SynAttrs, WSCALE_NONE, pack_opts};

/// `TSBITS`: the option bits below the clock.
const TSBITS: u32 = 6;
const TSMASK: u64 = (1 << TSBITS) - 1;

/// The TSval `cookie_init_timestamp()` makes at `now_ns` (CLOCK_MONOTONIC) for a SYN whose
/// options are `opts` ([`options`]): the clock in ms with its low bits replaced by the options,
/// one period back when that would be ahead of the clock.
#[inline(always)]
pub const fn tsval(now_ns: u64, opts: u32) -> u32 {
    let now_ms = now_ns / 1_000_000;
    let mut ts = (now_ms & !TSMASK) | (opts as u64 & TSMASK);
    if ts > now_ms {
        ts = ts.wrapping_sub(1 << TSBITS);
    }
    ts as u32
}

/// The option bits of the timestamp cookie for a SYN offering `a` (its `mss` is not used).
#[inline(always)]
pub const fn options(a: &SynAttrs) -> u32 {
    pack_opts(a)
}

/// What `cookie_timestamp_decode()` (and `cookie_ecn_ok()`) read from an echoed TSecr when the
/// offset is 0 and SACK, window scaling and ECN are on: the options, `mss` 0.
pub const fn decode(tsecr: u32) -> SynAttrs {
    SynAttrs {
        mss: 0,
        wscale: (tsecr & 0xf) as u8,
        sack: tsecr & (1 << 4) != 0,
        ecn: tsecr & (1 << 5) != 0,
    }
}

/// Whether `decode` finds window scaling in use.
pub const fn has_wscale(a: &SynAttrs) -> bool {
    a.wscale != WSCALE_NONE
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn attrs(wscale: u8, sack: bool, ecn: bool) -> SynAttrs {
        SynAttrs {
            mss: 1460,
            wscale,
            sack,
            ecn,
        }
    }

    #[test]
    fn options_in_the_low_bits_never_ahead_of_the_clock() {
        for now_ms in [
            0u64,
            63,
            64,
            100,
            1_000_007,
            4_294_967_295,
            4_294_967_296 + 5,
        ] {
            for a in [
                attrs(7, true, false),
                attrs(WSCALE_NONE, false, false),
                attrs(14, true, true),
                attrs(0, false, true),
            ] {
                let ts = tsval(now_ms * 1_000_000 + 999_999, options(&a));
                let d = decode(ts);
                assert_eq!((d.wscale, d.sack, d.ecn), (a.wscale, a.sack, a.ecn));
                // At most 127 ms behind the clock (mod 2^32), never ahead.
                let behind = (now_ms as u32).wrapping_sub(ts);
                assert!(behind < 128, "{now_ms} ms: TSval {ts} is {behind} behind");
            }
        }
    }

    #[test]
    fn the_kernels_own_values() {
        // Seen on this project's host (tcp_syncookies=2, tcp_timestamps=2): the kernel's cookie
        // TSvals end in 010111 for wscale 7 and SACK.
        assert_eq!(
            tsval(1_000_000_000_000, options(&attrs(7, true, false))) & 63,
            0b010111
        );
        // 1_000_000 ms is 15625 periods of 64 exactly: options 0x3f would be ahead, one back.
        assert_eq!(
            tsval(1_000_000_000_000, options(&attrs(WSCALE_NONE, true, true))),
            1_000_000 - 64 + 0x3f
        );
        assert!(!has_wscale(&decode(0x3f)));
    }
}
