//! The training loop on the CPU engine: data split and order, dropout masks,
//! steps, validation, the hash chain and the record of the run.

use crate::config::{split_sizes, ConfigError, Origin, Settings};
use crate::data::Dataset;
use crate::hash::{self, Hash64};
use crate::manifest::Adapter;
use crate::model::{self, Dropout, Network, Pass};
use crate::rng::{permutation, Stream, StreamRng, StreamSeeds};
use crate::sources::Source;
use crate::spec::{self, DeterminismLevel, GpuReduction};

/// Parses the names of the sources to set free; the error names the field.
pub fn parse_free(names: &[String]) -> Result<Vec<Source>, ConfigError> {
    crate::sources::parse_all(names).map_err(|message| ConfigError { field: "free".into(), message })
}

/// The hyper-parameters `hparam_drift` returns to the code's defaults when
/// free (the run's data, seed, length and engine settings stay).
pub const HPARAM_KEYS: [&str; 8] =
    ["hidden", "activation", "dropout", "learning_rate", "momentum", "weight_decay", "batch_size", "val_fraction"];

/// What setting sources free does to the settings themselves:
/// `engine_version` takes the current version, `data_drift` whatever the
/// data set's name means now, `hparam_drift` the code's defaults in place of
/// overrides.
pub fn apply_free_settings(settings: &mut Settings, free: &[Source]) {
    let defaults = Settings::default();
    if free.contains(&Source::EngineVersion) {
        settings.config.engine_version = spec::KERNEL_VERSION;
    }
    if free.contains(&Source::DataDrift) {
        settings.config.dataset.version = None;
        settings.config.dataset.pinned = None;
    }
    if free.contains(&Source::HparamDrift) {
        for key in HPARAM_KEYS {
            if settings.origins.get(key) == Some(&Origin::Override) {
                let text = defaults.config.get_text(key);
                settings.set(key, &text, Origin::Default).expect("a default value is valid");
            }
        }
    }
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
    /// `non_finite` (the arithmetic overflowed: a replay must stop there
    /// too) or `backend` (a strict GPU failed: nothing to reproduce).
    #[serde(default = "non_finite")]
    pub kind: String,
}

fn non_finite() -> String {
    "non_finite".into()
}

impl Stopped {
    /// A stop on a non-finite loss or weight.
    pub fn non_finite(step: usize, reason: String) -> Stopped {
        Stopped { step, reason, kind: non_finite() }
    }

    /// True when the arithmetic itself stopped the run (so a faithful replay
    /// stops at the same step).
    pub fn is_non_finite(&self) -> bool {
        self.kind == "non_finite"
    }
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
    /// Sources set free (seeded ones drew their seeds from entropy).
    pub free: Vec<Source>,
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
    pub fn new(settings: Settings, seeds: StreamSeeds, free: Vec<Source>) -> Result<Trainer, ConfigError> {
        settings.config.validate()?;
        if free.contains(&Source::CpuThreads) && (settings.config.threads < 2 || settings.config.chunks < 3) {
            return Err(ConfigError {
                field: "free".into(),
                message: format!(
                    "cpu_threads free needs threads >= 2 and chunks >= 3 to change anything (threads {}, chunks {})",
                    settings.config.threads, settings.config.chunks
                ),
            });
        }
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
            gpu_reduction: if free.contains(&Source::GpuReduction) {
                GpuReduction::Atomic
            } else {
                GpuReduction::Fixed
            },
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
    pub fn with_free(mut settings: Settings, free: &[Source]) -> Result<Trainer, ConfigError> {
        apply_free_settings(&mut settings, free);
        let mut seeds = StreamSeeds::from_master(settings.config.seed);
        for stream in free.iter().filter_map(|s| s.stream()) {
            let seed = crate::rng::entropy_seed().map_err(|m| ConfigError { field: "free".into(), message: m })?;
            seeds.set(stream, seed);
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
        if self.free.is_empty() {
            DeterminismLevel::RunToRun
        } else {
            DeterminismLevel::None
        }
    }

    /// Why the level is what it is, in words.
    pub fn level_reason(&self) -> String {
        let free: Vec<&str> = self.free.iter().map(|s| s.name()).collect();
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
        if self.segments.last().is_some_and(|s| s.backend == backend) {
            // A continuation (a resumed run) on the same backend.
            return;
        }
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
    /// Gathers step `t`'s batch and draws its dropout masks (addressed by
    /// step, layer, unit and example).
    fn prepare(&mut self, t: usize) {
        let dim = self.data.dim;
        let picks: Vec<u32> = self.batch_indices(t).to_vec();
        for (r, &p) in picks.iter().enumerate() {
            let ex = self.train_idx[p as usize] as usize;
            self.pass.acts[0][r * dim..(r + 1) * dim].copy_from_slice(self.data.row(ex));
            self.labels[r] = self.data.labels[ex];
        }
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
    }

    /// Runs one step. Returns `None` once the run is finished.
    pub fn step(&mut self) -> Option<StepReport> {
        if self.finished() {
            return None;
        }
        let t = self.step;
        let cfg = self.settings.config.clone();
        self.prepare(t);
        let inv_batch = 1.0 / cfg.batch_size as f32;
        let order = model::RowOrder::of_engine(cfg.engine_version);
        let loss_sum = if cfg.chunks <= 1 {
            model::loss_and_grads(
                &self.net,
                &self.params,
                &self.labels,
                self.dropout.as_ref(),
                inv_batch,
                &mut self.pass,
                order,
            )
        } else {
            let partials = self.chunk_partials(cfg.threads, cfg.chunks, order);
            let (loss_sum, grads) = combine(&partials);
            self.pass.grads.copy_from_slice(&grads);
            loss_sum
        };
        self.finish_step(t, loss_sum)
    }

    /// Whether partial sums are combined in order of arrival (`cpu_threads` free).
    pub fn arrival_order(&self) -> bool {
        self.free.contains(&Source::CpuThreads)
    }

    /// For a worker elsewhere (a Web Worker): chunk `chunk` of step `t`'s batch
    /// with the coordinator's weights `params`.
    pub fn partial(&mut self, t: usize, chunk: usize, params: &[f32]) -> Result<Partial, String> {
        let cfg = self.settings.config.clone();
        if params.len() != self.params.len() {
            return Err(format!("expected {} weights, got {}", self.params.len(), params.len()));
        }
        if chunk >= cfg.chunks.max(1) {
            return Err(format!("chunk {chunk} of {} does not exist", cfg.chunks));
        }
        self.params.copy_from_slice(params);
        self.prepare(t);
        Ok(self.gathered_chunk(cfg.chunks.max(1), chunk, model::RowOrder::of_engine(cfg.engine_version)))
    }

    /// The partial result of chunk `c` of `chunks` of the batch gathered by
    /// [`Trainer::prepare`].
    fn gathered_chunk(&self, chunks: usize, c: usize, order: model::RowOrder) -> Partial {
        let b = self.settings.config.batch_size;
        let (lo, hi) = chunk_rows(b, chunks, c);
        chunk_partial(
            &self.net,
            &self.params,
            &self.pass.acts[0],
            &self.labels,
            self.dropout.as_ref(),
            lo..hi,
            1.0 / b as f32,
            order,
            c,
        )
    }

    /// Finishes the current step from partial results computed elsewhere:
    /// combined in the order given when `cpu_threads` is free (their order
    /// of arrival), in chunk order when pinned.
    pub fn apply_partials(&mut self, mut partials: Vec<Partial>) -> Result<Option<StepReport>, String> {
        let chunks = self.settings.config.chunks.max(1);
        let mut seen: Vec<usize> = partials.iter().map(|p| p.chunk).collect();
        seen.sort_unstable();
        if seen != (0..chunks).collect::<Vec<_>>() {
            return Err(format!("expected one partial result per chunk 0..{chunks}, got chunks {seen:?}"));
        }
        if partials.iter().any(|p| p.grads.len() != self.params.len()) {
            return Err("a partial result has the wrong number of gradients".into());
        }
        if self.finished() {
            return Ok(None);
        }
        if !self.arrival_order() {
            partials.sort_by_key(|p| p.chunk);
        }
        let (loss_sum, grads) = combine(&partials);
        self.pass.grads.copy_from_slice(&grads);
        Ok(self.finish_step(self.step, loss_sum))
    }

    /// Applies the combined gradient of step `t`: optimizer, checks, hash
    /// chain, validation.
    fn finish_step(&mut self, t: usize, loss_sum: f32) -> Option<StepReport> {
        let cfg = self.settings.config.clone();
        let loss = loss_sum * (1.0 / cfg.batch_size as f32);
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

    /// The partial results of every chunk of the current batch (already
    /// gathered in `pass.acts[0]`, `labels` and the dropout masks), computed by
    /// `threads` OS threads (one in the browser, where Web Workers take this
    /// role), in chunk order, or in order of arrival when `cpu_threads` is free.
    fn chunk_partials(&self, threads: usize, chunks: usize, order: model::RowOrder) -> Vec<Partial> {
        let job = |c: usize| self.gathered_chunk(chunks, c, order);
        let mut partials: Vec<Partial> = if threads <= 1 || cfg!(target_arch = "wasm32") {
            (0..chunks).map(job).collect()
        } else {
            run_on_threads(threads, chunks, &job)
        };
        if !self.free.contains(&Source::CpuThreads) {
            partials.sort_by_key(|p| p.chunk);
        }
        partials
    }

    fn stop(&mut self, t: usize, what: &str, value: f32) -> Option<StepReport> {
        let lr = self.settings.config.learning_rate;
        let reason = format!(
            "step {}: {what} became {value} (non-finite); the learning rate {lr} is probably too high for this \
             network: try a smaller learning_rate",
            t + 1
        );
        self.stopped = Some(Stopped::non_finite(t + 1, reason));
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

    /// The model's prediction over an `n x n` grid covering `[lo, hi]^2`
    /// (2-D data sets only; row-major, y from `lo` up): the predicted class
    /// and its probability, for decision-boundary pictures.
    pub fn predict_grid(&self, n: usize, lo: f32, hi: f32) -> Result<(Vec<u8>, Vec<f32>), String> {
        if self.data.dim != 2 {
            return Err(format!(
                "{} has {} features: a decision boundary needs a 2-D data set",
                self.data.name, self.data.dim
            ));
        }
        if !(2..=512).contains(&n) {
            return Err(format!("grid size {n} is not from 2 to 512"));
        }
        let classes = self.data.classes;
        let mut pass: Pass<f32> = Pass::new(&self.net, n * n);
        let step = (hi - lo) / (n - 1) as f32;
        for y in 0..n {
            for x in 0..n {
                let i = y * n + x;
                pass.acts[0][2 * i] = lo + x as f32 * step;
                pass.acts[0][2 * i + 1] = lo + y as f32 * step;
            }
        }
        model::forward(&self.net, &self.params, None, &mut pass);
        let labels = vec![0u8; n * n];
        let mut losses = vec![0.0f32; n * n];
        let predicted: Vec<u8> = model::argmax_rows(&pass.logits, classes).map(|c| c as u8).collect();
        // Probability of the predicted class: exp(-loss) against that class.
        let mut probs = pass.logits.clone();
        model::softmax_xent(&mut probs, &labels, classes, Some(1.0), &mut losses);
        let confidence = predicted
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                // probs now holds p - onehot(0); undo the onehot for class 0.
                let p = probs[i * classes + c as usize];
                if c == 0 {
                    p + 1.0
                } else {
                    p
                }
            })
            .collect();
        Ok((predicted, confidence))
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

/// One chunk's share of a step: its gradient and its loss sum.
#[derive(Clone, Debug)]
pub struct Partial {
    pub chunk: usize,
    pub loss_sum: f32,
    pub grads: Vec<f32>,
}

/// Rows `lo..hi` of chunk `c` of a batch of `b` rows cut into `chunks`
/// (spec: [`spec::GRAD_ORDER`]).
pub fn chunk_rows(b: usize, chunks: usize, c: usize) -> (usize, usize) {
    (c * b / chunks, (c + 1) * b / chunks)
}

/// Forward and backward over rows `rows` of a gathered batch.
#[allow(clippy::too_many_arguments)]
pub fn chunk_partial(
    net: &Network,
    params: &[f32],
    batch_x: &[f32],
    labels: &[u8],
    dropout: Option<&Dropout>,
    rows: std::ops::Range<usize>,
    inv_batch: f32,
    order: model::RowOrder,
    chunk: usize,
) -> Partial {
    let dim = net.layers[0].fan_in;
    let n = rows.len();
    let mut pass: Pass<f32> = Pass::new(net, n);
    pass.acts[0].copy_from_slice(&batch_x[rows.start * dim..rows.end * dim]);
    let masks = dropout.map(|d| Dropout {
        masks: d
            .masks
            .iter()
            .zip(&net.layers)
            .map(|(m, l)| m[rows.start * l.fan_out..rows.end * l.fan_out].to_vec())
            .collect(),
        scale: d.scale,
    });
    let loss_sum = model::loss_and_grads(net, params, &labels[rows], masks.as_ref(), inv_batch, &mut pass, order);
    Partial { chunk, loss_sum, grads: pass.grads }
}

/// Combines partial results in the order given: `((p0 + p1) + p2) + ...`.
pub fn combine(partials: &[Partial]) -> (f32, Vec<f32>) {
    let mut grads = partials[0].grads.clone();
    let mut loss = partials[0].loss_sum;
    for p in &partials[1..] {
        for (g, v) in grads.iter_mut().zip(&p.grads) {
            *g += *v;
        }
        loss += p.loss_sum;
    }
    (loss, grads)
}

/// Runs `job` for every chunk on `threads` OS threads, which take chunks as
/// they become free; results come back in order of arrival.
#[cfg(not(target_arch = "wasm32"))]
fn run_on_threads(threads: usize, chunks: usize, job: &(dyn Fn(usize) -> Partial + Sync)) -> Vec<Partial> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..threads.min(chunks) {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= chunks {
                    break;
                }
                if tx.send(job(c)).is_err() {
                    break;
                }
            });
        }
    });
    drop(tx);
    rx.into_iter().collect()
}

#[cfg(target_arch = "wasm32")]
fn run_on_threads(_threads: usize, chunks: usize, job: &(dyn Fn(usize) -> Partial + Sync)) -> Vec<Partial> {
    (0..chunks).map(job).collect()
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
