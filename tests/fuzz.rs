//! Deterministic mutation fuzzing of the three readers of untrusted files, on
//! stable Rust (issue 10, point 8): the manifest reader
//! (`Manifest::from_json` then `driver::rerun_setup`), the checkpoint reader
//! (`Checkpoint::from_json` then `restore`) and the config reader
//! (`Settings::apply_config_file` then `Config::validate`).
//!
//! Seeds: the committed corpus of real files in `tests/fuzz/corpus/<target>/`
//! (made by `tests/fuzz/corpus/make.sh` with the CLI; `regress-*` files are
//! inputs that once failed here). Mutations, from a xorshift generator with a
//! fixed seed so every run tries the same inputs: byte flips, inserted and
//! deleted bytes, splices of two files, dictionary tokens; edits of JSON
//! values (interesting numbers and strings, removed and added keys, grown and
//! shrunk arrays, values moved between files) then re-sealed with a valid
//! checksum so the input reaches validation; duplicate keys, deep nesting and
//! numbers beyond f64 and u64.
//!
//! Every input must be refused with a one-line message of at most
//! [`MESSAGE_MAX`] characters, or accepted consistently: an accepted record
//! re-serialises and reads back equal; what it builds (a setup, a restored
//! state) agrees with it; a sample of accepted inputs is trained a few steps
//! and the manifest of that run must read back too. A panic or a broken rule
//! saves the input under `$CARGO_TARGET_TMPDIR/fuzz/` and fails the test.
//!
//! `REPROLAB_FUZZ_ITERS=N` sets the inputs per target (default
//! [`DEFAULT_ITERS`]), `REPROLAB_FUZZ_SEED=S` the generator's seed.
#![cfg(not(target_arch = "wasm32"))]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use reprolab::checkpoint::Checkpoint;
use reprolab::config::Settings;
use reprolab::driver::{self, BackendRequest, Run};
use reprolab::sealed::checksum_of;
use reprolab::{Error, Manifest};
use serde_json::{json, Value};

/// Inputs per target in a default run (about 20 s for all three targets on
/// a busy 2-core machine in `cargo test --release`).
const DEFAULT_ITERS: usize = 10_000;

/// Longest refusal message allowed (the issue found messages of over 2,000
/// characters echoing hostile values).
const MESSAGE_MAX: usize = 1000;

/// Work (parameters x batch x steps) under which an accepted input is also
/// trained a few steps.
const TRAIN_BUDGET: usize = 20_000_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Manifest,
    Checkpoint,
    Config,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Manifest => "manifest",
            Target::Checkpoint => "checkpoint",
            Target::Config => "config",
        }
    }
}

/// xorshift64*: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// True `num` times in `den`.
    fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }
}

fn corpus_dir(t: Target) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus").join(t.name())
}

/// The corpus files of a target, sorted by name.
fn corpus(t: Target) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir(t))
        .unwrap_or_else(|e| panic!("{}: {e}", corpus_dir(t).display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", corpus_dir(t).display());
    files
}

// ---------------------------------------------------------------------------
// Mutations

const TOKENS: &[&str] = &[
    "\"",
    "\\",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "true",
    "-",
    "0",
    "-0",
    "1e999",
    "-1e999",
    "18446744073709551616",
    "-9223372036854775809",
    "1.7976931348623157e309",
    "4.9e-325",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\n\"",
    "\"checksum\":",
    "\"steps_completed\":",
    "\"manifest_version\":1,",
    "\"checkpoint_version\":1,",
    "{\"a\":{\"a\":{\"a\":[]}}}",
    "\u{feff}",
    "\u{0}",
    "\r\n",
];

const BYTES: &[u8] = b"\x00\x01\x7f\x80\xc3\xff\"\\{}[],:0123456789-+.eE \n\ttfn";

fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>, donors: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(6) {
        let len = data.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = BYTES[rng.below(BYTES.len())];
            }
            2 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                data.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let n = (1 + rng.below(64)).min(len - at);
                data.drain(at..at + n);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = (1 + rng.below(256)).min(len - at);
                let copy = data[at..at + n].to_vec();
                let to = rng.below(len + 1);
                data.splice(to..to, copy);
            }
            5 => {
                // Splice: this input's head, another's tail.
                let other = &donors[rng.below(donors.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            6 if len > 0 => data.truncate(rng.below(len)),
            7 => {
                let at = rng.below(len + 1);
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                data.splice(at..at, t.iter().copied());
            }
            _ => {
                // A number replaced by a bigger or stranger one.
                let digits: Vec<usize> = (0..len).filter(|&i| data[i].is_ascii_digit()).collect();
                if let Some(&at) = digits.get(rng.below(digits.len().max(1))) {
                    let mut end = at;
                    while end < data.len() && (data[end].is_ascii_digit() || b".eE+-".contains(&data[end])) {
                        end += 1;
                    }
                    let t = huge_number_text(rng);
                    data.splice(at..end, t.into_bytes());
                }
            }
        }
    }
}

fn huge_number_text(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => format!("1{}", "0".repeat(20 + rng.below(400))),
        1 => format!("{}e{}", 1 + rng.below(9), 300 + rng.below(100)),
        2 => format!("0.{}1", "0".repeat(rng.below(400))),
        3 => "18446744073709551616".into(),
        4 => format!("-{}", "9".repeat(1 + rng.below(40))),
        _ => format!("{}.{}e-{}", rng.below(10), rng.next(), rng.below(400)),
    }
}

fn long_string(rng: &mut Rng) -> String {
    let n = [100, 1_000, 10_000, 200_000][rng.below(4)];
    let c = ['9', 'a', '\n', 'é', ','][rng.below(5)];
    std::iter::repeat_n(c, n).collect()
}

fn deep(rng: &mut Rng, depth: usize) -> Value {
    let mut v = if rng.chance(1, 2) { json!(1) } else { json!({}) };
    for _ in 0..depth {
        v = if rng.chance(1, 2) { Value::Array(vec![v]) } else { json!({ "a": v }) };
    }
    v
}

fn interesting(rng: &mut Rng) -> Value {
    const NUMS: &[u64] = &[
        0,
        1,
        2,
        3,
        7,
        255,
        256,
        1437,
        1438,
        1439,
        1500,
        1677,
        1678,
        1679,
        1797,
        2097,
        16_384,
        16_385,
        65_536,
        999_999,
        1_000_000,
        1_000_001,
        (1 << 31) - 1,
        1 << 32,
        (1 << 53) - 1,
        1 << 53,
        u64::MAX,
    ];
    const FLOATS: &[f64] = &[
        0.0,
        -0.0,
        0.5,
        1.0,
        -1.0,
        1e-45,
        1e-320,
        0.1000000001,
        0.9405025,
        3.4028235e38,
        3.5e38,
        1e30,
        1e308,
        -1e308,
        f64::MIN_POSITIVE,
    ];
    const STRS: &[&str] = &[
        "",
        "0",
        "-1",
        "1e30",
        "3.5e38",
        "NaN",
        "inf",
        "-0",
        "0x10",
        " 5 ",
        "digits",
        "digits@0",
        "digits@1",
        "digits@3",
        "digits@4294967296",
        "spiral",
        "mnist",
        "16384,16384",
        "16384,16384,16384,16384",
        "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1",
        "128,",
        ",",
        "relu",
        "tanh",
        "init",
        "backend",
        "cpu",
        "gpu",
        "atomic",
        "fixed",
        "exact",
        "none",
        "interrupted",
        "non_finite",
        "default",
        "override",
        "0000000000000000",
        "FFFFFFFFFFFFFFFF",
        "a\nb",
        "\u{0}",
        "\u{202e}",
    ];
    match rng.below(9) {
        0 | 1 => json!(NUMS[rng.below(NUMS.len())]),
        2 => json!(-(rng.below(3000) as i64) - 1),
        3 => json!(FLOATS[rng.below(FLOATS.len())]),
        4 | 5 => json!(STRS[rng.below(STRS.len())]),
        6 => json!(long_string(rng)),
        7 => [Value::Null, json!(true), json!(false), json!([]), json!({}), json!([1, 2, 3])][rng.below(6)].clone(),
        _ => {
            let depth = 1 + rng.below(140);
            deep(rng, depth)
        }
    }
}

/// A random node (never the root when it has children).
fn pick<'a>(rng: &mut Rng, v: &'a mut Value) -> &'a mut Value {
    let mut cur = v;
    let mut depth = 0;
    loop {
        let n = match &*cur {
            Value::Object(m) => m.len(),
            Value::Array(a) => a.len(),
            _ => 0,
        };
        if n == 0 || (depth > 0 && rng.chance(1, 4)) {
            return cur;
        }
        let i = rng.below(n);
        depth += 1;
        cur = match cur {
            Value::Object(m) => m.values_mut().nth(i).unwrap(),
            Value::Array(a) => &mut a[i],
            _ => unreachable!(),
        };
    }
}

/// Fields that decide whether a record is consistent, as key paths.
const MANIFEST_PATHS: &[&str] = &[
    "steps_completed",
    "parameters",
    "engine_version",
    "backend",
    "gpu_reduction",
    "level_granted",
    "level_requested",
    "free",
    "inert",
    "stopped",
    "stopped.step",
    "stopped.kind",
    "data.name",
    "data.version",
    "data.size",
    "data.dim",
    "data.classes",
    "data_fingerprint",
    "seeds.init",
    "seeds.shuffle",
    "seeds.data",
    "val_error",
    "val_loss",
    "val_error_curve",
    "train_loss",
    "hash_chain",
    "backend_history",
    "batches",
    "adapter",
    "initial_weights_hash",
    "config",
    "config.dataset.value",
    "config.hidden.value",
    "config.batch_size.value",
    "config.steps.value",
    "config.steps",
    "config.eval_every.value",
    "config.val_fraction.value",
    "config.threads.value",
    "config.chunks.value",
    "config.learning_rate.value",
    "config.weight_decay.value",
    "config.dropout.value",
    "config.seed.value",
    "config.engine_version.value",
    "config.activation.value",
    "config.hidden.source",
];

const CHECKPOINT_PATHS: &[&str] = &[
    "step",
    "chain_head",
    "params_bits",
    "velocity_bits",
    "streams.shuffle_epoch",
    "streams.dropout_step",
    "streams.init_done",
    "data_cursor.epoch",
    "data_cursor.index",
    "manifest",
];

const CONFIG_KEYS: &[&str] = &[
    "version",
    "dataset",
    "hidden",
    "activation",
    "dropout",
    "learning_rate",
    "momentum",
    "weight_decay",
    "batch_size",
    "steps",
    "val_fraction",
    "seed",
    "eval_every",
    "engine_version",
    "threads",
    "chunks",
];

/// The node at a dotted key path, created (as null) when its parent is an
/// object that lacks the last key.
fn at_path<'a>(v: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    let mut cur = v;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        let obj = cur.as_object_mut()?;
        if i + 1 == parts.len() && !obj.contains_key(*p) {
            obj.insert(p.to_string(), Value::Null);
        }
        cur = obj.get_mut(*p)?;
    }
    Some(cur)
}

/// A target-specific field worth mutating.
fn pick_field<'a>(rng: &mut Rng, t: Target, v: &'a mut Value) -> Option<&'a mut Value> {
    match t {
        Target::Manifest => at_path(v, MANIFEST_PATHS[rng.below(MANIFEST_PATHS.len())]),
        Target::Checkpoint => {
            if rng.chance(1, 2) {
                at_path(v, CHECKPOINT_PATHS[rng.below(CHECKPOINT_PATHS.len())])
            } else {
                let p = MANIFEST_PATHS[rng.below(MANIFEST_PATHS.len())];
                at_path(v, &format!("manifest.{p}"))
            }
        }
        Target::Config => at_path(v, CONFIG_KEYS[rng.below(CONFIG_KEYS.len())]),
    }
}

fn tweak(rng: &mut Rng, v: &mut Value, donors: &[Value]) {
    match v {
        Value::Number(n) => {
            *v = if let Some(u) = n.as_u64() {
                match rng.below(6) {
                    0 => json!(u.wrapping_add(1)),
                    1 => json!(u.saturating_sub(1)),
                    2 => json!(u.saturating_mul(2)),
                    3 => json!(u / 2),
                    4 => json!(u as f64 + 0.5),
                    _ => json!(u.to_string()),
                }
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                match rng.below(6) {
                    0 => json!(-f),
                    1 => json!(f * 2.0),
                    2 => json!(f64::from_bits(f.to_bits() ^ 1)),
                    3 => json!(f as f32 as f64 + f64::EPSILON),
                    4 => json!(f.to_string()),
                    _ => json!(f * 1e300),
                }
            }
        }
        Value::String(s) => match rng.below(6) {
            0 => s.push(['0', '9', 'x', '\n', ',', '@'][rng.below(6)]),
            1 => {
                let keep = rng.below(s.chars().count() + 1);
                *s = s.chars().take(keep).collect();
            }
            2 => *s = s.to_uppercase(),
            3 => *s = format!("{s},{s}"),
            4 => *s = format!(" {s}"),
            _ => *s = format!("{s}@{}", rng.below(4)),
        },
        Value::Array(a) => {
            let len = a.len();
            match rng.below(6) {
                0 if len > 0 => {
                    a.remove(rng.below(len));
                }
                1 if len > 0 => {
                    let x = a[rng.below(len)].clone();
                    a.insert(rng.below(len + 1), x);
                }
                2 if len > 1 => a.swap(rng.below(len), rng.below(len)),
                3 if len > 0 => {
                    let x = a[rng.below(len)].clone();
                    let n = [1, 10, 1000, 5000][rng.below(4)];
                    a.extend(std::iter::repeat_n(x, n));
                }
                4 => a.clear(),
                _ => a.truncate(rng.below(len + 1)),
            }
        }
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            match rng.below(4) {
                0 if !keys.is_empty() => {
                    m.remove(&keys[rng.below(keys.len())]);
                }
                1 if !keys.is_empty() => {
                    let k = &keys[rng.below(keys.len())];
                    let x = m.remove(k).unwrap();
                    let new = match rng.below(4) {
                        0 => k.to_uppercase(),
                        1 => format!("{k}\n"),
                        2 => long_string(rng),
                        _ => format!("{k}_x"),
                    };
                    m.insert(new, x);
                }
                2 => {
                    let k = ["extra", "checksum", "version", "manifest_version", "a\nb"][rng.below(5)];
                    m.insert(k.into(), interesting(rng));
                }
                _ => {
                    let mut d = donors[rng.below(donors.len())].clone();
                    let x = pick(rng, &mut d).clone();
                    let k = keys.get(rng.below(keys.len().max(1))).cloned().unwrap_or_else(|| "x".into());
                    m.insert(k, x);
                }
            }
        }
        _ => *v = interesting(rng),
    }
}

fn mutate_value(rng: &mut Rng, t: Target, v: &mut Value, donors: &[Value]) {
    for _ in 0..1 + rng.below(3) {
        let node = if rng.chance(1, 2) { pick_field(rng, t, v) } else { None };
        let node = match node {
            Some(n) => n,
            None => pick(rng, v),
        };
        match rng.below(5) {
            0 | 1 => *node = interesting(rng),
            2 | 3 => tweak(rng, node, donors),
            _ => {
                // A value moved from another file (or elsewhere in this one).
                let mut d = donors[rng.below(donors.len())].clone();
                *node = pick(rng, &mut d).clone();
            }
        }
    }
}

/// Recomputes the checksum(s) a reader checks.
fn reseal(rng: &mut Rng, t: Target, v: &mut Value) {
    if t == Target::Checkpoint && rng.chance(3, 4) {
        if let Some(m) = v.get_mut("manifest").filter(|m| m.is_object()) {
            let c = checksum_of(m);
            m["checksum"] = json!(c);
        }
    }
    if t != Target::Config && v.is_object() {
        let c = checksum_of(v);
        v["checksum"] = json!(c);
    }
}

/// Inserts a duplicate of an object's first key at the start of that object
/// (`{"a":1,...}` becomes `{"a":0,"a":1,...}`): a reader that keeps the last
/// value sees the same document, whose checksum is still valid.
fn duplicate_key(rng: &mut Rng, text: &str, value: &Value) -> Option<String> {
    let starts: Vec<usize> = text.match_indices("{\"").map(|(i, _)| i).collect();
    let at = *starts.get(rng.below(starts.len().max(1)))?;
    let key_end = text[at + 2..].find('"')? + at + 2;
    let key = &text[at + 2..key_end];
    let dup = serde_json::to_string(value).unwrap();
    Some(format!("{}\"{key}\":{dup},{}", &text[..at + 1], &text[at + 1..]))
}

/// What one input was made by.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Made {
    Seed,
    Bytes,
    Json,
    DuplicateKey,
    Nesting,
}

fn make_input(rng: &mut Rng, t: Target, base: &[u8], donors: &[Vec<u8>], values: &[Value]) -> (Vec<u8>, Made) {
    let roll = rng.below(20);
    if roll < 6 {
        let mut data = base.to_vec();
        mutate_bytes(rng, &mut data, donors);
        return (data, Made::Bytes);
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(base) else {
        let mut data = base.to_vec();
        mutate_bytes(rng, &mut data, donors);
        return (data, Made::Bytes);
    };
    if roll == 6 {
        // Nesting deeper than any parser limit, in place of a value.
        let depth = [127, 128, 129, 200, 5_000, 100_000][rng.below(6)];
        let text = serde_json::to_string(&v).unwrap();
        let colons: Vec<usize> = text.match_indices("\":").map(|(i, _)| i + 2).collect();
        let at = colons.get(rng.below(colons.len().max(1))).copied().unwrap_or(0);
        let open = if rng.chance(1, 2) { "[" } else { "{\"a\":" };
        let close = if open == "[" { "]" } else { "}" };
        let nest = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        let mut end = at;
        let b = text.as_bytes();
        while end < b.len() && !b",}]".contains(&b[end]) {
            end += 1;
        }
        return (format!("{}{nest}{}", &text[..at], &text[end..]).into_bytes(), Made::Nesting);
    }
    mutate_value(rng, t, &mut v, values);
    if !rng.chance(1, 10) {
        reseal(rng, t, &mut v);
    }
    let text = if rng.chance(1, 2) { serde_json::to_string(&v) } else { serde_json::to_string_pretty(&v) }.unwrap();
    if roll == 7 {
        let dup = interesting(rng);
        if let Some(d) = duplicate_key(rng, &serde_json::to_string(&v).unwrap(), &dup) {
            return (d.into_bytes(), Made::DuplicateKey);
        }
    }
    (text.into_bytes(), Made::Json)
}

// ---------------------------------------------------------------------------
// Checks

/// A refusal must be one line of at most [`MESSAGE_MAX`] characters.
fn refused(e: &Error) -> Result<bool, String> {
    let m = e.to_string();
    if m.contains('\n') || m.contains('\r') {
        return Err(format!("a refusal message spans several lines: {m:?}"));
    }
    let n = m.chars().count();
    if n > MESSAGE_MAX {
        return Err(format!("a refusal message has {n} characters: {}...", m.chars().take(300).collect::<String>()));
    }
    if let Some(f) = e.field() {
        if f.contains('\n') || f.chars().count() > MESSAGE_MAX {
            return Err(format!("a refusal's field is not one short line: {f:?}"));
        }
    }
    Ok(false)
}

/// Trains a run a few steps on the CPU; the manifest it writes must read
/// back, as must its checkpoint.
fn train_a_little(mut run: Run, steps: usize) -> Result<(), String> {
    let cost = run.setup().net.n_params * run.setup().settings.config.batch_size.max(256);
    if cost.saturating_mul(steps.max(1)) > TRAIN_BUDGET {
        return Ok(());
    }
    if let Err(e) = pollster::block_on(run.advance(steps)) {
        return refused(&e).map(|_| ());
    }
    let m = run.manifest();
    Manifest::from_json(&m.to_json()).map_err(|e| format!("the manifest of a run trained from it is refused: {e}"))?;
    if run.record.stopped.is_none() && !run.finished() {
        let c = run.checkpoint();
        Checkpoint::from_json(&c.to_json())
            .map_err(|e| format!("the checkpoint of a run trained from it is refused: {e}"))?;
    }
    Ok(())
}

thread_local! {
    /// Accepted records whose text spells a value otherwise than reprolab
    /// writes it (their checksum changes when they are written again).
    static RESPELLED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn note_spelling(differs: bool) {
    if differs {
        RESPELLED.with(|c| c.set(c.get() + 1));
    }
}

fn check_manifest(rng: &mut Rng, text: &str) -> Result<bool, String> {
    let m = match Manifest::from_json(text) {
        Ok(m) => m,
        Err(e) => return refused(&e),
    };
    // Written again by reprolab (sealed afresh: the input may spell a value
    // another way, e.g. 0 for 0.0), it must read back the same.
    let mut again = m.clone();
    again.seal();
    note_spelling(again.checksum != m.checksum);
    let back =
        Manifest::from_json(&again.to_json()).map_err(|e| format!("an accepted manifest does not read back: {e}"))?;
    if back != again {
        return Err("an accepted manifest reads back different".into());
    }
    let setup = match driver::rerun_setup(&m, &[]) {
        Ok(s) => s,
        Err(e) => return refused(&e).map(|_| true),
    };
    if setup.steps_per_epoch() == 0 || setup.net.n_params != m.parameters || setup.data.len() != m.data.size {
        return Err(format!(
            "an accepted manifest builds another run: {} steps per epoch, {} parameters, {} examples",
            setup.steps_per_epoch(),
            setup.net.n_params,
            setup.data.len()
        ));
    }
    if rng.chance(1, 8) {
        match pollster::block_on(Run::rerun(&m, &[], Some(BackendRequest::Cpu))) {
            Ok(run) => train_a_little(run, m.steps_completed.clamp(1, 40))?,
            Err(e) => {
                refused(&e)?;
            }
        }
    }
    Ok(true)
}

fn check_checkpoint(rng: &mut Rng, text: &str) -> Result<bool, String> {
    let c = match Checkpoint::from_json(text) {
        Ok(c) => c,
        Err(e) => return refused(&e),
    };
    let mut again = c.clone();
    again.manifest.seal();
    again.checksum = reprolab::sealed::seal(&again);
    note_spelling(again.checksum != c.checksum);
    let back = Checkpoint::from_json(&again.to_json())
        .map_err(|e| format!("an accepted checkpoint does not read back: {e}"))?;
    if back != again {
        return Err("an accepted checkpoint reads back different".into());
    }
    let later = c.step.saturating_add(1);
    let more = [0, c.step, later, later.saturating_add(rng.below(100)), reprolab::config::MAX_STEPS + 1, usize::MAX];
    for steps in [None, Some(more[rng.below(more.len())])] {
        match c.restore(steps) {
            Ok((setup, rec, state)) => {
                if state.params.len() != setup.net.n_params
                    || rec.step != c.step
                    || rec.hash_chain.len() != c.step
                    || setup.steps_per_epoch() == 0
                {
                    return Err("a restored checkpoint disagrees with itself".into());
                }
            }
            Err(e) => {
                refused(&e)?;
            }
        }
    }
    if rng.chance(1, 8) {
        match pollster::block_on(Run::resume(&c, None, Some(BackendRequest::Cpu))) {
            // Run::resume keeps recording batches when the record has them.
            Ok(run) => train_a_little(run, 10)?,
            Err(e) => {
                refused(&e)?;
            }
        }
    }
    Ok(true)
}

fn check_config(rng: &mut Rng, text: &str) -> Result<bool, String> {
    let mut s = Settings::default();
    if let Err(e) = s.apply_config_file(text).and_then(|_| s.config.validate()) {
        return refused(&e);
    }
    let back = Settings::from_entries(&s.entries()).map_err(|e| format!("accepted settings do not read back: {e}"))?;
    if back != s {
        return Err("accepted settings read back different".into());
    }
    let setup = driver::new_setup(s, &[]).map_err(|e| format!("accepted settings build no run: {e}"))?;
    if setup.steps_per_epoch() == 0 {
        return Err("accepted settings give zero steps per epoch".into());
    }
    if rng.chance(1, 8) {
        train_a_little(Run::cpu(setup), 3)?;
    }
    Ok(true)
}

fn check(t: Target, rng: &mut Rng, input: &[u8]) -> Result<bool, String> {
    // The CLI refuses a file that is not UTF-8; the readers take text.
    let text = String::from_utf8_lossy(input);
    match t {
        Target::Manifest => check_manifest(rng, &text),
        Target::Checkpoint => check_checkpoint(rng, &text),
        Target::Config => check_config(rng, &text),
    }
}

// ---------------------------------------------------------------------------
// The loop

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name}: expected a number, got {v}")))
}

fn save(t: Target, i: usize, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{}-{i}.json", t.name()));
    std::fs::write(&p, input).unwrap();
    p
}

fn fuzz(t: Target) {
    let iters = env_usize("REPROLAB_FUZZ_ITERS").unwrap_or(DEFAULT_ITERS);
    let seed = env_usize("REPROLAB_FUZZ_SEED").unwrap_or(0x5EED) as u64;
    let mut rng = Rng::new(seed ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(t as u64 + 1)));
    let seeds = corpus(t);
    // Donors for splices and moved values: every target's corpus.
    let mut donors: Vec<Vec<u8>> = Vec::new();
    for other in [Target::Manifest, Target::Checkpoint, Target::Config] {
        donors.extend(corpus(other).into_iter().map(|(_, b)| b));
    }
    let values: Vec<Value> = donors.iter().filter_map(|b| serde_json::from_slice(b).ok()).collect();
    let mut pool: Vec<Vec<u8>> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let (mut accepted, mut made_counts) = (0usize, [0usize; 5]);
    let start = Instant::now();
    let total = seeds.len() + iters;
    for i in 0..total {
        let (input, made) = if i < seeds.len() {
            (seeds[i].1.clone(), Made::Seed)
        } else {
            let base = if !pool.is_empty() && rng.chance(1, 3) {
                pool[rng.below(pool.len())].clone()
            } else {
                seeds[rng.below(seeds.len())].1.clone()
            };
            make_input(&mut rng, t, &base, &donors, &values)
        };
        made_counts[made as usize] += 1;
        let mut check_rng = Rng::new(rng.next());
        let result = catch_unwind(AssertUnwindSafe(|| check(t, &mut check_rng, &input)));
        let failure = match result {
            Err(p) => {
                let what = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Some(format!("panic: {what}"))
            }
            Ok(Err(broken)) => Some(broken),
            Ok(Ok(true)) => {
                if made == Made::DuplicateKey && t != Target::Config {
                    Some("a record with a duplicate key was accepted".into())
                } else {
                    accepted += 1;
                    if made != Made::Seed {
                        if pool.len() < 256 {
                            pool.push(input.clone());
                        } else {
                            let j = rng.below(pool.len());
                            pool[j] = input.clone();
                        }
                    }
                    None
                }
            }
            Ok(Ok(false)) => {
                if made == Made::Seed && !seeds[i].0.starts_with("regress-") {
                    Some(format!("corpus file {} is refused", seeds[i].0))
                } else {
                    None
                }
            }
        };
        if let Some(f) = failure {
            let p = save(t, i, &input);
            let f: String = f.chars().take(400).collect();
            failures.push(format!("input {i} ({}): {f}", p.display()));
            if failures.len() >= 20 {
                break;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let summary = format!(
        "fuzz {}: {total} inputs ({} corpus, {} byte mutants, {} JSON mutants re-sealed or not, {} duplicate keys, \
         {} deep nesting), {accepted} accepted ({} spelled otherwise than reprolab writes), {} failures, {secs:.1} s, \
         seed {seed:#x}",
        t.name(),
        made_counts[Made::Seed as usize],
        made_counts[Made::Bytes as usize],
        made_counts[Made::Json as usize],
        made_counts[Made::DuplicateKey as usize],
        made_counts[Made::Nesting as usize],
        RESPELLED.with(|c| c.get()),
        failures.len()
    );
    println!("{summary}");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("summary-{}.txt", t.name())), format!("{summary}\n")).unwrap();
    assert!(failures.is_empty(), "{summary}\n{}", failures.join("\n"));
    // Mutants must also get past the checksum, or the fuzzer tests nothing
    // beyond it.
    assert!(accepted > seeds.len(), "{summary}: no mutant was accepted");
}

#[test]
fn fuzz_manifest_reader() {
    fuzz(Target::Manifest);
}

#[test]
fn fuzz_checkpoint_reader() {
    fuzz(Target::Checkpoint);
}

#[test]
fn fuzz_config_reader() {
    fuzz(Target::Config);
}
