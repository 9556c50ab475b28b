//! Issue 10 ("nothing lost and nothing crashes") as regression tests of the
//! real command-line tool: one test per numbered point the native tool
//! covers (1 records validated before use, 2 limits before allocating,
//! 4 nothing lost on failure, 5 growth with steps, 6 records as data,
//! 7 messages). Point 3 (the JS API) is tested elsewhere; point 8 is
//! `tests/fuzz.rs`.
#![cfg(all(unix, not(target_arch = "wasm32")))]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use reprolab::sealed::checksum_of;
use reprolab::Manifest;
use serde_json::{json, Value};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_reprolab"))
}

/// A fresh folder for one test, under the target's temporary folder.
fn dir(test: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("robustness-{}", std::process::id())).join(test);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A CPU run of `steps` steps (small network unless `extra` says otherwise).
fn train(out: &Path, steps: usize, extra: &[&str]) -> Output {
    let steps = steps.to_string();
    let mut args = vec!["train", "--quiet", "--backend", "cpu", "--steps", &steps, "--out", s(out)];
    args.extend_from_slice(extra);
    run(&args)
}

/// Exit status `code`, no panic, and exactly one line on stderr, which is returned.
fn one_line_refusal(o: &Output, code: i32, what: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(code), "{what}: {}", text(o));
    assert!(!err.contains("panicked") && !err.contains("internal error"), "{what}: a panic: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: not one line: {err}");
    err
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Writes `v` with a valid checksum: a hand-edited record that passes the
/// checksum, so only validation stands between it and the engine. A
/// checkpoint's embedded manifest is sealed too.
fn write_resealed(p: &Path, mut v: Value) {
    if let Some(m) = v.get_mut("manifest") {
        let c = checksum_of(m);
        m["checksum"] = json!(c);
    }
    let c = checksum_of(&v);
    v["checksum"] = json!(c);
    std::fs::write(p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// The text of a top-level field of a pretty manifest, as written: from its
/// key to the end of its line, or of its array.
fn raw_field<'a>(text: &'a str, key: &str) -> &'a str {
    let at = text.find(&format!("\n  \"{key}\": ")).unwrap_or_else(|| panic!("no {key}"));
    let rest = &text[at..];
    let end = if rest[key.len() + 7..].starts_with('[') {
        rest.find("\n  ]").unwrap()
    } else {
        rest[1..].find('\n').unwrap()
    };
    &rest[..end + 1]
}

fn replay_identical(manifest: &Path) {
    let o = run(&["replay", "--quiet", s(manifest)]);
    assert_eq!(o.status.code(), Some(0), "replay of {}: {}", manifest.display(), text(&o));
    assert!(text(&o).contains("identical"), "{}", text(&o));
}

fn temporaries_in(d: &Path) -> Vec<String> {
    std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp~"))
        .collect()
}

// --- Point 1: every record is validated before anything is built from it.

#[test]
fn point1_resealed_records_are_refused_in_one_line_never_a_panic() {
    let d = dir("point1");
    let m = d.join("m.json");
    let ckdir = d.join("ck");
    let o = train(&m, 20, &["--set", "hidden=8", "--checkpoint-every", "10", "--checkpoint-dir", s(&ckdir)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let ck = ckdir.join("step-00000010.checkpoint.json");
    let (good_m, good_ck) = (read_json(&m), read_json(&ck));

    // data.version 0 with a batch between 1439 and 1678: zero steps per
    // epoch once, a division by zero in train.rs.
    for batch in [1439, 1500, 1678] {
        let mut v = good_m.clone();
        v["data"]["version"] = json!(0);
        v["config"]["batch_size"]["value"] = json!(batch);
        let bad = d.join(format!("a-{batch}.json"));
        write_resealed(&bad, v);
        for args in
            [vec!["replay", "--quiet", s(&bad)], vec!["rerun", "--quiet", s(&bad), "--out", s(&d.join("rerun.json"))]]
        {
            let err = one_line_refusal(&run(&args), 2, &format!("{args:?}"));
            assert!(err.contains("digits has versions 1 to 2, not 0"), "{args:?}: {err}");
        }
        let mut c = good_ck.clone();
        c["manifest"]["data"]["version"] = json!(0);
        c["manifest"]["config"]["batch_size"]["value"] = json!(batch);
        let bad_ck = d.join(format!("b-{batch}.json"));
        write_resealed(&bad_ck, c);
        let o = run(&["resume", "--quiet", s(&bad_ck), "--out", s(&d.join("resumed.json"))]);
        let err = one_line_refusal(&o, 2, "resume of a data.version 0 checkpoint");
        assert!(err.contains("digits has versions 1 to 2, not 0"), "{err}");
    }
    assert!(!d.join("rerun.json").exists() && !d.join("resumed.json").exists(), "a refused record wrote a run");

    // A checkpoint whose record lacks config.steps, under resume --steps.
    let mut c = good_ck.clone();
    c["manifest"]["config"].as_object_mut().unwrap().remove("steps");
    let no_steps = d.join("c.json");
    write_resealed(&no_steps, c);
    let o = run(&["resume", "--quiet", s(&no_steps), "--steps", "30", "--out", s(&d.join("resumed.json"))]);
    let err = one_line_refusal(&o, 2, "resume --steps of a checkpoint without config.steps");
    assert!(err.contains("steps: missing from the recorded configuration"), "{err}");

    // A checkpoint whose record has fewer losses than steps.
    let mut c = good_ck.clone();
    c["manifest"]["train_loss"].as_array_mut().unwrap().pop();
    let short = d.join("d.json");
    write_resealed(&short, c);
    let o = run(&["resume", "--quiet", s(&short), "--out", s(&d.join("resumed.json"))]);
    let err = one_line_refusal(&o, 2, "resume of a checkpoint with fewer losses than steps");
    assert!(err.contains("10 hash chain links and 9 losses"), "{err}");
    assert!(!d.join("resumed.json").exists(), "an inconsistent checkpoint resumed");
}

#[test]
fn point1_a_resumed_run_that_records_batches_writes_a_manifest_that_replays() {
    // Found by tests/fuzz.rs: the resumed run stopped recording its batches,
    // so `resume` exited 0 with a manifest that `replay` refused.
    let d = dir("point1-batches");
    let ckdir = d.join("ck");
    let o = train(
        &d.join("m.json"),
        12,
        &["--set", "hidden=8", "--record-batches", "--checkpoint-every", "6", "--checkpoint-dir", s(&ckdir)],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let resumed = d.join("resumed.json");
    let o = run(&["resume", "--quiet", s(&ckdir.join("step-00000006.checkpoint.json")), "--out", s(&resumed)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    replay_identical(&resumed);
    let m = Manifest::from_json(&std::fs::read_to_string(&resumed).unwrap()).unwrap();
    assert_eq!(m.batches.map(|b| b.len()), Some(12));
}

// --- Point 2: resources are bounded before anything is allocated.

/// Runs the tool under an address-space cap of 400 MB, so that allocating a
/// network beyond the limits would abort it instead of being refused.
fn capped(args: &[&str]) -> Output {
    Command::new("prlimit")
        .arg("--as=400000000")
        .arg(env!("CARGO_BIN_EXE_reprolab"))
        .args(args)
        .output()
        .expect("prlimit (util-linux) runs")
}

#[test]
fn point2_networks_beyond_the_limits_are_refused_before_allocating() {
    let d = dir("point2");
    let out = d.join("never.json");
    // The cap itself lets a small run through.
    let o = capped(&["train", "--quiet", "--backend", "cpu", "--steps", "5", "--set", "hidden=8", "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "a small run under the memory cap: {}", text(&o));
    std::fs::remove_file(&out).unwrap();

    for hidden in ["16384,16384", "16384,16384,16384"] {
        let set = format!("hidden={hidden}");
        let o = capped(&["train", "--quiet", "--backend", "cpu", "--set", &set, "--out", s(&out)]);
        let err = one_line_refusal(&o, 2, &set);
        assert!(err.contains("hidden") && err.contains("MAX_PARAMS"), "{set}: {err}");
    }
    // 200,000 layers of width 1 (a config file: one argument cannot be that long).
    let cfg = d.join("layers.json");
    std::fs::write(&cfg, json!({ "hidden": vec![1; 200_000] }).to_string()).unwrap();
    let o = capped(&["train", "--quiet", "--backend", "cpu", "--config", s(&cfg), "--out", s(&out)]);
    let err = one_line_refusal(&o, 2, "200,000 layers");
    assert!(err.contains("MAX_LAYERS"), "{err}");

    // A re-sealed manifest with four huge layers.
    let m = d.join("m.json");
    assert_eq!(train(&m, 5, &["--set", "hidden=8"]).status.code(), Some(0));
    let mut v = read_json(&m);
    v["config"]["hidden"]["value"] = json!("16384,16384,16384,16384");
    v["parameters"] = json!(64 * 16384 + 16384 + 3 * (16384 * 16384 + 16384) + 16384 * 10 + 10);
    let huge = d.join("huge.json");
    write_resealed(&huge, v);
    for args in [
        vec!["replay", "--quiet", s(&huge)],
        vec!["rerun", "--quiet", s(&huge), "--out", s(&out)],
        vec!["export", "--quiet", s(&huge), "--out", s(&d.join("w.safetensors"))],
    ] {
        let err = one_line_refusal(&capped(&args), 2, &format!("{args:?}"));
        assert!(err.contains("MAX_PARAMS"), "{args:?}: {err}");
    }
    assert!(!out.exists());
}

#[test]
fn point2_input_files_are_capped() {
    let d = dir("point2-files");
    let o = run(&["train", "--quiet", "--backend", "cpu", "--config", "/dev/zero", "--out", s(&d.join("never.json"))]);
    let err = one_line_refusal(&o, 2, "--config /dev/zero");
    assert!(err.contains("MAX_FILE_BYTES"), "{err}");
}

// --- Point 4: no completed step is lost, no file is damaged.

#[test]
fn point4_ctrl_c_writes_the_manifest_of_the_completed_steps() {
    let d = dir("point4-sigint");
    let out = d.join("m.json");
    let mut child = bin()
        .args(["train", "--backend", "cpu", "--set", "hidden=16", "--steps", "200000", "--out", s(&out)])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    // Progress comes every 10% when stderr is not a terminal.
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.starts_with("train step ") {
            break;
        }
    }
    assert!(seen.last().is_some_and(|l| l.starts_with("train step ")), "no progress: {seen:?}");
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    seen.extend(lines.map(|l| l.unwrap()));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen:?}");
    assert!(seen.iter().any(|l| l.contains("interrupted")), "{seen:?}");
    let m = Manifest::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!((20_000..200_000).contains(&m.steps_completed), "{} steps", m.steps_completed);
    assert_eq!(m.stopped.as_ref().map(|s| s.step), Some(m.steps_completed + 1));
    replay_identical(&out);
    assert!(temporaries_in(&d).is_empty());
}

#[test]
fn point4_a_failed_checkpoint_write_keeps_the_manifest_of_the_completed_steps() {
    let d = dir("point4-checkpoint");
    let out = d.join("m.json");
    let ck = d.join("ck");
    // The second checkpoint's name is taken by a folder.
    std::fs::create_dir_all(ck.join("step-00000050.checkpoint.json")).unwrap();
    let o = train(&out, 100, &["--set", "hidden=8", "--checkpoint-every", "25", "--checkpoint-dir", s(&ck)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("step-00000050.checkpoint.json"), "{}", text(&o));
    let m = Manifest::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(m.steps_completed, 50);
    replay_identical(&out);
    assert!(ck.join("step-00000025.checkpoint.json").is_file());
    assert!(temporaries_in(&d).is_empty() && temporaries_in(&ck).is_empty());
}

#[test]
fn point4_a_full_disk_keeps_the_manifest_and_leaves_no_temporary() {
    // A file size limit stands for a full disk: the checkpoints (about 200 kB
    // each) do not fit in 24 kB, the manifest of 30 steps does.
    let d = dir("point4-full");
    let out = d.join("m.json");
    let ck = d.join("ck");
    let o = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; exec prlimit --fsize=24000 \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_reprolab"))
        .args(["train", "--quiet", "--backend", "cpu", "--steps", "60", "--set", "hidden=128"])
        .args(["--checkpoint-every", "30", "--checkpoint-dir", s(&ck), "--out", s(&out)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("stopped after step 30"), "{}", text(&o));
    let m = Manifest::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(m.steps_completed, 30);
    replay_identical(&out);
    assert!(temporaries_in(&d).is_empty() && temporaries_in(&ck).is_empty(), "{:?}", temporaries_in(&ck));
    assert!(!ck.join("step-00000030.checkpoint.json").exists());
}

#[test]
fn point4_outputs_onto_inputs_devices_and_read_only_files_are_refused() {
    let d = dir("point4-out");
    let ckdir = d.join("ck");
    let m = d.join("m.json");
    assert_eq!(
        train(&m, 20, &["--set", "hidden=8", "--checkpoint-every", "10", "--checkpoint-dir", s(&ckdir)]).status.code(),
        Some(0)
    );
    let ck = ckdir.join("step-00000010.checkpoint.json");
    let before = std::fs::read(&ck).unwrap();
    let o = run(&["resume", "--quiet", s(&ck), "--out", s(&ck)]);
    let err = one_line_refusal(&o, 2, "resume ck --out ck");
    assert!(err.contains("also an input"), "{err}");
    assert_eq!(std::fs::read(&ck).unwrap(), before, "the checkpoint changed");
    let o = run(&["rerun", "--quiet", s(&m), "--out", s(&m)]);
    one_line_refusal(&o, 2, "rerun m --out m");

    // A character device. As root, the tool once replaced /dev/null with a
    // regular file: the test writes to a node of its own when it may make
    // one, and to /dev/null only when it cannot harm it.
    let node = d.join("null");
    let own = Command::new("mknod").args([s(&node), "c", "1", "3"]).status().is_ok_and(|s| s.success());
    let device = if own { node } else { PathBuf::from("/dev/null") };
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(true);
    if own || !root {
        let o = train(&device, 5, &["--set", "hidden=8"]);
        let err = one_line_refusal(&o, 2, "--out onto a device");
        assert!(err.contains("not a regular file"), "{err}");
        assert!(std::fs::metadata(&device).unwrap().file_type().is_char_device(), "the device was replaced");
    }
    if !own {
        eprintln!("note: mknod is not allowed here; {} tested as /dev/null", if root { "nothing" } else { "--out" });
    }

    // A read-only file.
    let ro = d.join("read-only.json");
    std::fs::write(&ro, "keep me").unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o444)).unwrap();
    let o = train(&ro, 5, &["--set", "hidden=8"]);
    let err = one_line_refusal(&o, 2, "--out onto a read-only file");
    assert!(err.contains("read-only"), "{err}");
    assert_eq!(std::fs::read_to_string(&ro).unwrap(), "keep me");
    assert_eq!(std::fs::metadata(&ro).unwrap().permissions().mode() & 0o777, 0o444);
    assert!(temporaries_in(&d).is_empty() && temporaries_in(&ckdir).is_empty());
}

// --- Point 5: memory stays flat and disk grows linearly with the steps.

/// Runs the tool to its end; its exit status, stderr and peak resident
/// memory in bytes (the kernel's ru_maxrss for that child, from wait4).
#[allow(clippy::zombie_processes)] // reaped by wait4, not by std
fn peak_memory(args: &[&str]) -> (Option<i32>, String, u64) {
    use std::io::Read;
    let mut child = bin().args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: plain data filled in by wait4 for our own child, which std's
    // Child never waits for after this.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (code, err, usage.ru_maxrss as u64 * 1024)
}

#[test]
fn point5_memory_stays_flat_and_checkpoint_disk_grows_linearly() {
    let d = dir("point5");
    let ck = d.join("ck");
    let (short, long) = (d.join("short.json"), d.join("long.json"));
    let common = ["train", "--quiet", "--backend", "cpu", "--set", "hidden=8", "--set", "batch_size=8"];
    let with = |steps: &str, out: &Path, extra: &[&str]| {
        let mut a = common.to_vec();
        a.extend(["--steps", steps, "--out", s(out)]);
        a.extend_from_slice(extra);
        peak_memory(&a)
    };
    let (code, err, small) = with("1000", &short, &[]);
    assert_eq!(code, Some(0), "{err}");
    let (code, err, big) = with("100000", &long, &["--checkpoint-every", "1000", "--checkpoint-dir", s(&ck)]);
    assert_eq!(code, Some(0), "{err}");
    // The record keeps 12 bytes a step (an 8-byte link, a 4-byte loss), up
    // to twice that while a vector grows; the manifest and the checkpoints
    // are streamed. The old writer built the manifest's JSON tree and text:
    // about 300 bytes a step, 30 MB over these 99,000 steps.
    let growth = big.saturating_sub(small);
    assert!(
        growth < 8_000_000,
        "peak memory grew {growth} bytes from 1,000 to 100,000 steps ({} then {} bytes)",
        small,
        big
    );

    // Every checkpoint holds the steps since the one before and names the
    // history file that holds the rest: the last is about as large as the
    // second (the old ones copied the whole history: 100 times larger).
    let size = |n: usize| std::fs::metadata(ck.join(format!("step-{n:08}.checkpoint.json"))).unwrap().len();
    let (second, last) = (size(2000), size(100_000));
    assert!(last < second + second / 4, "checkpoint bytes: {second} at step 2,000, {last} at step 100,000");
    let total: u64 = std::fs::read_dir(&ck).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    let manifest = std::fs::metadata(&long).unwrap().len();
    // 100 checkpoints of about 16 kB, the history file about a third of the
    // manifest (the old format: 163 MB here).
    assert!(total < 100 * (second + second / 4) + manifest, "checkpoint folder: {total} bytes");

    // A checkpoint that continues the history file resumes bit for bit.
    let resumed = d.join("resumed.json");
    let at = ck.join("step-00099000.checkpoint.json");
    assert!(std::fs::read_to_string(&at).unwrap().contains("\"checkpoint_version\":2"));
    let o = run(&["resume", "--quiet", s(&at), "--out", s(&resumed)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read(&resumed).unwrap(), std::fs::read(&long).unwrap(), "the resumed manifest differs");

    // Without its history file, or with it changed, it is refused in one line.
    let alone = d.join("alone");
    std::fs::create_dir_all(&alone).unwrap();
    let moved = alone.join("step-00099000.checkpoint.json");
    std::fs::copy(&at, &moved).unwrap();
    let never = d.join("never.json");
    let err = one_line_refusal(&run(&["resume", "--quiet", s(&moved), "--out", s(&never)]), 2, "no history file");
    assert!(err.contains("history-1.jsonl") && err.contains("missing"), "{err}");
    let mut history = std::fs::read(ck.join("history-1.jsonl")).unwrap();
    let digit = history.iter().position(|&b| b == b'e').unwrap();
    history[digit] = b'f';
    std::fs::write(alone.join("history-1.jsonl"), &history).unwrap();
    let err = one_line_refusal(&run(&["resume", "--quiet", s(&moved), "--out", s(&never)]), 2, "a changed history");
    assert!(err.contains("was changed after the checkpoint was written"), "{err}");
    std::fs::write(alone.join("history-1.jsonl"), &history[..1000]).unwrap();
    let err = one_line_refusal(&run(&["resume", "--quiet", s(&moved), "--out", s(&never)]), 2, "a cut history");
    assert!(err.contains("truncated"), "{err}");
    assert!(!never.exists());

    // Batches the manifest could not carry are refused before training.
    let o =
        run(&["train", "--quiet", "--backend", "cpu", "--steps", "1000000", "--record-batches", "--out", s(&never)]);
    let err = one_line_refusal(&o, 2, "--record-batches of 32 million rows");
    assert!(err.contains("MAX_RECORDED_ROWS"), "{err}");
    assert!(!never.exists());
}

// --- Point 6: records as data.

#[test]
fn point6_duplicate_keys_are_refused_even_with_a_valid_checksum() {
    let d = dir("point6-dup");
    let m = d.join("m.json");
    assert_eq!(train(&m, 20, &["--set", "hidden=8"]).status.code(), Some(0));
    let good = std::fs::read_to_string(&m).unwrap();
    // A reader keeping the last value sees the original record, whose checksum
    // still holds; one keeping the first sees 10 steps completed.
    let cases = [
        ("top", "\"steps_completed\": 20,", "\"steps_completed\": 10,\n  \"steps_completed\": 20,"),
        ("nested", "\"learning_rate\": {", "\"learning_rate\": {\n      \"value\": 0.5,"),
    ];
    for (name, from, to) in cases {
        assert!(good.contains(from), "{name}: the manifest has no {from}");
        let dup = d.join(format!("dup-{name}.json"));
        std::fs::write(&dup, good.replacen(from, to, 1)).unwrap();
        let last_wins: Value = serde_json::from_str(&std::fs::read_to_string(&dup).unwrap()).unwrap();
        assert_eq!(last_wins["checksum"].as_str(), Some(checksum_of(&last_wins).as_str()), "{name}: checksum");
        for args in [vec!["replay", "--quiet", s(&dup)], vec!["diff", s(&m), s(&dup)]] {
            let err = one_line_refusal(&run(&args), 2, &format!("{name} {args:?}"));
            assert!(err.contains("duplicate key"), "{name}: {err}");
        }
    }
}

#[test]
fn point6_a_resumed_run_has_the_same_curves_bit_for_bit() {
    // Every step evaluated, so a thousand validation points pass through a
    // checkpoint (inexact float parsing changed about 9% of them by an ULP).
    let d = dir("point6-resume");
    let (full, resumed, ck) = (d.join("full.json"), d.join("resumed.json"), d.join("ck"));
    let common = ["--set", "hidden=16", "--set", "eval_every=1"];
    assert_eq!(train(&full, 2000, &common).status.code(), Some(0));
    let mut args = common.to_vec();
    args.extend(["--checkpoint-every", "1000", "--checkpoint-dir", s(&ck)]);
    assert_eq!(train(&d.join("first.json"), 2000, &args).status.code(), Some(0));
    let o = run(&["resume", "--quiet", s(&ck.join("step-00001000.checkpoint.json")), "--out", s(&resumed)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let (a, b) = (std::fs::read_to_string(&full).unwrap(), std::fs::read_to_string(&resumed).unwrap());
    // The numbers as written: a parser that is itself inexact could read two
    // neighbouring values as one.
    for k in ["val_error_curve", "train_loss", "hash_chain", "val_error", "val_loss", "weights_hash"] {
        let (x, y) = (raw_field(&a, k), raw_field(&b, k));
        let first = x.lines().zip(y.lines()).position(|(p, q)| p != q);
        assert!(x == y, "{k} is written otherwise after a resume (line {first:?} of the field)");
    }
    let points = raw_field(&a, "val_error_curve");
    assert_eq!(points.matches("\"step\"").count(), 2000);
    // Exactly read (Rust's own float parser), value by value.
    let exact = |t: &str| -> Vec<u64> {
        let curve = raw_field(t, "val_error_curve");
        curve
            .split([',', '{', '}', '[', ']', '\n'])
            .filter_map(|f| f.split_once(':'))
            .filter(|(k, _)| matches!(k.trim(), "\"val_error\"" | "\"val_loss\""))
            .map(|(_, v)| v.trim().parse::<f64>().unwrap().to_bits())
            .collect()
    };
    assert_eq!(exact(&a).len(), 4000);
    assert_eq!(exact(&a), exact(&b));
    let o = run(&["diff", s(&full), s(&resumed)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

// --- Point 7: messages are one short line naming the real field.

#[test]
fn point7_messages_are_one_short_line() {
    let d = dir("point7");
    let out = d.join("never.json");
    for set in ["learning_rate=0.1\nx", "bad\nkey=1", "hidden=8\n8", "dataset=digits\r\n@1"] {
        let o = train(&out, 5, &["--set", set]);
        one_line_refusal(&o, 2, &format!("--set {set:?}"));
    }
    let cfg = d.join("newline-key.json");
    std::fs::write(&cfg, r#"{"learning\nrate": 0.1}"#).unwrap();
    one_line_refusal(&train(&out, 5, &["--config", s(&cfg)]), 2, "a config key with a newline");

    let long = "9".repeat(200_000);
    for (k, v) in [("seed", json!(long)), ("hidden", json!(long)), ("version", json!(long)), ("steps", json!([long]))] {
        let cfg = d.join(format!("{}.json", k.len()));
        std::fs::write(&cfg, json!({ k: v }).to_string()).unwrap();
        let err = one_line_refusal(&train(&out, 5, &["--config", s(&cfg)]), 2, &format!("a long {k}"));
        assert!(err.len() < 300, "{k}: a message of {} characters", err.len());
        assert!(err.contains(&format!("{k}:")), "{k}: {err}");
    }
    // A long value through --set (an argument is at most 128 kB).
    let set = format!("learning_rate={}", "1".repeat(100_000));
    let err = one_line_refusal(&train(&out, 5, &["--set", &set]), 2, "a long --set");
    assert!(err.len() < 300, "a message of {} characters", err.len());
    assert!(!out.exists());
}

#[test]
fn point7_the_real_field_is_named() {
    let d = dir("point7-field");
    let out = d.join("m.json");
    let o = train(&out, 50, &["--set", "hidden=8", "--set", "weight_decay=1e30"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("weight_decay") && !t.contains("learning rate"), "{t}");
    let m = Manifest::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(m.stopped.unwrap().reason.contains("weight_decay"));

    for key in ["learning_rate", "weight_decay", "momentum"] {
        let set = format!("{key}=3.5e38");
        let err = one_line_refusal(&train(&d.join("never.json"), 5, &["--set", &set]), 2, &set);
        assert!(err.contains(key) && err.contains("beyond the largest 32-bit float"), "{set}: {err}");
        assert!(!err.contains("not a finite number"), "{set}: {err}");
    }
}
