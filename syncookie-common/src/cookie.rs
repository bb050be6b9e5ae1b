//! The SYN cookie: a keyed MAC of the connection, carried in our ISN (and, with timestamps, in the
//! low byte of our TSval), that lets the ACK prove a SYN-ACK was sent without any state kept.
//!
//! Layout of the 32-bit ISN we send (`ack - 1` in the client's ACK):
//!
//! ```text
//!  31                      9   8   7 6   5     4    3  0
//! +-------------------------+----+-----+-----+------+------+
//! | MAC bits 0..22 (23 bits) |slot| mss | ECN | SACK |wscale|   wscale 0xf = client sent none
//! +-------------------------+----+-----+-----+------+------+
//! ```
//!
//! With timestamps, our TSval is a ~1 ms clock ([`ts_clock`]) whose low 8 bits are MAC bits
//! 23..30, so the ACK's TSecr adds 8 bits of check (31 in all). The MAC is SipHash-2-4, keyed by
//! the key in the cookie's slot, over the addresses, ports, the client's ISN, the key's epoch, the
//! 9 attribute bits and whether timestamps were used: an attacker can change none of them without
//! a new MAC.
//! The options ride in the ISN, not in the TSval as the kernel's cookies do, so clients without
//! timestamps keep window scaling and SACK.

use crate::{maps::Key, siphash::siphash24_words};

/// The kernel's MSS tables for cookies (`msstab` in net/ipv4/syncookies.c, net/ipv6/syncookies.c).
pub const MSS_TABLE_V4: [u16; 4] = [536, 1300, 1440, 1460];
pub const MSS_TABLE_V6: [u16; 4] = [1220, 1420, 1440, 8940];
/// Window-scale field value meaning "the client sent no window-scale option".
pub const WSCALE_NONE: u8 = 0xf;
/// RFC 7323: shift counts above 14 are treated as 14.
pub const MAX_WSCALE: u8 = 14;

const ATTR_BITS: u32 = 9;
const ATTR_MASK: u32 = (1 << ATTR_BITS) - 1;
const MAC_ISN_MASK: u64 = (1 << 23) - 1;

/// A connection as the server sees it: `saddr`/`sport` are the client's. Addresses are the
/// big-endian words of the IP address (IPv4 in `[0]`, the rest zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Flow {
    pub saddr: [u32; 4],
    pub daddr: [u32; 4],
    pub sport: u16,
    pub dport: u16,
    pub v6: bool,
}

impl Flow {
    pub const fn v4(saddr: u32, daddr: u32, sport: u16, dport: u16) -> Self {
        Self {
            saddr: [saddr, 0, 0, 0],
            daddr: [daddr, 0, 0, 0],
            sport,
            dport,
            v6: false,
        }
    }

    /// An IPv6 connection: addresses as four big-endian words each.
    pub const fn v6(saddr: [u32; 4], daddr: [u32; 4], sport: u16, dport: u16) -> Self {
        Self {
            saddr,
            daddr,
            sport,
            dport,
            v6: true,
        }
    }
}

/// What the client's SYN offered, as far as the cookie keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SynAttrs {
    /// Index into the MSS table of the address family.
    pub mss_idx: u8,
    /// The client's window-scale shift, or [`WSCALE_NONE`].
    pub wscale: u8,
    pub sack: bool,
    pub ecn: bool,
}

impl SynAttrs {
    /// The MSS the kernel should use towards the client.
    #[inline(always)]
    pub const fn mss(&self, v6: bool) -> u16 {
        let t = if v6 { &MSS_TABLE_V6 } else { &MSS_TABLE_V4 };
        t[(self.mss_idx & 3) as usize]
    }
}

/// The largest table entry not above `mss` (the smaller of the client's and our own).
#[inline(always)]
pub const fn mss_index(v6: bool, mss: u16) -> u8 {
    let t = if v6 { &MSS_TABLE_V6 } else { &MSS_TABLE_V4 };
    if mss >= t[3] {
        3
    } else if mss >= t[2] {
        2
    } else if mss >= t[1] {
        1
    } else {
        0
    }
}

/// The window-scale value a cookie stores for the option the client sent (if any).
#[inline(always)]
pub const fn wscale_field(client_wscale: Option<u8>) -> u8 {
    match client_wscale {
        Some(w) if w > MAX_WSCALE => MAX_WSCALE,
        Some(w) => w,
        None => WSCALE_NONE,
    }
}

/// The low 9 bits of the cookie: key slot and the SYN's options.
#[inline(always)]
pub const fn pack_attrs(slot: u32, a: &SynAttrs) -> u32 {
    ((slot & 1) << 8)
        | (((a.mss_idx & 3) as u32) << 6)
        | ((a.ecn as u32) << 5)
        | ((a.sack as u32) << 4)
        | (a.wscale & 0xf) as u32
}

/// The key slot a cookie names.
#[inline(always)]
pub const fn cookie_slot(cookie: u32) -> u32 {
    (cookie >> 8) & 1
}

#[inline(always)]
pub const fn unpack_attrs(cookie: u32) -> SynAttrs {
    SynAttrs {
        mss_idx: ((cookie >> 6) & 3) as u8,
        ecn: (cookie >> 5) & 1 == 1,
        sack: (cookie >> 4) & 1 == 1,
        wscale: (cookie & 0xf) as u8,
    }
}

/// The 64-bit MAC over the connection, the key's epoch and the cookie's attribute bits.
#[inline(always)]
pub fn mac(key: &Key, flow: &Flow, client_isn: u32, attrs: u32, ts: bool) -> u64 {
    let ports = ((flow.sport as u64) << 48) | ((flow.dport as u64) << 32) | client_isn as u64;
    // Family, timestamps and attribute bits below the epoch: every input has its own bits.
    let tail = (key.epoch << 16)
        | ((flow.v6 as u64) << 12)
        | ((ts as u64) << 10)
        | (attrs & ATTR_MASK) as u64;
    if flow.v6 {
        let w = |a: &[u32; 4], i: usize| ((a[i] as u64) << 32) | a[i + 1] as u64;
        siphash24_words(
            key.k0,
            key.k1,
            &[
                w(&flow.saddr, 0),
                w(&flow.saddr, 2),
                w(&flow.daddr, 0),
                w(&flow.daddr, 2),
                ports,
                tail,
            ],
        )
    } else {
        let addrs = ((flow.saddr[0] as u64) << 32) | flow.daddr[0] as u64;
        siphash24_words(key.k0, key.k1, &[addrs, ports, tail])
    }
}

/// What a SYN-ACK carries: the ISN, the 8 bits for the low byte of TSval, and the
/// connection's TSval offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cookie {
    pub isn: u32,
    pub ts_bits: u8,
    /// Added to the clock in our TSval so that it does not tell the host's uptime (as the
    /// kernel's `secure_tcp_ts_off()`): keyed and per connection, from MAC bits 32..63, which
    /// nothing else uses. Nothing checks it: the ACK's TSecr is checked by its low byte only.
    pub ts_off: u32,
}

/// The cookie for a SYN. `ts` says whether the SYN-ACK will carry timestamps.
#[inline(always)]
pub fn encode(
    key: &Key,
    slot: u32,
    flow: &Flow,
    client_isn: u32,
    a: &SynAttrs,
    ts: bool,
) -> Cookie {
    let attrs = pack_attrs(slot, a);
    let m = mac(key, flow, client_isn, attrs, ts);
    Cookie {
        isn: (((m & MAC_ISN_MASK) as u32) << ATTR_BITS) | attrs,
        ts_bits: (m >> 23) as u8,
        ts_off: (m >> 32) as u32,
    }
}

/// The clock our TSval runs on: CLOCK_MONOTONIC_COARSE (`bpf_ktime_get_coarse_ns`, no clock
/// read) in units of 2^20 ns (1.05 ms, inside RFC 7323's 1 ms - 1 s), a shift rather than a
/// division. After the handoff the kernel continues from the value we sent, at its own rate.
#[inline(always)]
pub const fn ts_clock(coarse_ns: u64) -> u32 {
    (coarse_ns >> 20) as u32
}

/// Our TSval: the [`ts_clock`] plus the connection's offset, its low byte replaced by MAC bits.
#[inline(always)]
pub const fn tsval(now_ms: u32, c: &Cookie) -> u32 {
    (now_ms.wrapping_add(c.ts_off) & !0xff) | c.ts_bits as u32
}

/// Checks the cookie in an ACK against `key` (the key in the cookie's slot).
///
/// `client_isn` is the ACK's `seq - 1`, `cookie` its `ack_seq - 1`, `tsecr` the echoed TSval when
/// the ACK carries timestamps. Returns the SYN's options when the MAC matches.
#[inline(always)]
pub fn check(
    key: &Key,
    flow: &Flow,
    client_isn: u32,
    cookie: u32,
    tsecr: Option<u32>,
) -> Option<SynAttrs> {
    let attrs = cookie & ATTR_MASK;
    let m = mac(key, flow, client_isn, attrs, tsecr.is_some());
    if ((m & MAC_ISN_MASK) as u32) != cookie >> ATTR_BITS {
        return None;
    }
    if let Some(ecr) = tsecr
        && ecr as u8 != (m >> 23) as u8
    {
        return None;
    }
    Some(unpack_attrs(cookie))
}

/// A key issued in `key_epoch` checks cookies while the current epoch is that one or the next:
/// 1-2 rotation periods of validity. Epoch 0 marks an empty slot.
#[inline(always)]
pub const fn epoch_valid(key_epoch: u64, current: u64) -> bool {
    key_epoch != 0 && (key_epoch == current || key_epoch.wrapping_add(1) == current)
}

/// The slot that holds the key of `epoch`.
#[inline(always)]
pub const fn slot_of_epoch(epoch: u64) -> u32 {
    (epoch & 1) as u32
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key(k0: u64, k1: u64, epoch: u64) -> Key {
        Key { k0, k1, epoch }
    }

    prop_compose! {
        fn flows()(v6: bool, s: [u32; 4], d: [u32; 4], sport: u16, dport: u16) -> Flow {
            if v6 {
                Flow { saddr: s, daddr: d, sport, dport, v6 }
            } else {
                Flow::v4(s[0], d[0], sport, dport)
            }
        }
    }

    prop_compose! {
        fn syn_attrs()(mss_idx in 0u8..4, ws in prop::option::of(0u8..=20), sack: bool, ecn: bool)
            -> SynAttrs {
            SynAttrs { mss_idx, wscale: wscale_field(ws), sack, ecn }
        }
    }

    proptest! {
        #[test]
        fn encode_then_check_returns_the_inputs(
            k0: u64, k1: u64, epoch in 1u64..1 << 40, slot in 0u32..2,
            flow in flows(), isn: u32, a in syn_attrs(), ts: bool, clock: u32,
        ) {
            let k = key(k0, k1, epoch);
            let c = encode(&k, slot, &flow, isn, &a, ts);
            let tsecr = ts.then(|| tsval(clock, &c));
            prop_assert_eq!(cookie_slot(c.isn), slot);
            prop_assert_eq!(check(&k, &flow, isn, c.isn, tsecr), Some(a));
        }

        #[test]
        fn any_input_bit_changes_the_mac(
            k0: u64, k1: u64, epoch in 1u64..1 << 40, flow in flows(), isn: u32,
            attrs in 0u32..512, ts: bool, field in 0usize..10, bit: u32,
        ) {
            let k = key(k0, k1, epoch);
            let base = mac(&k, &flow, isn, attrs, ts);
            let (mut k2, mut f2, mut isn2, mut attrs2, mut ts2) = (k, flow, isn, attrs, ts);
            // IPv4 hashes only address word 0 (the others are zero by construction).
            let words = if flow.v6 { 4 } else { 1 };
            let b = bit as usize;
            match field {
                0 => f2.saddr[b / 32 % words] ^= 1 << (b % 32),
                1 => f2.daddr[b / 32 % words] ^= 1 << (b % 32),
                2 => f2.sport ^= 1 << (b % 16),
                3 => f2.dport ^= 1 << (b % 16),
                4 => isn2 ^= 1 << (b % 32),
                5 => k2.epoch ^= 1 << (b % 40),
                6 => attrs2 ^= 1 << (b % 9),
                7 => ts2 = !ts2,
                8 => k2.k0 ^= 1 << (b % 64),
                _ => k2.k1 ^= 1 << (b % 64),
            }
            prop_assert_ne!(base, mac(&k2, &f2, isn2, attrs2, ts2));
        }

        #[test]
        fn a_wrong_cookie_or_timestamp_is_refused(
            k0: u64, k1: u64, flow in flows(), isn: u32, a in syn_attrs(), flip in 0u32..32,
        ) {
            let k = key(k0, k1, 7);
            let c = encode(&k, 1, &flow, isn, &a, true);
            let good_ts = tsval(123_456, &c);
            // Any flipped bit of the ISN (MAC or attributes) is caught...
            prop_assert_eq!(check(&k, &flow, isn, c.isn ^ (1 << flip), Some(good_ts)), None);
            // ...so is a flipped MAC bit in the echoed TSval, and the wrong key or epoch.
            prop_assert_eq!(check(&k, &flow, isn, c.isn, Some(good_ts ^ (1 << (flip % 8)))), None);
            prop_assert_eq!(check(&key(k0 ^ 1, k1, 7), &flow, isn, c.isn, Some(good_ts)), None);
            prop_assert_eq!(check(&key(k0, k1, 8), &flow, isn, c.isn, Some(good_ts)), None);
            // Stripping the timestamps changes the MAC input too.
            prop_assert_eq!(check(&k, &flow, isn, c.isn, None), None);
        }
    }

    #[test]
    fn mss_index_takes_the_largest_entry_not_above() {
        assert_eq!(mss_index(false, 1460), 3);
        assert_eq!(mss_index(false, 9000), 3);
        assert_eq!(mss_index(false, 1459), 2);
        assert_eq!(mss_index(false, 1300), 1);
        assert_eq!(mss_index(false, 100), 0);
        assert_eq!(mss_index(true, 8940), 3);
        assert_eq!(mss_index(true, 1440), 2);
        assert_eq!(mss_index(true, 1280), 0);
        assert_eq!(
            SynAttrs {
                mss_idx: 2,
                ..Default::default()
            }
            .mss(false),
            1440
        );
    }

    #[test]
    fn wscale_is_clamped_and_none_is_kept() {
        assert_eq!(wscale_field(None), WSCALE_NONE);
        assert_eq!(wscale_field(Some(7)), 7);
        assert_eq!(wscale_field(Some(15)), MAX_WSCALE);
    }

    #[test]
    fn epochs_are_valid_for_their_own_and_the_next() {
        assert!(epoch_valid(5, 5));
        assert!(epoch_valid(5, 6));
        assert!(!epoch_valid(5, 7));
        assert!(!epoch_valid(6, 5));
        assert!(!epoch_valid(0, 0));
        assert!(!epoch_valid(0, 1));
    }

    #[test]
    fn tsval_adds_the_offset_and_takes_the_mac_byte() {
        let c = Cookie {
            isn: 0,
            ts_bits: 0xab,
            ts_off: 0x1000_0100,
        };
        assert_eq!(tsval(0x1234_5678, &c), 0x2234_57ab);
    }

    /// Two connections from the same client differ in their TSval offsets: the clock is hidden.
    #[test]
    fn ts_offsets_differ_per_connection() {
        let k = key(1, 2, 3);
        let a = SynAttrs::default();
        let c1 = encode(&k, 1, &Flow::v4(1, 2, 1000, 80), 5, &a, true);
        let c2 = encode(&k, 1, &Flow::v4(1, 2, 1001, 80), 5, &a, true);
        assert_ne!(c1.ts_off, c2.ts_off);
    }
}
