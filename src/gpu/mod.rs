//! The GPU backend: every `wgpu` call of the crate lives in this folder.
//!
//! One straight path: [`device`] (Instance -> Adapter -> Device, pipelines
//! for every kernel of [`kernels`], each a file in `shaders/` behind a
//! prelude of constants from [`crate::spec`]) -> [`graph`] (per-run buffers
//! and every dispatch of a step, made once) -> [`engine`] (one submit per
//! step, no CPU round trip; every [`crate::spec::GPU_READBACK_STEPS`] steps
//! one asynchronous read-back of the losses, hash-chain links, validation
//! metrics and weights). [`probe`] runs single kernels for parity tests;
//! [`GpuEngine::profile_step`] times a step kernel by kernel (the benchmark's
//! per-kernel table).

mod device;
mod engine;
mod graph;
mod kernels;
pub mod probe;

pub use device::Gpu;
pub use engine::{GpuEngine, KernelProfile, KernelTime};
pub use kernels::{prelude, prelude_exact, Tiling};
