//! The pinned functions of `reprolab::exact` against correctly rounded
//! references (f64 `libm` rounded to f32, then flushed as the exact level
//! flushes), over every f32 of the relevant ranges at a stride plus the edge
//! cases; the maximum ULP error of each is printed and bounded.
//!
//! `EXACT_SWEEP_STRIDE=1 cargo test --release --test exact_math -- --nocapture`
//! sweeps every f32 (minutes); the default stride keeps the test short.
#![cfg(not(target_arch = "wasm32"))]

use reprolab::exact;

const MIN_NORMAL: u32 = 0x0080_0000;

/// The position of `x` on the flushed number line: subnormals do not exist
/// at the exact level, so +0 and 2^-126 are neighbours (1 ULP apart).
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
fn ulps(a: f32, b: f32) -> u64 {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => 0,
        (false, false) => (key(a) - key(b)).unsigned_abs(),
        _ => u64::MAX,
    }
}

/// The correctly rounded f32 of an f64, as the exact level sees it: values
/// that round to a subnormal become +0 (and -0 becomes +0).
fn reference(v: f64) -> f32 {
    exact::flush(v as f32)
}

fn stride() -> u32 {
    std::env::var("EXACT_SWEEP_STRIDE").ok().and_then(|s| s.parse().ok()).unwrap_or(61)
}

struct Worst {
    name: &'static str,
    max: u64,
    at: f32,
    got: f32,
    want: f32,
    count: u64,
    over_half: u64,
}

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

fn check(w: &Worst, bound: u64) {
    eprintln!("{}", w.report());
    assert!(w.max <= bound, "{}", w.report());
}

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
    check(&w, 2);
}

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
