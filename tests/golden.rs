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
fn pinned_runs_match_the_golden_trajectories() {
    for (file, dataset, version) in common::GOLDEN {
        let path = format!("{}/tests/golden/{file}", env!("CARGO_MANIFEST_DIR"));
        let run = common::golden_run(dataset, version);
        if std::env::var_os("REPROLAB_REGENERATE_GOLDEN").is_some() {
            std::fs::write(&path, common::golden_json(&run)).unwrap();
            eprintln!("regenerated {path}");
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path} is committed: {e}"));
        if let Err(e) = common::check_golden(&text, &run) {
            panic!("native run differs from {path}: {e}");
        }
    }
}

#[test]
fn the_golden_check_can_fail() {
    let (file, dataset, version) = common::GOLDEN[1];
    let path = format!("{}/tests/golden/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let run = common::golden_run(dataset, version);
    // Another engine version's file, a file without the chain, one link off.
    let other = std::fs::read_to_string(format!("{}/tests/golden/{}", env!("CARGO_MANIFEST_DIR"), common::GOLDEN[0].0));
    assert!(common::check_golden(&other.unwrap(), &run).is_err());
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("hash_chain");
    assert!(common::check_golden(&v.to_string(), &run).unwrap_err().contains("hash_chain"));
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["hash_chain"][150] = serde_json::Value::from("0000000000000000");
    assert!(common::check_golden(&v.to_string(), &run).unwrap_err().contains("step 151"));
}
