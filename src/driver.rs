//! The run driver: the one place that decides where a run trains and keeps
//! it going. It owns the backend policy (`cpu`, strict `gpu`, `auto`, and
//! `any` for a free `backend` source), the hand-over to the CPU when a GPU
//! fails (no step lost), following a record's backend stretches on a re-run
//! or replay, checkpoints and resumes, and the drawing of fresh seeds for
//! free sources. The command-line tool, the wasm exports and the JavaScript
//! wrapper only translate to and from it; a backend decision comes out as
//! data ([`BackendDecision`]), never as text to parse.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::checkpoint::Checkpoint;
use crate::config::Settings;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuEngine};
use crate::hash;
use crate::history::HistoryRef;
use crate::manifest::{self, Difference, Manifest, ManifestView, Replay, ReplayOutcome};
use crate::record::{Adapter, InertSource, RunRecord, StepReport, StopKind, Stopped, ValPoint};
use crate::rng::StreamSeeds;
use crate::setup::{EngineState, Setup};
use crate::sources::{self, Source};
use crate::spec::{self, BackendKind};
use crate::train::CpuEngine;

/// Where a run is asked to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendRequest {
    /// The CPU engine.
    Cpu,
    /// The GPU, strictly: no GPU (or a GPU that fails) is an error.
    Gpu,
    /// The GPU when there is a hardware one that can take the run, else the
    /// CPU. A software GPU (SwiftShader, lavapipe) is slower than the CPU
    /// engine, so `auto` trains on the CPU there and says so.
    Auto,
    /// Whatever this machine offers, a software GPU included: a free
    /// `backend` source.
    Any,
}

impl BackendRequest {
    /// Parses `cpu`, `gpu` or `auto`.
    pub fn parse(text: &str) -> Result<BackendRequest> {
        match text {
            "cpu" => Ok(BackendRequest::Cpu),
            "gpu" => Ok(BackendRequest::Gpu),
            "auto" => Ok(BackendRequest::Auto),
            _ => Err(Error::config(
                "backend",
                format!("expected auto, gpu or cpu, got \"{}\"", crate::error::echo(text)),
            )),
        }
    }

    /// The name as the APIs take it.
    pub fn name(self) -> &'static str {
        match self {
            BackendRequest::Cpu => "cpu",
            BackendRequest::Gpu => "gpu",
            BackendRequest::Auto => "auto",
            BackendRequest::Any => "any",
        }
    }

    /// How a decision's text begins for this request: `auto`, or
    /// `backend free` for [`BackendRequest::Any`].
    fn said(self) -> &'static str {
        match self {
            BackendRequest::Any => "backend free",
            other => other.name(),
        }
    }
}

/// Why a run trains where it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// The backend was asked for by name.
    Requested,
    /// `auto` found a GPU that can take the run.
    AutoGpu,
    /// `auto` found no GPU.
    AutoNoGpu,
    /// `auto` found only a software GPU and prefers the CPU engine.
    AutoSoftwareGpu,
    /// `auto` found a GPU that cannot take this run.
    AutoGpuRefused,
    /// The GPU failed mid-run; the run went on on the CPU.
    DeviceLost,
    /// A re-run follows the backends its record ran on.
    Recorded,
}

/// Where a run trains, the kind of decision, and the same in words.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BackendDecision {
    pub backend: BackendKind,
    pub kind: DecisionKind,
    pub text: String,
}

/// The engine a run trains on now.
enum Engines {
    Cpu(Box<CpuEngine>),
    Gpu(Box<GpuEngine>),
}

impl Engines {
    fn as_engine(&self) -> &dyn EngineInfo {
        match self {
            Engines::Cpu(e) => &**e,
            Engines::Gpu(e) => &**e,
        }
    }
}

/// The object-safe half of [`Engine`] (its `run_block` is async).
trait EngineInfo {
    fn state(&self) -> EngineState;
    fn params(&self) -> &[f32];
    fn adapter(&self) -> Option<&Adapter>;
}

impl<E: Engine> EngineInfo for E {
    fn state(&self) -> EngineState {
        Engine::state(self)
    }
    fn params(&self) -> &[f32] {
        Engine::params(self)
    }
    fn adapter(&self) -> Option<&Adapter> {
        Engine::adapter(self)
    }
}

/// A fresh seed from the platform's entropy, for a source set free.
pub fn entropy_seed() -> Result<u64> {
    crate::platform::entropy_u64().map_err(|m| Error::config("free", m))
}

/// Every stream's seed for a run of master seed `master` with `free`
/// sources: the free seeded streams draw fresh seeds from entropy.
pub fn seeds_for(master: u64, free: &[Source]) -> Result<StreamSeeds> {
    let mut seeds = StreamSeeds::from_master(master);
    for stream in free.iter().filter_map(|s| s.stream()) {
        seeds.set(stream, entropy_seed()?);
    }
    Ok(seeds)
}

/// The setup of a new run of `settings` with `free` sources set free.
pub fn new_setup(mut settings: Settings, free: &[Source]) -> Result<Setup> {
    sources::apply_free_settings(&mut settings, free);
    let seeds = seeds_for(settings.config.seed, free)?;
    Setup::new(settings, seeds, free.to_vec())
}

/// The setup that re-runs a manifest, every source pinned to the record
/// except `free`: seeded sources draw fresh seeds, `engine_version` takes the
/// current version, `data_drift` whatever the data set's name means now,
/// `hparam_drift` the code's defaults in place of overrides, `gpu_reduction`
/// and `cpu_threads` the scheduler's order. Sources the record itself had
/// free stay free (with their recorded seeds). Pinned data must match the
/// recorded fingerprint, or the re-run is refused.
pub fn rerun_setup(m: &Manifest, free: &[Source]) -> Result<Setup> {
    if !spec::ENGINE_VERSIONS.contains(&m.engine_version) && !free.contains(&Source::EngineVersion) {
        return Err(Error::Record(format!(
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
    let mut seeds = m.seeds.clone();
    for stream in free.iter().filter_map(|s| s.stream()) {
        seeds.set(stream, entropy_seed()?);
    }
    sources::apply_free_settings(&mut settings, free);
    let setup = Setup::new(settings, seeds, all_free).map_err(|e| match e {
        Error::Config { field, message } | Error::Limit { field, message } => {
            Error::Record(format!("recorded configuration: {field}: {message}"))
        }
        other => other,
    })?;
    if !free.contains(&Source::DataDrift) && setup.data.fingerprint != m.data_fingerprint {
        return Err(Error::Record(format!(
            "data_drift pinned: {}@{} here has fingerprint {} but the run recorded {}; refusing to train on other data",
            m.data.name, m.data.version, setup.data.fingerprint, m.data_fingerprint
        )));
    }
    Ok(setup)
}

/// Where the `exact` start-up probe's answers come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExactProbe {
    /// The device runs the probe kernel (every real run).
    Device,
    /// Tests: these answers stand for the device's.
    Answers(Vec<u32>),
}

/// Why the GPU `gpu` cannot train at `exact` (`None`: it can): the
/// start-up probe ([`crate::exact::judge`]) names the failed check.
async fn exact_on_gpu(gpu: &Gpu, probe: ExactProbe) -> Option<String> {
    let verdict = match probe {
        ExactProbe::Device => crate::gpu::probe::exact_probe(gpu).await,
        ExactProbe::Answers(a) => crate::exact::judge(&crate::exact::cpu_answers(), &a),
    };
    verdict.err().map(|f| format!("exact: not available on this adapter: {f}"))
}

/// Where a replay of a record can run to be compared with it, and the level
/// that comparison can promise.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplayPlan {
    pub backend: BackendKind,
    /// False when the record needs a GPU this environment lacks.
    pub can_replay: bool,
    pub reason: String,
    /// What an identical answer would prove: `run-to-run` on the recorded
    /// backend, `none` when it cannot run there.
    pub level: spec::DeterminismLevel,
}

/// Where a replay of `m` must run: the backend its record started on.
pub fn replay_plan(m: &Manifest, gpu_available: bool) -> ReplayPlan {
    let first = m.backend_history.first().map_or(BackendKind::Cpu, |s| s.backend);
    let level = m.level_granted;
    if level == spec::DeterminismLevel::Exact {
        return ReplayPlan {
            backend: BackendKind::Cpu,
            can_replay: true,
            reason: "granted exact: replayed on the CPU engine, whose exact bits are those of every stack that passed \
                     the start-up probe"
                .into(),
            level,
        };
    }
    match first {
        BackendKind::Cpu => ReplayPlan {
            backend: BackendKind::Cpu,
            can_replay: true,
            reason: "recorded on the CPU engine: replayed on the CPU engine, whose bits do not depend on the machine"
                .into(),
            level,
        },
        BackendKind::Gpu if gpu_available => ReplayPlan {
            backend: BackendKind::Gpu,
            can_replay: true,
            reason: format!(
                "recorded on the GPU ({}): replayed on this GPU; identical bits are promised only on the same \
                 adapter, driver and browser",
                m.adapter.as_ref().map_or("unknown adapter", |a| a.description.as_str())
            ),
            level,
        },
        BackendKind::Gpu => ReplayPlan {
            backend: BackendKind::Gpu,
            can_replay: false,
            reason: format!(
                "recorded on the GPU ({}) and this environment has {}: a CPU run sums in the same order but \
                 its exp, log and tanh differ from the GPU's, so the bits part at step 1; replay it where it ran",
                m.adapter.as_ref().map_or("unknown adapter", |a| a.description.as_str()),
                if cfg!(target_arch = "wasm32") { "no WebGPU" } else { "no GPU adapter" }
            ),
            level: spec::DeterminismLevel::None,
        },
    }
}

/// A run: its setup, its record, the engine training it and why there.
pub struct Run {
    setup: Arc<Setup>,
    /// The record of the run so far.
    pub record: RunRecord,
    engine: Engines,
    request: BackendRequest,
    decision: BackendDecision,
    /// A re-run of a record whose GPU handed over to the CPU after this step
    /// does the same here.
    cpu_from: Option<usize>,
    record_batches: bool,
    lose_device_at: Option<usize>,
}

impl Run {
    /// A run on the CPU engine, synchronously (tests, workers, the CPU path).
    pub fn cpu(setup: Setup) -> Run {
        let setup = Arc::new(setup);
        let state = setup.initial_state();
        let record = setup.new_record(hash::weights_hash(&state.params));
        let decision = BackendDecision {
            backend: BackendKind::Cpu,
            kind: DecisionKind::Requested,
            text: "cpu: requested (backend \"cpu\"): the CPU engine".into(),
        };
        Run::on_cpu(setup, record, state, BackendRequest::Cpu, decision)
    }

    fn on_cpu(
        setup: Arc<Setup>,
        mut record: RunRecord,
        state: EngineState,
        request: BackendRequest,
        decision: BackendDecision,
    ) -> Run {
        record.switch_backend(BackendKind::Cpu, decision.text.clone());
        let engine = Engines::Cpu(Box::new(CpuEngine::new(setup.clone(), state)));
        let mut run = Run {
            setup,
            record,
            engine,
            request,
            decision,
            cpu_from: None,
            record_batches: false,
            lose_device_at: None,
        };
        run.note_inert(false);
        run
    }

    /// Starts a new run of `setup` where `request` says.
    pub async fn start(setup: Setup, request: BackendRequest) -> Result<Run> {
        Run::start_probed(setup, request, ExactProbe::Device).await
    }

    /// [`Run::start`] with the `exact` start-up probe's answers taken from
    /// `probe` (tests feed the judge a wrong answer this way).
    pub async fn start_probed(setup: Setup, request: BackendRequest, probe: ExactProbe) -> Result<Run> {
        let setup = Arc::new(setup);
        let state = setup.initial_state();
        let record = setup.new_record(hash::weights_hash(&state.params));
        Run::place_probed(setup, record, state, request, None, probe).await
    }

    /// The backend policy: puts a run (new, resumed or re-run) on the
    /// backend `request` asks for. `recorded` is the reason a re-run gives
    /// when it follows its record.
    async fn place(
        setup: Arc<Setup>,
        record: RunRecord,
        state: EngineState,
        request: BackendRequest,
        recorded: Option<&str>,
    ) -> Result<Run> {
        Run::place_probed(setup, record, state, request, recorded, ExactProbe::Device).await
    }

    async fn place_probed(
        setup: Arc<Setup>,
        mut record: RunRecord,
        state: EngineState,
        request: BackendRequest,
        recorded: Option<&str>,
        probe: ExactProbe,
    ) -> Result<Run> {
        let cpu = |kind: DecisionKind, text: String| BackendDecision { backend: BackendKind::Cpu, kind, text };
        if request == BackendRequest::Cpu {
            let d = match recorded {
                Some(why) => cpu(DecisionKind::Recorded, why.to_string()),
                None => cpu(DecisionKind::Requested, "cpu: requested (backend \"cpu\"): the CPU engine".into()),
            };
            return Ok(Run::on_cpu(setup, record, state, request, d));
        }
        // The GPU engine sums the whole batch at once: a run cut into chunks
        // (partial sums, spec GRAD_ORDER) trains on the CPU, or not at all
        // when the GPU is demanded, never on the GPU with its chunks ignored.
        if let Some(why) = gpu_cannot_chunk(setup.settings.config.chunks) {
            if request == BackendRequest::Gpu {
                return Err(Error::Backend(format!("backend gpu: {why}: set chunks to 1, or ask for backend cpu")));
            }
            let d = cpu(DecisionKind::AutoGpuRefused, format!("{}: running on the CPU because {why}", request.said()));
            let mut run = Run::on_cpu(setup, record, state, request, d);
            run.note_inert(false);
            return Ok(run);
        }
        let gpu = match Gpu::open().await {
            Ok(g) => g,
            Err(e) if request == BackendRequest::Gpu => return Err(Error::Backend(format!("backend gpu: {e}"))),
            Err(e) => {
                let d = cpu(DecisionKind::AutoNoGpu, format!("{}: running on the CPU because {e}", request.said()));
                let mut run = Run::on_cpu(setup, record, state, request, d);
                run.note_inert(false);
                return Ok(run);
            }
        };
        let description = gpu.adapter.description.clone();
        if request == BackendRequest::Auto && gpu.adapter.is_software() {
            let d = cpu(
                DecisionKind::AutoSoftwareGpu,
                format!(
                    "auto: the only GPU here is a software one ({description}), slower than the CPU engine: training \
                     on the CPU (ask for backend gpu to use it anyway)"
                ),
            );
            let mut run = Run::on_cpu(setup, record, state, request, d);
            run.note_inert(true);
            return Ok(run);
        }
        if setup.settings.config.level == spec::DeterminismLevel::Exact {
            let refused = exact_on_gpu(&gpu, probe).await;
            if request == BackendRequest::Auto {
                if let Some(why) = &refused {
                    let d = cpu(
                        DecisionKind::AutoGpuRefused,
                        format!("auto: level exact asked for and the GPU cannot give it ({why}): training on the CPU"),
                    );
                    let mut run = Run::on_cpu(setup, record, state, request, d);
                    run.note_inert(true);
                    return Ok(run);
                }
            }
            if refused.is_none() {
                record.exact_probe_passed =
                    Some(format!("exact: the start-up probe passed on this adapter ({description})"));
            }
            record.exact_refused = refused;
        }
        let adapter = gpu.adapter.clone();
        let exact = setup.settings.config.level == spec::DeterminismLevel::Exact && record.exact_refused.is_none();
        let ar = if exact { crate::model::Arith::Exact } else { crate::model::Arith::Default };
        match GpuEngine::with_arith(gpu, setup.clone(), state.clone(), record.chain_head, ar) {
            Ok(engine) => {
                let (kind, text) = match (request, recorded) {
                    (_, Some(why)) => (DecisionKind::Recorded, format!("{why}: GPU {description}")),
                    (BackendRequest::Gpu, None) => {
                        (DecisionKind::Requested, format!("gpu: requested (backend \"gpu\"): GPU {description}"))
                    }
                    _ => (DecisionKind::AutoGpu, format!("auto: found a GPU: {description}")),
                };
                record.adapter = Some(adapter);
                record.switch_backend(BackendKind::Gpu, text.clone());
                let decision = BackendDecision { backend: BackendKind::Gpu, kind, text };
                let mut run = Run {
                    setup,
                    record,
                    engine: Engines::Gpu(Box::new(engine)),
                    request,
                    decision,
                    cpu_from: None,
                    record_batches: false,
                    lose_device_at: None,
                };
                run.note_inert(true);
                Ok(run)
            }
            Err(e) if request == BackendRequest::Gpu => Err(Error::Backend(format!("backend gpu: {e}"))),
            Err(e) => {
                let d =
                    cpu(DecisionKind::AutoGpuRefused, format!("{}: running on the CPU because {e}", request.said()));
                let mut run = Run::on_cpu(setup, record, state, request, d);
                run.note_inert(true);
                Ok(run)
            }
        }
    }

    /// Records which free sources cannot act where the run now trains.
    fn note_inert(&mut self, gpu_available: bool) {
        let backend = self.decision.backend;
        self.record.inert = self
            .record
            .free
            .iter()
            .map(|s| sources::effect(*s, &self.record.settings, Some(backend), gpu_available))
            .filter(|e| !e.acts)
            .map(|e| InertSource { source: e.source.name().into(), why: e.why })
            .collect();
    }

    /// Why the run trains where it does.
    pub fn decision(&self) -> &BackendDecision {
        &self.decision
    }

    /// What the run was asked to train on.
    pub fn request(&self) -> BackendRequest {
        self.request
    }

    /// Where the next step runs.
    pub fn backend(&self) -> BackendKind {
        match self.engine {
            Engines::Cpu(_) => BackendKind::Cpu,
            Engines::Gpu(_) => BackendKind::Gpu,
        }
    }

    /// The run's setup (settings, data, network).
    pub fn setup(&self) -> &Setup {
        &self.setup
    }

    /// The weights as they stand (the last state read back from a GPU).
    pub fn params(&self) -> &[f32] {
        self.engine.as_engine().params()
    }

    /// Weights, velocity and step.
    pub fn state(&self) -> EngineState {
        self.engine.as_engine().state()
    }

    /// The GPU adapter the run trains on now, if any.
    pub fn adapter(&self) -> Option<&Adapter> {
        self.engine.as_engine().adapter()
    }

    /// True when every step ran or the run stopped.
    pub fn finished(&self) -> bool {
        self.record.finished()
    }

    /// Records every step's batch rows in the record (`--record-batches`).
    pub fn record_batches(&mut self) {
        self.record_batches = true;
        if self.record.batches.is_none() {
            self.record.batches = Some((0..self.record.step).map(|t| self.setup.batch_rows(t)).collect());
        }
    }

    /// For tests of the fallback: the GPU device is destroyed after `step` steps.
    pub fn lose_device_at(&mut self, step: usize) {
        self.lose_device_at = Some(step);
        if let Engines::Gpu(g) = &mut self.engine {
            g.lose_device_at(step);
        }
    }

    fn note_batches(&mut self, from: usize) {
        if self.record_batches {
            let new: Vec<Vec<u32>> = (from..self.record.step).map(|t| self.setup.batch_rows(t)).collect();
            self.record.batches.get_or_insert_with(Vec::new).extend(new);
        }
    }

    /// Runs up to `n` steps on the CPU right here, when the run is on the
    /// CPU (so a panic reaches the caller's stack); `None` on the GPU.
    pub fn advance_now(&mut self, n: usize) -> Option<usize> {
        let from = self.record.step;
        let done = match &mut self.engine {
            Engines::Cpu(e) => e.run(&mut self.record, n),
            Engines::Gpu(_) => return None,
        };
        self.note_batches(from);
        Some(done)
    }

    /// Runs one step on the CPU; `None` when finished or on the GPU.
    pub fn step_now(&mut self) -> Option<StepReport> {
        let from = self.record.step;
        let r = match &mut self.engine {
            Engines::Cpu(e) => e.step(&mut self.record),
            Engines::Gpu(_) => None,
        };
        self.note_batches(from);
        r
    }

    /// Runs up to `n` steps wherever the run trains. A GPU that fails hands
    /// the run to the CPU from the last state read back (no step lost),
    /// except under a strict `gpu` request, where the run stops with the
    /// failure recorded and an [`Error::Backend`] is returned. A re-run
    /// following a record hands over where the record did.
    pub async fn advance(&mut self, n: usize) -> Result<usize> {
        let mut done = 0;
        while done < n && !self.finished() {
            let from = self.record.step;
            match &mut self.engine {
                Engines::Cpu(e) => {
                    done += e.run(&mut self.record, n - done);
                    self.note_batches(from);
                    break;
                }
                Engines::Gpu(g) => {
                    let limit = match self.cpu_from {
                        Some(at) => (n - done).min(at.saturating_sub(from)),
                        None => n - done,
                    };
                    let result = if limit == 0 { Ok(0) } else { g.run_block(&mut self.record, limit).await };
                    match result {
                        Ok(c) => {
                            done += c;
                            self.note_batches(from);
                            if self.cpu_from.is_some_and(|at| self.record.step >= at) {
                                self.hand_over(
                                    DecisionKind::Recorded,
                                    "re-run: the recorded run went on on the CPU from here".into(),
                                );
                            } else if c == 0 {
                                break;
                            }
                        }
                        Err(e) => {
                            let at = self.record.step;
                            if self.request == BackendRequest::Gpu {
                                let reason = format!(
                                    "step {}: the GPU failed ({e}); backend gpu does not fall back to the CPU",
                                    at + 1
                                );
                                self.record.stopped = Some(Stopped { step: at + 1, reason, kind: StopKind::Backend });
                                return Err(Error::Backend(format!("backend gpu failed after step {at}: {e}")));
                            }
                            self.hand_over(
                                DecisionKind::DeviceLost,
                                format!(
                                    "auto: the GPU failed after step {at} ({e}); continuing on the CPU from the state \
                                     read back at step {at}"
                                ),
                            );
                        }
                    }
                }
            }
        }
        Ok(done)
    }

    /// Moves the run to the CPU from the engine's last consistent state.
    fn hand_over(&mut self, kind: DecisionKind, text: String) {
        let state = self.engine.as_engine().state();
        self.record.switch_backend(BackendKind::Cpu, text.clone());
        self.engine = Engines::Cpu(Box::new(CpuEngine::new(self.setup.clone(), state)));
        self.decision = BackendDecision { backend: BackendKind::Cpu, kind, text };
        self.cpu_from = None;
    }

    /// Validation of the weights as they stand.
    pub fn evaluate(&self) -> ValPoint {
        crate::train::evaluate(&self.setup, self.params(), self.record.step)
    }

    /// The model's prediction over an `n x n` grid (2-D data sets).
    pub fn predict_grid(&self, n: usize, lo: f32, hi: f32) -> Result<(Vec<u8>, Vec<f32>)> {
        CpuEngine::new(self.setup.clone(), self.state()).predict_grid(n, lo, hi)
    }

    /// The final validation point: the last one measured when it is this
    /// step's, else measured now.
    fn final_val(&self) -> ValPoint {
        match self.record.val_curve.last() {
            Some(p) if p.step == self.record.step => *p,
            _ => self.evaluate(),
        }
    }

    /// The sealed record of the run so far (a copy of its history; see
    /// [`Run::manifest_view`]).
    pub fn manifest(&self) -> Manifest {
        self.manifest_view().to_manifest()
    }

    /// The sealed record of the run so far, borrowing its history: write it
    /// with [`ManifestView::write_json`] and memory does not grow with the
    /// steps beyond the record's own 12 bytes a step.
    pub fn manifest_view(&self) -> ManifestView<'_> {
        let final_val = self.final_val();
        ManifestView::of_record(&self.record, hash::weights_hash(self.params()), final_val).sealed()
    }

    /// A checkpoint of the run as it stands, holding its whole history
    /// (version 1).
    pub fn checkpoint(&self) -> Checkpoint {
        self.checkpoint_after(None)
    }

    /// A checkpoint that continues `history` (version 2: it holds only the
    /// steps after those in the history file), or the whole history.
    pub fn checkpoint_after(&self, history: Option<HistoryRef>) -> Checkpoint {
        let final_val = self.final_val();
        let view = ManifestView::of_record(&self.record, hash::weights_hash(self.params()), final_val);
        let manifest = match &history {
            None => view.sealed().to_manifest(),
            Some(h) => view.after(h.steps).to_manifest(),
        };
        Checkpoint::of(manifest, &self.record, &self.state(), self.setup.steps_per_epoch(), history)
    }

    /// The CPU engine, for chunk work from Web Workers (`None` on the GPU).
    pub fn cpu_engine(&mut self) -> Option<(&mut CpuEngine, &mut RunRecord)> {
        match &mut self.engine {
            Engines::Cpu(e) => Some((e, &mut self.record)),
            Engines::Gpu(_) => None,
        }
    }

    /// Continues a checkpointed run, bit for bit, on the backend it ran on
    /// (`request` overrides). `steps` may extend the run.
    pub async fn resume(ck: &Checkpoint, steps: Option<usize>, request: Option<BackendRequest>) -> Result<Run> {
        let (setup, record, state) = ck.restore(steps)?;
        let on_gpu = record.backend() == BackendKind::Gpu;
        let request = request.unwrap_or(if on_gpu { BackendRequest::Gpu } else { BackendRequest::Cpu });
        let why = if on_gpu {
            "gpu: the checkpointed run ran on the GPU, and this one follows it"
        } else {
            "cpu: the checkpointed run ran on the CPU, and this one follows it"
        };
        let followed = on_gpu && request == BackendRequest::Gpu;
        let mut run = Run::place(Arc::new(setup), record, state, request, Some(why)).await.map_err(|e| match e {
            Error::Backend(m) if followed => Error::Backend(format!(
                "{m}; the checkpointed run trained on the GPU: pass backend cpu to continue it on the CPU (bit for bit \
                 at level exact only)"
            )),
            other => other,
        })?;
        if run.record.batches.is_some() {
            // A run that recorded its batches goes on recording them, or its
            // manifest would hold fewer batches than steps.
            run.record_batches();
        }
        Ok(run)
    }

    /// Re-runs a manifest with `free` sources free. A record granted `exact`
    /// re-runs on the CPU engine (its bits are every probed stack's). Pinned
    /// `backend`: the recorded backends, stretch by stretch (a GPU stretch needs a GPU here,
    /// and a GPU that handed over to the CPU mid-run does so here at the same
    /// step), unless `request` names one; free: whatever this machine offers.
    pub async fn rerun(m: &Manifest, free: &[Source], request: Option<BackendRequest>) -> Result<Run> {
        let setup = Arc::new(rerun_setup(m, free)?);
        let state = setup.initial_state();
        let record = setup.new_record(hash::weights_hash(&state.params));
        if free.contains(&Source::Backend) {
            return Run::place(setup, record, state, BackendRequest::Any, None).await;
        }
        if let Some(r) = request {
            return Run::place(setup, record, state, r, None).await;
        }
        if m.level_granted == spec::DeterminismLevel::Exact {
            let why = "re-run of a record granted exact: on the CPU engine, whose exact bits are those of every stack \
                       that passed the start-up probe";
            return Run::place(setup, record, state, BackendRequest::Cpu, Some(why)).await;
        }
        let first = m.backend_history.first().map_or(BackendKind::Cpu, |s| s.backend);
        let hand_over =
            m.backend_history.iter().skip(1).find(|s| s.backend == BackendKind::Cpu).map(|s| s.from_step - 1);
        let (request, why) = match first {
            BackendKind::Gpu => (BackendRequest::Gpu, "gpu: the recorded run ran on the GPU, and this one follows it"),
            BackendKind::Cpu => (BackendRequest::Cpu, "cpu: the recorded run ran on the CPU, and this one follows it"),
        };
        let mut run = Run::place(setup, record, state, request, Some(why)).await.map_err(|e| match e {
            Error::Backend(m) => Error::Backend(format!(
                "{m}; the run trained on the GPU and backend is pinned (set it free to re-run here)"
            )),
            other => other,
        })?;
        if first == BackendKind::Gpu {
            run.cpu_from = hand_over;
        }
        Ok(run)
    }

    /// Replays a manifest: re-runs it pinned, on the backends it recorded,
    /// stopping at the first step whose chain link differs. `progress` is
    /// called with (steps done, steps recorded).
    pub async fn replay(m: &Manifest, mut progress: impl FnMut(usize, usize)) -> Result<Replay> {
        let mut run = Run::rerun(m, &[], None).await?;
        let total = m.steps_completed;
        if run.record.initial_hash == m.initial_weights_hash {
            while run.record.step < total && !run.finished() {
                let before = run.record.step;
                // The CPU one step at a time (stop at the first differing
                // link); the GPU a read-back block at a time.
                let n = if run.backend() == BackendKind::Cpu { 1 } else { total - before };
                run.advance(n).await?;
                let s = run.record.step;
                if s == before || manifest::first_divergence(&m.hash_chain[..s], &run.record.hash_chain).is_some() {
                    break;
                }
                progress(s, total);
            }
            // A recorded run that stopped on a non-finite value must stop at
            // the same step here.
            if run.record.step == total && m.stopped.as_ref().is_some_and(|s| s.is_non_finite()) {
                run.advance(1).await?;
            }
        }
        Ok(Replay { facts: replay_facts(m, &run), outcome: manifest::compare(m, &run.record) })
    }
}

/// The recorded facts that differ from a replay (backend, adapter, data,
/// runtime).
pub fn replay_facts(m: &Manifest, run: &Run) -> Vec<Difference> {
    let mut facts = Vec::new();
    let mut fact = |field: &str, a: Value, b: Value| {
        if a != b {
            facts.push(Difference { field: field.into(), a, b });
        }
    };
    let json = |v: &dyn manifest::erased::Ser| v.value();
    fact("backend", json(&m.backend), json(&run.record.backend()));
    fact("adapter", json(&m.adapter), json(&run.record.adapter));
    fact("data_fingerprint", m.data_fingerprint.clone().into(), run.setup.data.fingerprint.clone().into());
    fact("engine_version", m.engine_version.into(), run.setup.settings.config.engine_version.into());
    fact("level_granted", m.level_granted.name().into(), run.record.level_granted().name().into());
    fact("user_agent", m.user_agent.clone().into(), crate::platform::user_agent().into());
    facts
}

/// True when a replay found every recorded step.
pub fn is_identical(r: &Replay) -> bool {
    matches!(r.outcome, ReplayOutcome::Identical { .. })
}

/// Why a run with `chunks` partial sums cannot train on the GPU, or `None`
/// (chunks = 1): the GPU engine computes the whole batch's sums at once.
pub fn gpu_cannot_chunk(chunks: usize) -> Option<String> {
    (chunks > 1).then(|| {
        format!(
            "chunks = {chunks} cuts each batch into partial sums, which only the CPU engine computes (the GPU engine \
             sums the whole batch at once)"
        )
    })
}
