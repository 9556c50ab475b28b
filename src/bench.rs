//! The shape benchmark: milliseconds per training step of the CPU engine on
//! the network shapes of the speed issue, per backend (one thread; OS
//! threads over chunks) and per kernels (the scalar reference and the SIMD
//! kernels of [`crate::kernels`]), with nominal GFLOP/s and the fraction of
//! an assumed peak. Plain data in and out: the command line (`reprolab bench
//! --shapes`) and the wasm build call [`run`] and print or save the
//! [`BenchReport`] it returns; nothing here is asserted by a test (speed is
//! reported, never checked).
//!
//! Method: every contender (shape x backend x kernels) keeps its own
//! training run, on digits (64 inputs, 10 classes) with the defaults
//! otherwise (ReLU, dropout 0.1, engine version 2) and no validation during
//! the timed steps. After a warm-up, `rounds` rounds each time a fixed
//! number of steps of every contender in turn (interleaved, so that a busy
//! machine slows them all alike); the figure is the median of the rounds.
//! Contenders that differ only in their kernels must end on the same hash
//! chain link: [`BenchReport::bits_agree`] says whether they did.

use serde::Serialize;

use crate::driver::{new_setup, Run};
use crate::gpu::{KernelProfile, Tiling};
use crate::model::{self, Kernels};
use crate::{Origin, Settings};

/// A network shape: digits' 64 inputs, `hidden` widths, 10 classes, and the
/// batch size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BenchShape {
    pub hidden: Vec<usize>,
    pub batch: usize,
}

/// Inputs and classes of the data set the benchmark trains on (digits).
const INPUTS: usize = 64;
const CLASSES: usize = 10;

impl BenchShape {
    /// `64-128-10 b64`.
    pub fn name(&self) -> String {
        let mut widths = vec![INPUTS];
        widths.extend(&self.hidden);
        widths.push(CLASSES);
        let w: Vec<String> = widths.iter().map(|w| w.to_string()).collect();
        format!("{} b{}", w.join("-"), self.batch)
    }

    /// Nominal floating-point operations of one step: `6 x batch x sum of
    /// layer in x out` (forward, weight gradient and back-propagation, a
    /// multiply and an add each), whatever the zero activations let the
    /// kernels skip.
    pub fn nominal_flops(&self) -> f64 {
        6.0 * self.batch as f64 * self.layer_macs().iter().sum::<usize>() as f64
    }

    /// Each layer's `in x out`, input layer first.
    fn layer_macs(&self) -> Vec<usize> {
        let mut widths = vec![INPUTS];
        widths.extend(&self.hidden);
        widths.push(CLASSES);
        widths.windows(2).map(|p| p[0] * p[1]).collect()
    }

    /// Floating-point operations of one step's matrix kernels (a multiply
    /// and an add per term): the forward product of every layer, the weight
    /// gradient of every layer, and the back-propagation into every layer
    /// but the first (the input needs no gradient). `None` for a kernel
    /// that is no matrix product.
    pub fn kernel_flops(&self, kernel: &str) -> Option<f64> {
        let macs = self.layer_macs();
        let terms: usize = match kernel {
            "matmul" | "matmul_grad" | "matmul_grad_sgd" => macs.iter().sum(),
            "matmul_backprop" => macs.iter().skip(1).sum(),
            _ => return None,
        };
        Some(2.0 * self.batch as f64 * terms as f64)
    }
}

/// The three shapes of the speed issue.
pub fn default_shapes() -> Vec<BenchShape> {
    vec![
        BenchShape { hidden: vec![128], batch: 64 },
        BenchShape { hidden: vec![256, 256], batch: 128 },
        BenchShape { hidden: vec![1024, 1024], batch: 128 },
    ]
}

/// Parses shapes written `HIDDEN/BATCH`, hidden widths joined by `-`,
/// shapes by `,`: `128/64,256-256/128,1024-1024/128` (the defaults).
pub fn parse_shapes(text: &str) -> Result<Vec<BenchShape>, String> {
    let bad = |part: &str| format!("shapes: expected HIDDEN/BATCH like 256-256/128, got {part:?}");
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (hidden, batch) = part.split_once('/').ok_or_else(|| bad(part))?;
        let hidden: Vec<usize> = hidden
            .split('-')
            .map(|w| w.trim().parse().ok().filter(|w| *w > 0))
            .collect::<Option<_>>()
            .ok_or_else(|| bad(part))?;
        let batch = batch.trim().parse().ok().filter(|b| *b > 0).ok_or_else(|| bad(part))?;
        out.push(BenchShape { hidden, batch });
    }
    if out.is_empty() {
        return Err(bad(text));
    }
    Ok(out)
}

/// One way of running the engine: `threads` OS threads over `chunks`
/// chunks of the batch (1 and 1: no chunks), with `kernels`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contender {
    pub threads: usize,
    pub chunks: usize,
    pub kernels: Kernels,
}

impl Contender {
    /// `cpu-1 simd`, `cpu-2x4 scalar`, ...
    pub fn name(&self) -> String {
        if self.chunks <= 1 {
            format!("cpu-{} {}", self.threads, self.kernels.name())
        } else {
            format!("cpu-{}x{} {}", self.threads, self.chunks, self.kernels.name())
        }
    }
}

/// One thread, and two threads over four chunks (the config needs more
/// chunks than threads), each with the scalar and the SIMD kernels; and one
/// thread over the same four chunks (SIMD), so that two workers are compared
/// with one on the same arithmetic ([`BenchReport::worker_speedups`]).
pub fn default_contenders() -> Vec<Contender> {
    let mut out = Vec::new();
    for (threads, chunks) in [(1, 1), (1, 4), (2, 4)] {
        for kernels in [Kernels::Scalar, Kernels::Simd] {
            if (threads, chunks) == (1, 4) && kernels == Kernels::Scalar {
                continue;
            }
            out.push(Contender { threads, chunks, kernels });
        }
    }
    out
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub shapes: Vec<BenchShape>,
    pub contenders: Vec<Contender>,
    /// Timed rounds (the figure is their median).
    pub rounds: usize,
    /// About how long one contender's sample should take; sets the steps
    /// per sample of each shape from the warm-up.
    pub sample_ms: f64,
    /// Peak of one core, GFLOP/s ([`measure_peak_gflops`] or
    /// [`assumed_peak_gflops`]).
    pub peak_gflops_per_core: f64,
    /// How that peak was arrived at, in words (saved with the figures).
    pub peak_assumption: String,
}

impl Default for BenchOptions {
    /// The shapes and contenders, 5 rounds of about 300 ms, and the
    /// assumed peak (callers that can afford a second measure it with
    /// [`measure_peak_gflops`]).
    fn default() -> BenchOptions {
        let (peak, why) = assumed_peak_gflops(None);
        BenchOptions {
            shapes: default_shapes(),
            contenders: default_contenders(),
            rounds: 5,
            sample_ms: 300.0,
            peak_gflops_per_core: peak,
            peak_assumption: why,
        }
    }
}

/// The peak one core can give this engine, by assumption: 4 f32 lanes
/// (SSE2 natively, SIMD128 in wasm) x one multiply and one add issued per
/// cycle on two ports (no FMA: the spec forbids it) = 8 flop per cycle,
/// times the clock (`ghz`, 3.0 when unknown). Returns the figure and the
/// assumption in words. [`measure_peak_gflops`] measures it instead.
pub fn assumed_peak_gflops(ghz: Option<f64>) -> (f64, String) {
    let (g, source) = match ghz {
        Some(g) if g > 0.0 => (g, "the clock the OS reports"),
        _ => (3.0, "an assumed clock"),
    };
    (
        8.0 * g,
        format!(
            "assumed: 8 flop/cycle/core (4 f32 lanes x 1 mul + 1 add per cycle, no FMA) x {g:.2} GHz ({source}) = {:.1} GFLOP/s per core",
            8.0 * g
        ),
    )
}

/// The peak of one core for this engine's arithmetic, measured: the best of
/// `tries` runs of [`crate::kernels::peak_probe`] (4-lane multiplies and
/// adds from registers, no memory, no FMA), timed by CPU time where the OS
/// reports it, else by `clock`. Returns GFLOP/s and how it was measured.
pub fn measure_peak_gflops(clock: &dyn Fn() -> f64, tries: usize) -> (f64, String) {
    let iters = 10_000_000;
    let mut best = 0.0f64;
    let mut by_cpu = true;
    for _ in 0..tries.max(1) {
        let (c0, w0) = (cpu_ms(1), clock());
        std::hint::black_box(crate::kernels::peak_probe(std::hint::black_box(iters)));
        let (c1, w1) = (cpu_ms(1), clock());
        let ms = match c1.zip(c0) {
            Some((b, a)) if b > a => b - a,
            _ => {
                by_cpu = false;
                w1 - w0
            }
        };
        best = best.max((iters * crate::kernels::PEAK_PROBE_FLOPS) as f64 / (ms.max(1e-6) * 1e6));
    }
    (
        best,
        format!(
            "measured: {best:.1} GFLOP/s per core, the best of {tries} runs of the kernels' inner loop (4-lane f32 `acc += x * op`) \
             on data in L1 (no FMA, {}; {} time)",
            crate::kernels::BACKEND,
            if by_cpu { "CPU" } else { "wall-clock" }
        ),
    )
}

/// The clock of the first CPU in GHz, from /proc/cpuinfo (Linux), if any.
#[cfg(not(target_arch = "wasm32"))]
pub fn cpu_ghz() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu MHz"))?;
    let mhz: f64 = line.split(':').nth(1)?.trim().parse().ok()?;
    Some(mhz / 1000.0)
}

/// CPU time this thread (`threads == 1`) or this whole process has run,
/// in milliseconds, where the OS tells (Linux: /proc), so that figures on a
/// shared machine can be read per core as well as per wall-clock second.
#[cfg(not(target_arch = "wasm32"))]
fn cpu_ms(threads: usize) -> Option<f64> {
    if threads <= 1 {
        // First field: nanoseconds on a CPU.
        let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
        (ns > 0.0).then_some(ns / 1e6)
    } else {
        // utime and stime, in clock ticks of 10 ms (USER_HZ is 100 on Linux),
        // threads that have ended included.
        let text = std::fs::read_to_string("/proc/self/stat").ok()?;
        let rest = &text[text.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some(ticks * 10.0)
    }
}

#[cfg(target_arch = "wasm32")]
fn cpu_ms(_threads: usize) -> Option<f64> {
    None
}

/// The figures of one contender on one shape.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// `64-128-10 b64`.
    pub shape: String,
    pub hidden: Vec<usize>,
    pub batch: usize,
    /// `cpu-1 simd`, ...
    pub contender: String,
    /// `cpu` or `gpu`.
    pub backend: String,
    pub threads: usize,
    pub chunks: usize,
    /// `scalar` or `simd` (CPU); `reference` or `blocked WXxWYxBK` (GPU).
    pub kernels: String,
    /// Steps timed per sample.
    pub steps_per_sample: usize,
    /// Milliseconds per step of every round, in round order.
    pub samples_ms: Vec<f64>,
    pub median_ms: f64,
    pub min_ms: f64,
    /// Nominal GFLOP/s at the median ([`BenchShape::nominal_flops`]).
    pub gflops: f64,
    /// `gflops` over the assumed peak of `threads` cores.
    pub peak_fraction: f64,
    /// CPU milliseconds per step (all threads together), median over
    /// rounds, where the OS reports CPU time (natively on Linux): on a
    /// shared machine wall time includes time spent waiting for a core.
    pub cpu_ms: Option<f64>,
    /// Nominal GFLOP/s per CPU second (`flops / cpu_ms`), and its fraction
    /// of one core's assumed peak: what the code gets from the cores it ran on.
    pub gflops_per_core: Option<f64>,
    pub peak_fraction_per_core: Option<f64>,
    /// The run's last hash chain link after every step it ran.
    pub chain_head: String,
    /// Steps the run took in all (warm-up included).
    pub steps: usize,
}

/// Everything [`run`] measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// The runtime (`reprolab-cli/...` natively, the user agent in wasm).
    pub runtime: String,
    /// What the SIMD kernels run on in this build (`x86_64 sse2`, `wasm simd128`).
    pub simd: String,
    pub rounds: usize,
    pub peak_gflops_per_core: f64,
    pub peak_assumption: String,
    pub method: String,
    pub results: Vec<BenchResult>,
    /// True when every pair of contenders that differ only in their kernels
    /// ended on the same hash chain link.
    pub bits_agree: bool,
    /// The GPU contenders' adapter, per-kernel profiles and agreement (their
    /// rows are in `results`, backend `gpu`), when they ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuBenchReport>,
}

impl BenchReport {
    /// One line per result, aligned, with a header.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<22} {:<15} {:>9} {:>9} {:>8} {:>6} | {:>9} {:>8} {:>6}\n",
            "shape", "contender", "ms/step", "min ms", "GFLOP/s", "peak", "cpu ms", "GF/core", "peak"
        );
        let opt = |v: Option<f64>, scale: f64, prec: usize| match v {
            Some(v) => format!("{:.*}", prec, v * scale),
            None => "-".into(),
        };
        for r in &self.results {
            s += &format!(
                "{:<22} {:<15} {:>9.3} {:>9.3} {:>8.2} {:>5.1}% | {:>9} {:>8} {:>5}%\n",
                r.shape,
                r.contender,
                r.median_ms,
                r.min_ms,
                r.gflops,
                100.0 * r.peak_fraction,
                opt(r.cpu_ms, 1.0, 3),
                opt(r.gflops_per_core, 1.0, 2),
                opt(r.peak_fraction_per_core, 100.0, 1),
            );
        }
        s += &format!(
            "{}; {} interleaved rounds, medians; peak: {}; kernels agree bit for bit: {}\n",
            self.runtime,
            self.rounds,
            self.peak_assumption,
            if self.bits_agree { "yes" } else { "NO" }
        );
        for (shape, wall, cpu) in self.worker_speedups() {
            s += &format!(
                "{shape}: {threads} workers against 1 over the same chunks (same bits): {wall:.2}x by the wall clock{}\n",
                cpu.map_or(String::new(), |c| format!(", {c:.2}x the CPU time")),
                threads = self.results.iter().filter(|r| r.shape == shape).map(|r| r.threads).max().unwrap_or(1),
            );
        }
        if let Some(g) = &self.gpu {
            s += &format!(
                "GPU: {} (gpu rows: peak = the CPU peak x {} cores for a software adapter); GPU kernels agree bit for \
                 bit: {}\n",
                g.adapter,
                g.results.first().map_or(0, |r| r.threads),
                if g.bits_agree { "yes" } else { "NO" }
            );
            if !g.kernels.is_empty() {
                s += &g.kernel_table();
            }
        }
        s
    }

    /// Per shape, how much faster the most CPU workers run than one worker
    /// over the same chunks with the same kernels (wall-clock median ratio),
    /// and how much more CPU time they take in all (where the OS reports it).
    pub fn worker_speedups(&self) -> Vec<(String, f64, Option<f64>)> {
        let mut out = Vec::new();
        for many in self.results.iter().filter(|r| r.backend == "cpu" && r.threads > 1) {
            let one = self.results.iter().find(|r| {
                r.backend == "cpu"
                    && r.shape == many.shape
                    && r.threads == 1
                    && r.chunks == many.chunks
                    && r.kernels == many.kernels
            });
            if let Some(one) = one {
                let cpu = one.cpu_ms.zip(many.cpu_ms).map(|(a, b)| b / a);
                out.push((many.shape.clone(), one.median_ms / many.median_ms, cpu));
            }
        }
        out
    }

    /// Adds the GPU contenders' figures (rows and profiles).
    pub fn add_gpu(&mut self, g: GpuBenchReport) {
        self.results.extend(g.results.iter().cloned());
        self.gpu = Some(g);
    }
}

/// The training run of one contender on one shape.
fn trainer(shape: &BenchShape, c: &Contender) -> Result<Run, String> {
    let setup = trainer_setup(shape, c.threads, c.chunks)?;
    Ok(Run::cpu(setup))
}

/// The setup of a benchmark run on `shape` with `threads` over `chunks`.
fn trainer_setup(shape: &BenchShape, threads: usize, chunks: usize) -> Result<crate::setup::Setup, String> {
    let mut s = Settings::default();
    let hidden: Vec<String> = shape.hidden.iter().map(|h| h.to_string()).collect();
    let steps = crate::config::MAX_STEPS.to_string();
    for (k, v) in [
        ("dataset", "digits"),
        ("hidden", &hidden.join(",")),
        ("batch_size", &shape.batch.to_string()),
        ("steps", &steps),
        ("eval_every", &steps),
        ("threads", &threads.to_string()),
        ("chunks", &chunks.to_string()),
    ] {
        s.set(k, v, Origin::Override).map_err(|e| format!("bench {}: {e}", shape.name()))?;
    }
    new_setup(s, &[]).map_err(|e| format!("bench {}: {e}", shape.name()))
}

/// Runs `n` steps of `t` with `kernels`; returns the wall and CPU
/// milliseconds they took.
fn timed(t: &mut Run, n: usize, kernels: Kernels, clock: &dyn Fn() -> f64) -> Result<(f64, Option<f64>), String> {
    let before = model::kernels();
    model::set_kernels(kernels);
    let threads = t.record.settings.config.threads;
    let cpu_start = cpu_ms(threads);
    let start = clock();
    let done = t.advance_now(n).unwrap_or(0);
    let ms = clock() - start;
    let cpu = cpu_ms(threads).zip(cpu_start).map(|(b, a)| b - a);
    model::set_kernels(before);
    match &t.record.stopped {
        Some(s) => Err(format!("a benchmark run stopped: {}", s.reason)),
        None if done < n => Err(format!("a benchmark run ended after {done} of {n} steps")),
        None => Ok((ms, cpu)),
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// Measures every contender on every shape. `clock` gives milliseconds
/// (any origin): `Instant` natively, `performance.now()` in a browser. The
/// process-wide kernel switch ([`model::set_kernels`]) is set for each
/// contender's steps and restored after. Fails with a one-line message when
/// a shape or contender cannot run (an invalid chunk count, say).
pub fn run(opts: &BenchOptions, clock: &dyn Fn() -> f64) -> Result<BenchReport, String> {
    if opts.rounds == 0 || opts.shapes.is_empty() {
        return Err("bench: needs at least one shape and one round".into());
    }
    let mut results = Vec::new();
    let mut bits_agree = true;
    for shape in &opts.shapes {
        let mut runs = Vec::new();
        for c in &opts.contenders {
            runs.push(trainer(shape, c)?);
        }
        // Warm-up: two steps each (caches, allocations, thread start), then
        // the steps per sample from the first contender's pace.
        let mut warm = f64::INFINITY;
        for (t, c) in runs.iter_mut().zip(&opts.contenders) {
            timed(t, 1, c.kernels, clock)?;
            warm = warm.min(timed(t, 1, c.kernels, clock)?.0);
        }
        let steps = ((opts.sample_ms / warm.max(1e-3)).ceil() as usize).clamp(1, 10_000);
        let mut samples = vec![Vec::new(); runs.len()];
        let mut cpu_samples = vec![Vec::new(); runs.len()];
        for _ in 0..opts.rounds {
            for (i, (t, c)) in runs.iter_mut().zip(&opts.contenders).enumerate() {
                let (ms, cpu) = timed(t, steps, c.kernels, clock)?;
                samples[i].push(ms / steps as f64);
                cpu_samples[i].extend(cpu.map(|v| v / steps as f64));
            }
        }
        for (i, c) in opts.contenders.iter().enumerate() {
            for (j, o) in opts.contenders.iter().enumerate().skip(i + 1) {
                if (c.threads, c.chunks) == (o.threads, o.chunks)
                    && runs[i].record.chain_head != runs[j].record.chain_head
                {
                    bits_agree = false;
                }
            }
            let med = median(&samples[i]);
            let gflops = shape.nominal_flops() / (med * 1e6);
            let cpu = (cpu_samples[i].len() == opts.rounds).then(|| median(&cpu_samples[i]));
            let per_core = cpu.map(|c| shape.nominal_flops() / (c * 1e6));
            results.push(BenchResult {
                shape: shape.name(),
                hidden: shape.hidden.clone(),
                batch: shape.batch,
                contender: c.name(),
                backend: "cpu".into(),
                threads: c.threads,
                chunks: c.chunks,
                kernels: c.kernels.name().into(),
                steps_per_sample: steps,
                median_ms: med,
                min_ms: samples[i].iter().copied().fold(f64::INFINITY, f64::min),
                samples_ms: samples[i].clone(),
                gflops,
                peak_fraction: gflops / (opts.peak_gflops_per_core * c.threads as f64),
                cpu_ms: cpu,
                gflops_per_core: per_core,
                peak_fraction_per_core: per_core.map(|g| g / opts.peak_gflops_per_core),
                chain_head: runs[i].record.chain_head.to_string(),
                steps: runs[i].record.step,
            });
        }
    }
    Ok(BenchReport {
        runtime: crate::platform::user_agent(),
        simd: crate::kernels::BACKEND.into(),
        rounds: opts.rounds,
        peak_gflops_per_core: opts.peak_gflops_per_core,
        peak_assumption: opts.peak_assumption.clone(),
        method: "digits, defaults otherwise (ReLU, dropout 0.1, engine v2), no validation in the timed steps; \
                 contenders interleaved round by round; ms per step is the median over rounds (wall clock); \
                 cpu ms is CPU time per step where the OS reports it, all threads together"
            .into(),
        results,
        bits_agree,
        gpu: None,
    })
}

/// A GPU contender: the matrix kernels register-blocked with `tiling`, or
/// the reference ones (one output per invocation: the code before the
/// blocking and the fusions, same bits); `fused` false turns the fusions
/// (softmax with the loss sum, gradients with the update:
/// [`crate::gpu::Gpu::set_fusion`]) off, same bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuContender {
    pub reference: bool,
    pub tiling: Tiling,
    pub fused: bool,
}

impl GpuContender {
    /// The kernels as shipped.
    pub const DEFAULT: GpuContender = GpuContender { reference: false, tiling: Tiling::DEFAULT, fused: true };

    /// `gpu 16x16x16`, `gpu reference`, `gpu 16x16x0 unfused`.
    pub fn name(&self) -> String {
        format!("gpu {}", self.kernels().trim_start_matches("blocked "))
    }

    /// `blocked 16x16x0`, `reference`, `blocked 16x16x0 unfused`.
    pub fn kernels(&self) -> String {
        if self.reference {
            "reference".into()
        } else if self.fused {
            format!("blocked {}", self.tiling.name())
        } else {
            format!("blocked {} unfused", self.tiling.name())
        }
    }
}

/// The per-kernel times of one profiled step of one GPU contender.
#[derive(Clone, Debug, Serialize)]
pub struct KernelRow {
    pub shape: String,
    pub contender: String,
    pub profile: KernelProfile,
    /// The kernels' times added up, milliseconds.
    pub total_ms: f64,
    /// GFLOP/s of each matrix kernel (its operations,
    /// [`BenchShape::kernel_flops`], over its time) and of the whole step's
    /// kernels (the nominal step operations over `total_ms`).
    pub gflops: Vec<(String, f64)>,
}

/// What [`run_gpu`] measured.
#[derive(Clone, Debug, Serialize)]
pub struct GpuBenchReport {
    /// The adapter, as a run records it.
    pub adapter: String,
    /// One row per shape and contender (backend `gpu`).
    pub results: Vec<BenchResult>,
    /// One profiled step per shape and contender.
    pub kernels: Vec<KernelRow>,
    /// True when every contender of a shape ended on the same hash chain
    /// link (the matrix kernels' shapes and the reference change no bit).
    pub bits_agree: bool,
}

impl GpuBenchReport {
    /// The per-kernel table: milliseconds per kernel per step, one column
    /// per shape and contender.
    pub fn kernel_table(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        for r in &self.kernels {
            for k in &r.profile.kernels {
                if !names.contains(&k.kernel.as_str()) {
                    names.push(&k.kernel);
                }
            }
        }
        let mut s = format!("{:<24}", "kernel (ms per step)");
        for r in &self.kernels {
            s += &format!(" | {:>27}", format!("{} {}", r.shape, r.contender.trim_start_matches("gpu ")));
        }
        s += "\n";
        for name in names.iter().copied().chain(["total"]) {
            s += &format!("{name:<24}");
            for r in &self.kernels {
                let v = if name == "total" {
                    Some(r.total_ms)
                } else {
                    r.profile.kernels.iter().find(|k| k.kernel == name).map(|k| k.ms)
                };
                s += &format!(" | {:>27}", v.map_or("-".into(), |v| format!("{v:.3}")));
            }
            s += "\n";
        }
        let mut rated: Vec<&str> = Vec::new();
        for r in &self.kernels {
            for (k, _) in &r.gflops {
                if !rated.contains(&k.as_str()) {
                    rated.push(k);
                }
            }
        }
        for name in rated {
            s += &format!("{:<24}", format!("{name} GFLOP/s"));
            for r in &self.kernels {
                let v = r.gflops.iter().find(|(k, _)| k == name).map(|(_, g)| *g);
                s += &format!(" | {:>27}", v.map_or("-".into(), |v| format!("{v:.2}")));
            }
            s += "\n";
        }
        let by: Vec<&str> = self.kernels.iter().map(|r| r.profile.by.as_str()).collect();
        s += &format!("{}; timed by {}\n", self.adapter, by.first().copied().unwrap_or("-"));
        s
    }
}

/// Measures the GPU contenders on every shape of `opts` (its CPU
/// contenders are not used), interleaved round by round as [`run`] does,
/// each on its own device; then, when `profile`, profiles `rounds` steps of
/// each kernel by kernel ([`crate::gpu::GpuEngine::profile_step`]), the
/// contenders interleaved again, and keeps each kernel's median. GFLOP/s are
/// nominal; the peak fraction is against `cores` cores of the CPU peak for a
/// software adapter (it runs on the CPU) and left out (NaN) for a hardware one.
pub async fn run_gpu(
    opts: &BenchOptions,
    contenders: &[GpuContender],
    profile: bool,
    cores: usize,
    clock: &dyn Fn() -> f64,
) -> Result<GpuBenchReport, String> {
    use crate::gpu::{Gpu, GpuEngine};
    if opts.rounds == 0 || contenders.is_empty() || opts.shapes.is_empty() {
        return Err("bench: needs at least one shape, one GPU contender and one round".into());
    }
    let mut results = Vec::new();
    let mut kernels = Vec::new();
    let mut bits_agree = true;
    let mut adapter = String::new();
    for shape in &opts.shapes {
        let mut runs = Vec::new();
        for c in contenders {
            let mut gpu = Gpu::open().await.map_err(|e| format!("bench gpu: {e}"))?;
            adapter = gpu.adapter.description.clone();
            let software = gpu.adapter.is_software();
            let fail = |e: crate::error::Error| format!("bench {} {}: {e}", shape.name(), c.name());
            if c.reference {
                gpu.use_reference_matrix_kernels().map_err(fail)?;
            } else {
                gpu.set_tiling(c.tiling).map_err(fail)?;
            }
            gpu.set_fusion(c.fused);
            let setup = std::sync::Arc::new(trainer_setup(shape, 1, 1)?);
            let state = setup.initial_state();
            let record = setup.new_record(crate::hash::weights_hash(&state.params));
            let engine = GpuEngine::new(gpu, setup, state, record.chain_head).map_err(fail)?;
            runs.push((engine, record, software));
        }
        let mut warm = f64::INFINITY;
        for (e, r, _) in runs.iter_mut() {
            gpu_steps(e, r, 1).await?;
            let t0 = clock();
            gpu_steps(e, r, 1).await?;
            warm = warm.min(clock() - t0);
        }
        let steps = ((opts.sample_ms / warm.max(1e-3)).ceil() as usize).clamp(1, 10_000);
        let mut samples = vec![Vec::new(); runs.len()];
        for _ in 0..opts.rounds {
            for (i, (e, r, _)) in runs.iter_mut().enumerate() {
                let t0 = clock();
                gpu_steps(e, r, steps).await?;
                samples[i].push((clock() - t0) / steps as f64);
            }
        }
        if runs.iter().any(|(_, r, _)| r.chain_head != runs[0].1.chain_head) {
            bits_agree = false;
        }
        // `rounds` profiled steps per contender, interleaved as the steps
        // were (so a busy spell of the machine falls on every contender).
        let mut profiles = vec![Vec::new(); runs.len()];
        for _ in 0..if profile { opts.rounds } else { 0 } {
            for (i, (e, r, _)) in runs.iter_mut().enumerate() {
                profiles[i].push(e.profile_step(r.chain_head).await.map_err(|e| format!("bench gpu profile: {e}"))?);
            }
        }
        for (i, (c, (_, r, software))) in contenders.iter().zip(runs.iter_mut()).enumerate() {
            let med = median(&samples[i]);
            let gflops = shape.nominal_flops() / (med * 1e6);
            let peak = if *software { opts.peak_gflops_per_core * cores as f64 } else { f64::NAN };
            results.push(BenchResult {
                shape: shape.name(),
                hidden: shape.hidden.clone(),
                batch: shape.batch,
                contender: c.name(),
                backend: "gpu".into(),
                threads: if *software { cores } else { 1 },
                chunks: 1,
                kernels: c.kernels(),
                steps_per_sample: steps,
                median_ms: med,
                min_ms: samples[i].iter().copied().fold(f64::INFINITY, f64::min),
                samples_ms: samples[i].clone(),
                gflops,
                peak_fraction: gflops / peak,
                cpu_ms: None,
                gflops_per_core: None,
                peak_fraction_per_core: None,
                chain_head: r.chain_head.to_string(),
                steps: r.step,
            });
            if let Some(first) = profiles[i].first() {
                // Per kernel the median of the profiled steps.
                let profiles = &profiles[i];
                let mut p = first.clone();
                for (at, k) in p.kernels.iter_mut().enumerate() {
                    k.ms = median(&profiles.iter().map(|q| q.kernels[at].ms).collect::<Vec<_>>());
                }
                p.by = format!("{}, median of {} steps", p.by, profiles.len());
                let total_ms: f64 = p.kernels.iter().map(|k| k.ms).sum();
                let mut gflops: Vec<(String, f64)> = p
                    .kernels
                    .iter()
                    .filter_map(|k| Some((k.kernel.clone(), shape.kernel_flops(&k.kernel)? / (k.ms.max(1e-9) * 1e6))))
                    .collect();
                gflops.push(("step".into(), shape.nominal_flops() / (total_ms.max(1e-9) * 1e6)));
                kernels.push(KernelRow { shape: shape.name(), contender: c.name(), profile: p, total_ms, gflops });
            }
        }
    }
    Ok(GpuBenchReport { adapter, results, kernels, bits_agree })
}

/// Runs `n` steps of a GPU run (read-backs every
/// [`crate::spec::GPU_READBACK_STEPS`] and at the end, as a run does).
async fn gpu_steps(e: &mut crate::gpu::GpuEngine, rec: &mut crate::record::RunRecord, n: usize) -> Result<(), String> {
    let mut done = 0;
    while done < n {
        let c = e.run_block(rec, n - done).await.map_err(|e| format!("a GPU benchmark run failed: {e}"))?;
        if let Some(s) = &rec.stopped {
            return Err(format!("a benchmark run stopped: {}", s.reason));
        }
        if c == 0 {
            return Err(format!("a GPU benchmark run ended after {done} of {n} steps"));
        }
        done += c;
    }
    Ok(())
}
