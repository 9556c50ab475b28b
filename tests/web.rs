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

const GOLDEN: &str = include_str!("golden/pinned-200.json");

#[wasm_bindgen_test]
fn wasm_matches_the_native_golden_trajectory_bit_for_bit() {
    let run = common::golden_run();
    if let Err(e) = common::check_golden(GOLDEN, &run) {
        panic!("wasm in {} differs from the native golden run: {e}", reprolab::platform::user_agent());
    }
    web_sys::console::log_1(&format!("golden 200-step chain identical in {}", reprolab::platform::user_agent()).into());
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

#[wasm_bindgen_test]
fn invalid_settings_throw_errors_that_name_the_field() {
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
        let err = reprolab::wasm::Trainer::new(object(&[(key, value)]), None).err().expect("refused");
        assert_eq!(field_of(&err).as_deref(), Some(key), "{key}");
        assert!(err.is_instance_of::<js_sys::Error>());
    }
    let err = reprolab::wasm::Trainer::new(JsValue::NULL, Some(vec!["everything".into()])).err().unwrap();
    assert_eq!(field_of(&err).as_deref(), Some("free"));
}

#[wasm_bindgen_test]
fn free_sources_draw_browser_entropy_and_still_replay() {
    let settings = || object(&[("steps", JsValue::from_f64(30.0))]);
    let mut a = reprolab::wasm::Trainer::new(settings(), Some(vec!["init".into()])).unwrap();
    let mut b = reprolab::wasm::Trainer::new(settings(), Some(vec!["init".into()])).unwrap();
    a.step(30);
    b.step(30);
    assert_ne!(a.hash_chain(), b.hash_chain(), "two runs with init free drew the same weights");
    let manifest = a.manifest();
    let r = reprolab::wasm::replay_manifest(&manifest).unwrap();
    let identical = js_sys::Reflect::get(&r, &JsValue::from_str("identical")).unwrap();
    assert_eq!(identical.as_bool(), Some(true));
    let d = reprolab::wasm::diff_manifests(&manifest, &b.manifest()).unwrap();
    let step = js_sys::Reflect::get(&d, &JsValue::from_str("first_divergent_step")).unwrap();
    assert_eq!(step.as_f64(), Some(1.0), "initial weights differ, so the chains part at step 1");
}
