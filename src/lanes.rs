//! Four u32 lanes side by side, for the integer code that runs four
//! independent computations word by word: the ChaCha20 blocks of the
//! dropout stream ([`crate::chacha`]) and the leaves of the weight hash
//! ([`crate::hash`]). wasm SIMD128 or SSE2 (x86_64's baseline: no run-time
//! detection) vectors, plain arrays elsewhere.
//!
//! Every operation is lane by lane and wrapping mod 2^32 (adds, multiplies,
//! xors, shifts, rotations), so a lane's words are those of the scalar
//! `u32` operations whatever the target: integer code has no rounding to
//! differ. `tests/kernels_simd.rs` checks each operation against the
//! scalar one, and the grouped ChaCha and hash against their one-at-a-time
//! references, natively and in both browsers.

/// `x * 5` as `(x << 2) + x`: on a serial chain (murmur3's `h = h * 5 + c`)
/// two one-cycle operations instead of a vector multiply (about ten cycles
/// on x86; SSE2 has no 32-bit multiply at all, see [`mul`]). Make one per
/// loop, outside it ([`Times5::new`]).
#[derive(Clone, Copy)]
pub struct Times5 {
    /// The shift count, 2, hidden from the optimiser: LLVM would fold the
    /// shift and add back into a multiply, which wasm runs as one.
    #[cfg_attr(not(all(target_arch = "wasm32", target_feature = "simd128")), allow(dead_code))]
    two: u32,
}

impl Times5 {
    #[inline(always)]
    pub fn new() -> Times5 {
        Times5 { two: std::hint::black_box(2) }
    }
}

impl Default for Times5 {
    fn default() -> Times5 {
        Times5::new()
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod imp {
    use core::arch::wasm32::{
        i32x4_add, i32x4_mul, i32x4_shl, i32x4_shuffle, i8x16_shuffle, u32x4, u32x4_extract_lane, u32x4_shr,
        u32x4_splat, v128, v128_load, v128_or, v128_xor,
    };

    use super::Times5;

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
    /// The bit patterns of `s[0..4]`, one vector load.
    #[inline(always)]
    pub fn load_bits(s: &[f32]) -> Lanes {
        let s = &s[..4];
        // SAFETY: `s` holds four f32 (16 bytes); v128_load reads 16 bytes
        // at any alignment.
        Lanes(unsafe { v128_load(s.as_ptr().cast()) })
    }
    /// Rows to columns: `out[q]` lane `i` is `rows[i]` lane `q`.
    #[inline(always)]
    pub fn transpose(r: [Lanes; 4]) -> [Lanes; 4] {
        let t0 = i32x4_shuffle::<0, 4, 1, 5>(r[0].0, r[1].0);
        let t1 = i32x4_shuffle::<0, 4, 1, 5>(r[2].0, r[3].0);
        let t2 = i32x4_shuffle::<2, 6, 3, 7>(r[0].0, r[1].0);
        let t3 = i32x4_shuffle::<2, 6, 3, 7>(r[2].0, r[3].0);
        [
            Lanes(i32x4_shuffle::<0, 1, 4, 5>(t0, t1)),
            Lanes(i32x4_shuffle::<2, 3, 6, 7>(t0, t1)),
            Lanes(i32x4_shuffle::<0, 1, 4, 5>(t2, t3)),
            Lanes(i32x4_shuffle::<2, 3, 6, 7>(t2, t3)),
        ]
    }
    #[inline(always)]
    pub fn add(a: Lanes, b: Lanes) -> Lanes {
        Lanes(i32x4_add(a.0, b.0))
    }
    #[inline(always)]
    pub fn mul(a: Lanes, b: Lanes) -> Lanes {
        Lanes(i32x4_mul(a.0, b.0))
    }
    #[inline(always)]
    pub fn xor(a: Lanes, b: Lanes) -> Lanes {
        Lanes(v128_xor(a.0, b.0))
    }
    /// `x.rotate_left(r)` in every lane. Rotations by whole bytes are byte
    /// shuffles within each lane (little-endian: byte i of the result is
    /// byte (i - r/8) mod 4).
    #[inline(always)]
    pub fn rotl(x: Lanes, r: u32) -> Lanes {
        match r {
            16 => Lanes(i8x16_shuffle::<2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13>(x.0, x.0)),
            8 => Lanes(i8x16_shuffle::<3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14>(x.0, x.0)),
            _ => Lanes(v128_or(i32x4_shl(x.0, r), u32x4_shr(x.0, 32 - r))),
        }
    }
    #[inline(always)]
    pub fn times5(x: Lanes, f: Times5) -> Lanes {
        Lanes(i32x4_add(i32x4_shl(x.0, f.two), x.0))
    }
}

// Older compilers mark these intrinsics `unsafe fn`, newer ones safe: hence
// `unused_unsafe`.
#[cfg(target_arch = "x86_64")]
#[allow(unused_unsafe)]
mod imp {
    use core::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_cvtsi32_si128, _mm_loadu_si128, _mm_mul_epu32, _mm_or_si128, _mm_set1_epi32,
        _mm_shuffle_epi32, _mm_sll_epi32, _mm_slli_epi32, _mm_srl_epi32, _mm_srli_epi64, _mm_storeu_si128,
        _mm_unpackhi_epi32, _mm_unpackhi_epi64, _mm_unpacklo_epi32, _mm_unpacklo_epi64, _mm_xor_si128,
    };

    use super::Times5;

    #[derive(Clone, Copy)]
    pub struct Lanes(__m128i);

    #[inline(always)]
    pub fn splat(x: u32) -> Lanes {
        Lanes(unsafe { _mm_set1_epi32(x as i32) })
    }
    #[inline(always)]
    pub fn from_array(a: [u32; 4]) -> Lanes {
        // SAFETY: `a` is 16 bytes; the load takes any alignment.
        Lanes(unsafe { _mm_loadu_si128(a.as_ptr().cast()) })
    }
    #[inline(always)]
    pub fn to_array(a: Lanes) -> [u32; 4] {
        let mut out = [0u32; 4];
        // SAFETY: `out` is 16 bytes; the store takes any alignment.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), a.0) };
        out
    }
    /// The bit patterns of `s[0..4]`, one vector load.
    #[inline(always)]
    pub fn load_bits(s: &[f32]) -> Lanes {
        let s = &s[..4];
        // SAFETY: `s` holds four f32 (16 bytes); the load takes any alignment.
        Lanes(unsafe { _mm_loadu_si128(s.as_ptr().cast()) })
    }
    /// Rows to columns: `out[q]` lane `i` is `rows[i]` lane `q`.
    #[inline(always)]
    pub fn transpose(r: [Lanes; 4]) -> [Lanes; 4] {
        unsafe {
            let t0 = _mm_unpacklo_epi32(r[0].0, r[1].0);
            let t1 = _mm_unpacklo_epi32(r[2].0, r[3].0);
            let t2 = _mm_unpackhi_epi32(r[0].0, r[1].0);
            let t3 = _mm_unpackhi_epi32(r[2].0, r[3].0);
            [
                Lanes(_mm_unpacklo_epi64(t0, t1)),
                Lanes(_mm_unpackhi_epi64(t0, t1)),
                Lanes(_mm_unpacklo_epi64(t2, t3)),
                Lanes(_mm_unpackhi_epi64(t2, t3)),
            ]
        }
    }
    #[inline(always)]
    pub fn add(a: Lanes, b: Lanes) -> Lanes {
        Lanes(unsafe { _mm_add_epi32(a.0, b.0) })
    }
    /// SSE2 has no 32-bit multiply (`pmulld` is SSE4.1): the low halves of
    /// two 32 x 32 -> 64-bit multiplies, lanes 0 and 2 then 1 and 3,
    /// interleaved back.
    #[inline(always)]
    pub fn mul(a: Lanes, b: Lanes) -> Lanes {
        unsafe {
            let even = _mm_mul_epu32(a.0, b.0);
            let odd = _mm_mul_epu32(_mm_srli_epi64(a.0, 32), _mm_srli_epi64(b.0, 32));
            // Lanes 0 and 2 (the low words of the two products) to 0 and 1.
            const LOW_WORDS: i32 = 0b00_00_10_00;
            Lanes(_mm_unpacklo_epi32(_mm_shuffle_epi32(even, LOW_WORDS), _mm_shuffle_epi32(odd, LOW_WORDS)))
        }
    }
    #[inline(always)]
    pub fn xor(a: Lanes, b: Lanes) -> Lanes {
        Lanes(unsafe { _mm_xor_si128(a.0, b.0) })
    }
    #[inline(always)]
    pub fn rotl(x: Lanes, r: u32) -> Lanes {
        unsafe {
            let left = _mm_sll_epi32(x.0, _mm_cvtsi32_si128(r as i32));
            let right = _mm_srl_epi32(x.0, _mm_cvtsi32_si128(32 - r as i32));
            Lanes(_mm_or_si128(left, right))
        }
    }
    #[inline(always)]
    pub fn times5(x: Lanes, _: Times5) -> Lanes {
        Lanes(unsafe { _mm_add_epi32(_mm_slli_epi32::<2>(x.0), x.0) })
    }
}

#[cfg(not(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64")))]
mod imp {
    use super::Times5;

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
    /// The bit patterns of `s[0..4]`.
    #[inline(always)]
    pub fn load_bits(s: &[f32]) -> Lanes {
        Lanes(std::array::from_fn(|i| s[i].to_bits()))
    }
    /// Rows to columns: `out[q]` lane `i` is `rows[i]` lane `q`.
    #[inline(always)]
    pub fn transpose(r: [Lanes; 4]) -> [Lanes; 4] {
        std::array::from_fn(|q| Lanes(std::array::from_fn(|i| r[i].0[q])))
    }
    #[inline(always)]
    pub fn add(a: Lanes, b: Lanes) -> Lanes {
        Lanes(std::array::from_fn(|i| a.0[i].wrapping_add(b.0[i])))
    }
    #[inline(always)]
    pub fn mul(a: Lanes, b: Lanes) -> Lanes {
        Lanes(std::array::from_fn(|i| a.0[i].wrapping_mul(b.0[i])))
    }
    #[inline(always)]
    pub fn xor(a: Lanes, b: Lanes) -> Lanes {
        Lanes(std::array::from_fn(|i| a.0[i] ^ b.0[i]))
    }
    #[inline(always)]
    pub fn rotl(x: Lanes, r: u32) -> Lanes {
        Lanes(x.0.map(|v| v.rotate_left(r)))
    }
    #[inline(always)]
    pub fn times5(x: Lanes, _: Times5) -> Lanes {
        Lanes(x.0.map(|v| v.wrapping_mul(5)))
    }
}

pub use imp::*;
