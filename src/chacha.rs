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

/// Four lanes of one state word, lane `i` belonging to block `b + i`:
/// wasm SIMD128 or SSE2 (x86_64's baseline) vectors, plain arrays
/// elsewhere. Wrapping 32-bit adds, xors and rotations only, lane by lane.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lanes {
    use core::arch::wasm32::{
        i32x4_add, i32x4_shl, i8x16_shuffle, u32x4, u32x4_extract_lane, u32x4_shr, u32x4_splat, v128, v128_or, v128_xor,
    };

    #[derive(Clone, Copy)]
    pub struct Lanes(v128);

    #[inline(always)]
    pub fn splat(x: u32) -> Lanes {
        Lanes(u32x4_splat(x))
    }
    #[inline(always)]
    pub fn from_array(a: [u32; 4]) -> Lanes {
        Lanes(u32x4(a[0], a[1], a[2], a[3]))
    }
    #[inline(always)]
    pub fn to_array(a: Lanes) -> [u32; 4] {
        [
            u32x4_extract_lane::<0>(a.0),
            u32x4_extract_lane::<1>(a.0),
            u32x4_extract_lane::<2>(a.0),
            u32x4_extract_lane::<3>(a.0),
        ]
    }
    #[inline(always)]
    pub fn add(a: Lanes, b: Lanes) -> Lanes {
        Lanes(i32x4_add(a.0, b.0))
    }
    /// `(a ^ b).rotate_left(r)` in every lane.
    #[inline(always)]
    pub fn xor_rotl(a: Lanes, b: Lanes, r: u32) -> Lanes {
        let x = v128_xor(a.0, b.0);
        // Rotations by whole bytes are byte shuffles within each lane
        // (little-endian: byte i of the result is byte (i - r/8) mod 4).
        match r {
            16 => Lanes(i8x16_shuffle::<2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13>(x, x)),
            8 => Lanes(i8x16_shuffle::<3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14>(x, x)),
            _ => Lanes(v128_or(i32x4_shl(x, r), u32x4_shr(x, 32 - r))),
        }
    }
}

// SSE2 is in the x86_64 baseline: no run-time detection. Older compilers
// mark these intrinsics `unsafe fn`, newer ones safe: hence `unused_unsafe`.
#[cfg(target_arch = "x86_64")]
#[allow(unused_unsafe)]
mod lanes {
    use core::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_cvtsi32_si128, _mm_loadu_si128, _mm_or_si128, _mm_set1_epi32, _mm_sll_epi32,
        _mm_srl_epi32, _mm_storeu_si128, _mm_xor_si128,
    };

    #[derive(Clone, Copy)]
    pub struct Lanes(__m128i);

    #[inline(always)]
    pub fn splat(x: u32) -> Lanes {
        Lanes(unsafe { _mm_set1_epi32(x as i32) })
    }
    #[inline(always)]
    pub fn from_array(a: [u32; 4]) -> Lanes {
        // SAFETY: reads the 16 bytes of `a`.
        Lanes(unsafe { _mm_loadu_si128(a.as_ptr().cast()) })
    }
    #[inline(always)]
    pub fn to_array(a: Lanes) -> [u32; 4] {
        let mut out = [0u32; 4];
        // SAFETY: writes the 16 bytes of `out`.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), a.0) };
        out
    }
    #[inline(always)]
    pub fn add(a: Lanes, b: Lanes) -> Lanes {
        Lanes(unsafe { _mm_add_epi32(a.0, b.0) })
    }
    /// `(a ^ b).rotate_left(r)` in every lane.
    #[inline(always)]
    pub fn xor_rotl(a: Lanes, b: Lanes, r: u32) -> Lanes {
        unsafe {
            let x = _mm_xor_si128(a.0, b.0);
            let left = _mm_sll_epi32(x, _mm_cvtsi32_si128(r as i32));
            let right = _mm_srl_epi32(x, _mm_cvtsi32_si128(32 - r as i32));
            Lanes(_mm_or_si128(left, right))
        }
    }
}

#[cfg(not(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64")))]
mod lanes {
    #[derive(Clone, Copy)]
    pub struct Lanes([u32; 4]);

    #[inline(always)]
    pub fn splat(x: u32) -> Lanes {
        Lanes([x; 4])
    }
    #[inline(always)]
    pub fn from_array(a: [u32; 4]) -> Lanes {
        Lanes(a)
    }
    #[inline(always)]
    pub fn to_array(a: Lanes) -> [u32; 4] {
        a.0
    }
    #[inline(always)]
    pub fn add(a: Lanes, b: Lanes) -> Lanes {
        Lanes(std::array::from_fn(|i| a.0[i].wrapping_add(b.0[i])))
    }
    /// `(a ^ b).rotate_left(r)` in every lane.
    #[inline(always)]
    pub fn xor_rotl(a: Lanes, b: Lanes, r: u32) -> Lanes {
        Lanes(std::array::from_fn(|i| (a.0[i] ^ b.0[i]).rotate_left(r)))
    }
}

use lanes::Lanes;

#[inline(always)]
fn quarter4(s: &mut [Lanes; 16], a: usize, b: usize, c: usize, d: usize) {
    s[a] = lanes::add(s[a], s[b]);
    s[d] = lanes::xor_rotl(s[d], s[a], 16);
    s[c] = lanes::add(s[c], s[d]);
    s[b] = lanes::xor_rotl(s[b], s[c], 12);
    s[a] = lanes::add(s[a], s[b]);
    s[d] = lanes::xor_rotl(s[d], s[a], 8);
    s[c] = lanes::add(s[c], s[d]);
    s[b] = lanes::xor_rotl(s[b], s[c], 7);
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
