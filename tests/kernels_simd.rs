//! The SIMD kernels (src/kernels/) against the scalar reference
//! (`model::scalar`), bit for bit (`f32::to_bits`), natively and in the
//! browsers (`wasm-pack test ... -- --test kernels_simd`): shapes of 1, of
//! the lane width (4) and the strip width (32), one off each, and many
//! strips; both row orders; zero activations of both signs, infinite and NaN
//! weights, subnormals, overflow and exact cancellation. The first mismatch
//! is printed with both values.

use reprolab::kernels;
use reprolab::model::{self, scalar, Dropout, Network, Pass, RowOrder};
use reprolab::rng::{Stream, StreamRng};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// (rows, k, n): 1, lane width, strip width, one off them, many strips.
const SHAPES: [(usize, usize, usize); 14] = [
    (1, 1, 1),
    (1, 4, 4),
    (4, 4, 4),
    (3, 5, 3),
    (5, 3, 5),
    (1, 32, 32),
    (7, 31, 33),
    (2, 33, 31),
    (32, 1, 63),
    (64, 64, 10),
    (33, 130, 65),
    (16, 257, 97),
    (128, 70, 257),
    (0, 3, 5),
];

/// What the inputs hold.
#[derive(Clone, Copy, Debug)]
enum Values {
    /// Uniform in [-1, 1).
    Dense,
    /// About 40% +0.0 and -0.0 (as ReLU and dropout give).
    Zeros,
    /// Zeros, plus the odd inf, -inf, NaN, subnormal and huge value.
    Special,
    /// Small integers, so that sums cancel exactly to zero.
    Cancel,
}

fn values(seed: u64, n: usize, kind: Values) -> Vec<f32> {
    let mut rng = StreamRng::new(Stream::Data, seed);
    let r = rng.reader(7, 0);
    (0..n)
        .map(|_| {
            let u = r.unit_f32();
            let x = u * 2.0 - 1.0;
            let pick = r.next_u32() % 100;
            match kind {
                Values::Dense => x,
                Values::Zeros | Values::Special if pick < 20 => 0.0,
                Values::Zeros | Values::Special if pick < 40 => -0.0,
                Values::Special => match pick {
                    40 => f32::INFINITY,
                    41 => f32::NEG_INFINITY,
                    42 => f32::NAN,
                    43..=46 => x * 1e-39,
                    47..=50 => x * 3e38,
                    _ => x,
                },
                Values::Zeros => x,
                Values::Cancel => {
                    ((pick % 5) as f32 - 2.0) * if pick < 50 { 0.0 } else { 1.0 } + (pick % 3) as f32 - 1.0
                }
            }
        })
        .collect()
}

/// Equal bits, or both NaN (wasm leaves NaN payloads open).
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn check(what: &str, simd: &[f32], reference: &[f32]) {
    assert_eq!(simd.len(), reference.len(), "{what}: lengths differ");
    if let Some(i) = (0..simd.len()).find(|&i| !same(simd[i], reference[i])) {
        panic!(
            "{what}: first mismatch at index {i} of {}: simd {:e} (0x{:08x}) vs scalar {:e} (0x{:08x})",
            simd.len(),
            simd[i],
            simd[i].to_bits(),
            reference[i],
            reference[i].to_bits()
        );
    }
}

/// Every kernel on every shape and kind of values; returns how many
/// outputs were compared.
fn every_kernel(kind: Values, special_weights: bool) -> usize {
    let mut compared = 0;
    for (i, &(rows, k, n)) in SHAPES.iter().enumerate() {
        let seed = i as u64 * 10;
        let wkind = if special_weights { kind } else { Values::Dense };
        let a = values(seed + 1, rows * k, kind);
        let w = values(seed + 2, k * n, wkind);
        let b = values(seed + 3, n, Values::Dense);
        let d = values(seed + 4, rows * n, kind);
        let tag = format!("{kind:?} rows {rows} k {k} n {n}");

        let (mut want, mut got) = (vec![1.0f32; rows * n], vec![2.0f32; rows * n]);
        scalar::matmul_bias(&a, &w, &b, rows, k, n, &mut want);
        kernels::matmul_bias(&a, &w, &b, rows, k, n, &mut got);
        check(&format!("matmul_bias {tag}"), &got, &want);
        compared += got.len();

        for order in [RowOrder::Ascending, RowOrder::Descending] {
            let (mut want_w, mut want_b) = (vec![1.0f32; k * n], vec![1.0f32; n]);
            let (mut got_w, mut got_b) = (vec![2.0f32; k * n], vec![2.0f32; n]);
            scalar::grad_weights(&a, &d, rows, k, n, &mut want_w, &mut want_b, order);
            kernels::grad_weights(&a, &d, rows, k, n, &mut got_w, &mut got_b, order);
            check(&format!("grad_weights dw {order:?} {tag}"), &got_w, &want_w);
            check(&format!("grad_weights db {order:?} {tag}"), &got_b, &want_b);
            compared += got_w.len() + got_b.len();
        }

        let (mut want, mut got) = (vec![1.0f32; rows * k], vec![2.0f32; rows * k]);
        scalar::backprop(&d, &w, rows, k, n, &mut want);
        kernels::backprop(&d, &w, rows, k, n, &mut got);
        check(&format!("backprop {tag}"), &got, &want);
        compared += got.len();
    }
    compared
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn simd_kernels_give_the_scalar_bits_on_dense_values() {
    assert!(every_kernel(Values::Dense, true) > 100_000);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn simd_kernels_give_the_scalar_bits_with_signed_zeros() {
    every_kernel(Values::Zeros, false);
    every_kernel(Values::Zeros, true);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn simd_kernels_give_the_scalar_bits_with_inf_nan_subnormal_and_overflow() {
    every_kernel(Values::Special, true);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn simd_kernels_give_the_scalar_bits_when_sums_cancel_to_zero() {
    every_kernel(Values::Cancel, false);
    every_kernel(Values::Cancel, true);
}

/// The inputs exercise what they claim: the special values reach the
/// outputs (non-finite results exist), zeros are skipped with an infinite
/// weight beside them, and cancellation produces exact zeros.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn the_inputs_reach_the_cases_they_name() {
    let (rows, k, n) = (33, 5, 65);
    let a = values(1, rows * k, Values::Special);
    let w = values(2, k * n, Values::Special);
    let mut out = vec![0.0f32; rows * n];
    kernels::matmul_bias(&a, &w, &vec![0.0; n], rows, k, n, &mut out);
    assert!(out.iter().any(|v| v.is_nan()) && out.iter().any(|v| v.is_finite()));
    assert!(w.iter().any(|v| v.is_infinite()) && a.iter().any(|v| v.to_bits() == (-0.0f32).to_bits()));
    let c = values(3, rows * k, Values::Cancel);
    let mut g = vec![1.0f32; rows * n];
    let dense = values(4, k * n, Values::Cancel);
    kernels::matmul_bias(&c, &dense, &vec![0.0; n], rows, k, n, &mut g);
    assert!(g.contains(&0.0), "some sums cancel exactly");
    // A zero activation beside an infinite weight: skipped, as the reference does.
    let mut one = [0.0f32];
    kernels::matmul_bias(&[0.0, 2.0], &[f32::INFINITY, 3.0], &[0.5], 1, 2, 1, &mut one);
    assert_eq!(one[0], 6.5);
    // A zero error beside an infinite weight: the reference adds 0 * inf = NaN.
    kernels::backprop(&[0.0, 2.0], &[f32::INFINITY, 3.0], 1, 1, 2, &mut one);
    assert!(one[0].is_nan());
}

/// A whole forward and backward pass (ReLU and tanh, dropout, both row
/// orders, shapes of the benchmark) with the SIMD kernels and with the
/// scalar ones: the loss and every gradient have the same bits. The only
/// test in this file that touches the process-wide kernel switch.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn a_whole_pass_has_the_same_bits_with_either_kernels() {
    use reprolab::config::Activation;
    for (hidden, batch, act, order) in [
        (vec![128], 64, Activation::Relu, RowOrder::Ascending),
        (vec![256, 256], 40, Activation::Relu, RowOrder::Descending),
        (vec![33, 70], 17, Activation::Tanh, RowOrder::Ascending),
    ] {
        let net = Network::new(64, &hidden, 10, act);
        let params = values(11, net.n_params, Values::Dense);
        let x: Vec<f32> = values(12, batch * 64, Values::Zeros).iter().map(|v| v.abs()).collect();
        let labels: Vec<u8> = (0..batch).map(|i| (i * 7 % 10) as u8).collect();
        let mut rng = StreamRng::new(Stream::Dropout, 3);
        let r = rng.reader(0, 0);
        let dropout = Dropout {
            masks: hidden.iter().map(|w| (0..batch * w).map(|_| r.next_u32() >= u32::MAX / 10).collect()).collect(),
            scale: 1.0 / 0.9,
        };
        let mut results = Vec::new();
        for k in [model::Kernels::Scalar, model::Kernels::Simd] {
            model::set_kernels(k);
            let mut pass: Pass<f32> = Pass::new(&net, batch);
            pass.acts[0].copy_from_slice(&x);
            let loss =
                model::loss_and_grads(&net, &params, &labels, Some(&dropout), 1.0 / batch as f32, &mut pass, order);
            results.push((loss, pass.grads));
        }
        model::set_kernels(model::Kernels::Simd);
        let tag = format!("pass {hidden:?} batch {batch} {act:?} {order:?}");
        assert_eq!(results[0].0.to_bits(), results[1].0.to_bits(), "{tag}: loss");
        check(&tag, &results[1].1, &results[0].1);
        assert!(results[1].1.iter().any(|g| *g != 0.0), "{tag}: some gradient is not zero");
    }
}

/// The kernels run on vectors in the builds the project ships: SSE2
/// natively on x86_64, SIMD128 in wasm (`.cargo/config.toml` turns it on;
/// without it they would fall back to plain arrays).
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn the_kernels_run_on_the_vector_unit_of_this_build() {
    let want = if cfg!(target_arch = "wasm32") {
        "wasm simd128"
    } else if cfg!(target_arch = "x86_64") {
        "x86_64 sse2"
    } else {
        "portable"
    };
    assert_eq!(kernels::BACKEND, want);
}

/// The dropout masks' ChaCha20, four blocks side by side in vector lanes
/// (`chacha::fill`: SIMD128 in wasm, SSE2 natively, byte shuffles for the
/// 8- and 16-bit rotations in wasm), against the plain one-block function,
/// word for word, at aligned and unaligned addresses, across a carry of
/// the block counter's low word.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn chacha_lanes_equal_the_one_block_reference() {
    let key = reprolab::chacha::key_words(&reprolab::rng::stream_key(Stream::Dropout, 11));
    let cases = [(0u64, 0u64, 8192usize), (5, 3, 300), (1 << 40, 64, 129), (7, (1u64 << 36) - 70, 400)];
    for (stream, start, len) in cases {
        let mut got = vec![0u32; len];
        reprolab::chacha::fill(&key, stream, start, &mut got);
        for (i, &w) in got.iter().enumerate() {
            let pos = start + i as u64;
            let want = reprolab::chacha::block(&key, pos / 16, stream)[(pos % 16) as usize];
            assert_eq!(w, want, "stream {stream}: word {pos} is {w:#x}, the one-block function gives {want:#x}");
        }
    }
}

/// The weight hash's leaves hashed four side by side (`hash::leaf_hashes`)
/// against one at a time (`hash::leaf_hash`).
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn grouped_leaf_hashes_equal_one_at_a_time() {
    let leaf = reprolab::spec::HASH_CHUNK_WORDS;
    let words: Vec<f32> = (0..9 * leaf + 77).map(|i| f32::from_bits((i as u32).wrapping_mul(2_654_435_761))).collect();
    let mut grouped = Vec::new();
    reprolab::hash::leaf_hashes(2, &words, &mut grouped);
    let single: Vec<_> = words.chunks(leaf).enumerate().map(|(i, c)| reprolab::hash::leaf_hash(2 + i, c)).collect();
    assert_eq!(grouped, single);
}

/// Every operation of `reprolab::lanes` (wasm SIMD128, SSE2 or arrays) against
/// the scalar `u32` one, lane by lane.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn lanes_are_the_scalar_operations_lane_by_lane() {
    use reprolab::lanes::*;
    let a = [0x8000_0001u32, 0xffff_ffff, 0x1234_5678, 7];
    let b = [0xcc9e_2d51u32, 3, 0xffff_fffe, 0x1b87_3593];
    let (x, y) = (from_array(a), from_array(b));
    let each = |f: fn(u32, u32) -> u32| -> [u32; 4] { std::array::from_fn(|i| f(a[i], b[i])) };
    assert_eq!(to_array(add(x, y)), each(u32::wrapping_add));
    assert_eq!(to_array(mul(x, y)), each(u32::wrapping_mul));
    assert_eq!(to_array(xor(x, y)), each(|p, q| p ^ q));
    for r in [7, 8, 12, 13, 15, 16] {
        assert_eq!(to_array(rotl(x, r)), a.map(|v| v.rotate_left(r)), "rotl {r}");
    }
    assert_eq!(to_array(times5(x, Times5::new())), a.map(|v| v.wrapping_mul(5)));
    assert_eq!(to_array(splat(9)), [9; 4]);
    let words = [1.0f32, -2.5, f32::NAN, 0.0];
    assert_eq!(to_array(load_bits(&words)), words.map(f32::to_bits));
    let rows = [0, 1, 2, 3].map(|i| from_array(std::array::from_fn(|q| 10 * i + q as u32)));
    let cols = transpose(rows).map(to_array);
    assert_eq!(cols, std::array::from_fn(|q| std::array::from_fn(|i| 10 * i as u32 + q as u32)));
}
