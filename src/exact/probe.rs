//! The start-up probe of the `exact` level: a known-answer kernel
//! (`shaders/exact_probe.wgsl`) whose answers must equal the CPU's, case by
//! case, for the level to be granted. [`PROBE`] is the table of cases, each
//! belonging to a named check; [`judge`] names the first check a device
//! fails. Cases with `required: false` describe the device (does it fuse an
//! unfenced `a*b+c`, flush subnormals, fold a twoSum away) for the record and
//! never refuse it: the fenced operations are built not to depend on them.

use super::{add, div, exp, flush, ln, mul, sub, tanh};

/// One operation of the probe kernel (its `op` word).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Op {
    /// `ex_add(a, b)`.
    Add = 0,
    /// `ex_sub(a, b)`.
    Sub = 1,
    /// `ex_mul(a, b)`.
    Mul = 2,
    /// `ex_add(ex_mul(a, b), c)`: must not fuse.
    MulAdd = 3,
    /// `a * b + c` unfenced: fused or not, for the record.
    RawMulAdd = 4,
    /// The error term of a fenced twoSum of (a, b): must not fold to 0.
    TwoSumErr = 5,
    /// The error term of an unfenced twoSum, for the record.
    RawTwoSumErr = 6,
    /// `a * b` unfenced and unflushed, for the record.
    RawMul = 7,
    /// `i32(a)`.
    F32ToI32 = 8,
    /// `u32(a)`.
    F32ToU32 = 9,
    /// `f32(bitcast<i32>(a))`.
    I32ToF32 = 10,
    /// `f32(a as u32)`.
    U32ToF32 = 11,
    /// `ex_exp(a)`.
    Exp = 12,
    /// `ex_ln(a)`.
    Ln = 13,
    /// `ex_tanh(a)`.
    Tanh = 14,
    /// `ex_div(a, b)`.
    Div = 15,
    /// `ex_flush(a)`.
    Flush = 16,
    /// The WGSL builtin `exp(a)`, for the record.
    BuiltinExp = 17,
}

/// One known-answer case: the check it belongs to, what it shows, the
/// operation and its operands (bit patterns).
#[derive(Clone, Copy, Debug)]
pub struct ProbeCase {
    pub check: &'static str,
    pub what: &'static str,
    pub required: bool,
    pub op: Op,
    pub a: u32,
    pub b: u32,
    pub c: u32,
}

const fn case(check: &'static str, what: &'static str, op: Op, a: u32, b: u32, c: u32) -> ProbeCase {
    ProbeCase { check, what, required: true, op, a, b, c }
}

const fn note(what: &'static str, op: Op, a: u32, b: u32, c: u32) -> ProbeCase {
    ProbeCase { check: "device", what, required: false, op, a, b, c }
}

const ONE: u32 = 0x3f80_0000;
/// 1 + 2^-12 + 2^-23: its square lies just above a rounding tie.
const A12: u32 = 0x3f80_0801;

/// The probe: every case, in the order of the kernel's answers.
pub const PROBE: [ProbeCase; 52] = [
    // Round to nearest, ties to even, on fenced operations.
    case("rounding", "1 + 2^-24 (a tie, to even: 1)", Op::Add, ONE, 0x3380_0000, 0),
    case("rounding", "(1 + 2^-23) + 2^-24 (a tie, to even: up)", Op::Add, 0x3f80_0001, 0x3380_0000, 0),
    case("rounding", "1 - 2^-25 (a tie below 1)", Op::Sub, ONE, 0x3300_0000, 0),
    case("rounding", "2^24 + 1 (a tie, to even: down)", Op::Add, 0x4b80_0000, ONE, 0),
    case("rounding", "(2^24 + 2) + 1 (a tie, to even: up)", Op::Add, 0x4b80_0001, ONE, 0),
    case("rounding", "(1 + 2^-12 + 2^-23)^2 (above a tie: up)", Op::Mul, A12, A12, 0),
    case("rounding", "-(1 + 2^-12 + 2^-23) * (1 + 2^-12 + 2^-23)", Op::Mul, 0x8000_0000 | A12, A12, 0),
    case("rounding", "f32(1/3) * 3 (a quarter ULP above 1: down)", Op::Mul, 0x3eaa_aaab, 0x4040_0000, 0),
    // A fused multiply-add keeps the product's rounding error.
    case("fusion", "(1 + 2^-12)^2 - (1 + 2^-11): 0 unfused, 2^-24 fused", Op::MulAdd, 0x3f80_0800, 0x3f80_0800, 0xbf80_1000),
    case("fusion", "a*a - round(a*a), a = 1 + 2^-12 + 2^-23", Op::MulAdd, A12, A12, 0xbf80_1003),
    case("fusion", "0.1 * 10 - 1: 0 unfused, 1.49e-8 fused", Op::MulAdd, 0x3dcc_cccd, 0x4120_0000, 0xbf80_0000),
    // twoSum's error term is 0 under real-number algebra: reassociation folds it.
    case("reassociation", "twoSum error of (1e10, 1e-10)", Op::TwoSumErr, 0x5015_02f9, 0x2edb_e6ff, 0),
    case("reassociation", "twoSum error of (1, 2^-30)", Op::TwoSumErr, ONE, 0x3080_0000, 0),
    // The flush rule: subnormal results become +0 by the library's own test,
    // and the smallest normals are neither flushed nor misrounded.
    case("subnormals", "2^-70 * 2^-60 (subnormal product) -> +0", Op::Mul, 0x1c80_0000, 0x2180_0000, 0),
    case("subnormals", "-2^-70 * 2^-60 -> +0, not -0", Op::Mul, 0x9c80_0000, 0x2180_0000, 0),
    case("subnormals", "1.5 * 2^-126 - 1.25 * 2^-126 (exact subnormal difference) -> +0", Op::Sub, 0x00c0_0000, 0x00a0_0000, 0),
    case("subnormals", "2^-63 * 2^-63 = 2^-126 (smallest normal, kept)", Op::Mul, 0x2000_0000, 0x2000_0000, 0),
    case("subnormals", "2^-126 * 1.5 (a smallest-normal operand, kept)", Op::Mul, 0x0080_0000, 0x3fc0_0000, 0),
    case("subnormals", "2^-125 - 2^-126 = 2^-126 (kept)", Op::Sub, 0x0100_0000, 0x0080_0000, 0),
    case("subnormals", "flush of the subnormal 2^-127 -> +0", Op::Flush, 0x0040_0000, 0, 0),
    case("subnormals", "flush of -0 -> +0", Op::Flush, 0x8000_0000, 0, 0),
    // Conversions the library and the kernels rely on (all exact).
    case("conversions", "i32(-2.5) = -2 (toward zero)", Op::F32ToI32, 0xc020_0000, 0, 0),
    case("conversions", "i32(2.9999998) = 2", Op::F32ToI32, 0x403f_ffff, 0, 0),
    case("conversions", "i32(-2^24)", Op::F32ToI32, 0xcb80_0000, 0, 0),
    case("conversions", "i32(1e9)", Op::F32ToI32, 0x4e6e_6b28, 0, 0),
    case("conversions", "u32(3.75) = 3", Op::F32ToU32, 0x4070_0000, 0, 0),
    case("conversions", "f32(-150i)", Op::I32ToF32, (-150i32) as u32, 0, 0),
    case("conversions", "f32(16777216i)", Op::I32ToF32, 16_777_216, 0, 0),
    case("conversions", "f32(4000000000u)", Op::U32ToF32, 4_000_000_000, 0, 0),
    // The pinned functions on a few inputs, specials included.
    case("functions", "exp(1)", Op::Exp, ONE, 0, 0),
    case("functions", "exp(-1)", Op::Exp, 0xbf80_0000, 0, 0),
    case("functions", "exp(10.5)", Op::Exp, 0x4128_0000, 0, 0),
    case("functions", "exp(88.7)", Op::Exp, 0x42b1_6666, 0, 0),
    case("functions", "exp(-87) (near the flush threshold)", Op::Exp, 0xc2ae_0000, 0, 0),
    case("functions", "exp(-100) -> +0", Op::Exp, 0xc2c8_0000, 0, 0),
    case("functions", "exp(0.34657359) (k rounds at a tie)", Op::Exp, 0x3eb1_7218, 0, 0),
    case("functions", "ln(2)", Op::Ln, 0x4000_0000, 0, 0),
    case("functions", "ln(0.1)", Op::Ln, 0x3dcc_cccd, 0, 0),
    case("functions", "ln(1e-30)", Op::Ln, 0x0da2_4260, 0, 0),
    case("functions", "ln(3e38)", Op::Ln, 0x7f61_b1e6, 0, 0),
    case("functions", "tanh(0.5)", Op::Tanh, 0x3f00_0000, 0, 0),
    case("functions", "tanh(-3)", Op::Tanh, 0xc040_0000, 0, 0),
    case("functions", "tanh(1e-5)", Op::Tanh, 0x3727_c5ac, 0, 0),
    case("functions", "tanh(9.5)", Op::Tanh, 0x4118_0000, 0, 0),
    case("functions", "div(1, 3)", Op::Div, ONE, 0x4040_0000, 0),
    case("functions", "div(-5, 7)", Op::Div, 0xc0a0_0000, 0x40e0_0000, 0),
    // For the record only.
    note("unfenced a*b+c, (1 + 2^-12)^2 - (1 + 2^-11): 0 unless fused", Op::RawMulAdd, 0x3f80_0800, 0x3f80_0800, 0xbf80_1000),
    note("unfenced twoSum error of (1e10, 1e-10): 0 if folded", Op::RawTwoSumErr, 0x5015_02f9, 0x2edb_e6ff, 0),
    note("unfenced 1e-40 * 1: 0 if subnormals are flushed", Op::RawMul, 0x0001_16c2, ONE, 0),
    note(
        "ex_mul((1 - 2^-12) 2^-63, (1 + 2^-12) 2^-63) = (1 - 2^-24) 2^-126: 2^-126 unless tininess is detected in 24 bits",
        Op::Mul,
        0x1fff_f000,
        0x2000_0800,
        0,
    ),
    note("builtin exp(1) (correctly rounded: 0x402df854)", Op::BuiltinExp, ONE, 0, 0),
    note("i32(3e9) (out of range: clamped)", Op::F32ToI32, 0x4f32_d05e, 0, 0),
];

/// The probe's input buffer: four words per case (op, a, b, c).
pub fn probe_words() -> Vec<u32> {
    PROBE.iter().flat_map(|c| [c.op as u32, c.a, c.b, c.c]).collect()
}

/// What the CPU answers to one case.
pub fn eval(op: Op, a: u32, b: u32, c: u32) -> u32 {
    let (x, y, z) = (f32::from_bits(a), f32::from_bits(b), f32::from_bits(c));
    let bits = |v: f32| v.to_bits();
    match op {
        Op::Add => bits(add(x, y)),
        Op::Sub => bits(sub(x, y)),
        Op::Mul => bits(mul(x, y)),
        Op::MulAdd => bits(add(mul(x, y), z)),
        Op::RawMulAdd => bits(x * y + z),
        Op::TwoSumErr => {
            let s = add(x, y);
            let bb = sub(s, x);
            bits(add(sub(x, sub(s, bb)), sub(y, bb)))
        }
        Op::RawTwoSumErr => {
            let s = x + y;
            let bb = s - x;
            bits((x - (s - bb)) + (y - bb))
        }
        Op::RawMul => bits(x * y),
        // WGSL clamps out-of-range values to the nearest f32 in range, then
        // truncates toward zero.
        Op::F32ToI32 => (x.clamp(-2_147_483_648.0, 2_147_483_520.0) as i32) as u32,
        Op::F32ToU32 => x.clamp(0.0, 4_294_967_040.0) as u32,
        Op::I32ToF32 => bits(a as i32 as f32),
        Op::U32ToF32 => bits(a as f32),
        Op::Exp => bits(exp(x)),
        Op::Ln => bits(ln(x)),
        Op::Tanh => bits(tanh(x)),
        Op::Div => bits(div(x, y)),
        Op::Flush => bits(flush(x)),
        Op::BuiltinExp => bits(libm::expf(x)),
    }
}

/// The CPU's answers to [`PROBE`].
pub fn cpu_answers() -> Vec<u32> {
    PROBE.iter().map(|c| eval(c.op, c.a, c.b, c.c)).collect()
}

/// Why a device was refused the `exact` level: the failed check and the
/// first case of it that differed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeFailure {
    pub check: String,
    pub detail: String,
}

impl std::fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.check, self.detail)
    }
}

impl std::error::Error for ProbeFailure {}

/// Compares the device's answers with the CPU's: `Ok` when every required
/// case matches, else the first failing check, named, with the case, both
/// bit patterns and the operands.
pub fn judge(cpu_answers: &[u32], gpu_answers: &[u32]) -> Result<(), ProbeFailure> {
    if cpu_answers.len() != PROBE.len() || gpu_answers.len() != PROBE.len() {
        return Err(ProbeFailure {
            check: "probe".into(),
            detail: format!(
                "expected {} answers from each side, got {} from the CPU and {} from the device",
                PROBE.len(),
                cpu_answers.len(),
                gpu_answers.len()
            ),
        });
    }
    for ((case, &want), &got) in PROBE.iter().zip(cpu_answers).zip(gpu_answers) {
        if case.required && want != got {
            return Err(ProbeFailure {
                check: case.check.into(),
                detail: format!(
                    "{}: the CPU gives 0x{want:08x} ({:e}), this device 0x{got:08x} ({:e}) (operands 0x{:08x} 0x{:08x} 0x{:08x})",
                    case.what,
                    f32::from_bits(want),
                    f32::from_bits(got),
                    case.a,
                    case.b,
                    case.c
                ),
            });
        }
    }
    Ok(())
}

/// One line per record-only case: what the device answered and whether the
/// CPU answers the same (e.g. whether it fuses an unfenced `a*b+c`).
pub fn device_notes(cpu_answers: &[u32], gpu_answers: &[u32]) -> Vec<String> {
    PROBE
        .iter()
        .zip(cpu_answers.iter().zip(gpu_answers))
        .filter(|(c, _)| !c.required)
        .map(|(c, (w, g))| {
            let same = if w == g { "as the CPU" } else { "differs from the CPU" };
            format!("{}: 0x{g:08x} ({same}, 0x{w:08x})", c.what)
        })
        .collect()
}

pub fn words_bytes(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn bytes_words(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}
