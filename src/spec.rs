//! The spec: every rule two implementations of the engine (CPU native, CPU
//! wasm, the GPU kernels, or a program written from this text alone) must
//! follow to produce the same bits, step by step.
//!
//! Code elsewhere cites these items by name (`spec::MATMUL_ORDER`, ...).
//! Changing any rule changes the bits a run produces: bump
//! [`KERNEL_VERSION`] and regenerate the golden trajectory
//! (`REPROLAB_REGENERATE_GOLDEN=1 cargo test --release --test golden`).
//!
//! The spec is checked the way an outsider would use it: an independent
//! implementation in Python with numpy (`tests/reference/reprolab_ref.py`,
//! `make test-reference`) reads a manifest and retraces the run from these
//! rules, every loss bit and every hash-chain link.
//!
//! # Retracing a run: the whole procedure
//!
//! What a run's manifest records (`docs/MANIFEST.md`) is enough; each rule is
//! detailed at the item named in brackets.
//!
//! 1. Settings. Read `config` (every key's `value`) and `seeds` (decimal
//!    strings, one u64 per stream). Real-valued settings are f32 values
//!    ([`SETTINGS_ARE_F32`]); `engine_version` picks the row order
//!    ([`ENGINE_VERSIONS`]); `data.version` is the data version trained on.
//! 2. Data ([`DIGITS_PIXEL_SCALE`], [`DATA_STREAM_ID`]): `n` examples, each
//!    `dim` f32 features and a label; check the SHA-256 fingerprint.
//! 3. Split ([`SPLIT_STREAM_ID`]): a permutation of `0..n` from the `shuffle`
//!    stream; the first `n_val` entries validate, the rest train, in that
//!    order.
//! 4. Network ([`PARAMETER_LAYOUT`]): widths `dim, hidden..., classes`; initial
//!    weights from the `init` stream ([`INIT_ADDRESSING`]), biases +0.0,
//!    velocities +0.0. `initial_weights_hash` is the weight hash of these
//!    ([`HASH_CHUNK_WORDS`]); the chain starts at
//!    `link[0] = mix(CHAIN_GENESIS, initial hash)` ([`CHAIN_GENESIS`]).
//! 5. For every step `t = 0, 1, ...` (0-based here; the manifest's step
//!    numbers and `hash_chain[t]` = link `t + 1` count from 1):
//!    - the batch: `B` example rows of epoch `t div S`, position `t mod S`
//!      ([`EPOCH_STREAM_BASE`]);
//!    - the dropout masks of step `t` ([`DROPOUT_LAYER_SHIFT`]);
//!    - per chunk of the batch ([`GRAD_ORDER`]): forward ([`MATMUL_ORDER`],
//!      [`ACTIVATIONS`]), softmax cross-entropy ([`SOFTMAX_ORDER`]), the
//!      chunk's loss sum ([`LOSS_ORDER`]), backward ([`BACKWARD_ORDER`],
//!      [`GRAD_ORDER`], [`BACKPROP_ORDER`]);
//!    - combine the chunks; `train_loss[t] = loss_sum * inv_batch`; stop if it
//!      is not finite ([`NON_FINITE_STOP`]);
//!    - SGD ([`OPTIMIZER_ORDER`]); stop if a weight or velocity is not finite;
//!    - `link[t+1] = mix(link[t], hash(weights))`;
//!    - after step `t + 1 = s` with `s % eval_every == 0` or `s == steps`, a
//!      validation point ([`LOSS_ORDER`]).
//! 6. `weights_hash` is the hash of the final weights; manifest numbers are
//!    read as in [`MANIFEST_NUMBERS`].
//!
//! # Arithmetic
//!
//! All float arithmetic is IEEE-754 binary32 (f32): every `+ - * /` is
//! rounded once to nearest, ties to even; products and sums are never fused
//! (never `mul_add`/FMA) nor reassociated; subnormals are kept (no flush to
//! zero); `sqrt` (initialisation only) is the correctly rounded f32 square
//! root. `exp`, `ln` and `tanh` are the `libm` crate's `expf`, `logf` and
//! `tanhf` at version [`LIBM_VERSION`] ([`LIBM_VERSION`] gives the algorithms).
//! A few values are f64 on purpose (the validation loss sum, the dropout
//! threshold, the number of validation examples): each place says so.
//!
//! With the setting `level=exact` the arithmetic is [`EXACT_ARITHMETIC`]
//! instead: pinned `exp`, `ln`, `tanh` and division built from correctly
//! rounded f32 operations, and the grid rule [`EXACT_TINY_EXP`] in place of
//! gradual underflow. A manifest without a `level` setting is `run-to-run`.

/// Version of the arithmetic: the reduction orders, RNG addressing and hash
/// below. A manifest records it; a different kernel version may legitimately
/// give different bits for the same configuration. This build's current
/// engine version; every version in [`ENGINE_VERSIONS`] can still be run
/// (`--engine-version V`, the `engine_version` setting).
pub const KERNEL_VERSION: u32 = 2;

/// The engine versions this build carries. They compute the same maths and
/// differ only in the order of the batch-row sums (weight gradient, bias
/// gradient, batch loss), as a library upgrade that reorders a reduction
/// does: version 1 sums rows ascending, version 2 (and any version >= 2)
/// descending. Every other sum (matmul, back-propagation, softmax, chunk
/// combination) has the same order in both. The manifest's `engine_version`
/// is the version the run used (with the `engine_version` source free, the
/// build's current one, recorded).
pub const ENGINE_VERSIONS: [u32; 2] = [1, 2];

/// Version of the manifest JSON schema this build writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// Version of the run-configuration schema (the keys in [`crate::config`]).
pub const CONFIG_VERSION: u32 = 1;

/// The crate version, recorded in manifests next to [`KERNEL_VERSION`].
pub const CRATE_VERSION: &str = env!("CARGO_PKG_VERSION");

// ---------------------------------------------------------------------------
// Randomness: named streams, counter-addressed
// ---------------------------------------------------------------------------

/// The named random streams. Each one has its own 64-bit seed (by default the
/// run's master seed; a stream set free gets a fresh seed, recorded in the
/// manifest's `seeds`) and its own ChaCha20 key derived from (name, seed), so
/// re-seeding one stream never moves the draws of another.
pub const STREAM_NAMES: [&str; 4] = ["init", "shuffle", "dropout", "data"];

/// Domain-separation prefix of the stream key derivation:
/// `key = SHA-256(STREAM_KEY_PREFIX || name || ":" || seed as u64 little-endian)`
/// (ASCII bytes, no terminator; the 32-byte digest is the ChaCha20 key).
pub const STREAM_KEY_PREFIX: &str = "reprolab/stream/v1/";

/// ChaCha rounds used by every stream (`rand_chacha::ChaCha20Rng` seeded with
/// the key; `src/chacha.rs` and the WGSL twin implement the same block
/// function). State: words 0-3 the constants `0x61707865 0x3320646e
/// 0x79622d32 0x6b206574`, words 4-11 the key read as eight little-endian u32,
/// words 12-13 the 64-bit block counter (low word first), words 14-15 the
/// 64-bit stream id (low word first). 20 rounds = 10 double rounds (columns
/// (0,4,8,12) (1,5,9,13) (2,6,10,14) (3,7,11,15), then diagonals (0,5,10,15)
/// (1,6,11,12) (2,7,8,13) (3,4,9,14)); quarter round `a+=b; d^=a; d<<<=16;
/// c+=d; b^=c; b<<<=12; a+=b; d^=a; d<<<=8; c+=d; b^=c; b<<<=7`; the input
/// state is added word by word to the output. Word position `p` of stream id
/// `s` is word `p % 16` of block `p / 16` of stream `s`.
pub const CHACHA_ROUNDS: u32 = 20;

/// `init` stream addressing: stream id = layer index `l` (0-based, the output
/// layer included), word position = index of the weight in that layer's
/// row-major `[fan_in x fan_out]` matrix (`row * fan_out + col`). Biases start
/// at +0.0 and draw nothing.
///
/// The weight is `(u * 2 - 1) * limit` in f32, with `u = (word >> 8) * 2^-24`
/// (the top 24 bits; exact, and `u * 2 - 1` is exact too), and
/// `limit = sqrt(6 / fan_in)` for hidden layers with ReLU (He uniform),
/// `sqrt(6 / (fan_in + fan_out))` for hidden layers with tanh and for the
/// output layer (Glorot uniform); `fan_in`, `fan_out` converted to f32, `+`,
/// `/` and `sqrt` f32 and correctly rounded.
pub const INIT_ADDRESSING: &str = "stream=layer, word=row*fan_out+col";

/// `shuffle` stream, the split: stream id [`SPLIT_STREAM_ID`] draws a
/// permutation of all `n` example indices (data-set rows). The first
/// `n_val = round(n * val_fraction)` entries are the validation set, in that
/// order; the remaining `n - n_val` are the training set, in that order
/// (`train[i]`). `n * val_fraction` is computed in f64 from the f32 setting,
/// `round` is halfway-away-from-zero (Rust's `f64::round`; for `digits@1`,
/// 1797 * 0.2 gives 359 validation examples), capped at `n`.
///
/// Every permutation of the engine is Fisher-Yates from the last index down:
/// `p = [0, 1, ..., n-1]`; for `i = n-1, n-2, ..., 1`: `j = below(i + 1)`,
/// swap `p[i]` and `p[j]`. `below(m)` draws from consecutive 32-bit words of
/// the permutation's stream id, starting at word position 0 and continuing
/// across all `i`, by Lemire's multiply-and-reject: `x = word * m` (64-bit);
/// if `(x mod 2^32) < m` then, with `t = (2^32 - m) mod m`, while
/// `(x mod 2^32) < t` draw the next word and recompute `x`; the result is
/// `x >> 32`.
pub const SPLIT_STREAM_ID: u64 = 0;

/// `shuffle` stream, the epochs: stream id `EPOCH_STREAM_BASE + e` draws the
/// permutation `perm_e` of the positions `0..n_train` of the training set for
/// epoch `e` (the same Fisher-Yates and Lemire as [`SPLIT_STREAM_ID`]).
///
/// With batch size `B`, an epoch has `S = n_train div B` steps; the last
/// `n_train mod B` positions of each epoch's permutation are never used (the
/// partial batch is dropped). Step `t` (0-based) is in epoch `e = t div S` at
/// position `q = t mod S`; row `r` of its batch (`r = 0..B-1`, the batch
/// order every other rule calls "row") is the data-set example
/// `train[perm_e[q * B + r]]`.
pub const EPOCH_STREAM_BASE: u64 = 1;

/// `dropout` stream addressing for the mask of (step, layer, unit, example):
/// stream id = `(l << DROPOUT_LAYER_SHIFT) | t`, where `t` is the 0-based step
/// index (the step the hash chain records as link `t + 1`) and `l` the hidden
/// layer (0-based); word position = `r * width + u` for batch row `r` and unit
/// `u` of a layer of `width` units (words 0 .. B*width - 1 of that stream id).
///
/// Dropout applies to every hidden layer's output when the `dropout` setting
/// `p` (an f32, [`SETTINGS_ARE_F32`]) is above 0. The unit is kept when
/// `word >= threshold`, with `threshold = min(round(f64(p) * 2^32), 2^32 - 1)`
/// computed in f64 from the f32 value of `p` (round halfway away from zero):
/// for `p = 0.1` the f32 is `0x3dcccccd` = 13421773 * 2^-27 and the threshold
/// is 429496736, not round(0.1 * 2^32) = 429496730. Kept activations are
/// multiplied by `scale = 1 / (1 - p)`, both operations f32 (for `p = 0.1`:
/// `1 - p` = `0x3f666666`, scale = `0x3f8e38e4`); dropped ones become +0.0.
/// The keep test is integer-only on every backend.
pub const DROPOUT_LAYER_SHIFT: u32 = 40;

/// `data` stream: draws the synthetic 2-D data sets; stream id = 0, words
/// consumed in generation order, example after example, with
/// `u() = (word >> 8) * 2^-24` (f32) for each word drawn. Example `i` has
/// label `c = i % classes` (spiral: 3 classes; xor, circles, gaussians: 2);
/// `tau` is the f32 nearest 2*pi; all f32; `sinf`, `cosf`, `logf`, `sqrtf`
/// from the same `libm` ([`LIBM_VERSION`]):
/// - spiral: `r = u()`, `jitter = (u() - 0.5) * 0.4`,
///   `a = ((c * tau) / 3 + r * 4) + jitter`, point `(r * sinf(a), r * cosf(a))`;
/// - xor: repeat `x = u() * 2 - 1`, `y = u() * 2 - 1` until
///   `(x * y > 0) == (c == 1)`;
/// - circles: radius `u() * 0.5` (c = 0) or `0.7 + u() * 0.3` (c = 1), then
///   `a = u() * tau`, point `(radius * cosf(a), radius * sinf(a))`;
/// - gaussians: centre -0.4 (c = 0) or 0.4, `u1 = 1 - u()`, `u2 = u()`,
///   `rad = sqrtf(-2 * logf(u1)) * 0.3`, point
///   `(centre + rad * cosf(tau * u2), centre + rad * sinf(tau * u2))`.
///
/// Their fingerprint is the SHA-256 of every example's x and y (f32
/// little-endian) then its label byte. (The reference implementation reads
/// `digits` only.)
pub const DATA_STREAM_ID: u64 = 0;

// ---------------------------------------------------------------------------
// Reduction orders (every float sum in the engine)
// ---------------------------------------------------------------------------
//
// Each sum below starts from +0.0 and adds its terms one at a time in the
// order given: a single running sum per output, so the order does not depend
// on tiling, vector width or workgroup size.
//
//   out[r][j] = ((((0 + t0) + t1) + t2) + ... ) + t(K-1)
//               └── one accumulator, k ascending ──┘
//
// In the forward matmul and the weight gradient, a term whose left factor
// (the activation a[r][k]) is +-0.0 is skipped: it contributes nothing, even
// when the other factor is infinite or NaN. While the other factor is finite
// skipping changes no bit: the product is +-0.0, and adding +-0.0 to a
// running sum that started at +0.0 never changes it, because in round to
// nearest such a sum is never -0.0. (The GPU kernels do not skip: they agree
// with the CPU only while every such factor is finite.)

/// Forward matmul of a layer: `z[r][j] = sum_k a[r][k] * w[k][j]` (k
/// ascending, terms with `a[r][k] == +-0.0` skipped), then `z[r][j] + b[j]`
/// (the bias added after the sum). `a` is the layer's input (the batch's
/// features for layer 0; the previous hidden layer after dropout otherwise).
pub const MATMUL_ORDER: &str = "z[r][j] = (sum over k ascending of a[r][k]*w[k][j]) + b[j]";

/// Weight gradient: `dw[k][j] = sum_r a[r][k] * d[r][j]` (terms with
/// `a[r][k] == +-0.0` skipped). Bias gradient: `db[j] = sum_r d[r][j]`. Rows
/// ascending in engine version 1, descending in version 2
/// ([`ENGINE_VERSIONS`]); the batch loss sum follows the same order.
///
/// Chunks: with `chunks = M` the batch is cut into M contiguous chunks, chunk
/// c holding rows `floor(c*B/M) .. floor((c+1)*B/M)` (so B = 20, M = 3 gives
/// 0..6, 6..13, 13..20). Each chunk runs the whole forward and backward pass
/// on its own rows (its rows re-numbered from 0, its dropout masks the rows'
/// slices of the step's masks, the same `inv_batch = 1/B` of the full batch),
/// summing its own rows in the version's order into its own gradient and its
/// own loss sum. The partials are combined in chunk order, elementwise:
/// `G = P0; G = G + P1; G = G + P2; ...` (and the same for the loss sums),
/// or in order of arrival when the `cpu_threads` source is free (an order
/// the manifest does not record: such a run cannot be retraced). M = 1 is the
/// plain batch. The result depends on M, never on the number of threads.
/// The GPU engine computes M = 1 only: a run with M > 1 trains on the CPU
/// engine (backend `gpu` refuses it; `auto` and a free backend say why).
pub const GRAD_ORDER: &str = "dw[k][j] = sum over rows r of a[r][k]*d[r][j]; db[j] = sum over rows r of d[r][j]; \
     rows ascending in engine version 1, descending in version 2; chunks combined in chunk (or arrival) order";

/// Back-propagated error: `g[r][k] = sum_j d[r][j] * w[k][j]` (j ascending, no
/// term skipped), with `w` the layer's weights before this step's update.
pub const BACKPROP_ORDER: &str = "g[r][k] = sum over j ascending of d[r][j]*w[k][j]";

/// Softmax cross-entropy per example (row), classes c ascending:
/// `m = max_c z[c]` (scanning c ascending, replacing `m` when `z[c] > m`),
/// `e[c] = expf(z[c] - m)`, `s = sum_c e[c]` (c ascending, from +0.0),
/// `loss = logf(s) - (z[y] - m)`. The gradient with respect to the logits is
/// `d[c] = p[c] * inv_batch` for `c != y` and `(p[y] - 1) * inv_batch`, with
/// `p[c] = e[c] / s` (f32 division) and `inv_batch = 1 / B` (f32 division;
/// `B` the full batch size, also inside chunks).
pub const SOFTMAX_ORDER: &str = "m=max; e=exp(z-m); s=sum c ascending; p=e/s; loss=ln(s)-(z[y]-m)";

/// Batch loss: each chunk sums its rows' losses from +0.0 in the version's row
/// order; the chunk sums are combined in chunk order ([`GRAD_ORDER`]); the
/// recorded `train_loss` is that sum times `inv_batch` (an f32 product, not a
/// division by B).
///
/// Validation (not hashed, but recorded): after step `s` (1-based) when
/// `s % eval_every == 0` or `s == steps`, the forward pass without dropout on
/// every validation example with the weights after step `s`. The validation
/// error is the count of examples whose first maximal logit (scanning classes
/// ascending, replacing on `>`) is not the label, divided by `n_val` in f64.
/// The validation loss is `(sum over validation examples in split order of
/// f64(loss)) / n_val`, the per-example f32 losses of [`SOFTMAX_ORDER`]
/// widened to f64 and summed one at a time in f64 from 0.0 on the CPU (in f32
/// on the GPU, `shaders/val_metrics.wgsl`), null when not finite. The
/// manifest's final `val_error`/`val_loss` are the last point's when it was
/// taken after the last step, else computed the same way at the end.
pub const LOSS_ORDER: &str = "batch loss = (sum over rows in the version's order) * inv_batch";

/// Optimizer, per parameter, in this order (SGD with momentum, PyTorch form),
/// every operation f32: for weights `g = grad + weight_decay * w`, for biases
/// `g = grad` (no decay); `v = momentum * v + g`; `w = w - learning_rate * v`.
/// Velocities start at +0.0; the gradient is the combined one
/// ([`GRAD_ORDER`]), already scaled by `inv_batch` through the softmax
/// gradient.
pub const OPTIMIZER_ORDER: &str = "g+=wd*w (weights only); v=mu*v+g; w=w-lr*v";

// ---------------------------------------------------------------------------
// Parameter layout and the weight hash
// ---------------------------------------------------------------------------
//
// All parameters live in one flat f32 buffer, layer by layer: W0 (row-major
// [in x out]), b0, W1, b1, ... ([`PARAMETER_LAYOUT`]). The optimizer's
// velocities use the same layout. The GPU keeps the same layout in one
// storage buffer.
//
// Weight hash, 64 bits as two 32-bit lanes (lane 0 = lo, lane 1 = hi),
// computed from the parameters' f32 bit patterns as u32 words with 32-bit
// integer operations only (velocities are not hashed):
//
//   words:   w0 w1 ... w1023 | w1024 ... w2047 | ... | ...w(n-1)
//   chunks:  └── leaf 0 ────┘ └── leaf 1 ─────┘       └ leaf C-1 (short) ┘
//   leaf c, lane i = murmur3_32(words of chunk c, seed = HASH_LANE_SEEDS[i] ^ c)
//   root, lane i   = murmur3_32(leaf0.lo, leaf0.hi, leaf1.lo, leaf1.hi, ...,
//                               seed = HASH_LANE_SEEDS[i] ^ n)
//
// So both lanes of the root read the same 2*C words (every leaf's lo and hi,
// interleaved), and differ only in their seed; `n` is the number of parameter
// words and `c` the leaf index, both as u32. Leaves are independent (one GPU
// workgroup each); the root is a short sequential pass.
//
// murmur3_32 is the standard x86_32 variant over whole little-endian words
// (all arithmetic mod 2^32): h = seed; per word k: k *= 0xcc9e2d51;
// k = rotl(k, 15); k *= 0x1b873593; h ^= k; h = rotl(h, 13); h = h*5 +
// 0xe6546b64. Then h ^= 4 * (number of words) (the length in bytes), and
// fmix32: h ^= h >> 16; h *= 0x85ebca6b; h ^= h >> 13; h *= 0xc2b2ae35;
// h ^= h >> 16.
//
// Text form of a hash (manifests): 16 lowercase hex digits of
// `(hi << 32) | lo`, so the first 8 digits are lane 1 and the last 8 lane 0.

/// Words per leaf of the weight hash.
pub const HASH_CHUNK_WORDS: usize = 1024;
/// Seeds of the two 32-bit lanes of every hash: lane 0 (lo), lane 1 (hi).
pub const HASH_LANE_SEEDS: [u32; 2] = [0x5265_7072, 0x6f6c_6162];

/// The hash chain: `link[0] = mix(CHAIN_GENESIS, hash(initial weights))`,
/// `link[t] = mix(link[t-1], hash(weights after step t))`, where
/// `mix(prev, cur)`, lane i, is murmur3_32 over the four words
/// `(prev.lo, prev.hi, cur.lo, cur.hi)` with seed `HASH_LANE_SEEDS[i] ^ 0`.
/// `CHAIN_GENESIS` splits as lo = `0x6f6c6162` (its low 32 bits), hi =
/// `0x72657072`. The manifest's `hash_chain` lists `link[1..=steps]`, one per
/// completed step (`hash_chain[t]` is link `t + 1`); `initial_weights_hash` is
/// `hash(initial weights)` itself, not `link[0]`; `weights_hash` is the hash of
/// the final weights.
pub const CHAIN_GENESIS: u64 = 0x7265_7072_6f6c_6162;

// ---------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------

/// Digits pixels are integers 0..=16 scaled by `1/16` (exact in f32): feature
/// `i` of an image is `pixel[i] * DIGITS_PIXEL_SCALE`, 64 features, 10 classes.
///
/// `digits@1` is the file `data/digits-v1.bin` that the crate embeds
/// (`include_bytes!` in `src/data.rs`): 1797 images of 65 bytes each, the 64
/// pixels of an 8x8 image row-major (`pixel[8*y + x]`), then the label 0..=9;
/// its SHA-256 is `68aea062d35a127749050fa0e52dca09d6569ac08092c925610e0954e172dde2`.
/// `digits@2` is those 1797 images followed by 300 more: for `i = 0..299`,
/// image `i` of version 1 shifted one pixel to the right, each of its 8 rows
/// written as `0, pixel[8*y + 0], ..., pixel[8*y + 6]` (the left column becomes
/// 0, the right one falls off), then its label (2097 * 65 bytes). Example `k`
/// of the data set is image `k` of these bytes; the fingerprint a manifest
/// records is the SHA-256 of exactly these bytes. A bare `digits` means the
/// latest version; the manifest's `data.version` is the one trained on.
pub const DIGITS_PIXEL_SCALE: f32 = 1.0 / 16.0;

/// Size of every synthetic 2-D data set.
pub const SYNTHETIC_SAMPLES: usize = 600;

// ---------------------------------------------------------------------------
// Determinism levels
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

    /// The level named `name` (as the `level` setting takes it).
    pub fn from_name(name: &str) -> Option<DeterminismLevel> {
        [DeterminismLevel::None, DeterminismLevel::RunToRun, DeterminismLevel::Exact]
            .into_iter()
            .find(|l| l.name() == name)
    }
}

// ---------------------------------------------------------------------------
// GPU (src/gpu.rs and shaders/)
// ---------------------------------------------------------------------------
//
// The kernels follow every order above, but WGSL leaves `exp`, `log` and
// `tanh` to the implementation, so at `run-to-run` a GPU run's bits differ
// from the CPU's from the first step; and they do not skip zero terms
// ([`MATMUL_ORDER`]). At `exact` the same kernel files compute
// [`EXACT_ARITHMETIC`] (their float operations are the prelude's `f_*`), and
// a GPU that passes [`EXACT_PROBE`] gives the CPU's bits. Kernels may be
// fused (the bias and activation into the forward product, the softmax with
// the batch loss, each layer's gradients with its update) only as the same
// operations on the same values in these orders; a fused update runs after
// the layer's back-propagation, which reads the weights before the update
// ([`BACKPROP_ORDER`]).

/// Threads per workgroup of the one-dimensional kernels.
pub const GPU_WG: u32 = 64;
/// Side of the square workgroups (and tiles) of the reference matrix
/// kernels (`shaders/reference/`, one output per invocation).
pub const GPU_TILE: u32 = 16;
/// Shape of the register-blocked matrix kernels (`matmul`, `matmul_grad`,
/// `matmul_backprop`): workgroup x and y sizes and the tile of the summed
/// dimension staged per barrier pair; each invocation holds 4 x 4 outputs.
/// Chosen by measurement on lavapipe and SwiftShader (README, "GPU
/// kernels"); any shape gives the same bits ([`MATMUL_ORDER`]).
pub const GPU_MM_TILING: [u32; 3] = [16, 16, 0];
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

// ---------------------------------------------------------------------------
// The rest of a step, settings, elementary functions, the manifest's numbers
// ---------------------------------------------------------------------------

/// The network and the flat parameter buffer. Widths are
/// `dim, hidden[0], ..., hidden[H-1], classes` (`dim` and `classes` from the
/// data set; `hidden` the comma list of the `hidden` setting, possibly empty);
/// layer `l` maps `widths[l]` to `widths[l+1]`, and the buffer holds, for
/// `l = 0, 1, ...`, `W_l` (`fan_in * fan_out` values, row-major `[fan_in x
/// fan_out]`, `W_l[k][j]` at `k * fan_out + j`) then `b_l` (`fan_out` values).
/// The defaults on `digits` give 64-128-10: W0 at 0, b0 at 8192, W1 at 8320,
/// b1 at 9600, 9610 parameters.
pub const PARAMETER_LAYOUT: &str = "W0 [fan_in x fan_out] row-major, b0, W1, b1, ...";

/// Hidden-layer activations, elementwise on `z` (the matmul output with its
/// bias): ReLU gives `z` when `z > 0` and +0.0 otherwise (so -0.0 and NaN
/// give +0.0); tanh gives `tanhf(z)` ([`LIBM_VERSION`]). The output layer has
/// no activation (its `z` are the logits). Then dropout ([`DROPOUT_LAYER_SHIFT`]):
/// the next layer's input is `h * scale` where kept, +0.0 where dropped.
pub const ACTIVATIONS: &str = "relu: z > 0 ? z : +0.0; tanh: tanhf(z); then dropout h*scale or +0.0";

/// The backward pass of one chunk, from the softmax gradient `d` of the
/// output layer down: for each layer `l` from the last to 0, its gradients
/// ([`GRAD_ORDER`], with `a` = the layer's input as the forward pass used
/// it, after dropout); then, for `l > 0`, `g = backprop(d, W_l)`
/// ([`BACKPROP_ORDER`]) and the error of hidden layer `l - 1` is, elementwise:
/// first dropout, `g * scale` where the unit was kept and +0.0 where dropped
/// (no dropout: `g`); then the activation, from the hidden output `h` *before*
/// dropout: ReLU passes the value where `h > 0` and gives +0.0 elsewhere; tanh
/// gives `value * (1 - h * h)` (`h * h` first, then `1 - `, then the product).
pub const BACKWARD_ORDER: &str =
    "for l = last..0: grads(l); if l > 0: g = backprop; g = kept ? g*scale : 0; d = act'(h before dropout, g)";

/// Stopping on non-finite values: after step `t`'s loss is computed, if
/// `train_loss` is not finite the run stops before its update; after the
/// update, if any weight or velocity is not finite, the update is undone and
/// the run stops. Either way step `t + 1` is not completed: the manifest's
/// `stopped` is `{step: t + 1, kind: "non_finite"}`, `steps_completed` is `t`,
/// and a faithful retrace must stop at the same step.
pub const NON_FINITE_STOP: &str =
    "loss not finite, or a weight or velocity not finite after SGD: stop, step not completed";

/// The real-valued settings (`dropout`, `learning_rate`, `momentum`,
/// `weight_decay`, `val_fraction`) are f32 values: their decimal text (from
/// `--set`, a config file or a manifest) is rounded once to the nearest f32
/// (Rust's `str::parse::<f32>`), and every rule above uses that f32 (widened
/// exactly to f64 where a rule says f64). Manifests write each as the
/// shortest decimal that reads back to the same f32 (`0.1`, not
/// `0.10000000149011612`). `batch_size`, `steps`, `eval_every`, `chunks`,
/// `threads` and `seed` are integers, `hidden` a comma list of widths as a
/// string, `activation` `relu` or `tanh`, `dataset` a name with an optional
/// `@version`. `threads` never changes a bit when `cpu_threads` is pinned.
pub const SETTINGS_ARE_F32: [&str; 5] = ["dropout", "learning_rate", "momentum", "weight_decay", "val_fraction"];

/// The version of the `libm` crate whose `expf`, `logf` and `tanhf` the CPU
/// engine uses (native and wasm alike). `Cargo.lock` holds the version the
/// build uses; `make test-reference` fails when it is not this one, because
/// another version may change every run's bits without a kernel-version
/// bump. The algorithms (FreeBSD msun via musl), as that version runs them on
/// x86-64, aarch64 and wasm32 (its x87 `expf` is only for 32-bit x86 without
/// SSE), all in f32 except where integer bit operations are named (`bits(x)`
/// the u32 pattern, `|x|` clears bit 31, `as i32` truncates toward zero):
///
/// `expf(x)`, with `hx = bits(|x|)`: NaN returns x; `x >= 88.7228`
/// (`hx >= 0x42b17218`, x positive) returns `x * 2^127`; x negative with
/// `hx >= 0x42cff1b5` returns +0. If `hx > 0x3eb17218`: `k = (1.4426950216 *
/// x + (x < 0 ? -0.5 : 0.5)) as i32` when `hx > 0x3f851592`, else `k = +-1`
/// (the sign of x); `hi = x - k * 6.9314575195e-01` (`0x3f317200`),
/// `lo = k * 1.4286067653e-06` (`0x35bfbe8e`), `x = hi - lo`. Else if
/// `hx > 0x39000000`: `k = 0, hi = x, lo = 0`. Else return `1 + x`. Then
/// `xx = x * x`, `c = x - xx * (1.6666625440e-1 + xx * -2.7667332906e-3)`,
/// `y = 1 + ((x * c / (2 - c) - lo) + hi)`, and the result is `y` when `k = 0`,
/// else `scalbnf(y, k)`: if `k > 127`, `y = y * 2^127, k = k - 127` (and
/// once more if still `k > 127`, then `k = min(k, 127)`); if `k < -126`,
/// `y = y * 2^-102, k = k + 102` (and once more if still `k < -126`, then
/// `k = max(k, -126)`); the result is `y * 2^k`.
///
/// `logf(x)`, with `ix = bits(x)`, `k = 0`: +-0 returns `-1 / (x * x)`
/// (-inf); negative returns NaN; subnormal: `k = -25, x = x * 2^25`; inf or
/// NaN returns x; exactly 1 returns +0. Then `ix = bits(x) + (0x3f800000 -
/// 0x3f3504f3)`, `k = k + (ix >> 23) - 127`, `x = from_bits((ix & 0x7fffff) +
/// 0x3f3504f3)`; `f = x - 1`, `s = f / (2 + f)`, `z = s * s`, `w = z * z`,
/// `t1 = w * (0.40000972152 + w * 0.24279078841)`, `t2 = z * (0.66666662693 +
/// w * 0.28498786688)`, `r = t2 + t1`, `hfsq = (0.5 * f) * f`, `dk = k as f32`,
/// result `(((s * (hfsq + r) + dk * 9.0580006145e-06) - hfsq) + f) +
/// dk * 6.9313812256e-01`.
///
/// `tanhf(x)`, with `a = |x|`, `w = bits(a)`: `w > 0x41200000` (|x| > 10 or
/// NaN) gives `1 + 0 / a`; `w > 0x3f0c9f54` gives `1 - 2 / (expm1f(2a) + 2)`;
/// `w > 0x3e82c578` gives `t / (t + 2)` with `t = expm1f(2a)`;
/// `w >= 0x00800000` gives `-t / (t + 2)` with `t = expm1f(-2a)`; else `a`;
/// the result takes the sign of x. `expm1f` is libm's `src/math/expm1f.rs` at
/// this version (argument reduction by `k = round(x / ln 2)` with
/// `ln2_hi = 0x3f317180`, `ln2_lo = 0x3717f7d1`, and the rational
/// approximation with `Q1 = -3.3333212137e-2`, `Q2 = 1.5807170421e-3`);
/// `tests/reference/reprolab_ref.py` ports it line for line, and
/// `make test-reference` compares all four functions with the crate on over a
/// million inputs.
pub const LIBM_VERSION: &str = "0.2.16";

/// How a manifest's numbers are read back exactly: `train_loss` holds f32
/// values written as the shortest decimal that reads back to the same f32 (by
/// round to nearest even; e.g. `2.3893697`, `1.6560524e32`): read each as the
/// f32 nearest that decimal (converting the decimal directly; going through
/// f64 first is a double rounding). `val_error`, `val_loss` and the
/// validation curve are f64 written as shortest round-trip decimals. Seeds are
/// decimal strings (u64). Hashes are 16 hex digits ([`HASH_CHUNK_WORDS`]).
pub const MANIFEST_NUMBERS: &str = "train_loss: f32 as shortest decimal; val_*: f64 shortest; seeds: u64 strings";

/// Weight files outside the manifest (the `safetensors` export), as
/// `tests/reference/reprolab_ref.py` reads them: one F32 tensor per layer
/// parameter, `layer{l}.weight` of shape `[fan_in, fan_out]` (row-major, the
/// same order as [`PARAMETER_LAYOUT`]) and `layer{l}.bias` of shape
/// `[fan_out]`, little-endian; the `__metadata__` map holds `step`, the number
/// of steps completed when the weights were taken (0 for the initial ones),
/// as a decimal string.
pub const SAFETENSORS_NAMES: [&str; 2] = ["layer{l}.weight", "layer{l}.bias"];

/// The manifest's optional `batches` field (`train --record-batches`): one
/// list per completed step, `batches[t]` holding the data-set example indices
/// of step `t`'s batch rows in batch-row order (`train[perm_e[q * B + r]]`
/// for `r = 0..B-1`, [`EPOCH_STREAM_BASE`]).
pub const BATCHES_FIELD: &str = "batches";

// ---------------------------------------------------------------------------
// The `exact` level (setting `level=exact`)
// ---------------------------------------------------------------------------
//
// The same bits on the CPU (native and wasm32) and on every GPU stack that
// passes the start-up probe ([`EXACT_PROBE`]). The `exact` level changes only
// the arithmetic of a step ([`EXACT_ARITHMETIC`]); every order, stream,
// address and hash above is unchanged. The Rust twin is `crate::exact`, the
// WGSL one `shaders/lib_exact.wgsl` (same names with an `ex_` prefix);
// docs/EXACT.md has the measurements.

/// **Values.** f32 bit patterns. `flush(v)`: if the biased exponent field
/// `(bits >> 23) & 0xff` is 0 (±0 or subnormal) the value becomes +0
/// (`0x00000000`), else it is unchanged. Zeros are therefore unsigned at this
/// level. The canonical NaN is `0x7fc00000`.
///
/// **The three operations.** `add(a, b) = flush(a + b)`, `sub(a, b) =
/// flush(a - b)`, `mul(a, b) = flush(a * b)`, where `+ - *` are IEEE 754
/// binary32 with round to nearest, ties to even, and gradual underflow. No
/// other float operation exists at this level: no division (reciprocals of
/// constants are exact f32 constants), no `fma`, `mix`, `dot`, `sqrt`, `exp`,
/// `log`, `tanh` builtins, and no contraction or reassociation: every result
/// is materialised before the next operation uses it. Comparisons and range
/// tests are done on the integer bits. On the GPU each result is "fenced":
/// its bits are XORed with a zero the kernel read from a buffer at run time,
/// so no compiler can fuse or reorder across it (a `const` zero is folded
/// away). Where an operand is subnormal or the exact result lies below
/// 2^-126, stacks differ (SwiftShader flushes inputs and results, lavapipe
/// and CPUs do not): the functions below never let that happen (their
/// inputs are range-tested first, and every intermediate is provably 0 or at
/// least 2^-100 in magnitude); other kernels must keep operands of `mul` at 0
/// or at least 2^-63 in magnitude ([`EXACT_ARITHMETIC`]).
/// A NaN produced by `add`, `sub` or `mul` has an unspecified payload (runs
/// stop on non-finite values); the functions below return the canonical NaN.
pub const EXACT_OPERATIONS: &str = "add/sub/mul = flush(IEEE f32 op); flush: exponent field 0 -> +0; fenced on the GPU";

/// **The grid rule** (hot loops): `tiny(v)` is +0 when the biased exponent
/// is below 76 (|v| < 2^-51, ±0 and subnormals included), else v. Plain
/// fenced `+ - *` without a flush (`ex_addg`, `ex_subg`, `ex_mulg`) are
/// allowed on values where every multiply operand has passed `tiny`: then no
/// operation can underflow ([`EXACT_ARITHMETIC`]).
pub const EXACT_TINY_EXP: u32 = 76;

/// **exp(x).** Constants (bits): LOG2E `0x3fb8aa3b`, C1 `0x3f318000`
/// (0.693359375), C2 `0xb95e8083`, MAGIC `0x4b400000` (1.5 * 2^23),
/// P0..P5 = `0x39506967 0x3ab743ce 0x3c088908 0x3d2aa9c1 0x3e2aaaaa
/// 0x3f000000` (Cephes `expf`).
/// 1. NaN -> NaN. `|x| < 2^-25` (bits `& 0x7fffffff < 0x33000000`: ±0 and
///    subnormals included) -> 1.0. `x >= 89` -> +inf. `x <= -104` -> +0.
/// 2. `t = mul(x, LOG2E)`; `j = add(t, MAGIC)`; `k = bits(j) - 0x4b400000`
///    (wrapping i32: `t` rounded to the nearest integer, ties to even);
///    `kf = sub(j, MAGIC)` (= k exactly).
/// 3. `r = sub(sub(x, mul(kf, C1)), mul(kf, C2))`; `z = mul(r, r)`.
/// 4. `p = P0`; for c in P1..P5: `p = add(mul(p, r), c)`;
///    `y = add(add(mul(p, z), r), 1.0)` (y lies in [0.7, 1.5]).
/// 5. `e = ((bits(y) >> 23) & 0xff) + k`. `e >= 255` -> +inf; `e <= 0` -> +0;
///    else the result is `bits(y) + (k << 23)` (wrapping integer add: y * 2^k
///    exactly, no float operation).
pub const EXACT_EXP: &str =
    "Cephes expf: k = round(x log2 e) by 1.5*2^23, two-part reduction, degree-5 P, y*2^k by integer add";

/// **ln(x)** (natural logarithm). Constants: SQRTH `0x3f3504f3`, C1 and C2
/// as for exp, Q0..Q8 = `0x3d9021bb 0xbdebd1b8 0x3def251a 0xbdfe5d4f
/// 0x3e11e9bf 0xbe2aae50 0x3e4cceac 0xbe7ffffc 0x3eaaaaaa` (Cephes `logf`).
/// 1. NaN -> NaN; exponent field 0 (±0, subnormals) -> -inf; other negative
///    values (sign bit set) -> NaN; +inf -> +inf.
/// 2. `k = (bits(x) - 0x3f3504f3) >> 23` (i32, arithmetic shift);
///    `m = f32::from_bits(bits(x) - (k << 23))` (m in [SQRTH, 2 * SQRTH));
///    `kf = k as f32` (exact); `f = sub(m, 1.0)` (exact).
/// 3. `z = mul(f, f)`; `p = Q0`; for c in Q1..Q8: `p = add(mul(p, f), c)`;
///    `y = mul(mul(p, f), z)`; `y = add(y, mul(kf, C2))`;
///    `y = add(y, mul(z, -0.5))`; `s = add(f, y)`; result `add(s, mul(kf, C1))`.
pub const EXACT_LN: &str = "Cephes logf: x = 2^k m, m in [sqrt(1/2), sqrt(2)), f = m - 1, degree-8 Q";

/// **div(a, b)**: the IEEE quotient, round to nearest even, on flushed
/// operands, computed with 32-bit integers only.
/// 1. `a = flush(a)`, `b = flush(b)`. NaN operand, 0/0 or inf/inf -> NaN.
///    `inf / finite` -> inf with sign `sa ^ sb`; `x / 0` (x != 0) -> inf with
///    the sign of x; `0 / y` and `finite / inf` -> +0.
/// 2. Both normal: significands `ma`, `mb` (24 bits, implicit bit set),
///    `e = ea - eb + 127` from the exponent fields. If `ma < mb`:
///    `ma <<= 1`, `e -= 1`. Restoring division, 25 steps: `q = 0; r = ma;`
///    each step `q <<= 1; if r >= mb { r -= mb; q |= 1 }; r <<= 1`.
/// 3. `g = q & 1`, `q >>= 1` (24 bits), round up `u = g & (r != 0 | q & 1)`.
///    `e < 0` -> +0. Else `v = (e << 23) + (q & 0x7fffff) + u` (a carry moves
///    into the exponent); `v >= 0x7f800000` -> inf; `flush` (so a quotient
///    that rounds to below 2^-126 is +0); then the sign `sa ^ sb` is ORed in.
///
/// On the CPU, when both operands are normal and the hardware quotient
/// `a / b` has an exponent field of at least 2 (or is infinite), it equals
/// the above, and is used (a fast path; `tests/exact_math.rs` checks it).
pub const EXACT_DIV: &str = "IEEE quotient, round to nearest even, on flushed operands, from 32-bit integers";

/// **tanh(x).** Constants T0..T4 = `0xbbbaf0ea 0x3ca9134e 0xbd5c1e2d
/// 0x3e088393 0xbeaaaa99` (Cephes `tanhf`).
/// 1. NaN -> NaN. `|x| < 2^-13` (bits `< 0x39000000`) -> `flush(x)`.
///    `|x| >= 10` (infinities included) -> ±1 with the sign of x.
/// 2. `|x| < 0.625` (bits `< 0x3f200000`): `s = mul(x, x)`; `p = T0`; for c
///    in T1..T4: `p = add(mul(p, s), c)`; result `add(mul(mul(p, s), x), x)`.
/// 3. Else with `a = |x|`: `E = exp(add(a, a))`; `q = div(2.0, add(E, 1.0))`;
///    `t = sub(1.0, q)`; the result is t with the sign bit of x.
pub const EXACT_TANH: &str = "Cephes tanhf: odd polynomial below 0.625, else 1 - div(2, exp(2|x|) + 1)";

/// A step at the `exact` level: the rules of the default arithmetic above
/// (every order, the chunks, the dropout masks, the hash), with these
/// changes. `tiny` is [`EXACT_TINY_EXP`]'s rule; "stored" means `tiny` is
/// applied to the value before anything else reads it. Every `+ - *` is the
/// plain IEEE f32 operation (on the GPU fenced: `ex_addg`, `ex_subg`,
/// `ex_mulg`), in the orders above; under these rules none can underflow.
/// - Constants: `inv_batch`, the dropout `scale`, `learning_rate`,
///   `momentum` and `weight_decay` pass `tiny` before use.
/// - Initial weights pass `tiny` (so `initial_weights_hash` is that of the
///   tiny weights). Input rows pass `tiny` as gathered.
/// - Each layer: `z = tiny(sum_k a[k] * w[k][j])` ([`MATMUL_ORDER`] without
///   the bias), then `v = z + b[j]`, then `h = tiny(act(v))` with ReLU as in
///   [`ACTIVATIONS`] and tanh = [`EXACT_TANH`]; logits `tiny(v)`. Dropout:
///   kept `tiny(h * scale)`, dropped +0.
/// - Softmax ([`SOFTMAX_ORDER`]): `e[c] = tiny(exp(z[c] - m))` with
///   [`EXACT_EXP`]; `s` the sum of the `e[c]`; `loss = tiny(ln(s) - (z[y] -
///   m))` with [`EXACT_LN`]; `p[c] = tiny(div(e[c], s))` with [`EXACT_DIV`];
///   `d[c] = tiny(t * inv_batch)`, `t = p[c] - 1` for `c = y`, else `p[c]`.
/// - Backward ([`BACKWARD_ORDER`]): every weight and bias gradient, every
///   back-propagated error, every masked error `tiny(g * scale)` and every
///   error through the activation is stored: ReLU `tiny(h > 0 ? g : +0)`,
///   tanh `tiny(g * tiny(1 - h * h))`. Chunked runs: the combined gradient is
///   stored (chunks change the sums, as at `run-to-run`).
/// - SGD ([`OPTIMIZER_ORDER`]): `g = grad + wd * w` (weights only),
///   `v = tiny(mu * v + g)`, `w = tiny(w - lr * v)`.
/// - The loss sum and `train_loss = loss_sum * inv_batch` are plain (never
///   stored as a weight). Validation uses the same forward pass and softmax.
pub const EXACT_ARITHMETIC: &str = "the default step with tiny on every stored value and pinned exp, ln, tanh, div";

/// The start-up probe of a GPU (`shaders/exact_probe.wgsl`,
/// `crate::exact::PROBE`): one known-answer case per thread, operands read
/// from a buffer, answers compared bit for bit with the CPU's, in checks
/// `rounding`, `fusion`, `reassociation`, `subnormals`, `conversions`,
/// `functions` and `probe` (the answer count). `exact` is granted on a GPU
/// only when every check passes; otherwise the run trains with the
/// run-to-run kernels, is granted `run-to-run`, and `level_reason` says
/// `exact: not available on this adapter: <check>: <case and both bit
/// patterns>`. The CPU engine needs no probe.
pub const EXACT_PROBE: [&str; 7] =
    ["rounding", "fusion", "reassociation", "subnormals", "conversions", "functions", "probe"];
