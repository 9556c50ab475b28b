//! The training loop on the CPU engine: data split and order, dropout masks,
//! steps, validation, the hash chain and the record of the run.

use crate::config::{split_sizes, ConfigError, Origin, Settings};
use crate::data::Dataset;
use crate::hash::{self, Hash64};
use crate::manifest::Adapter;
use crate::model::{self, Dropout, Network, Pass};
use crate::rng::{permutation, Stream, StreamRng, StreamSeeds};
use crate::spec::{self, DeterminismLevel, GpuReduction};

/// Sources of variation this build can set free. The others of
/// DETERMINISM.md section 1 are recorded as pinned.
pub const FREEABLE: [Stream; 3] = [Stream::Init, Stream::Shuffle, Stream::Dropout];

/// The names of the nine sources of DETERMINISM.md section 1.
pub const SOURCES: [&str; 9] = [
    "init",
    "shuffle",
    "dropout",
    "engine_version",
    "gpu_reduction",
    "cpu_threads",
    "backend",
    "data_drift",
    "hparam_drift",
];

/// Parses the name of a source to set free.
pub fn parse_free(name: &str) -> Result<Stream, ConfigError> {
    if let Some(s) = FREEABLE.iter().copied().find(|s| s.name() == name) {
        return Ok(s);
    }
    let message = if SOURCES.contains(&name) {
        format!("the source {name:?} cannot be set free in this build yet; free-able now: init, shuffle, dropout")
    } else {
        format!("unknown source {name:?}; sources: {}", SOURCES.join(", "))
    };
    Err(ConfigError { field: "free".into(), message })
}

/// One point of the validation curve.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValPoint {
    /// Steps completed when measured.
    pub step: usize,
    /// Fraction of validation examples misclassified.
    pub val_error: f64,
    /// Mean cross-entropy over the validation set; null when it is not
    /// finite (weights that overflowed).
    pub val_loss: Option<f64>,
}

/// Why a run stopped before its last step.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stopped {
    /// The step (1-based) that failed; it is not counted as completed.
    pub step: usize,
    pub reason: String,
}

/// A stretch of steps run on one backend, and why that backend.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// `"cpu"` or `"gpu"`.
    pub backend: String,
    /// First step (1-based) run on it.
    pub from_step: usize,
    /// Last step run on it (filled in when the record is written).
    pub to_step: usize,
    pub reason: String,
}

/// What one step reports.
#[derive(Clone, Debug, PartialEq)]
pub struct StepReport {
    /// Steps completed.
    pub step: usize,
    pub train_loss: f32,
    pub weights_hash: Hash64,
    /// Set when validation was measured after this step.
    pub val: Option<ValPoint>,
}

/// A training run on the CPU engine.
#[derive(Clone)]
pub struct Trainer {
    pub settings: Settings,
    pub seeds: StreamSeeds,
    /// Streams set free (their seeds came from entropy).
    pub free: Vec<Stream>,
    pub data: Dataset,
    pub net: Network,
    /// Indices of the validation examples, in split order.
    pub val_idx: Vec<u32>,
    /// Indices of the training examples, in split order.
    pub train_idx: Vec<u32>,
    pub params: Vec<f32>,
    pub velocity: Vec<f32>,
    /// Steps completed.
    pub step: usize,
    pub initial_hash: Hash64,
    /// The last link of the chain (the genesis link before any step).
    pub chain_head: Hash64,
    pub hash_chain: Vec<Hash64>,
    pub train_loss: Vec<f32>,
    pub val_curve: Vec<ValPoint>,
    pub stopped: Option<Stopped>,
    /// Which backend ran which steps, and why.
    pub segments: Vec<Segment>,
    /// The GPU adapter, when a GPU ran any step.
    pub adapter: Option<Adapter>,
    /// How the GPU reduces (recorded even for CPU runs: the switch's state).
    pub gpu_reduction: GpuReduction,
    shuffle: StreamRng,
    dropout_rng: StreamRng,
    epoch_order: Option<(usize, Vec<u32>)>,
    pass: Pass<f32>,
    labels: Vec<u8>,
    words: Vec<u32>,
    dropout: Option<Dropout>,
    dropout_threshold: u32,
    backup: Vec<f32>,
}

impl Trainer {
    /// Sets up a run: seeds, data, split, initial weights. Free streams get a
    /// fresh seed from entropy unless `seeds` already holds the recorded ones.
    pub fn new(settings: Settings, seeds: StreamSeeds, free: Vec<Stream>) -> Result<Trainer, ConfigError> {
        settings.config.validate()?;
        let cfg = &settings.config;
        let data = Dataset::load(&cfg.dataset, seeds.data);
        let net = Network::new(data.dim, &cfg.hidden, data.classes, cfg.activation);

        let mut shuffle = StreamRng::new(Stream::Shuffle, seeds.shuffle);
        let split = permutation(&mut shuffle, spec::SPLIT_STREAM_ID, data.len());
        let (_, n_val) = split_sizes(data.len(), cfg.val_fraction);
        let val_idx = split[..n_val].to_vec();
        let train_idx = split[n_val..].to_vec();

        let params = init_params(&net, seeds.init);
        let initial_hash = hash::weights_hash(&params);
        let dropout = (cfg.dropout > 0.0).then(|| Dropout {
            masks: cfg.hidden.iter().map(|w| vec![false; cfg.batch_size * w]).collect(),
            scale: 1.0 / (1.0 - cfg.dropout),
        });
        let dropout_threshold = (f64::from(cfg.dropout) * 4_294_967_296.0).round().min(f64::from(u32::MAX)) as u32;
        let pass = Pass::new(&net, cfg.batch_size);
        Ok(Trainer {
            velocity: vec![0.0; net.n_params],
            params,
            step: 0,
            initial_hash,
            chain_head: hash::chain_genesis(initial_hash),
            hash_chain: Vec::new(),
            train_loss: Vec::new(),
            val_curve: Vec::new(),
            stopped: None,
            segments: Vec::new(),
            adapter: None,
            gpu_reduction: GpuReduction::Fixed,
            dropout_rng: StreamRng::new(Stream::Dropout, seeds.dropout),
            shuffle,
            epoch_order: None,
            pass,
            labels: vec![0; cfg.batch_size],
            words: Vec::new(),
            dropout,
            dropout_threshold,
            backup: Vec::new(),
            val_idx,
            train_idx,
            data,
            net,
            settings,
            seeds,
            free,
        })
    }

    /// A run of `settings` with every source pinned to the master seed except
    /// `free`, whose seeds are drawn from the platform's entropy.
    pub fn with_free(settings: Settings, free: &[Stream]) -> Result<Trainer, ConfigError> {
        let mut seeds = StreamSeeds::from_master(settings.config.seed);
        for &s in free {
            let seed = crate::rng::entropy_seed().map_err(|m| ConfigError { field: "free".into(), message: m })?;
            seeds.set(s, seed);
        }
        let mut free = free.to_vec();
        free.sort();
        free.dedup();
        Trainer::new(settings, seeds, free)
    }

    /// Steps the configuration asks for.
    pub fn total_steps(&self) -> usize {
        self.settings.config.steps
    }

    /// True when every step ran or the run stopped.
    pub fn finished(&self) -> bool {
        self.stopped.is_some() || self.step >= self.total_steps()
    }

    /// The level this run is granted: `none` when a source is free, else
    /// `run-to-run` (the CPU engine's order is fixed; `exact` needs the probe
    /// of the GPU issue, so it is never granted here).
    pub fn level_granted(&self) -> DeterminismLevel {
        if self.free.is_empty() && self.gpu_reduction == GpuReduction::Fixed {
            DeterminismLevel::RunToRun
        } else {
            DeterminismLevel::None
        }
    }

    /// Why the level is what it is, in words.
    pub fn level_reason(&self) -> String {
        let mut free: Vec<&str> = self.free.iter().map(|s| s.name()).collect();
        if self.gpu_reduction == GpuReduction::Atomic {
            free.push("gpu_reduction");
        }
        if free.is_empty() {
            "all sources pinned and every reduction in a fixed order; exact: not available on this backend: \
             the conformance probe is not implemented yet"
                .to_string()
        } else {
            format!("free sources: {}", free.join(", "))
        }
    }

    /// Notes that steps from the next one on run on `backend`, and why.
    pub fn switch_backend(&mut self, backend: &str, reason: impl Into<String>) {
        self.segments.push(Segment {
            backend: backend.to_string(),
            from_step: self.step + 1,
            to_step: self.step,
            reason: reason.into(),
        });
    }

    /// The backend history with every segment's last step filled in; a run
    /// that never switched ran on the CPU.
    pub fn backend_history(&self) -> Vec<Segment> {
        let mut segs = self.segments.clone();
        if segs.is_empty() {
            segs.push(Segment { backend: "cpu".into(), from_step: 1, to_step: 0, reason: "CPU engine".into() });
        }
        let n = segs.len();
        for i in 0..n {
            segs[i].to_step = if i + 1 < n { segs[i + 1].from_step - 1 } else { self.step };
        }
        segs
    }

    /// Whether a setting came from the code's defaults.
    pub fn origin(&self, key: &str) -> Origin {
        self.settings.origins.get(key).copied().unwrap_or(Origin::Default)
    }

    /// Steps per epoch (the last partial batch of an epoch is dropped).
    pub fn steps_per_epoch(&self) -> usize {
        self.train_idx.len() / self.settings.config.batch_size
    }

    /// The data-set row of every training example in epoch `epoch`'s order
    /// (what the GPU gathers its batches from).
    pub fn epoch_rows(&mut self, epoch: usize) -> Vec<u32> {
        let order = permutation(&mut self.shuffle, spec::EPOCH_STREAM_BASE + epoch as u64, self.train_idx.len());
        order.iter().map(|&p| self.train_idx[p as usize]).collect()
    }

    /// The dropout keep threshold and scale (spec: [`spec::DROPOUT_LAYER_SHIFT`]),
    /// or `None` without dropout.
    pub fn dropout_params(&self) -> Option<(u32, f32)> {
        self.dropout.as_ref().map(|d| (self.dropout_threshold, d.scale))
    }

    /// Records a step computed elsewhere (the GPU): its loss and hashes.
    pub fn record_step(&mut self, loss: f32, link: Hash64) {
        self.train_loss.push(loss);
        self.hash_chain.push(link);
        self.chain_head = link;
        self.step += 1;
    }

    fn batch_indices(&mut self, t: usize) -> &[u32] {
        let b = self.settings.config.batch_size;
        let per_epoch = self.train_idx.len() / b;
        let (epoch, pos) = (t / per_epoch, t % per_epoch);
        if self.epoch_order.as_ref().map(|(e, _)| *e) != Some(epoch) {
            let order = permutation(&mut self.shuffle, spec::EPOCH_STREAM_BASE + epoch as u64, self.train_idx.len());
            self.epoch_order = Some((epoch, order));
        }
        let order = &self.epoch_order.as_ref().expect("set above").1;
        &order[pos * b..(pos + 1) * b]
    }

    /// Runs one step. Returns `None` once the run is finished.
    pub fn step(&mut self) -> Option<StepReport> {
        if self.finished() {
            return None;
        }
        let t = self.step;
        let cfg = self.settings.config.clone();
        let b = cfg.batch_size;
        let dim = self.data.dim;

        // Gather the batch.
        let picks: Vec<u32> = self.batch_indices(t).to_vec();
        for (r, &p) in picks.iter().enumerate() {
            let ex = self.train_idx[p as usize] as usize;
            self.pass.acts[0][r * dim..(r + 1) * dim].copy_from_slice(self.data.row(ex));
            self.labels[r] = self.data.labels[ex];
        }

        // Dropout masks, addressed by (step, layer, unit, example).
        if let Some(d) = self.dropout.as_mut() {
            for (l, mask) in d.masks.iter_mut().enumerate() {
                self.words.resize(mask.len(), 0);
                let id = ((l as u64) << spec::DROPOUT_LAYER_SHIFT) | t as u64;
                self.dropout_rng.fill_words(id, 0, &mut self.words);
                for (m, &w) in mask.iter_mut().zip(&self.words) {
                    *m = w >= self.dropout_threshold;
                }
            }
        }

        let inv_batch = 1.0 / b as f32;
        let loss = model::loss_and_grads(
            &self.net,
            &self.params,
            &self.labels,
            self.dropout.as_ref(),
            inv_batch,
            &mut self.pass,
        );
        if !loss.is_finite() {
            return self.stop(t, "the training loss", loss);
        }
        // Keep the last good state, so a step that overflows the weights
        // leaves the run where it was (the manifest's final weights are the
        // last finite ones).
        self.backup.clear();
        self.backup.extend_from_slice(&self.params);
        self.backup.extend_from_slice(&self.velocity);
        model::sgd_update(
            &self.net,
            &mut self.params,
            &mut self.velocity,
            &self.pass.grads,
            cfg.learning_rate,
            cfg.momentum,
            cfg.weight_decay,
        );
        if let Some(bad) = self.params.iter().chain(&self.velocity).find(|v| !v.is_finite()) {
            let bad = *bad;
            let n = self.params.len();
            self.params.copy_from_slice(&self.backup[..n]);
            self.velocity.copy_from_slice(&self.backup[n..]);
            return self.stop(t, "a weight", bad);
        }

        let h = hash::weights_hash(&self.params);
        self.chain_head = hash::chain_link(self.chain_head, h);
        self.hash_chain.push(self.chain_head);
        self.train_loss.push(loss);
        self.step = t + 1;

        let val = if self.step % cfg.eval_every == 0 || self.step == cfg.steps {
            let p = self.evaluate();
            self.val_curve.push(p);
            Some(p)
        } else {
            None
        };
        Some(StepReport { step: self.step, train_loss: loss, weights_hash: h, val })
    }

    fn stop(&mut self, t: usize, what: &str, value: f32) -> Option<StepReport> {
        let lr = self.settings.config.learning_rate;
        let reason = format!(
            "step {}: {what} became {value} (non-finite); the learning rate {lr} is probably too high for this \
             network: try a smaller learning_rate",
            t + 1
        );
        self.stopped = Some(Stopped { step: t + 1, reason });
        None
    }

    /// Runs up to `n` steps; returns how many ran.
    pub fn run(&mut self, n: usize) -> usize {
        let mut done = 0;
        while done < n && self.step().is_some() {
            done += 1;
        }
        done
    }

    /// Validation error and loss over the whole validation set, without
    /// dropout (spec: [`spec::LOSS_ORDER`]).
    pub fn evaluate(&self) -> ValPoint {
        const CHUNK: usize = 256;
        let classes = self.data.classes;
        let mut wrong = 0usize;
        let mut loss_sum = 0.0f64;
        for chunk in self.val_idx.chunks(CHUNK) {
            let mut pass: Pass<f32> = Pass::new(&self.net, chunk.len());
            let mut labels = Vec::with_capacity(chunk.len());
            for (r, &i) in chunk.iter().enumerate() {
                let i = i as usize;
                pass.acts[0][r * self.data.dim..(r + 1) * self.data.dim].copy_from_slice(self.data.row(i));
                labels.push(self.data.labels[i]);
            }
            model::forward(&self.net, &self.params, None, &mut pass);
            wrong += model::argmax_rows(&pass.logits, classes).zip(&labels).filter(|(p, y)| *p != **y as usize).count();
            let mut losses = vec![0.0f32; chunk.len()];
            model::softmax_xent(&mut pass.logits, &labels, classes, None, &mut losses);
            for l in losses {
                loss_sum += f64::from(l);
            }
        }
        let n = self.val_idx.len() as f64;
        let mean = loss_sum / n;
        ValPoint { step: self.step, val_error: wrong as f64 / n, val_loss: mean.is_finite().then_some(mean) }
    }
}

/// Initial weights from the `init` stream (spec: [`spec::INIT_ADDRESSING`]).
pub fn init_params(net: &Network, seed: u64) -> Vec<f32> {
    let mut rng = StreamRng::new(Stream::Init, seed);
    let mut params = vec![0.0f32; net.n_params];
    let last = net.layers.len() - 1;
    for (l, layer) in net.layers.iter().enumerate() {
        let (fi, fo) = (layer.fan_in as f32, layer.fan_out as f32);
        let limit = if l < last && net.activation == crate::config::Activation::Relu {
            (6.0 / fi).sqrt()
        } else {
            (6.0 / (fi + fo)).sqrt()
        };
        let r = rng.reader(l as u64, 0);
        for w in &mut params[layer.w..layer.b] {
            *w = (r.unit_f32() * 2.0 - 1.0) * limit;
        }
    }
    params
}
