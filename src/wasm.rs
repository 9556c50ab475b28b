//! Every JavaScript export of the crate (wasm32 only). A thin layer over the
//! driver: settings in as plain objects, reports out as plain objects,
//! errors as `Error`s with a `code` (see [`crate::error::Error::code`]) and,
//! where a setting is at fault, a `field` naming it.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::config::{self, Origin, Settings};
use crate::driver::{self, BackendRequest, Run};
use crate::error::{echo, Error};
use crate::manifest::{self, Manifest, ReplayOutcome};
use crate::setup::Setup;
use crate::sources::{self, Source};
use crate::spec::{self, BackendKind};
use crate::train::{CpuEngine, Taken};

thread_local!(static PANIC_LISTENER: RefCell<Option<js_sys::Function>> = const { RefCell::new(None) });

#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        let msg = crate::error::panic_message(info);
        PANIC_LISTENER.with(|l| {
            if let Ok(l) = l.try_borrow() {
                if let Some(f) = &*l {
                    let _ = f.call1(&JsValue::NULL, &JsValue::from_str(&msg));
                }
            }
        });
    }));
}

/// Registers a function called with a one-line message when the engine
/// panics (the JavaScript wrapper turns it into a readable error).
#[wasm_bindgen(js_name = setPanicListener)]
pub fn set_panic_listener(f: js_sys::Function) {
    PANIC_LISTENER.with(|l| *l.borrow_mut() = Some(f));
}

/// A JavaScript `Error` for an engine error: its message, its `code` and,
/// where a setting is at fault, its `field`.
fn err(e: &Error) -> JsValue {
    let js = js_sys::Error::new(&e.to_string());
    let _ = js_sys::Reflect::set(&js, &JsValue::from_str("code"), &JsValue::from_str(e.code()));
    if let Some(f) = e.field() {
        let _ = js_sys::Reflect::set(&js, &JsValue::from_str("field"), &JsValue::from_str(f));
    }
    js.into()
}

fn to_js<T: Serialize>(v: &T) -> JsValue {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).expect("plain data converts to JS")
}

/// Polls a future that never waits on anything outside (the CPU path of the
/// driver) to its end; `None` if it would wait.
fn ready<F: std::future::Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// `reprolab 0.1.0, kernels v2`.
#[wasm_bindgen(js_name = engineVersion)]
pub fn engine_version() -> String {
    crate::engine_version()
}

/// Every setting's default value, keyed by setting name.
#[wasm_bindgen(js_name = defaultSettings)]
pub fn default_settings() -> JsValue {
    let d = Settings::default();
    let map: serde_json::Map<String, serde_json::Value> =
        config::KEYS.iter().map(|(k, _)| (k.to_string(), d.config.get(k))).collect();
    to_js(&map)
}

/// One line of help per setting, keyed by setting name.
#[wasm_bindgen(js_name = settingHelp)]
pub fn setting_help() -> JsValue {
    let map: serde_json::Map<String, serde_json::Value> =
        config::KEYS.iter().map(|(k, h)| (k.to_string(), serde_json::Value::from(*h))).collect();
    to_js(&map)
}

/// What the engine knows, for pages and wrappers that must not re-list it:
/// `{engine, kernel_version, engine_versions, levels, sources, settings,
/// datasets, limits}`.
#[wasm_bindgen(js_name = engineInfo)]
pub fn engine_info() -> JsValue {
    let d = Settings::default();
    let sources: Vec<serde_json::Value> = Source::ALL
        .iter()
        .map(
            |s| serde_json::json!({ "name": s.name(), "explanation": s.explanation(), "seeded": s.stream().is_some() }),
        )
        .collect();
    let settings: Vec<serde_json::Value> = config::KEYS
        .iter()
        .map(|(k, h)| {
            serde_json::json!({ "key": k, "default": d.config.get(k), "help": h, "hparam": sources::HPARAM_KEYS.contains(k) })
        })
        .collect();
    let datasets: Vec<serde_json::Value> = crate::data::NAMES
        .iter()
        .map(|n| {
            let latest = crate::data::latest_version(n);
            let (dim, classes) = crate::data::shape(n);
            serde_json::json!({ "name": n, "latest_version": latest, "versions": (1..=latest).collect::<Vec<_>>(),
                                "dim": dim, "classes": classes })
        })
        .collect();
    to_js(&serde_json::json!({
        "engine": crate::engine_version(),
        "kernel_version": spec::KERNEL_VERSION,
        "engine_versions": spec::ENGINE_VERSIONS,
        "levels": [spec::DeterminismLevel::None.name(), spec::DeterminismLevel::RunToRun.name(), spec::DeterminismLevel::Exact.name()],
        "sources": sources,
        "settings": settings,
        "datasets": datasets,
        "limits": {
            "max_params": config::MAX_PARAMS, "max_layers": config::MAX_LAYERS, "max_width": config::MAX_WIDTH,
            "max_activations": config::MAX_ACTIVATIONS, "max_batch_x_width": config::MAX_ACTIVATIONS,
            "max_steps": config::MAX_STEPS, "max_threads": config::MAX_THREADS, "max_seed": config::MAX_SEED,
            "max_record_bytes": config::MAX_FILE_BYTES, "max_echo": crate::error::ECHO_MAX,
        },
    }))
}

/// The nine sources of run-to-run variation: `[{name, explanation}]`.
#[wasm_bindgen(js_name = sourceInfo)]
pub fn source_info() -> JsValue {
    let v: Vec<serde_json::Value> =
        Source::ALL.iter().map(|s| serde_json::json!({ "name": s.name(), "explanation": s.explanation() })).collect();
    to_js(&v)
}

fn parse_free(free: Option<Vec<String>>) -> Result<Vec<Source>, JsValue> {
    sources::parse_all(&free.unwrap_or_default()).map_err(|e| err(&e))
}

/// For every source in `free`: whether setting it free can change anything
/// with these settings on `backend` (`cpu`, `gpu`, or `auto` / undefined:
/// not decided), why not, and the one change that would let it act:
/// `[{source, acts, why, fix}]`, `fix` null, `{set: {key: value}}` or
/// `{backend: "gpu"}`.
#[wasm_bindgen(js_name = freeSourceEffects)]
pub fn free_source_effects(
    settings: JsValue,
    free: Option<Vec<String>>,
    backend: Option<String>,
    gpu_available: bool,
) -> Result<JsValue, JsValue> {
    let s = settings_from_js(&settings)?;
    let free = parse_free(free)?;
    let backend = match backend.as_deref() {
        Some("cpu") => Some(BackendKind::Cpu),
        Some("gpu") => Some(BackendKind::Gpu),
        _ => None,
    };
    let effects: Vec<_> = free.iter().map(|f| sources::effect(*f, &s, backend, gpu_available)).collect();
    Ok(to_js(&effects))
}

/// Settings from a plain object. A value whose text equals the default is
/// recorded as `default`, any other as `override` (a page has no notion of
/// "passed on the command line").
fn settings_from_js(obj: &JsValue) -> Result<Settings, JsValue> {
    let mut s = Settings::default();
    if obj.is_undefined() || obj.is_null() {
        return Ok(s);
    }
    if !obj.is_object() {
        return Err(err(&Error::config("settings", "expected an object of settings")));
    }
    let defaults = Settings::default();
    for entry in js_sys::Object::entries(obj.unchecked_ref()).iter() {
        let pair: js_sys::Array = entry.unchecked_into();
        let key = pair.get(0).as_string().unwrap_or_default();
        let value = pair.get(1);
        let text = if let Some(t) = value.as_string() {
            t
        } else if let Some(n) = value.as_f64() {
            n.to_string()
        } else {
            return Err(err(&Error::config(&echo(&key), "expected a string or a number")));
        };
        let origin = if config::KEYS.iter().any(|(k, _)| *k == key) && text.trim() == defaults.config.get_text(&key) {
            Origin::Default
        } else {
            Origin::Override
        };
        s.set(&key, &text, origin).map_err(|e| err(&e))?;
    }
    s.config.validate().map_err(|e| err(&e))?;
    Ok(s)
}

#[derive(Serialize)]
struct StepOut {
    step: usize,
    total_steps: usize,
    train_loss: Option<f32>,
    val_error: Option<f64>,
    val_loss: Option<f64>,
    done: bool,
    stopped: Option<String>,
    weights_hash: String,
    backend: BackendKind,
}

fn report(run: &Run) -> JsValue {
    let rec = &run.record;
    let val = rec.val_curve.last();
    to_js(&StepOut {
        step: rec.step,
        total_steps: rec.total_steps(),
        train_loss: rec.train_loss.last().copied(),
        val_error: val.map(|v| v.val_error),
        val_loss: val.and_then(|v| v.val_loss),
        done: rec.finished(),
        stopped: rec.stopped.as_ref().map(|s| s.reason.clone()),
        weights_hash: crate::hash::weights_hash(run.params()).to_string(),
        backend: run.backend(),
    })
}

/// A training run, on the GPU (WebGPU) or the CPU. The run is `None` while
/// an asynchronous step holds it, so a second call gets a clear `busy`
/// error rather than a borrow panic.
#[wasm_bindgen]
pub struct Trainer {
    run: Rc<RefCell<Option<Run>>>,
    /// The partial results a worker pool gave for the current step.
    taken: RefCell<Taken>,
}

impl Trainer {
    fn new(run: Run) -> Trainer {
        Trainer { run: Rc::new(RefCell::new(Some(run))), taken: RefCell::new(Taken::default()) }
    }

    fn with<R>(&self, f: impl FnOnce(&Run) -> R) -> Result<R, JsValue> {
        match &*self.run.borrow() {
            Some(r) => Ok(f(r)),
            None => Err(err(&Error::Busy)),
        }
    }
}

fn request(backend: Option<String>) -> Result<Option<BackendRequest>, JsValue> {
    backend.map(|b| BackendRequest::parse(&b)).transpose().map_err(|e| err(&e))
}

#[wasm_bindgen]
impl Trainer {
    /// Starts a run. `settings` maps setting names to values (strings or
    /// numbers); `free` lists the sources set free; `backend` is `auto`
    /// (default: a hardware GPU when the browser has one that can take the
    /// run, else the CPU, saying why), `gpu` (strict) or `cpu`. Rejects with
    /// an `Error` whose `code` says why and `field` names a refused setting.
    pub async fn create(
        settings: JsValue,
        free: Option<Vec<String>>,
        backend: Option<String>,
    ) -> Result<Trainer, JsValue> {
        let s = settings_from_js(&settings)?;
        let free = parse_free(free)?;
        let mut req = request(backend)?.unwrap_or(BackendRequest::Auto);
        if free.contains(&Source::Backend) {
            // backend free: whatever this browser offers.
            req = BackendRequest::Any;
        }
        let setup = driver::new_setup(s, &free).map_err(|e| err(&e))?;
        Run::start(setup, req).await.map(Trainer::new).map_err(|e| err(&e))
    }

    /// Runs up to `n` steps; resolves to where the run stands
    /// (`{step, total_steps, train_loss, val_error, val_loss, done, stopped,
    /// weights_hash, backend}`). A GPU that fails mid-run hands the run to the
    /// CPU from the last state read back (not under a strict `gpu`).
    pub fn step(&self, n: u32) -> js_sys::Promise {
        // CPU steps run right here, so a panic reaches the caller's stack
        // (and the wrapper's catch) rather than a microtask.
        if let Ok(mut guard) = self.run.try_borrow_mut() {
            if let Some(run) = guard.as_mut() {
                if run.advance_now(n as usize).is_some() {
                    return js_sys::Promise::resolve(&report(run));
                }
            }
        }
        let cell = self.run.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let taken = cell.borrow_mut().take();
            let Some(mut run) = taken else { return Err(err(&Error::Busy)) };
            let result = run.advance(n as usize).await;
            let out = report(&run);
            *cell.borrow_mut() = Some(run);
            result.map(|_| out).map_err(|e| err(&e))
        })
    }

    /// `"gpu"` or `"cpu"`: where the next step runs.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> Result<String, JsValue> {
        self.with(|r| r.backend().name().to_string())
    }

    /// Why this backend, in words.
    #[wasm_bindgen(getter, js_name = backendReason)]
    pub fn backend_reason(&self) -> Result<String, JsValue> {
        self.with(|r| r.decision().text.clone())
    }

    /// Why this backend, as data: `{backend, kind, text}` (see the driver's
    /// `DecisionKind`: requested, auto_gpu, auto_no_gpu, auto_software_gpu,
    /// auto_gpu_refused, device_lost, recorded).
    #[wasm_bindgen(getter, js_name = backendDecision)]
    pub fn backend_decision(&self) -> Result<JsValue, JsValue> {
        self.with(|r| to_js(r.decision()))
    }

    /// The free sources that could not act in this run: `[{source, why}]`.
    #[wasm_bindgen(getter, js_name = inertSources)]
    pub fn inert_sources(&self) -> Result<JsValue, JsValue> {
        self.with(|r| {
            let effects: Vec<_> = r
                .record
                .inert
                .iter()
                .filter_map(|i| Source::parse(&i.source).ok())
                .map(|s| sources::effect(s, &r.record.settings, Some(r.backend()), r.adapter().is_some()))
                .collect();
            to_js(&effects)
        })
    }

    /// The determinism level granted: `none`, `run-to-run` or `exact`.
    #[wasm_bindgen(getter)]
    pub fn level(&self) -> Result<String, JsValue> {
        self.with(|r| r.record.level_granted().name().to_string())
    }

    /// Why the level is what it is, in words (the manifest's `level_reason`).
    #[wasm_bindgen(getter, js_name = levelReason)]
    pub fn level_reason(&self) -> Result<String, JsValue> {
        self.with(|r| r.record.level_reason())
    }

    /// True when the run trains on a software GPU (SwiftShader, lavapipe).
    #[wasm_bindgen(getter, js_name = adapterIsSoftware)]
    pub fn adapter_is_software(&self) -> Result<bool, JsValue> {
        self.with(|r| r.record.adapter.as_ref().is_some_and(|a| a.is_software()))
    }

    /// The GPU adapter (`{vendor, architecture, description, graphics_backend}`) or null.
    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> Result<JsValue, JsValue> {
        self.with(|r| to_js(&r.record.adapter))
    }

    /// Steps completed.
    #[wasm_bindgen(getter, js_name = stepsDone)]
    pub fn steps_done(&self) -> Result<usize, JsValue> {
        self.with(|r| r.record.step)
    }

    /// Steps the run asks for.
    #[wasm_bindgen(getter, js_name = totalSteps)]
    pub fn total_steps(&self) -> Result<usize, JsValue> {
        self.with(|r| r.record.total_steps())
    }

    /// The training loss of every completed step.
    #[wasm_bindgen(js_name = trainLoss)]
    pub fn train_loss(&self) -> Result<Vec<f32>, JsValue> {
        self.with(|r| r.record.train_loss.clone())
    }

    /// The validation curve: `[{step, val_error, val_loss}]`.
    #[wasm_bindgen(js_name = valCurve)]
    pub fn val_curve(&self) -> Result<JsValue, JsValue> {
        self.with(|r| to_js(&r.record.val_curve))
    }

    /// A copy of the weights as they stand (the last state read back from the
    /// GPU), for distances between runs.
    pub fn params(&self) -> Result<Vec<f32>, JsValue> {
        self.with(|r| r.params().to_vec())
    }

    /// The hash chain, one 16-hex-digit link per completed step.
    #[wasm_bindgen(js_name = hashChain)]
    pub fn hash_chain(&self) -> Result<Vec<String>, JsValue> {
        self.with(|r| r.record.hash_chain.iter().map(|h| h.to_string()).collect())
    }

    /// The run's manifest as JSON text.
    pub fn manifest(&self) -> Result<String, JsValue> {
        self.with(|r| r.manifest().to_json())
    }

    /// A checkpoint of the run as it stands (JSON text): weights, optimizer,
    /// streams, step and the manifest so far. `Trainer.resume` continues it
    /// bit for bit.
    pub fn checkpoint(&self) -> Result<String, JsValue> {
        self.with(|r| r.checkpoint().to_json())
    }

    /// Continues a checkpointed run on the backend it ran on (`backend`
    /// overrides). Rejects a corrupted or mismatched checkpoint (`code`
    /// `invalid_record`).
    pub async fn resume(checkpoint: String, backend: Option<String>) -> Result<Trainer, JsValue> {
        let ck = crate::checkpoint::Checkpoint::from_json(&checkpoint).map_err(|e| err(&e))?;
        Run::resume(&ck, None, request(backend)?).await.map(Trainer::new).map_err(|e| err(&e))
    }

    /// Re-runs a recorded manifest with the sources in `free` set free (the
    /// others pinned to the record), as `reprolab rerun` does: pinned, on the
    /// recorded backends (a GPU stretch needs a GPU here: `code`
    /// `backend_unavailable` otherwise). Resolves to a new trainer, before
    /// its first step.
    pub async fn rerun(
        manifest: String,
        free: Option<Vec<String>>,
        backend: Option<String>,
    ) -> Result<Trainer, JsValue> {
        let m = read(&manifest)?;
        let free = parse_free(free)?;
        Run::rerun(&m, &free, request(backend)?).await.map(Trainer::new).map_err(|e| err(&e))
    }

    /// The model's prediction over an `n x n` grid of the 2-D input square
    /// `[lo, hi]^2`: `{n, classes, predicted: Uint8Array, confidence: Float32Array}`.
    #[wasm_bindgen(js_name = decisionGrid)]
    pub fn decision_grid(&self, n: u32, lo: f32, hi: f32) -> Result<JsValue, JsValue> {
        let (predicted, confidence, classes) = self
            .with(|r| r.predict_grid(n as usize, lo, hi).map(|(p, c)| (p, c, r.setup().data.classes)))?
            .map_err(|e| err(&e))?;
        let o = js_sys::Object::new();
        let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&o, &JsValue::from_str(k), v).map(|_| ());
        set("n", &JsValue::from_f64(f64::from(n)))?;
        set("classes", &JsValue::from_f64(classes as f64))?;
        set("predicted", &js_sys::Uint8Array::from(&predicted[..]).into())?;
        set("confidence", &js_sys::Float32Array::from(&confidence[..]).into())?;
        Ok(o.into())
    }

    /// The examples the run trains on (its training split, in split order),
    /// for drawing on a decision-boundary map: `{dim, classes, n, x:
    /// Float32Array (n x dim, row-major, in the input space the grid of
    /// `decisionGrid` spans), labels: Uint8Array}`.
    #[wasm_bindgen(js_name = dataPoints)]
    pub fn data_points(&self) -> Result<JsValue, JsValue> {
        let (dim, classes, x, labels) = self.with(|r| {
            let s = r.setup();
            let d = &s.data;
            let mut x = Vec::with_capacity(s.train_idx.len() * d.dim);
            let mut labels = Vec::with_capacity(s.train_idx.len());
            for &i in &s.train_idx {
                let i = i as usize;
                x.extend_from_slice(&d.features[i * d.dim..(i + 1) * d.dim]);
                labels.push(d.labels[i]);
            }
            (d.dim, d.classes, x, labels)
        })?;
        let o = js_sys::Object::new();
        let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&o, &JsValue::from_str(k), v).map(|_| ());
        set("dim", &JsValue::from_f64(dim as f64))?;
        set("classes", &JsValue::from_f64(classes as f64))?;
        set("n", &JsValue::from_f64(labels.len() as f64))?;
        set("x", &js_sys::Float32Array::from(&x[..]).into())?;
        set("labels", &js_sys::Uint8Array::from(&labels[..]).into())?;
        Ok(o.into())
    }

    /// Everything a Web Worker needs to rebuild this run (settings, seeds,
    /// free sources), as JSON text for `new ChunkWorker(setup)`.
    #[wasm_bindgen(js_name = workerSetup)]
    pub fn worker_setup(&self) -> Result<String, JsValue> {
        self.with(|r| {
            let rec = &r.record;
            serde_json::json!({
                "settings": rec.settings.entries(),
                // A re-run pins a bare data-set name to the recorded version.
                "dataset_pinned": rec.settings.config.dataset.pinned,
                "seeds": rec.seeds,
                "free": rec.free.iter().map(|s| s.name()).collect::<Vec<_>>(),
            })
            .to_string()
        })
    }

    /// The next step's job for a worker pool: `{step, chunks}`, or null when
    /// the run is finished, on the GPU, or not cut into chunks. The weights
    /// come from `writeParams`. Forgets the partial results taken so far (a
    /// pool stopped in the middle of a step leaves some).
    #[wasm_bindgen(js_name = chunkJob)]
    pub fn chunk_job(&self) -> Result<JsValue, JsValue> {
        self.taken.replace(Taken::default());
        self.with(|r| {
            let cfg = &r.record.settings.config;
            if r.backend() != BackendKind::Cpu || r.finished() || cfg.chunks <= 1 || cfg.threads <= 1 {
                return Ok(JsValue::NULL);
            }
            let o = js_sys::Object::new();
            let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&o, &JsValue::from_str(k), v).map(|_| ());
            set("step", &JsValue::from_f64(r.record.step as f64))?;
            set("chunks", &JsValue::from_f64(cfg.chunks as f64))?;
            Ok(o.into())
        })?
    }

    /// The number of weights (the length of the buffers of `writeParams`,
    /// `takePartial` and `ChunkWorker.partial`).
    #[wasm_bindgen(getter, js_name = paramCount)]
    pub fn param_count(&self) -> Result<usize, JsValue> {
        self.with(|r| r.params().len())
    }

    /// Copies the weights as they stand into `out` (a Float32Array of
    /// `paramCount` values), for a worker of the pool: one copy, no new buffer.
    #[wasm_bindgen(js_name = writeParams)]
    pub fn write_params(&self, out: &js_sys::Float32Array) -> Result<(), JsValue> {
        self.with(|r| {
            let params = r.params();
            if out.length() as usize != params.len() {
                return Err(err(&Error::config(
                    "params",
                    format!("a buffer of {} values for {} weights", out.length(), params.len()),
                )));
            }
            out.copy_from(params);
            Ok(())
        })?
    }

    /// Takes a worker's partial result of chunk `chunk` of step `step`: its
    /// loss sum and its gradient (a Float32Array of `paramCount` values,
    /// copied into the engine; the array may be reused once this returns),
    /// summed at once when its turn has come: in order of arrival when
    /// `cpu_threads` is free, in chunk order when pinned.
    #[wasm_bindgen(js_name = takePartial)]
    pub fn take_partial(
        &self,
        step: usize,
        chunk: usize,
        loss_sum: f32,
        grads: &js_sys::Float32Array,
    ) -> Result<(), JsValue> {
        // A partial result of another step (a stale message) is refused.
        let stale = |current| format!("a partial result of step {step} arrived for step {current}");
        self.at_step(step, stale, "it takes no partial results", |engine, taken| {
            let n = engine.params().len();
            if grads.length() as usize != n {
                let m = format!("a partial result has {} gradients for {n} weights", grads.length());
                return Err(err(&Error::config("partials", m)));
            }
            engine.take_partial(taken, chunk, loss_sum, |buffer| grads.copy_to(buffer)).map_err(|e| err(&e))
        })
    }

    /// Computes chunk `chunk` of step `step` on this thread, from the run's
    /// own weights, and takes it as `takePartial` takes a worker's (no copy):
    /// the pool's coordinator computes its share of the chunks this way
    /// while the workers compute the rest.
    #[wasm_bindgen(js_name = computeChunk)]
    pub fn compute_chunk(&self, step: usize, chunk: usize) -> Result<(), JsValue> {
        let stale = |current| format!("chunk {chunk} of step {step} asked for at step {current}");
        self.at_step(step, stale, "it computes no chunks", |engine, taken| {
            engine.own_chunk(taken, chunk).map_err(|e| err(&e))
        })
    }

    /// Runs `f` on the run's CPU engine and the partial results taken so
    /// far, when the run is at step `step`; else refuses with `stale` (of
    /// the current step), or for a GPU run with `gpu`.
    fn at_step<R>(
        &self,
        step: usize,
        stale: impl FnOnce(usize) -> String,
        gpu: &str,
        f: impl FnOnce(&mut CpuEngine, &mut Taken) -> Result<R, JsValue>,
    ) -> Result<R, JsValue> {
        let bad = |m: String| err(&Error::config("partials", m));
        let mut guard = self.run.borrow_mut();
        let run = guard.as_mut().ok_or_else(|| err(&Error::Busy))?;
        let current = run.record.step;
        if step != current {
            return Err(bad(stale(current)));
        }
        let Some((engine, _)) = run.cpu_engine() else {
            return Err(bad(format!("this run trains on the GPU: {gpu}")));
        };
        f(engine, &mut self.taken.borrow_mut())
    }

    /// Finishes the current step from the partial results taken by
    /// `takePartial` and `computeChunk`, one per chunk.
    #[wasm_bindgen(js_name = applyPartials)]
    pub fn apply_partials(&self) -> Result<JsValue, JsValue> {
        let mut guard = self.run.borrow_mut();
        let run = guard.as_mut().ok_or_else(|| err(&Error::Busy))?;
        let Some((engine, rec)) = run.cpu_engine() else {
            return Err(err(&Error::config("partials", "this run trains on the GPU: it takes no partial results")));
        };
        engine.apply_partials(rec, &mut self.taken.borrow_mut()).map_err(|e| err(&e))?;
        Ok(report(run))
    }

    /// True when `cpu_threads` is free: partial sums combine in order of arrival.
    #[wasm_bindgen(getter, js_name = arrivalOrder)]
    pub fn arrival_order(&self) -> Result<bool, JsValue> {
        self.with(|r| r.record.free.contains(&Source::CpuThreads))
    }
}

/// A Web Worker's copy of a run: computes the partial results of chunks of
/// a step from the coordinator's weights.
#[wasm_bindgen]
pub struct ChunkWorker {
    inner: CpuEngine,
    /// The step whose weights and batch are loaded (`loadStep`).
    loaded: Option<usize>,
}

#[wasm_bindgen]
impl ChunkWorker {
    /// Rebuilds the run from `Trainer.workerSetup()`.
    #[wasm_bindgen(constructor)]
    pub fn new(setup: &str) -> Result<ChunkWorker, JsValue> {
        let bad = |m: String| err(&Error::config("setup", m));
        let v: serde_json::Value =
            serde_json::from_str(setup).map_err(|e| bad(format!("worker setup: not JSON: {e}")))?;
        let entries =
            serde_json::from_value(v["settings"].clone()).map_err(|e| bad(format!("worker setup: settings: {e}")))?;
        let mut settings = Settings::from_entries(&entries).map_err(|e| err(&e))?;
        settings.config.dataset.pinned = v["dataset_pinned"].as_u64().map(|v| v as u32);
        let seeds = serde_json::from_value(v["seeds"].clone()).map_err(|e| bad(format!("worker setup: seeds: {e}")))?;
        let free: Vec<String> = serde_json::from_value(v["free"].clone()).unwrap_or_default();
        let free = sources::parse_all(&free).map_err(|e| err(&e))?;
        let setup = std::sync::Arc::new(Setup::new(settings, seeds, free).map_err(|e| err(&e))?);
        let state = setup.initial_state();
        Ok(ChunkWorker { inner: CpuEngine::new(setup, state), loaded: None })
    }

    /// The number of weights (the length of `loadStep`'s and `partial`'s arrays).
    #[wasm_bindgen(getter, js_name = paramCount)]
    pub fn param_count(&self) -> usize {
        self.inner.params().len()
    }

    /// Loads step `step`'s weights (a Float32Array of `paramCount` values,
    /// copied in; the array may be reused once this returns) and gathers
    /// the step's batch, for every chunk of the step this worker computes.
    #[wasm_bindgen(js_name = loadStep)]
    pub fn load_step(&mut self, step: usize, params: &js_sys::Float32Array) -> Result<(), JsValue> {
        let n = self.inner.params().len();
        if params.length() as usize != n {
            return Err(err(&Error::config("params", format!("expected {n} weights, got {}", params.length()))));
        }
        self.loaded = None;
        self.inner.load_step(step, |p| params.copy_to(p));
        self.loaded = Some(step);
        Ok(())
    }

    /// Computes chunk `chunk` of step `step` (loaded by `loadStep`), writes
    /// its gradient into `grads` (a Float32Array of `paramCount` values) and
    /// returns its loss sum.
    pub fn partial(&mut self, step: usize, chunk: usize, grads: &js_sys::Float32Array) -> Result<f32, JsValue> {
        if self.loaded != Some(step) {
            return Err(err(&Error::config("chunk", format!("chunk {chunk} of step {step} came without the weights"))));
        }
        let n = self.inner.params().len();
        if grads.length() as usize != n {
            return Err(err(&Error::config(
                "partials",
                format!("a buffer of {} values for {n} gradients", grads.length()),
            )));
        }
        let (loss_sum, ()) = self.inner.chunk_partial(step, chunk, |g| grads.copy_from(g)).map_err(|e| err(&e))?;
        Ok(loss_sum)
    }
}

fn read(text: &str) -> Result<Manifest, JsValue> {
    if text.len() as u64 > config::MAX_FILE_BYTES {
        return Err(err(&Error::limit("manifest", format!("larger than {} bytes", config::MAX_FILE_BYTES))));
    }
    Manifest::from_json(text).map_err(|e| err(&e))
}

/// Test hook: panics on purpose, so the JavaScript wrapper's recovery from a
/// Rust panic can be tested. Never call it otherwise.
#[wasm_bindgen(js_name = debugPanic)]
pub fn debug_panic() {
    panic!("debugPanic: a deliberate panic for tests");
}

/// Test hook: panics on purpose inside an async export, after awaiting a
/// resolved promise, so the panic happens in a microtask as one inside
/// `Trainer.create` or `Trainer.resume` would. Never call it otherwise.
#[wasm_bindgen(js_name = debugPanicAsync)]
pub async fn debug_panic_async() -> Result<(), JsValue> {
    wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&JsValue::NULL)).await?;
    panic!("debugPanicAsync: a deliberate panic in an async export, for tests");
}

/// Compares two manifests: `{identical, results_identical,
/// first_divergent_step, differences, causes, environment}`.
#[wasm_bindgen(js_name = diffManifests)]
pub fn diff_manifests(a: &str, b: &str) -> Result<JsValue, JsValue> {
    Ok(to_js(&manifest::diff(&read(a)?, &read(b)?)))
}

/// Where a replay of `manifest` must run to be comparable:
/// `{backend, can_replay, reason, level}`.
#[wasm_bindgen(js_name = replayPlan)]
pub fn replay_plan(manifest: &str, gpu_available: bool) -> Result<JsValue, JsValue> {
    Ok(to_js(&driver::replay_plan(&read(manifest)?, gpu_available)))
}

/// Re-runs a manifest recorded on the CPU, here and now: `{identical: true,
/// steps, reason, level}` or `{identical: false, step, recorded, replayed,
/// reason, level}`. A manifest recorded on the GPU cannot be replayed
/// synchronously: `{identical: null, can_replay: false, reason, level}` (use
/// `Trainer.rerun` on a machine with WebGPU).
#[wasm_bindgen(js_name = replayManifest)]
pub fn replay_manifest(text: &str) -> Result<JsValue, JsValue> {
    let m = read(text)?;
    let plan = driver::replay_plan(&m, false);
    if plan.backend != BackendKind::Cpu {
        return Ok(to_js(&serde_json::json!({
            "identical": null, "can_replay": false, "reason": plan.reason, "level": plan.level.name(),
        })));
    }
    let r = ready(Run::replay(&m, |_, _| {}))
        .ok_or_else(|| err(&Error::Backend("this replay needs the GPU: use Trainer.rerun".into())))?
        .map_err(|e| err(&e))?;
    let v = match r.outcome {
        ReplayOutcome::Identical { steps } => serde_json::json!({
            "identical": true, "steps": steps, "reason": plan.reason, "level": plan.level.name(),
        }),
        ReplayOutcome::Diverged { step, recorded, replayed, .. } => serde_json::json!({
            "identical": false, "step": step,
            "recorded": recorded.map(|h| h.to_string()), "replayed": replayed.map(|h| h.to_string()),
            "reason": format!("the replay on the CPU engine parts from the record at step {step}"),
            "level": plan.level.name(),
        }),
    };
    Ok(to_js(&v))
}

/// Benchmark hook: chooses the CPU kernels of this engine instance, `simd`
/// (the default) or `scalar` (the reference), and returns what the SIMD
/// kernels run on (`wasm simd128`). The bits of a run are the same with
/// either (tests/kernels_simd.rs); only the speed differs.
#[wasm_bindgen(js_name = setKernels)]
pub fn set_kernels(name: &str) -> Result<String, JsValue> {
    let k = match name {
        "simd" => crate::model::Kernels::Simd,
        "scalar" => crate::model::Kernels::Scalar,
        _ => return Err(err(&Error::config("kernels", format!("expected simd or scalar, got \"{}\"", echo(name))))),
    };
    crate::model::set_kernels(k);
    Ok(crate::kernels::BACKEND.to_string())
}

/// Benchmark hook: runs `iters` iterations of the kernels' inner loop on data
/// in L1 (`kernels::peak_probe`, `kernels::PEAK_PROBE_FLOPS` flop each);
/// timing it gives the peak of one core for this build. Returns a value
/// that depends on every operation.
#[wasm_bindgen(js_name = peakProbe)]
pub fn peak_probe(iters: u32) -> f32 {
    crate::kernels::peak_probe(iters as usize)
}

/// True in the `wasm-threads` build (WebAssembly threads: one memory
/// shared by Web Workers): a CPU run with threads > 1 computes its chunks
/// and its update on the pool that `initThreadPool(n)` starts (call it
/// first, from a Web Worker: a thread that waits for the pool blocks, which
/// browsers allow only off the main thread), so the JavaScript needs no
/// Web Worker pool of its own (js/threads.js). False in the plain build.
#[wasm_bindgen(js_name = sharedMemoryThreads)]
pub fn shared_memory_threads() -> bool {
    cfg!(feature = "wasm-threads")
}

#[cfg(feature = "wasm-threads")]
pub use wasm_bindgen_rayon::init_thread_pool;
