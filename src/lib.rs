//! reprolab: train a small neural network and make machine-learning
//! non-determinism visible and controllable.
//!
//! Layout: [`spec`] holds every constant and order two implementations must
//! share; [`rng`], [`data`], [`config`], [`model`], [`hash`], [`train`] and
//! [`manifest`] are the engine, free of GPU and JS types; `wasm` (wasm32
//! only) owns every JavaScript export; [`platform`] is the little that
//! differs between native and wasm.

pub mod bench;
pub mod chacha;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod gpu;
pub mod hash;
pub mod kernels;
pub mod manifest;
pub mod model;
pub mod platform;
pub mod rng;
pub mod sources;
pub mod spec;
pub mod train;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use config::{Config, ConfigError, Origin, Settings};
pub use hash::Hash64;
pub use manifest::{diff, replay, Diff, Manifest, ManifestError};
pub use rng::{Stream, StreamSeeds};
pub use spec::DeterminismLevel;
pub use train::Trainer;

/// A one-line description of this engine, e.g. `reprolab 0.1.0, kernels v1`.
pub fn engine_version() -> String {
    format!("reprolab {}, kernels v{}", spec::CRATE_VERSION, spec::KERNEL_VERSION)
}
