//! Per-kernel parity with the CPU engine, shared by the native GPU tests
//! (tests/gpu.rs, on lavapipe and SwiftShader) and the browser ones
//! (tests/web_gpu.rs, Dawn and wgpu): the same code, awaited natively through
//! pollster and in the browser through its event loop. Prints the maximum
//! ULP distance of every float kernel; asserts bit-exactness where the
//! arithmetic is fully specified and a bound elsewhere.
#![allow(dead_code)]

use reprolab::gpu::{probe, Gpu};
use reprolab::model;
use reprolab::rng::{Stream, StreamRng};
use reprolab::spec::GpuReduction;

pub fn random(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut r = StreamRng::new(Stream::Data, seed);
    let r = r.reader(0, 0);
    (0..n).map(|_| (r.unit_f32() * 2.0 - 1.0) * scale).collect()
}

pub fn ulps(a: f32, b: f32) -> u32 {
    let key = |x: f32| {
        let i = x.to_bits() as i32;
        if i < 0 {
            i32::MIN - i
        } else {
            i
        }
    };
    (key(a) as i64 - key(b) as i64).unsigned_abs() as u32
}

/// Shapes: 1, the workgroup/tile size, one off it, and many workgroups.
pub const SHAPES: [(usize, usize, usize); 6] =
    [(1, 1, 1), (16, 16, 16), (17, 15, 17), (64, 64, 10), (33, 130, 65), (200, 64, 128)];

/// Whether `g` fuses a multiply and an add into one rounding (as FMA) in the
/// plain WGSL arithmetic of the run-to-run level, told by its own matmul
/// kernel: `1 x -(1 + 2^-11) + (1 + 2^-12)^2` is 0 with the product rounded
/// first and 2^-24 fused. NVIDIA's Vulkan driver fuses; lavapipe and
/// SwiftShader do not. (The `exact` level's prelude forbids it either way.)
pub async fn fuses_multiply_add(g: &Gpu) -> bool {
    let a = [1.0f32, f32::from_bits(0x3f80_0800)];
    let w = [-f32::from_bits(0x3f80_1000), f32::from_bits(0x3f80_0800)];
    probe::matmul(g, &a, &w, 1, 2, 1).await.unwrap()[0] != 0.0
}

/// The largest `|x - y|` over the elements in units of `2^-24 x scale` (the
/// rounding of a term of that magnitude): what a fused multiply-add can move
/// a result by is a few of these per term, however close to zero the result
/// lands (where a ULP bound would explode).
fn fused_excess(x: &[f32], y: &[f32], scale: &[f32]) -> f64 {
    assert!(x.len() == y.len() && y.len() == scale.len());
    let unit = |s: f32| (s as f64 * 2f64.powi(-24)).max(f64::MIN_POSITIVE);
    x.iter().zip(y).zip(scale).map(|((a, b), s)| (*a as f64 - *b as f64).abs() / unit(*s)).fold(0.0, f64::max)
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

pub async fn matrix_kernels(g: &Gpu, log: &dyn Fn(String)) {
    let fuses = fuses_multiply_add(g).await;
    let said = if fuses { "yes: bounds in the terms' magnitudes, not ULP" } else { "no" };
    log(format!("multiply-adds fused in plain WGSL: {said}"));
    for (rows, k, n) in SHAPES {
        let a = random(1, rows * k, 1.0);
        let w = random(2, k * n, 1.0);
        let d = random(3, rows * n, 1.0);
        let mut cpu = vec![0.0f32; rows * n];
        model::matmul_bias(&a, &w, &vec![0.0; n], rows, k, n, &mut cpu);
        let gpu_mm = probe::matmul(g, &a, &w, rows, k, n).await.unwrap();
        let max = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(a, b)| ulps(*a, *b)).max().unwrap_or(0);
        // The weight gradient in both engine versions' row orders (1:
        // ascending, 2: descending): each must match its own CPU order.
        // With fusion: each output's distance in units of its terms'
        // magnitude (the same kernel on |operands|).
        let mut scale = vec![0.0f32; rows * n];
        model::matmul_bias(&abs(&a), &abs(&w), &vec![0.0; n], rows, k, n, &mut scale);
        let mut e = vec![fused_excess(&gpu_mm, &cpu, &scale)];
        let mut u2 = [0u32; 2];
        for (i, order) in [model::RowOrder::Ascending, model::RowOrder::Descending].into_iter().enumerate() {
            let mut cpu_gw = vec![0.0f32; k * n];
            let mut cpu_gb = vec![0.0f32; n];
            model::grad_weights(&a, &d, rows, k, n, &mut cpu_gw, &mut cpu_gb, order);
            let descending = order == model::RowOrder::Descending;
            let gpu_gw = probe::matmul_grad(g, &a, &d, rows, k, n, GpuReduction::Fixed, descending).await.unwrap();
            u2[i] = max(&cpu_gw, &gpu_gw);
            let mut scale = vec![0.0f32; k * n];
            model::grad_weights(&abs(&a), &abs(&d), rows, k, n, &mut scale, &mut cpu_gb, order);
            e.push(fused_excess(&gpu_gw, &cpu_gw, &scale));
        }
        let mut cpu_bp = vec![0.0f32; rows * k];
        model::backprop(&d, &w, rows, k, n, &mut cpu_bp);
        let gpu_bp = probe::backprop(g, &d, &w, rows, k, n).await.unwrap();
        let mut scale = vec![0.0f32; rows * k];
        model::backprop(&abs(&d), &abs(&w), rows, k, n, &mut scale);
        e.push(fused_excess(&gpu_bp, &cpu_bp, &scale));
        let (u1, u3) = (max(&cpu, &gpu_mm), max(&cpu_bp, &gpu_bp));
        log(format!(
            "shape rows={rows} k={k} n={n}: max ULP vs CPU: matmul {u1}, grad v1 {}, grad v2 {}, backprop {u3}; \
             in 2^-24 x the terms' magnitude: {:.1} / {:.1} / {:.1} / {:.1}",
            u2[0], u2[1], e[0], e[1], e[2], e[3]
        ));
        // The order is the CPU's; only fusion or rounding differences remain:
        // unfused, a few ULP; fused, at most one rounding of the terms'
        // magnitude per term (a sum in another order would usually land
        // farther, but only the `exact` parity proves the order there).
        let terms = [k, rows, rows, n];
        for (i, (name, u)) in
            [("matmul", u1), ("grad v1", u2[0]), ("grad v2", u2[1]), ("backprop", u3)].into_iter().enumerate()
        {
            if fuses {
                let bound = 2.0 * (terms[i] + 1) as f64;
                assert!(e[i] <= bound, "{name} at {rows}x{k}x{n}: {:.1} x 2^-24 of the terms' magnitude from the CPU (fused: at most {bound})", e[i]);
            } else {
                assert!(u <= 64, "{name} at {rows}x{k}x{n}: {u} ULP from the CPU: the summation order is off");
            }
        }
    }
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn u32s(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn back(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn dims(rows: usize, k: usize, n: usize, mode: u32, offs: [u32; 4], f: [f32; 4], u: [u32; 4]) -> [u32; 16] {
    [
        rows as u32,
        k as u32,
        n as u32,
        mode,
        offs[0],
        offs[1],
        offs[2],
        offs[3],
        f[0].to_bits(),
        f[1].to_bits(),
        f[2].to_bits(),
        f[3].to_bits(),
        u[0],
        u[1],
        u[2],
        u[3],
    ]
}

fn max_ulps(a: &[f32], b: &[f32]) -> u32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| ulps(*x, *y)).max().unwrap_or(0)
}

/// Every element-wise and reduction kernel against the CPU engine's
/// arithmetic, at shapes of 1, the workgroup size, one off it and many
/// workgroups: the maximum ULP distance is printed; kernels without
/// transcendental functions must be within a few ULP (fusion at most),
/// those with exp/log/tanh within the GPU's documented looseness.
pub async fn every_kernel(g: &Gpu, log: &dyn Fn(String)) {
    use probe::Binding::{Storage, Uniform};
    // A multiply-add fused into one rounding (NVIDIA) moves a result by a
    // few roundings of its terms, which is many ULP where they cancel: the
    // kernels with multiply-adds are then held to that instead.
    let fuses = fuses_multiply_add(g).await;
    log(format!("multiply-adds fused in plain WGSL: {}", if fuses { "yes" } else { "no" }));
    let wg = reprolab::spec::GPU_WG as usize;
    for (rows, n) in [(1usize, 1usize), (1, wg), (3, wg + 1), (33, 130)] {
        let z = random(21, rows * n, 3.0);
        let bias = random(22, n, 1.0);
        // bias + ReLU (mode 1) and bias + tanh (mode 2).
        for mode in [1u32, 2] {
            let out = probe::kernel(
                g,
                "bias_activation",
                dims(rows, 0, n, mode, [0; 4], [0.0; 4], [0; 4]),
                vec![Storage(f32s(&bias)), Storage(f32s(&z))],
                (rows * n, 1),
            )
            .await
            .unwrap();
            let want: Vec<f32> = z
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let x = v + bias[i % n];
                    if mode == 1 {
                        if x > 0.0 {
                            x
                        } else {
                            0.0
                        }
                    } else {
                        libm::tanhf(x)
                    }
                })
                .collect();
            let u = max_ulps(&back(&out[2]), &want);
            log(format!("bias_activation mode {mode} {rows}x{n}: max {u} ULP"));
            assert!(if mode == 1 { u == 0 } else { u <= 1024 }, "bias_activation mode {mode}: {u} ULP");
        }
        // Softmax cross-entropy: losses and gradient.
        let classes = n.clamp(2, 10);
        let logits = random(23, rows * classes, 4.0);
        let labels: Vec<u32> = (0..rows).map(|r| (r % classes) as u32).collect();
        let inv = 1.0 / rows as f32;
        let out = probe::kernel(
            g,
            "softmax_xent",
            dims(rows, 0, classes, 1, [0; 4], [inv, 0.0, 0.0, 0.0], [0; 4]),
            vec![
                Storage(f32s(&logits)),
                Storage(u32s(&labels)),
                Storage(f32s(&vec![0.0; rows])),
                Storage(f32s(&vec![0.0; rows * classes])),
            ],
            (rows, 1),
        )
        .await
        .unwrap();
        let mut cpu_grad = logits.clone();
        let mut cpu_loss = vec![0.0f32; rows];
        let labels8: Vec<u8> = labels.iter().map(|&l| l as u8).collect();
        model::softmax_xent(&mut cpu_grad, &labels8, classes, Some(inv), &mut cpu_loss);
        let (ul, ug) = (max_ulps(&back(&out[3]), &cpu_loss), max_ulps(&back(&out[4]), &cpu_grad));
        log(format!("softmax_xent {rows}x{classes}: losses max {ul} ULP, gradient max {ug} ULP"));
        assert!(ul <= 1024 && ug <= 1024, "softmax_xent: {ul} / {ug} ULP");
        // Bias gradient and the batch loss sum, in both engine versions' row
        // orders (mode 0: ascending, version 1; mode 1: descending, version 2).
        let d = random(24, rows * n, 1.0);
        let losses = random(25, rows, 2.0).iter().map(|v| v.abs()).collect::<Vec<f32>>();
        for (mode, order) in [(0u32, model::RowOrder::Ascending), (1, model::RowOrder::Descending)] {
            let out = probe::kernel(
                g,
                "bias_grad",
                dims(rows, 0, n, mode, [0; 4], [0.0; 4], [0; 4]),
                vec![Storage(f32s(&d)), Storage(f32s(&vec![0.0; n]))],
                (n, 1),
            )
            .await
            .unwrap();
            let mut cpu_gw = vec![0.0f32; n];
            let mut cpu_gb = vec![0.0f32; n];
            model::grad_weights(&vec![0.0; rows], &d, rows, 1, n, &mut cpu_gw, &mut cpu_gb, order);
            let u = max_ulps(&back(&out[2]), &cpu_gb);
            log(format!("bias_grad mode {mode} {rows}x{n}: max {u} ULP"));
            assert_eq!(u, 0, "bias_grad mode {mode}: a plain sum in a fixed order must be bit-exact");
            let out = probe::kernel(
                g,
                "loss_sum",
                dims(rows, 0, 0, mode, [0; 4], [inv, 0.0, 0.0, 0.0], [0; 4]),
                vec![Uniform(u32s(&[0, 0, 0, 0])), Storage(f32s(&losses)), Storage(f32s(&[0.0; 64]))],
                (1, 1),
            )
            .await
            .unwrap();
            let mut s = 0.0f32;
            let idx: Vec<usize> = if mode == 0 { (0..rows).collect() } else { (0..rows).rev().collect() };
            for i in idx {
                s += losses[i];
            }
            assert_eq!(back(&out[3])[0].to_bits(), (s * inv).to_bits(), "loss_sum mode {mode} {rows}");
        }
        // Activation backward through dropout (ReLU and tanh).
        let gin = random(26, rows * n, 1.0);
        let h = random(27, rows * n, 1.0);
        let mask: Vec<u32> = (0..rows * n).map(|i| u32::from(i % 3 != 0)).collect();
        for mode in [1u32, 2] {
            let out = probe::kernel(
                g,
                "activation_backward",
                dims(rows, 0, n, mode, [0; 4], [1.25, 0.0, 0.0, 0.0], [1, 0, 0, 0]),
                vec![Storage(f32s(&gin)), Storage(f32s(&h)), Storage(u32s(&mask)), Storage(f32s(&vec![0.0; rows * n]))],
                (rows * n, 1),
            )
            .await
            .unwrap();
            let want: Vec<f32> = (0..rows * n)
                .map(|i| {
                    let v = if mask[i] != 0 { gin[i] * 1.25 } else { 0.0 };
                    if mode == 1 {
                        if h[i] > 0.0 {
                            v
                        } else {
                            0.0
                        }
                    } else {
                        v * (1.0 - h[i] * h[i])
                    }
                })
                .collect();
            let u = max_ulps(&back(&out[4]), &want);
            log(format!("activation_backward mode {mode} {rows}x{n}: max {u} ULP"));
            if fuses && mode == 2 {
                // v x (1 - h h): the terms are v and v h h.
                let scale: Vec<f32> = gin.iter().zip(&h).map(|(v, h)| 1.25 * v.abs() * (1.0 + h * h)).collect();
                let e = fused_excess(&back(&out[4]), &want, &scale);
                assert!(e <= 4.0, "activation_backward mode {mode}: {e:.1} x 2^-24 of the terms (fused)");
            } else {
                assert!(u <= 2, "activation_backward mode {mode}: {u} ULP");
            }
        }
        // The optimizer, weights (with decay) and biases (without).
        let p = random(28, rows * n, 1.0);
        let v = random(29, rows * n, 0.1);
        let grad = random(30, rows * n, 0.5);
        for mode in [1u32, 0] {
            let (lr, mu, wd) = (0.05f32, 0.9f32, 0.0001f32);
            let out = probe::kernel(
                g,
                "sgd",
                dims(0, 0, rows * n, mode, [0; 4], [lr, mu, wd, 0.0], [0; 4]),
                vec![Storage(f32s(&grad)), Storage(f32s(&p)), Storage(f32s(&v))],
                (rows * n, 1),
            )
            .await
            .unwrap();
            let (mut wp, mut wv) = (p.clone(), v.clone());
            for i in 0..p.len() {
                let gi = if mode == 1 { grad[i] + wd * wp[i] } else { grad[i] };
                wv[i] = mu * wv[i] + gi;
                wp[i] -= lr * wv[i];
            }
            let (up, uv) = (max_ulps(&back(&out[2]), &wp), max_ulps(&back(&out[3]), &wv));
            log(format!("sgd mode {mode} {}: params max {up} ULP, velocity max {uv} ULP", rows * n));
            if fuses {
                // v' = mu v + g (+ wd p), p' = p - lr v': their terms' magnitudes.
                let sv: Vec<f32> =
                    (0..p.len()).map(|i| (mu * v[i]).abs() + grad[i].abs() + (wd * p[i]).abs()).collect();
                let sp: Vec<f32> = (0..p.len()).map(|i| p[i].abs() + (lr * sv[i]).abs()).collect();
                let (ep, ev) = (fused_excess(&back(&out[2]), &wp, &sp), fused_excess(&back(&out[3]), &wv, &sv));
                log(format!("sgd mode {mode}: in 2^-24 x the terms: params {ep:.1}, velocity {ev:.1} (fused)"));
                assert!(ep <= 8.0 && ev <= 8.0, "sgd: {ep:.1} / {ev:.1} x 2^-24 of the terms (fused)");
            } else {
                assert!(up <= 2 && uv <= 2, "sgd: {up} / {uv} ULP");
            }
        }
    }
}
