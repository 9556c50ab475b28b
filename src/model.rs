//! The multilayer perceptron's maths: the CPU reference kernels, in the
//! orders [`crate::spec`] fixes. Pure Rust, no GPU or JS types.
//!
//! The kernels are generic over [`Real`] so the gradient check can run the
//! very same code in f64; training uses f32.

use std::fmt::Debug;
use std::ops::{Add, Div, Mul, Neg, Sub};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::spec;

/// Hidden-layer activation. The maths owns it; the settings parse its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Tanh,
}

impl Activation {
    /// Every activation, in the order the settings list them.
    pub const ALL: [Activation; 2] = [Activation::Relu, Activation::Tanh];

    /// The name used in settings.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
        }
    }

    /// The activation named `name`, if any.
    pub fn from_name(name: &str) -> Option<Activation> {
        Activation::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The mode code the GPU kernels take for it (spec: [`spec::ACT_RELU`]).
    pub fn gpu_mode(self) -> u32 {
        match self {
            Activation::Relu => spec::ACT_RELU,
            Activation::Tanh => spec::ACT_TANH,
        }
    }
}

/// The arithmetic of a pass: the default one (libm's `expf`, `logf`,
/// `tanhf`, hardware division, gradual underflow) or the `exact` level's
/// (spec: [`spec::EXACT_ARITHMETIC`]): the same kernels, in the same orders,
/// with [`crate::exact::tiny`] applied to every stored value and the pinned
/// `exp`, `ln`, `tanh` and `div`. `exact` is defined in f32 only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Arith {
    #[default]
    Default,
    Exact,
}

impl Arith {
    /// The arithmetic of a run asking for `level`.
    pub fn of_level(level: spec::DeterminismLevel) -> Arith {
        if level == spec::DeterminismLevel::Exact {
            Arith::Exact
        } else {
            Arith::Default
        }
    }

    /// A stored value: [`Real::tiny`] under `exact`, unchanged otherwise.
    #[inline(always)]
    pub fn st<T: Real>(self, v: T) -> T {
        match self {
            Arith::Default => v,
            Arith::Exact => v.tiny(),
        }
    }

    /// Applies [`Arith::st`] to every value of `values`.
    pub fn st_all<T: Real>(self, values: &mut [T]) {
        if self == Arith::Exact {
            for v in values {
                *v = v.tiny();
            }
        }
    }

    /// e^x.
    #[inline(always)]
    pub fn exp<T: Real>(self, x: T) -> T {
        match self {
            Arith::Default => x.exp(),
            Arith::Exact => x.exact_exp(),
        }
    }

    /// The natural logarithm.
    #[inline(always)]
    pub fn ln<T: Real>(self, x: T) -> T {
        match self {
            Arith::Default => x.ln(),
            Arith::Exact => x.exact_ln(),
        }
    }

    /// `a / b`.
    #[inline(always)]
    pub fn div<T: Real>(self, a: T, b: T) -> T {
        match self {
            Arith::Default => a / b,
            Arith::Exact => a.exact_div(b),
        }
    }
}

/// The float type a kernel computes in. Transcendentals come from the pure
/// Rust `libm` crate, so native and wasm builds give the same bits
/// (spec: `LIBM_VERSION`).
pub trait Real:
    Copy
    + Debug
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn tanh(self) -> Self;
    fn from_f32(v: f32) -> Self;
    fn to_f64(self) -> f64;

    /// [`matmul_bias`] in this type: the scalar reference unless the type
    /// has faster kernels that give the same bits.
    fn matmul_bias(a: &[Self], w: &[Self], b: &[Self], rows: usize, k: usize, n: usize, out: &mut [Self]) {
        scalar::matmul_bias(a, w, b, rows, k, n, out);
    }

    /// [`grad_weights`] in this type (see [`Real::matmul_bias`]).
    #[allow(clippy::too_many_arguments)]
    fn grad_weights(
        a: &[Self],
        d: &[Self],
        rows: usize,
        k: usize,
        n: usize,
        dw: &mut [Self],
        db: &mut [Self],
        order: RowOrder,
    ) {
        scalar::grad_weights(a, d, rows, k, n, dw, db, order);
    }

    /// [`backprop`] in this type (see [`Real::matmul_bias`]).
    fn backprop(d: &[Self], w: &[Self], rows: usize, k: usize, n: usize, g: &mut [Self]) {
        scalar::backprop(d, w, rows, k, n, g);
    }
    /// The grid rule's flush ([`crate::exact::tiny`]); identity in f64,
    /// where the `exact` arithmetic does not exist.
    fn tiny(self) -> Self {
        self
    }
    /// The pinned e^x ([`crate::exact::exp`]) in f32.
    fn exact_exp(self) -> Self {
        self.exp()
    }
    /// The pinned natural logarithm ([`crate::exact::ln`]) in f32.
    fn exact_ln(self) -> Self {
        self.ln()
    }
    /// The pinned tanh ([`crate::exact::tanh`]) in f32.
    fn exact_tanh(self) -> Self {
        self.tanh()
    }
    /// The pinned quotient ([`crate::exact::div`]) in f32.
    fn exact_div(self, b: Self) -> Self {
        self / b
    }
}

/// Which kernels the f32 engine runs. Both give the same bits (the tests
/// check it); the scalar reference stays callable so that benchmarks can
/// time the two in one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// The scalar reference, [`scalar`].
    Scalar,
    /// The vectorised kernels of [`crate::kernels`] (the default).
    Simd,
}

impl Kernels {
    /// `scalar` or `simd`.
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Scalar => "scalar",
            Kernels::Simd => "simd",
        }
    }
}

static SCALAR_KERNELS: AtomicBool = AtomicBool::new(false);

/// Chooses the f32 kernels for every thread of this process (or wasm
/// instance) from now on. The bits of a run do not depend on it.
pub fn set_kernels(k: Kernels) {
    SCALAR_KERNELS.store(k == Kernels::Scalar, Ordering::Relaxed);
}

/// The f32 kernels in use.
pub fn kernels() -> Kernels {
    if SCALAR_KERNELS.load(Ordering::Relaxed) {
        Kernels::Scalar
    } else {
        Kernels::Simd
    }
}

impl Real for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    fn exp(self) -> f32 {
        libm::expf(self)
    }
    fn ln(self) -> f32 {
        libm::logf(self)
    }
    fn tanh(self) -> f32 {
        libm::tanhf(self)
    }
    fn from_f32(v: f32) -> f32 {
        v
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn matmul_bias(a: &[f32], w: &[f32], b: &[f32], rows: usize, k: usize, n: usize, out: &mut [f32]) {
        match kernels() {
            Kernels::Simd => crate::kernels::matmul_bias(a, w, b, rows, k, n, out),
            Kernels::Scalar => scalar::matmul_bias(a, w, b, rows, k, n, out),
        }
    }
    fn grad_weights(
        a: &[f32],
        d: &[f32],
        rows: usize,
        k: usize,
        n: usize,
        dw: &mut [f32],
        db: &mut [f32],
        order: RowOrder,
    ) {
        match kernels() {
            Kernels::Simd => crate::kernels::grad_weights(a, d, rows, k, n, dw, db, order),
            Kernels::Scalar => scalar::grad_weights(a, d, rows, k, n, dw, db, order),
        }
    }
    fn backprop(d: &[f32], w: &[f32], rows: usize, k: usize, n: usize, g: &mut [f32]) {
        match kernels() {
            Kernels::Simd => crate::kernels::backprop(d, w, rows, k, n, g),
            Kernels::Scalar => scalar::backprop(d, w, rows, k, n, g),
        }
    }
    fn tiny(self) -> f32 {
        crate::exact::tiny(self)
    }
    fn exact_exp(self) -> f32 {
        crate::exact::exp(self)
    }
    fn exact_ln(self) -> f32 {
        crate::exact::ln(self)
    }
    fn exact_tanh(self) -> f32 {
        crate::exact::tanh(self)
    }
    fn exact_div(self, b: f32) -> f32 {
        crate::exact::div(self, b)
    }
}

impl Real for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    fn exp(self) -> f64 {
        libm::exp(self)
    }
    fn ln(self) -> f64 {
        libm::log(self)
    }
    fn tanh(self) -> f64 {
        libm::tanh(self)
    }
    fn from_f32(v: f32) -> f64 {
        f64::from(v)
    }
    fn to_f64(self) -> f64 {
        self
    }
}

/// One dense layer's place in the flat parameter buffer (layout in
/// [`crate::spec`]: W row-major `[fan_in x fan_out]`, then b).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layer {
    pub fan_in: usize,
    pub fan_out: usize,
    /// Offset of W.
    pub w: usize,
    /// Offset of b.
    pub b: usize,
}

/// The network's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    pub layers: Vec<Layer>,
    pub activation: Activation,
    pub n_params: usize,
}

impl Network {
    /// A network `inputs -> hidden... -> classes`.
    pub fn new(inputs: usize, hidden: &[usize], classes: usize, activation: Activation) -> Network {
        let mut widths = vec![inputs];
        widths.extend_from_slice(hidden);
        widths.push(classes);
        let mut layers = Vec::new();
        let mut at = 0;
        for pair in widths.windows(2) {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let w = at;
            let b = w + fan_in * fan_out;
            at = b + fan_out;
            layers.push(Layer { fan_in, fan_out, w, b });
        }
        Network { layers, activation, n_params: at }
    }

    /// Number of hidden layers.
    pub fn hidden_layers(&self) -> usize {
        self.layers.len() - 1
    }

    /// Mask of which parameters are weights (decayed) rather than biases.
    pub fn is_weight(&self, index: usize) -> bool {
        self.layers.iter().any(|l| index >= l.w && index < l.b)
    }
}

/// Dropout of one forward pass: per hidden layer, the keep mask of every
/// (example, unit), row-major `[batch x width]`, and the scale of kept units.
#[derive(Clone, Debug, Default)]
pub struct Dropout {
    pub masks: Vec<Vec<bool>>,
    pub scale: f32,
}

/// Buffers of one forward and backward pass over a batch.
#[derive(Clone, Debug)]
pub struct Pass<T> {
    pub batch: usize,
    /// `acts[l]`: input of layer l, `[batch x fan_in]` (after dropout for
    /// hidden layers).
    pub acts: Vec<Vec<T>>,
    /// `hidden[l]`: output of hidden layer l after the activation, before
    /// dropout.
    pub hidden: Vec<Vec<T>>,
    /// Logits `[batch x classes]`, then the loss gradient with respect to them.
    pub logits: Vec<T>,
    /// Per-example loss.
    pub losses: Vec<T>,
    /// Gradient of every parameter (same layout as the parameters).
    pub grads: Vec<T>,
    delta: Vec<T>,
    back: Vec<T>,
}

impl<T: Real> Pass<T> {
    /// Buffers for `batch` examples through `net`.
    pub fn new(net: &Network, batch: usize) -> Pass<T> {
        let acts = net.layers.iter().map(|l| vec![T::ZERO; batch * l.fan_in]).collect();
        let hidden = net.layers[..net.hidden_layers()].iter().map(|l| vec![T::ZERO; batch * l.fan_out]).collect();
        let classes = net.layers.last().expect("a network has an output layer").fan_out;
        Pass {
            batch,
            acts,
            hidden,
            logits: vec![T::ZERO; batch * classes],
            losses: vec![T::ZERO; batch],
            grads: vec![T::ZERO; net.n_params],
            delta: Vec::new(),
            back: Vec::new(),
        }
    }
}

/// `out[r][j] = (sum_k a[r][k] * w[k][j], k ascending) + b[j]`
/// (spec: [`crate::spec::MATMUL_ORDER`]). Zero activations are skipped, which
/// the spec shows cannot change a bit. Runs [`Real::matmul_bias`]: for f32
/// the kernels [`kernels`] names.
pub fn matmul_bias<T: Real>(a: &[T], w: &[T], b: &[T], rows: usize, k: usize, n: usize, out: &mut [T]) {
    T::matmul_bias(a, w, b, rows, k, n, out);
}

/// The order of the batch-row sums, which is what the engine versions
/// change (spec: [`crate::spec::ENGINE_VERSIONS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowOrder {
    /// Engine version 1: rows ascending.
    Ascending,
    /// Engine version 2: rows descending (the same maths, other roundings).
    Descending,
}

impl RowOrder {
    /// The row order of an engine version.
    pub fn of_engine(version: u32) -> RowOrder {
        if version >= 2 {
            RowOrder::Descending
        } else {
            RowOrder::Ascending
        }
    }

    fn rows(self, rows: usize) -> Box<dyn Iterator<Item = usize>> {
        match self {
            RowOrder::Ascending => Box::new(0..rows),
            RowOrder::Descending => Box::new((0..rows).rev()),
        }
    }
}

/// `dw[k][j] = sum_r a[r][k] * d[r][j]` and `db[j] = sum_r d[r][j]`, r in the
/// engine version's order (spec: [`crate::spec::GRAD_ORDER`]).
#[allow(clippy::too_many_arguments)]
pub fn grad_weights<T: Real>(
    a: &[T],
    d: &[T],
    rows: usize,
    k: usize,
    n: usize,
    dw: &mut [T],
    db: &mut [T],
    order: RowOrder,
) {
    T::grad_weights(a, d, rows, k, n, dw, db, order);
}

/// `g[r][k] = sum_j d[r][j] * w[k][j]`, j ascending
/// (spec: [`crate::spec::BACKPROP_ORDER`]).
pub fn backprop<T: Real>(d: &[T], w: &[T], rows: usize, k: usize, n: usize, g: &mut [T]) {
    T::backprop(d, w, rows, k, n, g);
}

/// The scalar reference kernels: the spec's sums written out one output at
/// a time. [`crate::kernels`] must give their bits; the tests compare the
/// two with `f32::to_bits`.
pub mod scalar {
    use super::{Real, RowOrder};

    /// `out[r][j] = (sum_k a[r][k] * w[k][j], k ascending) + b[j]`
    /// (spec: [`crate::spec::MATMUL_ORDER`]). Zero activations are skipped, which
    /// the spec shows cannot change a bit.
    pub fn matmul_bias<T: Real>(a: &[T], w: &[T], b: &[T], rows: usize, k: usize, n: usize, out: &mut [T]) {
        for r in 0..rows {
            let acc = &mut out[r * n..(r + 1) * n];
            acc.fill(T::ZERO);
            for (kk, &x) in a[r * k..(r + 1) * k].iter().enumerate() {
                if x == T::ZERO {
                    continue;
                }
                let wrow = &w[kk * n..(kk + 1) * n];
                for (o, &wv) in acc.iter_mut().zip(wrow) {
                    *o = *o + x * wv;
                }
            }
            for (o, &bv) in acc.iter_mut().zip(b) {
                *o = *o + bv;
            }
        }
    }

    /// `dw[k][j] = sum_r a[r][k] * d[r][j]` and `db[j] = sum_r d[r][j]`, r in the
    /// engine version's order (spec: [`crate::spec::GRAD_ORDER`]).
    #[allow(clippy::too_many_arguments)]
    pub fn grad_weights<T: Real>(
        a: &[T],
        d: &[T],
        rows: usize,
        k: usize,
        n: usize,
        dw: &mut [T],
        db: &mut [T],
        order: RowOrder,
    ) {
        dw.fill(T::ZERO);
        db.fill(T::ZERO);
        for r in order.rows(rows) {
            let drow = &d[r * n..(r + 1) * n];
            for (kk, &x) in a[r * k..(r + 1) * k].iter().enumerate() {
                if x == T::ZERO {
                    continue;
                }
                for (g, &dv) in dw[kk * n..(kk + 1) * n].iter_mut().zip(drow) {
                    *g = *g + x * dv;
                }
            }
            for (g, &dv) in db.iter_mut().zip(drow) {
                *g = *g + dv;
            }
        }
    }

    /// `g[r][k] = sum_j d[r][j] * w[k][j]`, j ascending
    /// (spec: [`crate::spec::BACKPROP_ORDER`]).
    pub fn backprop<T: Real>(d: &[T], w: &[T], rows: usize, k: usize, n: usize, g: &mut [T]) {
        for r in 0..rows {
            let drow = &d[r * n..(r + 1) * n];
            for kk in 0..k {
                let mut acc = T::ZERO;
                for (&dv, &wv) in drow.iter().zip(&w[kk * n..(kk + 1) * n]) {
                    acc = acc + dv * wv;
                }
                g[r * k + kk] = acc;
            }
        }
    }
}

/// Softmax cross-entropy of each row; replaces the logits by the gradient
/// `(p - onehot) * inv_batch` when `grad_scale` is given
/// (spec: [`crate::spec::SOFTMAX_ORDER`]). Returns nothing; per-row losses go
/// to `losses`.
pub fn softmax_xent<T: Real>(logits: &mut [T], labels: &[u8], classes: usize, grad_scale: Option<T>, losses: &mut [T]) {
    softmax_xent_arith(logits, labels, classes, grad_scale, losses, Arith::Default)
}

/// [`softmax_xent`] in the arithmetic `ar`: under `exact`, `e = tiny(exp(z -
/// m))`, `loss = tiny(ln(s) - (z[y] - m))`, `p = tiny(div(e, s))` and the
/// gradient `tiny(t * scale)` (spec: [`spec::EXACT_ARITHMETIC`]).
pub fn softmax_xent_arith<T: Real>(
    logits: &mut [T],
    labels: &[u8],
    classes: usize,
    grad_scale: Option<T>,
    losses: &mut [T],
    ar: Arith,
) {
    for (r, row) in logits.chunks_exact_mut(classes).enumerate() {
        let mut m = row[0];
        for &z in &row[1..] {
            if z > m {
                m = z;
            }
        }
        let y = labels[r] as usize;
        let zy = row[y];
        let mut s = T::ZERO;
        for z in row.iter_mut() {
            *z = ar.st(ar.exp(*z - m));
            s = s + *z;
        }
        losses[r] = ar.st(ar.ln(s) - (zy - m));
        if let Some(scale) = grad_scale {
            for (c, z) in row.iter_mut().enumerate() {
                let p = ar.st(ar.div(*z, s));
                let t = if c == y { p - T::ONE } else { p };
                *z = ar.st(t * scale);
            }
        }
    }
}

/// The index of the first maximal logit of each row.
pub fn argmax_rows<T: Real>(logits: &[T], classes: usize) -> impl Iterator<Item = usize> + '_ {
    logits.chunks_exact(classes).map(|row| {
        let mut best = 0;
        for (c, &z) in row.iter().enumerate() {
            if z > row[best] {
                best = c;
            }
        }
        best
    })
}

fn activate<T: Real>(act: Activation, z: T, ar: Arith) -> T {
    match act {
        Activation::Relu => {
            if z > T::ZERO {
                z
            } else {
                T::ZERO
            }
        }
        Activation::Tanh => match ar {
            Arith::Default => z.tanh(),
            Arith::Exact => z.exact_tanh(),
        },
    }
}

/// Gradient through the activation, from its output `h`: ReLU passes `g` where
/// `h > 0` and gives +0.0 elsewhere; tanh gives `g * (1 - h * h)` (under
/// `exact`: `g * tiny(1 - h * h)`, which `tiny` never changes as `|h| <= 1`).
#[inline(always)]
fn activate_back<T: Real>(act: Activation, h: T, g: T, ar: Arith) -> T {
    match act {
        Activation::Relu => {
            if h > T::ZERO {
                g
            } else {
                T::ZERO
            }
        }
        Activation::Tanh => g * ar.st(T::ONE - h * h),
    }
}

/// [`Arith::st`] with the arithmetic fixed at compile time (`EXACT`), for
/// loops over many values that should hold no branch on it.
#[inline(always)]
fn st_as<T: Real, const EXACT: bool>(v: T) -> T {
    if EXACT {
        v.tiny()
    } else {
        v
    }
}

/// Dropout in the forward pass: `out = keep ? st(h * scale) : +0.0`. The
/// product is computed for every value and then selected (the same value
/// where kept), so the loop has no branch.
fn drop_forward<T: Real, const EXACT: bool>(out: &mut [T], h: &[T], mask: &[bool], scale: T) {
    for ((o, &hv), &keep) in out.iter_mut().zip(h).zip(mask) {
        let kept = st_as::<T, EXACT>(hv * scale);
        *o = if keep { kept } else { T::ZERO };
    }
}

/// The error through dropout (`drop`: its scale and mask) and the
/// activation's derivative, per value: `g = keep ? st(back * scale) :
/// +0.0`, `delta = st(activate_back(h, g))`, written in place. The
/// activation and the arithmetic are fixed outside the loop, the mask
/// selects rather than branches: the same operations per value as
/// [`activate_back`] under [`Arith::st`], in loops the compiler can keep
/// tight (and vectorise).
fn back_through<T: Real, const EXACT: bool>(
    act: Activation,
    delta: &mut [T],
    back: &[T],
    h: &[T],
    drop: Option<(T, &[bool])>,
) {
    let ar = if EXACT { Arith::Exact } else { Arith::Default };
    match act {
        Activation::Relu => {
            back_each::<T, EXACT>(delta, back, h, drop, |hv, g| activate_back(Activation::Relu, hv, g, ar))
        }
        Activation::Tanh => {
            back_each::<T, EXACT>(delta, back, h, drop, |hv, g| activate_back(Activation::Tanh, hv, g, ar))
        }
    }
}

#[inline(always)]
fn back_each<T: Real, const EXACT: bool>(
    delta: &mut [T],
    back: &[T],
    h: &[T],
    drop: Option<(T, &[bool])>,
    f: impl Fn(T, T) -> T,
) {
    match drop {
        Some((scale, mask)) => {
            for (((d, &g), &hv), &keep) in delta.iter_mut().zip(back).zip(h).zip(mask) {
                let kept = st_as::<T, EXACT>(g * scale);
                let g = if keep { kept } else { T::ZERO };
                *d = st_as::<T, EXACT>(f(hv, g));
            }
        }
        None => {
            for ((d, &g), &hv) in delta.iter_mut().zip(back).zip(h) {
                *d = st_as::<T, EXACT>(f(hv, g));
            }
        }
    }
}

/// Forward pass over `pass.acts[0]` (already filled): hidden layers, dropout
/// (kept: `h * scale`, dropped: +0.0), output logits.
pub fn forward<T: Real>(net: &Network, params: &[T], dropout: Option<&Dropout>, pass: &mut Pass<T>) {
    forward_arith(net, params, dropout, pass, Arith::Default)
}

/// One layer's `act(a w + b)` into `out`. Under `exact` the product is
/// stored (`tiny`) before the bias is added, as the GPU's `matmul` and
/// `bias_activation` kernels do, and the result is stored again.
#[allow(clippy::too_many_arguments)]
fn layer_forward<T: Real>(
    a: &[T],
    w: &[T],
    b: &[T],
    rows: usize,
    k: usize,
    n: usize,
    act: Option<Activation>,
    out: &mut [T],
    ar: Arith,
) {
    match ar {
        Arith::Default => matmul_bias(a, w, b, rows, k, n, out),
        Arith::Exact => {
            let zeros = vec![T::ZERO; n];
            matmul_bias(a, w, &zeros, rows, k, n, out);
            for row in out.chunks_exact_mut(n) {
                for (o, &bv) in row.iter_mut().zip(b) {
                    *o = o.tiny() + bv;
                }
            }
        }
    }
    match act {
        Some(act) => {
            for v in out.iter_mut() {
                *v = ar.st(activate(act, *v, ar));
            }
        }
        None => ar.st_all(out),
    }
}

/// [`forward`] in the arithmetic `ar`: under `exact`, the input rows, every
/// product, activation and dropout output pass `tiny`; tanh is the pinned
/// one (spec: [`spec::EXACT_ARITHMETIC`]).
pub fn forward_arith<T: Real>(net: &Network, params: &[T], dropout: Option<&Dropout>, pass: &mut Pass<T>, ar: Arith) {
    let rows = pass.batch;
    let last = net.layers.len() - 1;
    ar.st_all(&mut pass.acts[0]);
    for (l, layer) in net.layers.iter().enumerate() {
        let w = &params[layer.w..layer.b];
        let b = &params[layer.b..layer.b + layer.fan_out];
        if l == last {
            layer_forward(&pass.acts[l], w, b, rows, layer.fan_in, layer.fan_out, None, &mut pass.logits, ar);
            continue;
        }
        let (before, after) = pass.acts.split_at_mut(l + 1);
        let h = &mut pass.hidden[l];
        layer_forward(&before[l], w, b, rows, layer.fan_in, layer.fan_out, Some(net.activation), h, ar);
        let next = &mut after[0];
        match dropout {
            Some(d) => {
                let scale = ar.st(T::from_f32(d.scale));
                match ar {
                    Arith::Default => drop_forward::<T, false>(next, h, &d.masks[l], scale),
                    Arith::Exact => drop_forward::<T, true>(next, h, &d.masks[l], scale),
                }
            }
            None => next.copy_from_slice(h),
        }
    }
}

/// Loss and gradients of one batch (or one chunk of a batch): forward,
/// softmax cross-entropy, backward. Returns the sum of the per-row losses in
/// the engine version's row order (the caller scales it by `inv_batch`);
/// gradients land in `pass.grads`, already scaled by `inv_batch` through the
/// softmax gradient.
pub fn loss_and_grads<T: Real>(
    net: &Network,
    params: &[T],
    labels: &[u8],
    dropout: Option<&Dropout>,
    inv_batch: T,
    pass: &mut Pass<T>,
    order: RowOrder,
) -> T {
    loss_and_grads_arith(net, params, labels, dropout, inv_batch, pass, order, Arith::Default)
}

/// [`loss_and_grads`] in the arithmetic `ar`: under `exact`, every
/// gradient, back-propagated error and masked error passes `tiny`
/// (spec: [`spec::EXACT_ARITHMETIC`]).
#[allow(clippy::too_many_arguments)]
pub fn loss_and_grads_arith<T: Real>(
    net: &Network,
    params: &[T],
    labels: &[u8],
    dropout: Option<&Dropout>,
    inv_batch: T,
    pass: &mut Pass<T>,
    order: RowOrder,
    ar: Arith,
) -> T {
    forward_arith(net, params, dropout, pass, ar);
    let rows = pass.batch;
    let classes = net.layers[net.layers.len() - 1].fan_out;
    softmax_xent_arith(&mut pass.logits, labels, classes, Some(ar.st(inv_batch)), &mut pass.losses, ar);
    let mut total = T::ZERO;
    for r in order.rows(rows) {
        total = total + pass.losses[r];
    }

    pass.delta.clear();
    pass.delta.extend_from_slice(&pass.logits);
    for (l, layer) in net.layers.iter().enumerate().rev() {
        let (gw, rest) = pass.grads[layer.w..].split_at_mut(layer.b - layer.w);
        let gb = &mut rest[..layer.fan_out];
        grad_weights(&pass.acts[l], &pass.delta, rows, layer.fan_in, layer.fan_out, gw, gb, order);
        ar.st_all(gw);
        ar.st_all(gb);
        if l == 0 {
            break;
        }
        pass.back.resize(rows * layer.fan_in, T::ZERO);
        backprop(&pass.delta, &params[layer.w..layer.b], rows, layer.fan_in, layer.fan_out, &mut pass.back);
        ar.st_all(&mut pass.back);
        let h = &pass.hidden[l - 1];
        let drop = dropout.map(|d| (ar.st(T::from_f32(d.scale)), &d.masks[l - 1][..]));
        pass.delta.clear();
        pass.delta.resize(pass.back.len(), T::ZERO);
        match ar {
            Arith::Default => back_through::<T, false>(net.activation, &mut pass.delta, &pass.back, h, drop),
            Arith::Exact => back_through::<T, true>(net.activation, &mut pass.delta, &pass.back, h, drop),
        }
    }
    total
}

/// SGD with momentum and weight decay, per parameter (spec:
/// [`crate::spec::OPTIMIZER_ORDER`]), in the arithmetic `ar` (under `exact`
/// the three settings, the new velocity and the new weight pass `tiny`:
/// [`spec::EXACT_ARITHMETIC`]), out of place: reads `params` and
/// `velocity`, writes the updated values to `new_params` and
/// `new_velocity`, and returns whether every new value is finite. The
/// engine keeps its last good state this way without copying it.
#[allow(clippy::too_many_arguments)]
pub fn sgd_update_into(
    net: &Network,
    params: &[f32],
    velocity: &[f32],
    grads: &[f32],
    learning_rate: f32,
    momentum: f32,
    weight_decay: f32,
    ar: Arith,
    new_params: &mut [f32],
    new_velocity: &mut [f32],
) -> bool {
    let hyper = (learning_rate, momentum, weight_decay);
    sgd_update_range(net, 0, params, velocity, grads, hyper, ar, new_params, new_velocity)
}

/// [`sgd_update_into`] over the parameters `first..first + params.len()`
/// only (every slice holds that range): each parameter's update is the
/// same operations whatever range it falls in, so ranges may be updated
/// side by side. `hyper` is (learning rate, momentum, weight decay).
#[allow(clippy::too_many_arguments)]
pub fn sgd_update_range(
    net: &Network,
    first: usize,
    params: &[f32],
    velocity: &[f32],
    grads: &[f32],
    hyper: (f32, f32, f32),
    ar: Arith,
    new_params: &mut [f32],
    new_velocity: &mut [f32],
) -> bool {
    let (lr, mu, wd) = (ar.st(hyper.0), ar.st(hyper.1), ar.st(hyper.2));
    let end = first + params.len();
    let clip = |lo: usize, hi: usize| (lo.max(first) - first)..(hi.min(end).max(lo.max(first)) - first);
    let mut finite = true;
    for layer in &net.layers {
        for i in clip(layer.w, layer.b) {
            let g = grads[i] + wd * params[i];
            let v = ar.st(mu * velocity[i] + g);
            let p = ar.st(params[i] - lr * v);
            new_velocity[i] = v;
            new_params[i] = p;
            finite &= v.is_finite() & p.is_finite();
        }
        for i in clip(layer.b, layer.b + layer.fan_out) {
            let v = ar.st(mu * velocity[i] + grads[i]);
            let p = ar.st(params[i] - lr * v);
            new_velocity[i] = v;
            new_params[i] = p;
            finite &= v.is_finite() & p.is_finite();
        }
    }
    finite
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The update as the spec writes it, in place, one parameter at a time:
    /// the reference the out-of-place, range-by-range update must match.
    #[allow(clippy::too_many_arguments)]
    fn sgd_update_arith(
        net: &Network,
        params: &mut [f32],
        velocity: &mut [f32],
        grads: &[f32],
        learning_rate: f32,
        momentum: f32,
        weight_decay: f32,
        ar: Arith,
    ) {
        let (lr, mu, wd) = (ar.st(learning_rate), ar.st(momentum), ar.st(weight_decay));
        for layer in &net.layers {
            for i in layer.w..layer.b {
                let g = grads[i] + wd * params[i];
                velocity[i] = ar.st(mu * velocity[i] + g);
                params[i] = ar.st(params[i] - lr * velocity[i]);
            }
            for i in layer.b..layer.b + layer.fan_out {
                velocity[i] = ar.st(mu * velocity[i] + grads[i]);
                params[i] = ar.st(params[i] - lr * velocity[i]);
            }
        }
    }

    #[test]
    fn out_of_place_sgd_gives_the_in_place_bits() {
        let net = Network::new(5, &[7], 3, Activation::Relu);
        let n = net.n_params;
        let mut params: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut velocity: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos() * 0.01).collect();
        let grads: Vec<f32> = (0..n).map(|i| (i as f32 * 0.73).sin() * 0.1).collect();
        for ar in [Arith::Default, Arith::Exact] {
            let (mut np, mut nv) = (vec![0.0; n], vec![0.0; n]);
            assert!(sgd_update_into(&net, &params, &velocity, &grads, 0.05, 0.9, 1e-4, ar, &mut np, &mut nv));
            sgd_update_arith(&net, &mut params, &mut velocity, &grads, 0.05, 0.9, 1e-4, ar);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&np), bits(&params));
            assert_eq!(bits(&nv), bits(&velocity));
        }
        // Updated range by range (cut anywhere, weights and biases alike):
        // the same bits.
        let (mut whole_p, mut whole_v) = (vec![0.0; n], vec![0.0; n]);
        sgd_update_into(&net, &params, &velocity, &grads, 0.05, 0.9, 1e-4, Arith::Exact, &mut whole_p, &mut whole_v);
        for cut in [1, 17, 35, 36, 40, n - 1] {
            let (mut rp, mut rv) = (vec![0.0; n], vec![0.0; n]);
            let h = (0.05, 0.9, 1e-4);
            let (p0, p1) = rp.split_at_mut(cut);
            let (v0, v1) = rv.split_at_mut(cut);
            let (a, b) = (&params[..cut], &params[cut..]);
            assert!(sgd_update_range(&net, 0, a, &velocity[..cut], &grads[..cut], h, Arith::Exact, p0, v0));
            assert!(sgd_update_range(&net, cut, b, &velocity[cut..], &grads[cut..], h, Arith::Exact, p1, v1));
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&rp), bits(&whole_p), "cut at {cut}");
            assert_eq!(bits(&rv), bits(&whole_v), "cut at {cut}");
        }
        // 0.9 * MAX + MAX overflows: the update says so.
        let huge = vec![f32::MAX; n];
        let (mut np, mut nv) = (vec![0.0; n], vec![0.0; n]);
        assert!(!sgd_update_into(&net, &params, &huge, &huge, 0.05, 0.9, 1e-4, Arith::Default, &mut np, &mut nv));
        assert!(nv.iter().all(|v| v.is_infinite()));
    }

    #[test]
    fn layout_is_contiguous() {
        let net = Network::new(64, &[128, 32], 10, Activation::Relu);
        assert_eq!(net.n_params, 64 * 128 + 128 + 128 * 32 + 32 + 32 * 10 + 10);
        assert_eq!(net.layers[1].w, 64 * 128 + 128);
        assert!(net.is_weight(0) && !net.is_weight(64 * 128));
    }

    #[test]
    fn matmul_is_a_k_ascending_sum() {
        // Values chosen so that another order gives other bits.
        let a = [1.0e8f32, 1.0, -1.0e8, 1.0];
        let w = [1.0f32, 1.0, 1.0, 1.0];
        let mut out = [0.0f32];
        matmul_bias(&a, &w, &[0.0], 1, 4, 1, &mut out);
        let mut expect = 0.0f32;
        for v in a {
            expect += v;
        }
        assert_eq!(out[0].to_bits(), expect.to_bits());
        assert_eq!(out[0], 1.0); // (((1e8 + 1) - 1e8) + 1) in f32
    }

    #[test]
    fn softmax_gradient_sums_to_zero_per_row() {
        let mut z = vec![1.0f64, 2.0, 3.0, -1.0, 0.0, 5.0];
        let mut losses = vec![0.0; 2];
        softmax_xent(&mut z, &[2, 0], 3, Some(1.0), &mut losses);
        for row in z.chunks(3) {
            assert!(row.iter().sum::<f64>().abs() < 1e-12);
        }
        assert!(losses.iter().all(|l| *l > 0.0));
    }
}
