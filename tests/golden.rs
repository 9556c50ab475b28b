//! The golden trajectory: the first 20 losses (as f32 bits) and the whole
//! hash chain of a pinned 200-step run, committed in
//! tests/golden/pinned-200.json. Native builds check it here; the browser
//! tests (tests/web.rs) check the same file in Chromium and Firefox, which is
//! what proves native and wasm agree bit for bit.
//!
//! Regenerate on purpose only (after a change to the arithmetic, with a
//! KERNEL_VERSION bump): `REPROLAB_REGENERATE_GOLDEN=1 cargo test --release --test golden`.
#![cfg(not(target_arch = "wasm32"))]

#[path = "golden/common.rs"]
mod common;

#[test]
fn pinned_run_matches_the_golden_trajectory() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/pinned-200.json");
    let run = common::golden_run();
    if std::env::var_os("REPROLAB_REGENERATE_GOLDEN").is_some() {
        std::fs::write(path, common::golden_json(&run)).unwrap();
        eprintln!("regenerated {path}");
        return;
    }
    let text = std::fs::read_to_string(path).expect("tests/golden/pinned-200.json is committed");
    if let Err(e) = common::check_golden(&text, &run) {
        panic!("native run differs from {path}: {e}");
    }
}
