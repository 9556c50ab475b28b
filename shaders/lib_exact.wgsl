// lib_exact.wgsl: not a kernel: the `exact` level's arithmetic, included by
// the kernels that use it (src/gpu.rs prepends it, after the prelude). The
// spec and the CPU twin are src/exact/mod.rs (same names without `ex_`);
// docs/EXACT.md explains the fence and the subnormal rule.
//
// Use: a kernel calls ex_init(z) first, with z a zero it read from a buffer
// at run time (a `const` or `override` zero is folded away and the fences
// with it), then uses only ex_add / ex_sub / ex_mul for f32 arithmetic and
// ex_exp / ex_ln / ex_tanh / ex_div for the rest: no `/`, fma, mix, dot,
// sqrt or float builtins. Range tests are done on the bits.

var<private> ex_z: u32;

fn ex_init(zero: u32) { ex_z = zero; }

// Subnormals and -0 become +0.
fn ex_flush(v: f32) -> f32 {
    let u = bitcast<u32>(v);
    return bitcast<f32>(select(u, 0u, (u & 0x7f800000u) == 0u));
}

// The fence: the result's bits XOR a run-time zero, so the compiler can
// neither fuse the operation into the next one nor reorder across it; then
// the flush rule.
fn ex_fence(v: f32) -> f32 {
    let u = bitcast<u32>(v) ^ ex_z;
    return bitcast<f32>(select(u, 0u, (u & 0x7f800000u) == 0u));
}

fn ex_add(a: f32, b: f32) -> f32 { return ex_fence(a + b); }
fn ex_sub(a: f32, b: f32) -> f32 { return ex_fence(a - b); }
fn ex_mul(a: f32, b: f32) -> f32 { return ex_fence(a * b); }

fn ex_f(bits: u32) -> f32 { return bitcast<f32>(bits); }

// The grid rule for hot loops (docs/EXACT.md "Rules for kernels"): values
// that passed ex_tiny (+0, or |v| >= 2^-51) multiply to +-0 or |p| >= 2^-102,
// a multiple of 2^-125, and sums of such multiples are never subnormal, so
// these fenced operations need no flush. CPU twins: plain `+ - *`.
fn ex_tiny(v: f32) -> f32 {
    let u = bitcast<u32>(v);
    return bitcast<f32>(select(u, 0u, (u & 0x7f800000u) < (76u << 23u)));
}
fn ex_addg(a: f32, b: f32) -> f32 { return bitcast<f32>(bitcast<u32>(a + b) ^ ex_z); }
fn ex_subg(a: f32, b: f32) -> f32 { return bitcast<f32>(bitcast<u32>(a - b) ^ ex_z); }
fn ex_mulg(a: f32, b: f32) -> f32 { return bitcast<f32>(bitcast<u32>(a * b) ^ ex_z); }

// y * 2^k for a positive normal y, on the exponent field: +inf above the
// range, +0 where the result would be subnormal.
fn ex_scale(y: f32, k: i32) -> f32 {
    let yb = bitcast<u32>(y);
    let e = i32((yb >> 23u) & 0xffu) + k;
    if (e >= 255) { return ex_f(0x7f800000u); }
    if (e <= 0) { return 0.0; }
    return bitcast<f32>(yb + (bitcast<u32>(k) << 23u));
}

fn ex_exp(x: f32) -> f32 {
    let b = bitcast<u32>(x);
    let ax = b & 0x7fffffffu;
    if (ax > 0x7f800000u) { return ex_f(0x7fc00000u); }
    if (ax < 0x33000000u) { return 1.0; }
    if ((b & 0x80000000u) == 0u && ax >= 0x42b20000u) { return ex_f(0x7f800000u); }
    if ((b & 0x80000000u) != 0u && ax >= 0x42d00000u) { return 0.0; }
    let t = ex_mul(x, ex_f(0x3fb8aa3bu));
    let j = ex_add(t, ex_f(0x4b400000u));
    let k = bitcast<i32>(bitcast<u32>(j) - 0x4b400000u);
    let kf = ex_sub(j, ex_f(0x4b400000u));
    let r = ex_sub(ex_sub(x, ex_mul(kf, ex_f(0x3f318000u))), ex_mul(kf, ex_f(0xb95e8083u)));
    let z = ex_mul(r, r);
    var p = ex_f(0x39506967u);
    p = ex_add(ex_mul(p, r), ex_f(0x3ab743ceu));
    p = ex_add(ex_mul(p, r), ex_f(0x3c088908u));
    p = ex_add(ex_mul(p, r), ex_f(0x3d2aa9c1u));
    p = ex_add(ex_mul(p, r), ex_f(0x3e2aaaaau));
    p = ex_add(ex_mul(p, r), ex_f(0x3f000000u));
    let y = ex_add(ex_add(ex_mul(p, z), r), 1.0);
    return ex_scale(y, k);
}

// The natural logarithm.
fn ex_ln(x: f32) -> f32 {
    let b = bitcast<u32>(x);
    if ((b & 0x7fffffffu) > 0x7f800000u) { return ex_f(0x7fc00000u); }
    if ((b & 0x7f800000u) == 0u) { return ex_f(0xff800000u); }
    if ((b & 0x80000000u) != 0u) { return ex_f(0x7fc00000u); }
    if (b == 0x7f800000u) { return ex_f(0x7f800000u); }
    let k = bitcast<i32>(b - 0x3f3504f3u) >> 23u;
    let m = bitcast<f32>(b - (bitcast<u32>(k) << 23u));
    let kf = f32(k);
    let f = ex_sub(m, 1.0);
    let z = ex_mul(f, f);
    var p = ex_f(0x3d9021bbu);
    p = ex_add(ex_mul(p, f), ex_f(0xbdebd1b8u));
    p = ex_add(ex_mul(p, f), ex_f(0x3def251au));
    p = ex_add(ex_mul(p, f), ex_f(0xbdfe5d4fu));
    p = ex_add(ex_mul(p, f), ex_f(0x3e11e9bfu));
    p = ex_add(ex_mul(p, f), ex_f(0xbe2aae50u));
    p = ex_add(ex_mul(p, f), ex_f(0x3e4cceacu));
    p = ex_add(ex_mul(p, f), ex_f(0xbe7ffffcu));
    p = ex_add(ex_mul(p, f), ex_f(0x3eaaaaaau));
    var y = ex_mul(ex_mul(p, f), z);
    y = ex_add(y, ex_mul(kf, ex_f(0xb95e8083u)));
    y = ex_add(y, ex_mul(z, -0.5));
    let s = ex_add(f, y);
    return ex_add(s, ex_mul(kf, ex_f(0x3f318000u)));
}

// a / b, rounded to nearest even, on flushed operands, with 32-bit integers.
fn ex_div(a0: f32, b0: f32) -> f32 {
    let ba = bitcast<u32>(ex_flush(a0));
    let bb = bitcast<u32>(ex_flush(b0));
    let sign = (ba ^ bb) & 0x80000000u;
    let aa = ba & 0x7fffffffu;
    let ab = bb & 0x7fffffffu;
    if (aa > 0x7f800000u || ab > 0x7f800000u || (aa == 0u && ab == 0u) || (aa == 0x7f800000u && ab == 0x7f800000u)) {
        return ex_f(0x7fc00000u);
    }
    if (aa == 0x7f800000u) { return ex_f(0x7f800000u | sign); }
    if (ab == 0u) { return ex_f(0x7f800000u | (ba & 0x80000000u)); }
    if (aa == 0u || ab == 0x7f800000u) { return 0.0; }
    var ma = (aa & 0x7fffffu) | 0x800000u;
    let mb = (ab & 0x7fffffu) | 0x800000u;
    var e = i32(aa >> 23u) - i32(ab >> 23u) + 127;
    if (ma < mb) {
        ma = ma << 1u;
        e = e - 1;
    }
    var q = 0u;
    var r = ma;
    for (var i = 0u; i < 25u; i = i + 1u) {
        q = q << 1u;
        if (r >= mb) {
            r = r - mb;
            q = q | 1u;
        }
        r = r << 1u;
    }
    let g = q & 1u;
    q = q >> 1u;
    let up = g & (select(0u, 1u, r != 0u) | (q & 1u));
    if (e < 0) { return 0.0; }
    let v = (u32(e) << 23u) + (q & 0x7fffffu) + up;
    if (v >= 0x7f800000u) { return ex_f(0x7f800000u | sign); }
    if ((v & 0x7f800000u) == 0u) { return 0.0; }
    return bitcast<f32>(v | sign);
}

fn ex_tanh(x: f32) -> f32 {
    let b = bitcast<u32>(x);
    let ax = b & 0x7fffffffu;
    if (ax > 0x7f800000u) { return ex_f(0x7fc00000u); }
    if (ax < 0x39000000u) { return ex_flush(x); }
    if (ax >= 0x41200000u) { return ex_f(0x3f800000u | (b & 0x80000000u)); }
    if (ax < 0x3f200000u) {
        let s = ex_mul(x, x);
        var p = ex_f(0xbbbaf0eau);
        p = ex_add(ex_mul(p, s), ex_f(0x3ca9134eu));
        p = ex_add(ex_mul(p, s), ex_f(0xbd5c1e2du));
        p = ex_add(ex_mul(p, s), ex_f(0x3e088393u));
        p = ex_add(ex_mul(p, s), ex_f(0xbeaaaa99u));
        return ex_add(ex_mul(ex_mul(p, s), x), x);
    }
    let a = ex_f(ax);
    let e = ex_exp(ex_add(a, a));
    let q = ex_div(2.0, ex_add(e, 1.0));
    let t = ex_sub(1.0, q);
    return bitcast<f32>(bitcast<u32>(t) | (b & 0x80000000u));
}
