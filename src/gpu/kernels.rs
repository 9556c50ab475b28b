//! The kernels: one WGSL file per kernel in `shaders/`, the prelude of
//! constants injected from [`crate::spec`] (so every number shared with the
//! CPU lives there), the typed uniforms and the dispatch shapes.

use crate::spec;

/// Every kernel: (name, source). One kernel per file.
pub(crate) const KERNELS: [(&str, &str); 20] = [
    ("gather", include_str!("../../shaders/gather.wgsl")),
    ("matmul", include_str!("../../shaders/matmul.wgsl")),
    ("bias_activation", include_str!("../../shaders/bias_activation.wgsl")),
    ("dropout", include_str!("../../shaders/dropout.wgsl")),
    ("softmax_xent", include_str!("../../shaders/softmax_xent.wgsl")),
    ("loss_sum", include_str!("../../shaders/loss_sum.wgsl")),
    ("softmax_xent_loss", include_str!("../../shaders/softmax_xent_loss.wgsl")),
    ("val_metrics", include_str!("../../shaders/val_metrics.wgsl")),
    ("matmul_grad", include_str!("../../shaders/matmul_grad.wgsl")),
    ("matmul_grad_atomic", include_str!("../../shaders/matmul_grad_atomic.wgsl")),
    ("bias_grad", include_str!("../../shaders/bias_grad.wgsl")),
    ("matmul_grad_sgd", include_str!("../../shaders/matmul_grad_sgd.wgsl")),
    ("bias_grad_sgd", include_str!("../../shaders/bias_grad_sgd.wgsl")),
    ("matmul_backprop", include_str!("../../shaders/matmul_backprop.wgsl")),
    ("activation_backward", include_str!("../../shaders/activation_backward.wgsl")),
    ("sgd", include_str!("../../shaders/sgd.wgsl")),
    ("hash_leaves", include_str!("../../shaders/hash_leaves.wgsl")),
    ("hash_root", include_str!("../../shaders/hash_root.wgsl")),
    ("exact_probe", include_str!("../../shaders/exact_probe.wgsl")),
    ("exact_eval", include_str!("../../shaders/exact_eval.wgsl")),
];

const LIB_MURMUR: &str = include_str!("../../shaders/lib_murmur.wgsl");

/// The `exact` level's fenced operations and pinned functions (`ex_*`),
/// available to every kernel; unused by the others.
const LIB_EXACT: &str = include_str!("../../shaders/lib_exact.wgsl");

/// The float operations of the kernels at `run-to-run`: the plain
/// operations and builtins (the kernels' bits are those of the plain code).
const F_RUN_TO_RUN: &str = "fn f_init(zero: u32) {}\n\
fn f_add(a: f32, b: f32) -> f32 { return a + b; }\n\
fn f_sub(a: f32, b: f32) -> f32 { return a - b; }\n\
fn f_mul(a: f32, b: f32) -> f32 { return a * b; }\n\
fn f_st(v: f32) -> f32 { return v; }\n\
fn f_exp(x: f32) -> f32 { return exp(x); }\n\
fn f_ln(x: f32) -> f32 { return log(x); }\n\
fn f_tanh(x: f32) -> f32 { return tanh(x); }\n\
fn f_div(a: f32, b: f32) -> f32 { return a / b; }\n";

/// The float operations of the kernels at `exact` (spec:
/// [`spec::EXACT_ARITHMETIC`]): fenced `+ - *` under the grid rule, `tiny`
/// on every stored value, the pinned functions of `lib_exact.wgsl`.
const F_EXACT: &str = "fn f_init(zero: u32) { ex_init(zero); }\n\
fn f_add(a: f32, b: f32) -> f32 { return ex_addg(a, b); }\n\
fn f_sub(a: f32, b: f32) -> f32 { return ex_subg(a, b); }\n\
fn f_mul(a: f32, b: f32) -> f32 { return ex_mulg(a, b); }\n\
fn f_st(v: f32) -> f32 { return ex_tiny(v); }\n\
fn f_exp(x: f32) -> f32 { return ex_exp(x); }\n\
fn f_ln(x: f32) -> f32 { return ex_ln(x); }\n\
fn f_tanh(x: f32) -> f32 { return ex_tanh(x); }\n\
fn f_div(a: f32, b: f32) -> f32 { return ex_div(a, b); }\n";

/// The matrix kernels (forward, weight gradient, back-propagation, and the
/// weight gradient fused with the update): they are register-blocked and
/// compiled behind [`Tiling::consts`] as well as the prelude. The fused one
/// (`matmul_grad_sgd.wgsl`) exists only unstaged and is used only with
/// `bk` = 0 ([`crate::gpu::Gpu::fuses_grad_update`]).
pub(crate) const MATRIX_KERNELS: [&str; 4] = ["matmul", "matmul_grad", "matmul_backprop", "matmul_grad_sgd"];

/// The matrix kernels as they were before register blocking (one output per
/// invocation; `shaders/reference/`): the same sums in the same order, so
/// the same bits, kept as the benchmark's "before" and as a second witness
/// of those bits ([`crate::gpu::Gpu::use_reference_matrix_kernels`]).
pub(crate) const REFERENCE_MATRIX_KERNELS: [(&str, &str); 3] = [
    ("matmul", include_str!("../../shaders/reference/matmul.wgsl")),
    ("matmul_grad", include_str!("../../shaders/reference/matmul_grad.wgsl")),
    ("matmul_backprop", include_str!("../../shaders/reference/matmul_backprop.wgsl")),
];

/// The register-blocked matrix kernels with no workgroup memory and no
/// barrier (operands read straight from the storage buffers): the tiling's
/// `bk` = 0.
pub(crate) const DIRECT_MATRIX_KERNELS: [(&str, &str); 3] = [
    ("matmul", include_str!("../../shaders/matmul_direct.wgsl")),
    ("matmul_grad", include_str!("../../shaders/matmul_grad_direct.wgsl")),
    ("matmul_backprop", include_str!("../../shaders/matmul_backprop_direct.wgsl")),
];

/// The shape of the register-blocked matrix kernels: workgroups of `wx` x
/// `wy` invocations, each holding a 4 x 4 block of outputs, staging
/// `bk`-wide tiles of the summed dimension in workgroup memory (two
/// barriers per tile), or with `bk` = 0 reading their operands straight
/// from the storage buffers (`*_direct.wgsl`: no workgroup memory, no
/// barrier). Any shape gives the same bits (every output is one
/// running sum in the spec's order); [`Tiling::DEFAULT`] is the measured
/// choice (README, "GPU kernels").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tiling {
    pub wx: u32,
    pub wy: u32,
    pub bk: u32,
}

impl Tiling {
    /// The shape the kernels use unless a benchmark asks for another
    /// (spec: [`spec::GPU_MM_TILING`]).
    pub const DEFAULT: Tiling =
        Tiling { wx: spec::GPU_MM_TILING[0], wy: spec::GPU_MM_TILING[1], bk: spec::GPU_MM_TILING[2] };

    /// Outputs per invocation along each side.
    pub const BLOCK: u32 = 4;

    /// Parses `WXxWYxBK`, e.g. `16x16x16` (`8x8x0`: no staging); refuses shapes beyond WebGPU's
    /// guaranteed limits (256 invocations, 16 KiB of workgroup memory).
    pub fn parse(text: &str) -> std::result::Result<Tiling, String> {
        let bad = || format!("GPU tiling: expected WXxWYxBK like 16x16x16, got {text:?}");
        let v: Vec<u32> = text.split('x').map(|p| p.trim().parse().ok()).collect::<Option<_>>().ok_or_else(bad)?;
        let [wx, wy, bk] = v[..] else { return Err(bad()) };
        let t = Tiling { wx, wy, bk };
        if wx == 0 || wy == 0 {
            return Err(bad());
        }
        if wx * wy > 256 {
            return Err(format!("GPU tiling {text}: {} invocations per workgroup, at most 256", wx * wy));
        }
        if t.workgroup_bytes() > 16_384 {
            return Err(format!("GPU tiling {text}: {} bytes of workgroup memory, at most 16384", t.workgroup_bytes()));
        }
        Ok(t)
    }

    /// `16x16x16`.
    pub fn name(&self) -> String {
        format!("{}x{}x{}", self.wx, self.wy, self.bk)
    }

    /// Workgroup memory of one workgroup: the two staged tiles.
    pub fn workgroup_bytes(&self) -> u32 {
        4 * self.bk * Self::BLOCK * (self.wx + self.wy)
    }

    /// The constants the matrix kernels read (`MM_WX`, `MM_WY`, `MM_BK`).
    pub(crate) fn consts(&self) -> String {
        format!(
            "const MM_WX: u32 = {}u;\nconst MM_WY: u32 = {}u;\nconst MM_BK: u32 = {}u;\n",
            self.wx, self.wy, self.bk
        )
    }

    /// Workgroups of a dispatch over `cols` x `rows` outputs.
    pub(crate) fn groups(&self, cols: usize, rows: usize) -> (u32, u32) {
        ((cols as u32).div_ceil(Self::BLOCK * self.wx).max(1), (rows as u32).div_ceil(Self::BLOCK * self.wy).max(1))
    }
}

/// The kernels an `exact` run compiles a second time with [`prelude_exact`]
/// (every kernel of a training step; not the probe and evaluation kernels).
pub(crate) fn exact_kernels() -> impl Iterator<Item = (&'static str, &'static str)> {
    KERNELS.into_iter().filter(|(name, _)| !name.starts_with("exact_"))
}

/// The prelude prepended to every kernel at `run-to-run`: the spec's
/// constants and the two shared structs, so every number lives in `spec.rs`,
/// and the float operations `f_*` as the plain ones.
pub fn prelude() -> String {
    format!("{}{F_RUN_TO_RUN}", prelude_common())
}

/// The prelude of the `exact` kernels: as [`prelude`], with the `f_*`
/// operations of the `exact` level.
pub fn prelude_exact() -> String {
    format!("{}{F_EXACT}", prelude_common())
}

fn prelude_common() -> String {
    format!(
        "const WG: u32 = {wg}u;\nconst TILE: u32 = {tile}u;\nconst MAX_GROUPS_X: u32 = {mgx}u;\n\
         const HASH_CHUNK_WORDS: u32 = {chunk}u;\nconst HASH_SEED_LO: u32 = {lo}u;\nconst HASH_SEED_HI: u32 = {hi}u;\n\
         const CHACHA_DOUBLE_ROUNDS: u32 = {dr}u;\nconst CHACHA_BLOCK_WORDS: u32 = {cbw}u;\n\
         const DROPOUT_LAYER_SHIFT: u32 = {dls}u;\nconst ACT_NONE: u32 = {an}u;\nconst ACT_RELU: u32 = {ar}u;\n\
         const ACT_TANH: u32 = {at}u;\n\
         struct Dims {{ rows: u32, k: u32, n: u32, mode: u32, off_a: u32, off_b: u32, off_c: u32, off_d: u32, \
         f0: f32, f1: f32, f2: f32, f3: f32, u0: u32, u1: u32, u2: u32, u3: u32 }}\n\
         struct Step {{ t: u32, batch_offset: u32, slot: u32, val_slot: u32 }}\n{LIB_MURMUR}\n{LIB_EXACT}\n",
        wg = spec::GPU_WG,
        tile = spec::GPU_TILE,
        mgx = spec::GPU_MAX_GROUPS_X,
        chunk = spec::HASH_CHUNK_WORDS,
        lo = spec::HASH_LANE_SEEDS[0],
        hi = spec::HASH_LANE_SEEDS[1],
        dr = spec::CHACHA_ROUNDS / 2,
        cbw = spec::CHACHA_BLOCK_WORDS,
        dls = spec::DROPOUT_LAYER_SHIFT,
        an = spec::ACT_NONE,
        ar = spec::ACT_RELU,
        at = spec::ACT_TANH,
    )
}

/// The uniform of one dispatch site (layout: `struct Dims` in the prelude):
/// sizes, offsets into buffers, four float and four integer parameters.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Dims {
    pub rows: u32,
    pub k: u32,
    pub n: u32,
    pub mode: u32,
    pub off_a: u32,
    pub off_b: u32,
    pub off_c: u32,
    pub off_d: u32,
    pub f: [f32; 4],
    pub u: [u32; 4],
}

impl Dims {
    /// The uniform's bytes.
    pub fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }

    /// The uniform as 16 words (the probe runner's form).
    pub fn words(&self) -> [u32; 16] {
        bytemuck::cast(*self)
    }
}

/// The per-step uniform (layout: `struct Step` in the prelude).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct StepUniform {
    /// The step (0-based).
    pub t: u32,
    /// Position of the step's first example in the epoch's rows.
    pub batch_offset: u32,
    /// Ring slot of the step's loss and hashes.
    pub slot: u32,
    /// Ring slot of the step's validation metrics.
    pub val_slot: u32,
}

impl StepUniform {
    /// The uniform's bytes.
    pub fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
}

/// Bytes of a slice of plain values.
pub(crate) fn bytes_of<T: bytemuck::Pod>(v: &[T]) -> &[u8] {
    bytemuck::cast_slice(v)
}

/// f32 values from little-endian bytes.
pub(crate) fn bytes_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// u32 values from little-endian bytes.
pub(crate) fn bytes_u32(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// One recorded dispatch of a step.
pub(crate) struct Dispatch {
    pub kernel: &'static str,
    pub bind: wgpu::BindGroup,
    pub groups: (u32, u32),
}

pub(crate) fn groups_1d(threads: usize) -> (u32, u32) {
    let g = (threads as u32).div_ceil(spec::GPU_WG).max(1);
    let x = g.min(spec::GPU_MAX_GROUPS_X);
    (x, g.div_ceil(x))
}

pub(crate) fn groups_2d(cols: usize, rows: usize) -> (u32, u32) {
    ((cols as u32).div_ceil(spec::GPU_TILE).max(1), (rows as u32).div_ceil(spec::GPU_TILE).max(1))
}
