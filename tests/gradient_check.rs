//! Analytic gradients of every layer type (dense, ReLU, tanh, dropout,
//! softmax cross-entropy) against central finite differences, all in f64
//! through the engine's own kernels.
//!
//! Tolerance: |analytic - numeric| <= 1e-6 * max(1, |analytic|, |numeric|),
//! with step h = 1e-6. Central differences are O(h^2) accurate and f64
//! rounding of the loss adds about 1e-16 / h = 1e-10; the worst error
//! measured is about 3e-10, so a wrong derivative (errors of order 1) cannot
//! pass.
#![cfg(not(target_arch = "wasm32"))]

use reprolab::config::Activation;
use reprolab::model::{loss_and_grads, Dropout, Network, Pass, RowOrder};
use reprolab::rng::{Stream, StreamRng};

const H: f64 = 1e-6;
const TOL: f64 = 1e-6;

fn check(activation: Activation, hidden: &[usize], with_dropout: bool) {
    let (inputs, classes, batch) = (5, 4, 6);
    let net = Network::new(inputs, hidden, classes, activation);
    let mut rng = StreamRng::new(Stream::Init, 99);
    let r = rng.reader(0, 0);
    let params: Vec<f64> = (0..net.n_params).map(|_| f64::from(r.unit_f32()) * 1.2 - 0.6).collect();
    let x: Vec<f64> = (0..batch * inputs).map(|_| f64::from(r.unit_f32()) * 2.0 - 1.0).collect();
    let labels: Vec<u8> = (0..batch).map(|i| (i % classes) as u8).collect();
    let dropout = with_dropout.then(|| Dropout {
        masks: hidden.iter().map(|w| (0..batch * w).map(|_| r.next_u32() >= u32::MAX / 4).collect()).collect(),
        scale: 1.0 / 0.75,
    });
    let inv = 1.0 / batch as f64;

    let loss_at = |p: &[f64]| {
        let mut pass: Pass<f64> = Pass::new(&net, batch);
        pass.acts[0].copy_from_slice(&x);
        loss_and_grads(&net, p, &labels, dropout.as_ref(), inv, &mut pass, RowOrder::Ascending) * inv
    };
    let mut pass: Pass<f64> = Pass::new(&net, batch);
    pass.acts[0].copy_from_slice(&x);
    loss_and_grads(&net, &params, &labels, dropout.as_ref(), inv, &mut pass, RowOrder::Ascending);
    let analytic = pass.grads.clone();

    let mut worst = 0.0f64;
    let mut checked = 0;
    for i in 0..net.n_params {
        let mut p = params.clone();
        p[i] = params[i] + H;
        let up = loss_at(&p);
        p[i] = params[i] - H;
        let down = loss_at(&p);
        let numeric = (up - down) / (2.0 * H);
        let scale = 1f64.max(analytic[i].abs()).max(numeric.abs());
        let err = (analytic[i] - numeric).abs() / scale;
        worst = worst.max(err);
        assert!(
            err <= TOL,
            "{activation:?} hidden={hidden:?} dropout={with_dropout}: parameter {i}: analytic {} vs numeric {numeric} (relative error {err:e})",
            analytic[i]
        );
        checked += 1;
    }
    eprintln!(
        "{activation:?} hidden={hidden:?} dropout={with_dropout}: {checked} parameters, worst relative error {worst:e}"
    );
}

#[test]
fn gradients_no_hidden_layer() {
    check(Activation::Relu, &[], false);
}

#[test]
fn gradients_relu() {
    check(Activation::Relu, &[7], false);
    check(Activation::Relu, &[7, 3], false);
}

#[test]
fn gradients_tanh() {
    check(Activation::Tanh, &[7], false);
    check(Activation::Tanh, &[6, 5], false);
}

#[test]
fn gradients_through_dropout() {
    check(Activation::Relu, &[8, 6], true);
    check(Activation::Tanh, &[8, 6], true);
}
