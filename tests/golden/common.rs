//! Shared by tests/golden.rs (native) and tests/web.rs (browsers): the golden
//! run and its bit-exact comparison.

use reprolab::driver::{new_setup, Run};
use reprolab::{Origin, Settings};

/// The golden runs: (file name, dataset, engine version). Version 1 on
/// `digits@1` was the first; the current default engine (version 2) on
/// `digits@2` pins what a change to the defaults' arithmetic would move.
pub const GOLDEN: [(&str, &str, &str); 2] =
    [("pinned-200.json", "digits@1", "1"), ("pinned-200-v2.json", "digits@2", "2")];

/// Settings of a golden run: the defaults with 200 steps, on the data and
/// engine version it was recorded with (pinned here, so that growing the
/// data set or adding an engine version does not move it).
pub fn golden_settings(dataset: &str, engine_version: &str) -> Settings {
    let mut s = Settings::default();
    s.set("steps", "200", Origin::Override).unwrap();
    s.set("dataset", dataset, Origin::Override).unwrap();
    s.set("engine_version", engine_version, Origin::Override).unwrap();
    s
}

/// Trains a golden run.
pub fn golden_run(dataset: &str, engine_version: &str) -> Run {
    let mut t = Run::cpu(new_setup(golden_settings(dataset, engine_version), &[]).unwrap());
    while t.step_now().is_some() {}
    t
}

/// The golden file's text for a run (only the native test regenerates it).
#[allow(dead_code)]
pub fn golden_json(run: &Run) -> String {
    let t = &run.record;
    let losses: Vec<String> = t.train_loss[..20].iter().map(|l| format!("{:08x}", l.to_bits())).collect();
    let chain: Vec<String> = t.hash_chain.iter().map(|h| h.to_string()).collect();
    let v = serde_json::json!({
        "about": format!("golden trajectory: defaults with steps=200, dataset={}, engine_version={}, seed 1, all pinned; regenerate only on purpose (tests/golden.rs)", t.settings.config.dataset, t.settings.config.engine_version),
        "settings": t.settings.entries(),
        "initial_weights_hash": t.initial_hash.to_string(),
        "first_20_losses_bits": losses,
        "first_20_losses": t.train_loss[..20].to_vec(),
        "hash_chain": chain,
    });
    serde_json::to_string_pretty(&v).unwrap() + "\n"
}

/// Compares a run with the golden file bit for bit; the error names the
/// first mismatch.
pub fn check_golden(text: &str, run: &Run) -> Result<(), String> {
    let t = &run.record;
    let g: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("golden file unreadable: {e}"))?;
    // A missing or malformed key is an error, never an empty list that
    // would compare equal to nothing.
    let strs = |k: &str| -> Result<Vec<String>, String> {
        let a = g[k].as_array().ok_or_else(|| format!("golden file has no list {k:?}"))?;
        let v: Vec<String> = a.iter().filter_map(|v| v.as_str().map(String::from)).collect();
        if v.len() != a.len() || v.is_empty() {
            return Err(format!("golden file's {k:?} is not a non-empty list of strings"));
        }
        Ok(v)
    };
    if g["initial_weights_hash"].as_str() != Some(&t.initial_hash.to_string()) {
        return Err(format!(
            "initial weights hash: golden {} vs this build {}",
            g["initial_weights_hash"], t.initial_hash
        ));
    }
    let losses = strs("first_20_losses_bits")?;
    if losses.len() != 20 {
        return Err(format!("golden file holds {} losses, not 20", losses.len()));
    }
    for (i, want) in losses.iter().enumerate() {
        let got = format!("{:08x}", t.train_loss[i].to_bits());
        if &got != want {
            return Err(format!(
                "first mismatch: loss of step {}: golden bits 0x{want} vs this build 0x{got} ({})",
                i + 1,
                t.train_loss[i]
            ));
        }
    }
    let chain = strs("hash_chain")?;
    if chain.len() != t.hash_chain.len() {
        return Err(format!("golden chain has {} links, this run {}", chain.len(), t.hash_chain.len()));
    }
    for (i, want) in chain.iter().enumerate() {
        let got = t.hash_chain[i].to_string();
        if &got != want {
            return Err(format!("first mismatch: hash chain at step {}: golden {want} vs this build {got}", i + 1));
        }
    }
    Ok(())
}
