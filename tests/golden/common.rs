//! Shared by tests/golden.rs (native) and tests/web.rs (browsers): the golden
//! run and its bit-exact comparison.

use reprolab::{Origin, Settings, Trainer};

/// Settings of the golden run: the defaults with 200 steps, on the data and
/// engine version it was recorded with (pinned here, so that growing the
/// data set or adding an engine version does not move it).
pub fn golden_settings() -> Settings {
    let mut s = Settings::default();
    s.set("steps", "200", Origin::Override).unwrap();
    s.set("dataset", "digits@1", Origin::Override).unwrap();
    s.set("engine_version", "1", Origin::Override).unwrap();
    s
}

/// Trains the golden run.
pub fn golden_run() -> Trainer {
    let mut t = Trainer::with_free(golden_settings(), &[]).unwrap();
    while t.step().is_some() {}
    t
}

/// The golden file's text for a run (only the native test regenerates it).
#[allow(dead_code)]
pub fn golden_json(t: &Trainer) -> String {
    let losses: Vec<String> = t.train_loss[..20].iter().map(|l| format!("{:08x}", l.to_bits())).collect();
    let chain: Vec<String> = t.hash_chain.iter().map(|h| h.to_string()).collect();
    let v = serde_json::json!({
        "about": "golden trajectory: defaults with steps=200, dataset=digits@1, engine_version=1, seed 1, all pinned; regenerate only on purpose (tests/golden.rs)",
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
pub fn check_golden(text: &str, t: &Trainer) -> Result<(), String> {
    let g: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("golden file unreadable: {e}"))?;
    let strs = |k: &str| -> Vec<String> {
        g[k].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default()
    };
    if g["initial_weights_hash"].as_str() != Some(&t.initial_hash.to_string()) {
        return Err(format!(
            "initial weights hash: golden {} vs this build {}",
            g["initial_weights_hash"], t.initial_hash
        ));
    }
    for (i, want) in strs("first_20_losses_bits").iter().enumerate() {
        let got = format!("{:08x}", t.train_loss[i].to_bits());
        if &got != want {
            return Err(format!(
                "first mismatch: loss of step {}: golden bits 0x{want} vs this build 0x{got} ({})",
                i + 1,
                t.train_loss[i]
            ));
        }
    }
    let chain = strs("hash_chain");
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
