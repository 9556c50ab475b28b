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

// Four lanes of one state word, lane `i` belonging to block `b + i`
// ([`crate::lanes`]: wasm SIMD128 or SSE2 vectors, plain arrays elsewhere).
use crate::lanes::{self, Lanes};

#[inline(always)]
fn quarter4(s: &mut [Lanes; 16], a: usize, b: usize, c: usize, d: usize) {
    s[a] = lanes::add(s[a], s[b]);
    s[d] = lanes::rotl(lanes::xor(s[d], s[a]), 16);
    s[c] = lanes::add(s[c], s[d]);
    s[b] = lanes::rotl(lanes::xor(s[b], s[c]), 12);
    s[a] = lanes::add(s[a], s[b]);
    s[d] = lanes::rotl(lanes::xor(s[d], s[a]), 8);
    s[c] = lanes::add(s[c], s[d]);
    s[b] = lanes::rotl(lanes::xor(s[b], s[c]), 7);
}

/// Blocks `first .. first + 4` of stream `stream`, written one after the
/// other into `out` (64 words): the words of [`block`] for each, computed
/// side by side, word by word, so that the compiler runs the four blocks in
/// the lanes of one vector (wasm SIMD128, SSE2). Integer operations only:
/// the lanes cannot change a word.
fn blocks4(key: &[u32; 8], first: u64, stream: u64, out: &mut [u32]) {
    let counter: [u64; 4] = std::array::from_fn(|i| first.wrapping_add(i as u64));
    let mut init = [lanes::splat(0); 16];
    for (w, c) in CONSTANTS.iter().enumerate() {
        init[w] = lanes::splat(*c);
    }
    for (w, k) in key.iter().enumerate() {
        init[4 + w] = lanes::splat(*k);
    }
    init[12] = lanes::from_array(counter.map(|c| c as u32));
    init[13] = lanes::from_array(counter.map(|c| (c >> 32) as u32));
    init[14] = lanes::splat(stream as u32);
    init[15] = lanes::splat((stream >> 32) as u32);
    let mut s = init;
    for _ in 0..crate::spec::CHACHA_ROUNDS / 2 {
        quarter4(&mut s, 0, 4, 8, 12);
        quarter4(&mut s, 1, 5, 9, 13);
        quarter4(&mut s, 2, 6, 10, 14);
        quarter4(&mut s, 3, 7, 11, 15);
        quarter4(&mut s, 0, 5, 10, 15);
        quarter4(&mut s, 1, 6, 11, 12);
        quarter4(&mut s, 2, 7, 8, 13);
        quarter4(&mut s, 3, 4, 9, 14);
    }
    for w in 0..16 {
        let v = lanes::to_array(lanes::add(s[w], init[w]));
        for (lane, x) in v.iter().enumerate() {
            out[lane * 16 + w] = *x;
        }
    }
}

/// Words `start .. start + out.len()` of stream `stream` (word `p` is word
/// `p % 16` of block `p / 16`): the same words as [`block`] gives, whole
/// aligned runs of four blocks at a time through [`blocks4`].
pub fn fill(key: &[u32; 8], stream: u64, start: u64, out: &mut [u32]) {
    let mut pos = start;
    let mut i = 0;
    while i < out.len() {
        let (blk, off) = (pos / 16, (pos % 16) as usize);
        if off == 0 && out.len() - i >= 64 {
            blocks4(key, blk, stream, &mut out[i..i + 64]);
            i += 64;
            pos = pos.wrapping_add(64);
        } else {
            let b = block(key, blk, stream);
            let n = (16 - off).min(out.len() - i);
            out[i..i + n].copy_from_slice(&b[off..off + n]);
            i += n;
            pos = pos.wrapping_add(n as u64);
        }
    }
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
            rng.fill_words_reference(id, start, &mut want);
            for (i, w) in want.iter().enumerate() {
                let pos = start + i as u64;
                let got = block(&key, pos / 16, id)[(pos % 16) as usize];
                assert_eq!(got, *w, "seed {seed} stream {id} word {pos}");
            }
        }
    }

    #[test]
    fn fill_gives_rand_chacha_words_at_any_address_and_length() {
        let key_bytes = stream_key(Stream::Dropout, 5);
        let key = key_words(&key_bytes);
        let mut rng = StreamRng::new(Stream::Dropout, 5);
        // Aligned and not, shorter and longer than four blocks, across a
        // 2^32-block boundary of the counter.
        let cases = [(0u64, 0u64, 8192usize), (3, 5, 200), (1 << 41, 64, 63), (9, 17, 64), (2, (1u64 << 36) - 40, 300)];
        for (id, start, len) in cases {
            let mut want = vec![0u32; len];
            rng.fill_words_reference(id, start, &mut want);
            let mut got = vec![0u32; len];
            fill(&key, id, start, &mut got);
            if let Some(i) = (0..len).find(|&i| got[i] != want[i]) {
                panic!(
                    "stream {id} from word {start}: word {} differs: {:#x} against {:#x}",
                    start + i as u64,
                    got[i],
                    want[i]
                );
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
