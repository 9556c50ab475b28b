//! The ChaCha20 block function in plain 32-bit integer operations: the
//! reference the WGSL dropout kernel (`shaders/dropout.wgsl`) mirrors line
//! for line, checked against `rand_chacha` (which the CPU engine draws from).
//!
//! State layout (spec: [`crate::spec::CHACHA_ROUNDS`]): 4 constant words,
//! 8 key words (little-endian), block counter lo/hi, stream id lo/hi.

const CONSTANTS: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// The 8 key words of a 32-byte key.
pub fn key_words(key: &[u8; 32]) -> [u32; 8] {
    let mut k = [0u32; 8];
    for (i, w) in k.iter_mut().enumerate() {
        *w = u32::from_le_bytes([key[4 * i], key[4 * i + 1], key[4 * i + 2], key[4 * i + 3]]);
    }
    k
}

#[inline(always)]
fn quarter(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(16);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(12);
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(8);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(7);
}

/// The 16 output words of block `block` of stream `stream`.
pub fn block(key: &[u32; 8], block: u64, stream: u64) -> [u32; 16] {
    let mut init = [0u32; 16];
    init[..4].copy_from_slice(&CONSTANTS);
    init[4..12].copy_from_slice(key);
    init[12] = block as u32;
    init[13] = (block >> 32) as u32;
    init[14] = stream as u32;
    init[15] = (stream >> 32) as u32;
    let mut s = init;
    for _ in 0..crate::spec::CHACHA_ROUNDS / 2 {
        quarter(&mut s, 0, 4, 8, 12);
        quarter(&mut s, 1, 5, 9, 13);
        quarter(&mut s, 2, 6, 10, 14);
        quarter(&mut s, 3, 7, 11, 15);
        quarter(&mut s, 0, 5, 10, 15);
        quarter(&mut s, 1, 6, 11, 12);
        quarter(&mut s, 2, 7, 8, 13);
        quarter(&mut s, 3, 4, 9, 14);
    }
    for (o, i) in s.iter_mut().zip(init) {
        *o = o.wrapping_add(i);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream_key, Stream, StreamRng};

    #[test]
    fn matches_rand_chacha_at_any_address() {
        for (seed, id, start) in [(1u64, 0u64, 0u64), (7, 3, 100), (42, (2 << 40) | 17, 4096 + 5), (9, u64::MAX, 31)] {
            let key = key_words(&stream_key(Stream::Dropout, seed));
            let mut rng = StreamRng::new(Stream::Dropout, seed);
            let mut want = [0u32; 40];
            rng.fill_words(id, start, &mut want);
            for (i, w) in want.iter().enumerate() {
                let pos = start + i as u64;
                let got = block(&key, pos / 16, id)[(pos % 16) as usize];
                assert_eq!(got, *w, "seed {seed} stream {id} word {pos}");
            }
        }
    }

    #[test]
    fn rfc7539_style_test_vector() {
        // ChaCha20 with an all-zero key, counter 0, nonce 0: the first output
        // words of the well-known keystream 76 b8 e0 ad a0 f1 3d 90 ...
        let out = block(&[0; 8], 0, 0);
        assert_eq!(out[0], 0xade0_b876);
        assert_eq!(out[1], 0x903d_f1a0);
    }
}
