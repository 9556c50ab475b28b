//! The run manifest (DETERMINISM.md section 6): what a run depended on and
//! what it produced, as versioned, checksummed JSON; reading it back, diffing
//! two of them, and replaying one.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Entry, Settings};
use crate::hash::Hash64;
use crate::rng::{Stream, StreamSeeds};
use crate::sources::Source;
use crate::spec::GpuReduction;
use crate::spec::{self, DeterminismLevel};
use crate::train::{Segment, Stopped, Trainer, ValPoint};

/// The data set a run trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataRecord {
    pub name: String,
    pub version: u32,
    pub size: usize,
    pub dim: usize,
    pub classes: usize,
    pub fingerprint: String,
}

/// The GPU adapter a run used (null for CPU runs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adapter {
    pub vendor: String,
    pub architecture: String,
    pub description: String,
    pub graphics_backend: String,
}

/// A run manifest. Field order is the JSON's order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub manifest_version: u32,
    /// Kernel (arithmetic) version, [`spec::KERNEL_VERSION`].
    pub engine_version: u32,
    pub reprolab_version: String,
    /// Exactly `"cpu"` or `"gpu"`: the backend that ran the last step.
    pub backend: String,
    pub adapter: Option<Adapter>,
    /// Which backend ran which steps and why (a GPU run that lost its device
    /// goes on on the CPU).
    pub backend_history: Vec<Segment>,
    /// `"fixed"` (deterministic) or `"atomic"` (the free GPU reduction order).
    pub gpu_reduction: GpuReduction,
    pub user_agent: String,
    pub level_requested: DeterminismLevel,
    pub level_granted: DeterminismLevel,
    pub level_reason: String,
    pub config_version: u32,
    /// Every setting with its value and where it came from.
    pub config: BTreeMap<String, Entry>,
    /// Sources set free for this run.
    pub free: Vec<String>,
    /// Every stream's seed.
    pub seeds: StreamSeeds,
    pub data: DataRecord,
    pub data_fingerprint: String,
    pub parameters: usize,
    pub steps_completed: usize,
    pub stopped: Option<Stopped>,
    /// One value per completed step.
    pub train_loss: Vec<f32>,
    pub val_error_curve: Vec<ValPoint>,
    /// Final validation error, a fraction in [0, 1].
    pub val_error: f64,
    /// Null when not finite.
    pub val_loss: Option<f64>,
    pub initial_weights_hash: Hash64,
    /// Hash of the final weights.
    pub weights_hash: Hash64,
    /// One chain link per completed step.
    pub hash_chain: Vec<Hash64>,
    /// SHA-256 of the manifest's canonical JSON without this field.
    pub checksum: String,
}

/// Why a manifest could not be used (exit status 2 on the command line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError(pub String);

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ManifestError {}

/// Reads sealed JSON (a manifest or a checkpoint): refuses text that is not
/// JSON (truncated), not an object, of another `<what>_version`, or whose
/// content no longer hashes to its `checksum` (`changed` says how, in words).
pub(crate) fn read_sealed(text: &str, what: &str, version: u32, changed: &str) -> Result<Value, ManifestError> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        let hint = if e.is_eof() { " (the file looks truncated)" } else { "" };
        ManifestError(format!("not a readable {what}: invalid JSON{hint}: {e}"))
    })?;
    let obj = v.as_object().ok_or_else(|| ManifestError(format!("not a {what}: expected a JSON object")))?;
    let key = format!("{what}_version");
    let found = obj.get(&key).ok_or_else(|| ManifestError(format!("not a {what}: no {key} field")))?;
    if found.as_u64() != Some(u64::from(version)) {
        return Err(ManifestError(format!(
            "{what} version {found} is not supported: this reprolab {} reads version {version}",
            spec::CRATE_VERSION
        )));
    }
    let recorded = obj.get("checksum").and_then(Value::as_str).unwrap_or("").to_string();
    let computed = checksum_of(&v);
    if recorded != computed {
        return Err(ManifestError(format!(
            "the {what} {changed}: its checksum is {recorded:?} but its content hashes to {computed}"
        )));
    }
    Ok(v)
}

/// SHA-256 of the canonical form of a manifest value: keys sorted, compact,
/// without `checksum`.
pub(crate) fn checksum_of(v: &Value) -> String {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("checksum");
    }
    // serde_json's Map is a BTreeMap (no preserve_order): keys come out sorted.
    let text = serde_json::to_string(&v).expect("a JSON value serialises");
    crate::data::sha256_hex(text.as_bytes())
}

impl Manifest {
    /// The record of a trainer's run so far.
    pub fn from_trainer(t: &Trainer) -> Manifest {
        let last = t.val_curve.last().copied();
        let final_val = match last {
            Some(p) if p.step == t.step => p,
            _ => t.evaluate(),
        };
        let backend_history = t.backend_history();
        let mut m = Manifest {
            manifest_version: spec::MANIFEST_VERSION,
            engine_version: t.settings.config.engine_version,
            reprolab_version: spec::CRATE_VERSION.to_string(),
            backend: backend_history.last().map_or("cpu", |s| s.backend.as_str()).to_string(),
            adapter: t.adapter.clone(),
            backend_history,
            gpu_reduction: t.gpu_reduction,
            user_agent: crate::platform::user_agent(),
            // What was asked: every source pinned, or some set free.
            level_requested: if t.free.is_empty() { DeterminismLevel::RunToRun } else { DeterminismLevel::None },
            level_granted: t.level_granted(),
            level_reason: t.level_reason(),
            config_version: spec::CONFIG_VERSION,
            config: t.settings.entries(),
            free: t.free.iter().map(|s| s.name().to_string()).collect(),
            seeds: t.seeds.clone(),
            data: DataRecord {
                name: t.data.name.clone(),
                version: t.data.version,
                size: t.data.len(),
                dim: t.data.dim,
                classes: t.data.classes,
                fingerprint: t.data.fingerprint.clone(),
            },
            data_fingerprint: t.data.fingerprint.clone(),
            parameters: t.net.n_params,
            steps_completed: t.step,
            stopped: t.stopped.clone(),
            train_loss: t.train_loss.clone(),
            val_error_curve: t.val_curve.clone(),
            val_error: final_val.val_error,
            val_loss: final_val.val_loss,
            initial_weights_hash: t.initial_hash,
            weights_hash: crate::hash::weights_hash(&t.params),
            hash_chain: t.hash_chain.clone(),
            checksum: String::new(),
        };
        m.seal();
        m
    }

    /// Recomputes the checksum after a deliberate change (tools and tests
    /// that build a manifest by hand; a reader refuses a stale checksum).
    pub fn seal(&mut self) {
        // Through the text form, as a reader sees it: f32 values print in
        // their shortest form, which differs from their widened f64 value.
        let text = serde_json::to_string(&*self).expect("a manifest serialises");
        self.checksum = checksum_of(&serde_json::from_str(&text).expect("a manifest parses back"));
    }

    /// Pretty JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest serialises") + "\n"
    }

    /// Reads a manifest, refusing text that is not JSON (truncated), of an
    /// unknown version, or edited after it was written (checksum).
    pub fn from_json(text: &str) -> Result<Manifest, ManifestError> {
        let v = read_sealed(text, "manifest", spec::MANIFEST_VERSION, "was edited after it was written")?;
        let m: Manifest = serde_json::from_value(v).map_err(|e| ManifestError(format!("not a valid manifest: {e}")))?;
        if m.backend != "cpu" && m.backend != "gpu" {
            return Err(ManifestError(format!("backend {:?} is neither \"cpu\" nor \"gpu\"", m.backend)));
        }
        if m.hash_chain.len() != m.steps_completed || m.train_loss.len() != m.steps_completed {
            return Err(ManifestError(format!(
                "inconsistent manifest: {} steps completed but {} hash chain links and {} losses",
                m.steps_completed,
                m.hash_chain.len(),
                m.train_loss.len()
            )));
        }
        Ok(m)
    }

    /// The settings the run used.
    pub fn settings(&self) -> Result<Settings, ManifestError> {
        Settings::from_entries(&self.config).map_err(|e| ManifestError(format!("recorded configuration: {e}")))
    }

    /// The sources the run set free.
    pub fn free_sources(&self) -> Result<Vec<Source>, ManifestError> {
        crate::sources::parse_all(&self.free).map_err(ManifestError)
    }
}

/// One recorded difference between two runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Difference {
    pub field: String,
    pub a: Value,
    pub b: Value,
}

/// The result of comparing two manifests.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diff {
    pub identical: bool,
    /// First step (1-based) whose hash-chain links differ, if any.
    pub first_divergent_step: Option<usize>,
    pub differences: Vec<Difference>,
    /// The sources (DETERMINISM.md section 1) that explain the differences.
    pub causes: Vec<String>,
}

/// The source a differing field is evidence of, if any.
fn cause_of(field: &str, a: &Manifest, b: &Manifest) -> Option<Source> {
    let key = field.strip_prefix("config.").map(|k| k.trim_end_matches(".source"));
    match (field, key) {
        (_, Some("dataset")) => Some(Source::DataDrift),
        (_, Some("engine_version")) => Some(Source::EngineVersion),
        (_, Some("threads" | "chunks")) => Some(Source::CpuThreads),
        (_, Some(k)) if crate::train::HPARAM_KEYS.contains(&k) => {
            // A value that differs because an override was dropped (or added).
            let origin = |m: &Manifest| m.config.get(k).map(|e| e.source);
            if origin(a) != origin(b) || field.ends_with(".source") {
                Some(Source::HparamDrift)
            } else {
                None
            }
        }
        ("seeds.init", _) => Some(Source::Init),
        ("seeds.shuffle", _) => Some(Source::Shuffle),
        ("seeds.dropout", _) => Some(Source::Dropout),
        // The data seed only matters where it changed the data (synthetic sets).
        ("seeds.data", _) => (a.data_fingerprint != b.data_fingerprint).then_some(Source::DataDrift),
        ("data_fingerprint" | "data.version" | "data.size" | "data.name", _) => Some(Source::DataDrift),
        ("engine_version", _) => Some(Source::EngineVersion),
        ("gpu_reduction", _) => Some(Source::GpuReduction),
        ("backend_history", _) => {
            // Which backends ran, not where a longer run's last stretch ends.
            let names = |m: &Manifest| m.backend_history.iter().map(|s| s.backend.clone()).collect::<Vec<_>>();
            (names(a) != names(b)).then_some(Source::Backend)
        }
        ("level_granted" | "free", _) => None,
        ("backend" | "adapter", _) => Some(Source::Backend),
        _ => None,
    }
}

/// The first step (1-based) where two hash chains part, counting a chain that
/// ends early as parting at its first missing step.
pub fn first_divergence(a: &[Hash64], b: &[Hash64]) -> Option<usize> {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => Some(i + 1),
        None if a.len() != b.len() => Some(a.len().min(b.len()) + 1),
        None => None,
    }
}

/// Every recorded difference between two runs and where their chains part.
pub fn diff(a: &Manifest, b: &Manifest) -> Diff {
    let mut out = Vec::new();
    let mut push = |field: String, x: Value, y: Value| {
        if x != y {
            out.push(Difference { field, a: x, b: y });
        }
    };
    let keys: std::collections::BTreeSet<&String> = a.config.keys().chain(b.config.keys()).collect();
    for k in keys {
        let (x, y) = (a.config.get(k), b.config.get(k));
        push(
            format!("config.{k}"),
            x.map_or(Value::Null, |e| e.value.clone()),
            y.map_or(Value::Null, |e| e.value.clone()),
        );
        push(
            format!("config.{k}.source"),
            x.map_or(Value::Null, |e| Value::from(e.source.name())),
            y.map_or(Value::Null, |e| Value::from(e.source.name())),
        );
    }
    for s in Stream::ALL {
        push(format!("seeds.{}", s.name()), a.seeds.get(s).to_string().into(), b.seeds.get(s).to_string().into());
    }
    let js = |v: &dyn erased::Ser| v.value();
    push("free".into(), js(&a.free), js(&b.free));
    push("data_fingerprint".into(), js(&a.data_fingerprint), js(&b.data_fingerprint));
    push("data.name".into(), js(&a.data.name), js(&b.data.name));
    push("data.version".into(), js(&a.data.version), js(&b.data.version));
    push("data.size".into(), js(&a.data.size), js(&b.data.size));
    push("backend".into(), js(&a.backend), js(&b.backend));
    push("adapter".into(), js(&a.adapter), js(&b.adapter));
    // Which backend ran which steps (the reasons are words, not facts).
    let stretches = |m: &Manifest| {
        Value::from(
            m.backend_history
                .iter()
                .map(|s| format!("{} {}-{}", s.backend, s.from_step, s.to_step))
                .collect::<Vec<_>>(),
        )
    };
    push("backend_history".into(), stretches(a), stretches(b));
    push("gpu_reduction".into(), js(&a.gpu_reduction), js(&b.gpu_reduction));
    push("engine_version".into(), js(&a.engine_version), js(&b.engine_version));
    push("reprolab_version".into(), js(&a.reprolab_version), js(&b.reprolab_version));
    push("level_granted".into(), js(&a.level_granted), js(&b.level_granted));
    push("user_agent".into(), js(&a.user_agent), js(&b.user_agent));
    push("steps_completed".into(), js(&a.steps_completed), js(&b.steps_completed));
    push("stopped".into(), js(&a.stopped), js(&b.stopped));
    // The first link already covers the initial weights (chain genesis), so
    // runs whose initialisation differs part at step 1.
    let first = first_divergence(&a.hash_chain, &b.hash_chain);
    if a.initial_weights_hash != b.initial_weights_hash {
        push("initial_weights_hash".into(), js(&a.initial_weights_hash), js(&b.initial_weights_hash));
    }
    if let Some(step) = first {
        let at = |m: &Manifest| m.hash_chain.get(step - 1).map_or(Value::Null, |h| Value::from(h.to_string()));
        push(format!("hash_chain[step {step}]"), at(a), at(b));
    }
    let identical = out.is_empty() && first.is_none();
    let mut causes: Vec<Source> = out.iter().filter_map(|d| cause_of(&d.field, a, b)).collect();
    if first.is_some() {
        // A source free in either run varies by itself: float atomics and
        // thread arrival leave no other trace in the record.
        for m in [a, b] {
            causes.extend(m.free_sources().unwrap_or_default());
        }
    }
    causes.sort();
    causes.dedup();
    let causes = causes.iter().map(|c| c.name().to_string()).collect();
    Diff { identical, first_divergent_step: first, differences: out, causes }
}

mod erased {
    /// Serialises any field to a JSON value for [`super::diff`].
    pub trait Ser {
        fn value(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Ser for T {
        fn value(&self) -> serde_json::Value {
            serde_json::to_value(self).expect("a manifest field serialises")
        }
    }
}

/// How a replay ended.
#[derive(Clone, Debug, PartialEq)]
pub enum ReplayOutcome {
    /// Every recorded step matched.
    Identical { steps: usize },
    /// The chains part at `step` (1-based).
    Diverged {
        step: usize,
        recorded: Option<Hash64>,
        replayed: Option<Hash64>,
        recorded_loss: Option<f32>,
        replayed_loss: Option<f32>,
    },
}

/// The outcome of a replay plus the recorded facts that differ from this
/// machine (backend, adapter, engine version, data).
#[derive(Clone, Debug, PartialEq)]
pub struct Replay {
    pub outcome: ReplayOutcome,
    pub facts: Vec<Difference>,
}

/// The trainer that re-runs a manifest, every source pinned to the record
/// except `free`: seeded sources draw fresh seeds, `engine_version` takes the
/// current version, `data_drift` whatever the data set's name means now,
/// `hparam_drift` the code's defaults in place of overrides, `gpu_reduction`
/// and `cpu_threads` the scheduler's order. Sources the record itself had
/// free stay free (with their recorded seeds). Pinned data must match the
/// recorded fingerprint, or the re-run is refused.
pub fn rerun_trainer(m: &Manifest, free: &[Source]) -> Result<Trainer, ManifestError> {
    if !spec::ENGINE_VERSIONS.contains(&m.engine_version) && !free.contains(&Source::EngineVersion) {
        return Err(ManifestError(format!(
            "the run used engine version {} but this build has only engine versions {:?} (set engine_version free to \
             run it on the current one)",
            m.engine_version,
            spec::ENGINE_VERSIONS
        )));
    }
    let mut settings = m.settings()?;
    if !free.contains(&Source::DataDrift) {
        settings.config.dataset.pinned = Some(m.data.version);
    }
    let mut all_free = m.free_sources()?;
    all_free.extend_from_slice(free);
    all_free.sort();
    all_free.dedup();
    let mut seeds = m.seeds.clone();
    for stream in free.iter().filter_map(|s| s.stream()) {
        seeds.set(stream, crate::rng::entropy_seed().map_err(ManifestError)?);
    }
    crate::train::apply_free_settings(&mut settings, free);
    let t =
        Trainer::new(settings, seeds, all_free).map_err(|e| ManifestError(format!("recorded configuration: {e}")))?;
    if !free.contains(&Source::DataDrift) && t.data.fingerprint != m.data_fingerprint {
        return Err(ManifestError(format!(
            "data_drift pinned: {}@{} here has fingerprint {} but the run recorded {}; refusing to train on other data",
            m.data.name, m.data.version, t.data.fingerprint, m.data_fingerprint
        )));
    }
    Ok(t)
}

/// The trainer a manifest describes, everything pinned to the record.
pub fn replay_trainer(m: &Manifest) -> Result<Trainer, ManifestError> {
    rerun_trainer(m, &[])
}

/// The recorded facts that differ from this replay (backend, adapter, data,
/// runtime).
pub fn replay_facts(m: &Manifest, t: &Trainer, backend: &str, adapter: Option<&Adapter>) -> Vec<Difference> {
    let mut facts = Vec::new();
    let mut fact = |field: &str, a: Value, b: Value| {
        if a != b {
            facts.push(Difference { field: field.into(), a, b });
        }
    };
    fact("backend", m.backend.clone().into(), backend.into());
    fact(
        "adapter",
        serde_json::to_value(&m.adapter).unwrap_or(Value::Null),
        serde_json::to_value(adapter).unwrap_or(Value::Null),
    );
    fact("data_fingerprint", m.data_fingerprint.clone().into(), t.data.fingerprint.clone().into());
    fact("engine_version", m.engine_version.into(), t.settings.config.engine_version.into());
    fact("level_granted", m.level_granted.name().into(), t.level_granted().name().into());
    fact("user_agent", m.user_agent.clone().into(), crate::platform::user_agent().into());
    facts
}

/// Compares a finished replay with the record: identical, or the first step
/// whose link differs (a run that stops at another step parts there).
pub fn compare(m: &Manifest, t: &Trainer) -> ReplayOutcome {
    let step =
        if t.initial_hash != m.initial_weights_hash { Some(1) } else { first_divergence(&m.hash_chain, &t.hash_chain) };
    match step {
        None => ReplayOutcome::Identical { steps: m.steps_completed },
        Some(step) => ReplayOutcome::Diverged {
            step,
            recorded: m.hash_chain.get(step - 1).copied(),
            replayed: t.hash_chain.get(step - 1).copied(),
            recorded_loss: m.train_loss.get(step - 1).copied(),
            replayed_loss: t.train_loss.get(step - 1).copied(),
        },
    }
}

/// Re-runs a manifest on this machine's CPU, step by step, stopping at the
/// first step whose chain link differs. `progress` is called after every step.
pub fn replay(m: &Manifest, mut progress: impl FnMut(usize, usize)) -> Result<Replay, ManifestError> {
    let mut t = replay_trainer(m)?;
    let facts = replay_facts(m, &t, "cpu", None);
    let total = m.steps_completed;
    if t.initial_hash == m.initial_weights_hash {
        while t.step < total {
            if t.step().is_none() {
                break;
            }
            let s = t.step;
            if t.hash_chain[s - 1] != m.hash_chain[s - 1] {
                break;
            }
            progress(s, total);
        }
        // A recorded run that stopped early must stop at the same step here.
        if t.step == total && m.stopped.as_ref().is_some_and(|s| s.is_non_finite()) {
            t.step();
        }
    }
    Ok(Replay { outcome: compare(m, &t), facts })
}
