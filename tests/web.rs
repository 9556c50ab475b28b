//! Browser tests (`wasm-pack test --headless --chrome` / `--firefox`): the
//! engine compiled to wasm gives the same bits as the native build (the
//! golden trajectory that tests/golden.rs checks natively), and the JS
//! exports behave (errors name their field, free sources draw browser
//! entropy, a manifest replays).
#![cfg(target_arch = "wasm32")]

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[path = "golden/common.rs"]
mod common;

/// The golden files, in the order of `common::GOLDEN`.
const GOLDEN_FILES: [&str; 2] = [include_str!("golden/pinned-200.json"), include_str!("golden/pinned-200-v2.json")];

#[wasm_bindgen_test]
fn wasm_matches_the_native_golden_trajectories_bit_for_bit() {
    for ((file, dataset, version), text) in common::GOLDEN.iter().zip(GOLDEN_FILES) {
        let run = common::golden_run(dataset, version);
        if let Err(e) = common::check_golden(text, &run) {
            panic!("wasm in {} differs from the native golden run {file}: {e}", reprolab::platform::user_agent());
        }
        let ua = reprolab::platform::user_agent();
        web_sys::console::log_1(&format!("golden 200-step chain {file} identical in {ua}").into());
    }
}

fn object(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = js_sys::Object::new();
    for (k, v) in pairs {
        js_sys::Reflect::set(&o, &JsValue::from_str(k), v).unwrap();
    }
    o.into()
}

fn field_of(e: &JsValue) -> Option<String> {
    js_sys::Reflect::get(e, &JsValue::from_str("field")).ok().and_then(|f| f.as_string())
}

async fn create(settings: JsValue, free: &[&str], backend: &str) -> Result<reprolab::wasm::Trainer, JsValue> {
    reprolab::wasm::Trainer::create(settings, Some(free.iter().map(|s| s.to_string()).collect()), Some(backend.into()))
        .await
}

async fn step(t: &reprolab::wasm::Trainer, n: u32) -> JsValue {
    wasm_bindgen_futures::JsFuture::from(t.step(n)).await.expect("step resolves")
}

#[wasm_bindgen_test]
async fn invalid_settings_reject_with_errors_that_name_the_field() {
    let cases = [
        ("learning_rate", JsValue::from_f64(-1.0)),
        ("learning_rate", JsValue::from_f64(f64::NAN)),
        ("dropout", JsValue::from_str("1")),
        ("hidden", JsValue::from_str("64,0")),
        ("batch_size", JsValue::from_f64(100000.0)),
        ("colour", JsValue::from_str("blue")),
        ("steps", JsValue::TRUE),
    ];
    for (key, value) in cases {
        let err = create(object(&[(key, value)]), &[], "cpu").await.err().expect("refused");
        assert_eq!(field_of(&err).as_deref(), Some(key), "{key}");
        assert!(err.is_instance_of::<js_sys::Error>());
    }
    let err = create(JsValue::NULL, &["everything"], "cpu").await.err().unwrap();
    assert_eq!(field_of(&err).as_deref(), Some("free"));
    let err = create(JsValue::NULL, &[], "quantum").await.err().unwrap();
    assert_eq!(field_of(&err).as_deref(), Some("backend"));
}

#[wasm_bindgen_test]
async fn free_sources_draw_browser_entropy_and_still_replay() {
    let settings = || object(&[("steps", JsValue::from_f64(30.0))]);
    let a = create(settings(), &["init"], "cpu").await.unwrap();
    let b = create(settings(), &["init"], "cpu").await.unwrap();
    step(&a, 30).await;
    step(&b, 30).await;
    assert_ne!(a.hash_chain().unwrap(), b.hash_chain().unwrap(), "two runs with init free drew the same weights");
    let manifest = a.manifest().unwrap();
    let r = reprolab::wasm::replay_manifest(&manifest).unwrap();
    let identical = js_sys::Reflect::get(&r, &JsValue::from_str("identical")).unwrap();
    assert_eq!(identical.as_bool(), Some(true));
    let d = reprolab::wasm::diff_manifests(&manifest, &b.manifest().unwrap()).unwrap();
    let step = js_sys::Reflect::get(&d, &JsValue::from_str("first_divergent_step")).unwrap();
    assert_eq!(step.as_f64(), Some(1.0), "initial weights differ, so the chains part at step 1");
}

#[wasm_bindgen_test]
async fn cpu_steps_run_in_call_order() {
    // CPU steps run synchronously inside step(): two calls in a row both run,
    // in order (the GPU's refusal of a second call is in tests/web_gpu.rs).
    let t = create(object(&[("steps", JsValue::from_f64(20.0))]), &[], "cpu").await.unwrap();
    let first = t.step(10);
    let second = t.step(10);
    wasm_bindgen_futures::JsFuture::from(first).await.unwrap();
    wasm_bindgen_futures::JsFuture::from(second).await.unwrap();
    assert_eq!(t.steps_done().unwrap(), 20);
}

#[wasm_bindgen_test]
async fn inert_sources_are_recorded_not_refused() {
    // cpu_threads free with one thread cannot act: the run trains and says so.
    let t = create(object(&[("steps", JsValue::from_f64(5.0))]), &["cpu_threads"], "cpu").await.unwrap();
    step(&t, 5).await;
    let inert: Vec<serde_json::Value> = serde_wasm_bindgen::from_value(t.inert_sources().unwrap()).unwrap();
    assert_eq!(inert.len(), 1, "{inert:?}");
    assert_eq!(inert[0]["source"], "cpu_threads");
    assert_eq!(inert[0]["acts"], false);
    assert!(inert[0]["fix"]["set"]["threads"].is_string(), "{inert:?}");
    let d: serde_json::Value = serde_wasm_bindgen::from_value(t.backend_decision().unwrap()).unwrap();
    assert_eq!((d["backend"].as_str(), d["kind"].as_str()), (Some("cpu"), Some("requested")));
}

#[wasm_bindgen_test]
async fn rerun_and_resume_in_the_browser() {
    let t = create(object(&[("steps", JsValue::from_f64(40.0))]), &[], "cpu").await.unwrap();
    step(&t, 20).await;
    let ck = t.checkpoint().unwrap();
    step(&t, 20).await;
    let manifest = t.manifest().unwrap();
    // Pinned re-run: identical chain.
    let r = reprolab::wasm::Trainer::rerun(manifest.clone(), None, None).await.unwrap();
    step(&r, 40).await;
    assert_eq!(r.hash_chain().unwrap(), t.hash_chain().unwrap());
    // shuffle free: the chains part.
    let f = reprolab::wasm::Trainer::rerun(manifest.clone(), Some(vec!["shuffle".into()]), None).await.unwrap();
    step(&f, 40).await;
    assert_ne!(f.hash_chain().unwrap(), t.hash_chain().unwrap());
    // Resume from the step-20 checkpoint: the same 40-step chain.
    let c = reprolab::wasm::Trainer::resume(ck.clone(), None).await.unwrap();
    assert_eq!(c.steps_done().unwrap(), 20);
    step(&c, 20).await;
    assert_eq!(c.hash_chain().unwrap(), t.hash_chain().unwrap());
    // A damaged checkpoint is refused in words.
    let bad = ck.replacen("\"step\":20", "\"step\":21", 1);
    let e = reprolab::wasm::Trainer::resume(bad, None).await.err().expect("refused");
    let msg = js_sys::Reflect::get(&e, &JsValue::from_str("message")).unwrap().as_string().unwrap();
    assert!(msg.contains("corrupted"), "{msg}");
    let code = js_sys::Reflect::get(&e, &JsValue::from_str("code")).unwrap().as_string();
    assert_eq!(code.as_deref(), Some("invalid_record"));
}
