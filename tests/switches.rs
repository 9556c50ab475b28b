//! The switchboard: every source of DETERMINISM.md section 1 is a real
//! switch. Pinned, a re-run of a recorded run is bit-identical; free, it
//! differs where it can, and `diff` names the source among its causes.
//! Checkpoints resume bit for bit and refuse corruption.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reprolab::Manifest;

fn tmp(name: &str) -> PathBuf {
    let dir =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("reprolab-switches-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reprolab"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn read(p: &Path) -> Manifest {
    Manifest::from_json(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Records a CPU run of 60 steps with `extra` settings.
fn record(name: &str, extra: &[&str]) -> PathBuf {
    let out = tmp(name);
    let mut args = vec!["train", "-q", "--backend", "cpu", "--out", out.to_str().unwrap()];
    if !extra.contains(&"--steps") {
        args.extend(["--steps", "60"]);
    }
    args.extend_from_slice(extra);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    out
}

/// Re-runs `recorded` with `free` sources free; returns the diff's JSON.
fn rerun(recorded: &Path, free: &[&str], name: &str) -> serde_json::Value {
    let out = tmp(name);
    let mut args = vec!["rerun", "-q", recorded.to_str().unwrap(), "--out", out.to_str().unwrap()];
    for f in free {
        args.extend(["--free", f]);
    }
    let o = run(&args);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
    let o = run(&["diff", "--json", recorded.to_str().unwrap(), out.to_str().unwrap()]);
    serde_json::from_slice(&o.stdout).unwrap()
}

fn causes(d: &serde_json::Value) -> Vec<String> {
    d["causes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect()
}

fn assert_switch(recorded: &Path, source: &str, name: &str) {
    let pinned = rerun(recorded, &[], &format!("{name}-pinned.json"));
    assert_eq!(pinned["identical"], true, "{source} pinned: the re-run differs: {pinned}");
    let free = rerun(recorded, &[source], &format!("{name}-free.json"));
    assert_eq!(free["identical"], false, "{source} free: the re-run is identical: the switch changes nothing");
    assert!(free["first_divergent_step"].is_number(), "{source} free: the hash chains did not part: {free}");
    assert!(causes(&free).contains(&source.to_string()), "{source} free: causes {:?} do not name it", causes(&free));
    eprintln!(
        "{source}: pinned identical; free parts at step {} with causes {:?}",
        free["first_divergent_step"],
        causes(&free)
    );
}

#[test]
fn seeded_sources_are_switches() {
    let rec = record("seeded.json", &[]);
    for source in ["init", "shuffle", "dropout"] {
        assert_switch(&rec, source, source);
    }
}

#[test]
fn engine_version_is_a_switch() {
    // Recorded on engine version 1; free means the current version (2).
    let rec = record("engine.json", &["--engine-version", "1"]);
    assert_switch(&rec, "engine_version", "engine");
    assert_eq!(read(&rec).engine_version, 1);
}

#[test]
fn data_drift_is_a_switch() {
    // Recorded on digits@1 named explicitly; free means what "digits" means now (version 2).
    let rec = record("data.json", &["--set", "dataset=digits@1"]);
    let out = tmp("data-free.json");
    let o = run(&["rerun", "-q", rec.to_str().unwrap(), "--free", "data_drift", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let (a, b) = (read(&rec), read(&out));
    assert_eq!((a.data.version, b.data.version), (1, 2));
    assert_ne!(a.data_fingerprint, b.data_fingerprint);
    assert_switch(&rec, "data_drift", "data");
    // A bare name recorded when it meant version 2 re-runs on version 2 pinned.
    let bare = record("data-bare.json", &[]);
    assert_eq!(read(&bare).data.version, 2);
    assert_eq!(rerun(&bare, &[], "data-bare-pinned.json")["identical"], true);
    // Pinned data whose fingerprint differs from the record is refused (exit 2).
    let mut m = read(&rec);
    m.data_fingerprint = "0".repeat(64);
    m.data.fingerprint = "0".repeat(64);
    m.seal();
    let bad = tmp("data-bad.json");
    std::fs::write(&bad, m.to_json()).unwrap();
    let o = run(&["rerun", "-q", bad.to_str().unwrap(), "--out", tmp("never.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("refusing to train on other data"), "{}", text(&o));
}

#[test]
fn hparam_drift_is_a_switch() {
    // The seed's story: the recorded run had overrides; a colleague reruns without them.
    let rec = record("hparam.json", &["--set", "learning_rate=0.08", "--set", "dropout=0.2"]);
    assert_switch(&rec, "hparam_drift", "hparam");
    assert_eq!(causes(&rerun(&rec, &["hparam_drift"], "hparam-causes.json")), vec!["hparam_drift"]);
    let d = rerun(&rec, &["hparam_drift"], "hparam-free2.json");
    let fields: Vec<&str> = d["differences"].as_array().unwrap().iter().map(|x| x["field"].as_str().unwrap()).collect();
    for f in ["config.learning_rate", "config.learning_rate.source", "config.dropout", "config.dropout.source"] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    assert!(!fields.contains(&"config.momentum"), "a default value moved: {fields:?}");
}

#[test]
fn cpu_threads_pinned_is_independent_of_the_thread_count_and_free_is_measured() {
    // Pinned: chunk order, whatever the number of threads.
    let one = record("threads-1.json", &["--threads", "1", "--chunks", "6"]);
    let three = record("threads-3.json", &["--threads", "3", "--chunks", "6"]);
    let five = record("threads-5.json", &["--threads", "5", "--chunks", "6"]);
    let (a, b, c) = (read(&one), read(&three), read(&five));
    assert_eq!(a.hash_chain, b.hash_chain, "1 and 3 threads differ with cpu_threads pinned");
    assert_eq!(a.hash_chain, c.hash_chain, "1 and 5 threads differ with cpu_threads pinned");
    // Chunks change the arithmetic (partial sums), as recorded.
    let whole = record("threads-whole.json", &[]);
    assert_ne!(read(&whole).hash_chain, a.hash_chain);
    // Free: combined in order of arrival. Count how often runs part (real
    // threads on this machine's cores; the scheduler may repeat itself).
    let mut parted = 0;
    let tries = 6;
    for i in 0..tries {
        let p =
            record(&format!("threads-free-{i}.json"), &["--threads", "3", "--chunks", "6", "--free", "cpu_threads"]);
        let m = read(&p);
        assert_eq!(m.level_granted, reprolab::DeterminismLevel::None);
        if m.hash_chain != b.hash_chain {
            parted += 1;
        }
    }
    eprintln!("cpu_threads free: {parted}/{tries} runs parted from the pinned run (3 threads, 6 chunks)");
    // The switch itself is real: a different order of arrival changes the bits.
    let partial = |chunk: usize, v: f32| reprolab::train::Partial { chunk, loss_sum: v, grads: vec![v] };
    let ps = [partial(0, 1e8), partial(1, 1.0), partial(2, -1e8)];
    let (l1, _) = reprolab::train::combine(&ps);
    let (l2, _) = reprolab::train::combine(&[ps[0].clone(), ps[2].clone(), ps[1].clone()]);
    assert_ne!(l1.to_bits(), l2.to_bits(), "arrival order cannot change a sum of 3: the switch would be empty");
    // Where it cannot change anything (one thread, one chunk) it is accepted
    // and recorded as inert, with the reason and what would let it act.
    let x = tmp("x.json");
    let o = run(&["train", "--backend", "cpu", "--steps", "5", "--free", "cpu_threads", "--out", x.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("cpu_threads is free but cannot act here"), "{}", text(&o));
    let m = read(&x);
    assert_eq!(m.inert.len(), 1, "{:?}", m.inert);
    assert_eq!(m.inert[0].source, "cpu_threads");
    assert!(m.inert[0].why.contains("threads >= 2"), "{}", m.inert[0].why);
    let o = run(&["train", "-q", "--backend", "cpu", "--chunks", "2", "--out", tmp("x.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn gpu_reduction_and_backend_are_switches() {
    let rec = tmp("gpu-rec.json");
    let o = run(&["train", "-q", "--backend", "gpu", "--steps", "40", "--out", rec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_switch(&rec, "gpu_reduction", "gpu-reduction");
    // Backend free on a machine that offers no GPU: the run goes to the CPU.
    let out = tmp("backend-free.json");
    let o = Command::new(env!("CARGO_BIN_EXE_reprolab"))
        .args(["rerun", "-q", rec.to_str().unwrap(), "--free", "backend", "--out", out.to_str().unwrap()])
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(read(&out).backend, "cpu");
    let o = run(&["diff", "--json", rec.to_str().unwrap(), out.to_str().unwrap()]);
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(causes(&d).contains(&"backend".to_string()), "{d}");
    // Pinned, the GPU run re-runs on the GPU, identical.
    assert_eq!(rerun(&rec, &[], "gpu-pinned.json")["identical"], true);
}

#[test]
fn checkpoints_resume_bit_for_bit_and_refuse_damage() {
    let dir = tmp("ck");
    let full = record("ck-full.json", &["--steps", "120"]);
    let o = run(&[
        "train",
        "-q",
        "--backend",
        "cpu",
        "--steps",
        "120",
        "--checkpoint-every",
        "50",
        "--checkpoint-dir",
        dir.to_str().unwrap(),
        "--out",
        tmp("ck-run.json").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let ck = dir.join("step-00000050.checkpoint.json");
    let resumed = tmp("ck-resumed.json");
    let o = run(&["resume", "-q", ck.to_str().unwrap(), "--out", resumed.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(&["diff", full.to_str().unwrap(), resumed.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "resumed run differs: {}", text(&o));
    // Corrupted (one digit changed), truncated, and from another version: exit 2.
    let good = std::fs::read_to_string(&ck).unwrap();
    let pos = good.find("\"params_bits\":[").unwrap() + 15;
    let digit = good.as_bytes()[pos];
    let mut corrupted = good.clone().into_bytes();
    corrupted[pos] = if digit == b'1' { b'2' } else { b'1' };
    for (name, content, needle) in [
        ("corrupted", String::from_utf8(corrupted).unwrap(), "corrupted"),
        ("truncated", good[..good.len() / 3].to_string(), "truncated"),
        ("version", good.replacen("\"checkpoint_version\":1", "\"checkpoint_version\":7", 1), "version 7"),
    ] {
        let p = tmp(&format!("ck-{name}.json"));
        std::fs::write(&p, &content).unwrap();
        let o = run(&["resume", "-q", p.to_str().unwrap(), "--out", tmp("never.json").to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o));
        assert!(text(&o).contains(needle), "{name}: {}", text(&o));
        assert!(!text(&o).contains("panicked"));
    }
}
