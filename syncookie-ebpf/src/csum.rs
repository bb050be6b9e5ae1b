//! Internet checksum (RFC 1071) pieces: sums of 16-bit words folded at the end.

use crate::parse::{opaque, read};

#[inline(always)]
pub fn fold(mut s: u64) -> u16 {
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// The sum of a 32-bit value's two 16-bit words.
#[inline(always)]
pub const fn w32(v: u32) -> u64 {
    (v >> 16) as u64 + (v & 0xffff) as u64
}

/// Longest TCP segment whose checksum we verify; longer SYNs (jumbo TFO) go to the kernel.
pub const MAX_CSUM_LEN: usize = 1500;

/// Sum of `len` bytes of the frame from `off`, as big-endian 16-bit words; `None` if the range
/// leaves the frame or is too long.
#[inline(always)]
pub fn sum_frame(data: usize, end: usize, off: usize, len: usize) -> Option<u64> {
    if len > MAX_CSUM_LEN {
        return None;
    }
    let mut s = 0u64;
    let mut i = 0usize;
    // 8 bytes a turn: half the iterations for the verifier to walk.
    for _ in 0..MAX_CSUM_LEN / 8 {
        if i + 8 > len {
            break;
        }
        let b = read::<8>(data, end, opaque(off + i))?;
        s += w32(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            + w32(u32::from_be_bytes([b[4], b[5], b[6], b[7]]));
        i += 8;
    }
    // LLVM may compute the loop's end from `len` in closed form, with only `len`'s 16-bit
    // bound: keep `i` below the longest sum for the reads that follow.
    let mut i = opaque(i) & 0x7ff;
    if i + 4 <= len {
        s += w32(u32::from_be_bytes(read::<4>(data, end, off + i)?));
        i += 4;
    }
    if i + 2 <= len {
        s += u16::from_be_bytes(read::<2>(data, end, off + i)?) as u64;
        i += 2;
    }
    if i < len {
        // The odd last byte, read with the one before it (2-byte reads only: see parse::options;
        // `off` is past the IP header, so `off + i - 1` is in the frame).
        let [_, b] = read::<2>(data, end, off + i - 1)?;
        s += (b as u64) << 8;
    }
    Some(s)
}

/// The IPv4 pseudo-header's sum for a TCP segment of `len` bytes.
#[inline(always)]
pub const fn pseudo_v4(saddr: u32, daddr: u32, len: usize) -> u64 {
    w32(saddr) + w32(daddr) + 6 + len as u64
}

/// The sum of an address's words (IPv4: `[a, 0, 0, 0]`).
#[inline(always)]
pub const fn addr(a: &[u32; 4]) -> u64 {
    w32(a[0]) + w32(a[1]) + w32(a[2]) + w32(a[3])
}

/// The pseudo-header's sum for a TCP segment of `len` bytes between `saddr` and `daddr`, for
/// either family: IPv4's (RFC 9293) and IPv6's (RFC 8200 8.1: 32-bit length, next header) add
/// up the same, and an IPv4 address's zero words add nothing. Symmetric in the addresses, so a
/// reply's is computed from the request's.
#[inline(always)]
pub const fn pseudo(saddr: &[u32; 4], daddr: &[u32; 4], len: usize) -> u64 {
    addr(saddr) + addr(daddr) + 6 + len as u64
}
