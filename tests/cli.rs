//! The command-line tool end to end: train, replay, diff, and the refusals
//! (exit status 2, one line, never a panic).
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reprolab::Manifest;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_reprolab"))
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("reprolab-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn train(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--quiet", "--steps", "40", "--out", out.to_str().unwrap()];
    // The CPU unless a test asks for another backend (the default, auto,
    // would take lavapipe here).
    if !extra.contains(&"--backend") {
        args.extend(["--backend", "cpu"]);
    }
    args.extend_from_slice(extra);
    run(&args)
}

fn no_panic(o: &Output) {
    let t = text(o);
    assert!(!t.contains("panicked"), "panic: {t}");
}

#[test]
fn train_writes_a_complete_manifest() {
    let out = tmp("full.json");
    let o = train(&out, &["--set", "learning_rate=0.04", "--seed", "3"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    for key in [
        "val_error",
        "val_error_curve",
        "train_loss",
        "weights_hash",
        "hash_chain",
        "seeds",
        "config",
        "data_fingerprint",
        "backend",
        "level_granted",
        "engine_version",
        "manifest_version",
        "checksum",
    ] {
        assert!(v.get(key).is_some(), "manifest lacks {key}");
    }
    assert_eq!(v["backend"], "cpu");
    assert_eq!(v["train_loss"].as_array().unwrap().len(), 40);
    assert_eq!(v["hash_chain"].as_array().unwrap().len(), 40);
    let e = v["val_error"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&e));
    assert_eq!(v["config"]["learning_rate"]["source"], "override");
    assert_eq!(v["config"]["learning_rate"]["value"], 0.04);
    assert_eq!(v["config"]["seed"]["value"], 3);
    assert_eq!(v["config"]["momentum"]["source"], "default");
    assert_eq!(v["seeds"]["init"], "3");
    assert_eq!(v["level_granted"], "run-to-run");
    // The bare name means the latest version of the data set.
    assert_eq!(v["data"]["version"], 2);
    assert_eq!(v["data_fingerprint"], reprolab::data::sha256_hex(&reprolab::data::digits_bytes(2)));
}

#[test]
fn config_file_values_are_recorded_as_config() {
    let cfg = tmp("cfg.json");
    std::fs::write(&cfg, r#"{"version": 1, "hidden": "32,16", "activation": "tanh"}"#).unwrap();
    let out = tmp("cfg-run.json");
    let o = train(&out, &["--config", cfg.to_str().unwrap(), "--set", "hidden=24"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let m = Manifest::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(m.config["hidden"].value, "24");
    assert_eq!(m.config["hidden"].source, reprolab::Origin::Override);
    assert_eq!(m.config["activation"].source, reprolab::Origin::Config);
}

#[test]
fn replay_says_identical_and_diff_says_identical() {
    let (a, b) = (tmp("ra.json"), tmp("rb.json"));
    assert_eq!(train(&a, &[]).status.code(), Some(0));
    assert_eq!(train(&b, &[]).status.code(), Some(0));
    let o = run(&["replay", "--quiet", a.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("identical"));
    let o = run(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("identical"));
    let o = run(&["diff", "--json", a.to_str().unwrap(), b.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["identical"], true);
    assert_eq!(v["first_divergent_step"], serde_json::Value::Null);
    assert_eq!(v["differences"].as_array().unwrap().len(), 0);
}

#[test]
fn free_runs_replay_identically_from_their_record() {
    let a = tmp("free.json");
    assert_eq!(train(&a, &["--free", "init", "--free", "dropout"]).status.code(), Some(0));
    let m = Manifest::from_json(&std::fs::read_to_string(&a).unwrap()).unwrap();
    assert_eq!(m.free, vec!["init", "dropout"]);
    assert_eq!(m.level_granted, reprolab::DeterminismLevel::None);
    let o = run(&["replay", "--quiet", a.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn diff_names_differences_and_the_first_divergent_step() {
    let (a, b) = (tmp("da.json"), tmp("db.json"));
    assert_eq!(train(&a, &[]).status.code(), Some(0));
    assert_eq!(train(&b, &["--free", "shuffle", "--set", "momentum=0.8"]).status.code(), Some(0));
    let o = run(&["diff", "--json", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["identical"], false);
    assert_eq!(v["first_divergent_step"], 1);
    let fields: Vec<&str> = v["differences"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    for f in ["config.momentum", "config.momentum.source", "seeds.shuffle", "free", "level_granted"] {
        assert!(fields.contains(&f), "diff misses {f}: {fields:?}");
    }
    assert!(!fields.contains(&"seeds.init"), "{fields:?}");
    let o = run(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    let t = text(&o);
    assert!(!t.contains("identical"), "{t}");
    assert!(t.contains("hash chains part at step 1"), "{t}");
}

#[test]
fn replay_reports_the_first_divergent_step() {
    let a = tmp("div.json");
    assert_eq!(train(&a, &[]).status.code(), Some(0));
    let mut m = Manifest::from_json(&std::fs::read_to_string(&a).unwrap()).unwrap();
    // A valid manifest (resealed) whose record parts from what this engine computes at step 17.
    m.hash_chain[16] = reprolab::Hash64::from_u64(m.hash_chain[16].to_u64() ^ 1);
    m.seal();
    let b = tmp("div-edited.json");
    std::fs::write(&b, m.to_json()).unwrap();
    let o = run(&["replay", "--quiet", b.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("diverged at step 17"), "{t}");
    assert!(t.contains(&m.hash_chain[16].to_string()), "the recorded value is not shown: {t}");
}

#[test]
fn unreadable_manifests_exit_2() {
    let a = tmp("good.json");
    assert_eq!(train(&a, &[]).status.code(), Some(0));
    let good = std::fs::read_to_string(&a).unwrap();
    // Someone "fixes" the learning rate in the record by hand.
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["config"]["learning_rate"]["value"] = serde_json::json!(0.5);
    let edited = serde_json::to_string_pretty(&v).unwrap();
    let cases = [
        ("truncated", good[..good.len() / 2].to_string(), "truncated"),
        ("edited", edited.clone(), "edited"),
        ("version", good.replacen("\"manifest_version\": 1", "\"manifest_version\": 99", 1), "version 99"),
        ("empty", String::new(), "invalid JSON"),
        ("not-object", "[1, 2]".to_string(), "expected a JSON object"),
    ];
    for (name, content, needle) in cases {
        assert_ne!(content, good, "{name}: the test did not change the manifest");
        let p = tmp(&format!("bad-{name}.json"));
        std::fs::write(&p, &content).unwrap();
        for args in [vec!["replay", p.to_str().unwrap()], vec!["diff", a.to_str().unwrap(), p.to_str().unwrap()]] {
            let o = run(&args);
            assert_eq!(o.status.code(), Some(2), "{name} {args:?}: {}", text(&o));
            no_panic(&o);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(err.trim_end().lines().count(), 1, "{name}: not one line: {err}");
            assert!(err.contains(needle), "{name}: {err}");
        }
    }
    let o = run(&["replay", tmp("missing.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn invalid_settings_exit_2_with_the_field_named() {
    let out = tmp("never.json");
    let cases: &[(&[&str], &str)] = &[
        (&["--set", "hidden=0"], "hidden"),
        (&["--set", "hidden=64,0"], "hidden"),
        (&["--set", "learning_rate=-1"], "learning_rate"),
        (&["--set", "learning_rate=NaN"], "learning_rate"),
        (&["--set", "dropout=1"], "dropout"),
        (&["--set", "dropout=-0.5"], "dropout"),
        (&["--set", "batch_size=100000"], "batch_size"),
        (&["--set", "momentum=nan"], "momentum"),
        (&["--set", "colour=blue"], "colour"),
        (&["--set", "nonsense"], "nonsense"),
        (&["--seed", "-3"], "seed"),
        (&["--free", "everything"], "free"),
        (&["--set", "steps=0"], "steps"),
        (&["--set", "val_fraction=0.9999"], "val_fraction"),
    ];
    for (args, field) in cases {
        let o = train(&out, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        no_panic(&o);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: not one line: {err}");
        assert!(err.contains(&format!("{field}:")), "{args:?}: the message does not name {field}: {err}");
    }
    assert!(!out.exists(), "a refused run wrote a manifest");
    let cfg = tmp("bad-cfg.json");
    std::fs::write(&cfg, r#"{"learning_rate": "fast"}"#).unwrap();
    let o = train(&out, &["--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("learning_rate:"));
}

#[test]
fn a_diverging_run_stops_names_the_step_and_keeps_its_manifest() {
    let out = tmp("nan.json");
    let o = train(&out, &["--set", "learning_rate=100000"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    no_panic(&o);
    let t = text(&o);
    assert!(t.contains("learning rate"), "{t}");
    let m = Manifest::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let s = m.stopped.clone().expect("the manifest records the stop");
    assert!(t.contains(&format!("step {}", s.step)), "{t}");
    assert_eq!(m.steps_completed, s.step - 1);
    // Replaying a stopped run reproduces the stop.
    let o = run(&["replay", "--quiet", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// A Vulkan loader pointed at no driver: no adapter at all.
fn without_gpu(cmd: &mut Command) -> &mut Command {
    cmd.env("VK_ICD_FILENAMES", "/nonexistent/icd.json").env("VK_DRIVER_FILES", "/nonexistent/icd.json")
}

#[test]
fn strict_gpu_backend_without_an_adapter_exits_3() {
    let out = tmp("nogpu.json");
    let o = without_gpu(&mut bin())
        .args(["train", "-q", "--backend", "gpu", "--steps", "5", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    no_panic(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("backend gpu"), "{}", text(&o));
}

#[test]
fn auto_without_an_adapter_says_it_uses_the_cpu_and_why() {
    let out = tmp("auto-cpu.json");
    let o = without_gpu(&mut bin())
        .args(["train", "--backend", "auto", "--steps", "5", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("running on the CPU because"), "{}", text(&o));
    let m = Manifest::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(m.backend, "cpu");
    assert!(m.backend_history[0].reason.contains("running on the CPU because"));
    assert_eq!(m.adapter, None);
}

#[test]
fn gpu_runs_record_their_adapter_and_replay_on_the_gpu() {
    let out = tmp("gpu.json");
    let o = train(&out, &["--backend", "gpu"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let m = Manifest::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(m.backend, "gpu");
    let a = m.adapter.clone().expect("a GPU run records its adapter");
    assert_eq!(a.graphics_backend, "Vulkan");
    assert!(!a.description.is_empty());
    let o = run(&["replay", "-q", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn a_lost_device_under_any_continues_on_the_cpu_and_loses_no_step() {
    let (a, b) = (tmp("lost.json"), tmp("gpu-only.json"));
    // `any` takes the software GPU here (`auto` would prefer the CPU).
    let o = run(&[
        "train",
        "-q",
        "--steps",
        "200",
        "--backend",
        "any",
        "--lose-device-at",
        "100",
        "--out",
        a.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(&["train", "-q", "--steps", "200", "--backend", "gpu", "--out", b.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let lost = Manifest::from_json(&std::fs::read_to_string(&a).unwrap()).unwrap();
    let gpu = Manifest::from_json(&std::fs::read_to_string(&b).unwrap()).unwrap();
    assert_eq!(lost.steps_completed, 200);
    assert_eq!(lost.hash_chain.len(), 200);
    let h = &lost.backend_history;
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!((h[0].backend.as_str(), h[1].backend.as_str()), ("gpu", "cpu"));
    assert_eq!(h[0].to_step + 1, h[1].from_step);
    assert_eq!(h[1].to_step, 200);
    assert!(h[1].reason.contains("GPU failed"), "{}", h[1].reason);
    // Every step the GPU completed before the loss is kept, bit for bit.
    let k = h[0].to_step;
    assert!(k >= 64, "the state read back before the loss was dropped: {h:?}");
    assert_eq!(lost.hash_chain[..k], gpu.hash_chain[..k]);
    // And the mixed run replays: GPU stretch on the GPU, CPU stretch on the CPU.
    let o = run(&["replay", "-q", a.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Under --backend gpu the same loss ends the run with status 3, keeping the record.
    let c = tmp("lost-strict.json");
    let o = run(&[
        "train",
        "-q",
        "--steps",
        "200",
        "--backend",
        "gpu",
        "--lose-device-at",
        "100",
        "--out",
        c.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let strict = Manifest::from_json(&std::fs::read_to_string(&c).unwrap()).unwrap();
    assert!(strict.stopped.clone().unwrap().reason.contains("GPU failed"));
    assert_eq!(strict.hash_chain[..], gpu.hash_chain[..strict.steps_completed]);
    // Its replay reproduces every recorded step (a lost GPU is not arithmetic to reproduce).
    let o = run(&["replay", "-q", c.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn a_gpu_run_that_overflows_stops_at_the_failing_step_and_replays() {
    let out = tmp("gpu-nan.json");
    let o = train(&out, &["--backend", "gpu", "--set", "learning_rate=100000"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let m = Manifest::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let s = m.stopped.clone().expect("the stop is recorded");
    assert!(s.reason.contains("learning rate"), "{}", s.reason);
    assert_eq!(m.steps_completed, s.step - 1, "the steps before the failing one are all kept");
    assert_eq!(m.backend, "gpu");
    let o = run(&["replay", "-q", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn auto_hands_a_run_the_gpu_cannot_take_to_the_cpu() {
    // cpu_threads free only varies on CPU threads over chunks, which only
    // the CPU engine computes: the GPU refuses the run, and any (auto with
    // software GPUs allowed) trains on the CPU, saying why.
    let out = tmp("auto-threads.json");
    let o = run(&[
        "train",
        "--backend",
        "any",
        "--steps",
        "20",
        "--threads",
        "2",
        "--chunks",
        "4",
        "--free",
        "cpu_threads",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let m = Manifest::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(m.backend, "cpu");
    assert!(m.backend_history[0].reason.contains("chunks = 4"), "{}", m.backend_history[0].reason);
    let o = run(&[
        "train",
        "-q",
        "--backend",
        "gpu",
        "--steps",
        "5",
        "--threads",
        "2",
        "--chunks",
        "4",
        "--free",
        "cpu_threads",
        "--out",
        tmp("never.json").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim_end().lines().count(), 1, "{}", text(&o));
}

/// The GPU engine sums the whole batch at once: a run cut into chunks is
/// never trained there with its chunks ignored (it was: `--backend gpu
/// --chunks 4` gave the chunks-1 weights under a manifest saying 4).
#[test]
fn a_run_cut_into_chunks_never_trains_on_the_gpu() {
    let gpu = run(&[
        "train",
        "-q",
        "--backend",
        "gpu",
        "--steps",
        "5",
        "--chunks",
        "4",
        "--out",
        tmp("never4.json").to_str().unwrap(),
    ]);
    assert_eq!(gpu.status.code(), Some(3), "{}", text(&gpu));
    let err = String::from_utf8_lossy(&gpu.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{}", text(&gpu));
    assert!(err.contains("chunks = 4") && err.contains("set chunks to 1"), "{err}");
    let (any, cpu) = (tmp("chunks4-any.json"), tmp("chunks4-cpu.json"));
    for (backend, out) in [("any", &any), ("cpu", &cpu)] {
        let o = run(&[
            "train",
            "--backend",
            backend,
            "--level",
            "exact",
            "--steps",
            "30",
            "--chunks",
            "4",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let read = |p: &Path| Manifest::from_json(&std::fs::read_to_string(p).unwrap()).unwrap();
    let (a, c) = (read(&any), read(&cpu));
    assert_eq!(a.backend, "cpu");
    assert!(a.backend_history[0].reason.contains("chunks = 4"), "{}", a.backend_history[0].reason);
    assert_eq!(a.weights_hash, c.weights_hash, "backend any with chunks 4 must give the CPU's chunked weights");
}

#[test]
fn level_exact_is_a_setting_and_replays() {
    let out = tmp("exact.json");
    let o = train(&out, &["--level", "exact"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["config"]["level"]["value"], "exact");
    assert_eq!(v["config"]["level"]["source"], "override");
    assert_eq!(v["level_requested"], "exact");
    assert_eq!(v["level_granted"], "exact", "{}", v["level_reason"]);
    let o = run(&["replay", "--quiet", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("identical"), "{}", text(&o));
    // The same as --set level=exact; a bad level is refused in one line.
    let o = train(&tmp("bad-level.json"), &["--level", "bitwise"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("level"), "{}", text(&o));
    no_panic(&o);
}
