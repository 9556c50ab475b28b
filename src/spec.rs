//! The spec: every constant and order that two implementations of the engine
//! (CPU native, CPU wasm, and the GPU kernels to come) must agree on.
//!
//! Code elsewhere cites these items by name (`spec::MATMUL_ORDER`, ...).
//! Changing any of them changes the bits a run produces: bump
//! [`KERNEL_VERSION`] and regenerate the golden trajectory
//! (`REPROLAB_REGENERATE_GOLDEN=1 cargo test --release --test golden`).

/// Version of the arithmetic: the reduction orders, RNG addressing and hash
/// below. A manifest records it; a different kernel version may legitimately
/// give different bits for the same configuration. This build's current
/// engine version; every version in [`ENGINE_VERSIONS`] can still be run
/// (`--engine-version V`, the `engine_version` setting).
pub const KERNEL_VERSION: u32 = 2;

/// The engine versions this build carries. They compute the same maths and
/// differ only in the order of the batch-row sums (weight gradient, bias
/// gradient, batch loss), as a library upgrade that reorders a reduction
/// does: version 1 sums rows ascending, version 2 descending.
pub const ENGINE_VERSIONS: [u32; 2] = [1, 2];

/// Version of the manifest JSON schema this build writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// Version of the run-configuration schema (the keys in [`crate::config`]).
pub const CONFIG_VERSION: u32 = 1;

/// The crate version, recorded in manifests next to [`KERNEL_VERSION`].
pub const CRATE_VERSION: &str = env!("CARGO_PKG_VERSION");

// ---------------------------------------------------------------------------
// Randomness (DETERMINISM.md section 5)
// ---------------------------------------------------------------------------

/// The named random streams. Each one has its own 64-bit seed (by default the
/// run's master seed) and its own ChaCha20 key derived from (name, seed), so
/// re-seeding one stream never moves the draws of another.
pub const STREAM_NAMES: [&str; 4] = ["init", "shuffle", "dropout", "data"];

/// Domain-separation prefix of the stream key derivation:
/// `key = SHA-256(STREAM_KEY_PREFIX || name || ":" || seed as u64 little-endian)`.
pub const STREAM_KEY_PREFIX: &str = "reprolab/stream/v1/";

/// ChaCha rounds used by every stream (`rand_chacha::ChaCha20Rng`; the GPU
/// twin implements the same block function). Layout as in Bernstein's
/// original: 64-bit block counter in words 12-13, 64-bit stream id ("nonce")
/// in words 14-15; a word position `p` is word `p % 16` of block `p / 16`.
pub const CHACHA_ROUNDS: u32 = 20;

/// `init` stream addressing: stream id = layer index, word position = index of
/// the weight in that layer's row-major `[fan_in x fan_out]` matrix. Biases
/// start at +0.0 and draw nothing.
///
/// The weight is `(2 * u - 1) * limit`, `u = (word >> 8) * 2^-24` (exact), with
/// `limit = sqrt(6 / fan_in)` for ReLU layers (He uniform) and
/// `sqrt(6 / (fan_in + fan_out))` for tanh layers and the output layer
/// (Glorot uniform); `sqrt` and `/` are IEEE correctly rounded in f32.
pub const INIT_ADDRESSING: &str = "stream=layer, word=row*fan_out+col";

/// `shuffle` stream addressing: stream id [`SPLIT_STREAM_ID`] draws the
/// train/validation split (a Fisher-Yates permutation of all examples; the
/// first `round(n * val_fraction)` entries are the validation set, in that
/// order); stream id `EPOCH_STREAM_BASE + epoch` draws the permutation of the
/// training set for that epoch. Permutations are Fisher-Yates from the last
/// index down, `j` uniform in `0..=i` by Lemire's multiply-and-reject on
/// consecutive 32-bit words of the stream.
pub const SPLIT_STREAM_ID: u64 = 0;
/// See [`SPLIT_STREAM_ID`].
pub const EPOCH_STREAM_BASE: u64 = 1;

/// `dropout` stream addressing for the mask of (step, layer, unit, example):
/// stream id = `(layer << DROPOUT_LAYER_SHIFT) | step`, word position =
/// `example * width + unit`, where `example` is the row within the batch and
/// `width` the layer's width. The unit is kept when `word >= threshold`, with
/// `threshold = round(p * 2^32)` computed in f64 once on the CPU, so the keep
/// test is integer-only on every backend. Kept activations are multiplied by
/// `scale = 1 / (1 - p)` (f32, IEEE division on the CPU, passed to kernels).
pub const DROPOUT_LAYER_SHIFT: u32 = 40;

/// `data` stream: draws the synthetic 2-D data sets; stream id = 0, words in
/// generation order (see [`crate::data`]).
pub const DATA_STREAM_ID: u64 = 0;

// ---------------------------------------------------------------------------
// Reduction orders (every float sum in the engine)
// ---------------------------------------------------------------------------
//
// All arithmetic is IEEE-754 binary32, round to nearest even, products and
// sums unfused (never `mul_add`), subnormals kept. Each sum below starts from
// +0.0 and adds its terms one at a time in the order given: a single running
// sum per output, so the order does not depend on tiling, vector width or
// workgroup size.
//
//   out[r][j] = ((((0 + t0) + t1) + t2) + ... ) + t(K-1)
//               └── one accumulator, k ascending ──┘
//
// A term whose product is exactly zero because its left factor is +-0.0 may be
// skipped (the CPU skips zero activations): adding +-0.0 to a running sum that
// started at +0.0 never changes its bits, because in round-to-nearest the
// running sum can never be -0.0.

/// Forward matmul: `z[r][j] = sum_k a[r][k] * w[k][j]` (k ascending), then
/// `z[r][j] = z[r][j] + b[j]` (bias added after the sum).
pub const MATMUL_ORDER: &str = "z[r][j] = (sum over k ascending of a[r][k]*w[k][j]) + b[j]";

/// Weight gradient: `dw[k][j] = sum_r a[r][k] * d[r][j]`. Bias gradient:
/// `db[j] = sum_r d[r][j]`. Rows ascending in engine version 1, descending in
/// version 2 ([`ENGINE_VERSIONS`]); the batch loss sum follows the same order.
///
/// With `chunks = M > 1` (the CPU threads setting) the batch is cut into M
/// contiguous chunks, chunk c holding rows `c*B/M .. (c+1)*B/M` (floor); each
/// chunk sums its own rows in the version's order into a partial result, and
/// the partials are combined as `((p0 + p1) + p2) + ...` in chunk order
/// (pinned) or in order of arrival (`cpu_threads` free). The result depends
/// on M, never on the number of threads.
pub const GRAD_ORDER: &str = "dw[k][j] = sum over rows r of a[r][k]*d[r][j]; db[j] = sum over rows r of d[r][j]; \
     rows ascending in engine version 1, descending in version 2; chunks combined in chunk (or arrival) order";

/// Back-propagated error: `g[r][k] = sum_j d[r][j] * w[k][j]` (j ascending).
pub const BACKPROP_ORDER: &str = "g[r][k] = sum over j ascending of d[r][j]*w[k][j]";

/// Softmax cross-entropy per example, classes c ascending:
/// `m = max_c z[c]` (first maximum), `e[c] = exp(z[c] - m)`,
/// `s = sum_c e[c]`, `p[c] = e[c] / s`, `loss = ln(s) - (z[y] - m)`.
/// The gradient is `d[c] = (p[c] - [c == y]) * inv_batch`, with
/// `inv_batch = 1 / batch_size` (f32 division once on the CPU).
pub const SOFTMAX_ORDER: &str = "m=max; e=exp(z-m); s=sum c ascending; p=e/s; loss=ln(s)-(z[y]-m)";

/// Batch loss: `(sum_r loss[r], in the version's row order) * inv_batch`. Validation loss:
/// `(sum over validation examples in split order of loss) / n_val`, the sum in
/// f64 on the CPU and in f32 on the GPU (`shaders/val_metrics.wgsl`; the
/// validation loss is reported, never hashed); validation error: integer
/// count of examples whose first maximal logit is not the label, divided by
/// `n_val` in f64 (exact on both).
pub const LOSS_ORDER: &str = "batch loss = (sum over rows in the version's order) * inv_batch";

/// Optimizer, per parameter, in this order (SGD with momentum, PyTorch form):
/// `g = g + weight_decay * w` (weights only, not biases),
/// `v = momentum * v + g`, `w = w - learning_rate * v`.
pub const OPTIMIZER_ORDER: &str = "g+=wd*w (weights only); v=mu*v+g; w=w-lr*v";

// ---------------------------------------------------------------------------
// Parameter layout and the weight hash (DETERMINISM.md section 6)
// ---------------------------------------------------------------------------
//
// All parameters live in one flat f32 buffer, layer by layer: W0 (row-major
// [in x out]), b0, W1, b1, ... The optimizer's velocities use the same layout.
// The GPU keeps the same layout in one storage buffer.
//
// Weight hash, 64 bits as two independent 32-bit lanes (lo, hi), computed from
// the f32 bit patterns as u32 words with 32-bit integer operations only:
//
//   words:   w0 w1 ... w1023 | w1024 ... w2047 | ... | ...w(n-1)
//   chunks:  └── leaf 0 ────┘ └── leaf 1 ─────┘       └ leaf C-1 (short) ┘
//   leaf c = (murmur3_32(words of chunk c, seed = LANE_SEED ^ c) per lane)
//   root   = murmur3_32(leaf 0, leaf 1, ..., leaf C-1, seed = LANE_SEED ^ n) per lane
//
// Leaves are independent (one GPU workgroup each); the root is a short
// sequential pass over C values. murmur3_32 here is the standard x86_32
// variant: per word k: k*=0xcc9e2d51; k=rotl(k,15); k*=0x1b873593; h^=k;
// h=rotl(h,13); h=h*5+0xe6546b64; finalised with h^=len_bytes and fmix32.

/// Words per leaf of the weight hash.
pub const HASH_CHUNK_WORDS: usize = 1024;
/// Seeds of the two 32-bit lanes of every hash.
pub const HASH_LANE_SEEDS: [u32; 2] = [0x5265_7072, 0x6f6c_6162];

/// The hash chain: `link[0] = mix(CHAIN_GENESIS, hash(initial weights))`,
/// `link[t] = mix(link[t-1], hash(weights after step t))` where `mix` is
/// murmur3_32 per lane over the words (prev.lo, prev.hi, cur.lo, cur.hi). The
/// manifest's `hash_chain` lists link[1..=steps], one per step.
pub const CHAIN_GENESIS: u64 = 0x7265_7072_6f6c_6162;

// ---------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------

/// Digits pixels are integers 0..=16 scaled by `1/16` (exact in f32).
pub const DIGITS_PIXEL_SCALE: f32 = 1.0 / 16.0;

/// Size of every synthetic 2-D data set.
pub const SYNTHETIC_SAMPLES: usize = 600;

// ---------------------------------------------------------------------------
// Determinism levels (DETERMINISM.md section 2)
// ---------------------------------------------------------------------------

/// The level a run asks for and the level it is granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DeterminismLevel {
    /// Some source is free: runs are expected to differ.
    #[serde(rename = "none")]
    None,
    /// Everything pinned, fixed arithmetic order: the same bits on the same
    /// stack every time.
    #[serde(rename = "run-to-run")]
    RunToRun,
    /// The same bits on every stack that passes the conformance probe.
    #[serde(rename = "exact")]
    Exact,
}

impl DeterminismLevel {
    /// The name used in manifests and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            DeterminismLevel::None => "none",
            DeterminismLevel::RunToRun => "run-to-run",
            DeterminismLevel::Exact => "exact",
        }
    }
}

// ---------------------------------------------------------------------------
// GPU (src/gpu.rs and shaders/)
// ---------------------------------------------------------------------------

/// Threads per workgroup of the one-dimensional kernels.
pub const GPU_WG: u32 = 64;
/// Side of the square workgroups (and tiles) of the matrix kernels.
pub const GPU_TILE: u32 = 16;
/// Most workgroups along x in one dispatch; larger 1-D dispatches spill into y.
pub const GPU_MAX_GROUPS_X: u32 = 65_535;
/// Steps between two read-backs of the metrics, hashes and weights: losses
/// and hash-chain links of up to this many steps wait in rings on the GPU.
pub const GPU_READBACK_STEPS: usize = 64;
/// Rows per partial sum of the non-deterministic (atomic) weight gradient:
/// the default batch of 32 gives 8 partial sums per output racing to add.
pub const GPU_ATOMIC_CHUNK_ROWS: u32 = 4;

/// How the GPU reduces: the fixed order above, or float atomics whose order
/// follows the scheduler (the "GPU reduction order" switch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuReduction {
    Fixed,
    Atomic,
}

/// Activation mode codes the GPU kernels take (`bias_activation.wgsl`,
/// `activation_backward.wgsl`): no activation (the output layer's logits).
pub const ACT_NONE: u32 = 0;
/// Mode code of ReLU: `z > 0 ? z : +0.0`.
pub const ACT_RELU: u32 = 1;
/// Mode code of tanh.
pub const ACT_TANH: u32 = 2;

/// Words in one ChaCha block: the dropout kernel draws one block per
/// invocation, so it covers this many (example, unit) masks.
pub const CHACHA_BLOCK_WORDS: u32 = 16;

/// Where steps run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Cpu,
    Gpu,
}

impl BackendKind {
    /// `"cpu"` or `"gpu"`, as manifests and the APIs write it.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Gpu => "gpu",
        }
    }
}

impl BackendKind {
    /// Same as [`BackendKind::name`].
    pub fn as_str(self) -> &'static str {
        self.name()
    }
}

impl PartialEq<&str> for BackendKind {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
