//! The SYN's TCP options: the ones the SYN-ACK echoes, the ones only the kernel handles, and
//! whether the bounded walk left any unread.

use syncookie_common::proto::*;

use super::{Tcp, be16, be32, opaque, read};

/// The TCP options we act on.
#[derive(Clone, Copy, Default)]
pub struct Options {
    /// 0 when absent.
    pub mss: u16,
    pub wscale: Option<u8>,
    pub sack_perm: bool,
    /// (TSval, TSecr)
    pub ts: Option<(u32, u32)>,
    /// TCP-MD5, TCP-AO or MPTCP: the kernel's business.
    pub kernel_only: bool,
    /// Where option bytes are left after [`MAX_OPTION_ITEMS`] items (an offset into the
    /// options, 0: none left): see [`past_the_walk`].
    pub unwalked_at: u8,
}

/// Option items we walk (a NOP pair counts as one). Real SYNs have at most 7 that way (macOS:
/// MSS, NOP, WS, NOP NOP, TS, SACK-perm, EOL); more leave the SYN to the kernel
/// ([`past_the_walk`]). The verifier walks every item count separately; 8 keeps it well
/// inside its budget, 10 does not fit.
const MAX_OPTION_ITEMS: usize = 8;

#[inline(always)]
pub fn options(data: usize, end: usize, t: &Tcp) -> Options {
    walk::<false>(data, end, t)
}

/// [`options`] with window scale and timestamps held as plain values, 0 until found: an
/// absent option's value is then 0, not undefined, so LLVM never reloads a stack slot that no
/// path wrote. Verifiers before 5.12 refuse that read ("invalid read from stack"), even where
/// the value is never used: 5.10 refused `syncookie_kc_synack` so. The plain walk stays where
/// only 6.x runs: this one cost full mode's XDP program 70k more instructions processed.
#[inline(always)]
pub fn options_defined(data: usize, end: usize, t: &Tcp) -> Options {
    walk::<true>(data, end, t)
}

#[inline(always)]
fn walk<const DEFINED: bool>(data: usize, end: usize, t: &Tcp) -> Options {
    let mut o = Options::default();
    let opt_len = t.hlen() - TCP_HLEN;
    let base = t.l4_off() + TCP_HLEN;
    let mut i = 0usize;
    // Whether the walk ended where the kernel's does (the end, EOL, a malformed option).
    let mut ended = false;
    let (mut wscale, mut ts) = (0u8, (0u32, 0u32));
    let (mut has_wscale, mut has_ts) = (false, false);
    for _ in 0..MAX_OPTION_ITEMS {
        if i >= opt_len || i >= TCP_MAX_OPTLEN {
            ended = true;
            break;
        }
        let at = opaque(base + i);
        // Two bytes even for a NOP: the verifier gives no range to a 1-byte read checked as
        // `p >= end`, which is what LLVM makes of `p + 1 > end`. A NOP or EOL as the frame's
        // very last byte ends nothing we need.
        let Some([kind, len]) = read::<2>(data, end, at) else {
            ended = true;
            break;
        };
        if kind == TCPOPT_EOL {
            ended = true;
            break;
        }
        if kind == TCPOPT_NOP {
            i += if len == TCPOPT_NOP { 2 } else { 1 };
            continue;
        }
        let len = len as usize;
        if len < 2 || i + len > opt_len {
            ended = true;
            break;
        }
        match (kind, len) {
            (TCPOPT_MSS, 4) => {
                // Linux ignores an MSS of 0 (tcp_parse_options()), so do we.
                if let Some(v) = be16(data, end, at + 2)
                    && v != 0
                {
                    o.mss = v;
                }
            }
            (TCPOPT_WSCALE, 3) => {
                if let Some([_, _, s]) = read::<3>(data, end, at) {
                    if DEFINED {
                        (wscale, has_wscale) = (s, true);
                    } else {
                        o.wscale = Some(s);
                    }
                }
            }
            (TCPOPT_SACK_PERM, 2) => o.sack_perm = true,
            (TCPOPT_TIMESTAMP, 10) => {
                if let (Some(val), Some(ecr)) = (be32(data, end, at + 2), be32(data, end, at + 6)) {
                    if DEFINED {
                        (ts, has_ts) = ((val, ecr), true);
                    } else {
                        o.ts = Some((val, ecr));
                    }
                }
            }
            (TCPOPT_MD5SIG | TCPOPT_AO | TCPOPT_MPTCP, _) => o.kernel_only = true,
            _ => {}
        }
        i += len;
    }
    if !ended && i < opt_len {
        o.unwalked_at = i as u8;
    }
    if DEFINED {
        o.wscale = has_wscale.then_some(wscale);
        o.ts = has_ts.then_some(ts);
    }
    o
}

/// Whether an option may lie past the items [`options`] walked: the kernel reads all 40 bytes,
/// and an option there (SACK-perm, MD5) would be missed, so such a SYN is the kernel's. Bytes
/// left that start with an EOL end the kernel's walk too. Called on options already passed
/// through a scratch map, so that the verifier checks this read once, not once per way out of
/// the walk.
#[inline(always)]
pub fn past_the_walk(data: usize, end: usize, t: &Tcp, o: &Options) -> bool {
    let at = opaque(o.unwalked_at as usize) & 0x3f;
    if at == 0 {
        return false;
    }
    // With the byte before it (a 2-byte read, as in the walk), so that an EOL as the frame's
    // last byte is read as well.
    !matches!(
        read::<2>(data, end, t.l4_off() + TCP_HLEN + at - 1),
        Some([_, TCPOPT_EOL])
    )
}
