//! The defaults learn: validation error at or below 4% on `digits` for each
//! of seeds 1 to 5 (timings are in `make bench`, not here).
#![cfg(not(target_arch = "wasm32"))]

use reprolab::driver::{new_setup, Run};
use reprolab::{Origin, Settings};

#[test]
fn defaults_reach_four_percent_for_seeds_1_to_5() {
    for seed in 1..=5u64 {
        let mut s = Settings::default();
        s.set("seed", &seed.to_string(), Origin::Override).unwrap();
        let mut t = Run::cpu(new_setup(s, &[]).unwrap());
        while t.step_now().is_some() {}
        assert!(t.record.stopped.is_none(), "seed {seed}: {:?}", t.record.stopped);
        let v = t.evaluate();
        eprintln!("seed {seed}: val_error {:.2}% after {} steps", v.val_error * 100.0, t.record.step);
        assert!(v.val_error <= 0.04, "seed {seed}: validation error {:.2}% is above 4%", v.val_error * 100.0);
    }
}

#[test]
fn synthetic_sets_learn() {
    for (name, bar) in [("spiral", 0.15), ("xor", 0.1), ("circles", 0.05), ("gaussians", 0.15)] {
        let mut s = Settings::default();
        s.set("dataset", name, Origin::Override).unwrap();
        s.set("hidden", "32,32", Origin::Override).unwrap();
        s.set("steps", "3000", Origin::Override).unwrap();
        s.set("learning_rate", "0.05", Origin::Override).unwrap();
        s.set("dropout", "0", Origin::Override).unwrap();
        let mut t = Run::cpu(new_setup(s, &[]).unwrap());
        while t.step_now().is_some() {}
        let v = t.evaluate();
        eprintln!("{name}: val_error {:.2}%", v.val_error * 100.0);
        assert!(v.val_error <= bar, "{name}: validation error {:.2}% above {:.0}%", v.val_error * 100.0, bar * 100.0);
    }
}
