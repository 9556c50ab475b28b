//! Every JavaScript export of the crate (wasm32 only). A thin layer: settings
//! in as plain objects, reports out as plain objects, errors as `Error`s with
//! a `field` property naming the offending setting.

use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::config::{self, ConfigError, Origin, Settings};
use crate::manifest::{self, Manifest, ReplayOutcome};
use crate::train::{self, Trainer as Engine};

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
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
}

/// A training run on the CPU engine.
#[wasm_bindgen]
pub struct Trainer {
    inner: Engine,
}

#[wasm_bindgen]
impl Trainer {
    /// Starts a run. `settings` maps setting names to values (strings or
    /// numbers); `free` lists the sources set free (`init`, `shuffle`,
    /// `dropout`). Throws an `Error` whose `field` names a refused setting.
    #[wasm_bindgen(constructor)]
    pub fn new(settings: JsValue, free: Option<Vec<String>>) -> Result<Trainer, JsValue> {
        let s = settings_from_js(&settings)?;
        let free = free
            .unwrap_or_default()
            .iter()
            .map(|n| train::parse_free(n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| config_error(&e))?;
        let inner = Engine::with_free(s, &free).map_err(|e| config_error(&e))?;
        Ok(Trainer { inner })
    }

    /// Runs up to `n` steps and reports where the run stands.
    pub fn step(&mut self, n: u32) -> JsValue {
        let t = &mut self.inner;
        t.run(n as usize);
        let val = t.val_curve.last();
        let out = StepOut {
            step: t.step,
            total_steps: t.total_steps(),
            train_loss: t.train_loss.last().copied(),
            val_error: val.map(|v| v.val_error),
            val_loss: val.and_then(|v| v.val_loss),
            done: t.finished(),
            stopped: t.stopped.as_ref().map(|s| s.reason.clone()),
            weights_hash: crate::hash::weights_hash(&t.params).to_string(),
        };
        to_js(&out)
    }

    /// Steps completed.
    #[wasm_bindgen(getter, js_name = stepsDone)]
    pub fn steps_done(&self) -> usize {
        self.inner.step
    }

    /// Steps the run asks for.
    #[wasm_bindgen(getter, js_name = totalSteps)]
    pub fn total_steps(&self) -> usize {
        self.inner.total_steps()
    }

    /// The training loss of every completed step.
    #[wasm_bindgen(js_name = trainLoss)]
    pub fn train_loss(&self) -> Vec<f32> {
        self.inner.train_loss.clone()
    }

    /// The validation curve: `[{step, val_error, val_loss}]`.
    #[wasm_bindgen(js_name = valCurve)]
    pub fn val_curve(&self) -> JsValue {
        to_js(&self.inner.val_curve)
    }

    /// The hash chain, one 16-hex-digit link per completed step.
    #[wasm_bindgen(js_name = hashChain)]
    pub fn hash_chain(&self) -> Vec<String> {
        self.inner.hash_chain.iter().map(|h| h.to_string()).collect()
    }

    /// The run's manifest as JSON text.
    pub fn manifest(&self) -> String {
        Manifest::from_trainer(&self.inner).to_json()
    }
}

fn read(text: &str) -> Result<Manifest, JsValue> {
    Manifest::from_json(text).map_err(|e| js_error(&e.to_string(), None))
}

/// Compares two manifests: `{identical, first_divergent_step, differences}`.
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
