//! Four f32 lanes, each an independent IEEE-754 binary32 value: wasm
//! SIMD128 (`f32x4.add`, `f32x4.mul`), SSE2 on x86_64 (`addps`, `mulps`,
//! part of every x86_64 CPU, so no run-time detection), plain arrays
//! elsewhere (on aarch64 LLVM compiles those to NEON `fadd`/`fmul v.4s`,
//! never `fmla`: README, "The eighth stack"). Only lane-wise `+` and `*`
//! exist here, besides moves (loads, stores, a 4 x 4 transpose): no fused
//! multiply-add, no horizontal sum, nothing that could mix two lanes'
//! roundings, so a lane computes exactly what the scalar code computes for
//! its output.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod imp {
    use core::arch::wasm32::{f32x4, f32x4_add, f32x4_extract_lane, f32x4_mul, f32x4_splat, i32x4_shuffle, v128};

    pub type Raw = v128;
    pub const NAME: &str = "wasm simd128";

    #[inline(always)]
    pub fn splat(x: f32) -> Raw {
        f32x4_splat(x)
    }
    #[inline(always)]
    pub fn from_array(a: [f32; 4]) -> Raw {
        f32x4(a[0], a[1], a[2], a[3])
    }
    #[inline(always)]
    pub fn to_array(v: Raw) -> [f32; 4] {
        [f32x4_extract_lane::<0>(v), f32x4_extract_lane::<1>(v), f32x4_extract_lane::<2>(v), f32x4_extract_lane::<3>(v)]
    }
    #[inline(always)]
    pub fn add(a: Raw, b: Raw) -> Raw {
        f32x4_add(a, b)
    }
    #[inline(always)]
    pub fn mul(a: Raw, b: Raw) -> Raw {
        f32x4_mul(a, b)
    }
    #[inline(always)]
    pub fn transpose(r: [Raw; 4]) -> [Raw; 4] {
        let t0 = i32x4_shuffle::<0, 4, 1, 5>(r[0], r[1]);
        let t1 = i32x4_shuffle::<0, 4, 1, 5>(r[2], r[3]);
        let t2 = i32x4_shuffle::<2, 6, 3, 7>(r[0], r[1]);
        let t3 = i32x4_shuffle::<2, 6, 3, 7>(r[2], r[3]);
        [
            i32x4_shuffle::<0, 1, 4, 5>(t0, t1),
            i32x4_shuffle::<2, 3, 6, 7>(t0, t1),
            i32x4_shuffle::<0, 1, 4, 5>(t2, t3),
            i32x4_shuffle::<2, 3, 6, 7>(t2, t3),
        ]
    }
}

// SSE and SSE2 are in the x86_64 baseline, so these intrinsics are always
// available. Older compilers mark them `unsafe fn`, newer ones safe: hence
// the allowed `unused_unsafe`.
#[cfg(target_arch = "x86_64")]
#[allow(unused_unsafe)]
mod imp {
    use core::arch::x86_64::{
        __m128, _mm_add_ps, _mm_loadu_ps, _mm_movehl_ps, _mm_movelh_ps, _mm_mul_ps, _mm_set1_ps, _mm_storeu_ps,
        _mm_unpackhi_ps, _mm_unpacklo_ps,
    };

    pub type Raw = __m128;
    pub const NAME: &str = "x86_64 sse2";

    #[inline(always)]
    pub fn splat(x: f32) -> Raw {
        unsafe { _mm_set1_ps(x) }
    }
    #[inline(always)]
    pub fn from_array(a: [f32; 4]) -> Raw {
        // SAFETY: reads the four floats of `a`.
        unsafe { _mm_loadu_ps(a.as_ptr()) }
    }
    #[inline(always)]
    pub fn to_array(v: Raw) -> [f32; 4] {
        let mut a = [0.0f32; 4];
        // SAFETY: writes the four floats of `a`.
        unsafe { _mm_storeu_ps(a.as_mut_ptr(), v) };
        a
    }
    #[inline(always)]
    pub fn add(a: Raw, b: Raw) -> Raw {
        unsafe { _mm_add_ps(a, b) }
    }
    #[inline(always)]
    pub fn mul(a: Raw, b: Raw) -> Raw {
        unsafe { _mm_mul_ps(a, b) }
    }
    #[inline(always)]
    pub fn transpose(r: [Raw; 4]) -> [Raw; 4] {
        unsafe {
            let t0 = _mm_unpacklo_ps(r[0], r[1]);
            let t1 = _mm_unpacklo_ps(r[2], r[3]);
            let t2 = _mm_unpackhi_ps(r[0], r[1]);
            let t3 = _mm_unpackhi_ps(r[2], r[3]);
            [_mm_movelh_ps(t0, t1), _mm_movehl_ps(t1, t0), _mm_movelh_ps(t2, t3), _mm_movehl_ps(t3, t2)]
        }
    }
}

#[cfg(not(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64")))]
mod imp {
    pub type Raw = [f32; 4];
    pub const NAME: &str = "portable";

    #[inline(always)]
    pub fn splat(x: f32) -> Raw {
        [x; 4]
    }
    #[inline(always)]
    pub fn from_array(a: [f32; 4]) -> Raw {
        a
    }
    #[inline(always)]
    pub fn to_array(v: Raw) -> [f32; 4] {
        v
    }
    #[inline(always)]
    pub fn add(a: Raw, b: Raw) -> Raw {
        [a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]]
    }
    #[inline(always)]
    pub fn mul(a: Raw, b: Raw) -> Raw {
        [a[0] * b[0], a[1] * b[1], a[2] * b[2], a[3] * b[3]]
    }
    #[inline(always)]
    pub fn transpose(r: [Raw; 4]) -> [Raw; 4] {
        core::array::from_fn(|i| core::array::from_fn(|j| r[j][i]))
    }
}

/// What the lanes run on in this build: `wasm simd128`, `x86_64 sse2` or
/// `portable`.
pub const BACKEND: &str = imp::NAME;

/// Four f32 lanes.
#[derive(Clone, Copy)]
pub struct F32x4(imp::Raw);

impl F32x4 {
    /// Four +0.0.
    #[inline(always)]
    pub fn zero() -> F32x4 {
        F32x4(imp::splat(0.0))
    }
    #[inline(always)]
    pub fn splat(x: f32) -> F32x4 {
        F32x4(imp::splat(x))
    }
    #[inline(always)]
    pub fn from_array(a: [f32; 4]) -> F32x4 {
        F32x4(imp::from_array(a))
    }
    #[inline(always)]
    pub fn to_array(self) -> [f32; 4] {
        imp::to_array(self.0)
    }
    /// The first four floats of `s` (which must hold four).
    #[inline(always)]
    pub fn load(s: &[f32]) -> F32x4 {
        F32x4::from_array(s[..4].try_into().expect("four floats"))
    }
    /// Writes the four lanes to the first four floats of `s`.
    #[inline(always)]
    pub fn store(self, s: &mut [f32]) {
        s[..4].copy_from_slice(&self.to_array());
    }
    /// The 4 x 4 transpose of four vectors (lane moves only: bits unchanged).
    #[inline(always)]
    pub fn transpose(r: [F32x4; 4]) -> [F32x4; 4] {
        let t = imp::transpose([r[0].0, r[1].0, r[2].0, r[3].0]);
        [F32x4(t[0]), F32x4(t[1]), F32x4(t[2]), F32x4(t[3])]
    }
    /// Lane-wise `self + o`, each lane rounded on its own.
    #[inline(always)]
    pub fn add(self, o: F32x4) -> F32x4 {
        F32x4(imp::add(self.0, o.0))
    }
    /// Lane-wise `self * o`, each lane rounded on its own.
    #[inline(always)]
    pub fn mul(self, o: F32x4) -> F32x4 {
        F32x4(imp::mul(self.0, o.0))
    }
}
