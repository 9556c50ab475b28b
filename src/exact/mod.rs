//! The `exact` arithmetic: f32 operations and elementary functions whose bits
//! are the same on the CPU (native and wasm32) and on every GPU stack that
//! passes the start-up probe, because each one is built only from operations
//! that are exact or correctly rounded everywhere. The WGSL twin is
//! `shaders/lib_exact.wgsl` (same names with an `ex_` prefix); the device
//! check is [`PROBE`] / [`judge`]. docs/EXACT.md has the measurements.
//!
//! The algorithms are the spec's: [`crate::spec::EXACT_OPERATIONS`],
//! [`crate::spec::EXACT_TINY_EXP`] (the grid rule), [`crate::spec::EXACT_EXP`],
//! [`crate::spec::EXACT_LN`], [`crate::spec::EXACT_DIV`],
//! [`crate::spec::EXACT_TANH`]; a training step at the `exact` level is
//! [`crate::spec::EXACT_ARITHMETIC`].

mod probe;

pub use probe::{bytes_words, words_bytes};

pub use probe::{
    cpu_answers, device_notes, eval as probe_eval, judge, probe_words, Op, ProbeCase, ProbeFailure, PROBE,
};

/// The canonical NaN of this level.
pub const NAN_BITS: u32 = 0x7fc0_0000;
const INF: u32 = 0x7f80_0000;
const EXP_MASK: u32 = 0x7f80_0000;
const ABS: u32 = 0x7fff_ffff;
const SIGN: u32 = 0x8000_0000;

const LOG2E: u32 = 0x3fb8_aa3b;
const C1: u32 = 0x3f31_8000;
const C2: u32 = 0xb95e_8083;
const MAGIC: u32 = 0x4b40_0000;
const EXP_P: [u32; 6] = [0x3950_6967, 0x3ab7_43ce, 0x3c08_8908, 0x3d2a_a9c1, 0x3e2a_aaaa, 0x3f00_0000];
const SQRTH: u32 = 0x3f35_04f3;
const LN_Q: [u32; 9] = [
    0x3d90_21bb,
    0xbdeb_d1b8,
    0x3def_251a,
    0xbdfe_5d4f,
    0x3e11_e9bf,
    0xbe2a_ae50,
    0x3e4c_ceac,
    0xbe7f_fffc,
    0x3eaa_aaaa,
];
const TANH_T: [u32; 5] = [0xbbba_f0ea, 0x3ca9_134e, 0xbd5c_1e2d, 0x3e08_8393, 0xbeaa_aa99];

#[inline(always)]
fn f(bits: u32) -> f32 {
    f32::from_bits(bits)
}

/// Subnormals and -0 become +0; every other value is unchanged.
#[inline(always)]
pub fn flush(v: f32) -> f32 {
    if v.to_bits() & EXP_MASK == 0 {
        0.0
    } else {
        v
    }
}

/// The grid rule's flush (docs/EXACT.md, "Rules for kernels"): +0 when
/// `|v| < 2^-51` (biased exponent below [`TINY_EXP`]), -0 included. Products
/// of such values are 0 or at least 2^-102 in magnitude, multiples of
/// 2^-125, and sums of multiples of 2^-125 are never subnormal: plain
/// `+ - *` on them (fenced on the GPU: `ex_addg`, `ex_subg`, `ex_mulg`) give
/// the same bits on every stack without a flush per operation.
#[inline(always)]
pub fn tiny(v: f32) -> f32 {
    // Branch-free (so loops of it vectorise): the bits kept, or all cleared
    // (+0) when the exponent is below TINY_EXP.
    let bits = v.to_bits();
    let keep = u32::from(bits & EXP_MASK >= TINY_EXP << 23).wrapping_neg();
    f32::from_bits(bits & keep)
}

/// The biased exponent below which [`tiny`] flushes (2^-51).
pub const TINY_EXP: u32 = crate::spec::EXACT_TINY_EXP;

/// `flush(a + b)`. Rust never contracts or reassociates f32 operations and
/// wasm has no FMA, so on the CPU the plain operation is the fenced one.
#[inline(always)]
pub fn add(a: f32, b: f32) -> f32 {
    flush(a + b)
}

/// `flush(a - b)`.
#[inline(always)]
pub fn sub(a: f32, b: f32) -> f32 {
    flush(a - b)
}

/// `flush(a * b)`.
#[inline(always)]
pub fn mul(a: f32, b: f32) -> f32 {
    flush(a * b)
}

/// e^x, pinned (algorithm in the module docs).
pub fn exp(x: f32) -> f32 {
    let b = x.to_bits();
    let ax = b & ABS;
    if ax > INF {
        return f(NAN_BITS);
    }
    if ax < 0x3300_0000 {
        return 1.0;
    }
    if b & SIGN == 0 && ax >= 0x42b2_0000 {
        return f(INF);
    }
    if b & SIGN != 0 && ax >= 0x42d0_0000 {
        return 0.0;
    }
    let t = mul(x, f(LOG2E));
    let j = add(t, f(MAGIC));
    let k = j.to_bits().wrapping_sub(MAGIC) as i32;
    let kf = sub(j, f(MAGIC));
    let r = sub(sub(x, mul(kf, f(C1))), mul(kf, f(C2)));
    let z = mul(r, r);
    let mut p = f(EXP_P[0]);
    for c in &EXP_P[1..] {
        p = add(mul(p, r), f(*c));
    }
    let y = add(add(mul(p, z), r), 1.0);
    scale(y, k)
}

/// `y * 2^k` for a positive normal `y`, by adding k to the exponent field:
/// +inf above the range, +0 where the result would be subnormal.
#[inline(always)]
fn scale(y: f32, k: i32) -> f32 {
    let yb = y.to_bits();
    let e = ((yb >> 23) & 0xff) as i32 + k;
    if e >= 255 {
        f(INF)
    } else if e <= 0 {
        0.0
    } else {
        f(yb.wrapping_add((k as u32) << 23))
    }
}

/// The natural logarithm, pinned (algorithm in the module docs).
pub fn ln(x: f32) -> f32 {
    let b = x.to_bits();
    if b & ABS > INF {
        return f(NAN_BITS);
    }
    if b & EXP_MASK == 0 {
        return f(INF | SIGN);
    }
    if b & SIGN != 0 {
        return f(NAN_BITS);
    }
    if b == INF {
        return f(INF);
    }
    let k = (b.wrapping_sub(SQRTH) as i32) >> 23;
    let m = f(b.wrapping_sub((k as u32) << 23));
    let kf = k as f32;
    let fr = sub(m, 1.0);
    let z = mul(fr, fr);
    let mut p = f(LN_Q[0]);
    for c in &LN_Q[1..] {
        p = add(mul(p, fr), f(*c));
    }
    let mut y = mul(mul(p, fr), z);
    y = add(y, mul(kf, f(C2)));
    y = add(y, mul(z, -0.5));
    let s = add(fr, y);
    add(s, mul(kf, f(C1)))
}

/// The hyperbolic tangent, pinned (algorithm in the module docs).
pub fn tanh(x: f32) -> f32 {
    let b = x.to_bits();
    let ax = b & ABS;
    if ax > INF {
        return f(NAN_BITS);
    }
    if ax < 0x3900_0000 {
        return flush(x);
    }
    if ax >= 0x4120_0000 {
        return f(0x3f80_0000 | (b & SIGN));
    }
    if ax < 0x3f20_0000 {
        let s = mul(x, x);
        let mut p = f(TANH_T[0]);
        for c in &TANH_T[1..] {
            p = add(mul(p, s), f(*c));
        }
        return add(mul(mul(p, s), x), x);
    }
    let a = f(ax);
    let e = exp(add(a, a));
    let q = div(2.0, add(e, 1.0));
    let t = sub(1.0, q);
    f(t.to_bits() | (b & SIGN))
}

/// `a / b` rounded to nearest even on flushed operands, with the result
/// flushed (algorithm in the module docs). Uses the hardware quotient where
/// it provably equals the integer algorithm.
pub fn div(a: f32, b: f32) -> f32 {
    let (a, b) = (flush(a), flush(b));
    let (ea, eb) = (a.to_bits() & EXP_MASK, b.to_bits() & EXP_MASK);
    if ea != 0 && ea != EXP_MASK && eb != 0 && eb != EXP_MASK {
        let q = a / b;
        if q.to_bits() & EXP_MASK >= 2 << 23 {
            return q;
        }
    }
    div_integer(a, b)
}

/// The integer-only quotient of the spec (the GPU's algorithm; [`div`] uses
/// it where the hardware quotient could differ).
pub fn div_integer(a: f32, b: f32) -> f32 {
    let (ba, bb) = (flush(a).to_bits(), flush(b).to_bits());
    let sign = (ba ^ bb) & SIGN;
    let (aa, ab) = (ba & ABS, bb & ABS);
    if aa > INF || ab > INF || (aa == 0 && ab == 0) || (aa == INF && ab == INF) {
        return f(NAN_BITS);
    }
    if aa == INF {
        return f(INF | sign);
    }
    if ab == 0 {
        return f(INF | (ba & SIGN));
    }
    if aa == 0 || ab == INF {
        return 0.0;
    }
    let mut ma = (aa & 0x7f_ffff) | 0x80_0000;
    let mb = (ab & 0x7f_ffff) | 0x80_0000;
    let mut e = (aa >> 23) as i32 - (ab >> 23) as i32 + 127;
    if ma < mb {
        ma <<= 1;
        e -= 1;
    }
    let (mut q, mut r) = (0u32, ma);
    for _ in 0..25 {
        q <<= 1;
        if r >= mb {
            r -= mb;
            q |= 1;
        }
        r <<= 1;
    }
    let g = q & 1;
    q >>= 1;
    let up = g & (u32::from(r != 0) | (q & 1));
    if e < 0 {
        return 0.0;
    }
    let v = ((e as u32) << 23) + (q & 0x7f_ffff) + up;
    if v >= INF {
        return f(INF | sign);
    }
    if v & EXP_MASK == 0 {
        return 0.0;
    }
    f(v | sign)
}

/// A function of this module, numbered as the evaluation kernel
/// (`shaders/exact_eval.wgsl`) numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Func {
    Exp = 0,
    Ln = 1,
    Tanh = 2,
    Div = 3,
    Add = 4,
    Sub = 5,
    Mul = 6,
    /// Plain `a + b` on grid values (`ex_addg` on the GPU).
    AddGrid = 7,
    /// Plain `a * b` on grid values (`ex_mulg` on the GPU).
    MulGrid = 8,
    Tiny = 9,
}

impl Func {
    pub const ALL: [Func; 10] = [
        Func::Exp,
        Func::Ln,
        Func::Tanh,
        Func::Div,
        Func::Add,
        Func::Sub,
        Func::Mul,
        Func::AddGrid,
        Func::MulGrid,
        Func::Tiny,
    ];

    /// The CPU's value (`b` is ignored by the one-argument functions).
    pub fn cpu(self, a: f32, b: f32) -> f32 {
        match self {
            Func::Exp => exp(a),
            Func::Ln => ln(a),
            Func::Tanh => tanh(a),
            Func::Div => div(a, b),
            Func::Add => add(a, b),
            Func::Sub => sub(a, b),
            Func::Mul => mul(a, b),
            Func::AddGrid => a + b,
            Func::MulGrid => a * b,
            Func::Tiny => tiny(a),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Func::Exp => "exp",
            Func::Ln => "ln",
            Func::Tanh => "tanh",
            Func::Div => "div",
            Func::Add => "add",
            Func::Sub => "sub",
            Func::Mul => "mul",
            Func::AddGrid => "addg",
            Func::MulGrid => "mulg",
            Func::Tiny => "tiny",
        }
    }
}

#[cfg(test)]
mod tiny_tests {
    use super::*;

    /// The branch-free `tiny` is the rule as written: +0 below 2^-51
    /// (-0, subnormals and NaN-free small values included), the value
    /// itself otherwise, on every exponent and sign and a spread of
    /// mantissas.
    #[test]
    fn tiny_is_the_rule() {
        for e in 0..=255u32 {
            for sign in [0, 1u32 << 31] {
                for m in [0u32, 1, 0x40_0000, 0x7f_ffff, 0x12_3457] {
                    let v = f32::from_bits(sign | (e << 23) | m);
                    let want = if e < TINY_EXP { 0.0f32 } else { v };
                    assert_eq!(tiny(v).to_bits(), want.to_bits(), "tiny({:08x})", v.to_bits());
                }
            }
        }
    }
}
