//! Every JavaScript export of the crate (wasm32 only). A thin layer: settings
//! in as plain objects, reports out as plain objects, errors as `Error`s with
//! a `field` property naming the offending setting.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::config::{self, ConfigError, Origin, Settings};
use crate::gpu::{Gpu, GpuTrainer};
use crate::manifest::{self, Manifest, ReplayOutcome};
use crate::train::{self, Trainer as Engine};

thread_local!(static PANIC_LISTENER: RefCell<Option<js_sys::Function>> = const { RefCell::new(None) });

#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        let at = info.location().map_or("?".into(), |l| l.to_string());
        let msg = format!("{} (at {at})", what.replace('\n', " "));
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

fn js_error(message: &str, field: Option<&str>) -> JsValue {
    let e = js_sys::Error::new(message);
    if let Some(f) = field {
        let _ = js_sys::Reflect::set(&e, &JsValue::from_str("field"), &JsValue::from_str(f));
    }
    e.into()
}

fn config_error(e: &ConfigError) -> JsValue {
    js_error(&e.to_string(), Some(&e.field))
}

fn to_js<T: Serialize>(v: &T) -> JsValue {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).expect("plain data converts to JS")
}

/// `reprolab 0.1.0, kernels v1`.
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

/// Settings from a plain object. A value whose text equals the default is
/// recorded as `default`, any other as `override` (a page has no notion of
/// "passed on the command line").
fn settings_from_js(obj: &JsValue) -> Result<Settings, JsValue> {
    let mut s = Settings::default();
    if obj.is_undefined() || obj.is_null() {
        return Ok(s);
    }
    if !obj.is_object() {
        return Err(js_error("settings: expected an object of settings", Some("settings")));
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
            return Err(js_error(&format!("{key}: expected a string or a number, got {value:?}"), Some(&key)));
        };
        let origin = if config::KEYS.iter().any(|(k, _)| *k == key) && text.trim() == defaults.config.get_text(&key) {
            Origin::Default
        } else {
            Origin::Override
        };
        s.set(&key, &text, origin).map_err(|e| config_error(&e))?;
    }
    s.config.validate().map_err(|e| config_error(&e))?;
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
    backend: String,
}

/// The engine behind a [`Trainer`]: the CPU, or the GPU (whose record and
/// fallback is a CPU engine). `Busy` while a step is running, so a second
/// call gets a clear error rather than a borrow panic.
enum State {
    Cpu(Box<Engine>),
    Gpu(Box<GpuTrainer>),
    Busy,
}

const BUSY: &str = "this trainer is running a step: await the previous step() first";

/// A training run, on the GPU (WebGPU) or the CPU.
#[wasm_bindgen]
pub struct Trainer {
    state: Rc<RefCell<State>>,
    reason: String,
    /// A re-run of a record whose GPU handed over to the CPU after this step
    /// does the same here, so it follows the recorded backends.
    cpu_from: Rc<RefCell<Option<usize>>>,
}

impl Trainer {
    fn with_record<R>(&self, f: impl FnOnce(&Engine) -> R) -> Result<R, JsValue> {
        match &*self.state.borrow() {
            State::Cpu(t) => Ok(f(t)),
            State::Gpu(g) => Ok(f(&g.cpu)),
            State::Busy => Err(js_error(BUSY, None)),
        }
    }
}

fn report(t: &Engine, backend: &str) -> JsValue {
    let val = t.val_curve.last();
    to_js(&StepOut {
        step: t.step,
        total_steps: t.total_steps(),
        train_loss: t.train_loss.last().copied(),
        val_error: val.map(|v| v.val_error),
        val_loss: val.and_then(|v| v.val_loss),
        done: t.finished(),
        stopped: t.stopped.as_ref().map(|s| s.reason.clone()),
        weights_hash: crate::hash::weights_hash(&t.params).to_string(),
        backend: backend.to_string(),
    })
}

#[wasm_bindgen]
impl Trainer {
    /// Starts a run. `settings` maps setting names to values (strings or
    /// numbers); `free` lists the sources set free (`init`, `shuffle`,
    /// `dropout`, `gpu_reduction`); `backend` is `auto` (default: WebGPU when
    /// the browser has it, else the CPU, saying why), `gpu` (strict) or
    /// `cpu`. Rejects with an `Error` whose `field` names a refused setting.
    pub async fn create(
        settings: JsValue,
        free: Option<Vec<String>>,
        backend: Option<String>,
    ) -> Result<Trainer, JsValue> {
        let s = settings_from_js(&settings)?;
        let free = train::parse_free(&free.unwrap_or_default()).map_err(|e| config_error(&e))?;
        let engine = Engine::with_free(s, &free).map_err(|e| config_error(&e))?;
        let mut backend = backend.unwrap_or_else(|| "auto".into());
        if free.contains(&crate::sources::Source::Backend) {
            // backend free: whatever this browser offers.
            backend = "auto".into();
        }
        Trainer::start(engine, &backend).await
    }
}

impl Trainer {
    /// Puts a prepared run on `backend` (`auto`, `gpu` strict, `cpu`).
    async fn start(mut engine: Engine, backend: &str) -> Result<Trainer, JsValue> {
        let reduction = engine.gpu_reduction;
        if backend == "cpu" {
            engine.switch_backend("cpu", "backend cpu");
            return Ok(Trainer {
                state: Rc::new(RefCell::new(State::Cpu(Box::new(engine)))),
                reason: "backend cpu".into(),
                cpu_from: Rc::default(),
            });
        }
        if backend != "gpu" && backend != "auto" {
            return Err(js_error(&format!("backend: expected auto, gpu or cpu, got {backend:?}"), Some("backend")));
        }
        let opened = match Gpu::open().await {
            Ok(gpu) => {
                let why = format!("{}: WebGPU adapter {}", backend, gpu.adapter.description);
                GpuTrainer::new(gpu, engine.clone(), reduction, &why).map(|g| (g, why))
            }
            Err(e) => Err(e),
        };
        match opened {
            Ok((g, why)) => Ok(Trainer {
                state: Rc::new(RefCell::new(State::Gpu(Box::new(g)))),
                reason: why,
                cpu_from: Rc::default(),
            }),
            Err(e) if backend == "gpu" => Err(js_error(&format!("backend gpu: {e}"), Some("backend"))),
            Err(e) => {
                let why = format!("auto: running on the CPU because {e}");
                engine.switch_backend("cpu", why.clone());
                Ok(Trainer {
                    state: Rc::new(RefCell::new(State::Cpu(Box::new(engine)))),
                    reason: why,
                    cpu_from: Rc::default(),
                })
            }
        }
    }
}

#[wasm_bindgen]
impl Trainer {
    /// Runs up to `n` steps; resolves to where the run stands
    /// (`{step, total_steps, train_loss, val_error, val_loss, done, stopped,
    /// weights_hash, backend}`). A GPU that fails mid-run hands the run to the
    /// CPU from the last state read back.
    pub fn step(&self, n: u32) -> js_sys::Promise {
        // CPU steps run right here, so a panic reaches the caller's stack
        // (and the wrapper's catch) rather than a microtask.
        if let Ok(mut guard) = self.state.try_borrow_mut() {
            if let State::Cpu(t) = &mut *guard {
                t.run(n as usize);
                return js_sys::Promise::resolve(&report(t, "cpu"));
            }
        }
        let state = self.state.clone();
        let cpu_from = *self.cpu_from.borrow();
        wasm_bindgen_futures::future_to_promise(async move {
            let taken = std::mem::replace(&mut *state.borrow_mut(), State::Busy);
            let (next, out) = match taken {
                State::Busy => return Err(js_error(BUSY, None)),
                State::Cpu(mut t) => {
                    t.run(n as usize);
                    let out = report(&t, "cpu");
                    (State::Cpu(t), out)
                }
                State::Gpu(mut g) => {
                    // Stop at the recorded hand-over, if this re-runs one.
                    let n = match cpu_from {
                        Some(at) => (n as usize).min(at.saturating_sub(g.step())),
                        None => n as usize,
                    };
                    match g.run(n).await {
                        Ok(_) if cpu_from.is_some_and(|at| g.step() >= at) => {
                            let t = g.into_cpu("re-run: the recorded run went on on the CPU from here");
                            let out = report(&t, "cpu");
                            (State::Cpu(Box::new(t)), out)
                        }
                        Ok(_) => {
                            let out = report(&g.cpu, "gpu");
                            (State::Gpu(g), out)
                        }
                        Err(e) => {
                            let at = g.step();
                            let why = format!(
                            "the GPU failed after step {at} ({e}); continuing on the CPU from the state read back at step {at}"
                        );
                            let t = g.into_cpu(&why);
                            let out = report(&t, "cpu");
                            (State::Cpu(Box::new(t)), out)
                        }
                    }
                }
            };
            *state.borrow_mut() = next;
            Ok(out)
        })
    }

    /// `"gpu"` or `"cpu"`: where the next step runs.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        match &*self.state.borrow() {
            State::Gpu(_) => "gpu".into(),
            _ => "cpu".into(),
        }
    }

    /// Why this backend, in words (e.g. "auto: running on the CPU because no
    /// GPU adapter: ...").
    #[wasm_bindgen(getter, js_name = backendReason)]
    pub fn backend_reason(&self) -> Result<String, JsValue> {
        self.with_record(|t| t.segments.last().map_or(self.reason.clone(), |s| s.reason.clone()))
    }

    /// The GPU adapter (`{vendor, architecture, description, graphics_backend}`) or null.
    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> Result<JsValue, JsValue> {
        self.with_record(|t| to_js(&t.adapter))
    }

    /// Steps completed.
    #[wasm_bindgen(getter, js_name = stepsDone)]
    pub fn steps_done(&self) -> Result<usize, JsValue> {
        self.with_record(|t| t.step)
    }

    /// Steps the run asks for.
    #[wasm_bindgen(getter, js_name = totalSteps)]
    pub fn total_steps(&self) -> Result<usize, JsValue> {
        self.with_record(|t| t.total_steps())
    }

    /// The training loss of every completed step.
    #[wasm_bindgen(js_name = trainLoss)]
    pub fn train_loss(&self) -> Result<Vec<f32>, JsValue> {
        self.with_record(|t| t.train_loss.clone())
    }

    /// The validation curve: `[{step, val_error, val_loss}]`.
    #[wasm_bindgen(js_name = valCurve)]
    pub fn val_curve(&self) -> Result<JsValue, JsValue> {
        self.with_record(|t| to_js(&t.val_curve))
    }

    /// A copy of the weights as they stand (the last state read back from the
    /// GPU), for distances between runs.
    pub fn params(&self) -> Result<Vec<f32>, JsValue> {
        self.with_record(|t| t.params.clone())
    }

    /// The hash chain, one 16-hex-digit link per completed step.
    #[wasm_bindgen(js_name = hashChain)]
    pub fn hash_chain(&self) -> Result<Vec<String>, JsValue> {
        self.with_record(|t| t.hash_chain.iter().map(|h| h.to_string()).collect())
    }

    /// The run's manifest as JSON text.
    pub fn manifest(&self) -> Result<String, JsValue> {
        self.with_record(|t| Manifest::from_trainer(t).to_json())
    }

    /// A checkpoint of the run as it stands (JSON text): weights, optimizer,
    /// streams, step and the manifest so far. `Trainer.resume` continues it
    /// bit for bit.
    pub fn checkpoint(&self) -> Result<String, JsValue> {
        self.with_record(|t| crate::checkpoint::Checkpoint::of(t).to_json())
    }

    /// Continues a checkpointed run on the backend it ran on (`auto`: the GPU
    /// if it ran there and this browser has one). Rejects a corrupted or
    /// mismatched checkpoint with a readable `Error`.
    pub async fn resume(checkpoint: String, backend: Option<String>) -> Result<Trainer, JsValue> {
        let ck = crate::checkpoint::Checkpoint::from_json(&checkpoint).map_err(|e| js_error(&e.to_string(), None))?;
        let t = ck.resume(None).map_err(|e| js_error(&e.to_string(), None))?;
        let on_gpu = t.segments.last().is_some_and(|s| s.backend == "gpu");
        let backend = backend.unwrap_or_else(|| if on_gpu { "gpu".into() } else { "cpu".into() });
        Trainer::start(t, &backend).await
    }

    /// Re-runs a recorded manifest with the sources in `free` set free (the
    /// others pinned to the record), as `reprolab rerun` does; `replay` is a
    /// re-run with nothing free. Resolves to a new trainer, before its first step.
    pub async fn rerun(
        manifest: String,
        free: Option<Vec<String>>,
        backend: Option<String>,
    ) -> Result<Trainer, JsValue> {
        let m = read(&manifest)?;
        let free = train::parse_free(&free.unwrap_or_default()).map_err(|e| config_error(&e))?;
        let t = manifest::rerun_trainer(&m, &free).map_err(|e| js_error(&e.to_string(), None))?;
        // Pinned: the recorded backends, stretch by stretch (a GPU that
        // handed over to the CPU mid-run does so here at the same step).
        let first = m.backend_history.first().map_or("cpu", |s| s.backend.as_str());
        let hand_over = m.backend_history.iter().skip(1).find(|s| s.backend == "cpu").map(|s| s.from_step - 1);
        let pinned = backend.is_none() && !free.contains(&crate::sources::Source::Backend);
        let backend = match backend {
            Some(b) => b,
            None if !pinned => "auto".into(),
            None => first.into(),
        };
        let trainer = Trainer::start(t, &backend).await?;
        if pinned && first == "gpu" {
            *trainer.cpu_from.borrow_mut() = hand_over;
        }
        Ok(trainer)
    }

    /// The model's prediction over an `n x n` grid of the 2-D input square
    /// `[lo, hi]^2`: `{n, classes, predicted: Uint8Array, confidence: Float32Array}`.
    #[wasm_bindgen(js_name = decisionGrid)]
    pub fn decision_grid(&self, n: u32, lo: f32, hi: f32) -> Result<JsValue, JsValue> {
        let (predicted, confidence, classes) = self
            .with_record(|t| t.predict_grid(n as usize, lo, hi).map(|(p, c)| (p, c, t.data.classes)))?
            .map_err(|e| js_error(&e, None))?;
        let o = js_sys::Object::new();
        let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&o, &JsValue::from_str(k), v).map(|_| ());
        set("n", &JsValue::from_f64(f64::from(n)))?;
        set("classes", &JsValue::from_f64(classes as f64))?;
        set("predicted", &js_sys::Uint8Array::from(&predicted[..]).into())?;
        set("confidence", &js_sys::Float32Array::from(&confidence[..]).into())?;
        Ok(o.into())
    }

    /// Everything a Web Worker needs to rebuild this run (settings, seeds,
    /// free sources), as JSON text for `new ChunkWorker(setup)`.
    #[wasm_bindgen(js_name = workerSetup)]
    pub fn worker_setup(&self) -> Result<String, JsValue> {
        self.with_record(|t| {
            serde_json::json!({
                "settings": t.settings.entries(),
                // A re-run pins a bare data-set name to the recorded version.
                "dataset_pinned": t.settings.config.dataset.pinned,
                "seeds": t.seeds,
                "free": t.free.iter().map(|s| s.name()).collect::<Vec<_>>(),
            })
            .to_string()
        })
    }

    /// The next step's job for a worker pool: `{step, chunks, params}`, or
    /// null when the run is finished, on the GPU, or not cut into chunks.
    #[wasm_bindgen(js_name = chunkJob)]
    pub fn chunk_job(&self) -> Result<JsValue, JsValue> {
        match &*self.state.borrow() {
            State::Cpu(t) if !t.finished() && t.settings.config.chunks > 1 && t.settings.config.threads > 1 => {
                let o = js_sys::Object::new();
                let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&o, &JsValue::from_str(k), v).map(|_| ());
                set("step", &JsValue::from_f64(t.step as f64))?;
                set("chunks", &JsValue::from_f64(t.settings.config.chunks as f64))?;
                set("params", &js_sys::Float32Array::from(&t.params[..]).into())?;
                Ok(o.into())
            }
            State::Busy => Err(js_error(BUSY, None)),
            _ => Ok(JsValue::NULL),
        }
    }

    /// Finishes the current step from the workers' partial results
    /// (`[{chunk, loss_sum, grads}]`, in order of arrival): combined in that
    /// order when `cpu_threads` is free, in chunk order when pinned.
    #[wasm_bindgen(js_name = applyPartials)]
    pub fn apply_partials(&self, partials: js_sys::Array) -> Result<JsValue, JsValue> {
        let current = self.with_record(|t| t.step)?;
        let mut parsed = Vec::new();
        for p in partials.iter() {
            let get = |k: &str| js_sys::Reflect::get(&p, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED);
            // A partial result of another step (a stale message) is refused.
            if let Some(step) = get("step").as_f64() {
                if step as usize != current {
                    return Err(js_error(&format!("a partial result of step {step} arrived for step {current}"), None));
                }
            }
            let chunk = get("chunk").as_f64().ok_or_else(|| js_error("a partial result has no chunk number", None))?;
            let loss_sum =
                get("loss_sum").as_f64().ok_or_else(|| js_error("a partial result has no loss_sum", None))?;
            let grads = get("grads")
                .dyn_into::<js_sys::Float32Array>()
                .map_err(|_| js_error("a partial result's grads is not a Float32Array", None))?
                .to_vec();
            parsed.push(train::Partial { chunk: chunk as usize, loss_sum: loss_sum as f32, grads });
        }
        match &mut *self.state.borrow_mut() {
            State::Cpu(t) => {
                t.apply_partials(parsed).map_err(|e| js_error(&e, None))?;
                Ok(report(t, "cpu"))
            }
            State::Gpu(_) => Err(js_error("this run trains on the GPU: it takes no partial results", None)),
            State::Busy => Err(js_error(BUSY, None)),
        }
    }

    /// True when `cpu_threads` is free: partial sums combine in order of arrival.
    #[wasm_bindgen(getter, js_name = arrivalOrder)]
    pub fn arrival_order(&self) -> Result<bool, JsValue> {
        self.with_record(|t| t.arrival_order())
    }
}

/// A Web Worker's copy of a run: computes the partial result of one chunk of
/// one step from the coordinator's weights.
#[wasm_bindgen]
pub struct ChunkWorker {
    inner: Engine,
}

#[wasm_bindgen]
impl ChunkWorker {
    /// Rebuilds the run from `Trainer.workerSetup()`.
    #[wasm_bindgen(constructor)]
    pub fn new(setup: &str) -> Result<ChunkWorker, JsValue> {
        let v: serde_json::Value =
            serde_json::from_str(setup).map_err(|e| js_error(&format!("worker setup: not JSON: {e}"), None))?;
        let entries = serde_json::from_value(v["settings"].clone())
            .map_err(|e| js_error(&format!("worker setup: settings: {e}"), None))?;
        let mut settings = Settings::from_entries(&entries).map_err(|e| config_error(&e))?;
        settings.config.dataset.pinned = v["dataset_pinned"].as_u64().map(|v| v as u32);
        let seeds = serde_json::from_value(v["seeds"].clone())
            .map_err(|e| js_error(&format!("worker setup: seeds: {e}"), None))?;
        let free: Vec<String> = serde_json::from_value(v["free"].clone()).unwrap_or_default();
        let free = train::parse_free(&free).map_err(|e| config_error(&e))?;
        let inner = Engine::new(settings, seeds, free).map_err(|e| config_error(&e))?;
        Ok(ChunkWorker { inner })
    }

    /// The partial result `{chunk, loss_sum, grads}` of chunk `chunk` of step `step`.
    pub fn partial(&mut self, step: u32, chunk: u32, params: &[f32]) -> Result<JsValue, JsValue> {
        let p = self.inner.partial(step as usize, chunk as usize, params).map_err(|e| js_error(&e, None))?;
        let o = js_sys::Object::new();
        let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&o, &JsValue::from_str(k), v).map(|_| ());
        set("step", &JsValue::from_f64(f64::from(step)))?;
        set("chunk", &JsValue::from_f64(p.chunk as f64))?;
        set("loss_sum", &JsValue::from_f64(f64::from(p.loss_sum)))?;
        set("grads", &js_sys::Float32Array::from(&p.grads[..]).into())?;
        Ok(o.into())
    }
}

fn read(text: &str) -> Result<Manifest, JsValue> {
    Manifest::from_json(text).map_err(|e| js_error(&e.to_string(), None))
}

/// The nine sources of run-to-run variation: `[{name, explanation}]`.
#[wasm_bindgen(js_name = sourceInfo)]
pub fn source_info() -> JsValue {
    let v: Vec<serde_json::Value> = crate::sources::Source::ALL
        .iter()
        .map(|s| serde_json::json!({ "name": s.name(), "explanation": s.explanation() }))
        .collect();
    to_js(&v)
}

/// Test hook: panics on purpose, so the JavaScript wrapper's recovery from a
/// Rust panic can be tested. Never call it otherwise.
#[wasm_bindgen(js_name = debugPanic)]
pub fn debug_panic() {
    panic!("debugPanic: a deliberate panic for tests");
}

/// Compares two manifests: `{identical, first_divergent_step, differences, causes}`.
#[wasm_bindgen(js_name = diffManifests)]
pub fn diff_manifests(a: &str, b: &str) -> Result<JsValue, JsValue> {
    Ok(to_js(&manifest::diff(&read(a)?, &read(b)?)))
}

/// Re-runs a manifest: `{identical, steps}` or `{identical: false, step,
/// recorded, replayed}`.
#[wasm_bindgen(js_name = replayManifest)]
pub fn replay_manifest(text: &str) -> Result<JsValue, JsValue> {
    let m = read(text)?;
    let r = manifest::replay(&m, |_, _| {}).map_err(|e| js_error(&e.to_string(), None))?;
    let v = match r.outcome {
        ReplayOutcome::Identical { steps } => serde_json::json!({ "identical": true, "steps": steps }),
        ReplayOutcome::Diverged { step, recorded, replayed, .. } => serde_json::json!({
            "identical": false, "step": step,
            "recorded": recorded.map(|h| h.to_string()), "replayed": replayed.map(|h| h.to_string()),
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
        _ => return Err(js_error(&format!("kernels: expected simd or scalar, got {name:?}"), None)),
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
