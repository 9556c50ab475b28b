//! The device: adapter choice, device creation with errors caught (a lost
//! device or a validation error surfaces as an [`Error::Backend`], never a
//! panic), every kernel's pipeline, buffers and asynchronous read-back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::kernels::{
    exact_kernels, groups_2d, prelude, prelude_exact, Tiling, DIRECT_MATRIX_KERNELS, KERNELS, MATRIX_KERNELS,
    REFERENCE_MATRIX_KERNELS,
};
use crate::error::{Error, Result};
use crate::record::Adapter;

/// A backend error in one line: driver and validation messages span lines.
pub(crate) fn backend_err(message: impl AsRef<str>) -> Error {
    let one_line: Vec<&str> = message.as_ref().lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    Error::Backend(one_line.join("; "))
}

/// An opened GPU: device, queue, the adapter's description and every kernel's
/// pipeline. Errors the device reports (validation, loss) are caught and
/// surface as [`crate::error::Error::Backend`]s instead of panics.
pub struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub adapter: Adapter,
    pub(crate) pipelines: HashMap<&'static str, wgpu::ComputePipeline>,
    failure: Arc<Mutex<Option<String>>>,
    /// The training kernels are the `exact` ones.
    exact: bool,
    /// The shape of the register-blocked matrix kernels.
    tiling: Tiling,
    /// The matrix kernels are the reference (one output per invocation) ones.
    reference: bool,
    /// Steps use the fused kernels (softmax with the loss sum, gradient with
    /// the update); off only to measure or test the unfused path.
    fusion: bool,
    /// The staging buffer of the last read-back, kept for the next one
    /// (taken while a read-back is in flight, so two at once never share it).
    staging: Mutex<Option<wgpu::Buffer>>,
    /// The adapter has timestamp queries and the device was opened with them.
    timestamps: bool,
}

/// One pipeline per kernel, each behind `prelude` (and the matrix kernels
/// behind `tiling`'s constants too).
fn compile(
    device: &wgpu::Device,
    prelude: &str,
    tiling: Tiling,
    kernels: impl Iterator<Item = (&'static str, &'static str)>,
) -> HashMap<&'static str, wgpu::ComputePipeline> {
    let consts = tiling.consts();
    kernels
        .map(|(name, src)| {
            let extra = if MATRIX_KERNELS.contains(&name) { consts.as_str() } else { "" };
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(format!("{prelude}{extra}{src}").into()),
            });
            let p = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
            (name, p)
        })
        .collect()
}

impl Gpu {
    /// Finds an adapter and opens a device. Natively Vulkan, Metal or DX12
    /// (lavapipe and SwiftShader count); in the browser WebGPU.
    pub async fn open() -> Result<Gpu> {
        // Without navigator.gpu (Node.js, old browsers) wgpu would panic
        // rather than report: say so first.
        #[cfg(target_arch = "wasm32")]
        if !crate::platform::has_webgpu() {
            return Err(backend_err(no_adapter_reason("")));
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
            .map_err(|e| backend_err(no_adapter_reason(&e.to_string())))?;
        let info = adapter.get_info();
        // Timestamp queries where the adapter has them (only the kernel
        // profile of the benchmark writes any).
        let features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("reprolab"),
                required_features: features,
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| backend_err(format!("the GPU adapter {} could not create a device: {e}", info.name)))?;
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
        let mut gpu = Gpu {
            device,
            queue,
            adapter,
            pipelines: HashMap::new(),
            failure,
            exact: false,
            tiling: Tiling::DEFAULT,
            reference: false,
            fusion: true,
            staging: Mutex::new(None),
            timestamps: !features.is_empty(),
        };
        let sources: Vec<_> = gpu.sources(KERNELS.into_iter()).collect();
        gpu.pipelines = compile(&gpu.device, &prelude(), gpu.tiling, sources.into_iter());
        gpu.check()?;
        Ok(gpu)
    }

    /// Compiles the training kernels with the `exact` prelude and uses them
    /// from now on (bind groups made afterwards follow them). Only an
    /// `exact` run that passed the start-up probe calls this.
    pub fn use_exact_kernels(&mut self) -> Result<()> {
        if !self.exact {
            let sources: Vec<_> = self.sources(exact_kernels()).collect();
            let exact = compile(&self.device, &prelude_exact(), self.tiling, sources.into_iter());
            self.pipelines.extend(exact);
            self.exact = true;
        }
        self.check()
    }

    /// `kernels` with the matrix kernels' sources swapped for the reference
    /// ones when those are in use.
    fn sources<'a>(
        &self,
        kernels: impl Iterator<Item = (&'static str, &'static str)> + 'a,
    ) -> impl Iterator<Item = (&'static str, &'static str)> + 'a {
        let swap: &'static [(&str, &str)] = if self.reference {
            &REFERENCE_MATRIX_KERNELS
        } else if self.tiling.bk == 0 {
            &DIRECT_MATRIX_KERNELS
        } else {
            &[]
        };
        kernels.map(move |(name, src)| match swap.iter().find(|(n, _)| *n == name) {
            Some(r) => *r,
            None => (name, src),
        })
    }

    /// Recompiles the three matrix kernels (with the current prelude,
    /// tiling and sources). Bind groups made afterwards follow them.
    fn recompile_matrix_kernels(&mut self) -> Result<()> {
        let prelude = if self.exact { prelude_exact() } else { prelude() };
        let matrix = KERNELS.into_iter().filter(|(name, _)| MATRIX_KERNELS.contains(name));
        let sources: Vec<_> = self.sources(matrix).collect();
        let compiled = compile(&self.device, &prelude, self.tiling, sources.into_iter());
        self.pipelines.extend(compiled);
        self.check()
    }

    /// Uses the matrix kernels as they were before register blocking
    /// (`shaders/reference/`, one output per invocation): same sums, same
    /// order, same bits, slower. For the benchmark's "before" column and
    /// the tests that compare the two; call before building a run on it.
    pub fn use_reference_matrix_kernels(&mut self) -> Result<()> {
        if !self.reference {
            self.reference = true;
            self.recompile_matrix_kernels()?;
        }
        Ok(())
    }

    /// True once [`Gpu::use_reference_matrix_kernels`] ran.
    pub fn reference_matrix_kernels(&self) -> bool {
        self.reference
    }

    /// Turns the fusions of a step on (the default) or off: softmax with the
    /// loss sum (`softmax_xent_loss.wgsl` for `softmax_xent.wgsl` then
    /// `loss_sum.wgsl`) and the gradients with the update
    /// (`matmul_grad_sgd.wgsl` and `bias_grad_sgd.wgsl` for
    /// `matmul_grad_direct.wgsl`, `bias_grad.wgsl` and `sgd.wgsl`). The same
    /// operations on the same values either way, so the same bits; off for
    /// the benchmark's "unfused" contender and the tests that compare the
    /// two. Call before building a run on it.
    pub fn set_fusion(&mut self, on: bool) {
        self.fusion = on;
    }

    /// True when a step's softmax and loss sum run as one kernel: the
    /// fusions are on and the matrix kernels are not the reference ones
    /// (which stand for the code before blocking and fusing).
    pub fn fuses(&self) -> bool {
        self.fusion && !self.reference
    }

    /// True when the weight and bias gradients are fused with the update:
    /// [`Gpu::fuses`] and the unstaged matrix kernels (`bk` = 0; the staged
    /// weight gradient has no fused twin).
    pub fn fuses_grad_update(&self) -> bool {
        self.fuses() && self.tiling.bk == 0
    }

    /// Reshapes the register-blocked matrix kernels (for measurements; the
    /// bits do not depend on it). Call before building a run on it.
    pub fn set_tiling(&mut self, tiling: Tiling) -> Result<()> {
        if tiling != self.tiling {
            self.tiling = tiling;
            self.recompile_matrix_kernels()?;
        }
        Ok(())
    }

    /// The shape of the register-blocked matrix kernels.
    pub fn tiling(&self) -> Tiling {
        self.tiling
    }

    /// True when the device can write timestamps (kernel profiles use them).
    pub fn has_timestamps(&self) -> bool {
        self.timestamps
    }

    /// Workgroups of a matrix kernel over `cols` x `rows` outputs.
    pub(crate) fn matrix_groups(&self, cols: usize, rows: usize) -> (u32, u32) {
        if self.reference {
            groups_2d(cols, rows)
        } else {
            self.tiling.groups(cols, rows)
        }
    }

    /// True once [`Gpu::use_exact_kernels`] ran.
    pub fn exact_kernels(&self) -> bool {
        self.exact
    }

    /// The first error the device reported, if any.
    pub fn check(&self) -> Result<()> {
        match self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            Some(m) => Err(backend_err(m)),
            None => Ok(()),
        }
    }

    /// Destroys the device, as a driver reset would (for tests of the fallback).
    pub fn lose_device(&self) {
        self.device.destroy();
    }

    pub(crate) fn buffer(&self, label: &str, bytes: usize) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).next_multiple_of(4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    pub(crate) fn buffer_with(&self, label: &str, bytes: &[u8]) -> wgpu::Buffer {
        let b = self.buffer(label, bytes.len());
        if !bytes.is_empty() {
            self.queue.write_buffer(&b, 0, bytes);
        }
        b
    }

    pub(crate) fn uniform(&self, label: &str, bytes: &[u8]) -> wgpu::Buffer {
        let b = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.len().next_multiple_of(16) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&b, 0, bytes);
        b
    }

    pub(crate) fn bind(&self, kernel: &str, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
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
    /// waits for the map without blocking the browser's thread. The staging
    /// buffer is kept for the next read-back (a new one only when a larger
    /// read comes, or while another read-back holds it).
    pub(crate) async fn read(&self, parts: &[(&wgpu::Buffer, usize)]) -> Result<Vec<Vec<u8>>> {
        let total: usize = parts.iter().map(|(_, n)| n.next_multiple_of(4)).sum();
        let kept = self.staging.lock().unwrap_or_else(|p| p.into_inner()).take();
        let staging = match kept {
            Some(b) if b.size() >= total as u64 => b,
            _ => self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: total.max(4).next_multiple_of(256) as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        };
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
            .map_err(|e| backend_err(format!("waiting for the GPU failed: {e}")))?;
        let mapped = rx.await.map_err(|_| backend_err("the GPU read-back was dropped (device lost?)"))?;
        mapped.map_err(|e| backend_err(format!("the GPU read-back failed: {e}")))?;
        self.check()?;
        let view = staging.get_mapped_range(..).map_err(|e| backend_err(format!("the GPU read-back failed: {e}")))?;
        let mut out = Vec::new();
        let mut at = 0usize;
        for (_, n) in parts {
            out.push(view[at..at + n].to_vec());
            at += n.next_multiple_of(4);
        }
        drop(view);
        staging.unmap();
        *self.staging.lock().unwrap_or_else(|p| p.into_inner()) = Some(staging);
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
