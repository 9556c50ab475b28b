//! The `exact` level as a run setting: the `level` key (manifests, older
//! manifests without it), the CPU engine's exact arithmetic (repeatable,
//! different from the default arithmetic, the same for 1 or 2 threads at a
//! fixed chunk count, the 4% validation bar), and the driver's start-up probe
//! on the GPU: a wrong answer refuses `exact` with the failed check named.
//! The GPU tests FAIL, never skip, without an adapter (lavapipe here).
#![cfg(not(target_arch = "wasm32"))]

use reprolab::driver::{new_setup, BackendRequest, ExactProbe, Run};
use reprolab::exact::{self, Op, PROBE};
use reprolab::manifest::first_divergence;
use reprolab::spec::BackendKind;
use reprolab::{DeterminismLevel, Origin, Settings};

fn settings(steps: usize, level: &str) -> Settings {
    let mut s = Settings::default();
    s.set("steps", &steps.to_string(), Origin::Override).unwrap();
    s.set("level", level, Origin::Override).unwrap();
    s
}

fn cpu_run(s: Settings) -> Run {
    let mut run = Run::cpu(new_setup(s, &[]).unwrap());
    run.advance_now(usize::MAX).unwrap();
    run
}

/// The first step whose chain link differs, with both links, or `None`.
fn parting(a: &Run, b: &Run) -> Option<String> {
    first_divergence(&a.record.hash_chain, &b.record.hash_chain)
        .map(|i| format!("step {}: {} vs {}", i + 1, a.record.hash_chain[i], b.record.hash_chain[i]))
}

#[test]
fn the_level_setting_parses_and_older_manifests_read_as_run_to_run() {
    let mut s = Settings::default();
    assert_eq!(s.config.level, DeterminismLevel::RunToRun);
    for name in ["exact", "none", "run-to-run"] {
        s.set("level", name, Origin::Override).unwrap();
        assert_eq!(s.config.level.name(), name);
        assert_eq!(s.config.get_text("level"), name);
    }
    let e = s.set("level", "bitwise", Origin::Override).unwrap_err();
    assert_eq!(e.field(), Some("level"), "{e}");
    // A manifest written before the key existed.
    let mut entries = Settings::default().entries();
    assert!(entries.remove("level").is_some());
    let back = Settings::from_entries(&entries).unwrap();
    assert_eq!(back.config.level, DeterminismLevel::RunToRun);
    // Any other key is still required.
    let mut entries = Settings::default().entries();
    entries.remove("momentum");
    assert!(Settings::from_entries(&entries).is_err());
}

#[test]
fn exact_on_the_cpu_is_granted_repeats_and_differs_from_run_to_run() {
    let a = cpu_run(settings(500, "exact"));
    let b = cpu_run(settings(500, "exact"));
    let d = cpu_run(settings(500, "run-to-run"));
    assert!(a.setup().settings.config.dropout > 0.0, "the proof needs dropout");
    assert_eq!(a.record.step, 500);
    assert_eq!(parting(&a, &b), None, "two exact runs part");
    let m = a.manifest();
    assert_eq!(m.level_granted, DeterminismLevel::Exact, "{}", m.level_reason);
    assert_eq!(d.manifest().level_granted, DeterminismLevel::RunToRun);
    // The pinned functions replace libm's: the chains part (and say where).
    let part = parting(&a, &d);
    eprintln!("exact vs run-to-run arithmetic: first parting at {part:?}");
    assert!(part.is_some(), "the exact arithmetic gave the default arithmetic's chain");
    eprintln!("exact 500-step chain head: {}", a.record.chain_head);
}

#[test]
fn exact_chains_depend_on_the_chunks_not_on_the_threads() {
    let with = |threads: &str, chunks: &str| {
        let mut s = settings(200, "exact");
        s.set("threads", threads, Origin::Override).unwrap();
        s.set("chunks", chunks, Origin::Override).unwrap();
        cpu_run(s)
    };
    let one = with("1", "1");
    let four_1 = with("1", "4");
    let four_2 = with("2", "4");
    assert_eq!(parting(&four_1, &four_2), None, "threads changed the exact arithmetic");
    // Chunks are partial sums: another order, other bits (measured, stated).
    eprintln!("exact, chunks 1 vs 4: {:?}", parting(&one, &four_1));
}

#[test]
fn exact_meets_the_validation_bar_on_the_cpu() {
    let mut s = Settings::default();
    s.set("level", "exact", Origin::Override).unwrap();
    let run = cpu_run(s);
    let m = run.manifest();
    eprintln!("exact, digits, defaults: val_error {:.4}", m.val_error);
    assert!(m.val_error < 0.04, "val_error {} at exact", m.val_error);
}

fn gpu_start(s: Settings, probe: ExactProbe) -> Run {
    pollster::block_on(Run::start_probed(new_setup(s, &[]).unwrap(), BackendRequest::Gpu, probe))
        .unwrap_or_else(|e| panic!("no GPU for the GPU tests ({e}); install mesa-vulkan-drivers (lavapipe)"))
}

#[test]
fn a_wrong_probe_answer_refuses_exact_with_the_check_named() {
    let mut answers = exact::cpu_answers();
    let i = PROBE.iter().position(|c| c.check == "fusion" && c.op == Op::MulAdd).expect("a fusion case");
    let c = PROBE[i];
    let fused = f32::from_bits(c.a).mul_add(f32::from_bits(c.b), f32::from_bits(c.c)).to_bits();
    assert_ne!(fused, answers[i]);
    answers[i] = fused;
    let mut run = gpu_start(settings(3, "exact"), ExactProbe::Answers(answers));
    assert_eq!(run.backend(), BackendKind::Gpu);
    pollster::block_on(run.advance(usize::MAX)).unwrap();
    let m = run.manifest();
    eprintln!("level_reason: {}", m.level_reason);
    assert_eq!(m.level_requested, DeterminismLevel::Exact);
    assert_eq!(m.level_granted, DeterminismLevel::RunToRun);
    assert!(m.level_reason.contains("exact: not available on this adapter: fusion:"), "{}", m.level_reason);
    assert!(m.level_reason.contains(&format!("0x{fused:08x}")), "{}", m.level_reason);
}

/// Where two weight vectors first differ: the tensor (`W1`, `b1`, ...) and
/// the index in it, with both bit patterns.
fn first_tensor_difference(run: &Run, a: &[f32], b: &[f32]) -> Option<String> {
    let i = a.iter().zip(b).position(|(x, y)| x.to_bits() != y.to_bits())?;
    let net = &run.setup().net;
    let (l, layer) = net.layers.iter().enumerate().find(|(_, l)| i < l.b + l.fan_out).expect("an index of a layer");
    let (name, at) = if i < layer.b { ("W", i - layer.w) } else { ("b", i - layer.b) };
    Some(format!("{name}{} index {at}: 0x{:08x} vs 0x{:08x}", l + 1, a[i].to_bits(), b[i].to_bits()))
}

/// Runs `s` on the CPU and, strictly, on the GPU, both at `exact`; on a
/// parting, reruns both to the first differing step and names the first
/// differing tensor and index.
fn cpu_gpu_parity(s: Settings) {
    let cpu = cpu_run(s.clone());
    let mut gpu = gpu_start(s.clone(), ExactProbe::Device);
    assert_eq!(gpu.backend(), BackendKind::Gpu);
    pollster::block_on(gpu.advance(usize::MAX)).unwrap();
    let m = gpu.manifest();
    eprintln!("GPU {:?}: level {} ({})", gpu.adapter().map(|a| &a.description), m.level_granted.name(), m.level_reason);
    assert_eq!(m.level_granted, DeterminismLevel::Exact, "{}", m.level_reason);
    assert_eq!(cpu.record.initial_hash, gpu.record.initial_hash);
    if let Some(i) = first_divergence(&cpu.record.hash_chain, &gpu.record.hash_chain) {
        let mut s1 = s.clone();
        s1.set("steps", &(i + 1).to_string(), Origin::Override).unwrap();
        let c = cpu_run(s1.clone());
        let mut g = gpu_start(s1, ExactProbe::Device);
        pollster::block_on(g.advance(usize::MAX)).unwrap();
        let (cs, gs) = (c.state(), g.state());
        let what = first_tensor_difference(&c, &cs.params, &gs.params)
            .map(|w| format!("weights {w}"))
            .or_else(|| first_tensor_difference(&c, &cs.velocity, &gs.velocity).map(|w| format!("velocity {w}")))
            .unwrap_or_else(|| "no weight or velocity differs".into());
        panic!(
            "CPU and GPU part at step {} (links {} vs {}); after that step: {what}; losses 0x{:08x} vs 0x{:08x}",
            i + 1,
            cpu.record.hash_chain[i],
            gpu.record.hash_chain[i],
            cpu.record.train_loss[i].to_bits(),
            gpu.record.train_loss[i].to_bits()
        );
    }
    assert_eq!(cpu.record.step, gpu.record.step);
    eprintln!("CPU = GPU at exact over {} steps: chain head {}", cpu.record.step, cpu.record.chain_head);
    // The GPU's record replays on the CPU engine, identical.
    let plan = reprolab::driver::replay_plan(&m, false);
    assert!(plan.can_replay && plan.backend == BackendKind::Cpu, "{plan:?}");
    let r = pollster::block_on(Run::replay(&m, |_, _| {})).unwrap();
    assert!(reprolab::driver::is_identical(&r), "the CPU replay of the GPU's exact record: {:?}", r.outcome);
}

#[test]
fn exact_gives_one_chain_on_the_cpu_and_the_gpu() {
    // digits, defaults (ReLU, dropout 0.1), 500 steps, CPU chunks 1.
    cpu_gpu_parity(settings(500, "exact"));
}

#[test]
fn exact_gives_one_chain_on_the_cpu_and_the_gpu_with_tanh() {
    let mut s = settings(200, "exact");
    s.set("activation", "tanh", Origin::Override).unwrap();
    s.set("engine_version", "1", Origin::Override).unwrap();
    cpu_gpu_parity(s);
}

#[test]
fn auto_prefers_the_cpu_for_exact_unless_a_hardware_gpu_passes_the_probe() {
    let run =
        pollster::block_on(Run::start(new_setup(settings(3, "exact"), &[]).unwrap(), BackendRequest::Auto)).unwrap();
    // No GPU or a software one: the CPU. A hardware GPU (an NVIDIA card
    // through Vulkan, in scripts/gpu-parity.sh): the GPU when it passes the
    // exact probe, else the CPU.
    let hardware = pollster::block_on(reprolab::gpu::Gpu::open()).ok().filter(|g| !g.adapter.is_software());
    let want = match &hardware {
        Some(g) if pollster::block_on(reprolab::gpu::probe::exact_probe(g)).is_ok() => BackendKind::Gpu,
        _ => BackendKind::Cpu,
    };
    eprintln!("auto at exact: {:?} (hardware GPU: {})", run.backend(), hardware.is_some());
    assert_eq!(run.backend(), want);
    assert_eq!(run.manifest().level_granted, DeterminismLevel::Exact);
}

/// Every kernel of a training step sets the fence's zero first (`f_init` with
/// the run-time `dims.u3`) and reaches the elementary functions only through
/// the prelude's `f_*` operations, so the exact prelude governs them all.
/// (Float `+ - * /` cannot be told from integer ones by reading; the parity
/// tests above catch a plain float operation left in a kernel.)
#[test]
fn training_kernels_use_the_prelude_operations() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
    let mut seen = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if !name.ends_with(".wgsl") || name.starts_with("lib_") || name.starts_with("exact_") {
            continue;
        }
        seen += 1;
        let src = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
        let code: String = src.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
        let main = code.find("fn main(").unwrap_or_else(|| panic!("{name} has no main"));
        let body = &code[main..][code[main..].find('{').expect("a body") + 1..];
        assert!(body.trim_start().starts_with("f_init(dims.u3);"), "{name}: main does not start with f_init(dims.u3)");
        let stripped = ["f_exp(", "f_ln(", "f_tanh(", "f_div("].iter().fold(code.clone(), |c, f| c.replace(f, "F("));
        for bad in ["exp(", "log(", "tanh(", "fma(", "mix(", "dot(", "sqrt(", "pow(", "exp2(", "log2("] {
            assert!(!stripped.contains(bad), "{name} calls {bad} outside the prelude's operations");
        }
    }
    assert!(seen >= 13, "found {seen} training kernels");
}
