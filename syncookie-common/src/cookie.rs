//! The SYN cookie: a keyed MAC of the connection, carried in our ISN (and, with timestamps, in
//! our TSval), that lets the ACK prove a SYN-ACK was sent without any state kept.
//!
//! Layout of the 32-bit ISN we send (`ack - 1` in the client's ACK):
//!
//! ```text
//! without timestamps:
//!  31                        9 8     6   5     4    3      0
//! +---------------------------+-------+-----+------+--------+
//! | MAC bits 0..22 (23 bits)  |  mss  | ECN | SACK | wscale |   wscale 0xf = client sent none
//! +---------------------------+-------+-----+------+--------+   mss: index into MSS_TABLE_V4/V6
//! with timestamps:
//!  31                              6   5     4    3      0
//! +---------------------------------+-----+------+--------+
//! | MAC bits 0..25 (26 bits)        | ECN | SACK | wscale |
//! +---------------------------------+-----+------+--------+
//! and our TSval:
//!  31                     16 15        8 7              0
//! +-------------------------+-----------+----------------+
//! | client's MSS ^ MAC 34..49| clock     | MAC bits 26..33 |
//! +-------------------------+-----------+----------------+
//! ```
//!
//! The MAC is SipHash-2-4, keyed by the key of the current or the previous epoch (the ACK's
//! check tries both: no bit names the key), over the addresses, ports, the client's ISN, the
//! key's epoch, the attribute bits and whether timestamps were used. Options ride in the ISN,
//! not in the TSval as the kernel's cookies do, so clients without timestamps keep window
//! scaling and SACK.
//!
//! The MSS: with timestamps the socket gets the client's MSS exactly, as on the kernel's normal
//! path (16 bits in the TSval, masked by keyed bits so the TSval looks like any other). The MSS
//! is outside the MAC: it is the client's own choice, so a client that alters it in its echo
//! gains nothing it could not ask for in its SYN, and a blind forger still has 34 MAC bits to
//! guess. Without timestamps it is the largest entry of an 8-entry table not above the
//! client's (a superset of the kernel's 4-entry tables, so never less than its cookies give,
//! and never more than the client accepts); a client whose MSS is below the smallest entry
//! gets no cookie: the kernel answers it (exactly, or with its own cookie under a flood).
//!
//! Forgery odds for a blind attacker: 2^-23 per ACK and key without timestamps, 2^-34 with
//! them; the check tries two keys (the current and the previous epoch's), so 2^-22 and 2^-33
//! (the kernel's own cookies: about 2^-29). The bit that once named the key now keeps the MSS.

use crate::{maps::Key, siphash::siphash24_words};

/// MSS values a cookie without timestamps can name: the kernel's cookie tables (`msstab` in
/// net/ipv4/syncookies.c and net/ipv6/syncookies.c) with the common tunnel, PPPoE and jumbo
/// sizes in between.
pub const MSS_TABLE_V4: [u16; 8] = [536, 1300, 1360, 1400, 1440, 1452, 1460, 8960];
pub const MSS_TABLE_V6: [u16; 8] = [1220, 1280, 1360, 1380, 1420, 1432, 1440, 8940];
/// Window-scale field value meaning "the client sent no window-scale option".
pub const WSCALE_NONE: u8 = 0xf;
/// RFC 7323: shift counts above 14 are treated as 14.
pub const MAX_WSCALE: u8 = 14;

/// ECN, SACK and window scale: the low 6 bits of every cookie.
const OPT_BITS: u32 = 6;
const OPT_MASK: u32 = (1 << OPT_BITS) - 1;
/// Without timestamps: the options and the 3-bit MSS index.
const ATTR_BITS: u32 = OPT_BITS + 3;
const ATTR_MASK: u32 = (1 << ATTR_BITS) - 1;
const MAC_ISN_BITS: u32 = 32 - ATTR_BITS;
const MAC_ISN_BITS_TS: u32 = 32 - OPT_BITS;

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
    /// The MSS the socket gets: the client's (or the family's default when it sent none);
    /// without timestamps, rounded down to [`MSS_TABLE_V4`]/[`MSS_TABLE_V6`].
    pub mss: u16,
    /// The client's window-scale shift, or [`WSCALE_NONE`].
    pub wscale: u8,
    pub sack: bool,
    pub ecn: bool,
}

#[inline(always)]
const fn mss_table(v6: bool) -> &'static [u16; 8] {
    if v6 { &MSS_TABLE_V6 } else { &MSS_TABLE_V4 }
}

/// The index of the largest table entry not above `mss`; `None` below the smallest.
#[inline(always)]
pub const fn mss_index(v6: bool, mss: u16) -> Option<u8> {
    let t = mss_table(v6);
    let mut i = 8;
    while i > 0 {
        i -= 1;
        if mss >= t[i] {
            return Some(i as u8);
        }
    }
    None
}

/// The MSS a cookie without timestamps gives for a client's `mss`; `None`: no cookie can (the
/// kernel must answer).
#[inline(always)]
pub const fn mss_rounded(v6: bool, mss: u16) -> Option<u16> {
    match mss_index(v6, mss) {
        Some(i) => Some(mss_table(v6)[i as usize]),
        None => None,
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

/// The low 6 bits of every cookie: the SYN's options (the kernel's timestamp cookie's layout
/// too: `cookie_init_timestamp()`).
#[inline(always)]
pub const fn pack_opts(a: &SynAttrs) -> u32 {
    ((a.ecn as u32) << 5) | ((a.sack as u32) << 4) | (a.wscale & 0xf) as u32
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

/// What a SYN-ACK carries: the ISN and, with timestamps, the TSval less its clock byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cookie {
    pub isn: u32,
    /// The TSval's MSS half and MAC byte (zero without timestamps).
    pub ts_word: u32,
    /// Added to the clock byte of our TSval (keyed, per connection).
    pub ts_off: u8,
}

/// The cookie for a SYN, or `None` when the MSS cannot be kept (no timestamps and an MSS below
/// the table's smallest entry). `ts` says whether the SYN-ACK will carry timestamps; `a.mss`
/// is the client's MSS.
#[inline(always)]
pub fn encode(key: &Key, flow: &Flow, client_isn: u32, a: &SynAttrs, ts: bool) -> Option<Cookie> {
    let opts = pack_opts(a);
    if ts {
        let m = mac(key, flow, client_isn, opts, true);
        let pad = (m >> 34) as u16;
        return Some(Cookie {
            isn: (((m as u32) & ((1 << MAC_ISN_BITS_TS) - 1)) << OPT_BITS) | opts,
            ts_word: (((a.mss ^ pad) as u32) << 16) | ((m >> 26) as u8) as u32,
            ts_off: (m >> 50) as u8,
        });
    }
    let attrs = ((mss_index(flow.v6, a.mss)? as u32) << OPT_BITS) | opts;
    let m = mac(key, flow, client_isn, attrs, false);
    Some(Cookie {
        isn: (((m as u32) & ((1 << MAC_ISN_BITS) - 1)) << ATTR_BITS) | attrs,
        ts_word: 0,
        ts_off: 0,
    })
}

/// The clock in our TSval: CLOCK_MONOTONIC_COARSE (`bpf_ktime_get_coarse_ns`, no clock read) in
/// units of 2^20 ns (1.05 ms), a shift rather than a division. After the handoff the kernel
/// continues from the value we sent, at its own rate.
#[inline(always)]
pub const fn ts_clock(coarse_ns: u64) -> u32 {
    (coarse_ns >> 20) as u32
}

/// Our TSval: the cookie's word with the connection's clock byte.
#[inline(always)]
pub const fn tsval(now: u32, c: &Cookie) -> u32 {
    c.ts_word | ((now.wrapping_add(c.ts_off as u32) & 0xff) << 8)
}

/// Checks the cookie in an ACK against `key`.
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
    let unpack = |mss| SynAttrs {
        mss,
        ecn: (cookie >> 5) & 1 == 1,
        sack: (cookie >> 4) & 1 == 1,
        wscale: (cookie & 0xf) as u8,
    };
    if let Some(ecr) = tsecr {
        let m = mac(key, flow, client_isn, cookie & OPT_MASK, true);
        if (m as u32) & ((1 << MAC_ISN_BITS_TS) - 1) != cookie >> OPT_BITS
            || ecr as u8 != (m >> 26) as u8
        {
            return None;
        }
        let mss = (ecr >> 16) as u16 ^ (m >> 34) as u16;
        return (mss != 0).then(|| unpack(mss));
    }
    let attrs = cookie & ATTR_MASK;
    let m = mac(key, flow, client_isn, attrs, false);
    if (m as u32) & ((1 << MAC_ISN_BITS) - 1) != cookie >> ATTR_BITS {
        return None;
    }
    Some(unpack(mss_table(flow.v6)[(attrs >> OPT_BITS) as usize & 7]))
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
mod tests;
