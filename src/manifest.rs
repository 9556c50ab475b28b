//! The run manifest: the sealed form of a [`RunRecord`] (what a run depended
//! on and what it produced) as versioned, checksummed JSON (the schema is in
//! `docs/MANIFEST.md`); reading one back with every field checked against
//! the others and against the limits a fresh run would accept; comparing two.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Entry, Settings};
use crate::error::{Error, Result};
use crate::hash::Hash64;
pub use crate::record::{Adapter, DataRecord};
use crate::record::{InertSource, RunRecord, Segment, Stopped, ValPoint};
use crate::rng::{Stream, StreamSeeds};
use crate::sources::Source;
use crate::spec::{self, BackendKind, DeterminismLevel, GpuReduction};

/// A run manifest. Field order is the JSON's order, which
/// [`ManifestView`] (its serialised form) follows.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub manifest_version: u32,
    /// Kernel (arithmetic) version, [`spec::KERNEL_VERSION`].
    pub engine_version: u32,
    pub reprolab_version: String,
    /// The backend that ran the last step.
    pub backend: BackendKind,
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
    /// Free sources that could not change anything in this run, and why
    /// (left out of the JSON when there are none).
    #[serde(default)]
    pub inert: Vec<InertSource>,
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
    /// Every step's batch: the data-set rows in batch order (only with
    /// `train --record-batches`; left out of the JSON otherwise).
    #[serde(default)]
    pub batches: Option<Vec<Vec<u32>>>,
    /// SHA-256 of the manifest's canonical JSON without this field.
    pub checksum: String,
}

/// A manifest as written: the fields of [`Manifest`] in the same order, the
/// per-step histories borrowed (from a [`Manifest`] or straight from a
/// [`RunRecord`]), so that a manifest is sealed and written without copying
/// its history or building its JSON tree ([`ManifestView::write_json`]).
#[derive(Clone, Debug, Serialize)]
pub struct ManifestView<'a> {
    pub manifest_version: u32,
    pub engine_version: u32,
    pub reprolab_version: Cow<'a, str>,
    pub backend: BackendKind,
    pub adapter: Option<&'a Adapter>,
    pub backend_history: Cow<'a, [Segment]>,
    pub gpu_reduction: GpuReduction,
    pub user_agent: Cow<'a, str>,
    pub level_requested: DeterminismLevel,
    pub level_granted: DeterminismLevel,
    pub level_reason: Cow<'a, str>,
    pub config_version: u32,
    pub config: Cow<'a, BTreeMap<String, Entry>>,
    pub free: Cow<'a, [String]>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub inert: &'a [InertSource],
    pub seeds: &'a StreamSeeds,
    pub data: &'a DataRecord,
    pub data_fingerprint: &'a str,
    pub parameters: usize,
    pub steps_completed: usize,
    pub stopped: Option<&'a Stopped>,
    pub train_loss: &'a [f32],
    pub val_error_curve: &'a [ValPoint],
    pub val_error: f64,
    pub val_loss: Option<f64>,
    pub initial_weights_hash: Hash64,
    pub weights_hash: Hash64,
    pub hash_chain: &'a [Hash64],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batches: Option<&'a [Vec<u32>]>,
    pub checksum: Cow<'a, str>,
}

impl Serialize for Manifest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.view().serialize(s)
    }
}

impl<'a> ManifestView<'a> {
    /// The record `rec` so far, whose weights hash to `weights_hash` and
    /// score `final_val`, unsealed (an empty checksum: see
    /// [`ManifestView::sealed`]).
    pub fn of_record(rec: &'a RunRecord, weights_hash: Hash64, final_val: ValPoint) -> ManifestView<'a> {
        let backend_history = rec.backend_history();
        ManifestView {
            manifest_version: spec::MANIFEST_VERSION,
            engine_version: rec.settings.config.engine_version,
            reprolab_version: Cow::Borrowed(spec::CRATE_VERSION),
            backend: backend_history.last().map_or(BackendKind::Cpu, |s| s.backend),
            adapter: rec.adapter.as_ref(),
            backend_history: Cow::Owned(backend_history),
            gpu_reduction: rec.gpu_reduction,
            user_agent: Cow::Owned(crate::platform::user_agent()),
            level_requested: rec.level_requested(),
            level_granted: rec.level_granted(),
            level_reason: Cow::Owned(rec.level_reason()),
            config_version: spec::CONFIG_VERSION,
            config: Cow::Owned(rec.settings.entries()),
            free: Cow::Owned(rec.free.iter().map(|s| s.name().to_string()).collect()),
            inert: &rec.inert,
            seeds: &rec.seeds,
            data: &rec.data,
            data_fingerprint: &rec.data.fingerprint,
            parameters: rec.parameters,
            steps_completed: rec.step,
            stopped: rec.stopped.as_ref(),
            train_loss: &rec.train_loss,
            val_error_curve: &rec.val_curve,
            val_error: final_val.val_error,
            val_loss: final_val.val_loss,
            initial_weights_hash: rec.initial_hash,
            weights_hash,
            hash_chain: &rec.hash_chain,
            batches: rec.batches.as_deref(),
            checksum: Cow::Borrowed(""),
        }
    }

    /// The same view with its checksum computed (streamed: time linear in
    /// the steps, memory independent of them).
    pub fn sealed(mut self) -> ManifestView<'a> {
        self.checksum = Cow::Owned(self.checksum());
        self
    }

    /// SHA-256 of the canonical form without the checksum (what
    /// [`crate::sealed::read`] computes), streamed.
    pub fn checksum(&self) -> String {
        let mut h = crate::sealed::Sha256Writer::new();
        self.write_canonical(&mut h, true).expect("hashing does not fail");
        h.hex()
    }

    /// The view with its per-step histories cut to the steps after the
    /// first `steps` (and the validation points measured after them), and no
    /// checksum: what a checkpoint that continues a history file holds.
    pub fn after(self, steps: usize) -> ManifestView<'a> {
        let steps = steps.min(self.hash_chain.len());
        let first_point = self.val_error_curve.partition_point(|p| p.step <= steps);
        ManifestView {
            train_loss: &self.train_loss[steps..],
            hash_chain: &self.hash_chain[steps..],
            val_error_curve: &self.val_error_curve[first_point..],
            batches: self.batches.map(|b| &b[steps.min(b.len())..]),
            checksum: Cow::Borrowed(""),
            ..self
        }
    }

    /// The view without its per-step histories (left empty): the frame of
    /// the canonical form.
    fn frame(&self) -> serde_json::Map<String, Value> {
        let small = ManifestView {
            train_loss: &[],
            val_error_curve: &[],
            hash_chain: &[],
            batches: self.batches.map(|_| &[][..]),
            ..self.clone()
        };
        crate::sealed::small_object(&small)
    }

    /// Writes the canonical form (without the checksum at the top level;
    /// with it when nested in a checkpoint), streaming the histories.
    pub fn write_canonical(&self, w: &mut dyn std::io::Write, top_level: bool) -> std::io::Result<()> {
        self.write_canonical_in(w, &self.frame(), top_level)
    }

    /// [`ManifestView::write_canonical`] with the frame already made (a
    /// checkpoint makes its own and its manifest's in one).
    pub fn write_canonical_in(
        &self,
        w: &mut dyn std::io::Write,
        frame: &serde_json::Map<String, Value>,
        top_level: bool,
    ) -> std::io::Result<()> {
        use crate::sealed::write_canonical_array as array;
        crate::sealed::write_canonical_object(w, frame, top_level, &mut |key, w| {
            match key {
                "train_loss" => array(w, self.train_loss)?,
                "val_error_curve" => array(w, self.val_error_curve)?,
                "hash_chain" => array(w, self.hash_chain)?,
                "batches" => array(w, self.batches.unwrap_or_default())?,
                _ => return Ok(false),
            }
            Ok(true)
        })
    }

    /// Writes the manifest's text (pretty JSON and a newline, the bytes of
    /// [`Manifest::to_json`]) to `w` as it goes.
    pub fn write_json(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *w, self).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    }

    /// An owned manifest (copies the histories).
    pub fn to_manifest(&self) -> Manifest {
        Manifest {
            manifest_version: self.manifest_version,
            engine_version: self.engine_version,
            reprolab_version: self.reprolab_version.to_string(),
            backend: self.backend,
            adapter: self.adapter.cloned(),
            backend_history: self.backend_history.to_vec(),
            gpu_reduction: self.gpu_reduction,
            user_agent: self.user_agent.to_string(),
            level_requested: self.level_requested,
            level_granted: self.level_granted,
            level_reason: self.level_reason.to_string(),
            config_version: self.config_version,
            config: self.config.clone().into_owned(),
            free: self.free.to_vec(),
            inert: self.inert.to_vec(),
            seeds: self.seeds.clone(),
            data: self.data.clone(),
            data_fingerprint: self.data_fingerprint.to_string(),
            parameters: self.parameters,
            steps_completed: self.steps_completed,
            stopped: self.stopped.cloned(),
            train_loss: self.train_loss.to_vec(),
            val_error_curve: self.val_error_curve.to_vec(),
            val_error: self.val_error,
            val_loss: self.val_loss,
            initial_weights_hash: self.initial_weights_hash,
            weights_hash: self.weights_hash,
            hash_chain: self.hash_chain.to_vec(),
            batches: self.batches.map(<[_]>::to_vec),
            checksum: self.checksum.to_string(),
        }
    }
}

impl Manifest {
    /// The sealed form of a record whose final weights hash to
    /// `weights_hash` and score `final_val` (a copy of its history; the
    /// command line writes [`ManifestView::of_record`] instead).
    pub fn from_record(rec: &RunRecord, weights_hash: Hash64, final_val: ValPoint) -> Manifest {
        ManifestView::of_record(rec, weights_hash, final_val).sealed().to_manifest()
    }

    /// The manifest as written, borrowing its fields.
    pub fn view(&self) -> ManifestView<'_> {
        ManifestView {
            manifest_version: self.manifest_version,
            engine_version: self.engine_version,
            reprolab_version: Cow::Borrowed(&self.reprolab_version),
            backend: self.backend,
            adapter: self.adapter.as_ref(),
            backend_history: Cow::Borrowed(&self.backend_history),
            gpu_reduction: self.gpu_reduction,
            user_agent: Cow::Borrowed(&self.user_agent),
            level_requested: self.level_requested,
            level_granted: self.level_granted,
            level_reason: Cow::Borrowed(&self.level_reason),
            config_version: self.config_version,
            config: Cow::Borrowed(&self.config),
            free: Cow::Borrowed(&self.free),
            inert: &self.inert,
            seeds: &self.seeds,
            data: &self.data,
            data_fingerprint: &self.data_fingerprint,
            parameters: self.parameters,
            steps_completed: self.steps_completed,
            stopped: self.stopped.as_ref(),
            train_loss: &self.train_loss,
            val_error_curve: &self.val_error_curve,
            val_error: self.val_error,
            val_loss: self.val_loss,
            initial_weights_hash: self.initial_weights_hash,
            weights_hash: self.weights_hash,
            hash_chain: &self.hash_chain,
            batches: self.batches.as_deref(),
            checksum: Cow::Borrowed(&self.checksum),
        }
    }

    /// Recomputes the checksum after a deliberate change (tools and tests
    /// that build a manifest by hand; a reader refuses a stale checksum).
    pub fn seal(&mut self) {
        self.checksum = self.view().checksum();
    }

    /// Pretty JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest serialises") + "\n"
    }

    /// Reads a manifest, refusing text that is not JSON (truncated), of an
    /// unknown version, edited after it was written (checksum), or whose
    /// fields disagree with each other or exceed what a fresh run accepts.
    pub fn from_json(text: &str) -> Result<Manifest> {
        let v = crate::sealed::read(text, "manifest", spec::MANIFEST_VERSION, "was edited after it was written")?;
        let m: Manifest = serde_json::from_value(v)
            .map_err(|e| Error::Record(format!("not a valid manifest: {}", crate::sealed::one_line(&e.to_string()))))?;
        m.validate()?;
        Ok(m)
    }

    /// Checks every field against the others and against the limits a fresh
    /// run would accept, before anything is built from the record.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Record(format!("inconsistent manifest: {m}")));
        let n = self.steps_completed;
        if self.hash_chain.len() != n || self.train_loss.len() != n {
            return bad(format!(
                "{n} steps completed but {} hash chain links and {} losses",
                self.hash_chain.len(),
                self.train_loss.len()
            ));
        }
        if let Some(i) = self.train_loss.iter().position(|l| !l.is_finite()) {
            // A step whose loss is not finite stops the run uncompleted.
            return bad(format!("the loss of completed step {} is not finite", i + 1));
        }
        let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex64(&self.data_fingerprint) || self.data.fingerprint != self.data_fingerprint {
            return bad(format!(
                "data fingerprint \"{}\" is not 64 hex digits equal to the data record's",
                crate::error::echo(&self.data_fingerprint)
            ));
        }
        let settings = self.settings()?;
        let cfg = &settings.config;
        if n > cfg.steps {
            return bad(format!("{n} steps completed of a run of {} steps", cfg.steps));
        }
        if !crate::data::NAMES.contains(&self.data.name.as_str()) || self.data.name != cfg.dataset.name {
            return bad(format!("data set \"{}\" is not the configured one", crate::error::echo(&self.data.name)));
        }
        let latest = crate::data::latest_version(&self.data.name);
        if self.data.version == 0 || self.data.version > latest {
            return bad(format!("{} has versions 1 to {latest}, not {}", self.data.name, self.data.version));
        }
        if cfg.dataset.version.is_some_and(|v| v != self.data.version) {
            return bad(format!("the data version {} differs from the configured {}", self.data.version, cfg.dataset));
        }
        let mut pinned = cfg.clone();
        pinned.dataset.pinned = Some(self.data.version);
        pinned.validate().map_err(|e| Error::Record(format!("recorded configuration: {e}")))?;
        let (dim, classes) = crate::data::shape(&self.data.name);
        let mut widths = vec![dim];
        widths.extend_from_slice(&cfg.hidden);
        widths.push(classes);
        let params: usize = widths.windows(2).map(|p| p[0] * p[1] + p[1]).sum();
        if self.parameters != params || self.data.dim != dim || self.data.classes != classes {
            return bad(format!(
                "{} parameters, {} features and {} classes, but the configured network has {params}, {dim} and {classes}",
                self.parameters, self.data.dim, self.data.classes
            ));
        }
        if self.data.size != crate::data::size(&pinned.dataset) {
            return bad(format!(
                "data size {} is not the size of {}@{}",
                self.data.size, self.data.name, self.data.version
            ));
        }
        if self.engine_version != cfg.engine_version {
            return bad(format!(
                "engine version {} but the configuration says {}",
                self.engine_version, cfg.engine_version
            ));
        }
        let mut last = 0;
        for p in &self.val_error_curve {
            if p.step <= last || p.step > n || !(0.0..=1.0).contains(&p.val_error) {
                return bad(format!("validation point at step {} is out of order or range", p.step));
            }
            last = p.step;
        }
        let mut next = 1;
        for (i, s) in self.backend_history.iter().enumerate() {
            let last_seg = i + 1 == self.backend_history.len();
            // to_step is checked against n first, so adding 1 cannot overflow.
            if s.from_step != next || s.to_step > n || s.to_step + 1 < s.from_step || (last_seg && s.to_step != n) {
                return bad(format!(
                    "backend history stretch {}-{} does not continue at step {next} (of {n})",
                    s.from_step, s.to_step
                ));
            }
            next = s.to_step + 1;
        }
        if self.backend_history.is_empty() || self.backend_history.last().map(|s| s.backend) != Some(self.backend) {
            return bad("the backend history does not end on the recorded backend".into());
        }
        if let Some(s) = &self.stopped {
            if s.step != n + 1 {
                return bad(format!("stopped at step {} after {n} completed steps", s.step));
            }
        }
        if let Some(b) = &self.batches {
            let rows = self.data.size as u32;
            if b.len() != n || b.iter().any(|r| r.len() != cfg.batch_size || r.iter().any(|&x| x >= rows)) {
                return bad("the recorded batches do not match the steps, batch size or data".into());
            }
        }
        self.free_sources()?;
        Ok(())
    }

    /// The settings the run used.
    pub fn settings(&self) -> Result<Settings> {
        Settings::from_entries(&self.config).map_err(|e| Error::Record(format!("recorded configuration: {e}")))
    }

    /// The sources the run set free.
    pub fn free_sources(&self) -> Result<Vec<Source>> {
        crate::sources::parse_all(&self.free).map_err(|e| Error::Record(format!("recorded free sources: {e}")))
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
    /// The runs are the same run: same results, settings, seeds, data and
    /// backends. Differences in where they ran ([`Diff::environment`]) do
    /// not count.
    pub identical: bool,
    /// The same hash chain (so the same weights after every step), the same
    /// losses and the same final weights, whatever else differs.
    pub results_identical: bool,
    /// First step (1-based) whose hash-chain links differ, if any.
    pub first_divergent_step: Option<usize>,
    pub differences: Vec<Difference>,
    /// The sources of run-to-run variation that explain the differences.
    pub causes: Vec<String>,
    /// Differences in where the runs ran that do not bear on their results
    /// (the browser or OS, the reprolab build, the adapter's description, a
    /// setting's origin when its value is equal): not in `differences`.
    pub environment: Vec<Difference>,
}

/// Fields that describe where a run ran rather than what it computed (also:
/// a setting's origin when its value is the same on both sides, and the
/// adapter's description when both ran on the same backend to the same bits).
const ENVIRONMENT_FIELDS: [&str; 2] = ["user_agent", "reprolab_version"];

/// The source a differing field is evidence of, if any.
fn cause_of(field: &str, a: &Manifest, b: &Manifest) -> Option<Source> {
    let key = field.strip_prefix("config.").map(|k| k.trim_end_matches(".source"));
    match (field, key) {
        (_, Some("dataset")) => Some(Source::DataDrift),
        (_, Some("engine_version")) => Some(Source::EngineVersion),
        (_, Some("threads" | "chunks")) => Some(Source::CpuThreads),
        (_, Some(k)) if crate::sources::HPARAM_KEYS.contains(&k) => {
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
            let names = |m: &Manifest| m.backend_history.iter().map(|s| s.backend).collect::<Vec<_>>();
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
    let same_results = first.is_none()
        && a.steps_completed == b.steps_completed
        && a.weights_hash == b.weights_hash
        && a.train_loss.iter().map(|l| l.to_bits()).eq(b.train_loss.iter().map(|l| l.to_bits()));
    // The adapter's description is environment when both ran on the same
    // kind of backend and their chains agree.
    // Where a setting came from, when its value is the same in both runs,
    // is provenance, not a difference in what was computed.
    let same_value = |field: &str| {
        field
            .strip_prefix("config.")
            .and_then(|k| k.strip_suffix(".source"))
            .is_some_and(|k| a.config.get(k).map(|e| &e.value) == b.config.get(k).map(|e| &e.value))
    };
    let is_env = |field: &str| {
        ENVIRONMENT_FIELDS.contains(&field)
            || (field == "adapter" && a.backend == b.backend && same_results)
            || same_value(field)
    };
    let (environment, out): (Vec<Difference>, Vec<Difference>) = out.into_iter().partition(|d| is_env(&d.field));
    let identical = same_results && out.is_empty();
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
    Diff {
        identical,
        results_identical: same_results,
        first_divergent_step: first,
        differences: out,
        causes,
        environment,
    }
}

pub(crate) mod erased {
    /// Serialises any field to a JSON value (the diff, replay facts).
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

/// Compares a finished replay with the record: identical, or the first step
/// whose link differs (a run that stops at another step parts there).
pub fn compare(m: &Manifest, t: &RunRecord) -> ReplayOutcome {
    let step =
        if t.initial_hash != m.initial_weights_hash { Some(1) } else { first_divergence(&m.hash_chain, &t.hash_chain) };
    // A run that stops at another step (or not at all) parts there too.
    let step = step.or_else(|| {
        let stop = |s: &Option<Stopped>| s.as_ref().filter(|s| s.is_non_finite()).map(|s| s.step);
        (stop(&m.stopped) != stop(&t.stopped)).then_some(m.steps_completed + 1)
    });
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
