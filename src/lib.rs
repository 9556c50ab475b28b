//! reprolab: train a small neural network and make machine-learning
//! non-determinism visible and controllable.
//!
//! Layout, from the bottom up (no module imports one above it):
//! - [`spec`]: every constant and order two implementations must share.
//! - The maths, free of settings, GPU, JS and platform types: [`chacha`],
//!   [`rng`], [`hash`], [`model`].
//! - [`error`] (typed errors with exit statuses and JS codes), [`data`],
//!   [`config`] (settings and where each came from), [`sources`] (the nine
//!   switches and every rule about what a free source does).
//! - [`setup`] (a run before its first step), [`record`] (what a run
//!   depended on and produced; no engine owns it), [`sealed`] and
//!   [`manifest`] (the record's sealed form), [`checkpoint`].
//! - The engines behind one interface ([`engine`]): [`train`] (the CPU) and
//!   [`gpu`] (every `wgpu` call).
//! - [`driver`]: the one backend policy (auto, strict GPU, CPU, fallback,
//!   recorded stretches, resume, replay) that every face uses.
//! - The faces: `src/main.rs` (the CLI) and `wasm` (every JavaScript
//!   export, wasm32 only) translate to and from the driver. [`platform`] is
//!   the little that differs between native and wasm.

pub mod bench;
pub mod chacha;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod driver;
pub mod engine;
pub mod error;
pub mod exact;
pub mod export;
pub mod gpu;
pub mod hash;
pub mod history;
pub mod kernels;
pub mod lanes;
pub mod manifest;
pub mod model;
pub mod platform;
pub mod record;
pub mod rng;
pub mod sealed;
pub mod setup;
pub mod sources;
pub mod spec;
pub mod train;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use config::{Config, Origin, Settings};
pub use driver::{BackendRequest, Run};
pub use error::Error;
pub use hash::Hash64;
pub use manifest::{diff, Diff, Manifest};
pub use rng::{Stream, StreamSeeds};
pub use spec::DeterminismLevel;

/// A one-line description of this engine, e.g. `reprolab 0.1.0, kernels v2`.
pub fn engine_version() -> String {
    format!("reprolab {}, kernels v{}", spec::CRATE_VERSION, spec::KERNEL_VERSION)
}
