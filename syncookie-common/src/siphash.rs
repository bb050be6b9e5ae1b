//! SipHash-2-4 (Aumasson & Bernstein), written for the eBPF target: no slices, no panics, only
//! fixed-size word arrays, so the verifier sees straight-line code after unrolling.

#[derive(Clone, Copy)]
struct State {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
}

impl State {
    #[inline(always)]
    const fn new(k0: u64, k1: u64) -> Self {
        Self {
            v0: k0 ^ 0x736f_6d65_7073_6575,
            v1: k1 ^ 0x646f_7261_6e64_6f6d,
            v2: k0 ^ 0x6c79_6765_6e65_7261,
            v3: k1 ^ 0x7465_6462_7974_6573,
        }
    }

    #[inline(always)]
    fn round(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13);
        self.v1 ^= self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16);
        self.v3 ^= self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21);
        self.v3 ^= self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17);
        self.v1 ^= self.v2;
        self.v2 = self.v2.rotate_left(32);
    }

    /// Two compression rounds on one 64-bit little-endian message word.
    #[inline(always)]
    fn compress(&mut self, m: u64) {
        self.v3 ^= m;
        self.round();
        self.round();
        self.v0 ^= m;
    }

    /// The last block (length byte on top), then four finalization rounds.
    #[inline(always)]
    fn finish(mut self, last: u64) -> u64 {
        self.compress(last);
        self.v2 ^= 0xff;
        self.round();
        self.round();
        self.round();
        self.round();
        self.v0 ^ self.v1 ^ self.v2 ^ self.v3
    }
}

/// SipHash-2-4 of the message made of `words` written as little-endian bytes (8·N bytes), which
/// is the standard SipHash of that byte string. This is the form the eBPF program uses.
#[inline(always)]
pub fn siphash24_words<const N: usize>(k0: u64, k1: u64, words: &[u64; N]) -> u64 {
    let mut s = State::new(k0, k1);
    let mut i = 0;
    while i < N {
        s.compress(words[i]);
        i += 1;
    }
    s.finish(((8 * N) as u64 & 0xff) << 56)
}

/// SipHash-2-4 of an arbitrary byte string (host side: tests and tools).
pub fn siphash24_bytes(k0: u64, k1: u64, msg: &[u8]) -> u64 {
    let mut s = State::new(k0, k1);
    let mut chunks = msg.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        s.compress(u64::from_le_bytes(w));
    }
    let mut last = ((msg.len() as u64) & 0xff) << 56;
    for (i, b) in chunks.remainder().iter().enumerate() {
        last |= (*b as u64) << (8 * i);
    }
    s.finish(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K0: u64 = 0x0706_0504_0302_0100;
    const K1: u64 = 0x0f0e_0d0c_0b0a_0908;

    /// The first 16 entries of `vectors_sip64` published with the SipHash reference code:
    /// key 00..0f, message i = bytes 00..i-1, output as little-endian bytes.
    const VECTORS: [[u8; 8]; 16] = [
        [0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72],
        [0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74],
        [0x5a, 0x4f, 0xa9, 0xd9, 0x09, 0x80, 0x6c, 0x0d],
        [0x2d, 0x7e, 0xfb, 0xd7, 0x96, 0x66, 0x67, 0x85],
        [0xb7, 0x87, 0x71, 0x27, 0xe0, 0x94, 0x27, 0xcf],
        [0x8d, 0xa6, 0x99, 0xcd, 0x64, 0x55, 0x76, 0x18],
        [0xce, 0xe3, 0xfe, 0x58, 0x6e, 0x46, 0xc9, 0xcb],
        [0x37, 0xd1, 0x01, 0x8b, 0xf5, 0x00, 0x02, 0xab],
        [0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93],
        [0xb0, 0xe4, 0xa9, 0x0b, 0xdf, 0x82, 0x00, 0x9e],
        [0xf3, 0xb9, 0xdd, 0x94, 0xc5, 0xbb, 0x5d, 0x7a],
        [0xa7, 0xad, 0x6b, 0x22, 0x46, 0x2f, 0xb3, 0xf4],
        [0xfb, 0xe5, 0x0e, 0x86, 0xbc, 0x8f, 0x1e, 0x75],
        [0x90, 0x3d, 0x84, 0xc0, 0x27, 0x56, 0xea, 0x14],
        [0xee, 0xf2, 0x7a, 0x8e, 0x90, 0xca, 0x23, 0xf7],
        [0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1],
    ];

    fn message(len: usize) -> ([u8; 64], usize) {
        let mut m = [0u8; 64];
        for (i, b) in m.iter_mut().enumerate() {
            *b = i as u8;
        }
        (m, len)
    }

    #[test]
    fn bytes_match_reference_vectors() {
        for (len, want) in VECTORS.iter().enumerate() {
            let (m, n) = message(len);
            assert_eq!(
                siphash24_bytes(K0, K1, &m[..n]).to_le_bytes(),
                *want,
                "len {len}"
            );
        }
    }

    #[test]
    fn words_match_reference_vectors() {
        // Lengths 0 and 8 are the word-aligned vectors in the published table.
        assert_eq!(siphash24_words::<0>(K0, K1, &[]).to_le_bytes(), VECTORS[0]);
        let w = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(siphash24_words(K0, K1, &[w]).to_le_bytes(), VECTORS[8]);
    }

    proptest::proptest! {
        #[test]
        fn words_match_independent_implementation(k0: u64, k1: u64, w: [u64; 6]) {
            use core::hash::Hasher;
            let mut bytes = [0u8; 48];
            for (i, x) in w.iter().enumerate() {
                bytes[8 * i..8 * i + 8].copy_from_slice(&x.to_le_bytes());
            }
            let mut h = siphasher::sip::SipHasher24::new_with_keys(k0, k1);
            h.write(&bytes);
            proptest::prop_assert_eq!(siphash24_words(k0, k1, &w), h.finish());
        }

        #[test]
        fn bytes_match_independent_implementation(
            k0: u64,
            k1: u64,
            m in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        ) {
            use core::hash::Hasher;
            let mut h = siphasher::sip::SipHasher24::new_with_keys(k0, k1);
            h.write(&m);
            proptest::prop_assert_eq!(siphash24_bytes(k0, k1, &m), h.finish());
        }
    }
}
