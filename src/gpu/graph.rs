//! The step graph: every buffer of a run on the GPU and every dispatch of a
//! training step and of a validation pass, recorded once per run so a step
//! is one submit with no CPU round trip.

use super::device::Gpu;
use super::kernels::{bytes_of, groups_1d, Dims, Dispatch, StepUniform};
use crate::error::Result;
use crate::hash::Hash64;
use crate::setup::{EngineState, Setup};
use crate::spec::{self, GpuReduction};

/// Buffers of one forward pass over `rows` examples.
pub(crate) struct ForwardBuffers {
    rows: usize,
    x: wgpu::Buffer,
    y: wgpu::Buffer,
    /// Per hidden layer: output after the activation (before dropout).
    h: Vec<wgpu::Buffer>,
    /// Per hidden layer: output after dropout (training with dropout only).
    dropped: Vec<Option<wgpu::Buffer>>,
    masks: Vec<Option<wgpu::Buffer>>,
    logits: wgpu::Buffer,
    losses: wgpu::Buffer,
    dlogits: wgpu::Buffer,
}

/// The buffers and dispatches of a run on the GPU.
pub(crate) struct StepGraph {
    pub params: wgpu::Buffer,
    pub velocity: wgpu::Buffer,
    pub grads: wgpu::Buffer,
    pub step_uniform: wgpu::Buffer,
    pub epoch_rows: wgpu::Buffer,
    pub loss_ring: wgpu::Buffer,
    pub hash_ring: wgpu::Buffer,
    pub val_ring: wgpu::Buffer,
    pub train_dispatches: Vec<Dispatch>,
    pub val_dispatches: Vec<Dispatch>,
}

impl StepGraph {
    /// Uploads the data set, the weights of `state` and the run's constants,
    /// and records every dispatch of a step.
    pub fn build(
        gpu: &Gpu,
        setup: &Setup,
        state: &EngineState,
        chain_head: Hash64,
        reduction: GpuReduction,
    ) -> Result<StepGraph> {
        let cfg = setup.settings.config.clone();
        let net = setup.net.clone();
        let data = &setup.data;
        let b = cfg.batch_size;
        let n_params = net.n_params;
        let k = spec::GPU_READBACK_STEPS;

        let data_x = gpu.buffer_with("data_x", bytes_of(&data.features));
        let labels: Vec<u32> = data.labels.iter().map(|&l| u32::from(l)).collect();
        let data_y = gpu.buffer_with("data_y", bytes_of(&labels));
        let val_rows = gpu.buffer_with("val_rows", bytes_of(&setup.val_idx));
        let epoch_rows = gpu.buffer("epoch_rows", 4 * setup.train_idx.len());
        let params = gpu.buffer_with("params", bytes_of(&state.params));
        let velocity = gpu.buffer_with("velocity", bytes_of(&state.velocity));
        // The gradients fused with the update (fixed reduction order only:
        // the atomic variant sums into `grads` across dispatches) need no
        // gradient buffer.
        let fuse_update = gpu.fuses_grad_update() && reduction == GpuReduction::Fixed;
        let grads = gpu.buffer("grads", if fuse_update { 0 } else { 4 * n_params });
        let step_uniform = gpu.uniform("step", StepUniform::default().bytes());
        let loss_ring = gpu.buffer("loss_ring", 4 * k);
        // 4 words per slot (link, weights hash), then the chain head.
        let head = chain_head;
        let mut ring_init = vec![0u32; 4 * k + 2];
        ring_init[4 * k] = head.lo;
        ring_init[4 * k + 1] = head.hi;
        let hash_ring = gpu.buffer_with("hash_ring", bytes_of(&ring_init));
        let val_ring = gpu.buffer("val_ring", 8 * k);
        let leaves = gpu.buffer("leaves", 8 * n_params.div_ceil(spec::HASH_CHUNK_WORDS));
        let key = crate::chacha::key_words(&crate::rng::stream_key(crate::rng::Stream::Dropout, setup.seeds.dropout));
        let key_uniform = gpu.uniform("dropout_key", bytes_of(&key));

        // The constants as the CPU's arithmetic uses them: under `exact`
        // they pass `tiny` (spec: EXACT_ARITHMETIC).
        let ar = if gpu.exact_kernels() { crate::model::Arith::Exact } else { crate::model::Arith::Default };
        let dropout = setup.dropout.map(|d| (d.threshold, ar.st(d.scale)));
        let make_fwd = |rows: usize, training: bool| -> ForwardBuffers {
            let hidden = &cfg.hidden;
            ForwardBuffers {
                rows,
                x: gpu.buffer("x", 4 * rows * data.dim),
                y: gpu.buffer("y", 4 * rows),
                h: hidden.iter().map(|w| gpu.buffer("h", 4 * rows * w)).collect(),
                dropped: hidden
                    .iter()
                    .map(|w| (training && dropout.is_some()).then(|| gpu.buffer("dropped", 4 * rows * w)))
                    .collect(),
                masks: hidden
                    .iter()
                    .map(|w| (training && dropout.is_some()).then(|| gpu.buffer("mask", 4 * rows * w)))
                    .collect(),
                logits: gpu.buffer("logits", 4 * rows * data.classes),
                losses: gpu.buffer("losses", 4 * rows),
                dlogits: gpu.buffer("dlogits", 4 * rows * data.classes),
            }
        };
        let train = make_fwd(b, true);
        let val = make_fwd(setup.val_idx.len(), false);
        let max_width = net.layers.iter().map(|l| l.fan_in.max(l.fan_out)).max().unwrap_or(1);
        let back_g = gpu.buffer("back_g", 4 * b * max_width);
        let deltas: Vec<wgpu::Buffer> = cfg.hidden.iter().map(|w| gpu.buffer("delta", 4 * b * w)).collect();

        let act_mode = cfg.activation.gpu_mode();
        let inv_batch = ar.st(1.0 / b as f32);
        let n_layers = net.layers.len();
        // Engine version 2 sums batch rows descending (spec: GRAD_ORDER).
        let row_mode =
            u32::from(crate::model::RowOrder::of_engine(cfg.engine_version) == crate::model::RowOrder::Descending);

        // The forward pass of `fwd` (gather, layers, softmax), for training or
        // validation.
        let forward = |fwd: &ForwardBuffers, rows_buf: &wgpu::Buffer, training: bool| -> Vec<Dispatch> {
            let mut d = Vec::new();
            let rows = fwd.rows;
            let dims = Dims { rows: rows as u32, k: data.dim as u32, mode: u32::from(training), ..Default::default() };
            d.push(Dispatch {
                kernel: "gather",
                bind: gpu.bind(
                    "gather",
                    &[&gpu.uniform("gather", dims.bytes()), &step_uniform, &data_x, &data_y, rows_buf, &fwd.x, &fwd.y],
                ),
                groups: groups_1d(rows * data.dim),
            });
            for (l, layer) in net.layers.iter().enumerate() {
                let input = if l == 0 { &fwd.x } else { fwd.dropped[l - 1].as_ref().unwrap_or(&fwd.h[l - 1]) };
                let out = if l == n_layers - 1 { &fwd.logits } else { &fwd.h[l] };
                let mode = if l == n_layers - 1 { spec::ACT_NONE } else { act_mode };
                // The blocked kernels add the bias and apply the activation
                // in their epilogue (u0 = 1); the reference ones leave that
                // to bias_activation.wgsl.
                let fused = !gpu.reference_matrix_kernels();
                let mm = Dims {
                    rows: rows as u32,
                    k: layer.fan_in as u32,
                    n: layer.fan_out as u32,
                    mode,
                    off_b: layer.w as u32,
                    off_c: layer.b as u32,
                    u: [u32::from(fused), 0, 0, 0],
                    ..Default::default()
                };
                d.push(Dispatch {
                    kernel: "matmul",
                    bind: gpu.bind("matmul", &[&gpu.uniform("matmul", mm.bytes()), input, &params, out]),
                    groups: gpu.matrix_groups(layer.fan_out, rows),
                });
                if !fused {
                    let ba = Dims {
                        rows: rows as u32,
                        n: layer.fan_out as u32,
                        mode,
                        off_b: layer.b as u32,
                        ..Default::default()
                    };
                    d.push(Dispatch {
                        kernel: "bias_activation",
                        bind: gpu.bind("bias_activation", &[&gpu.uniform("bias_act", ba.bytes()), &params, out]),
                        groups: groups_1d(rows * layer.fan_out),
                    });
                }
                if let (Some(dropped), Some(mask), Some((threshold, scale))) =
                    (fwd.dropped.get(l).and_then(|x| x.as_ref()), fwd.masks.get(l).and_then(|x| x.as_ref()), dropout)
                {
                    let dd = Dims {
                        rows: rows as u32,
                        n: layer.fan_out as u32,
                        f: [scale, 0.0, 0.0, 0.0],
                        u: [l as u32, threshold, 0, 0],
                        ..Default::default()
                    };
                    d.push(Dispatch {
                        kernel: "dropout",
                        bind: gpu.bind(
                            "dropout",
                            &[
                                &gpu.uniform("dropout", dd.bytes()),
                                &step_uniform,
                                &key_uniform,
                                &fwd.h[l],
                                dropped,
                                mask,
                            ],
                        ),
                        groups: groups_1d((rows * layer.fan_out).div_ceil(16)),
                    });
                }
            }
            if training && gpu.fuses() {
                // Softmax and the batch loss in one dispatch.
                let sl = Dims {
                    rows: rows as u32,
                    n: data.classes as u32,
                    f: [inv_batch, 0.0, 0.0, 0.0],
                    u: [row_mode, 0, 0, 0],
                    ..Default::default()
                };
                d.push(Dispatch {
                    kernel: "softmax_xent_loss",
                    bind: gpu.bind(
                        "softmax_xent_loss",
                        &[
                            &gpu.uniform("softmax_loss", sl.bytes()),
                            &step_uniform,
                            &fwd.logits,
                            &fwd.y,
                            &fwd.losses,
                            &fwd.dlogits,
                            &loss_ring,
                        ],
                    ),
                    groups: (1, 1),
                });
                return d;
            }
            let sm = Dims {
                rows: rows as u32,
                n: data.classes as u32,
                mode: u32::from(training),
                f: [inv_batch, 0.0, 0.0, 0.0],
                ..Default::default()
            };
            d.push(Dispatch {
                kernel: "softmax_xent",
                bind: gpu.bind(
                    "softmax_xent",
                    &[&gpu.uniform("softmax", sm.bytes()), &fwd.logits, &fwd.y, &fwd.losses, &fwd.dlogits],
                ),
                groups: groups_1d(rows),
            });
            if training {
                let ls = Dims { rows: b as u32, mode: row_mode, f: [inv_batch, 0.0, 0.0, 0.0], ..Default::default() };
                d.push(Dispatch {
                    kernel: "loss_sum",
                    bind: gpu.bind(
                        "loss_sum",
                        &[&gpu.uniform("loss_sum", ls.bytes()), &step_uniform, &fwd.losses, &loss_ring],
                    ),
                    groups: (1, 1),
                });
            }
            d
        };

        let mut train_dispatches = forward(&train, &epoch_rows, true);
        let (lr, mu) = (ar.st(cfg.learning_rate), ar.st(cfg.momentum));
        // Backward, last layer first.
        for (l, layer) in net.layers.iter().enumerate().rev() {
            let d_in = if l == n_layers - 1 { &train.dlogits } else { &deltas[l] };
            let a_in = if l == 0 { &train.x } else { train.dropped[l - 1].as_ref().unwrap_or(&train.h[l - 1]) };
            let gw = Dims {
                rows: b as u32,
                k: layer.fan_in as u32,
                n: layer.fan_out as u32,
                mode: row_mode,
                off_b: layer.w as u32,
                u: [spec::GPU_ATOMIC_CHUNK_ROWS, 0, 0, 0],
                ..Default::default()
            };
            let gb = Dims {
                rows: b as u32,
                n: layer.fan_out as u32,
                mode: row_mode,
                off_b: layer.b as u32,
                ..Default::default()
            };
            // The layer's gradients: with the update fused, after its
            // back-propagation (which reads the weights before the update).
            let mut grad_dispatches = Vec::new();
            if fuse_update {
                let gw = Dims { f: [lr, mu, ar.st(cfg.weight_decay), 0.0], ..gw };
                grad_dispatches.push(Dispatch {
                    kernel: "matmul_grad_sgd",
                    bind: gpu.bind(
                        "matmul_grad_sgd",
                        &[&gpu.uniform("grad_w_sgd", gw.bytes()), a_in, d_in, &params, &velocity],
                    ),
                    groups: gpu.matrix_groups(layer.fan_out, layer.fan_in),
                });
                let gb = Dims { f: [lr, mu, 0.0, 0.0], ..gb };
                grad_dispatches.push(Dispatch {
                    kernel: "bias_grad_sgd",
                    bind: gpu
                        .bind("bias_grad_sgd", &[&gpu.uniform("grad_b_sgd", gb.bytes()), d_in, &params, &velocity]),
                    groups: groups_1d(layer.fan_out),
                });
            } else {
                let (kernel, groups) = match reduction {
                    GpuReduction::Fixed => ("matmul_grad", gpu.matrix_groups(layer.fan_out, layer.fan_in)),
                    GpuReduction::Atomic => (
                        "matmul_grad_atomic",
                        groups_1d(
                            layer.fan_in * layer.fan_out * (b as u32).div_ceil(spec::GPU_ATOMIC_CHUNK_ROWS) as usize,
                        ),
                    ),
                };
                grad_dispatches.push(Dispatch {
                    kernel,
                    bind: gpu.bind(kernel, &[&gpu.uniform("grad_w", gw.bytes()), a_in, d_in, &grads]),
                    groups,
                });
                grad_dispatches.push(Dispatch {
                    kernel: "bias_grad",
                    bind: gpu.bind("bias_grad", &[&gpu.uniform("grad_b", gb.bytes()), d_in, &grads]),
                    groups: groups_1d(layer.fan_out),
                });
            }
            if !fuse_update || l == 0 {
                train_dispatches.append(&mut grad_dispatches);
            }
            if l == 0 {
                continue;
            }
            let bp = Dims {
                rows: b as u32,
                k: layer.fan_in as u32,
                n: layer.fan_out as u32,
                off_b: layer.w as u32,
                ..Default::default()
            };
            train_dispatches.push(Dispatch {
                kernel: "matmul_backprop",
                bind: gpu.bind("matmul_backprop", &[&gpu.uniform("backprop", bp.bytes()), d_in, &params, &back_g]),
                groups: gpu.matrix_groups(layer.fan_in, b),
            });
            let (has_mask, scale) = match dropout {
                Some((_, s)) => (1, s),
                None => (0, 1.0),
            };
            let ab = Dims {
                rows: b as u32,
                n: layer.fan_in as u32,
                mode: act_mode,
                f: [scale, 0.0, 0.0, 0.0],
                u: [has_mask, 0, 0, 0],
                ..Default::default()
            };
            let mask = train.masks[l - 1].as_ref().unwrap_or(&train.h[l - 1]);
            train_dispatches.push(Dispatch {
                kernel: "activation_backward",
                bind: gpu.bind(
                    "activation_backward",
                    &[&gpu.uniform("act_back", ab.bytes()), &back_g, &train.h[l - 1], mask, &deltas[l - 1]],
                ),
                groups: groups_1d(b * layer.fan_in),
            });
            train_dispatches.append(&mut grad_dispatches);
        }
        // Optimizer (unless fused above): weights with decay, biases without.
        for layer in net.layers.iter().filter(|_| !fuse_update) {
            for (off, n, mode, wd) in
                [(layer.w, layer.b - layer.w, 1u32, cfg.weight_decay), (layer.b, layer.fan_out, 0u32, 0.0)]
            {
                let sg =
                    Dims { n: n as u32, mode, off_a: off as u32, f: [lr, mu, ar.st(wd), 0.0], ..Default::default() };
                train_dispatches.push(Dispatch {
                    kernel: "sgd",
                    bind: gpu.bind("sgd", &[&gpu.uniform("sgd", sg.bytes()), &grads, &params, &velocity]),
                    groups: groups_1d(n),
                });
            }
        }
        // Weight hash and chain link.
        let n_leaves = n_params.div_ceil(spec::HASH_CHUNK_WORDS);
        let hl = Dims { n: n_params as u32, ..Default::default() };
        train_dispatches.push(Dispatch {
            kernel: "hash_leaves",
            bind: gpu.bind("hash_leaves", &[&gpu.uniform("hash_leaves", hl.bytes()), &params, &leaves]),
            groups: groups_1d(n_leaves),
        });
        let hr = Dims { n: n_params as u32, k: n_leaves as u32, u: [4 * k as u32, 0, 0, 0], ..Default::default() };
        train_dispatches.push(Dispatch {
            kernel: "hash_root",
            bind: gpu.bind("hash_root", &[&gpu.uniform("hash_root", hr.bytes()), &step_uniform, &leaves, &hash_ring]),
            groups: (1, 1),
        });

        let mut val_dispatches = forward(&val, &val_rows, false);
        let vm = Dims { rows: val.rows as u32, n: data.classes as u32, ..Default::default() };
        val_dispatches.push(Dispatch {
            kernel: "val_metrics",
            bind: gpu.bind(
                "val_metrics",
                &[&gpu.uniform("val_metrics", vm.bytes()), &step_uniform, &val.logits, &val.y, &val.losses, &val_ring],
            ),
            groups: (1, 1),
        });
        gpu.check()?;
        Ok(StepGraph {
            params,
            velocity,
            grads,
            step_uniform,
            epoch_rows,
            loss_ring,
            hash_ring,
            val_ring,
            train_dispatches,
            val_dispatches,
        })
    }
}
