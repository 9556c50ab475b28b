//! The GPU engine: trains a run on its own buffers, one submit per step and
//! one read-back every [`spec::GPU_READBACK_STEPS`] steps, reporting every
//! step into the run's record. It holds its own state; [`GpuEngine::state`]
//! is the last state read back, which a hand-over to the CPU continues from.

use std::sync::Arc;

use super::device::Gpu;
use super::graph::StepGraph;
use super::kernels::{bytes_f32, bytes_of, bytes_u32, Dispatch, StepUniform};
use crate::error::{Error, Result};
use crate::hash::Hash64;
use crate::record::{Adapter, RunRecord, Stopped, ValPoint};
use crate::setup::{EngineState, Setup};
use crate::sources::{self, Source};
use crate::spec::{self, BackendKind, GpuReduction};

/// GPU time of one kernel in a profiled step ([`GpuEngine::profile_step`]).
#[derive(Clone, Debug, serde::Serialize)]
pub struct KernelTime {
    pub kernel: String,
    /// Dispatches of this kernel in the step.
    pub dispatches: usize,
    /// Their time together, milliseconds.
    pub ms: f64,
}

/// The kernels of one profiled step and how they were timed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KernelProfile {
    /// `timestamp queries`, or the wall clock per dispatch.
    pub by: String,
    pub kernels: Vec<KernelTime>,
}

/// A run training on the GPU.
pub struct GpuEngine {
    gpu: Gpu,
    setup: Arc<Setup>,
    graph: StepGraph,
    reduction: GpuReduction,
    /// The state of the last read-back.
    state: EngineState,
    uploaded_epoch: Option<usize>,
    lose_device_at: Option<usize>,
}

impl GpuEngine {
    /// Puts `setup` on `gpu`, continuing from `state` with the chain at
    /// `chain_head`. Refuses (before allocating anything on the device) a run
    /// the GPU cannot take: a free `cpu_threads` that would act, or a buffer
    /// beyond the adapter's limit.
    pub fn new(gpu: Gpu, setup: Arc<Setup>, state: EngineState, chain_head: Hash64) -> Result<GpuEngine> {
        GpuEngine::with_arith(gpu, setup, state, chain_head, crate::model::Arith::Default)
    }

    /// [`GpuEngine::new`] with the kernels of the arithmetic `ar`: `exact`
    /// compiles the exact kernels (the caller has run the start-up probe).
    pub fn with_arith(
        mut gpu: Gpu,
        setup: Arc<Setup>,
        state: EngineState,
        chain_head: Hash64,
        ar: crate::model::Arith,
    ) -> Result<GpuEngine> {
        if let Some(why) = crate::driver::gpu_cannot_chunk(setup.settings.config.chunks) {
            return Err(Error::Backend(why));
        }
        if setup.free.contains(&Source::CpuThreads)
            && sources::effect(Source::CpuThreads, &setup.settings, None, true).acts
        {
            return Err(Error::Backend(
                "cpu_threads is free, but the GPU has no CPU threads to combine: train on the CPU to vary it".into(),
            ));
        }
        // The largest buffer must fit one storage binding of this device.
        let widest = setup.net.layers.iter().map(|l| l.fan_in.max(l.fan_out)).max().unwrap_or(1);
        let largest = [
            4 * setup.data.features.len(),
            4 * setup.net.n_params,
            4 * setup.val_idx.len() * widest,
            4 * setup.settings.config.batch_size * widest,
        ]
        .into_iter()
        .max()
        .unwrap_or(0) as u64;
        let limit = gpu.device.limits().max_storage_buffer_binding_size;
        if largest > limit {
            return Err(Error::Backend(format!(
                "this run needs a {largest}-byte GPU buffer but the adapter allows {limit} bytes per buffer"
            )));
        }
        if ar == crate::model::Arith::Exact {
            gpu.use_exact_kernels()?;
        }
        let reduction = setup.gpu_reduction;
        let graph = StepGraph::build(&gpu, &setup, &state, chain_head, reduction)?;
        Ok(GpuEngine { gpu, setup, graph, reduction, state, uploaded_epoch: None, lose_device_at: None })
    }

    /// The adapter this run trains on.
    pub fn adapter(&self) -> &Adapter {
        &self.gpu.adapter
    }

    /// The state of the last read-back (weights, velocity, step).
    pub fn state(&self) -> EngineState {
        self.state.clone()
    }

    /// The weights of the last read-back.
    pub fn params(&self) -> &[f32] {
        &self.state.params
    }

    /// The backend this engine is.
    pub fn backend(&self) -> BackendKind {
        BackendKind::Gpu
    }

    /// For tests of the fallback: destroy the device once `step` steps are done.
    pub fn lose_device_at(&mut self, step: usize) {
        self.lose_device_at = Some(step);
    }

    /// Writes what step `t` (0-based) reads: the epoch's row order (once an
    /// epoch) and the step's uniform.
    fn upload_step_inputs(&mut self, t: usize) {
        let per_epoch = self.setup.steps_per_epoch();
        let epoch = t / per_epoch;
        if self.uploaded_epoch != Some(epoch) {
            let rows = self.setup.epoch_rows(epoch);
            self.gpu.queue.write_buffer(&self.graph.epoch_rows, 0, bytes_of(&rows));
            self.uploaded_epoch = Some(epoch);
        }
        let slot = (t % spec::GPU_READBACK_STEPS) as u32;
        let batch_offset = ((t % per_epoch) * self.setup.settings.config.batch_size) as u32;
        let u = StepUniform { t: t as u32, batch_offset, slot, val_slot: slot };
        self.gpu.queue.write_buffer(&self.graph.step_uniform, 0, u.bytes());
    }

    /// Encodes and submits step `t` (0-based). No read-back.
    fn submit_step(&mut self, t: usize) {
        self.upload_step_inputs(t);
        let cfg = &self.setup.settings.config;
        let evaluate = (t + 1) % cfg.eval_every == 0 || t + 1 == cfg.steps;
        let mut enc = self.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("step") });
        if self.reduction == GpuReduction::Atomic {
            enc.clear_buffer(&self.graph.grads, 0, None);
        }
        {
            let mut pass =
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("step"), timestamp_writes: None });
            let vals: &[Dispatch] = if evaluate { &self.graph.val_dispatches } else { &[] };
            for d in self.graph.train_dispatches.iter().chain(vals) {
                pass.set_pipeline(&self.gpu.pipelines[d.kernel]);
                pass.set_bind_group(0, &d.bind, &[]);
                pass.dispatch_workgroups(d.groups.0, d.groups.1, 1);
            }
        }
        self.gpu.queue.submit([enc.finish()]);
    }

    /// Reads back the rings, weights and velocity.
    async fn read_back(&self) -> Result<(Vec<f32>, Vec<u32>, Vec<u32>, Vec<f32>, Vec<f32>)> {
        let k = spec::GPU_READBACK_STEPS;
        let n_params = self.setup.net.n_params;
        let g = &self.graph;
        let parts = self
            .gpu
            .read(&[
                (&g.loss_ring, 4 * k),
                (&g.hash_ring, 4 * (4 * k + 2)),
                (&g.val_ring, 8 * k),
                (&g.params, 4 * n_params),
                (&g.velocity, 4 * n_params),
            ])
            .await?;
        Ok((
            bytes_f32(&parts[0]),
            bytes_u32(&parts[1]),
            bytes_u32(&parts[2]),
            bytes_f32(&parts[3]),
            bytes_f32(&parts[4]),
        ))
    }

    /// Runs up to `n` more steps on the GPU (stopping at a read-back
    /// boundary), reads their results back and records them. Returns the
    /// steps recorded.
    pub async fn run_block(&mut self, rec: &mut RunRecord, n: usize) -> Result<usize> {
        let start = rec.step;
        debug_assert_eq!(start, self.state.step, "the engine and the record agree on the step");
        let k = spec::GPU_READBACK_STEPS;
        let room = k - start % k;
        let count = n.min(room).min(rec.total_steps().saturating_sub(start));
        if count == 0 || rec.finished() {
            return Ok(0);
        }
        for t in start..start + count {
            self.submit_step(t);
            if self.lose_device_at == Some(t + 1) {
                self.gpu.lose_device();
            }
        }
        self.gpu.check()?;
        let (losses, ring, vals, params, velocity) = self.read_back().await?;
        let bad_loss = (start..start + count).any(|t| !losses[t % k].is_finite());
        let bad_weights = params.iter().chain(&velocity).any(|v| !v.is_finite());
        if bad_loss || bad_weights {
            return self.rerun_until_failure(rec, start, count).await;
        }
        for t in start..start + count {
            let s = t % k;
            rec.push_step(losses[s], Hash64 { lo: ring[4 * s], hi: ring[4 * s + 1] });
            self.record_val(rec, t, &vals);
        }
        self.state = EngineState { step: start + count, params, velocity };
        Ok(count)
    }

    /// Records the validation point of step `t` (0-based) from the read-back
    /// validation ring, when that step evaluated (as the CPU engine does).
    fn record_val(&self, rec: &mut RunRecord, t: usize, vals: &[u32]) {
        let cfg = &self.setup.settings.config;
        if (t + 1) % cfg.eval_every == 0 || t + 1 == cfg.steps {
            let s = t % spec::GPU_READBACK_STEPS;
            let n_val = self.setup.val_idx.len() as f64;
            let loss = f64::from(f32::from_bits(vals[2 * s + 1])) / n_val;
            rec.val_curve.push(ValPoint {
                step: t + 1,
                val_error: f64::from(vals[2 * s]) / n_val,
                val_loss: loss.is_finite().then_some(loss),
            });
        }
    }

    /// A block produced a non-finite loss or weight: redo it from its first
    /// step (the state of the last read-back), one step and one read-back at
    /// a time, and stop before the step that fails, as the CPU engine does.
    async fn rerun_until_failure(&mut self, rec: &mut RunRecord, start: usize, count: usize) -> Result<usize> {
        let g = &self.graph;
        self.gpu.queue.write_buffer(&g.params, 0, bytes_of(&self.state.params));
        self.gpu.queue.write_buffer(&g.velocity, 0, bytes_of(&self.state.velocity));
        let k = spec::GPU_READBACK_STEPS;
        let head = rec.chain_head;
        self.gpu.queue.write_buffer(&g.hash_ring, 4 * (4 * k) as u64, bytes_of(&[head.lo, head.hi]));
        for t in start..start + count {
            self.submit_step(t);
            let (losses, ring, vals, params, velocity) = self.read_back().await?;
            let s = t % k;
            let loss = losses[s];
            let what = if !loss.is_finite() {
                Some(("the training loss", loss))
            } else {
                params.iter().chain(&velocity).find(|v| !v.is_finite()).map(|v| ("a weight", *v))
            };
            if let Some((what, value)) = what {
                rec.stopped = Some(Stopped::non_finite(t + 1, what, value, &self.setup.settings.config));
                return Ok(t - start);
            }
            rec.push_step(loss, Hash64 { lo: ring[4 * s], hi: ring[4 * s + 1] });
            self.record_val(rec, t, &vals);
            self.state = EngineState { step: t + 1, params, velocity };
        }
        Ok(count)
    }

    /// Times every kernel of one training step (the next step, `t` =
    /// the state's step, without validation), dispatch by dispatch: by
    /// timestamp queries around each dispatch (one compute pass each) where
    /// the device has them, else natively by the wall clock around a submit
    /// and a blocking wait per dispatch. The step is then undone (weights,
    /// velocity and the chain head `chain_head` written back), so the run
    /// goes on as if it had not been profiled. Returns one entry per kernel
    /// (dispatches of the same kernel added up), in first-dispatch order.
    pub async fn profile_step(&mut self, chain_head: Hash64) -> Result<KernelProfile> {
        let t = self.state.step;
        self.upload_step_inputs(t);
        if self.reduction == GpuReduction::Atomic {
            let mut enc = self.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            enc.clear_buffer(&self.graph.grads, 0, None);
            self.gpu.queue.submit([enc.finish()]);
        }
        let dispatches = &self.graph.train_dispatches;
        let pass = |enc: &mut wgpu::CommandEncoder, d: &Dispatch, ts: Option<wgpu::ComputePassTimestampWrites>| {
            let mut pass =
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(d.kernel), timestamp_writes: ts });
            pass.set_pipeline(&self.gpu.pipelines[d.kernel]);
            pass.set_bind_group(0, &d.bind, &[]);
            pass.dispatch_workgroups(d.groups.0, d.groups.1, 1);
        };
        let (ms, by): (Vec<f64>, &str) = if self.gpu.has_timestamps() {
            let n = dispatches.len() as u32;
            let set = self.gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile"),
                ty: wgpu::QueryType::Timestamp,
                count: 2 * n,
            });
            let resolved = self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile"),
                size: 16 * u64::from(n),
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let mut enc =
                self.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("profile") });
            for (i, d) in dispatches.iter().enumerate() {
                let ts = wgpu::ComputePassTimestampWrites {
                    query_set: &set,
                    beginning_of_pass_write_index: Some(2 * i as u32),
                    end_of_pass_write_index: Some(2 * i as u32 + 1),
                };
                pass(&mut enc, d, Some(ts));
            }
            enc.resolve_query_set(&set, 0..2 * n, &resolved, 0);
            self.gpu.queue.submit([enc.finish()]);
            let words = bytes_u32(&self.gpu.read(&[(&resolved, 16 * n as usize)]).await?[0]);
            let period = f64::from(self.gpu.queue.get_timestamp_period());
            let tick = |i: usize| u64::from(words[2 * i]) | (u64::from(words[2 * i + 1]) << 32);
            let ms = (0..n as usize).map(|i| tick(2 * i + 1).saturating_sub(tick(2 * i)) as f64 * period / 1e6);
            (ms.collect(), "timestamp queries")
        } else {
            #[cfg(target_arch = "wasm32")]
            return Err(Error::Backend("profile: this device has no timestamp queries".into()));
            #[cfg(not(target_arch = "wasm32"))]
            {
                let mut ms = Vec::new();
                for d in dispatches {
                    let start = std::time::Instant::now();
                    let mut enc = self
                        .gpu
                        .device
                        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("profile") });
                    pass(&mut enc, d, None);
                    self.gpu.queue.submit([enc.finish()]);
                    self.gpu
                        .device
                        .poll(wgpu::PollType::wait_indefinitely())
                        .map_err(|e| Error::Backend(format!("waiting for the GPU failed: {e}")))?;
                    ms.push(start.elapsed().as_secs_f64() * 1e3);
                }
                (ms, "wall clock around a submit and a blocking wait per dispatch")
            }
        };
        self.gpu.check()?;
        let mut kernels: Vec<KernelTime> = Vec::new();
        for (d, ms) in dispatches.iter().zip(ms) {
            match kernels.iter_mut().find(|k| k.kernel == d.kernel) {
                Some(k) => {
                    k.dispatches += 1;
                    k.ms += ms;
                }
                None => kernels.push(KernelTime { kernel: d.kernel.to_string(), dispatches: 1, ms }),
            }
        }
        // Undo the step.
        let g = &self.graph;
        self.gpu.queue.write_buffer(&g.params, 0, bytes_of(&self.state.params));
        self.gpu.queue.write_buffer(&g.velocity, 0, bytes_of(&self.state.velocity));
        let k = spec::GPU_READBACK_STEPS;
        self.gpu.queue.write_buffer(&g.hash_ring, 4 * (4 * k) as u64, bytes_of(&[chain_head.lo, chain_head.hi]));
        Ok(KernelProfile { by: by.to_string(), kernels })
    }

    /// Reads the GPU's weights back without changing anything (for tests).
    pub async fn read_params(&self) -> Result<Vec<f32>> {
        let parts = self.gpu.read(&[(&self.graph.params, 4 * self.setup.net.n_params)]).await?;
        Ok(bytes_f32(&parts[0]))
    }
}
