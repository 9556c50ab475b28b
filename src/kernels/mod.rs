//! The f32 kernels of the CPU engine, vectorised across outputs: the three
//! matrix products of a training step (forward matmul, weight gradient,
//! back-propagation) with four outputs per SIMD lane group and 32 outputs
//! per strip.
//!
//! Every output keeps exactly one running f32 sum, started at +0.0, to which
//! its terms are added one at a time in the order [`crate::spec`] fixes (k
//! ascending; rows in the engine version's order for gradients). A lane
//! never looks at another lane, products and sums are separate roundings
//! (no FMA), and the terms that are skipped are exactly those the scalar
//! reference in [`crate::model::scalar`] skips, or terms that the spec shows
//! cannot change a bit. So these kernels give the reference's bits for every
//! input, which the tests check with `f32::to_bits`.
//!
//! How each product is laid out: the operand whose rows the sum walks is
//! packed, one strip of 32 output columns at a time, into a contiguous
//! buffer of SIMD vectors (for back-propagation that packing is the
//! transposed copy of the weights, so the sum runs down a strip instead of
//! across lanes); the other operand becomes, per output row, a list of its
//! non-zero terms `(index, value)` in summation order. A strip (at most
//! `K x 32` floats, 16 KB for a batch of 128) stays in cache while every
//! output row runs its list over it with eight accumulators in registers,
//! and each output is written once: the weight gradient is no longer
//! rewritten for every batch row.
//!
//! Skipped terms, and why the bits stay:
//! - forward and weight gradient: terms whose activation is +-0.0, exactly
//!   as the reference skips them (whatever the other factor is);
//! - back-propagation: the reference adds every term; a term `d * w` with
//!   `d == +-0.0` is skipped only when every weight is finite, since then
//!   the product is +-0.0 and adding +-0.0 to a running sum that started at
//!   +0.0 never changes it (in round-to-nearest such a sum is never -0.0;
//!   spec: the reduction orders). With an infinite or NaN weight every term
//!   is added, as the reference does.

mod f32x4;

use std::sync::Mutex;

use f32x4::F32x4;

use crate::model::RowOrder;

pub use f32x4::BACKEND;

/// Lanes of a vector.
const LANES: usize = 4;
/// Vectors (accumulators) per strip: 32 outputs side by side in eight
/// registers. Measured against four (16 outputs) and against one term per
/// iteration: two terms per iteration over eight vectors is the fastest both
/// natively and in V8, although V8 spills a few operands of it.
const STRIP: usize = 8;

/// Buffers reused from call to call.
#[derive(Default)]
struct Scratch {
    /// Every output row's terms, `(row of the packed operand, factor)`;
    /// only the first `starts[rows]` entries are meaningful.
    terms: Vec<(u32, f32)>,
    /// Output row `i`'s terms are `terms[starts[i]..starts[i + 1]]`.
    starts: Vec<usize>,
    /// One strip of the packed operand: `depth` rows of `STRIP * LANES`
    /// floats.
    packed: Vec<f32>,
}

impl Scratch {
    /// Starts the term lists of `rows` output rows of at most `depth` terms.
    fn start_terms(&mut self, rows: usize, depth: usize) -> TermWriter<'_> {
        let need = rows * depth;
        if self.terms.len() < need {
            self.terms.resize(need, (0, 0.0));
        }
        self.starts.clear();
        self.starts.push(0);
        TermWriter { terms: &mut self.terms, starts: &mut self.starts, len: 0 }
    }
}

/// Appends term lists without a branch per term (zeros are about half of
/// the activations after ReLU and dropout, in no pattern a branch predictor
/// could learn).
struct TermWriter<'a> {
    terms: &'a mut Vec<(u32, f32)>,
    starts: &'a mut Vec<usize>,
    len: usize,
}

impl TermWriter<'_> {
    /// The terms whose factor is not +-0.0, in the order given, as the
    /// next output row's list.
    #[inline]
    fn row_nonzero(&mut self, row: impl ExactSizeIterator<Item = (usize, f32)>) {
        let n = row.len();
        // One bounds check for the row rather than one per term.
        let out = &mut self.terms[self.len..self.len + n];
        let mut count = 0;
        for (i, (t, x)) in row.take(n).enumerate() {
            debug_assert!(count <= i && i < out.len());
            // SAFETY: `count` is the number of non-zero terms among the `i`
            // before this one, so `count <= i < n == out.len()` (`take(n)`).
            unsafe { *out.get_unchecked_mut(count) = (t as u32, x) };
            count += usize::from(x != 0.0);
        }
        self.len += count;
        self.starts.push(self.len);
    }

    /// Every term, zeros included, as the next output row's list.
    #[inline]
    fn row_all(&mut self, row: impl ExactSizeIterator<Item = (usize, f32)>) {
        let n = row.len();
        for (slot, (t, x)) in self.terms[self.len..self.len + n].iter_mut().zip(row) {
            *slot = (t as u32, x);
        }
        self.len += n;
        self.starts.push(self.len);
    }
}

/// Scratch buffers not in use. A pool rather than one set per thread: the
/// engine's chunk threads live for one step, and buffers that died with
/// them would be allocated (and page-faulted in) again every step.
static SCRATCH: Mutex<Vec<Scratch>> = Mutex::new(Vec::new());

fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let taken = SCRATCH.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let mut s = taken.unwrap_or_default();
    let out = f(&mut s);
    SCRATCH.lock().unwrap_or_else(|e| e.into_inner()).push(s);
    out
}

/// Where the operand of a product comes from: `op[t][c]` is
/// `src[t * ld + c]` (row-major) or `src[c * ld + t]` (the transpose of a
/// row-major matrix).
#[derive(Clone, Copy)]
enum Operand<'a> {
    Rows { src: &'a [f32], ld: usize },
    Transposed { src: &'a [f32], ld: usize },
}

/// `out[r][j] = (sum_k a[r][k] * w[k][j], k ascending) + b[j]`, the bits of
/// [`crate::model::scalar::matmul_bias`].
pub fn matmul_bias(a: &[f32], w: &[f32], b: &[f32], rows: usize, k: usize, n: usize, out: &mut [f32]) {
    let (a, w, b, out) = (&a[..rows * k], &w[..k * n], &b[..n], &mut out[..rows * n]);
    with_scratch(|s| {
        let mut terms = s.start_terms(rows, k);
        for r in 0..rows {
            terms.row_nonzero(a[r * k..(r + 1) * k].iter().copied().enumerate());
        }
        let op = Operand::Rows { src: w, ld: n };
        products(&s.terms, &s.starts, k, n, op, Some(b), out, &mut s.packed);
    });
}

/// `dw[k][j] = sum_r a[r][k] * d[r][j]` and `db[j] = sum_r d[r][j]`, rows in
/// `order`: the bits of [`crate::model::scalar::grad_weights`].
#[allow(clippy::too_many_arguments)]
pub fn grad_weights(
    a: &[f32],
    d: &[f32],
    rows: usize,
    k: usize,
    n: usize,
    dw: &mut [f32],
    db: &mut [f32],
    order: RowOrder,
) {
    let (a, d, dw, db) = (&a[..rows * k], &d[..rows * n], &mut dw[..k * n], &mut db[..n]);
    let row_at = |i: usize| match order {
        RowOrder::Ascending => i,
        RowOrder::Descending => rows - 1 - i,
    };
    with_scratch(|s| {
        let mut terms = s.start_terms(k, rows);
        for kk in 0..k {
            terms.row_nonzero((0..rows).map(row_at).map(|r| (r, a[r * k + kk])));
        }
        let op = Operand::Rows { src: d, ld: n };
        products(&s.terms, &s.starts, rows, n, op, None, dw, &mut s.packed);
    });
    // One running sum per bias, rows in order: lane-wise adds the compiler
    // vectorises by itself.
    db.fill(0.0);
    for i in 0..rows {
        let r = row_at(i);
        for (g, &dv) in db.iter_mut().zip(&d[r * n..(r + 1) * n]) {
            *g += dv;
        }
    }
}

/// `g[r][k] = sum_j d[r][j] * w[k][j]`, j ascending: the bits of
/// [`crate::model::scalar::backprop`], through a transposed copy of `w`.
pub fn backprop(d: &[f32], w: &[f32], rows: usize, k: usize, n: usize, g: &mut [f32]) {
    let (d, w, g) = (&d[..rows * n], &w[..k * n], &mut g[..rows * k]);
    // Counted rather than `all`: a branch-free loop the compiler vectorises.
    let non_finite: usize = w.iter().map(|v| usize::from(v.to_bits() & 0x7f80_0000 == 0x7f80_0000)).sum();
    let skip_zeros = non_finite == 0;
    with_scratch(|s| {
        let mut terms = s.start_terms(rows, n);
        for r in 0..rows {
            let row = d[r * n..(r + 1) * n].iter().copied().enumerate();
            if skip_zeros {
                terms.row_nonzero(row);
            } else {
                terms.row_all(row);
            }
        }
        // The sum runs over j: the operand is w transposed, op[j][c] = w[c][j].
        let op = Operand::Transposed { src: w, ld: n };
        products(&s.terms, &s.starts, n, k, op, None, g, &mut s.packed);
    });
}

/// `out[i][c] = (sum over row i's terms (t, x), in list order, of
/// x * op[t][c]) + bias[c]` for an operand of `depth` rows and `n` columns,
/// one strip of columns at a time.
#[allow(clippy::too_many_arguments)]
fn products(
    terms: &[(u32, f32)],
    starts: &[usize],
    depth: usize,
    n: usize,
    op: Operand<'_>,
    bias: Option<&[f32]>,
    out: &mut [f32],
    packed: &mut Vec<f32>,
) {
    const W: usize = STRIP * LANES;
    packed.resize(depth * W, 0.0);
    let mut c0 = 0;
    while c0 < n {
        let width = (n - c0).min(W);
        pack(op, depth, c0, width, packed);
        let strip = Strip { terms, starts, packed, c0, width, n, bias };
        match width.div_ceil(LANES) {
            1 => strip.run::<1>(out),
            2 => strip.run::<2>(out),
            3 => strip.run::<3>(out),
            4 => strip.run::<4>(out),
            5 => strip.run::<5>(out),
            6 => strip.run::<6>(out),
            7 => strip.run::<7>(out),
            _ => strip.run::<STRIP>(out),
        }
        c0 += width;
    }
}

/// Copies columns `c0..c0 + width` of the operand into `packed`, row `t` at
/// `t * STRIP * LANES`, zero-padded to whole vectors (the padding lanes'
/// results are never stored).
fn pack(op: Operand<'_>, depth: usize, c0: usize, width: usize, packed: &mut [f32]) {
    const W: usize = STRIP * LANES;
    let padded = width.div_ceil(LANES) * LANES;
    match op {
        Operand::Rows { src, ld } => {
            let full = width / LANES * LANES;
            for (t, dst) in packed.chunks_exact_mut(W).take(depth).enumerate() {
                let row = &src[t * ld + c0..t * ld + c0 + width];
                // Vector moves rather than a memcpy call per short row.
                for c in (0..full).step_by(LANES) {
                    F32x4::load(&row[c..]).store(&mut dst[c..]);
                }
                // Element by element: a copy or fill of a run-time length
                // is a call in wasm (`memory.copy`, `memory.fill`).
                for (d, &x) in dst[full..width].iter_mut().zip(&row[full..]) {
                    *d = x;
                }
                for d in &mut dst[width..padded] {
                    *d = 0.0;
                }
            }
        }
        Operand::Transposed { src, ld } => {
            // Row c of the source is column c of the operand. 4 x 4 blocks:
            // four source rows, four columns each, transposed in registers,
            // land as four operand rows of one vector each.
            let full_t = depth / LANES * LANES;
            let src_row = |c: usize| (c0 + c) * ld;
            for t in (0..full_t).step_by(LANES) {
                for c in (0..padded).step_by(LANES) {
                    let rows: [F32x4; 4] = std::array::from_fn(|i| {
                        if c + i < width {
                            F32x4::load(&src[src_row(c + i) + t..])
                        } else {
                            F32x4::zero()
                        }
                    });
                    for (j, v) in F32x4::transpose(rows).into_iter().enumerate() {
                        v.store(&mut packed[(t + j) * W + c..]);
                    }
                }
            }
            for t in full_t..depth {
                let dst = &mut packed[t * W..t * W + padded];
                for (c, x) in dst.iter_mut().enumerate() {
                    *x = if c < width { src[src_row(c) + t] } else { 0.0 };
                }
            }
        }
    }
}

/// One strip of columns `c0..c0 + width` of a product.
struct Strip<'a> {
    terms: &'a [(u32, f32)],
    starts: &'a [usize],
    packed: &'a [f32],
    c0: usize,
    width: usize,
    n: usize,
    bias: Option<&'a [f32]>,
}

impl Strip<'_> {
    /// `V` vectors of accumulators per output row, in registers.
    #[inline(always)]
    fn run<const V: usize>(&self, out: &mut [f32]) {
        const W: usize = STRIP * LANES;
        debug_assert_eq!(self.width.div_ceil(LANES), V);
        let mut bias = [F32x4::zero(); V];
        if let Some(b) = self.bias {
            let mut lanes = [0.0f32; W];
            lanes[..self.width].copy_from_slice(&b[self.c0..self.c0 + self.width]);
            for (v, bv) in bias.iter_mut().enumerate() {
                *bv = F32x4::load(&lanes[v * LANES..]);
            }
        }
        for (i, span) in self.starts.windows(2).enumerate() {
            let mut acc = [F32x4::zero(); V];
            // Two terms per iteration, each accumulator adding the first
            // then the second: the list's order.
            let mut pairs = self.terms[span[0]..span[1]].chunks_exact(2);
            for p in &mut pairs {
                let (x0, x1) = (F32x4::splat(p[0].1), F32x4::splat(p[1].1));
                let (t0, t1) = (p[0].0 as usize * W, p[1].0 as usize * W);
                let op0 = &self.packed[t0..t0 + V * LANES];
                let op1 = &self.packed[t1..t1 + V * LANES];
                for v in 0..V {
                    acc[v] = acc[v].add(x0.mul(F32x4::load(&op0[v * LANES..])));
                    acc[v] = acc[v].add(x1.mul(F32x4::load(&op1[v * LANES..])));
                }
            }
            for &(t, x) in pairs.remainder() {
                let xv = F32x4::splat(x);
                let t = t as usize * W;
                let op = &self.packed[t..t + V * LANES];
                for v in 0..V {
                    acc[v] = acc[v].add(xv.mul(F32x4::load(&op[v * LANES..])));
                }
            }
            if self.bias.is_some() {
                for v in 0..V {
                    acc[v] = acc[v].add(bias[v]);
                }
            }
            let dst = &mut out[i * self.n + self.c0..i * self.n + self.c0 + self.width];
            // Whole vectors stored as such; the last, partial one lane by
            // lane (a copy of a length known only at run time is a
            // `memory.copy` in wasm, which V8 runs as a call). `v` runs to
            // the constant `V`, so the loop unrolls and `acc` stays in
            // registers (an index known only at run time would put it in
            // memory).
            for (v, a) in acc.iter().enumerate() {
                let lo = v * LANES;
                if lo + LANES <= self.width {
                    a.store(&mut dst[lo..]);
                } else if lo < self.width {
                    for (d, x) in dst[lo..].iter_mut().zip(a.to_array()) {
                        *d = x;
                    }
                }
            }
        }
    }
}

/// The kernels' inner loop ([`Strip::run`]: two terms per iteration, eight
/// accumulators, `acc += x * op`) on data that stay in L1: a 2 KB operand
/// strip and 64 terms, `iters` iterations of 128 flop each. Timing it gives
/// the peak these kernels can reach on one core of this machine, in this
/// build (the benchmark's "peak"). Returns a value that depends on every
/// operation, so that none can be optimised away.
pub fn peak_probe(iters: usize) -> f32 {
    const W: usize = STRIP * LANES;
    const DEPTH: usize = 16;
    // Factors +-1 and operands of small integers: the sums stay exact and
    // finite; black_box keeps the compiler from knowing any of them.
    let terms: Vec<(u32, f32)> =
        std::hint::black_box((0..64).map(|i| ((i * 7 % DEPTH) as u32, if i % 3 == 0 { -1.0 } else { 1.0 })).collect());
    let packed: Vec<f32> = std::hint::black_box((0..DEPTH * W).map(|i| (i % 5) as f32).collect());
    let mut acc = [F32x4::zero(); STRIP];
    for i in 0..iters {
        let (p0, p1) = (terms[(2 * i) % 64], terms[(2 * i + 1) % 64]);
        let (x0, x1) = (F32x4::splat(p0.1), F32x4::splat(p1.1));
        let (t0, t1) = (p0.0 as usize * W, p1.0 as usize * W);
        let op0 = &packed[t0..t0 + W];
        let op1 = &packed[t1..t1 + W];
        for v in 0..STRIP {
            acc[v] = acc[v].add(x0.mul(F32x4::load(&op0[v * LANES..])));
            acc[v] = acc[v].add(x1.mul(F32x4::load(&op1[v * LANES..])));
        }
    }
    acc.iter().map(|a| a.to_array().iter().sum::<f32>()).sum()
}

/// Floating-point operations of one [`peak_probe`] iteration.
pub const PEAK_PROBE_FLOPS: usize = 2 * STRIP * 2 * LANES;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_skips_zero_activations_like_the_reference() {
        // 0 * inf is NaN: the reference skips the zero activation, so the
        // output stays finite.
        let mut out = [0.0f32];
        matmul_bias(&[0.0, 2.0], &[f32::INFINITY, 3.0], &[0.5], 1, 2, 1, &mut out);
        assert_eq!(out[0], 6.5);
    }
}
