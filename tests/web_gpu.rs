//! WebGPU in the browser (`wasm-pack test --headless --chrome` runs Dawn on
//! SwiftShader, `--firefox` wgpu on lavapipe): the same checks as the native
//! tests/gpu.rs. These FAIL when the browser gives no adapter: a GPU test
//! never passes without a GPU.
#![cfg(target_arch = "wasm32")]

use reprolab::driver::{new_setup, BackendRequest, Run};
use reprolab::gpu::{probe, Gpu};
use reprolab::hash::{chain_link, weights_hash};
use reprolab::manifest::first_divergence;
use reprolab::rng::{stream_key, Stream, StreamRng};
use reprolab::sources::Source;
use reprolab::spec::GpuReduction;
use reprolab::{Origin, Settings};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[path = "common/kernels.rs"]
mod kernels;

fn log_string(s: String) {
    log(&s);
}

#[wasm_bindgen_test]
async fn webgpu_kernels_against_the_cpu() {
    let g = gpu().await;
    kernels::matrix_kernels(&g, &log_string).await;
    kernels::every_kernel(&g, &log_string).await;
}

fn log(s: &str) {
    web_sys::console::log_1(&JsValue::from_str(s));
}

async fn gpu() -> Gpu {
    match Gpu::open().await {
        Ok(g) => {
            log(&format!("WebGPU adapter: {:?} in {}", g.adapter, reprolab::platform::user_agent()));
            g
        }
        Err(e) => panic!("no WebGPU adapter in {}: {e}", reprolab::platform::user_agent()),
    }
}

#[wasm_bindgen_test]
async fn webgpu_dropout_masks_and_hash_equal_the_cpu() {
    let g = gpu().await;
    for (seed, step, layer, rows, width) in
        [(1u64, 0u32, 0u32, 1usize, 1usize), (1, 7, 0, 32, 128), (9, 1234, 2, 17, 33)]
    {
        let key = reprolab::chacha::key_words(&stream_key(Stream::Dropout, seed));
        let threshold = 429_496_730u32;
        let got = probe::dropout_masks(&g, key, step, layer, rows, width, threshold).await.unwrap();
        let mut words = vec![0u32; rows * width];
        StreamRng::new(Stream::Dropout, seed).fill_words(
            ((layer as u64) << reprolab::spec::DROPOUT_LAYER_SHIFT) | step as u64,
            0,
            &mut words,
        );
        for (i, (gm, w)) in got.iter().zip(&words).enumerate() {
            assert_eq!(*gm, u32::from(*w >= threshold), "seed {seed} step {step}: first mismatch at element {i}");
        }
    }
    for n in [1usize, 1024, 1025, 9610] {
        let params: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        assert_eq!(probe::weights_hash(&g, &params).await.unwrap(), weights_hash(&params), "{n} words");
    }
}

fn settings(steps: usize) -> Settings {
    let mut s = Settings::default();
    s.set("steps", &steps.to_string(), Origin::Override).unwrap();
    s
}

async fn gpu_run(steps: usize, reduction: GpuReduction) -> Run {
    let free = if reduction == GpuReduction::Atomic { vec![Source::GpuReduction] } else { vec![] };
    let mut t = match Run::start(new_setup(settings(steps), &free).unwrap(), BackendRequest::Gpu).await {
        Ok(t) => t,
        Err(e) => panic!("no WebGPU adapter in {}: {e}", reprolab::platform::user_agent()),
    };
    t.advance(usize::MAX).await.unwrap();
    assert_eq!(t.record.step, steps);
    t
}

#[wasm_bindgen_test]
async fn webgpu_pinned_runs_are_identical_three_times() {
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(gpu_run(100, GpuReduction::Fixed).await);
    }
    for (i, r) in runs.iter().enumerate().skip(1) {
        if let Some(step) = first_divergence(&runs[0].record.hash_chain, &r.record.hash_chain) {
            panic!("run {i} parts from run 0 at step {step}");
        }
    }
    let t = &runs[0];
    let n = t.record.hash_chain.len();
    let params = t.params().to_vec();
    assert_eq!(chain_link(t.record.hash_chain[n - 2], weights_hash(&params)), t.record.hash_chain[n - 1]);
    let mut c = Run::cpu(new_setup(settings(100), &[]).unwrap());
    while c.step_now().is_some() {}
    match first_divergence(&t.record.hash_chain, &c.record.hash_chain) {
        None => log("WebGPU and CPU chains identical over 100 steps"),
        Some(s) => log(&format!("WebGPU and CPU chains part at step {s} (run-to-run holds per stack)")),
    }
    let mut parted = 0;
    let mut atomic = Vec::new();
    for _ in 0..3 {
        atomic.push(gpu_run(64, GpuReduction::Atomic).await);
    }
    for w in atomic.windows(2) {
        parted += usize::from(first_divergence(&w[0].record.hash_chain, &w[1].record.hash_chain).is_some());
    }
    log(&format!("WebGPU atomic reduction: {parted}/2 consecutive pairs of runs parted"));
}

#[wasm_bindgen_test]
async fn the_js_trainer_uses_webgpu_when_asked_strictly() {
    let o = js_sys::Object::new();
    js_sys::Reflect::set(&o, &JsValue::from_str("steps"), &JsValue::from_f64(70.0)).unwrap();
    let t = reprolab::wasm::Trainer::create(o.into(), None, Some("gpu".into()))
        .await
        .expect("WebGPU must be available here");
    assert_eq!(t.backend().unwrap(), "gpu");
    wasm_bindgen_futures::JsFuture::from(t.step(70)).await.unwrap();
    let m = reprolab::Manifest::from_json(&t.manifest().unwrap()).unwrap();
    assert_eq!(m.backend, "gpu");
    assert_eq!(m.steps_completed, 70);
    let a = m.adapter.expect("adapter recorded");
    assert_eq!(a.graphics_backend, "WebGPU");
    log(&format!("manifest adapter: {a:?}"));
}

#[wasm_bindgen_test]
async fn a_second_gpu_step_while_one_runs_is_refused_as_busy() {
    let o = js_sys::Object::new();
    js_sys::Reflect::set(&o, &JsValue::from_str("steps"), &JsValue::from_f64(20.0)).unwrap();
    let t = reprolab::wasm::Trainer::create(o.into(), None, Some("gpu".into())).await.expect("WebGPU here");
    // The first call's future takes the run before the second one's runs:
    // the second is refused with code "busy", never a borrow panic.
    let first = t.step(10);
    let second = wasm_bindgen_futures::JsFuture::from(t.step(10)).await;
    wasm_bindgen_futures::JsFuture::from(first).await.unwrap();
    let e = second.expect_err("the second step ran while the first held the run");
    let code = js_sys::Reflect::get(&e, &JsValue::from_str("code")).unwrap().as_string();
    assert_eq!(code.as_deref(), Some("busy"));
    assert_eq!(t.steps_done().unwrap(), 10);
}

/// The `exact` level in the browser: a pinned 500-step `digits` run with
/// dropout on WebGPU (after the start-up probe) gives the wasm CPU engine's
/// hash chain; a parting names the first step and both links. The same run
/// natively (tests/exact_level.rs) gives the same chain head.
#[wasm_bindgen_test]
async fn webgpu_exact_gives_the_cpu_chain() {
    let mut s = settings(500);
    s.set("level", "exact", Origin::Override).unwrap();
    let mut g = match Run::start(new_setup(s.clone(), &[]).unwrap(), BackendRequest::Gpu).await {
        Ok(t) => t,
        Err(e) => panic!("no WebGPU adapter in {}: {e}", reprolab::platform::user_agent()),
    };
    g.advance(usize::MAX).await.unwrap();
    let m = g.manifest();
    log(&format!("WebGPU exact: level {} ({})", m.level_granted.name(), m.level_reason));
    assert_eq!(m.level_granted, reprolab::DeterminismLevel::Exact, "{}", m.level_reason);
    let mut c = Run::cpu(new_setup(s, &[]).unwrap());
    while c.step_now().is_some() {}
    assert_eq!(c.record.step, 500);
    if let Some(i) = first_divergence(&c.record.hash_chain, &g.record.hash_chain) {
        panic!(
            "wasm CPU and WebGPU part at step {} at exact: links {} vs {}, losses 0x{:08x} vs 0x{:08x}",
            i + 1,
            c.record.hash_chain[i],
            g.record.hash_chain[i],
            c.record.train_loss[i].to_bits(),
            g.record.train_loss[i].to_bits()
        );
    }
    log(&format!("WebGPU = wasm CPU at exact over 500 steps: chain head {}", c.record.chain_head));
}
