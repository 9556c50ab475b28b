//! The engine interface: what the CPU engine ([`crate::train::CpuEngine`])
//! and the GPU engine ([`crate::gpu::GpuEngine`]) both are. An engine trains
//! a [`crate::setup::Setup`] from an imported [`EngineState`] (its
//! constructor), runs blocks of steps reporting into the run's record, exports
//! its state (for a hand-over or a checkpoint) and says what it is. The
//! driver ([`crate::driver`]) is the only caller.

use crate::error::Result;
use crate::record::{Adapter, RunRecord};
use crate::setup::EngineState;
use crate::spec::BackendKind;

/// A backend that trains a run.
#[allow(async_fn_in_trait)]
pub trait Engine {
    /// What it is.
    fn backend(&self) -> BackendKind;
    /// The GPU adapter it runs on, if any.
    fn adapter(&self) -> Option<&Adapter>;
    /// Weights, velocity and step: the full state another engine can import.
    fn state(&self) -> EngineState;
    /// The weights as they stand (the last state read back from a GPU).
    fn params(&self) -> &[f32];
    /// Runs up to `n` steps, recording each into `rec`; returns how many ran.
    async fn run_block(&mut self, rec: &mut RunRecord, n: usize) -> Result<usize>;
}

impl Engine for crate::train::CpuEngine {
    fn backend(&self) -> BackendKind {
        BackendKind::Cpu
    }
    fn adapter(&self) -> Option<&Adapter> {
        None
    }
    fn state(&self) -> EngineState {
        crate::train::CpuEngine::state(self)
    }
    fn params(&self) -> &[f32] {
        crate::train::CpuEngine::params(self)
    }
    async fn run_block(&mut self, rec: &mut RunRecord, n: usize) -> Result<usize> {
        Ok(self.run(rec, n))
    }
}

impl Engine for crate::gpu::GpuEngine {
    fn backend(&self) -> BackendKind {
        BackendKind::Gpu
    }
    fn adapter(&self) -> Option<&Adapter> {
        Some(crate::gpu::GpuEngine::adapter(self))
    }
    fn state(&self) -> EngineState {
        crate::gpu::GpuEngine::state(self)
    }
    fn params(&self) -> &[f32] {
        crate::gpu::GpuEngine::params(self)
    }
    async fn run_block(&mut self, rec: &mut RunRecord, n: usize) -> Result<usize> {
        crate::gpu::GpuEngine::run_block(self, rec, n).await
    }
}
