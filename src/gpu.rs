//! The GPU backend: every `wgpu` call of the crate lives here.
//!
//! One straight path: Instance -> Adapter -> Device -> pipelines (one per
//! kernel in `shaders/`, with a prelude of constants from [`crate::spec`]) ->
//! per-run buffers and bind groups made once -> per step one submit of the
//! whole step (no CPU round trip) -> every [`spec::GPU_READBACK_STEPS`] steps
//! one asynchronous read-back of the losses, hash-chain links, validation
//! metrics and the weights.
//!
//! The record of the run (hash chain, losses, validation curve, the last
//! weights read back) lives in a CPU [`Trainer`], which is also the fallback:
//! if the device is lost, training goes on there from the last read-back
//! state and no step is lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::hash::Hash64;
use crate::manifest::Adapter;
use crate::spec::{self, GpuReduction};
use crate::train::{Trainer, ValPoint};

/// Why the GPU could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuError(pub String);

impl std::fmt::Display for GpuError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Driver and validation messages span lines; errors here are one line.
        let one_line: Vec<&str> = self.0.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        f.write_str(&one_line.join("; "))
    }
}

impl std::error::Error for GpuError {}

/// Every kernel: (name, source). One kernel per file.
const KERNELS: [(&str, &str); 17] = [
    ("gather", include_str!("../shaders/gather.wgsl")),
    ("matmul", include_str!("../shaders/matmul.wgsl")),
    ("bias_activation", include_str!("../shaders/bias_activation.wgsl")),
    ("dropout", include_str!("../shaders/dropout.wgsl")),
    ("softmax_xent", include_str!("../shaders/softmax_xent.wgsl")),
    ("loss_sum", include_str!("../shaders/loss_sum.wgsl")),
    ("val_metrics", include_str!("../shaders/val_metrics.wgsl")),
    ("matmul_grad", include_str!("../shaders/matmul_grad.wgsl")),
    ("matmul_grad_atomic", include_str!("../shaders/matmul_grad_atomic.wgsl")),
    ("bias_grad", include_str!("../shaders/bias_grad.wgsl")),
    ("matmul_backprop", include_str!("../shaders/matmul_backprop.wgsl")),
    ("activation_backward", include_str!("../shaders/activation_backward.wgsl")),
    ("sgd", include_str!("../shaders/sgd.wgsl")),
    ("hash_leaves", include_str!("../shaders/hash_leaves.wgsl")),
    ("hash_root", include_str!("../shaders/hash_root.wgsl")),
    ("exact_probe", concat!(include_str!("../shaders/lib_exact.wgsl"), include_str!("../shaders/exact_probe.wgsl"))),
    ("exact_eval", concat!(include_str!("../shaders/lib_exact.wgsl"), include_str!("../shaders/exact_eval.wgsl"))),
];

const LIB_MURMUR: &str = include_str!("../shaders/lib_murmur.wgsl");

/// The prelude prepended to every kernel: the spec's constants and the two
/// shared structs, so every number lives in `spec.rs`.
pub fn prelude() -> String {
    format!(
        "const WG: u32 = {wg}u;\nconst TILE: u32 = {tile}u;\nconst MAX_GROUPS_X: u32 = {mgx}u;\n\
         const HASH_CHUNK_WORDS: u32 = {chunk}u;\nconst HASH_SEED_LO: u32 = {lo}u;\nconst HASH_SEED_HI: u32 = {hi}u;\n\
         const CHACHA_DOUBLE_ROUNDS: u32 = {dr}u;\n\
         struct Dims {{ rows: u32, k: u32, n: u32, mode: u32, off_a: u32, off_b: u32, off_c: u32, off_d: u32, \
         f0: f32, f1: f32, f2: f32, f3: f32, u0: u32, u1: u32, u2: u32, u3: u32 }}\n\
         struct Step {{ t: u32, batch_offset: u32, slot: u32, val_slot: u32 }}\n{LIB_MURMUR}\n",
        wg = spec::GPU_WG,
        tile = spec::GPU_TILE,
        mgx = spec::GPU_MAX_GROUPS_X,
        chunk = spec::HASH_CHUNK_WORDS,
        lo = spec::HASH_LANE_SEEDS[0],
        hi = spec::HASH_LANE_SEEDS[1],
        dr = spec::CHACHA_ROUNDS / 2,
    )
}

/// The uniform of one dispatch site (layout: `struct Dims` in the prelude).
#[derive(Clone, Copy, Default)]
struct Dims {
    rows: u32,
    k: u32,
    n: u32,
    mode: u32,
    off_a: u32,
    off_b: u32,
    off_c: u32,
    off_d: u32,
    f: [f32; 4],
    u: [u32; 4],
}

impl Dims {
    fn bytes(&self) -> Vec<u8> {
        words_bytes(&self.words())
    }

    fn words(&self) -> [u32; 16] {
        [
            self.rows,
            self.k,
            self.n,
            self.mode,
            self.off_a,
            self.off_b,
            self.off_c,
            self.off_d,
            self.f[0].to_bits(),
            self.f[1].to_bits(),
            self.f[2].to_bits(),
            self.f[3].to_bits(),
            self.u[0],
            self.u[1],
            self.u[2],
            self.u[3],
        ]
    }
}

fn words_bytes(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn bytes_u32(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// An opened GPU: device, queue, the adapter's description and every kernel's
/// pipeline. Errors the device reports (validation, loss) are caught and
/// surface as [`GpuError`]s instead of panics.
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pub adapter: Adapter,
    pipelines: HashMap<&'static str, wgpu::ComputePipeline>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Gpu {
    /// Finds an adapter and opens a device. Natively Vulkan, Metal or DX12
    /// (lavapipe and SwiftShader count); in the browser WebGPU.
    pub async fn open() -> Result<Gpu, GpuError> {
        // Without navigator.gpu (Node.js, old browsers) wgpu would panic
        // rather than report: say so first.
        #[cfg(target_arch = "wasm32")]
        if !crate::platform::has_webgpu() {
            return Err(GpuError(no_adapter_reason("")));
        }
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = if cfg!(target_arch = "wasm32") {
            wgpu::Backends::BROWSER_WEBGPU
        } else {
            wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12
        };
        let instance = wgpu::Instance::new(desc);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError(no_adapter_reason(&e.to_string())))?;
        let info = adapter.get_info();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("reprolab"),
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError(format!("the GPU adapter {} could not create a device: {e}", info.name)))?;
        let failure: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let f = failure.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = f.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| format!("GPU error: {e}"));
        }));
        let f = failure.clone();
        device.set_device_lost_callback(move |reason, message| {
            let mut slot = f.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| format!("GPU device lost ({reason:?}): {message}"));
        });
        let prelude = prelude();
        let mut pipelines = HashMap::new();
        for (name, src) in KERNELS {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(format!("{prelude}{src}").into()),
            });
            let p = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
            pipelines.insert(name, p);
        }
        #[allow(unused_mut)]
        let mut adapter = Adapter {
            vendor: vendor_name(info.vendor, &info.name),
            architecture: format!("{:?}", info.device_type).to_lowercase(),
            description: if info.driver.is_empty() {
                info.name.clone()
            } else {
                format!("{} ({} {})", info.name, info.driver, info.driver_info)
            },
            graphics_backend: backend_name(info.backend).to_string(),
        };
        #[cfg(target_arch = "wasm32")]
        if let Some((vendor, architecture, description)) = crate::platform::webgpu_adapter_info().await {
            let withheld = |s: String| if s.is_empty() { "(not reported by the browser)".to_string() } else { s };
            if !description.is_empty() {
                adapter.description = description;
            } else if adapter.description.is_empty() {
                // Browsers often withhold the description: name what they do say.
                adapter.description = format!("{vendor} {architecture}").trim().to_string();
            }
            adapter.description = withheld(std::mem::take(&mut adapter.description));
            adapter.vendor = withheld(vendor);
            adapter.architecture = withheld(architecture);
        }
        let gpu = Gpu { device, queue, adapter, pipelines, failure };
        gpu.check()?;
        Ok(gpu)
    }

    /// The first error the device reported, if any.
    pub fn check(&self) -> Result<(), GpuError> {
        match self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            Some(m) => Err(GpuError(m)),
            None => Ok(()),
        }
    }

    /// Destroys the device, as a driver reset would (for tests of the fallback).
    pub fn lose_device(&self) {
        self.device.destroy();
    }

    fn buffer(&self, label: &str, bytes: usize) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).next_multiple_of(4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    fn buffer_with(&self, label: &str, bytes: &[u8]) -> wgpu::Buffer {
        let b = self.buffer(label, bytes.len());
        if !bytes.is_empty() {
            self.queue.write_buffer(&b, 0, bytes);
        }
        b
    }

    fn uniform(&self, label: &str, bytes: &[u8]) -> wgpu::Buffer {
        let b = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.len().next_multiple_of(16) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&b, 0, bytes);
        b
    }

    fn bind(&self, kernel: &str, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let pipeline = &self.pipelines[kernel];
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        })
    }

    /// Reads buffers back: copies them into one staging buffer, maps it and
    /// waits for the map without blocking the browser's thread.
    async fn read(&self, parts: &[(&wgpu::Buffer, usize)]) -> Result<Vec<Vec<u8>>, GpuError> {
        let total: usize = parts.iter().map(|(_, n)| n.next_multiple_of(4)).sum();
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: total.max(4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        let mut at = 0u64;
        for (buf, n) in parts {
            let n = n.next_multiple_of(4) as u64;
            if n > 0 {
                enc.copy_buffer_to_buffer(buf, 0, &staging, at, n);
            }
            at += n;
        }
        self.queue.submit([enc.finish()]);
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError(format!("waiting for the GPU failed: {e}")))?;
        let mapped = rx.await.map_err(|_| GpuError("the GPU read-back was dropped (device lost?)".into()))?;
        mapped.map_err(|e| GpuError(format!("the GPU read-back failed: {e}")))?;
        self.check()?;
        let view = staging.get_mapped_range(..).map_err(|e| GpuError(format!("the GPU read-back failed: {e}")))?;
        let mut out = Vec::new();
        let mut at = 0usize;
        for (_, n) in parts {
            out.push(view[at..at + n].to_vec());
            at += n.next_multiple_of(4);
        }
        drop(view);
        staging.unmap();
        Ok(out)
    }
}

/// Why there is no adapter, in words a user can act on.
fn no_adapter_reason(detail: &str) -> String {
    if cfg!(target_arch = "wasm32") {
        if !crate::platform::has_webgpu() {
            return "this JavaScript environment has no WebGPU (navigator.gpu is missing: Node.js, an old browser, \
                    WebGPU switched off, or a page that is not a secure context)"
                .into();
        }
        return "the browser has WebGPU but offered no adapter (no usable GPU, or WebGPU blocked for it)".into();
    }
    format!("no GPU adapter (Vulkan, Metal or DX12): {detail}")
}

fn vendor_name(id: u32, name: &str) -> String {
    match id {
        0x10de => "nvidia".into(),
        0x1002 => "amd".into(),
        0x8086 => "intel".into(),
        0x106b => "apple".into(),
        0x13b5 => "arm".into(),
        0x5143 => "qualcomm".into(),
        0x10005 => "mesa".into(),
        0x1ae0 => "google".into(),
        0 => name.split_whitespace().next().unwrap_or("unknown").to_lowercase(),
        other => format!("0x{other:04x}"),
    }
}

fn backend_name(b: wgpu::Backend) -> &'static str {
    match b {
        wgpu::Backend::Vulkan => "Vulkan",
        wgpu::Backend::Metal => "Metal",
        wgpu::Backend::Dx12 => "DX12",
        wgpu::Backend::BrowserWebGpu => "WebGPU",
        wgpu::Backend::Gl => "GL",
        _ => "other",
    }
}

/// One recorded dispatch of a step.
struct Dispatch {
    kernel: &'static str,
    bind: wgpu::BindGroup,
    groups: (u32, u32),
}

fn groups_1d(threads: usize) -> (u32, u32) {
    let g = (threads as u32).div_ceil(spec::GPU_WG).max(1);
    let x = g.min(spec::GPU_MAX_GROUPS_X);
    (x, g.div_ceil(x))
}

fn groups_2d(cols: usize, rows: usize) -> (u32, u32) {
    ((cols as u32).div_ceil(spec::GPU_TILE).max(1), (rows as u32).div_ceil(spec::GPU_TILE).max(1))
}

/// Buffers of one forward pass over `rows` examples.
struct ForwardBuffers {
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

/// A training run on the GPU, recorded in a CPU [`Trainer`].
pub struct GpuTrainer {
    gpu: Gpu,
    /// The record and the fallback: holds the state of the last read-back.
    pub cpu: Trainer,
    pub reduction: GpuReduction,
    params: wgpu::Buffer,
    velocity: wgpu::Buffer,
    grads: wgpu::Buffer,
    step_uniform: wgpu::Buffer,
    epoch_rows: wgpu::Buffer,
    loss_ring: wgpu::Buffer,
    hash_ring: wgpu::Buffer,
    val_ring: wgpu::Buffer,
    train_dispatches: Vec<Dispatch>,
    val_dispatches: Vec<Dispatch>,
    uploaded_epoch: Option<usize>,
    lose_device_at: Option<usize>,
}

impl GpuTrainer {
    /// Uploads the data set, the initial weights and the run's constants, and
    /// records every dispatch of a step once.
    pub fn new(gpu: Gpu, mut cpu: Trainer, reduction: GpuReduction, reason: &str) -> Result<GpuTrainer, GpuError> {
        if cpu.free.contains(&crate::sources::Source::CpuThreads) {
            return Err(GpuError(
                "cpu_threads is free, but the GPU has no CPU threads to combine: train on the CPU to vary it".into(),
            ));
        }
        // The largest buffer must fit one storage binding of this device.
        let widest = cpu.net.layers.iter().map(|l| l.fan_in.max(l.fan_out)).max().unwrap_or(1);
        let largest = [
            4 * cpu.data.features.len(),
            4 * cpu.net.n_params,
            4 * cpu.val_idx.len() * widest,
            4 * cpu.settings.config.batch_size * widest,
        ]
        .into_iter()
        .max()
        .unwrap_or(0) as u64;
        let limit = gpu.device.limits().max_storage_buffer_binding_size;
        if largest > limit {
            return Err(GpuError(format!(
                "this run needs a {largest}-byte GPU buffer but the adapter allows {limit} bytes per buffer"
            )));
        }
        cpu.adapter = Some(gpu.adapter.clone());
        cpu.gpu_reduction = reduction;
        // The record's free list says whether the reduction order was free.
        let source = crate::sources::Source::GpuReduction;
        cpu.free.retain(|s| *s != source);
        if reduction == GpuReduction::Atomic {
            cpu.free.push(source);
            cpu.free.sort();
        }
        cpu.switch_backend("gpu", reason);
        let cfg = cpu.settings.config.clone();
        let net = cpu.net.clone();
        let data = &cpu.data;
        let b = cfg.batch_size;
        let n_params = net.n_params;
        let k = spec::GPU_READBACK_STEPS;

        let data_x = gpu.buffer_with("data_x", &f32_bytes(&data.features));
        let labels: Vec<u32> = data.labels.iter().map(|&l| u32::from(l)).collect();
        let data_y = gpu.buffer_with("data_y", &words_bytes(&labels));
        let val_rows = gpu.buffer_with("val_rows", &words_bytes(&cpu.val_idx));
        let epoch_rows = gpu.buffer("epoch_rows", 4 * cpu.train_idx.len());
        let params = gpu.buffer_with("params", &f32_bytes(&cpu.params));
        let velocity = gpu.buffer_with("velocity", &f32_bytes(&cpu.velocity));
        let grads = gpu.buffer("grads", 4 * n_params);
        let step_uniform = gpu.uniform("step", &[0u8; 16]);
        let loss_ring = gpu.buffer("loss_ring", 4 * k);
        // 4 words per slot (link, weights hash), then the chain head.
        let head = cpu.chain_head;
        let mut ring_init = vec![0u32; 4 * k + 2];
        ring_init[4 * k] = head.lo;
        ring_init[4 * k + 1] = head.hi;
        let hash_ring = gpu.buffer_with("hash_ring", &words_bytes(&ring_init));
        let val_ring = gpu.buffer("val_ring", 8 * k);
        let leaves = gpu.buffer("leaves", 8 * n_params.div_ceil(spec::HASH_CHUNK_WORDS));
        let key = crate::chacha::key_words(&crate::rng::stream_key(crate::rng::Stream::Dropout, cpu.seeds.dropout));
        let key_uniform = gpu.uniform("dropout_key", &words_bytes(&key));

        let dropout = cpu.dropout_params();
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
        let val = make_fwd(cpu.val_idx.len(), false);
        let max_width = net.layers.iter().map(|l| l.fan_in.max(l.fan_out)).max().unwrap_or(1);
        let back_g = gpu.buffer("back_g", 4 * b * max_width);
        let deltas: Vec<wgpu::Buffer> = cfg.hidden.iter().map(|w| gpu.buffer("delta", 4 * b * w)).collect();

        let act_mode = match cfg.activation {
            crate::config::Activation::Relu => 1,
            crate::config::Activation::Tanh => 2,
        };
        let inv_batch = 1.0 / b as f32;
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
                    &[&gpu.uniform("gather", &dims.bytes()), &step_uniform, &data_x, &data_y, rows_buf, &fwd.x, &fwd.y],
                ),
                groups: groups_1d(rows * data.dim),
            });
            for (l, layer) in net.layers.iter().enumerate() {
                let input = if l == 0 { &fwd.x } else { fwd.dropped[l - 1].as_ref().unwrap_or(&fwd.h[l - 1]) };
                let out = if l == n_layers - 1 { &fwd.logits } else { &fwd.h[l] };
                let mm = Dims {
                    rows: rows as u32,
                    k: layer.fan_in as u32,
                    n: layer.fan_out as u32,
                    off_b: layer.w as u32,
                    ..Default::default()
                };
                d.push(Dispatch {
                    kernel: "matmul",
                    bind: gpu.bind("matmul", &[&gpu.uniform("matmul", &mm.bytes()), input, &params, out]),
                    groups: groups_2d(layer.fan_out, rows),
                });
                let ba = Dims {
                    rows: rows as u32,
                    n: layer.fan_out as u32,
                    mode: if l == n_layers - 1 { 0 } else { act_mode },
                    off_b: layer.b as u32,
                    ..Default::default()
                };
                d.push(Dispatch {
                    kernel: "bias_activation",
                    bind: gpu.bind("bias_activation", &[&gpu.uniform("bias_act", &ba.bytes()), &params, out]),
                    groups: groups_1d(rows * layer.fan_out),
                });
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
                                &gpu.uniform("dropout", &dd.bytes()),
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
                    &[&gpu.uniform("softmax", &sm.bytes()), &fwd.logits, &fwd.y, &fwd.losses, &fwd.dlogits],
                ),
                groups: groups_1d(rows),
            });
            d
        };

        let mut train_dispatches = forward(&train, &epoch_rows, true);
        let ls = Dims { rows: b as u32, mode: row_mode, f: [inv_batch, 0.0, 0.0, 0.0], ..Default::default() };
        train_dispatches.push(Dispatch {
            kernel: "loss_sum",
            bind: gpu
                .bind("loss_sum", &[&gpu.uniform("loss_sum", &ls.bytes()), &step_uniform, &train.losses, &loss_ring]),
            groups: (1, 1),
        });
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
            let (kernel, groups) = match reduction {
                GpuReduction::Fixed => ("matmul_grad", groups_2d(layer.fan_out, layer.fan_in)),
                GpuReduction::Atomic => (
                    "matmul_grad_atomic",
                    groups_1d(layer.fan_in * layer.fan_out * (b as u32).div_ceil(spec::GPU_ATOMIC_CHUNK_ROWS) as usize),
                ),
            };
            train_dispatches.push(Dispatch {
                kernel,
                bind: gpu.bind(kernel, &[&gpu.uniform("grad_w", &gw.bytes()), a_in, d_in, &grads]),
                groups,
            });
            let gb = Dims {
                rows: b as u32,
                n: layer.fan_out as u32,
                mode: row_mode,
                off_b: layer.b as u32,
                ..Default::default()
            };
            train_dispatches.push(Dispatch {
                kernel: "bias_grad",
                bind: gpu.bind("bias_grad", &[&gpu.uniform("grad_b", &gb.bytes()), d_in, &grads]),
                groups: groups_1d(layer.fan_out),
            });
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
                bind: gpu.bind("matmul_backprop", &[&gpu.uniform("backprop", &bp.bytes()), d_in, &params, &back_g]),
                groups: groups_2d(layer.fan_in, b),
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
                    &[&gpu.uniform("act_back", &ab.bytes()), &back_g, &train.h[l - 1], mask, &deltas[l - 1]],
                ),
                groups: groups_1d(b * layer.fan_in),
            });
        }
        // Optimizer: weights with decay, biases without.
        for layer in &net.layers {
            for (off, n, mode, wd) in
                [(layer.w, layer.b - layer.w, 1u32, cfg.weight_decay), (layer.b, layer.fan_out, 0u32, 0.0)]
            {
                let sg = Dims {
                    n: n as u32,
                    mode,
                    off_a: off as u32,
                    f: [cfg.learning_rate, cfg.momentum, wd, 0.0],
                    ..Default::default()
                };
                train_dispatches.push(Dispatch {
                    kernel: "sgd",
                    bind: gpu.bind("sgd", &[&gpu.uniform("sgd", &sg.bytes()), &grads, &params, &velocity]),
                    groups: groups_1d(n),
                });
            }
        }
        // Weight hash and chain link.
        let n_leaves = n_params.div_ceil(spec::HASH_CHUNK_WORDS);
        let hl = Dims { n: n_params as u32, ..Default::default() };
        train_dispatches.push(Dispatch {
            kernel: "hash_leaves",
            bind: gpu.bind("hash_leaves", &[&gpu.uniform("hash_leaves", &hl.bytes()), &params, &leaves]),
            groups: groups_1d(n_leaves),
        });
        let hr = Dims { n: n_params as u32, k: n_leaves as u32, u: [4 * k as u32, 0, 0, 0], ..Default::default() };
        train_dispatches.push(Dispatch {
            kernel: "hash_root",
            bind: gpu.bind("hash_root", &[&gpu.uniform("hash_root", &hr.bytes()), &step_uniform, &leaves, &hash_ring]),
            groups: (1, 1),
        });

        let mut val_dispatches = forward(&val, &val_rows, false);
        let vm = Dims { rows: val.rows as u32, n: data.classes as u32, ..Default::default() };
        val_dispatches.push(Dispatch {
            kernel: "val_metrics",
            bind: gpu.bind(
                "val_metrics",
                &[&gpu.uniform("val_metrics", &vm.bytes()), &step_uniform, &val.logits, &val.y, &val.losses, &val_ring],
            ),
            groups: (1, 1),
        });
        gpu.check()?;
        Ok(GpuTrainer {
            gpu,
            cpu,
            reduction,
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
            uploaded_epoch: None,
            lose_device_at: None,
        })
    }

    /// Gives up the GPU: the record goes on on the CPU from the last state
    /// read back (weights, optimizer, streams, step), and says why.
    pub fn into_cpu(mut self, reason: &str) -> Trainer {
        self.cpu.switch_backend("cpu", reason);
        self.cpu
    }

    /// The adapter this run trains on.
    pub fn adapter(&self) -> &Adapter {
        &self.gpu.adapter
    }

    /// For tests of the fallback: destroy the device once `step` steps are done.
    pub fn lose_device_at(&mut self, step: usize) {
        self.lose_device_at = Some(step);
    }

    /// Steps completed and read back.
    pub fn step(&self) -> usize {
        self.cpu.step
    }

    /// True when every step ran or the run stopped.
    pub fn finished(&self) -> bool {
        self.cpu.finished()
    }

    /// Encodes and submits step `t` (0-based). No read-back.
    fn submit_step(&mut self, t: usize) {
        let per_epoch = self.cpu.steps_per_epoch();
        let epoch = t / per_epoch;
        if self.uploaded_epoch != Some(epoch) {
            let rows = self.cpu.epoch_rows(epoch);
            self.gpu.queue.write_buffer(&self.epoch_rows, 0, &words_bytes(&rows));
            self.uploaded_epoch = Some(epoch);
        }
        let cfg = &self.cpu.settings.config;
        let slot = (t % spec::GPU_READBACK_STEPS) as u32;
        let batch_offset = ((t % per_epoch) * cfg.batch_size) as u32;
        self.gpu.queue.write_buffer(&self.step_uniform, 0, &words_bytes(&[t as u32, batch_offset, slot, slot]));
        let evaluate = (t + 1) % cfg.eval_every == 0 || t + 1 == cfg.steps;
        let mut enc = self.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("step") });
        if self.reduction == GpuReduction::Atomic {
            enc.clear_buffer(&self.grads, 0, None);
        }
        {
            let mut pass =
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("step"), timestamp_writes: None });
            let vals: &[Dispatch] = if evaluate { &self.val_dispatches } else { &[] };
            for d in self.train_dispatches.iter().chain(vals) {
                pass.set_pipeline(&self.gpu.pipelines[d.kernel]);
                pass.set_bind_group(0, &d.bind, &[]);
                pass.dispatch_workgroups(d.groups.0, d.groups.1, 1);
            }
        }
        self.gpu.queue.submit([enc.finish()]);
    }

    /// Runs up to `n` more steps on the GPU (stopping at a read-back
    /// boundary) and reads their results back. Returns the steps recorded.
    async fn run_block(&mut self, n: usize) -> Result<usize, GpuError> {
        let start = self.cpu.step;
        let k = spec::GPU_READBACK_STEPS;
        let room = k - start % k;
        let count = n.min(room).min(self.cpu.total_steps() - start);
        for t in start..start + count {
            self.submit_step(t);
            if self.lose_device_at == Some(t + 1) {
                self.gpu.lose_device();
            }
        }
        self.gpu.check()?;
        let n_params = self.cpu.net.n_params;
        let parts = self
            .gpu
            .read(&[
                (&self.loss_ring, 4 * k),
                (&self.hash_ring, 4 * (4 * k + 2)),
                (&self.val_ring, 8 * k),
                (&self.params, 4 * n_params),
                (&self.velocity, 4 * n_params),
            ])
            .await?;
        let losses = bytes_f32(&parts[0]);
        let ring = bytes_u32(&parts[1]);
        let vals = bytes_u32(&parts[2]);
        let params = bytes_f32(&parts[3]);
        let velocity = bytes_f32(&parts[4]);

        let bad_loss = (start..start + count).find(|&t| !losses[t % k].is_finite());
        let bad_weights = params.iter().chain(&velocity).any(|v| !v.is_finite());
        if bad_loss.is_some() || bad_weights {
            return self.rerun_until_failure(start, count).await;
        }
        for t in start..start + count {
            let s = t % k;
            self.cpu.record_step(losses[s], Hash64 { lo: ring[4 * s], hi: ring[4 * s + 1] });
            self.record_val(t, &vals);
        }
        self.cpu.params = params;
        self.cpu.velocity = velocity;
        Ok(count)
    }

    /// Records the validation point of step `t` (0-based) from the read-back
    /// validation ring, when that step evaluated (as the CPU engine does).
    fn record_val(&mut self, t: usize, vals: &[u32]) {
        let cfg = &self.cpu.settings.config;
        if (t + 1) % cfg.eval_every == 0 || t + 1 == cfg.steps {
            let s = t % spec::GPU_READBACK_STEPS;
            let n_val = self.cpu.val_idx.len() as f64;
            let loss = f64::from(f32::from_bits(vals[2 * s + 1])) / n_val;
            self.cpu.val_curve.push(ValPoint {
                step: t + 1,
                val_error: f64::from(vals[2 * s]) / n_val,
                val_loss: loss.is_finite().then_some(loss),
            });
        }
    }

    /// A block produced a non-finite loss or weight: redo it from its first
    /// step (the state the CPU record holds), one step and one read-back at a
    /// time, and stop before the step that fails, as the CPU engine does.
    async fn rerun_until_failure(&mut self, start: usize, count: usize) -> Result<usize, GpuError> {
        self.gpu.queue.write_buffer(&self.params, 0, &f32_bytes(&self.cpu.params));
        self.gpu.queue.write_buffer(&self.velocity, 0, &f32_bytes(&self.cpu.velocity));
        let k = spec::GPU_READBACK_STEPS;
        let head = self.cpu.chain_head;
        self.gpu.queue.write_buffer(&self.hash_ring, 4 * (4 * k) as u64, &words_bytes(&[head.lo, head.hi]));
        let lr = self.cpu.settings.config.learning_rate;
        for t in start..start + count {
            self.submit_step(t);
            let n_params = self.cpu.net.n_params;
            let parts = self
                .gpu
                .read(&[
                    (&self.loss_ring, 4 * k),
                    (&self.hash_ring, 4 * (4 * k + 2)),
                    (&self.params, 4 * n_params),
                    (&self.velocity, 4 * n_params),
                    (&self.val_ring, 8 * k),
                ])
                .await?;
            let s = t % k;
            let loss = bytes_f32(&parts[0])[s];
            let params = bytes_f32(&parts[2]);
            let velocity = bytes_f32(&parts[3]);
            let what = if !loss.is_finite() {
                Some(("the training loss", loss))
            } else {
                params.iter().chain(&velocity).find(|v| !v.is_finite()).map(|v| ("a weight", *v))
            };
            if let Some((what, value)) = what {
                self.cpu.stopped = Some(crate::train::Stopped::non_finite(
                    t + 1,
                    format!(
                        "step {}: {what} became {value} (non-finite); the learning rate {lr} is probably too high \
                         for this network: try a smaller learning_rate",
                        t + 1
                    ),
                ));
                return Ok(t - start);
            }
            let ring = bytes_u32(&parts[1]);
            self.cpu.record_step(loss, Hash64 { lo: ring[4 * s], hi: ring[4 * s + 1] });
            self.record_val(t, &bytes_u32(&parts[4]));
            self.cpu.params = params;
            self.cpu.velocity = velocity;
        }
        Ok(count)
    }

    /// Runs up to `n` steps; returns how many were recorded.
    pub async fn run(&mut self, n: usize) -> Result<usize, GpuError> {
        let mut done = 0;
        while done < n && !self.finished() {
            done += self.run_block(n - done).await?;
        }
        Ok(done)
    }

    /// Reads the GPU's weights back without changing anything (for tests).
    pub async fn read_params(&self) -> Result<Vec<f32>, GpuError> {
        let parts = self.gpu.read(&[(&self.params, 4 * self.cpu.net.n_params)]).await?;
        Ok(bytes_f32(&parts[0]))
    }
}

/// Runs single kernels on given inputs and returns their outputs: the
/// per-kernel parity tests compare these with the CPU reference.
pub mod probe {
    use super::*;

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
    ) -> Result<Vec<u32>, GpuError> {
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
                Binding::Uniform(words_bytes(&[step, 0, 0, 0])),
                Binding::Uniform(words_bytes(&key)),
                Binding::Storage(f32_bytes(&vec![1.0; n])),
                Binding::Storage(vec![0; 4 * n]),
                Binding::Storage(vec![0; 4 * n]),
            ],
            (n, 1),
        )
        .await?;
        Ok(bytes_u32(&out[5]))
    }

    /// The weight hash the GPU computes over `params` (leaves then root).
    pub async fn weights_hash(gpu: &Gpu, params: &[f32]) -> Result<Hash64, GpuError> {
        let n = params.len();
        let k = spec::GPU_READBACK_STEPS;
        let p = gpu.buffer_with("params", &f32_bytes(params));
        let n_leaves = n.div_ceil(spec::HASH_CHUNK_WORDS);
        let leaves = gpu.buffer("leaves", 8 * n_leaves);
        let ring = gpu.buffer("ring", 4 * (4 * k + 2));
        let step_u = gpu.uniform("step", &words_bytes(&[0, 0, 0, 0]));
        let hl = Dims { n: n as u32, ..Default::default() };
        let b1 = gpu.bind("hash_leaves", &[&gpu.uniform("hl", &hl.bytes()), &p, &leaves]);
        dispatch(gpu, "hash_leaves", &b1, groups_1d(n_leaves));
        let hr = Dims { n: n as u32, k: n_leaves as u32, u: [4 * k as u32, 0, 0, 0], ..Default::default() };
        let b2 = gpu.bind("hash_root", &[&gpu.uniform("hr", &hr.bytes()), &step_u, &leaves, &ring]);
        dispatch(gpu, "hash_root", &b2, (1, 1));
        let parts = gpu.read(&[(&ring, 16)]).await?;
        let w = bytes_u32(&parts[0]);
        Ok(Hash64 { lo: w[2], hi: w[3] })
    }

    /// The forward product `a [rows x k] @ w [k x n]` on the GPU.
    pub async fn matmul(
        gpu: &Gpu,
        a: &[f32],
        w: &[f32],
        rows: usize,
        k: usize,
        n: usize,
    ) -> Result<Vec<f32>, GpuError> {
        let dims = Dims { rows: rows as u32, k: k as u32, n: n as u32, ..Default::default() };
        let bindings = vec![
            Binding::Storage(f32_bytes(a)),
            Binding::Storage(f32_bytes(w)),
            Binding::Storage(vec![0; 4 * rows * n]),
        ];
        Ok(bytes_f32(&kernel(gpu, "matmul", dims.words(), bindings, (n, rows)).await?[3]))
    }

    /// The weight gradient `a^T d` on the GPU, fixed order or atomics.
    pub async fn matmul_grad(
        gpu: &Gpu,
        a: &[f32],
        d: &[f32],
        rows: usize,
        k: usize,
        n: usize,
        reduction: GpuReduction,
    ) -> Result<Vec<f32>, GpuError> {
        let dims = Dims {
            rows: rows as u32,
            k: k as u32,
            n: n as u32,
            u: [spec::GPU_ATOMIC_CHUNK_ROWS, 0, 0, 0],
            ..Default::default()
        };
        let (name, threads) = match reduction {
            GpuReduction::Fixed => ("matmul_grad", (n, k)),
            GpuReduction::Atomic => {
                ("matmul_grad_atomic", (k * n * (rows as u32).div_ceil(spec::GPU_ATOMIC_CHUNK_ROWS) as usize, 1))
            }
        };
        let bindings =
            vec![Binding::Storage(f32_bytes(a)), Binding::Storage(f32_bytes(d)), Binding::Storage(vec![0; 4 * k * n])];
        Ok(bytes_f32(&kernel(gpu, name, dims.words(), bindings, threads).await?[3]))
    }

    /// The back-propagated error `d @ w^T` on the GPU.
    pub async fn backprop(
        gpu: &Gpu,
        d: &[f32],
        w: &[f32],
        rows: usize,
        k: usize,
        n: usize,
    ) -> Result<Vec<f32>, GpuError> {
        let dims = Dims { rows: rows as u32, k: k as u32, n: n as u32, ..Default::default() };
        let bindings = vec![
            Binding::Storage(f32_bytes(d)),
            Binding::Storage(f32_bytes(w)),
            Binding::Storage(vec![0; 4 * rows * k]),
        ];
        Ok(bytes_f32(&kernel(gpu, "matmul_backprop", dims.words(), bindings, (k, rows)).await?[3]))
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
    ) -> Result<Vec<Vec<u8>>, GpuError> {
        let mut buffers = vec![gpu.uniform("dims", &words_bytes(&dims))];
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
            "matmul" | "matmul_grad" | "matmul_backprop" => groups_2d(threads.0, threads.1),
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
}
