//! The GPU backend against the CPU engine, natively (lavapipe here; set
//! VK_ICD_FILENAMES to run it on SwiftShader). These tests FAIL, never skip,
//! when no adapter is found: `make test` installs lavapipe.
//!
//! Bitwise where the arithmetic is fully specified (dropout masks, hashes);
//! a reported maximum ULP distance for float kernels; run-to-run identity of
//! whole training runs; the learning bar.
#![cfg(not(target_arch = "wasm32"))]

#[path = "common/kernels.rs"]
mod kernels;

use reprolab::driver::{new_setup, BackendRequest, Run};
use reprolab::gpu::{probe, Gpu};
use reprolab::hash::{chain_link, weights_hash};
use reprolab::manifest::first_divergence;
use reprolab::rng::{stream_key, Stream, StreamRng};
use reprolab::sources::Source;
use reprolab::spec::BackendKind;
use reprolab::spec::GpuReduction;
use reprolab::{Origin, Settings};

fn gpu() -> Gpu {
    match pollster::block_on(Gpu::open()) {
        Ok(g) => {
            eprintln!("GPU: {:?}", g.adapter);
            g
        }
        Err(e) => panic!("no GPU for the GPU tests ({e}); install mesa-vulkan-drivers (lavapipe): make test does"),
    }
}

use kernels::random;

fn log(s: String) {
    eprintln!("{s}");
}

#[test]
fn matrix_kernels_against_the_cpu_report_ulp_distance() {
    pollster::block_on(kernels::matrix_kernels(&gpu(), &log));
}

/// The register-blocked matrix kernels, staged or not, in several workgroup
/// shapes, give the bits of the reference kernels (one output per
/// invocation, the code before the blocking) on the same adapter: the
/// blocking changes which invocation computes an output, never its sum.
#[test]
fn blocked_matrix_kernels_equal_the_reference_bit_for_bit() {
    use reprolab::gpu::Tiling;
    use reprolab::spec::GpuReduction::Fixed;
    let mut reference = gpu();
    reference.use_reference_matrix_kernels().unwrap();
    let mut g = gpu();
    for tiling in [Tiling::DEFAULT, Tiling::parse("16x16x16").unwrap(), Tiling::parse("8x4x32").unwrap()] {
        g.set_tiling(tiling).unwrap();
        for (rows, k, n) in kernels::SHAPES {
            let (a, w, d) = (random(1, rows * k, 1.0), random(2, k * n, 1.0), random(3, rows * n, 1.0));
            let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<u32>>();
            let both = |f: &dyn Fn(&Gpu) -> Vec<f32>| (bits(f(&reference)), bits(f(&g)));
            let checks = [
                ("matmul", both(&|x| pollster::block_on(probe::matmul(x, &a, &w, rows, k, n)).unwrap())),
                (
                    "grad v1",
                    both(&|x| pollster::block_on(probe::matmul_grad(x, &a, &d, rows, k, n, Fixed, false)).unwrap()),
                ),
                (
                    "grad v2",
                    both(&|x| pollster::block_on(probe::matmul_grad(x, &a, &d, rows, k, n, Fixed, true)).unwrap()),
                ),
                ("backprop", both(&|x| pollster::block_on(probe::backprop(x, &d, &w, rows, k, n)).unwrap())),
            ];
            for (name, (want, got)) in checks {
                assert!(want == got, "{name} {rows}x{k}x{n} tiling {}: bits differ from the reference", tiling.name());
            }
            // The fused epilogue (bias and activation) against the reference
            // matmul followed by bias_activation.wgsl.
            let params: Vec<f32> = w.iter().copied().chain(random(4, n, 1.0)).collect();
            for mode in [reprolab::spec::ACT_NONE, reprolab::spec::ACT_RELU, reprolab::spec::ACT_TANH] {
                let (want, got) =
                    both(&|x| pollster::block_on(probe::matmul_bias_act(x, &a, &params, rows, k, n, mode)).unwrap());
                assert!(
                    want == got,
                    "matmul + bias + activation {mode} {rows}x{k}x{n} tiling {}: bits differ from the reference",
                    tiling.name()
                );
            }
        }
    }
}

#[test]
fn every_kernel_against_the_cpu() {
    pollster::block_on(kernels::every_kernel(&gpu(), &log));
}

#[test]
fn dropout_masks_equal_the_cpu_bit_for_bit() {
    let g = gpu();
    for (seed, step, layer, rows, width, p) in [
        (1u64, 0u32, 0u32, 1usize, 1usize, 0.5f64),
        (1, 7, 0, 32, 128, 0.1),
        (9, 1234, 2, 17, 33, 0.3),
        (3, 5, 1, 64, 257, 0.9),
    ] {
        let key = reprolab::chacha::key_words(&stream_key(Stream::Dropout, seed));
        let threshold = (p * 4_294_967_296.0).round() as u32;
        let got = pollster::block_on(probe::dropout_masks(&g, key, step, layer, rows, width, threshold)).unwrap();
        let mut words = vec![0u32; rows * width];
        StreamRng::new(Stream::Dropout, seed).fill_words(
            ((layer as u64) << reprolab::spec::DROPOUT_LAYER_SHIFT) | step as u64,
            0,
            &mut words,
        );
        for (i, (gm, w)) in got.iter().zip(&words).enumerate() {
            let want = u32::from(*w >= threshold);
            assert_eq!(*gm, want, "seed {seed} step {step} layer {layer}: first mismatch at element {i}");
        }
    }
}

#[test]
fn gpu_weight_hash_equals_the_cpu_hash() {
    let g = gpu();
    for n in [1usize, 1023, 1024, 1025, 9610, 70_000] {
        let params = random(n as u64, n, 3.0);
        let got = pollster::block_on(probe::weights_hash(&g, &params)).unwrap();
        assert_eq!(got, weights_hash(&params), "{n} words");
    }
}

fn settings(steps: usize) -> Settings {
    let mut s = Settings::default();
    s.set("steps", &steps.to_string(), Origin::Override).unwrap();
    s
}

fn gpu_run_of(s: Settings, reduction: GpuReduction) -> Run {
    let free = if reduction == GpuReduction::Atomic { vec![Source::GpuReduction] } else { vec![] };
    let mut t = pollster::block_on(Run::start(new_setup(s, &free).unwrap(), BackendRequest::Gpu))
        .unwrap_or_else(|e| panic!("no GPU for the GPU tests ({e}); install mesa-vulkan-drivers (lavapipe)"));
    assert_eq!(t.backend(), BackendKind::Gpu);
    let steps = t.record.total_steps();
    pollster::block_on(t.advance(usize::MAX)).unwrap();
    assert_eq!(t.record.step, steps);
    t
}

fn gpu_run(steps: usize, reduction: GpuReduction) -> Run {
    gpu_run_of(settings(steps), reduction)
}

#[test]
fn pinned_gpu_runs_are_identical_three_times() {
    let runs: Vec<Run> = (0..3).map(|_| gpu_run(150, GpuReduction::Fixed)).collect();
    for (i, r) in runs.iter().enumerate().skip(1) {
        if let Some(step) = first_divergence(&runs[0].record.hash_chain, &r.record.hash_chain) {
            panic!("run {i} parts from run 0 at step {step}");
        }
    }
    // The GPU's own hash of its weights (in the last link) equals the CPU's
    // hash function applied to the weights read back.
    let t = &runs[0];
    let n = t.record.hash_chain.len();
    let gpu_params = t.params().to_vec();
    assert_eq!(chain_link(t.record.hash_chain[n - 2], weights_hash(&gpu_params)), t.record.hash_chain[n - 1]);
}

#[test]
fn gpu_training_reaches_the_cpu_bar() {
    let t = gpu_run(1500, GpuReduction::Fixed);
    let v = t.record.val_curve.last().unwrap();
    let cpu = t.evaluate();
    eprintln!(
        "GPU run: val_error {:.2}% (GPU metric), {:.2}% (CPU evaluation of the GPU weights)",
        v.val_error * 100.0,
        cpu.val_error * 100.0
    );
    assert!(v.val_error <= 0.04, "GPU validation error {:.2}%", v.val_error * 100.0);
    assert_eq!(v.val_error, cpu.val_error, "the GPU's error count differs from the CPU's on the same weights");
}

/// The "GPU reduction order" switch: float atomics let the scheduler pick the
/// order of the additions. Counts how often the bits change on this stack
/// (a software GPU may happen to schedule the same way every time), and
/// checks the maths stays the same within rounding.
#[test]
fn atomic_reduction_order_is_measured() {
    let g = gpu();
    let (rows, k, n) = (256, 64, 128);
    let a = random(11, rows * k, 1.0);
    let d = random(12, rows * n, 1.0);
    let fixed = pollster::block_on(probe::matmul_grad(&g, &a, &d, rows, k, n, GpuReduction::Fixed, false)).unwrap();
    let tries = 20;
    let mut distinct = std::collections::HashSet::new();
    let mut differs_from_fixed = 0;
    let mut worst = 0;
    for _ in 0..tries {
        let r = pollster::block_on(probe::matmul_grad(&g, &a, &d, rows, k, n, GpuReduction::Atomic, false)).unwrap();
        let bits: Vec<u32> = r.iter().map(|v| v.to_bits()).collect();
        if r.iter().zip(&fixed).any(|(x, y)| x.to_bits() != y.to_bits()) {
            differs_from_fixed += 1;
        }
        worst = worst.max(r.iter().zip(&fixed).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max).to_bits());
        distinct.insert(bits);
    }
    let worst = f32::from_bits(worst);
    eprintln!(
        "atomic weight gradient {rows}x{k}x{n} on {}: {} distinct results in {tries} runs; {differs_from_fixed}/{tries} differ from the fixed order; max |difference| {worst:e}",
        g.adapter.description,
        distinct.len()
    );
    assert!(worst < 1e-3, "the atomic variant computes other maths: max difference {worst}");
    // Whole runs: how often do two atomic runs part?
    let runs: Vec<Run> = (0..4).map(|_| gpu_run(64, GpuReduction::Atomic)).collect();
    let parted = runs
        .windows(2)
        .filter(|w| first_divergence(&w[0].record.hash_chain, &w[1].record.hash_chain).is_some())
        .count();
    eprintln!("atomic training runs on {}: {parted}/3 consecutive pairs parted", g.adapter.description);
    let m = runs[0].manifest();
    assert_eq!(m.level_granted, reprolab::DeterminismLevel::None);
    assert_eq!(m.gpu_reduction, GpuReduction::Atomic);
}

/// The GPU and the CPU engine compute the same step: after one step their
/// weights agree to within a few ULP (the GPU's exp/log differ from
/// libm's, so the bits, and the chains, may part: `run-to-run` holds per
/// stack, not across). Where the chains part is reported.
#[test]
fn gpu_versus_cpu_is_reported() {
    let g = gpu_run(100, GpuReduction::Fixed);
    let mut c = Run::cpu(new_setup(settings(100), &[]).unwrap());
    while c.step_now().is_some() {}
    match first_divergence(&g.record.hash_chain, &c.record.hash_chain) {
        None => eprintln!("GPU and CPU chains are identical over 100 steps on this stack"),
        Some(s) => eprintln!("GPU and CPU chains part at step {s} on this stack (run-to-run holds per stack)"),
    }
    // One step on each, weights compared element by element.
    let g1 = gpu_run(1, GpuReduction::Fixed);
    let mut c1 = Run::cpu(new_setup(settings(1), &[]).unwrap());
    c1.step_now().unwrap();
    let worst = g1.params().iter().zip(c1.params()).map(|(a, b)| kernels::ulps(*a, *b)).max().unwrap();
    eprintln!("after one step, GPU and CPU weights differ by at most {worst} ULP");
    assert!(worst <= 4096, "the GPU's step is not the CPU's: {worst} ULP apart");
    let loss = (g1.record.train_loss[0], c1.record.train_loss[0]);
    assert!((loss.0 - loss.1).abs() <= 1e-5 * loss.1.abs(), "first losses {loss:?}");
}

/// Engine versions 1 and 2 on the GPU: each repeats itself bit for bit, and
/// they part from each other (the same maths, another summation order).
#[test]
fn gpu_engine_versions_differ_and_each_repeats() {
    let run = |version: &str| {
        let mut s = settings(40);
        s.set("engine_version", version, Origin::Override).unwrap();
        gpu_run_of(s, GpuReduction::Fixed).record.hash_chain
    };
    let (a1, a2, b1, b2) = (run("1"), run("1"), run("2"), run("2"));
    assert_eq!(a1, a2, "engine version 1 does not repeat itself on the GPU");
    assert_eq!(b1, b2, "engine version 2 does not repeat itself on the GPU");
    let step = first_divergence(&a1, &b1).expect("engine versions 1 and 2 give the same bits on the GPU");
    eprintln!("GPU engine versions 1 and 2 part at step {step}");
}

/// Whole training runs with the reference matrix kernels, the blocked ones
/// as shipped (fused), unfused and staged end on one hash chain (the benchmark's
/// own check), and a profiled step is undone: a run profiled midway goes on
/// on the chain of a run that was not.
#[test]
fn blocked_and_reference_training_runs_agree_and_a_profile_changes_nothing() {
    use reprolab::bench::{self, BenchOptions, BenchShape, GpuContender};
    use reprolab::gpu::{GpuEngine, Tiling};
    let shape = BenchShape { hidden: vec![33, 17], batch: 24 };
    let opts = BenchOptions { shapes: vec![shape], rounds: 3, sample_ms: 20.0, ..BenchOptions::default() };
    let contenders = [
        GpuContender { reference: true, fused: false, ..GpuContender::DEFAULT },
        GpuContender::DEFAULT,
        GpuContender { fused: false, ..GpuContender::DEFAULT },
        GpuContender { tiling: Tiling::parse("16x16x16").unwrap(), ..GpuContender::DEFAULT },
    ];
    let t0 = std::time::Instant::now();
    let clock = move || t0.elapsed().as_secs_f64() * 1e3;
    let r = pollster::block_on(bench::run_gpu(&opts, &contenders, true, 1, &clock)).unwrap();
    let heads: Vec<&str> = r.results.iter().map(|x| x.chain_head.as_str()).collect();
    eprintln!("{}: chain heads {heads:?} after {} steps", r.adapter, r.results[0].steps);
    assert!(r.bits_agree && heads.windows(2).all(|w| w[0] == w[1]), "the matrix kernels changed bits: {heads:?}");
    assert_eq!(r.kernels.len(), 4);
    assert!(r.kernels.iter().all(|k| k.profile.kernels.iter().any(|t| t.kernel == "matmul_backprop")));

    let chain = |profile_at: Option<usize>| {
        let setup = std::sync::Arc::new(new_setup(settings(12), &[]).unwrap());
        let state = setup.initial_state();
        let mut rec = setup.new_record(weights_hash(&state.params));
        let mut e = GpuEngine::new(gpu(), setup, state, rec.chain_head).unwrap();
        if let Some(at) = profile_at {
            assert_eq!(pollster::block_on(e.run_block(&mut rec, at)).unwrap(), at);
            pollster::block_on(e.profile_step(rec.chain_head)).unwrap();
        }
        while pollster::block_on(e.run_block(&mut rec, 12)).unwrap() > 0 {}
        rec.hash_chain
    };
    assert_eq!(chain(Some(5)), chain(None), "a profiled step was not undone");
}

/// Logits with every kind of value a diverging run feeds the softmax: rows
/// of ordinary values, one huge, one infinite, one NaN.
fn test_logits(rows: usize, classes: usize) -> Vec<f32> {
    let mut z = random(21, rows * classes, 8.0);
    for (r, v) in [(2, 3.0e38), (5, f32::INFINITY), (7, f32::NEG_INFINITY), (11, f32::NAN)] {
        if r < rows {
            z[r * classes + r % classes] = v;
        }
    }
    z
}

/// A value's bits, for comparing the fused kernels with the unfused ones.
/// At `exact` every bit (NaNs are canonical there). At `run-to-run` a NaN
/// counts as one value: which operand's NaN an addition passes on is the
/// compiler's choice (SwiftShader's fused batch loss gave -NaN where the
/// unfused one gave +NaN), and no NaN's bits reach a record: a non-finite
/// loss or weight stops the run before its step is recorded (spec:
/// NON_FINITE_STOP).
fn key(x: f32, exact: bool) -> u32 {
    if x.is_nan() && !exact {
        0x7fc0_0000
    } else {
        x.to_bits()
    }
}

/// The fused softmax and loss sum (`softmax_xent_loss.wgsl`) give the bits
/// of `softmax_xent.wgsl` then `loss_sum.wgsl`: per-row losses, gradient
/// and batch loss, in both row orders, at both levels' arithmetic, with
/// fewer and more rows than a workgroup and non-finite logits ([`key`]).
#[test]
fn fused_softmax_and_loss_equal_the_unfused_kernels_bit_for_bit() {
    let mut g = gpu();
    for exact in [false, true] {
        if exact {
            g.use_exact_kernels().unwrap();
        }
        for (rows, classes) in [(1, 10), (8, 10), (24, 3), (32, 10), (63, 10), (64, 10), (65, 7), (300, 10)] {
            let z = test_logits(rows, classes);
            let labels: Vec<u32> = (0..rows).map(|r| ((r * 7) % classes) as u32).collect();
            let inv = 1.0 / rows as f32;
            for descending in [false, true] {
                let run = |fused: bool| {
                    let (l, gr, s) =
                        pollster::block_on(probe::softmax_loss(&g, &z, &labels, classes, inv, descending, fused))
                            .unwrap();
                    let bits = |v: Vec<f32>| v.into_iter().map(|x| key(x, exact)).collect::<Vec<u32>>();
                    (bits(l), bits(gr), key(s, exact))
                };
                let (want, got) = (run(false), run(true));
                let case = format!("{rows}x{classes} descending {descending} exact {exact}");
                assert!(want.0 == got.0, "{case}: the fused per-row losses differ");
                assert!(want.1 == got.1, "{case}: the fused gradient differs");
                assert_eq!(want.2, got.2, "{case}: the fused batch loss differs");
            }
        }
    }
}

/// The fused gradient and update (`matmul_grad_sgd.wgsl`,
/// `bias_grad_sgd.wgsl`) give the weights and velocities of `matmul_grad`,
/// `bias_grad.wgsl` then `sgd.wgsl`: decay on the weights only, every
/// stored value through `f_st`, in both row orders, at both levels'
/// arithmetic, on every kernel-test shape, and with non-finite values (an
/// infinite error, a huge weight) that the engine must see to stop
/// ([`key`]).
#[test]
fn fused_gradient_and_update_equal_the_unfused_kernels_bit_for_bit() {
    let mut g = gpu();
    for exact in [false, true] {
        if exact {
            g.use_exact_kernels().unwrap();
        }
        for (rows, k, n) in kernels::SHAPES {
            let a = random(1, rows * k, 1.0);
            let velocity = random(5, k * n + n, 0.01);
            for hyper in [(0.1f32, 0.9f32, 1.0e-4f32), (0.5, 0.0, 0.0), (1.0e30, 0.9, 3.0)] {
                for poison in [false, true] {
                    let mut d = random(3, rows * n, 0.01);
                    let mut params = random(4, k * n + n, 0.5);
                    if poison {
                        d[rows * n - 1] = f32::INFINITY;
                        params[0] = 3.0e38;
                    }
                    for descending in [false, true] {
                        let run = |fused: bool| {
                            let (p, v) = pollster::block_on(probe::grad_update(
                                &g,
                                &a,
                                &d,
                                &params,
                                &velocity,
                                (rows, k, n),
                                hyper,
                                descending,
                                fused,
                            ))
                            .unwrap();
                            let bits = |v: Vec<f32>| v.into_iter().map(|x| key(x, exact)).collect::<Vec<u32>>();
                            (bits(p), bits(v))
                        };
                        let (want, got) = (run(false), run(true));
                        let case =
                            format!("{rows}x{k}x{n} {hyper:?} poison {poison} descending {descending} exact {exact}");
                        if let Some(i) = (0..want.0.len()).find(|&i| want.0[i] != got.0[i] || want.1[i] != got.1[i]) {
                            panic!(
                                "{case}: parameter {i} differs: weight 0x{:08x} vs 0x{:08x}, velocity 0x{:08x} vs 0x{:08x}",
                                want.0[i], got.0[i], want.1[i], got.1[i]
                            );
                        }
                        let finite = got.0.iter().chain(&got.1).all(|b| f32::from_bits(*b).is_finite());
                        assert!(finite || poison || hyper.0 > 1.0, "{case}: a non-finite value from finite inputs");
                    }
                }
            }
        }
    }
}

/// A run on the GPU engine, fused or not, to its end or its non-finite stop:
/// the record and the last good state.
fn engine_run(s: &Settings, fused: bool) -> (reprolab::record::RunRecord, reprolab::setup::EngineState) {
    use reprolab::gpu::GpuEngine;
    let setup = std::sync::Arc::new(new_setup(s.clone(), &[]).unwrap());
    let state = setup.initial_state();
    let mut rec = setup.new_record(weights_hash(&state.params));
    let mut g = gpu();
    g.set_fusion(fused);
    let ar = setup.arith();
    if ar == reprolab::model::Arith::Exact {
        pollster::block_on(probe::exact_probe(&g)).unwrap_or_else(|e| panic!("exact refused on this adapter: {e:?}"));
    }
    let mut e = GpuEngine::with_arith(g, setup, state, rec.chain_head, ar).unwrap();
    while pollster::block_on(e.run_block(&mut rec, usize::MAX)).unwrap() > 0 {}
    (rec, e.state())
}

/// Whole training runs with the fusions and without end on the same chain,
/// losses, weights and velocities at `run-to-run` and at `exact` (where the
/// CPU engine gives that chain too), in both engine versions, with and
/// without dropout, decay and a second hidden layer; and a run whose
/// weights blow up stops at the same step, with the same reason, keeping the
/// same last finite weights (spec: NON_FINITE_STOP), fused or not, and at
/// `exact` where the CPU engine stops.
#[test]
fn fused_and_unfused_training_runs_agree_and_stop_alike() {
    let mut cases = Vec::new();
    for level in ["run-to-run", "exact"] {
        let mut s = settings(30);
        s.set("level", level, Origin::Override).unwrap();
        cases.push((format!("defaults {level}"), s.clone()));
        let mut t = s.clone();
        for (key, value) in [
            ("hidden", "33,17"),
            ("batch_size", "24"),
            ("activation", "tanh"),
            ("engine_version", "1"),
            ("dropout", "0"),
            ("weight_decay", "0"),
        ] {
            t.set(key, value, Origin::Override).unwrap();
        }
        cases.push((format!("two hidden layers, tanh, version 1, no dropout, no decay, {level}"), t));
        let mut u = s.clone();
        u.set("learning_rate", "2000", Origin::Override).unwrap();
        u.set("steps", "60", Origin::Override).unwrap();
        cases.push((format!("learning rate 2000 {level}"), u));
    }
    let mut stops = 0;
    for (case, s) in &cases {
        let (a, sa) = engine_run(s, false);
        let (b, sb) = engine_run(s, true);
        if let Some(step) = first_divergence(&a.hash_chain, &b.hash_chain) {
            panic!("{case}: the fused run parts from the unfused one at step {}", step + 1);
        }
        assert_eq!(a.hash_chain.len(), b.hash_chain.len(), "{case}: steps recorded");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        assert_eq!(bits(&a.train_loss), bits(&b.train_loss), "{case}: losses");
        assert!(bits(&sa.params) == bits(&sb.params) && bits(&sa.velocity) == bits(&sb.velocity), "{case}: state");
        let stop = |r: &reprolab::record::RunRecord| r.stopped.as_ref().map(|x| format!("{x:?}"));
        assert_eq!(stop(&a), stop(&b), "{case}: the non-finite stop");
        if case.starts_with("learning rate") {
            assert!(b.stopped.is_some(), "{case}: the run did not blow up; raise the learning rate");
            assert!(sb.params.iter().chain(&sb.velocity).all(|v| v.is_finite()), "{case}: kept a non-finite state");
            stops += 1;
        }
        if case.ends_with("exact") {
            let mut c = Run::cpu(new_setup(s.clone(), &[]).unwrap());
            c.advance_now(usize::MAX).unwrap();
            if let Some(step) = first_divergence(&c.record.hash_chain, &b.hash_chain) {
                panic!("{case}: the fused GPU run parts from the CPU engine at step {}", step + 1);
            }
            assert_eq!(c.record.hash_chain.len(), b.hash_chain.len(), "{case}: steps recorded, CPU and GPU");
            assert_eq!(stop(&c.record), stop(&b), "{case}: the non-finite stop, CPU and GPU");
        }
        eprintln!("{case}: fused = unfused over {} steps; stopped: {:?}", b.hash_chain.len(), stop(&b));
    }
    assert_eq!(stops, 2);
}
