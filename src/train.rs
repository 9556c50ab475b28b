//! The CPU engine: one step at a time on the run's [`Setup`], reporting
//! into the run's [`RunRecord`]. Batches, dropout masks, chunked partial sums
//! (OS threads natively, Web Workers in the browser), the optimizer, the
//! weight hash and validation.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::hash;
use crate::model::{self, Dropout, Network, Pass};
use crate::record::{RunRecord, StepReport, Stopped, ValPoint};
use crate::rng::{Stream, StreamRng};
use crate::setup::{EngineState, Setup};
use crate::sources::Source;
use crate::spec;

/// The CPU engine of a run.
#[derive(Clone)]
pub struct CpuEngine {
    setup: Arc<Setup>,
    params: Vec<f32>,
    velocity: Vec<f32>,
    /// Steps completed (equals the record's step after each call).
    step: usize,
    dropout_rng: StreamRng,
    epoch_order: Option<(usize, Vec<u32>)>,
    pass: Pass<f32>,
    labels: Vec<u8>,
    words: Vec<u32>,
    dropout: Option<Dropout>,
    /// Where an update is written before it is kept (swapped with `params`
    /// and `velocity` when every new value is finite): the last good state
    /// stays without a copy.
    next_params: Vec<f32>,
    next_velocity: Vec<f32>,
    /// One set of buffers per chunk (`chunks` > 1), reused from step to step.
    chunk_passes: ChunkPasses,
    /// The chunks whose gradients the next update sums, in this order
    /// (empty: the gradient is already in `pass.grads`).
    combine_order: Vec<usize>,
}

/// The fewest parameters for which a run with `threads` > 1 also updates
/// and hashes its weights on several threads (below, starting the threads
/// costs more than it saves).
pub const PARALLEL_UPDATE_MIN: usize = 1 << 15;

/// Whether this build runs a step's chunks and update on threads of its
/// own: natively (OS threads) and in the `wasm-threads` build (Web Workers
/// sharing the module's memory); the plain wasm build computes them one
/// after the other (the browser's Web Worker pool, js/threads.js, spreads
/// them instead).
pub const THREADS: bool = !cfg!(target_arch = "wasm32") || cfg!(feature = "wasm-threads");

/// The work on one range of the parameters: `(first, grads, new_params,
/// new_velocity)` of the range.
type RangeJob<'a, R> = dyn Fn(usize, &mut [f32], &mut [f32], &mut [f32]) -> R + Sync + 'a;

/// One range's part of the three buffers: `(first, grads, new_params,
/// new_velocity)`.
#[cfg(any(not(target_arch = "wasm32"), feature = "wasm-threads"))]
type RangeParts<'a> = (usize, &'a mut [f32], &'a mut [f32], &'a mut [f32]);

/// The three buffers cut at `bounds`: range `bounds[t]..bounds[t + 1]` of
/// each, in range order.
#[cfg(any(not(target_arch = "wasm32"), feature = "wasm-threads"))]
fn split_ranges<'a>(
    bounds: &[usize],
    grads: &'a mut [f32],
    new_params: &'a mut [f32],
    new_velocity: &'a mut [f32],
) -> Vec<RangeParts<'a>> {
    let (mut g, mut p, mut v) = (grads, new_params, new_velocity);
    let mut parts = Vec::with_capacity(bounds.len().saturating_sub(1));
    for w in bounds.windows(2) {
        let len = w[1] - w[0];
        let (g0, g1) = std::mem::take(&mut g).split_at_mut(len);
        let (p0, p1) = std::mem::take(&mut p).split_at_mut(len);
        let (v0, v1) = std::mem::take(&mut v).split_at_mut(len);
        (g, p, v) = (g1, p1, v1);
        parts.push((w[0], g0, p0, v0));
    }
    parts
}

/// Runs `job(first, grads, new_params, new_velocity)` on one OS thread per
/// range `bounds[t]..bounds[t + 1]` of the three buffers; results in range
/// order.
#[cfg(not(target_arch = "wasm32"))]
fn parallel_ranges<R: Send>(
    bounds: &[usize],
    grads: &mut [f32],
    new_params: &mut [f32],
    new_velocity: &mut [f32],
    job: &RangeJob<'_, R>,
) -> Vec<R> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = split_ranges(bounds, grads, new_params, new_velocity)
            .into_iter()
            .map(|(lo, g, p, v)| scope.spawn(move || job(lo, g, p, v)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    })
}

/// [`parallel_ranges`] in the `wasm-threads` build: one task per range on
/// the rayon pool of Web Workers; results in range order.
#[cfg(all(target_arch = "wasm32", feature = "wasm-threads"))]
fn parallel_ranges<R: Send>(
    bounds: &[usize],
    grads: &mut [f32],
    new_params: &mut [f32],
    new_velocity: &mut [f32],
    job: &RangeJob<'_, R>,
) -> Vec<R> {
    let parts = split_ranges(bounds, grads, new_params, new_velocity);
    let mut out: Vec<Option<R>> = parts.iter().map(|_| None).collect();
    rayon::scope(|scope| {
        for ((lo, g, p, v), slot) in parts.into_iter().zip(out.iter_mut()) {
            scope.spawn(move |_| *slot = Some(job(lo, g, p, v)));
        }
    });
    out.into_iter().map(|r| r.expect("every range ran")).collect()
}

#[cfg(all(target_arch = "wasm32", not(feature = "wasm-threads")))]
fn parallel_ranges<R: Send>(
    bounds: &[usize],
    grads: &mut [f32],
    new_params: &mut [f32],
    new_velocity: &mut [f32],
    job: &RangeJob<'_, R>,
) -> Vec<R> {
    vec![job(bounds[0], grads, new_params, new_velocity)]
}

/// Scratch buffers of the chunks, one lock each (a chunk is taken by one
/// thread at a time); a clone gets buffers of its own.
#[derive(Default)]
struct ChunkPasses(Vec<std::sync::Mutex<Pass<f32>>>);

impl Clone for ChunkPasses {
    fn clone(&self) -> ChunkPasses {
        ChunkPasses(
            self.0.iter().map(|p| std::sync::Mutex::new(p.lock().unwrap_or_else(|e| e.into_inner()).clone())).collect(),
        )
    }
}

impl ChunkPasses {
    fn get(&self, c: usize) -> std::sync::MutexGuard<'_, Pass<f32>> {
        self.0[c].lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl CpuEngine {
    /// The engine of `setup`, continuing from `state`.
    pub fn new(setup: Arc<Setup>, state: EngineState) -> CpuEngine {
        let cfg = &setup.settings.config;
        let dropout = setup.dropout.map(|d| Dropout {
            masks: cfg.hidden.iter().map(|w| vec![false; cfg.batch_size * w]).collect(),
            scale: d.scale,
        });
        CpuEngine {
            pass: Pass::new(&setup.net, cfg.batch_size),
            labels: vec![0; cfg.batch_size],
            dropout_rng: StreamRng::new(Stream::Dropout, setup.seeds.dropout),
            epoch_order: None,
            words: Vec::new(),
            dropout,
            combine_order: Vec::new(),
            next_params: vec![0.0; state.params.len()],
            next_velocity: vec![0.0; state.velocity.len()],
            chunk_passes: ChunkPasses(if cfg.chunks > 1 {
                (0..cfg.chunks)
                    .map(|c| {
                        let (lo, hi) = chunk_rows(cfg.batch_size, cfg.chunks, c);
                        std::sync::Mutex::new(Pass::new(&setup.net, hi - lo))
                    })
                    .collect()
            } else {
                Vec::new()
            }),
            params: state.params,
            velocity: state.velocity,
            step: state.step,
            setup,
        }
    }

    /// The run this engine trains.
    pub fn setup(&self) -> &Arc<Setup> {
        &self.setup
    }

    /// The weights as they stand.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// Weights, velocity and step: what a hand-over or checkpoint needs.
    pub fn state(&self) -> EngineState {
        EngineState { step: self.step, params: self.params.clone(), velocity: self.velocity.clone() }
    }

    fn batch_positions(&mut self, t: usize) -> &[u32] {
        let b = self.setup.settings.config.batch_size;
        let per_epoch = self.setup.steps_per_epoch();
        let (epoch, pos) = (t / per_epoch, t % per_epoch);
        if self.epoch_order.as_ref().map(|(e, _)| *e) != Some(epoch) {
            self.epoch_order = Some((epoch, self.setup.epoch_order(epoch)));
        }
        let order = &self.epoch_order.as_ref().expect("set above").1;
        &order[pos * b..(pos + 1) * b]
    }

    /// Gathers step `t`'s batch and draws its dropout masks (addressed by
    /// step, layer, unit and example).
    fn prepare(&mut self, t: usize) {
        self.gather(t);
        self.draw_masks(t, 0, self.setup.settings.config.batch_size);
    }

    /// Gathers step `t`'s batch rows and labels.
    fn gather(&mut self, t: usize) {
        let setup = self.setup.clone();
        let dim = setup.data.dim;
        let picks: Vec<u32> = self.batch_positions(t).to_vec();
        for (r, &p) in picks.iter().enumerate() {
            let ex = setup.train_idx[p as usize] as usize;
            self.pass.acts[0][r * dim..(r + 1) * dim].copy_from_slice(setup.data.row(ex));
            self.labels[r] = setup.data.labels[ex];
        }
    }

    /// Draws rows `lo..hi` of step `t`'s dropout masks: the words at the
    /// same positions of the same streams whatever the range (spec:
    /// [`spec::DROPOUT_LAYER_SHIFT`]), so a chunk's rows drawn alone equal
    /// those rows of the whole batch's masks.
    fn draw_masks(&mut self, t: usize, lo: usize, hi: usize) {
        let Some(p) = self.setup.dropout else { return };
        let Some(d) = self.dropout.as_mut() else { return };
        for (l, (mask, &width)) in d.masks.iter_mut().zip(&self.setup.settings.config.hidden).enumerate() {
            let rows = &mut mask[lo * width..hi * width];
            self.words.resize(rows.len(), 0);
            let id = ((l as u64) << spec::DROPOUT_LAYER_SHIFT) | t as u64;
            self.dropout_rng.fill_words(id, (lo * width) as u64, &mut self.words);
            for (m, &w) in rows.iter_mut().zip(&self.words) {
                *m = w >= p.threshold;
            }
        }
    }

    /// The dropout masks this engine draws for step `t` (0-based), per
    /// hidden layer `[batch x width]` (empty without dropout).
    pub fn masks_for_step(&mut self, t: usize) -> Vec<Vec<bool>> {
        self.prepare(t);
        self.dropout.as_ref().map_or_else(Vec::new, |d| d.masks.clone())
    }

    /// Runs one step, recording it. Returns `None` once the run is finished
    /// (or stopped at this step on a non-finite value).
    pub fn step(&mut self, rec: &mut RunRecord) -> Option<StepReport> {
        if rec.finished() {
            return None;
        }
        debug_assert_eq!(rec.step, self.step, "the engine and the record agree on the step");
        let t = self.step;
        let cfg = self.setup.settings.config.clone();
        self.prepare(t);
        let inv_batch = 1.0 / cfg.batch_size as f32;
        let order = model::RowOrder::of_engine(cfg.engine_version);
        let ar = self.setup.arith();
        let loss_sum = if cfg.chunks <= 1 {
            model::loss_and_grads_arith(
                &self.setup.net,
                &self.params,
                &self.labels,
                self.dropout.as_ref(),
                inv_batch,
                &mut self.pass,
                order,
                ar,
            )
        } else {
            let sums = self.chunk_partials(cfg.threads, cfg.chunks, order, rec.free.contains(&Source::CpuThreads));
            // ((p0 + p1) + p2) + ..., in the order given, as `combine` does.
            let mut loss_sum = sums[0].1;
            for &(_, l) in &sums[1..] {
                loss_sum += l;
            }
            // The gradients are combined by the update, straight from each
            // chunk's buffers.
            self.combine_order = sums.iter().map(|&(c, _)| c).collect();
            loss_sum
        };
        self.finish_step(rec, t, loss_sum)
    }

    /// The update of a step from the gradient in `pass.grads` (or combined
    /// from the chunks' buffers in `combine_order`, when set), written to
    /// `next_params` and `next_velocity`; returns the new weights' hash, or `None` when a value is not finite.
    /// With `threads` > 1 (native)
    /// and a network of at least [`PARALLEL_UPDATE_MIN`] parameters, ranges
    /// of whole hash leaves go to the threads side by side: each value is
    /// computed by the same operations in the same order either way (spec:
    /// [`crate::spec::GRAD_ORDER`], [`crate::spec::OPTIMIZER_ORDER`]), so the
    /// bits do not depend on it.
    fn update(&mut self) -> Option<hash::Hash64> {
        let cfg = &self.setup.settings.config;
        let ar = self.setup.arith();
        let net = &self.setup.net;
        let n = self.params.len();
        let hyper = (cfg.learning_rate, cfg.momentum, cfg.weight_decay);
        let order = std::mem::take(&mut self.combine_order);
        let guards: Vec<_> = order.iter().map(|&c| self.chunk_passes.get(c)).collect();
        let chunk_grads: Vec<&[f32]> = guards.iter().map(|g| &g.grads[..]).collect();
        let leaf = crate::spec::HASH_CHUNK_WORDS;
        let leaves = n.div_ceil(leaf);
        let parts = if !THREADS || n < PARALLEL_UPDATE_MIN { 1 } else { cfg.threads.clamp(1, leaves) };
        let bounds: Vec<usize> = (0..=parts).map(|t| (t * leaves / parts * leaf).min(n)).collect();
        let (params, velocity) = (&self.params, &self.velocity);
        // One range: combine, update, hash its leaves.
        let job = |lo: usize, g: &mut [f32], np: &mut [f32], nv: &mut [f32]| -> (bool, Vec<hash::Hash64>) {
            let hi = lo + g.len();
            if let Some((first, rest)) = chunk_grads.split_first() {
                g.copy_from_slice(&first[lo..hi]);
                for c in rest {
                    for (a, b) in g.iter_mut().zip(&c[lo..hi]) {
                        *a += *b;
                    }
                }
                ar.st_all(g);
            }
            let finite = model::sgd_update_range(net, lo, &params[lo..hi], &velocity[lo..hi], g, hyper, ar, np, nv);
            let mut hashes = Vec::new();
            if finite {
                hash::leaf_hashes(lo / leaf, np, &mut hashes);
            }
            (finite, hashes)
        };
        let results: Vec<(bool, Vec<hash::Hash64>)> = if parts == 1 {
            vec![job(0, &mut self.pass.grads, &mut self.next_params, &mut self.next_velocity)]
        } else {
            parallel_ranges(&bounds, &mut self.pass.grads, &mut self.next_params, &mut self.next_velocity, &job)
        };
        drop(guards);
        if results.iter().any(|(finite, _)| !finite) {
            return None;
        }
        let leaf_hashes: Vec<hash::Hash64> = results.into_iter().flat_map(|(_, h)| h).collect();
        Some(hash::root_hash(n, &leaf_hashes))
    }

    /// Runs up to `n` steps; returns how many ran.
    pub fn run(&mut self, rec: &mut RunRecord, n: usize) -> usize {
        let mut done = 0;
        while done < n && self.step(rec).is_some() {
            done += 1;
        }
        done
    }

    /// For a worker elsewhere (a Web Worker): takes step `t`'s weights from
    /// the coordinator (`load` writes them into the engine's own buffer, of
    /// the length of [`CpuEngine::params`]) and gathers step `t`'s batch,
    /// once for every chunk of the step this worker computes with
    /// [`CpuEngine::chunk_partial`] (which draws each chunk's dropout masks).
    pub fn load_step(&mut self, t: usize, load: impl FnOnce(&mut [f32])) {
        load(&mut self.params);
        self.gather(t);
    }

    /// For a worker elsewhere: chunk `chunk` of step `t`, loaded by
    /// [`CpuEngine::load_step`], into the chunk's own buffers (reused from
    /// step to step, as the threads of [`CpuEngine::step`] do); returns its
    /// loss sum and what `read` makes of its gradient (a copy out, say).
    /// Only the chunk's rows of the dropout masks are drawn: the words at
    /// the same positions of the same streams as [`CpuEngine::step`] draws
    /// for the whole batch (spec: [`spec::DROPOUT_LAYER_SHIFT`]).
    pub fn chunk_partial<R>(&mut self, t: usize, chunk: usize, read: impl FnOnce(&[f32]) -> R) -> Result<(f32, R)> {
        let cfg = &self.setup.settings.config;
        let chunks = cfg.chunks;
        if chunks <= 1 || chunk >= chunks {
            return Err(Error::config("chunk", format!("chunk {chunk} of {chunks} does not exist")));
        }
        let (lo, hi) = chunk_rows(cfg.batch_size, chunks, chunk);
        let order = model::RowOrder::of_engine(cfg.engine_version);
        self.draw_masks(t, lo, hi);
        let mut pass = self.chunk_passes.get(chunk);
        let loss_sum = self.gathered_chunk_into(chunks, chunk, order, &mut pass);
        Ok((loss_sum, read(&pass.grads)))
    }

    /// Chunk `c` of `chunks` of the batch gathered by [`CpuEngine::prepare`]
    /// (or [`CpuEngine::load_step`] and [`CpuEngine::chunk_partial`]) into
    /// `pass` (sized for the chunk's rows); returns the chunk's loss sum, its
    /// gradient in `pass.grads`.
    fn gathered_chunk_into(&self, chunks: usize, c: usize, order: model::RowOrder, pass: &mut Pass<f32>) -> f32 {
        let b = self.setup.settings.config.batch_size;
        let (lo, hi) = chunk_rows(b, chunks, c);
        chunk_partial_into(
            &self.setup.net,
            &self.params,
            &self.pass.acts[0],
            &self.labels,
            self.dropout.as_ref(),
            lo..hi,
            1.0 / b as f32,
            order,
            self.setup.arith(),
            pass,
        )
    }

    /// For the coordinator of workers elsewhere: takes the partial result of
    /// chunk `chunk` of the current step, its loss sum and its gradient
    /// (`write` writes it into the chunk's buffer, of the length of
    /// [`CpuEngine::params`]), and adds every gradient whose turn has come to
    /// the step's sum: in order of arrival when `cpu_threads` is free, in
    /// chunk order when pinned (one that comes early waits in its buffer).
    /// The same operations as [`combine`] in that order, and as the update
    /// of [`CpuEngine::step`] sums its threads' chunks.
    pub fn take_partial(
        &mut self,
        taken: &mut Taken,
        chunk: usize,
        loss_sum: f32,
        write: impl FnOnce(&mut [f32]),
    ) -> Result<()> {
        if taken.step != self.step {
            *taken = Taken { step: self.step, ..Taken::default() };
        }
        let chunks = self.chunk_passes.0.len();
        if chunk >= chunks {
            return Err(Error::config("partials", format!("chunk {chunk} of {chunks} does not exist")));
        }
        if taken.arrived.iter().any(|&(c, _)| c == chunk) {
            return Err(Error::config("partials", format!("chunk {chunk} of step {} arrived twice", self.step)));
        }
        write(&mut self.chunk_passes.0[chunk].get_mut().unwrap_or_else(|e| e.into_inner()).grads);
        taken.arrived.push((chunk, loss_sum));
        let arrival = self.setup.free.contains(&Source::CpuThreads);
        loop {
            let next = if arrival {
                taken.arrived.get(taken.summed).copied()
            } else {
                taken.arrived.iter().copied().find(|&(c, _)| c == taken.summed)
            };
            let Some((c, l)) = next else { break };
            let g = &self.chunk_passes.0[c].get_mut().unwrap_or_else(|e| e.into_inner()).grads;
            if taken.summed == 0 {
                self.pass.grads.copy_from_slice(g);
                taken.loss_sum = l;
            } else {
                for (a, b) in self.pass.grads.iter_mut().zip(g) {
                    *a += *b;
                }
                taken.loss_sum += l;
            }
            taken.summed += 1;
        }
        Ok(())
    }

    /// For the coordinator of workers elsewhere: computes chunk `chunk` of
    /// the current step itself, from its own weights (the step's batch
    /// gathered at its first such chunk), and takes it as [`CpuEngine::take_partial`]
    /// takes a worker's, without a copy: the coordinator's thread works on
    /// the step too instead of waiting for the workers. The same operations
    /// as a worker's [`CpuEngine::chunk_partial`].
    pub fn own_chunk(&mut self, taken: &mut Taken, chunk: usize) -> Result<()> {
        if taken.step != self.step {
            *taken = Taken { step: self.step, ..Taken::default() };
        }
        if taken.arrived.iter().any(|&(c, _)| c == chunk) {
            // Refused before computing: a chunk waiting in its buffer stays as it came.
            return Err(Error::config("partials", format!("chunk {chunk} of step {} arrived twice", self.step)));
        }
        let t = self.step;
        if !taken.gathered {
            self.gather(t);
            taken.gathered = true;
        }
        let (loss_sum, ()) = self.chunk_partial(t, chunk, |_| ())?;
        // The gradient is in the chunk's buffer already.
        self.take_partial(taken, chunk, loss_sum, |_| {})
    }

    /// For the coordinator: finishes the current step once
    /// [`CpuEngine::take_partial`] has taken every chunk's partial result.
    pub fn apply_partials(&mut self, rec: &mut RunRecord, taken: &mut Taken) -> Result<Option<StepReport>> {
        let chunks = self.chunk_passes.0.len();
        let done = std::mem::take(taken);
        if chunks == 0 || done.step != self.step || done.summed != chunks {
            let mut seen: Vec<usize> =
                if done.step == self.step { done.arrived.iter().map(|&(c, _)| c).collect() } else { Vec::new() };
            seen.sort_unstable();
            return Err(Error::config(
                "partials",
                format!("expected one partial result per chunk 0..{chunks} of step {}, got chunks {seen:?}", self.step),
            ));
        }
        if rec.finished() {
            return Ok(None);
        }
        self.setup.arith().st_all(&mut self.pass.grads);
        Ok(self.finish_step(rec, self.step, done.loss_sum))
    }

    /// Applies the combined gradient of step `t`: optimizer, checks, hash
    /// chain, validation.
    fn finish_step(&mut self, rec: &mut RunRecord, t: usize, loss_sum: f32) -> Option<StepReport> {
        let cfg = self.setup.settings.config.clone();
        let loss = loss_sum * (1.0 / cfg.batch_size as f32);
        if !loss.is_finite() {
            self.combine_order.clear();
            rec.stopped = Some(Stopped::non_finite(t + 1, "the training loss", loss, &cfg));
            return None;
        }
        // Keep the last good state, so a step that overflows the weights
        // leaves the run where it was (the manifest's final weights are the
        // last finite ones).
        let Some(h) = self.update() else {
            // The update is not kept: the weights stay the last finite ones.
            let bad = self.next_params.iter().chain(&self.next_velocity).find(|v| !v.is_finite());
            let bad = bad.copied().unwrap_or(f32::NAN);
            rec.stopped = Some(Stopped::non_finite(t + 1, "a weight", bad, &cfg));
            return None;
        };
        std::mem::swap(&mut self.params, &mut self.next_params);
        std::mem::swap(&mut self.velocity, &mut self.next_velocity);

        debug_assert_eq!(h, hash::weights_hash(&self.params), "the hash of the update is the weights' hash");
        rec.push_step(loss, hash::chain_link(rec.chain_head, h));
        self.step = t + 1;

        let val = if rec.evaluates_after(self.step) {
            let p = self.evaluate(self.step);
            rec.val_curve.push(p);
            Some(p)
        } else {
            None
        };
        Some(StepReport { step: self.step, train_loss: loss, val })
    }

    /// The partial results of every chunk of the current batch (already
    /// gathered in `pass.acts[0]`, `labels` and the dropout masks), computed by
    /// `threads` OS threads (one in the browser, where Web Workers take this
    /// role), in chunk order, or in order of arrival when `arrival` (the
    /// `cpu_threads` source free).
    /// Each chunk's gradient lands in its own buffers (`chunk_passes`);
    /// returns (chunk, loss sum) pairs.
    fn chunk_partials(
        &self,
        threads: usize,
        chunks: usize,
        order: model::RowOrder,
        arrival: bool,
    ) -> Vec<(usize, f32)> {
        let job = |c: usize| {
            let mut pass = self.chunk_passes.get(c);
            (c, self.gathered_chunk_into(chunks, c, order, &mut pass))
        };
        let mut sums: Vec<(usize, f32)> = if threads <= 1 || !THREADS {
            (0..chunks).map(job).collect()
        } else {
            run_on_threads(threads, chunks, &job)
        };
        if !arrival {
            sums.sort_by_key(|&(c, _)| c);
        }
        sums
    }

    /// The model's prediction over an `n x n` grid covering `[lo, hi]^2`
    /// (2-D data sets only; row-major, y from `lo` up): the predicted class
    /// and its probability, for decision-boundary pictures.
    pub fn predict_grid(&self, n: usize, lo: f32, hi: f32) -> Result<(Vec<u8>, Vec<f32>)> {
        let data = &self.setup.data;
        if data.dim != 2 {
            return Err(Error::config(
                "grid",
                format!("{} has {} features: a decision boundary needs a 2-D data set", data.name, data.dim),
            ));
        }
        if !(2..=512).contains(&n) {
            return Err(Error::config("grid", format!("grid size {n} is not from 2 to 512")));
        }
        let classes = self.setup.data.classes;
        let mut pass: Pass<f32> = Pass::new(&self.setup.net, n * n);
        let step = (hi - lo) / (n - 1) as f32;
        for y in 0..n {
            for x in 0..n {
                let i = y * n + x;
                pass.acts[0][2 * i] = lo + x as f32 * step;
                pass.acts[0][2 * i + 1] = lo + y as f32 * step;
            }
        }
        let ar = self.setup.arith();
        model::forward_arith(&self.setup.net, &self.params, None, &mut pass, ar);
        let labels = vec![0u8; n * n];
        let mut losses = vec![0.0f32; n * n];
        let predicted: Vec<u8> = model::argmax_rows(&pass.logits, classes).map(|c| c as u8).collect();
        // Probability of the predicted class: exp(-loss) against that class.
        let mut probs = pass.logits.clone();
        model::softmax_xent_arith(&mut probs, &labels, classes, Some(1.0), &mut losses, ar);
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
    pub fn evaluate(&self, step: usize) -> ValPoint {
        evaluate(&self.setup, &self.params, step)
    }
}

/// Validation error and loss of `params` over the whole validation set,
/// without dropout (spec: [`spec::LOSS_ORDER`]), as measured after `step` steps.
pub fn evaluate(setup: &Setup, params: &[f32], step: usize) -> ValPoint {
    {
        const CHUNK: usize = 256;
        let classes = setup.data.classes;
        let mut wrong = 0usize;
        let mut loss_sum = 0.0f64;
        for chunk in setup.val_idx.chunks(CHUNK) {
            let mut pass: Pass<f32> = Pass::new(&setup.net, chunk.len());
            let mut labels = Vec::with_capacity(chunk.len());
            for (r, &i) in chunk.iter().enumerate() {
                let i = i as usize;
                pass.acts[0][r * setup.data.dim..(r + 1) * setup.data.dim].copy_from_slice(setup.data.row(i));
                labels.push(setup.data.labels[i]);
            }
            model::forward_arith(&setup.net, params, None, &mut pass, setup.arith());
            wrong += model::argmax_rows(&pass.logits, classes).zip(&labels).filter(|(p, y)| *p != **y as usize).count();
            let mut losses = vec![0.0f32; chunk.len()];
            model::softmax_xent_arith(&mut pass.logits, &labels, classes, None, &mut losses, setup.arith());
            for l in losses {
                loss_sum += f64::from(l);
            }
        }
        let n = setup.val_idx.len() as f64;
        let mean = loss_sum / n;
        ValPoint { step, val_error: wrong as f64 / n, val_loss: mean.is_finite().then_some(mean) }
    }
}

/// The partial results of the current step that [`CpuEngine::take_partial`]
/// has taken: `(chunk, loss sum)` in order of arrival, and how many are
/// summed so far (their gradients in the engine's `pass.grads`).
#[derive(Clone, Debug, Default)]
pub struct Taken {
    step: usize,
    arrived: Vec<(usize, f32)>,
    summed: usize,
    loss_sum: f32,
    /// The coordinator has gathered this step's batch ([`CpuEngine::own_chunk`]).
    gathered: bool,
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

/// Forward and backward over rows `rows` of a gathered batch, into `pass`,
/// buffers sized for `rows` (every buffer is written before it is read, so a
/// pass can serve step after step); returns the loss sum, the gradient in
/// `pass.grads`.
#[allow(clippy::too_many_arguments)]
pub fn chunk_partial_into(
    net: &Network,
    params: &[f32],
    batch_x: &[f32],
    labels: &[u8],
    dropout: Option<&Dropout>,
    rows: std::ops::Range<usize>,
    inv_batch: f32,
    order: model::RowOrder,
    ar: model::Arith,
    pass: &mut Pass<f32>,
) -> f32 {
    let dim = net.layers[0].fan_in;
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
    model::loss_and_grads_arith(net, params, &labels[rows], masks.as_ref(), inv_batch, pass, order, ar)
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
fn run_on_threads<R: Send>(threads: usize, chunks: usize, job: &(dyn Fn(usize) -> R + Sync)) -> Vec<R> {
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

#[cfg(all(target_arch = "wasm32", not(feature = "wasm-threads")))]
fn run_on_threads<R: Send>(_threads: usize, chunks: usize, job: &(dyn Fn(usize) -> R + Sync)) -> Vec<R> {
    (0..chunks).map(job).collect()
}

/// [`run_on_threads`] in the `wasm-threads` build: `threads` tasks on the
/// rayon pool of Web Workers that share the module's memory
/// (wasm-bindgen-rayon), taking chunks as they become free; results in
/// order of arrival, as with OS threads.
#[cfg(all(target_arch = "wasm32", feature = "wasm-threads"))]
fn run_on_threads<R: Send>(threads: usize, chunks: usize, job: &(dyn Fn(usize) -> R + Sync)) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let arrived = std::sync::Mutex::new(Vec::with_capacity(chunks));
    rayon::scope(|scope| {
        for _ in 0..threads.min(chunks) {
            let (next, arrived) = (&next, &arrived);
            scope.spawn(move |_| loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= chunks {
                    break;
                }
                let r = job(c);
                arrived.lock().unwrap_or_else(|e| e.into_inner()).push(r);
            });
        }
    });
    arrived.into_inner().unwrap_or_else(|e| e.into_inner())
}
