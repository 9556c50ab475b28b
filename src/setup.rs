//! What a run is before its first step: settings, seeds, free sources, the
//! data and its split, the network's shape and the dropout constants. Built
//! once and shared (read-only) by the record and by whichever engine trains.

use crate::config::{split_sizes, Settings};
use crate::data::Dataset;
use crate::error::Result;
use crate::hash::{self, Hash64};
use crate::model::{Activation, Network};
use crate::record::{DataRecord, InertSource, RunRecord};
use crate::rng::{permutation, Stream, StreamRng, StreamSeeds};
use crate::sources::{self, Source};
use crate::spec::{self, GpuReduction};

/// The dropout constants of a run (spec: [`spec::DROPOUT_LAYER_SHIFT`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutParams {
    /// A unit is kept when its stream word is `>= threshold`.
    pub threshold: u32,
    /// Kept activations are multiplied by this.
    pub scale: f32,
}

/// The weights, optimizer state and position of a run: what an engine
/// exports and imports (a hand-over between backends, a checkpoint).
#[derive(Clone, Debug, PartialEq)]
pub struct EngineState {
    /// Steps completed.
    pub step: usize,
    pub params: Vec<f32>,
    pub velocity: Vec<f32>,
}

/// A run's fixed description.
#[derive(Clone, Debug)]
pub struct Setup {
    pub settings: Settings,
    pub seeds: StreamSeeds,
    /// Sources set free, sorted.
    pub free: Vec<Source>,
    pub data: Dataset,
    pub net: Network,
    /// Indices of the validation examples, in split order.
    pub val_idx: Vec<u32>,
    /// Indices of the training examples, in split order.
    pub train_idx: Vec<u32>,
    pub dropout: Option<DropoutParams>,
    /// How the GPU reduces, should the run train there.
    pub gpu_reduction: GpuReduction,
}

impl Setup {
    /// Checks the settings (limits before anything is allocated), loads the
    /// data and splits it. `seeds` holds every stream's seed (the driver drew
    /// fresh ones for free seeded sources).
    pub fn new(settings: Settings, seeds: StreamSeeds, mut free: Vec<Source>) -> Result<Setup> {
        settings.config.validate()?;
        free.sort();
        free.dedup();
        let cfg = &settings.config;
        let data = Dataset::load(&cfg.dataset, seeds.data);
        let net = Network::new(data.dim, &cfg.hidden, data.classes, cfg.activation);
        let split = permutation(&mut StreamRng::new(Stream::Shuffle, seeds.shuffle), spec::SPLIT_STREAM_ID, data.len());
        let (n_train, n_val) = split_sizes(data.len(), cfg.val_fraction);
        if n_train / cfg.batch_size == 0 {
            return Err(crate::error::Error::config(
                "batch_size",
                format!("{} is larger than the {n_train} training examples of {}", cfg.batch_size, cfg.dataset),
            ));
        }
        let val_idx = split[..n_val].to_vec();
        let train_idx = split[n_val..].to_vec();
        let dropout = (cfg.dropout > 0.0).then(|| DropoutParams {
            threshold: (f64::from(cfg.dropout) * 4_294_967_296.0).round().min(f64::from(u32::MAX)) as u32,
            scale: 1.0 / (1.0 - cfg.dropout),
        });
        let gpu_reduction =
            if free.contains(&Source::GpuReduction) { GpuReduction::Atomic } else { GpuReduction::Fixed };
        Ok(Setup { settings, seeds, free, data, net, val_idx, train_idx, dropout, gpu_reduction })
    }

    /// Steps per epoch (the last partial batch of an epoch is dropped).
    pub fn steps_per_epoch(&self) -> usize {
        self.train_idx.len() / self.settings.config.batch_size
    }

    /// Epoch `epoch`'s permutation of positions in `train_idx`.
    pub fn epoch_order(&self, epoch: usize) -> Vec<u32> {
        let mut rng = StreamRng::new(Stream::Shuffle, self.seeds.shuffle);
        permutation(&mut rng, spec::EPOCH_STREAM_BASE + epoch as u64, self.train_idx.len())
    }

    /// The data-set row of every training example in epoch `epoch`'s order
    /// (what the GPU gathers its batches from).
    pub fn epoch_rows(&self, epoch: usize) -> Vec<u32> {
        self.epoch_order(epoch).iter().map(|&p| self.train_idx[p as usize]).collect()
    }

    /// The data-set rows of step `t`'s batch (0-based step), in batch order.
    pub fn batch_rows(&self, t: usize) -> Vec<u32> {
        let per_epoch = self.steps_per_epoch();
        let b = self.settings.config.batch_size;
        let (epoch, pos) = (t / per_epoch, t % per_epoch);
        self.epoch_rows(epoch)[pos * b..(pos + 1) * b].to_vec()
    }

    /// The initial weights and a zero velocity.
    pub fn initial_state(&self) -> EngineState {
        let mut params = init_params(&self.net, self.seeds.init);
        self.arith().st_all(&mut params);
        EngineState { step: 0, params, velocity: vec![0.0; self.net.n_params] }
    }

    /// The arithmetic this run's settings ask for (`level`).
    pub fn arith(&self) -> crate::model::Arith {
        crate::model::Arith::of_level(self.settings.config.level)
    }

    /// The free sources that cannot act in this run before a backend is
    /// chosen (the driver adds the backend-dependent ones).
    pub fn inert_sources(&self) -> Vec<InertSource> {
        self.free
            .iter()
            .map(|s| sources::effect(*s, &self.settings, None, true))
            .filter(|e| !e.acts)
            .map(|e| InertSource { source: e.source.name().into(), why: e.why })
            .collect()
    }

    /// A fresh record of this run, before its first step.
    pub fn new_record(&self, initial_hash: Hash64) -> RunRecord {
        RunRecord {
            settings: self.settings.clone(),
            seeds: self.seeds.clone(),
            free: self.free.clone(),
            inert: self.inert_sources(),
            data: DataRecord {
                name: self.data.name.clone(),
                version: self.data.version,
                size: self.data.len(),
                dim: self.data.dim,
                classes: self.data.classes,
                fingerprint: self.data.fingerprint.clone(),
            },
            parameters: self.net.n_params,
            gpu_reduction: self.gpu_reduction,
            segments: Vec::new(),
            adapter: None,
            step: 0,
            initial_hash,
            chain_head: hash::chain_genesis(initial_hash),
            hash_chain: Vec::new(),
            train_loss: Vec::new(),
            val_curve: Vec::new(),
            stopped: None,
            batches: None,
            exact_refused: None,
            exact_probe_passed: None,
        }
    }
}

/// Initial weights from the `init` stream (spec: [`spec::INIT_ADDRESSING`]).
pub fn init_params(net: &Network, seed: u64) -> Vec<f32> {
    let mut rng = StreamRng::new(Stream::Init, seed);
    let mut params = vec![0.0f32; net.n_params];
    let last = net.layers.len() - 1;
    for (l, layer) in net.layers.iter().enumerate() {
        let (fi, fo) = (layer.fan_in as f32, layer.fan_out as f32);
        let limit =
            if l < last && net.activation == Activation::Relu { (6.0 / fi).sqrt() } else { (6.0 / (fi + fo)).sqrt() };
        let r = rng.reader(l as u64, 0);
        for w in &mut params[layer.w..layer.b] {
            *w = (r.unit_f32() * 2.0 - 1.0) * limit;
        }
    }
    params
}
