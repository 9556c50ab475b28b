//! The `exact` level on the GPU: the start-up probe's judge (fed wrong
//! answers, it refuses the named check), the probe on this machine's device,
//! and the pinned functions of `shaders/lib_exact.wgsl` against their CPU
//! twins in `reprolab::exact`, bit for bit. Natively on lavapipe here; run
//! again with VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json for
//! SwiftShader; `wasm-pack test --chrome` / `--firefox` runs the same bodies
//! on WebGPU (Dawn on SwiftShader, wgpu on lavapipe). The GPU tests FAIL,
//! never skip, without an adapter.

use reprolab::exact::{self, Func, Op, PROBE};
use reprolab::gpu::Gpu;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[cfg(not(target_arch = "wasm32"))]
fn log(s: String) {
    eprintln!("{s}");
}

#[cfg(target_arch = "wasm32")]
fn log(s: String) {
    web_sys::console::log_1(&s.into());
}

async fn gpu() -> Gpu {
    match Gpu::open().await {
        Ok(g) => {
            log(format!("GPU: {:?} ({})", g.adapter, reprolab::platform::user_agent()));
            g
        }
        Err(e) => panic!("no GPU for the GPU tests ({e}); install mesa-vulkan-drivers (lavapipe): make test does"),
    }
}

fn index(check: &str, op: Op) -> usize {
    PROBE.iter().position(|c| c.check == check && c.op == op).expect("a case of that check")
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn the_judge_accepts_the_cpu_answers() {
    let cpu = exact::cpu_answers();
    assert_eq!(exact::judge(&cpu, &cpu), Ok(()));
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn the_judge_refuses_a_fused_product() {
    let cpu = exact::cpu_answers();
    let mut gpu = cpu.clone();
    let i = index("fusion", Op::MulAdd);
    let c = PROBE[i];
    let (a, b, z) = (f32::from_bits(c.a), f32::from_bits(c.b), f32::from_bits(c.c));
    // What a device that fused the fenced a*b+c would answer.
    let fused = a.mul_add(b, z).to_bits();
    assert_ne!(fused, cpu[i], "the case must tell fused from unfused");
    gpu[i] = fused;
    let e = exact::judge(&cpu, &gpu).unwrap_err();
    log(format!("refused: {e}"));
    assert_eq!(e.check, "fusion");
    assert!(e.detail.contains(&format!("0x{fused:08x}")), "{e}");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn the_judge_refuses_a_flushed_subnormal() {
    let cpu = exact::cpu_answers();
    // A device that flushes at or below the smallest normal: 2^-63 * 2^-63.
    let i = PROBE.iter().position(|c| c.check == "subnormals" && c.what.starts_with("2^-63 * 2^-63")).unwrap();
    assert_eq!(cpu[i], 0x0080_0000);
    let mut gpu = cpu.clone();
    gpu[i] = 0;
    let e = exact::judge(&cpu, &gpu).unwrap_err();
    log(format!("refused: {e}"));
    assert_eq!(e.check, "subnormals");
    // A subnormal result left unflushed (or a -0) is refused as well.
    let j = index("subnormals", Op::Sub);
    let mut gpu = cpu.clone();
    gpu[j] = 0x0020_0000;
    assert_eq!(exact::judge(&cpu, &gpu).unwrap_err().check, "subnormals");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn the_judge_refuses_a_folded_two_sum_a_wrong_function_and_a_short_answer() {
    let cpu = exact::cpu_answers();
    let mut gpu = cpu.clone();
    let i = index("reassociation", Op::TwoSumErr);
    assert_ne!(cpu[i], 0);
    gpu[i] = 0;
    assert_eq!(exact::judge(&cpu, &gpu).unwrap_err().check, "reassociation");
    let mut gpu = cpu.clone();
    let i = index("functions", Op::Exp);
    gpu[i] ^= 1;
    assert_eq!(exact::judge(&cpu, &gpu).unwrap_err().check, "functions");
    let mut gpu = cpu.clone();
    let i = index("conversions", Op::F32ToI32);
    gpu[i] = gpu[i].wrapping_sub(1);
    assert_eq!(exact::judge(&cpu, &gpu).unwrap_err().check, "conversions");
    assert_eq!(exact::judge(&cpu, &cpu[1..]).unwrap_err().check, "probe");
    // Record-only cases never refuse: a device that fuses unfenced code passes.
    let mut gpu = cpu.clone();
    for (k, c) in PROBE.iter().enumerate() {
        if !c.required {
            gpu[k] = !gpu[k];
        }
    }
    assert_eq!(exact::judge(&cpu, &gpu), Ok(()));
}

async fn probe_passes(g: &Gpu) {
    let cpu = exact::cpu_answers();
    let got = reprolab::gpu::probe::exact_answers(g).await.unwrap();
    for line in exact::device_notes(&cpu, &got) {
        log(format!("device: {line}"));
    }
    if let Err(e) = exact::judge(&cpu, &got) {
        panic!("exact: not available on this adapter ({}): {e}", g.adapter.description);
    }
    assert_eq!(reprolab::gpu::probe::exact_probe(g).await, Ok(()));
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn the_probe_passes_on_this_device() {
    pollster::block_on(async { probe_passes(&gpu().await).await });
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen_test::wasm_bindgen_test]
async fn the_probe_passes_on_this_webgpu_device() {
    probe_passes(&gpu().await).await;
}

/// A xorshift stream for operands.
struct Bits(u64);

impl Bits {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Every f32 with bits in lo..=hi spread over `n` inputs, both signs.
fn strided(lo: u32, hi: u32, n: u32) -> Vec<f32> {
    let step = ((hi - lo) / n.max(1)).max(1);
    (lo..=hi).step_by(step as usize).flat_map(|b| [f32::from_bits(b), f32::from_bits(b | 0x8000_0000)]).collect()
}

fn specials() -> Vec<f32> {
    let mut v: Vec<f32> = [
        0u32,
        0x8000_0000,
        1,
        0x007f_ffff,
        0x8000_0001,
        0x0080_0000,
        0x7f7f_ffff,
        0xff7f_ffff,
        0x7f80_0000,
        0xff80_0000,
        0x7fc0_0000,
        0x3300_0000,
        0x3900_0000,
        0x3f20_0000,
        0x4120_0000,
        0x42b2_0000,
        0x42d0_0000,
        0xc2d0_0000,
    ]
    .iter()
    .map(|&b| f32::from_bits(b))
    .collect();
    for c in [0x42b1_7218u32, 0xc2ae_ac50, 0x3f80_0000, 0x3f35_04f3, 0x3900_0000, 0x3f20_0000, 0x4120_0000] {
        v.extend((c - 64..c + 64).map(f32::from_bits));
    }
    v
}

fn inputs(func: Func, n: u32) -> (Vec<f32>, Vec<f32>) {
    let mut r = Bits(0x9e37_79b9_7f4a_7c15 ^ func as u64);
    match func {
        Func::Exp => (strided(0x3300_0000, 0x42d0_0000, n / 2).into_iter().chain(specials()).collect(), vec![]),
        Func::Ln => (strided(0x0080_0000, 0x7f7f_ffff, n / 2).into_iter().chain(specials()).collect(), vec![]),
        Func::Tanh => (strided(0x3900_0000, 0x4120_0000, n / 2).into_iter().chain(specials()).collect(), vec![]),
        Func::Div => {
            // Any bit patterns (specials and subnormals included), and
            // quotients near both ends of the normal range.
            let (mut a, mut b) = (vec![], vec![]);
            for i in 0..n {
                let x = r.next();
                let (mut p, mut q) = (x as u32, (x >> 32) as u32);
                if i % 2 == 1 {
                    let ea = ((x >> 40) as u32 % 12 + if i % 4 == 1 { 1 } else { 243 }) << 23;
                    p = (p & 0x807f_ffff) | ea;
                    q = (q & 0x807f_ffff) | (((x >> 50) as u32 % 12 + 121) << 23);
                }
                a.push(f32::from_bits(p));
                b.push(f32::from_bits(q));
            }
            (a, b)
        }
        Func::Add | Func::Sub | Func::Mul => {
            // Operands 0 or at least 2^-63 in magnitude (the rule for mul),
            // with exponents that put many results near 2^-126 and some
            // subnormal ones, flushed by the library.
            let (mut a, mut b) = (vec![], vec![]);
            for i in 0..n {
                let x = r.next();
                let low = i % 2 == 0;
                let e = |k: u32| {
                    if low {
                        if func == Func::Mul {
                            64 + k % 8
                        } else {
                            1 + k % 4
                        }
                    } else {
                        1 + k % 253
                    }
                };
                let p = (x as u32 & 0x807f_ffff) | (e((x >> 40) as u32) << 23);
                let q = ((x >> 32) as u32 & 0x807f_ffff) | (e((x >> 48) as u32) << 23);
                a.push(f32::from_bits(p));
                b.push(f32::from_bits(q));
            }
            (a, b)
        }
        Func::MulGrid | Func::AddGrid | Func::Tiny => {
            // Grid values: operands of mulg are tiny()-ed, those of addg are
            // products of tiny()-ed values, small ones often, so that many
            // sums cancel down to the bottom of the grid (2^-125).
            let (mut a, mut b) = (vec![], vec![]);
            let mut draw = |low: bool| {
                let x = r.next();
                let e = if low { 70 + (x >> 40) as u32 % 12 } else { 1 + (x >> 40) as u32 % 253 };
                exact::tiny(f32::from_bits((x as u32 & 0x807f_ffff) | (e << 23)))
            };
            for i in 0..n {
                let low = i % 4 != 3;
                match func {
                    Func::MulGrid => {
                        a.push(draw(low));
                        b.push(draw(low));
                    }
                    Func::AddGrid => {
                        let p = draw(low) * draw(low);
                        let mut q = draw(low) * draw(low);
                        if i % 3 == 0 && p != 0.0 {
                            // A few grid steps from -p: the sum cancels.
                            q = f32::from_bits((p.to_bits() ^ 0x8000_0000) + i % 5);
                        }
                        a.push(p);
                        b.push(q);
                    }
                    _ => {
                        let x = draw(false).to_bits() ^ (i << 9);
                        a.push(f32::from_bits(x));
                        b.push(0.0);
                    }
                }
            }
            (a, b)
        }
    }
}

async fn parity(g: &Gpu, n: u32) {
    let mut failures = vec![];
    for func in Func::ALL {
        let (a, b) = inputs(func, n);
        let got = reprolab::gpu::probe::exact_eval(g, func, &a, &b).await.unwrap();
        let second = |i: usize| b.get(i).copied().unwrap_or(0.0);
        let mut differ = 0usize;
        let mut first = None;
        for (i, (x, y)) in a.iter().zip(&got).enumerate() {
            let want = func.cpu(*x, second(i));
            if want.to_bits() != y.to_bits() {
                differ += 1;
                first.get_or_insert((i, want, *y));
            }
        }
        // How many results sit at the bottom of the normal range, where the
        // stacks' subnormal handling differs (so the comparison is not idle).
        let low = got.iter().filter(|v| **v != 0.0 && v.abs() < 2f32.powi(-100)).count();
        match first {
            None => log(format!(
                "{}: {} inputs ({low} results nonzero below 2^-100), GPU = CPU bit for bit",
                func.name(),
                a.len()
            )),
            Some((i, want, y)) => {
                let line = format!(
                    "{}: {differ} of {} inputs differ; first: x = {:e} (0x{:08x}), b = 0x{:08x}: CPU 0x{:08x}, GPU 0x{:08x}",
                    func.name(),
                    a.len(),
                    a[i],
                    a[i].to_bits(),
                    second(i).to_bits(),
                    want.to_bits(),
                    y.to_bits()
                );
                log(line.clone());
                failures.push(line);
            }
        }
    }
    assert!(failures.is_empty(), "on {}: {}", g.adapter.description, failures.join("; "));
}

/// `EXACT_GPU_SWEEP=N` sets the inputs per function (default 2^20).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn the_pinned_functions_equal_the_cpu_bit_for_bit_on_the_gpu() {
    let n: u32 = std::env::var("EXACT_GPU_SWEEP").ok().and_then(|s| s.parse().ok()).unwrap_or(1 << 20);
    pollster::block_on(async { parity(&gpu().await, n).await });
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen_test::wasm_bindgen_test]
async fn the_pinned_functions_equal_the_cpu_bit_for_bit_on_webgpu() {
    parity(&gpu().await, 1 << 18).await;
}

/// The rules of docs/EXACT.md for kernels that include lib_exact.wgsl,
/// checked on the source: the fence's zero is set, and no float division or
/// loosely specified builtin appears (the probe kernel's record-only cases
/// excepted).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn exact_kernels_set_the_fence_and_use_no_loose_builtins() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
    let lib = std::fs::read_to_string(format!("{dir}/lib_exact.wgsl")).unwrap();
    let mut kernels = vec![("lib_exact.wgsl".to_string(), lib)];
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.starts_with("exact_") {
            let src = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
            assert!(src.contains("ex_init(dims."), "{name} includes lib_exact but never sets the fence's zero");
            if name != "exact_probe.wgsl" {
                kernels.push((name, src));
            }
        }
    }
    assert!(kernels.len() >= 2);
    for (name, src) in kernels {
        let code: String = src.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
        for bad in
            ["fma(", "mix(", "dot(", "sqrt(", "inverseSqrt(", "pow(", " exp(", " log(", " tanh(", "exp2(", "log2("]
        {
            assert!(!code.contains(bad), "{name} uses {bad}");
        }
        assert!(!code.contains(" / "), "{name} divides");
    }
}
