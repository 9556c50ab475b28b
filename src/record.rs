//! The record of a run: everything it depended on (settings with where each
//! value came from, seeds, free sources, the data's identity) and everything
//! it produced (backend stretches, losses, validation points, the hash chain,
//! why it stopped). No engine owns it: the CPU and GPU engines report each
//! step into it, and the manifest is its sealed form ([`crate::manifest`]).

use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::hash::Hash64;
use crate::rng::StreamSeeds;
use crate::sources::Source;
pub use crate::spec::BackendKind;
use crate::spec::{DeterminismLevel, GpuReduction};

/// Why a run stopped before its last step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopKind {
    /// The arithmetic overflowed: a faithful replay stops at the same step.
    #[default]
    NonFinite,
    /// A strict GPU failed: nothing to reproduce.
    Backend,
    /// The user interrupted the run (Ctrl-C): the completed steps are kept.
    Interrupted,
}

/// Why and where a run stopped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stopped {
    /// The step (1-based) that failed; it is not counted as completed.
    pub step: usize,
    pub reason: String,
    #[serde(default)]
    pub kind: StopKind,
}

impl Stopped {
    /// A stop on a non-finite loss or weight at step `step` (1-based),
    /// naming the setting most likely at fault.
    pub fn non_finite(step: usize, what: &str, value: f32, cfg: &crate::config::Config) -> Stopped {
        // A decay above 1 is far outside any useful range (typical values are
        // 1e-5 to 1e-2) and grows the weights by itself; otherwise the step
        // size is the usual culprit.
        let blame = if cfg.weight_decay > 1.0 {
            format!("the weight_decay {} is probably too high: try a smaller weight_decay", cfg.weight_decay)
        } else {
            format!(
                "the learning rate {} is probably too high for this network: try a smaller learning_rate",
                cfg.learning_rate
            )
        };
        let reason = format!("step {step}: {what} became {value} (non-finite); {blame}");
        Stopped { step, reason, kind: StopKind::NonFinite }
    }

    /// True when the arithmetic itself stopped the run.
    pub fn is_non_finite(&self) -> bool {
        self.kind == StopKind::NonFinite
    }
}

/// A stretch of steps run on one backend, and why that backend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    pub backend: BackendKind,
    /// First step (1-based) run on it.
    pub from_step: usize,
    /// Last step run on it (filled in when the record is sealed).
    pub to_step: usize,
    pub reason: String,
}

/// One point of the validation curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValPoint {
    /// Steps completed when measured.
    pub step: usize,
    /// Fraction of validation examples misclassified.
    pub val_error: f64,
    /// Mean cross-entropy over the validation set; null when not finite.
    pub val_loss: Option<f64>,
}

/// The data set a run trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataRecord {
    pub name: String,
    pub version: u32,
    pub size: usize,
    pub dim: usize,
    pub classes: usize,
    pub fingerprint: String,
}

/// The GPU adapter a run used (null for CPU runs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adapter {
    pub vendor: String,
    pub architecture: String,
    pub description: String,
    pub graphics_backend: String,
}

impl Adapter {
    /// True for a GPU implemented on the CPU (SwiftShader, lavapipe/llvmpipe,
    /// WARP): correct, but slower than the CPU engine itself.
    pub fn is_software(&self) -> bool {
        let text = format!("{} {} {}", self.vendor, self.architecture, self.description).to_lowercase();
        self.architecture == "cpu" || ["swiftshader", "llvmpipe", "lavapipe", "warp"].iter().any(|n| text.contains(n))
    }
}

/// A free source that could not act in this run, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InertSource {
    pub source: String,
    pub why: String,
}

/// What a finished step reports.
#[derive(Clone, Debug, PartialEq)]
pub struct StepReport {
    /// Steps completed.
    pub step: usize,
    pub train_loss: f32,
    /// Set when validation was measured after this step.
    pub val: Option<ValPoint>,
}

/// The record of one run. It is serde data of its own (settings as their
/// entries, hashes as hex, seeds as decimal strings), apart from the
/// manifest, which is its sealed and checksummed form for files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    pub settings: Settings,
    pub seeds: StreamSeeds,
    /// Sources set free, sorted.
    pub free: Vec<Source>,
    /// Free sources that could not change anything here.
    pub inert: Vec<InertSource>,
    pub data: DataRecord,
    pub parameters: usize,
    /// How the GPU reduces (recorded even for CPU runs: the switch's state).
    pub gpu_reduction: GpuReduction,
    /// Which backend ran which steps and why; the last one's `to_step` is
    /// filled in by [`RunRecord::backend_history`].
    pub segments: Vec<Segment>,
    /// The GPU adapter, when a GPU ran any step.
    pub adapter: Option<Adapter>,
    /// Steps completed.
    pub step: usize,
    pub initial_hash: Hash64,
    /// The last link of the chain (the genesis link before any step).
    pub chain_head: Hash64,
    pub hash_chain: Vec<Hash64>,
    pub train_loss: Vec<f32>,
    pub val_curve: Vec<ValPoint>,
    pub stopped: Option<Stopped>,
    /// Every batch's example indices, when asked for (`--record-batches`).
    pub batches: Option<Vec<Vec<u32>>>,
    /// Why `exact` was not granted though asked for (a GPU whose start-up
    /// probe failed, or a GPU engine without the exact kernels): the run
    /// trained on the run-to-run arithmetic there.
    pub exact_refused: Option<String>,
    /// The start-up probe's verdict where a GPU passed it (`exact` granted
    /// there), for `level_reason`.
    pub exact_probe_passed: Option<String>,
}

impl RunRecord {
    /// Steps the settings ask for.
    pub fn total_steps(&self) -> usize {
        self.settings.config.steps
    }

    /// True when every step ran or the run stopped.
    pub fn finished(&self) -> bool {
        self.stopped.is_some() || self.step >= self.total_steps()
    }

    /// Records a completed step: its loss and chain link.
    pub fn push_step(&mut self, loss: f32, link: Hash64) {
        self.train_loss.push(loss);
        self.hash_chain.push(link);
        self.chain_head = link;
        self.step += 1;
    }

    /// True when validation is measured after step `step` (1-based).
    pub fn evaluates_after(&self, step: usize) -> bool {
        let cfg = &self.settings.config;
        step % cfg.eval_every == 0 || step == cfg.steps
    }

    /// The level asked for: `none` when a source is free, else the `level`
    /// setting (`run-to-run` or `exact`; `none` asks for nothing).
    pub fn level_requested(&self) -> DeterminismLevel {
        if self.free.is_empty() {
            self.settings.config.level
        } else {
            DeterminismLevel::None
        }
    }

    /// The level granted: `none` when a source is free (or `none` was asked
    /// for); `exact` when asked for and no backend of the run refused it;
    /// else `run-to-run` (every reduction in a fixed order).
    pub fn level_granted(&self) -> DeterminismLevel {
        match self.level_requested() {
            DeterminismLevel::Exact if self.exact_refused.is_some() => DeterminismLevel::RunToRun,
            level => level,
        }
    }

    /// Why the level is what it is, in words.
    pub fn level_reason(&self) -> String {
        let free: Vec<&str> = self.free.iter().map(|s| s.name()).collect();
        if !free.is_empty() {
            return format!("free sources: {}", free.join(", "));
        }
        match (self.settings.config.level, &self.exact_refused) {
            (DeterminismLevel::Exact, None) => format!(
                "all sources pinned, every reduction in a fixed order and the exact arithmetic: the same bits on every \
                 stack that passes the start-up probe{}",
                self.exact_probe_passed.as_ref().map_or(String::new(), |p| format!("; {p}"))
            ),
            (DeterminismLevel::Exact, Some(why)) => {
                format!("all sources pinned and every reduction in a fixed order; {why}")
            }
            (DeterminismLevel::None, _) => "level none asked for: the run-to-run arithmetic, no promise".to_string(),
            (DeterminismLevel::RunToRun, _) => "all sources pinned and every reduction in a fixed order; exact: not \
                 asked for (level=exact)"
                .to_string(),
        }
    }

    /// Notes that steps from the next one on run on `backend`, and why.
    pub fn switch_backend(&mut self, backend: BackendKind, reason: impl Into<String>) {
        if self.segments.last().is_some_and(|s| s.backend == backend) {
            // A continuation (a resumed run) on the same backend.
            return;
        }
        self.segments.push(Segment { backend, from_step: self.step + 1, to_step: self.step, reason: reason.into() });
    }

    /// The backend that ran (or runs) the latest steps.
    pub fn backend(&self) -> BackendKind {
        self.segments.last().map_or(BackendKind::Cpu, |s| s.backend)
    }

    /// The backend history with every segment's last step filled in; a run
    /// that never switched ran on the CPU.
    pub fn backend_history(&self) -> Vec<Segment> {
        let mut segs = self.segments.clone();
        if segs.is_empty() {
            segs.push(Segment { backend: BackendKind::Cpu, from_step: 1, to_step: 0, reason: "CPU engine".into() });
        }
        let n = segs.len();
        for i in 0..n {
            segs[i].to_step = if i + 1 < n { segs[i + 1].from_step - 1 } else { self.step };
        }
        segs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Origin;
    use crate::driver::{new_setup, Run};

    /// A record taken mid-run (losses, validation points, a free source,
    /// dropout, recorded batches) survives serde JSON unchanged, bit for bit.
    #[test]
    fn a_record_round_trips_through_serde() {
        let mut s = Settings::default();
        for (k, v) in [("hidden", "16"), ("steps", "40"), ("eval_every", "10"), ("learning_rate", "0.1")] {
            s.set(k, v, Origin::Override).unwrap();
        }
        let setup = new_setup(s, &[Source::Shuffle]).unwrap();
        let mut run = Run::cpu(setup);
        run.record_batches();
        assert_eq!(run.advance_now(25), Some(25));
        let rec = run.record.clone();
        assert_eq!(rec.train_loss.len(), 25);
        assert!(!rec.val_curve.is_empty(), "the test needs validation points");
        assert_eq!(rec.free, vec![Source::Shuffle]);
        let text = serde_json::to_string(&rec).unwrap();
        let back: RunRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, rec);
        let bits = |r: &RunRecord| r.train_loss.iter().map(|l| l.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&rec));
        assert_eq!(back.hash_chain, rec.hash_chain);
        assert_eq!(back.settings.origins["hidden"], Origin::Override);

        // Read back like a setting: a value a fresh run would refuse is refused.
        let bad = text.replace("\"hidden\":{\"value\":\"16\"", "\"hidden\":{\"value\":\"0\"");
        assert_ne!(bad, text, "the test must find the hidden width in the text");
        let e = serde_json::from_str::<RunRecord>(&bad).unwrap_err().to_string();
        assert!(e.contains("hidden"), "{e}");
        // No field is taken on trust that the record does not have.
        let extra = text.replacen('{', "{\"surprise\":1,", 1);
        assert!(serde_json::from_str::<RunRecord>(&extra).is_err());
    }
}
