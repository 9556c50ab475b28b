//! The pinned functions of `reprolab::exact` against correctly rounded
//! references (f64 `libm` rounded to f32, then flushed as the exact level
//! flushes), over every f32 of the relevant ranges at a stride plus the edge
//! cases; the maximum ULP error of each is printed and bounded.
//!
//! `EXACT_SWEEP_STRIDE=1 cargo test --release --test exact_math -- --nocapture`
//! sweeps every f32 (minutes); the default stride keeps the test short.
//!
//! The digest test also runs in wasm (`wasm-pack test`, Chromium and
//! Firefox): the same bits natively and in every wasm engine.

use reprolab::exact;

#[cfg(not(target_arch = "wasm32"))]
const MIN_NORMAL: u32 = 0x0080_0000;

/// The position of `x` on the flushed number line: subnormals do not exist
/// at the exact level, so +0 and 2^-126 are neighbours (1 ULP apart).
#[cfg(not(target_arch = "wasm32"))]
fn key(x: f32) -> i64 {
    let b = x.to_bits();
    let a = (b & 0x7fff_ffff) as i64;
    let mag = if a < MIN_NORMAL as i64 { 0 } else { a - MIN_NORMAL as i64 + 1 };
    if b >> 31 == 1 {
        -mag
    } else {
        mag
    }
}

/// ULP distance on the flushed number line; 0 for two NaNs, `u64::MAX` for a
/// NaN against a number.
#[cfg(not(target_arch = "wasm32"))]
fn ulps(a: f32, b: f32) -> u64 {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => 0,
        (false, false) => (key(a) - key(b)).unsigned_abs(),
        _ => u64::MAX,
    }
}

/// The correctly rounded f32 of an f64, as the exact level sees it: values
/// that round to a subnormal become +0 (and -0 becomes +0).
#[cfg(not(target_arch = "wasm32"))]
fn reference(v: f64) -> f32 {
    exact::flush(v as f32)
}

#[cfg(not(target_arch = "wasm32"))]
fn stride() -> u32 {
    std::env::var("EXACT_SWEEP_STRIDE").ok().and_then(|s| s.parse().ok()).unwrap_or(61)
}

#[cfg(not(target_arch = "wasm32"))]
struct Worst {
    name: &'static str,
    max: u64,
    at: f32,
    got: f32,
    want: f32,
    count: u64,
    over_half: u64,
}

#[cfg(not(target_arch = "wasm32"))]
impl Worst {
    fn new(name: &'static str) -> Worst {
        Worst { name, max: 0, at: 0.0, got: 0.0, want: 0.0, count: 0, over_half: 0 }
    }

    fn see(&mut self, x: f32, got: f32, want: f32) {
        let u = ulps(got, want);
        self.count += 1;
        if u > 0 {
            self.over_half += 1;
        }
        if u > self.max {
            *self = Worst { max: u, at: x, got, want, ..*self };
        }
    }

    fn report(&self) -> String {
        format!(
            "{}: max {} ULP at x = {:e} (0x{:08x}): got 0x{:08x}, correctly rounded 0x{:08x}; {} of {} inputs not correctly rounded",
            self.name,
            self.max,
            self.at,
            self.at.to_bits(),
            self.got.to_bits(),
            self.want.to_bits(),
            self.over_half,
            self.count
        )
    }
}

/// Every f32 with bits in `lo..=hi` at `stride`, both signs where asked.
#[cfg(not(target_arch = "wasm32"))]
fn sweep(lo: u32, hi: u32, step: u32, mut each: impl FnMut(f32)) {
    let mut b = lo;
    while b <= hi {
        each(f32::from_bits(b));
        b = match b.checked_add(step) {
            Some(n) => n,
            None => break,
        };
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn check(w: &Worst, bound: u64) {
    eprintln!("{}", w.report());
    assert!(w.max <= bound, "{}", w.report());
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn exp_is_within_its_bound_of_the_correctly_rounded_value() {
    let mut w = Worst::new("exp");
    let s = stride();
    let mut one = |x: f32| w.see(x, exact::exp(x), reference(libm::exp(exact::flush(x) as f64)));
    // Every exponent where exp is neither 1 nor saturated: |x| in [2^-25, 104].
    sweep(0x3300_0000, 0x42d0_0000, s, &mut one);
    sweep(0xb300_0000, 0xc2d0_0000, s, &mut one);
    for x in edge_cases() {
        one(x);
    }
    check(&w, 1);
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn ln_is_within_its_bound_of_the_correctly_rounded_value() {
    let mut w = Worst::new("ln");
    let s = stride();
    let mut one = |x: f32| w.see(x, exact::ln(x), reference(libm::log(exact::flush(x) as f64)));
    sweep(MIN_NORMAL, 0x7f7f_ffff, s, &mut one);
    // Near 1, where the result is small and cancellation would show.
    sweep(0x3f70_0000, 0x3f88_0000, 1, &mut one);
    for x in edge_cases() {
        one(x);
    }
    check(&w, 1);
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn tanh_is_within_its_bound_of_the_correctly_rounded_value() {
    let mut w = Worst::new("tanh");
    let s = stride();
    let mut one = |x: f32| w.see(x, exact::tanh(x), reference(libm::tanh(exact::flush(x) as f64)));
    sweep(MIN_NORMAL, 0x4130_0000, s, &mut one);
    sweep(0x8000_0000 | MIN_NORMAL, 0xc130_0000, s, &mut one);
    // Around the branch points 2^-13, 0.625 and 10, every f32.
    for c in [0x3900_0000u32, 0x3f20_0000, 0x4120_0000] {
        sweep(c - 4096, c + 4096, 1, &mut one);
    }
    for x in edge_cases() {
        one(x);
    }
    check(&w, 1);
}

#[cfg(not(target_arch = "wasm32"))]
fn edge_cases() -> Vec<f32> {
    let mut v = vec![
        0.0,
        -0.0,
        f32::from_bits(1),
        f32::from_bits(0x007f_ffff),
        f32::from_bits(0x8000_0001),
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        1.0,
        -1.0,
        0.5,
        2.0,
        88.72283,
        88.72284,
        89.0,
        -87.33654,
        -87.33655,
        -103.97208,
        -104.0,
        -1e30,
        1e-30,
        3e38,
        0.625,
        -0.625,
        10.0,
        -10.0,
        9.0,
        1.0 / 8192.0,
    ];
    // The exp overflow and underflow thresholds, every f32 around them.
    for c in [0x42b1_7218u32, 0xc2ae_ac50, 0xc2ae_ac4f] {
        for d in 0..64 {
            v.push(f32::from_bits(c - 32 + d));
        }
    }
    v
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn division_is_correctly_rounded_and_the_fast_path_equals_the_integer_one() {
    // Random operands over the whole exponent range, plus quotients at the
    // bottom and top of the normal range.
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut worst = Worst::new("div");
    let n = 4_000_000 / stride().max(1) as usize * 61;
    for i in 0..n.max(100_000) {
        let r = next();
        let (mut a, mut b) = (f32::from_bits(r as u32), f32::from_bits((r >> 32) as u32));
        if i % 4 == 1 {
            // Quotients near 2^-126 and near the overflow threshold.
            let sa = (r as u32 & 0x807f_ffff) | (((r >> 40) as u32 % 8 + 1) << 23);
            a = f32::from_bits(sa);
            b = f32::from_bits(((r >> 32) as u32 & 0x807f_ffff) | (((r >> 50) as u32 % 8 + 127) << 23));
            if i % 8 == 5 {
                std::mem::swap(&mut a, &mut b);
                a = f32::from_bits((a.to_bits() & 0x807f_ffff) | (((r >> 56) as u32 % 8 + 247) << 23));
            }
        }
        let fast = exact::div(a, b);
        let slow = exact::div_integer(a, b);
        assert_eq!(
            fast.to_bits(),
            slow.to_bits(),
            "div({a:e}, {b:e}): fast path 0x{:08x}, integer 0x{:08x}",
            fast.to_bits(),
            slow.to_bits()
        );
        let want = reference(exact::flush(a) as f64 / exact::flush(b) as f64);
        worst.see(a, slow, want);
    }
    // Exact quotients, signs and the special cases of the spec.
    for (a, b, want) in [
        (1.0f32, 3.0f32, 1.0f32 / 3.0),
        (-6.0, 3.0, -2.0),
        (6.0, -3.0, -2.0),
        (0.0, 5.0, 0.0),
        (-0.0, 5.0, 0.0),
        (5.0, f32::INFINITY, 0.0),
        (f32::INFINITY, -2.0, f32::NEG_INFINITY),
        (-3.0, 0.0, f32::NEG_INFINITY),
        (3.0, -0.0, f32::INFINITY),
        (3.0, f32::from_bits(1), f32::INFINITY),
        (f32::MAX, 0.5, f32::INFINITY),
        (f32::MIN_POSITIVE, 2.0, 0.0),
        (f32::MIN_POSITIVE, 1.0, f32::MIN_POSITIVE),
    ] {
        assert_eq!(exact::div(a, b).to_bits(), want.to_bits(), "div({a:e}, {b:e})");
        assert_eq!(exact::div_integer(a, b).to_bits(), want.to_bits(), "div_integer({a:e}, {b:e})");
    }
    for (a, b) in [(0.0f32, 0.0f32), (f32::INFINITY, f32::INFINITY), (f32::NAN, 1.0), (1.0, f32::NAN)] {
        assert_eq!(exact::div(a, b).to_bits(), exact::NAN_BITS, "div({a:e}, {b:e})");
    }
    check(&worst, 0);
}

/// FNV-1a (64-bit) over the result bits of exp, ln, tanh and div on every
/// f32 bit pattern at a stride (NaNs, infinities and subnormals included),
/// and of add, sub, mul on finite pairs (their NaN payloads are left open).
fn digest() -> (u64, usize) {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |v: f32| {
        for byte in v.to_bits().to_le_bytes() {
            h = (h ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
        }
    };
    let mut n = 0;
    for b in (0..=u32::MAX).step_by(4099) {
        let x = f32::from_bits(b);
        let y = f32::from_bits(b.rotate_left(11));
        eat(exact::exp(x));
        eat(exact::ln(x));
        eat(exact::tanh(x));
        eat(exact::div(x, y));
        if x.is_finite() && y.is_finite() {
            eat(exact::add(x, y));
            eat(exact::sub(x, y));
            eat(exact::mul(x, y));
        }
        n += 1;
    }
    (h, n)
}

/// The digest of this kernel version's functions. Native x86-64 computed it;
/// wasm must give the same. It changes only when the arithmetic does (then
/// the kernel version must be bumped): print it with
/// `cargo test --release --test exact_math digest -- --nocapture`.
const DIGEST: u64 = 0xccbe_00be_a716_13be;

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn digest_of_the_pinned_functions_is_the_native_one() {
    let (h, n) = digest();
    let line = format!("exact digest over {n} inputs: 0x{h:016x}");
    #[cfg(target_arch = "wasm32")]
    web_sys::console::log_1(&format!("{line} in {}", reprolab::platform::user_agent()).into());
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{line}");
    assert_eq!(h, DIGEST, "{line}: differs from the recorded 0x{DIGEST:016x}");
}

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// Cost per call against `libm` (and the hardware division), contenders
/// interleaved round by round, the median of the rounds reported. Timing on a
/// shared machine is noisy: figures, never assertions.
/// `cargo test --release --test exact_math cost -- --ignored --nocapture`
#[cfg(not(target_arch = "wasm32"))]
#[test]
#[ignore = "a benchmark: prints figures"]
fn cost_per_call_against_libm() {
    use std::hint::black_box;
    use std::time::Instant;
    const N: usize = 4096;
    let lerp = |i: usize, lo: f32, hi: f32| lo + (hi - lo) * (i as f32 / N as f32);
    let xs_exp: Vec<f32> = (0..N).map(|i| lerp(i, -20.0, 5.0)).collect();
    let xs_ln: Vec<f32> = (0..N).map(|i| lerp(i, 0.01, 30.0)).collect();
    let xs_tanh: Vec<f32> = (0..N).map(|i| lerp(i, -4.0, 4.0)).collect();
    let ys: Vec<f32> = (0..N).map(|i| lerp(i, 1.0, 10.0)).collect();
    type Unary = (&'static str, fn(f32) -> f32, &'static [f32]);
    let xe: &'static [f32] = xs_exp.leak();
    let xl: &'static [f32] = xs_ln.leak();
    let xt: &'static [f32] = xs_tanh.leak();
    let yd: &'static [f32] = ys.leak();
    let unary: [Unary; 6] = [
        ("exact::exp", exact::exp, xe),
        ("libm::expf", libm::expf, xe),
        ("exact::ln", exact::ln, xl),
        ("libm::logf", libm::logf, xl),
        ("exact::tanh", exact::tanh, xt),
        ("libm::tanhf", libm::tanhf, xt),
    ];
    type Binary = (&'static str, fn(f32, f32) -> f32);
    let binary: [Binary; 3] =
        [("exact::div", exact::div), ("exact::div_integer", exact::div_integer), ("hardware a / b", |a, b| a / b)];
    let rounds = 41;
    let mut times = vec![vec![]; unary.len() + binary.len()];
    for _ in 0..rounds {
        for (k, (_, f, xs)) in unary.iter().enumerate() {
            let t = Instant::now();
            let mut acc = 0.0f32;
            for &x in black_box(*xs) {
                acc += f(black_box(x));
            }
            black_box(acc);
            times[k].push(t.elapsed().as_secs_f64() * 1e9 / N as f64);
        }
        for (k, (_, f)) in binary.iter().enumerate() {
            let t = Instant::now();
            let mut acc = 0.0f32;
            for (&x, &y) in black_box(xt).iter().zip(black_box(yd)) {
                acc += f(black_box(x), black_box(y));
            }
            black_box(acc);
            times[unary.len() + k].push(t.elapsed().as_secs_f64() * 1e9 / N as f64);
        }
    }
    let names: Vec<&str> = unary.iter().map(|u| u.0).chain(binary.iter().map(|b| b.0)).collect();
    eprintln!("ns per call, median of {rounds} interleaved rounds of {N} calls (shared, noisy machine):");
    for (name, mut t) in names.into_iter().zip(times) {
        t.sort_by(f64::total_cmp);
        eprintln!("  {name:20} {:6.2} ns (min {:.2}, max {:.2})", t[t.len() / 2], t[0], t[t.len() - 1]);
    }
}
