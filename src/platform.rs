//! What the engine needs from the platform it runs on: entropy for free
//! sources and a description of the runtime for the manifest. The only
//! module (besides `wasm`) that differs between native and wasm builds.

/// 64 random bits from the operating system (native) or
/// `crypto.getRandomValues` (browser, worker, Node.js).
#[cfg(not(target_arch = "wasm32"))]
pub fn entropy_u64() -> Result<u64, String> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| format!("the operating system gave no entropy: {e}"))?;
    Ok(u64::from_le_bytes(b))
}

/// 64 random bits from the operating system (native) or
/// `crypto.getRandomValues` (browser, worker, Node.js).
#[cfg(target_arch = "wasm32")]
pub fn entropy_u64() -> Result<u64, String> {
    use wasm_bindgen::{JsCast, JsValue};
    let crypto = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
        .ok()
        .filter(|c| !c.is_undefined())
        .ok_or("this JavaScript environment has no crypto.getRandomValues")?;
    let get = js_sys::Reflect::get(&crypto, &JsValue::from_str("getRandomValues"))
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .ok_or("this JavaScript environment has no crypto.getRandomValues")?;
    let buf = js_sys::Uint8Array::new_with_length(8);
    get.call1(&crypto, &buf).map_err(|e| format!("crypto.getRandomValues failed: {e:?}"))?;
    let mut b = [0u8; 8];
    buf.copy_to(&mut b);
    Ok(u64::from_le_bytes(b))
}

/// A description of the runtime: the browser's user agent in wasm (or the
/// runtime's name where there is no `navigator`, as in Node.js 20), the OS and
/// architecture natively.
#[cfg(not(target_arch = "wasm32"))]
pub fn user_agent() -> String {
    format!("reprolab-cli/{} ({}; {})", crate::spec::CRATE_VERSION, std::env::consts::OS, std::env::consts::ARCH)
}

/// A description of the runtime: the browser's user agent in wasm (or the
/// runtime's name where there is no `navigator`, as in Node.js 20), the OS and
/// architecture natively.
#[cfg(target_arch = "wasm32")]
pub fn user_agent() -> String {
    use wasm_bindgen::JsValue;
    let global = js_sys::global();
    let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &JsValue::from_str(k)).ok().filter(|v| !v.is_undefined());
    if let Some(ua) = get(&global, "navigator").and_then(|n| get(&n, "userAgent")).and_then(|u| u.as_string()) {
        return ua;
    }
    if let Some(v) = get(&global, "process").and_then(|p| get(&p, "version")).and_then(|v| v.as_string()) {
        return format!("Node.js {v} (no navigator)");
    }
    "unknown JavaScript runtime (no navigator)".to_string()
}

/// The browser's own description of its WebGPU adapter (`vendor`,
/// `architecture`, `description` of `GPUAdapterInfo`), which wgpu does not
/// pass on; `None` where there is no WebGPU.
#[cfg(target_arch = "wasm32")]
pub async fn webgpu_adapter_info() -> Option<(String, String, String)> {
    use wasm_bindgen::{JsCast, JsValue};
    let get = |o: &JsValue, k: &str| {
        js_sys::Reflect::get(o, &JsValue::from_str(k)).ok().filter(|v| !v.is_undefined() && !v.is_null())
    };
    let gpu = get(&js_sys::global(), "navigator").and_then(|n| get(&n, "gpu"))?;
    let request = get(&gpu, "requestAdapter")?.dyn_into::<js_sys::Function>().ok()?;
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &JsValue::from_str("powerPreference"), &JsValue::from_str("high-performance"))
        .ok()?;
    let promise = request.call1(&gpu, &options).ok()?.dyn_into::<js_sys::Promise>().ok()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    let info = get(&adapter, "info")?;
    let text = |k: &str| get(&info, k).and_then(|v| v.as_string()).unwrap_or_default();
    Some((text("vendor"), text("architecture"), text("description")))
}

/// Whether this JavaScript environment has `navigator.gpu` at all.
#[cfg(target_arch = "wasm32")]
pub fn has_webgpu() -> bool {
    use wasm_bindgen::JsValue;
    let get = |o: &JsValue, k: &str| {
        js_sys::Reflect::get(o, &JsValue::from_str(k)).ok().filter(|v| !v.is_undefined() && !v.is_null())
    };
    get(&js_sys::global(), "navigator").and_then(|n| get(&n, "gpu")).is_some()
}

/// Whether this JavaScript environment has `navigator.gpu` at all (never natively).
#[cfg(not(target_arch = "wasm32"))]
pub fn has_webgpu() -> bool {
    false
}
