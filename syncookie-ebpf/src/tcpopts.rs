//! The SYN-ACK's TCP options, as the kernel writes them (tcp_options_write()).

use crate::{csum::w32, synack::write_word};

/// The SYN-ACK's options as 32-bit words, in the kernel's order (tcp_options_write()): MSS,
/// [SACK-perm|NOP NOP] TS, or NOP NOP SACK-perm, then NOP WS. Absent words are zero and add
/// nothing to the checksum; scalars, not an array: the verifier tracks each as a constant.
#[derive(Clone, Copy)]
pub struct OptionWords {
    w: [u32; 5],
    /// How many are written.
    pub words: usize,
}

impl OptionWords {
    /// `wscale`: our shift, when the client offered one; `stamps`: (TSval, TSecr) when the
    /// client offered timestamps and we answer with them.
    #[inline(always)]
    pub fn new(mss: u16, sack: bool, wscale: Option<u8>, stamps: Option<(u32, u32)>) -> Self {
        let opt0 = 0x0204_0000 | mss as u32;
        let (mut opt1, mut opt2, mut opt3, mut opt4) = (0u32, 0u32, 0u32, 0u32);
        let mut words = 1usize;
        if let Some((tsval, tsecr)) = stamps {
            opt1 = if sack { 0x0402_080a } else { 0x0101_080a };
            opt2 = tsval;
            opt3 = tsecr;
            words = 4;
        } else if sack {
            opt1 = 0x0101_0402;
            words = 2;
        }
        if let Some(ws) = wscale {
            let w = 0x0103_0300 | ws as u32;
            if words == 4 {
                opt4 = w;
            } else if words == 2 {
                opt2 = w;
            } else {
                opt1 = w;
            }
            words += 1;
        }
        Self {
            w: [opt0, opt1, opt2, opt3, opt4],
            words,
        }
    }

    /// The words' checksum contribution.
    #[inline(always)]
    pub fn sum(&self) -> u64 {
        let [a, b, c, d, e] = self.w;
        w32(a) + w32(b) + w32(c) + w32(d) + w32(e)
    }

    /// Writes the words at `off` (the end of the fixed TCP header).
    #[inline(always)]
    pub fn write(&self, data: usize, end: usize, off: usize) -> Option<()> {
        let [a, b, c, d, e] = self.w;
        write_word(data, end, off, a)?;
        if self.words > 1 {
            write_word(data, end, off + 4, b)?;
        }
        if self.words > 2 {
            write_word(data, end, off + 8, c)?;
        }
        if self.words > 3 {
            write_word(data, end, off + 12, d)?;
        }
        if self.words > 4 {
            write_word(data, end, off + 16, e)?;
        }
        Some(())
    }
}
