//! Runs single kernels on given inputs and returns their outputs: the
//! per-kernel parity tests compare these with the CPU reference.

use super::device::Gpu;
use super::kernels::{bytes_f32, bytes_of, bytes_u32, groups_1d, Dims, KERNELS};
use crate::error::Result;
use crate::exact;
use crate::hash::Hash64;
use crate::spec::{self, GpuReduction};

/// Dropout masks (1 kept, 0 dropped) the GPU draws for `(step, layer)`
/// over `rows x width`, with the keep threshold given.
pub async fn dropout_masks(
    gpu: &Gpu,
    key: [u32; 8],
    step: u32,
    layer: u32,
    rows: usize,
    width: usize,
    threshold: u32,
) -> Result<Vec<u32>> {
    let n = rows * width;
    let dims = Dims {
        rows: rows as u32,
        n: width as u32,
        f: [2.0, 0.0, 0.0, 0.0],
        u: [layer, threshold, 0, 0],
        ..Default::default()
    };
    let out = kernel(
        gpu,
        "dropout",
        dims.words(),
        vec![
            Binding::Uniform(bytes_of(&[step, 0, 0, 0]).to_vec()),
            Binding::Uniform(bytes_of(&key).to_vec()),
            Binding::Storage(bytes_of(&vec![1.0f32; n]).to_vec()),
            Binding::Storage(vec![0; 4 * n]),
            Binding::Storage(vec![0; 4 * n]),
        ],
        (n, 1),
    )
    .await?;
    Ok(bytes_u32(&out[5]))
}

/// The weight hash the GPU computes over `params` (leaves then root).
pub async fn weights_hash(gpu: &Gpu, params: &[f32]) -> Result<Hash64> {
    let n = params.len();
    let k = spec::GPU_READBACK_STEPS;
    let p = gpu.buffer_with("params", bytes_of(params));
    let n_leaves = n.div_ceil(spec::HASH_CHUNK_WORDS);
    let leaves = gpu.buffer("leaves", 8 * n_leaves);
    let ring = gpu.buffer("ring", 4 * (4 * k + 2));
    let step_u = gpu.uniform("step", bytes_of(&[0u32; 4]));
    let hl = Dims { n: n as u32, ..Default::default() };
    let b1 = gpu.bind("hash_leaves", &[&gpu.uniform("hl", hl.bytes()), &p, &leaves]);
    dispatch(gpu, "hash_leaves", &b1, groups_1d(n_leaves));
    let hr = Dims { n: n as u32, k: n_leaves as u32, u: [4 * k as u32, 0, 0, 0], ..Default::default() };
    let b2 = gpu.bind("hash_root", &[&gpu.uniform("hr", hr.bytes()), &step_u, &leaves, &ring]);
    dispatch(gpu, "hash_root", &b2, (1, 1));
    let parts = gpu.read(&[(&ring, 16)]).await?;
    let w = bytes_u32(&parts[0]);
    Ok(Hash64 { lo: w[2], hi: w[3] })
}

/// The forward product `a [rows x k] @ w [k x n]` on the GPU.
pub async fn matmul(gpu: &Gpu, a: &[f32], w: &[f32], rows: usize, k: usize, n: usize) -> Result<Vec<f32>> {
    let dims = Dims { rows: rows as u32, k: k as u32, n: n as u32, ..Default::default() };
    let bindings = vec![
        Binding::Storage(bytes_of(a).to_vec()),
        Binding::Storage(bytes_of(w).to_vec()),
        Binding::Storage(vec![0; 4 * rows * n]),
    ];
    Ok(bytes_f32(&kernel(gpu, "matmul", dims.words(), bindings, (n, rows)).await?[3]))
}

/// A layer's forward pass `act(a @ w + b)` as a training step runs it:
/// the blocked matmul with its fused epilogue, or with the reference
/// kernels the matmul then `bias_activation.wgsl`. `params` holds `w`
/// (`k x n`) then `b` (`n`); `mode` is the activation (`spec::ACT_*`).
pub async fn matmul_bias_act(
    gpu: &Gpu,
    a: &[f32],
    params: &[f32],
    rows: usize,
    k: usize,
    n: usize,
    mode: u32,
) -> Result<Vec<f32>> {
    let fused = !gpu.reference_matrix_kernels();
    let dims = Dims {
        rows: rows as u32,
        k: k as u32,
        n: n as u32,
        mode,
        off_c: (k * n) as u32,
        u: [u32::from(fused), 0, 0, 0],
        ..Default::default()
    };
    let bindings = vec![
        Binding::Storage(bytes_of(a).to_vec()),
        Binding::Storage(bytes_of(params).to_vec()),
        Binding::Storage(vec![0; 4 * rows * n]),
    ];
    let z = kernel(gpu, "matmul", dims.words(), bindings, (n, rows)).await?.swap_remove(3);
    if fused {
        return Ok(bytes_f32(&z));
    }
    let ba = Dims { rows: rows as u32, n: n as u32, mode, off_b: (k * n) as u32, ..Default::default() };
    let bindings = vec![Binding::Storage(bytes_of(params).to_vec()), Binding::Storage(z)];
    Ok(bytes_f32(&kernel(gpu, "bias_activation", ba.words(), bindings, (rows * n, 1)).await?[2]))
}

#[allow(clippy::too_many_arguments)]
/// The weight gradient `a^T d` on the GPU, fixed order or atomics; batch
/// rows summed descending when `descending` (engine version 2).
pub async fn matmul_grad(
    gpu: &Gpu,
    a: &[f32],
    d: &[f32],
    rows: usize,
    k: usize,
    n: usize,
    reduction: GpuReduction,
    descending: bool,
) -> Result<Vec<f32>> {
    let dims = Dims {
        rows: rows as u32,
        k: k as u32,
        n: n as u32,
        mode: u32::from(descending),
        u: [spec::GPU_ATOMIC_CHUNK_ROWS, 0, 0, 0],
        ..Default::default()
    };
    let (name, threads) = match reduction {
        GpuReduction::Fixed => ("matmul_grad", (n, k)),
        GpuReduction::Atomic => {
            ("matmul_grad_atomic", (k * n * (rows as u32).div_ceil(spec::GPU_ATOMIC_CHUNK_ROWS) as usize, 1))
        }
    };
    let bindings = vec![
        Binding::Storage(bytes_of(a).to_vec()),
        Binding::Storage(bytes_of(d).to_vec()),
        Binding::Storage(vec![0; 4 * k * n]),
    ];
    Ok(bytes_f32(&kernel(gpu, name, dims.words(), bindings, threads).await?[3]))
}

/// The back-propagated error `d @ w^T` on the GPU.
pub async fn backprop(gpu: &Gpu, d: &[f32], w: &[f32], rows: usize, k: usize, n: usize) -> Result<Vec<f32>> {
    let dims = Dims { rows: rows as u32, k: k as u32, n: n as u32, ..Default::default() };
    let bindings = vec![
        Binding::Storage(bytes_of(d).to_vec()),
        Binding::Storage(bytes_of(w).to_vec()),
        Binding::Storage(vec![0; 4 * rows * k]),
    ];
    Ok(bytes_f32(&kernel(gpu, "matmul_backprop", dims.words(), bindings, (k, rows)).await?[3]))
}

/// Softmax cross-entropy over `labels.len()` rows of `classes` logits and
/// the batch loss, as a training step computes them: fused
/// (`softmax_xent_loss.wgsl`) or not (`softmax_xent.wgsl` then
/// `loss_sum.wgsl`). Returns the per-row losses, the gradient and the batch
/// loss; rows summed descending when `descending` (engine version 2).
pub async fn softmax_loss(
    gpu: &Gpu,
    logits: &[f32],
    labels: &[u32],
    classes: usize,
    inv_batch: f32,
    descending: bool,
    fused: bool,
) -> Result<(Vec<f32>, Vec<f32>, f32)> {
    let rows = labels.len();
    let step = Binding::Uniform(bytes_of(&[0u32; 4]).to_vec());
    let order = u32::from(descending);
    let inputs = || {
        vec![
            Binding::Storage(bytes_of(logits).to_vec()),
            Binding::Storage(bytes_of(labels).to_vec()),
            Binding::Storage(vec![0; 4 * rows]),
            Binding::Storage(vec![0; 4 * rows * classes]),
        ]
    };
    let f = [inv_batch, 0.0, 0.0, 0.0];
    if fused {
        let dims = Dims { rows: rows as u32, n: classes as u32, f, u: [order, 0, 0, 0], ..Default::default() };
        let mut bindings = vec![step];
        bindings.extend(inputs());
        bindings.push(Binding::Storage(vec![0; 16]));
        let out = kernel(gpu, "softmax_xent_loss", dims.words(), bindings, (1, 1)).await?;
        return Ok((bytes_f32(&out[4]), bytes_f32(&out[5]), bytes_f32(&out[6])[0]));
    }
    let sm = Dims { rows: rows as u32, n: classes as u32, mode: 1, f, ..Default::default() };
    let out = kernel(gpu, "softmax_xent", sm.words(), inputs(), (rows, 1)).await?;
    let ls = Dims { rows: rows as u32, mode: order, f, ..Default::default() };
    let bindings = vec![step, Binding::Storage(out[3].clone()), Binding::Storage(vec![0; 16])];
    let sum = kernel(gpu, "loss_sum", ls.words(), bindings, (1, 1)).await?;
    Ok((bytes_f32(&out[3]), bytes_f32(&out[4]), bytes_f32(&sum[3])[0]))
}

/// One layer's gradients and SGD update as a training step computes them:
/// `params` and `velocity` hold the weights `w` (`k x n`) then the biases
/// `b` (`n`); `a` is the layer's input (`rows x k`), `d` its error (`rows x
/// n`); `hyper` is (learning rate, momentum, weight decay). Fused
/// (`matmul_grad_sgd.wgsl`, `bias_grad_sgd.wgsl`) or not (`matmul_grad`,
/// `bias_grad.wgsl`, then `sgd.wgsl` on the weights with decay and on the
/// biases without). Returns the new weights and velocities.
#[allow(clippy::too_many_arguments)]
pub async fn grad_update(
    gpu: &Gpu,
    a: &[f32],
    d: &[f32],
    params: &[f32],
    velocity: &[f32],
    (rows, k, n): (usize, usize, usize),
    hyper: (f32, f32, f32),
    descending: bool,
    fused: bool,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let (lr, mu, wd) = hyper;
    let mode = u32::from(descending);
    let gw = Dims { rows: rows as u32, k: k as u32, n: n as u32, mode, f: [lr, mu, wd, 0.0], ..Default::default() };
    let gb = Dims {
        rows: rows as u32,
        n: n as u32,
        mode,
        off_b: (k * n) as u32,
        f: [lr, mu, 0.0, 0.0],
        ..Default::default()
    };
    let storage = |v: &[f32]| Binding::Storage(bytes_of(v).to_vec());
    if fused {
        let bindings = vec![storage(a), storage(d), storage(params), storage(velocity)];
        let out = kernel(gpu, "matmul_grad_sgd", gw.words(), bindings, (n, k)).await?;
        let bindings = vec![storage(d), Binding::Storage(out[3].clone()), Binding::Storage(out[4].clone())];
        let out = kernel(gpu, "bias_grad_sgd", gb.words(), bindings, (n, 1)).await?;
        return Ok((bytes_f32(&out[2]), bytes_f32(&out[3])));
    }
    let grads = vec![0u8; 4 * (k * n + n)];
    let out =
        kernel(gpu, "matmul_grad", gw.words(), vec![storage(a), storage(d), Binding::Storage(grads)], (n, k)).await?;
    let out = kernel(gpu, "bias_grad", gb.words(), vec![storage(d), Binding::Storage(out[3].clone())], (n, 1)).await?;
    let grads = out[2].clone();
    let (mut p, mut v) = (bytes_of(params).to_vec(), bytes_of(velocity).to_vec());
    for (off, len, mode, wd) in [(0, k * n, 1u32, wd), (k * n, n, 0u32, 0.0)] {
        let sg = Dims { n: len as u32, mode, off_a: off as u32, f: [lr, mu, wd, 0.0], ..Default::default() };
        let bindings = vec![Binding::Storage(grads.clone()), Binding::Storage(p), Binding::Storage(v)];
        let mut out = kernel(gpu, "sgd", sg.words(), bindings, (len, 1)).await?;
        v = out.swap_remove(3);
        p = out.swap_remove(2);
    }
    Ok((bytes_f32(&p), bytes_f32(&v)))
}

/// One binding of [`kernel`]: a uniform or a storage buffer, with its bytes.
pub enum Binding {
    Uniform(Vec<u8>),
    Storage(Vec<u8>),
}

/// Runs any kernel once: binding 0 is its `Dims` (given as 16 words), the
/// others in `bindings` order; `threads` is (x, y) in the kernel's own
/// units (elements for the 1-D kernels, columns and rows for the tiled
/// ones). Returns the bytes of every binding afterwards (uniforms: empty).
pub async fn kernel(
    gpu: &Gpu,
    name: &str,
    dims: [u32; 16],
    bindings: Vec<Binding>,
    threads: (usize, usize),
) -> Result<Vec<Vec<u8>>> {
    let mut buffers = vec![gpu.uniform("dims", bytes_of(&dims))];
    let mut sizes = vec![0usize];
    for b in &bindings {
        match b {
            Binding::Uniform(bytes) => {
                buffers.push(gpu.uniform("u", bytes));
                sizes.push(0);
            }
            Binding::Storage(bytes) => {
                buffers.push(gpu.buffer_with("s", bytes));
                sizes.push(bytes.len());
            }
        }
    }
    let refs: Vec<&wgpu::Buffer> = buffers.iter().collect();
    let bind = gpu.bind(name, &refs);
    let groups = match name {
        "matmul" | "matmul_grad" | "matmul_backprop" | "matmul_grad_sgd" => gpu.matrix_groups(threads.0, threads.1),
        "dropout" => groups_1d(threads.0.div_ceil(16)),
        _ => groups_1d(threads.0),
    };
    let kernel_name = KERNELS.iter().find(|(k, _)| *k == name).map(|(k, _)| *k).expect("a known kernel");
    dispatch(gpu, kernel_name, &bind, groups);
    let storage: Vec<(&wgpu::Buffer, usize)> =
        buffers.iter().zip(&sizes).filter(|(_, n)| **n > 0).map(|(b, n)| (b, *n)).collect();
    let mut read = gpu.read(&storage).await?.into_iter();
    Ok(sizes.iter().map(|n| if *n > 0 { read.next().unwrap_or_default() } else { Vec::new() }).collect())
}

fn dispatch(gpu: &Gpu, kernel: &str, bind: &wgpu::BindGroup, groups: (u32, u32)) {
    let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(kernel) });
    {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
        pass.set_pipeline(&gpu.pipelines[kernel]);
        pass.set_bind_group(0, bind, &[]);
        pass.dispatch_workgroups(groups.0, groups.1, 1);
    }
    gpu.queue.submit([enc.finish()]);
}

/// Evaluates `func` on the GPU, element by element, through
/// `shaders/exact_eval.wgsl` (`b` may be empty for one-argument functions).
pub async fn exact_eval(gpu: &Gpu, func: exact::Func, a: &[f32], b: &[f32]) -> Result<Vec<f32>> {
    if a.is_empty() {
        return Ok(Vec::new());
    }
    let mut dims = [0u32; 16];
    dims[0] = a.len() as u32;
    dims[3] = func as u32;
    // dims[15] (`u3`) stays 0: the fence's run-time zero.
    let bits = |v: &[f32]| v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect::<Vec<u8>>();
    let second = if b.is_empty() { vec![0u8; 4 * a.len()] } else { bits(b) };
    assert_eq!(second.len(), 4 * a.len(), "gpu_eval: a and b differ in length");
    let out = kernel(
        gpu,
        "exact_eval",
        dims,
        vec![Binding::Storage(bits(a)), Binding::Storage(second), Binding::Storage(vec![0; 4 * a.len()])],
        (a.len(), 1),
    )
    .await?;
    Ok(exact::bytes_words(&out[3]).into_iter().map(f32::from_bits).collect())
}

/// Runs the probe kernel and returns the device's answers to [`PROBE`].
pub async fn exact_answers(gpu: &Gpu) -> Result<Vec<u32>> {
    let mut dims = [0u32; 16];
    dims[0] = exact::PROBE.len() as u32;
    // dims[15] (`u3`) is the fence's run-time zero.
    let words = exact::probe_words();
    let out = kernel(
        gpu,
        "exact_probe",
        dims,
        vec![Binding::Storage(exact::words_bytes(&words)), Binding::Storage(vec![0; 4 * exact::PROBE.len()])],
        (exact::PROBE.len(), 1),
    )
    .await?;
    Ok(exact::bytes_words(&out[2]))
}

/// The whole start-up probe of the `exact` level: runs the kernel, then
/// [`exact::judge`]. A device
/// that cannot run it is refused under the check `device`.
pub async fn exact_probe(gpu: &Gpu) -> std::result::Result<(), exact::ProbeFailure> {
    let got = exact_answers(gpu).await.map_err(|e| exact::ProbeFailure {
        check: "device".into(),
        detail: format!("the probe kernel did not run: {e}"),
    })?;
    exact::judge(&exact::cpu_answers(), &got)
}
